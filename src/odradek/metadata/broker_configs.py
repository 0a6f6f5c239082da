"""Broker properties as the configs APIs see them: Kafka's names, types, defaults,
documentation, and which of them may be changed while the broker runs.

A property is dynamic here when Kafka allows it dynamically *and* odradek applies the
change without a restart: the log settings that are the broker-wide defaults of topic
configs. Everything else is read-only (Kafka also changes listeners, connection quotas,
thread pools, per-listener keystores and a few more dynamically; odradek does not yet).
The security properties are defined in security_configs.py; per-listener overrides
(`listener.name.<l>.<property>`) are described and refused as their property is.
"""

from __future__ import annotations

from collections.abc import Mapping

from odradek.metadata.broker_config_def import BrokerConfigDef
from odradek.metadata.security_configs import LISTENER_PREFIX, MECHANISM_CONFIGS, SECURITY_CONFIGS
from odradek.metadata.topic_config import check_gzip_level

INT_MAX = 2**31 - 1


def _d(
    name: str, kind: str, doc: str, minimum: float | None = None, **kw: object
) -> BrokerConfigDef:
    return BrokerConfigDef(name, kind, doc, True, minimum, **kw)  # type: ignore[arg-type]


def _r(name: str, kind: str, doc: str) -> BrokerConfigDef:
    return BrokerConfigDef(name, kind, doc)


_DYNAMIC = [
    _d(
        "compression.type",
        "enum",
        "Default codec batches are stored with.",
        choices=("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
        default_value="producer",
    ),
    _d(
        "compression.gzip.level",
        "int",
        "Default compression.gzip.level (1..9, or -1 for zlib's default).",
        -1,
        maximum=9,
        default_value="-1",
        extra_check=check_gzip_level,
    ),
    _d(
        "compression.lz4.level",
        "int",
        "Default compression.lz4.level.",
        1,
        maximum=17,
        default_value="9",
    ),
    _d(
        "compression.zstd.level",
        "int",
        "Default compression.zstd.level.",
        -131072,
        maximum=22,
        default_value="3",
    ),
    _d(
        "log.local.retention.bytes",
        "long",
        "Default local.retention.bytes (tiered storage only).",
        -2,
        default_value="-2",
    ),
    _d(
        "log.local.retention.ms",
        "long",
        "Default local.retention.ms (tiered storage only).",
        -2,
        default_value="-2",
    ),
    _d(
        "leader.replication.throttled.rate",
        "long",
        "Bytes per second this broker, as leader, serves to out-of-sync followers of the "
        "replicas in leader.replication.throttled.replicas.",
        0,
        default_value=str(2**63 - 1),
    ),
    _d(
        "follower.replication.throttled.rate",
        "long",
        "Bytes per second this broker, as an out-of-sync follower, fetches for the "
        "replicas in follower.replication.throttled.replicas.",
        0,
        default_value=str(2**63 - 1),
    ),
    _d(
        "replica.alter.log.dirs.io.max.bytes.per.second",
        "long",
        "Bytes per second copied for partitions moving between log dirs.",
        1,
        default_value=str(2**63 - 1),
    ),
    _d(
        "log.cleanup.policy",
        "list",
        "Default cleanup policy of topics.",
        choices=("delete", "compact"),
        default_value="delete",
    ),
    _d(
        "log.cleaner.delete.retention.ms",
        "long",
        "Default delete.retention.ms.",
        0,
        default_value="86400000",
    ),
    _d(
        "log.cleaner.max.compaction.lag.ms",
        "long",
        "Default max.compaction.lag.ms.",
        1,
        default_value=str(2**63 - 1),
    ),
    _d(
        "log.cleaner.min.cleanable.ratio",
        "double",
        "Default min.cleanable.dirty.ratio.",
        0,
        maximum=1,
        default_value="0.5",
    ),
    _d(
        "log.cleaner.min.compaction.lag.ms",
        "long",
        "Default min.compaction.lag.ms.",
        0,
        default_value="0",
    ),
    _d("log.flush.interval.messages", "long", "Default flush.messages.", 1),
    _d("log.flush.interval.ms", "long", "Default flush.ms.", 0),
    _d(
        "log.flush.scheduler.interval.ms",
        "long",
        "Default flush.ms when log.flush.interval.ms is unset.",
        0,
    ),
    _d("log.index.interval.bytes", "int", "Default index.interval.bytes.", 0),
    _d("log.index.size.max.bytes", "int", "Default segment.index.bytes.", 4),
    _d(
        "log.message.timestamp.after.max.ms",
        "long",
        "Default message.timestamp.after.max.ms.",
        0,
        default_value=str(2**63 - 1),
    ),
    _d(
        "log.message.timestamp.before.max.ms",
        "long",
        "Default message.timestamp.before.max.ms.",
        0,
        default_value=str(2**63 - 1),
    ),
    _d(
        "log.message.timestamp.type",
        "enum",
        "Default message.timestamp.type.",
        choices=("CreateTime", "LogAppendTime"),
    ),
    _d("log.preallocate", "bool", "Default preallocate.", default_value="false"),
    _d("log.retention.bytes", "long", "Default retention.bytes.", default_value="-1"),
    _d("log.retention.hours", "int", "Default retention.ms, in hours.", default_value="168"),
    _d("log.retention.minutes", "int", "Default retention.ms, in minutes; beats hours."),
    _d("log.retention.ms", "long", "Default retention.ms; beats minutes and hours.", -1),
    _d("log.roll.hours", "int", "Default segment.ms, in hours.", 1),
    _d(
        "log.roll.jitter.hours", "int", "Default segment.jitter.ms, in hours.", 0, default_value="0"
    ),
    _d("log.roll.jitter.ms", "long", "Default segment.jitter.ms; beats hours.", 0),
    _d("log.roll.ms", "long", "Default segment.ms; beats log.roll.hours.", 1),
    _d("log.segment.bytes", "int", "Default segment.bytes.", 14),
    _d(
        "log.segment.delete.delay.ms",
        "long",
        "Default file.delete.delay.ms.",
        0,
        default_value="60000",
    ),
    _d("message.max.bytes", "int", "Default max.message.bytes.", 0),
    _d("min.insync.replicas", "int", "Default min.insync.replicas.", 1, default_value="1"),
    _d(
        "unclean.leader.election.enable",
        "bool",
        "Default unclean.leader.election.enable.",
        default_value="false",
    ),
]

_READ_ONLY = [
    _r("advertised.listeners", "string", "Listeners as published to clients."),
    _r("auto.create.topics.enable", "bool", "Create a topic when a client asks for it."),
    _r("broker.id", "int", "This broker's id (same as node.id)."),
    _r("cluster.id", "string", "The cluster id, checked against the data directory."),
    _r("console.listeners", "string", "HTTP listeners serving /metrics (http://host:port)."),
    _r("connections.max.idle.ms", "long", "Close connections idle this long."),
    _r("default.replication.factor", "int", "Replication factor of auto-created topics."),
    _r("delete.topic.enable", "bool", "Whether topics may be deleted."),
    _r("fetch.max.bytes", "int", "Largest fetch response."),
    _r("group.initial.rebalance.delay.ms", "int", "Wait before a new group's first rebalance."),
    _r("group.max.session.timeout.ms", "int", "Longest session timeout a member may ask for."),
    _r("group.max.size", "int", "Most members of one group."),
    _r("group.min.session.timeout.ms", "int", "Shortest session timeout a member may ask for."),
    _r("listeners", "string", "Addresses the broker listens on."),
    _r("log.dirs", "string", "Directories holding partition logs."),
    _r("log.flush.offset.checkpoint.interval.ms", "int", "How often recovery points are saved."),
    _r("max.connections", "int", "Most connections the broker accepts."),
    _r("max.connections.per.ip", "int", "Most connections from one address."),
    _r("max.in.flight.requests.per.connection", "int", "Queued requests per connection."),
    _r("max.incremental.fetch.session.cache.slots", "int", "Most fetch sessions cached."),
    _r("node.id", "int", "This broker's id."),
    _r("num.partitions", "int", "Partitions of auto-created topics."),
    _r("offset.metadata.max.bytes", "int", "Largest metadata of a committed offset."),
    _r("offsets.retention.check.interval.ms", "long", "How often stale offsets are removed."),
    _r("offsets.retention.minutes", "int", "How long offsets of empty groups are kept."),
    _r("offsets.topic.num.partitions", "int", "Partitions of __consumer_offsets."),
    _r("offsets.topic.segment.bytes", "int", "segment.bytes of __consumer_offsets."),
    _r("producer.id.expiration.ms", "int", "Forget idle idempotent producers after this."),
    _r("producer.id.expiration.check.interval.ms", "int", "How often producers expire."),
    _r("queued.max.request.bytes", "long", "Bytes of requests being handled, all connections."),
    _r("queued.max.requests", "int", "Requests queued before reading stops."),
    _r("request.timeout.ms", "int", "Deadline for a whole request frame to arrive."),
    _r("socket.request.max.bytes", "int", "Largest request frame."),
    # The cluster (docs/cluster.md).
    _r("zookeeper.connect", "string", "ZooKeeper servers and chroot; unset: a single node."),
    _r("zookeeper.session.timeout.ms", "int", "How long ZooKeeper keeps a silent session."),
    _r("zookeeper.connection.timeout.ms", "int", "How long start-up waits for ZooKeeper."),
    _r("broker.rack", "string", "This broker's rack, for placing replicas."),
    _r("inter.broker.listener.name", "string", "The listener followers fetch from."),
    _r("replica.lag.time.max.ms", "long", "A follower behind this long leaves the ISR."),
    _r("replica.fetch.wait.max.ms", "int", "Longest wait of a follower's fetch."),
    _r("replica.fetch.min.bytes", "int", "Bytes a follower's fetch waits for."),
    _r("replica.fetch.max.bytes", "int", "Bytes per partition a follower fetches."),
    _r("replica.fetch.response.max.bytes", "int", "Bytes of one follower fetch response."),
    _r("offsets.topic.replication.factor", "int", "Replicas of __consumer_offsets."),
    _r("controlled.shutdown.enable", "bool", "Hand leadership over before stopping."),
    _r("auto.leader.rebalance.enable", "bool", "Move leaders back to preferred replicas."),
    _r("leader.imbalance.check.interval.seconds", "long", "How often leaders are balanced."),
    _r("leader.imbalance.per.broker.percentage", "int", "Imbalance that triggers it."),
    BrokerConfigDef(
        "replication.quota.window.num",
        "int",
        "Windows the replication throttle rate is measured over.",
        minimum=1,
        default_value="11",
    ),
    BrokerConfigDef(
        "replication.quota.window.size.seconds",
        "int",
        "Length of one window of the replication throttle rate.",
        minimum=1,
        default_value="1",
    ),
    # Transactions.
    _r("transaction.max.timeout.ms", "int", "Longest transaction timeout a producer may ask."),
    _r("transactional.id.expiration.ms", "int", "Forget idle transactional ids after this."),
    _r("transaction.state.log.num.partitions", "int", "Partitions of __transaction_state."),
    _r("transaction.state.log.replication.factor", "int", "Replicas of __transaction_state."),
    _r("transaction.state.log.min.isr", "int", "min.insync.replicas of __transaction_state."),
    _r("transaction.state.log.segment.bytes", "int", "segment.bytes of __transaction_state."),
    _r(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "int",
        "How often timed-out transactions are aborted.",
    ),
    _r(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        "int",
        "How often expired transactional ids are removed.",
    ),
    _r(
        "transaction.partition.verification.enable",
        "bool",
        "Check with the coordinator that a transactional batch's partition is in its transaction.",
    ),
]

BROKER_CONFIGS: Mapping[str, BrokerConfigDef] = {
    d.name: d for d in sorted(_DYNAMIC + _READ_ONLY + SECURITY_CONFIGS, key=lambda d: d.name)
}

# Properties that stand in for one another, highest precedence first (Kafka's groups).
_SYNONYM_GROUPS = [
    ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
    ("log.roll.ms", "log.roll.hours"),
    ("log.roll.jitter.ms", "log.roll.jitter.hours"),
    ("log.flush.interval.ms", "log.flush.scheduler.interval.ms"),
    ("node.id", "broker.id"),
]


def broker_synonyms(name: str) -> tuple[str, ...]:
    """The property and its synonyms in precedence order (just the name when none); a
    per-listener override's synonym is its broker-wide property, as in Kafka."""
    for group in _SYNONYM_GROUPS:
        if name in group:
            return group
    base = listener_base(name)
    return (name,) if base is None else (name, base)


def listener_base(name: str) -> str | None:
    """The broker property a `listener.name.<l>.<property>` (or, for the SASL ones,
    `listener.name.<l>.<mechanism>.<property>`) overrides; None when `name` is not
    such an override of a property odradek knows."""
    if not name.startswith(LISTENER_PREFIX):
        return None
    _listener, dot, rest = name[len(LISTENER_PREFIX) :].partition(".")
    if not dot:
        return None
    if rest in BROKER_CONFIGS:
        return rest
    _mechanism, dot, property_name = rest.partition(".")
    return property_name if dot and property_name in MECHANISM_CONFIGS else None


def is_broker_config(name: str) -> bool:
    """Whether `name` is a broker property or a per-listener override of one."""
    return name in BROKER_CONFIGS or listener_base(name) is not None
