"""Broker configuration with Kafka's property names, defaults and meaning.

Properties come from a Kafka-style file (`--config`) and `--set KEY=VALUE` overrides and
are mapped to the typed `BrokerConfig`. Where Kafka's default is unlimited and that would
let one client exhaust the broker, odradek ships a finite default (docs/compatibility.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

LONG_MAX = 2**63 - 1


class ConfigError(ValueError):
    """A property has an unknown name or a value of the wrong type or range."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"expected true or false, got {value!r}")
    return lowered == "true"


def _int(value: str) -> int:
    return int(value.strip())


def _str(value: str) -> str:
    return value.strip()


def _list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


# property name -> (field name, parser, minimum for numbers)
_PROPERTIES: dict[str, tuple[str, Callable[[str], Any], int | None]] = {
    "node.id": ("node_id", _int, 0),
    "broker.id": ("node_id", _int, 0),
    "listeners": ("listeners", _list, None),
    # The HTTP listener of /metrics (docs/monitoring.md); none unless set.
    "console.listeners": ("console_listeners", _list, None),
    # The console's pages change nothing (no forms, POSTs refused) when true.
    "console.read.only": ("console_read_only", _bool, None),
    "advertised.listeners": ("advertised_listeners", _list, None),
    "log.dirs": ("log_dirs", _list, None),
    "log.dir": ("log_dirs", _list, None),
    "num.partitions": ("num_partitions", _int, 1),
    "default.replication.factor": ("default_replication_factor", _int, 1),
    "auto.create.topics.enable": ("auto_create_topics_enable", _bool, None),
    "delete.topic.enable": ("delete_topic_enable", _bool, None),
    "log.segment.bytes": ("log_segment_bytes", _int, 14),
    "log.roll.ms": ("log_roll_ms", _int, 1),
    "log.roll.hours": ("log_roll_hours", _int, 1),
    "log.index.size.max.bytes": ("log_index_size_max_bytes", _int, 4),
    "log.index.interval.bytes": ("log_index_interval_bytes", _int, 0),
    "log.flush.interval.messages": ("log_flush_interval_messages", _int, 1),
    "log.flush.interval.ms": ("log_flush_interval_ms", _int, 0),
    "log.flush.scheduler.interval.ms": ("log_flush_scheduler_interval_ms", _int, 1),
    "log.flush.offset.checkpoint.interval.ms": ("log_flush_offset_checkpoint_interval_ms", _int, 0),
    "log.message.timestamp.type": ("log_message_timestamp_type", _str, None),
    "message.max.bytes": ("message_max_bytes", _int, 0),
    "socket.request.max.bytes": ("socket_request_max_bytes", _int, 1),
    "queued.max.request.bytes": ("queued_max_request_bytes", _int, -1),
    "queued.max.requests": ("queued_max_requests", _int, 1),
    "max.in.flight.requests.per.connection": ("max_in_flight_requests_per_connection", _int, 1),
    "connections.max.idle.ms": ("connections_max_idle_ms", _int, 1),
    "max.connections": ("max_connections", _int, 1),
    "max.connections.per.ip": ("max_connections_per_ip", _int, 1),
    "request.timeout.ms": ("request_timeout_ms", _int, 1),
    "max.incremental.fetch.session.cache.slots": (
        "max_incremental_fetch_session_cache_slots",
        _int,
        0,
    ),
    "fetch.max.bytes": ("fetch_max_bytes", _int, 1024),
    "cluster.id": ("cluster_id", _str, None),
    "group.min.session.timeout.ms": ("group_min_session_timeout_ms", _int, 0),
    "group.max.session.timeout.ms": ("group_max_session_timeout_ms", _int, 0),
    "group.initial.rebalance.delay.ms": ("group_initial_rebalance_delay_ms", _int, 0),
    "group.max.size": ("group_max_size", _int, 1),
    "group.consumer.heartbeat.interval.ms": ("group_consumer_heartbeat_interval_ms", _int, 1),
    "group.consumer.min.heartbeat.interval.ms": (
        "group_consumer_min_heartbeat_interval_ms",
        _int,
        1,
    ),
    "group.consumer.max.heartbeat.interval.ms": (
        "group_consumer_max_heartbeat_interval_ms",
        _int,
        1,
    ),
    "group.consumer.session.timeout.ms": ("group_consumer_session_timeout_ms", _int, 1),
    "group.consumer.min.session.timeout.ms": ("group_consumer_min_session_timeout_ms", _int, 1),
    "group.consumer.max.session.timeout.ms": ("group_consumer_max_session_timeout_ms", _int, 1),
    "group.consumer.max.size": ("group_consumer_max_size", _int, 1),
    "group.consumer.assignors": ("group_consumer_assignors", _list, None),
    # Which way a group with members may change protocol (docs/groups.md, migration).
    "group.consumer.migration.policy": ("group_consumer_migration_policy", _str, None),
    "offsets.topic.num.partitions": ("offsets_topic_num_partitions", _int, 1),
    "offsets.topic.segment.bytes": ("offsets_topic_segment_bytes", _int, 14),
    "offsets.retention.minutes": ("offsets_retention_minutes", _int, 1),
    "offsets.retention.check.interval.ms": ("offsets_retention_check_interval_ms", _int, 1),
    "offset.metadata.max.bytes": ("offset_metadata_max_bytes", _int, 0),
    "producer.id.expiration.ms": ("producer_id_expiration_ms", _int, 1),
    "producer.id.expiration.check.interval.ms": (
        "producer_id_expiration_check_interval_ms",
        _int,
        1,
    ),
    "log.retention.check.interval.ms": ("log_retention_check_interval_ms", _int, 1),
    "log.cleaner.enable": ("log_cleaner_enable", _bool, None),
    "log.cleaner.backoff.ms": ("log_cleaner_backoff_ms", _int, 0),
    "log.cleaner.dedupe.buffer.size": ("log_cleaner_dedupe_buffer_size", _int, 1),
    # The cluster (docs/cluster.md): without zookeeper.connect the broker is a single node.
    "zookeeper.connect": ("zookeeper_connect", _str, None),
    "zookeeper.session.timeout.ms": ("zookeeper_session_timeout_ms", _int, 1),
    "zookeeper.connection.timeout.ms": ("zookeeper_connection_timeout_ms", _int, 1),
    "broker.rack": ("broker_rack", _str, None),
    "inter.broker.listener.name": ("inter_broker_listener_name", _str, None),
    "replica.lag.time.max.ms": ("replica_lag_time_max_ms", _int, 1),
    "replica.fetch.wait.max.ms": ("replica_fetch_wait_max_ms", _int, 0),
    "replica.fetch.min.bytes": ("replica_fetch_min_bytes", _int, 1),
    "replica.fetch.max.bytes": ("replica_fetch_max_bytes", _int, 0),
    "replica.fetch.response.max.bytes": ("replica_fetch_response_max_bytes", _int, 0),
    "offsets.topic.replication.factor": ("offsets_topic_replication_factor", _int, 1),
    "controlled.shutdown.enable": ("controlled_shutdown_enable", _bool, None),
    "auto.leader.rebalance.enable": ("auto_leader_rebalance_enable", _bool, None),
    "leader.imbalance.check.interval.seconds": ("leader_imbalance_check_interval_seconds", _int, 1),
    "leader.imbalance.per.broker.percentage": ("leader_imbalance_per_broker_percentage", _int, 0),
    # Transactions (the transaction coordinator and its `__transaction_state` topic).
    "transaction.max.timeout.ms": ("transaction_max_timeout_ms", _int, 1),
    "transactional.id.expiration.ms": ("transactional_id_expiration_ms", _int, 1),
    "transaction.state.log.num.partitions": ("transaction_state_log_num_partitions", _int, 1),
    "transaction.state.log.replication.factor": (
        "transaction_state_log_replication_factor",
        _int,
        1,
    ),
    "transaction.state.log.min.isr": ("transaction_state_log_min_isr", _int, 1),
    "transaction.state.log.segment.bytes": ("transaction_state_log_segment_bytes", _int, 14),
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": (
        "transaction_abort_timed_out_transaction_cleanup_interval_ms",
        _int,
        1,
    ),
    "transaction.remove.expired.transaction.cleanup.interval.ms": (
        "transaction_remove_expired_transaction_cleanup_interval_ms",
        _int,
        1,
    ),
    "transaction.partition.verification.enable": (
        "transaction_partition_verification_enable",
        _bool,
        None,
    ),
    # Security, the transport side (docs/security.md): listeners' protocols, TLS, SASL.
    # Each may also be given per listener as `listener.name.<name>.<property>` (kept in
    # `unknown` and read by odradek.security.listeners).
    "listener.security.protocol.map": ("listener_security_protocol_map", _str, None),
    "sasl.enabled.mechanisms": ("sasl_enabled_mechanisms", _list, None),
    "sasl.jaas.config": ("sasl_jaas_config", _str, None),
    "sasl.server.max.receive.size": ("sasl_server_max_receive_size", _int, 1),
    # PLAIN users from a file of `name=password` lines, besides the JAAS `user_NAME` ones.
    "sasl.plain.users.file": ("sasl_plain_users_file", _str, None),
    "sasl.mechanism.inter.broker.protocol": ("sasl_mechanism_inter_broker_protocol", _str, None),
    "connection.failed.authentication.delay.ms": (
        "connection_failed_authentication_delay_ms",
        _int,
        0,
    ),
    "connections.max.reauth.ms": ("connections_max_reauth_ms", _int, 0),
    "max.connections.per.ip.overrides": ("max_connections_per_ip_overrides", _str, None),
    "ssl.keystore.type": ("ssl_keystore_type", _str, None),
    "ssl.keystore.location": ("ssl_keystore_location", _str, None),
    "ssl.keystore.password": ("ssl_keystore_password", _str, None),
    "ssl.key.password": ("ssl_key_password", _str, None),
    "ssl.keystore.certificate.chain": ("ssl_keystore_certificate_chain", _str, None),
    "ssl.keystore.key": ("ssl_keystore_key", _str, None),
    "ssl.truststore.type": ("ssl_truststore_type", _str, None),
    "ssl.truststore.location": ("ssl_truststore_location", _str, None),
    "ssl.truststore.certificates": ("ssl_truststore_certificates", _str, None),
    "ssl.client.auth": ("ssl_client_auth", _str, None),
    "ssl.enabled.protocols": ("ssl_enabled_protocols", _list, None),
    "ssl.principal.mapping.rules": ("ssl_principal_mapping_rules", _str, None),
    # Authorization (docs/security.md): the standard ACL authorizer under Kafka's names.
    "authorizer.class.name": ("authorizer_class_name", _str, None),
    "super.users": ("super_users", _str, None),
    "allow.everyone.if.no.acl.found": ("allow_everyone_if_no_acl_found", _bool, None),
}

# Kafka's names of its standard authorizer (ZooKeeper's AclAuthorizer, KRaft's
# StandardAuthorizer): either turns on odradek's ACL authorizer.
AUTHORIZER_CLASS_NAMES = (
    "kafka.security.authorizer.AclAuthorizer",
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
)


@dataclass(frozen=True)
class BrokerConfig:
    """Typed broker settings; field names are Kafka's property names with '_' for '.'."""

    node_id: int = 1
    listeners: tuple[str, ...] = ("PLAINTEXT://127.0.0.1:9092",)
    advertised_listeners: tuple[str, ...] = ()
    console_listeners: tuple[str, ...] = ()
    console_read_only: bool = False
    log_dirs: tuple[str, ...] = ("./data",)
    num_partitions: int = 1
    default_replication_factor: int = 1
    auto_create_topics_enable: bool = True
    delete_topic_enable: bool = True
    log_segment_bytes: int = 1024**3
    log_roll_ms: int | None = None
    log_roll_hours: int = 168
    log_index_size_max_bytes: int = 10 * 1024 * 1024
    log_index_interval_bytes: int = 4096
    log_flush_interval_messages: int = LONG_MAX
    log_flush_interval_ms: int | None = None
    log_flush_scheduler_interval_ms: int = LONG_MAX
    log_flush_offset_checkpoint_interval_ms: int = 60_000
    log_message_timestamp_type: str = "CreateTime"
    message_max_bytes: int = 1048588
    socket_request_max_bytes: int = 100 * 1024 * 1024
    # Kafka's default is unlimited (-1); a finite bound keeps memory bounded.
    queued_max_request_bytes: int = 256 * 1024 * 1024
    queued_max_requests: int = 500
    max_in_flight_requests_per_connection: int = 100
    connections_max_idle_ms: int = 600_000
    max_connections: int = 10_000
    max_connections_per_ip: int = 1_000
    request_timeout_ms: int = 30_000
    max_incremental_fetch_session_cache_slots: int = 1000
    fetch_max_bytes: int = 55 * 1024 * 1024
    cluster_id: str | None = None
    group_min_session_timeout_ms: int = 6_000
    group_max_session_timeout_ms: int = 1_800_000
    # Kafka's default is 3000 ms; a shorter wait lets a new group settle within a second
    # while still gathering consumers that start together (docs/groups.md).
    group_initial_rebalance_delay_ms: int = 200
    group_max_size: int = 2**31 - 1
    # KIP-848 consumer groups (docs/groups.md); Kafka's defaults and bounds.
    group_consumer_heartbeat_interval_ms: int = 5_000
    group_consumer_min_heartbeat_interval_ms: int = 5_000
    group_consumer_max_heartbeat_interval_ms: int = 15_000
    group_consumer_session_timeout_ms: int = 45_000
    group_consumer_min_session_timeout_ms: int = 45_000
    group_consumer_max_session_timeout_ms: int = 60_000
    group_consumer_max_size: int = 2**31 - 1
    group_consumer_assignors: tuple[str, ...] = ("uniform", "range")
    group_consumer_migration_policy: str = "bidirectional"
    offsets_topic_num_partitions: int = 50
    offsets_topic_segment_bytes: int = 100 * 1024 * 1024
    offsets_retention_minutes: int = 7 * 24 * 60
    offsets_retention_check_interval_ms: int = 600_000
    offset_metadata_max_bytes: int = 4096
    producer_id_expiration_ms: int = 86_400_000
    producer_id_expiration_check_interval_ms: int = 600_000
    # Retention and compaction (the per-topic defaults such as log.retention.hours are
    # read through metadata/topic_config.py's synonyms).
    log_retention_check_interval_ms: int = 300_000
    log_cleaner_enable: bool = True
    log_cleaner_backoff_ms: int = 15_000
    log_cleaner_dedupe_buffer_size: int = 128 * 1024 * 1024
    zookeeper_connect: str | None = None
    zookeeper_session_timeout_ms: int = 6_000
    # Kafka's default is the session timeout when unset.
    zookeeper_connection_timeout_ms: int | None = None
    broker_rack: str | None = None
    inter_broker_listener_name: str | None = None
    replica_lag_time_max_ms: int = 30_000
    replica_fetch_wait_max_ms: int = 500
    replica_fetch_min_bytes: int = 1
    replica_fetch_max_bytes: int = 1024 * 1024
    replica_fetch_response_max_bytes: int = 10 * 1024 * 1024
    offsets_topic_replication_factor: int = 3
    controlled_shutdown_enable: bool = True
    auto_leader_rebalance_enable: bool = True
    leader_imbalance_check_interval_seconds: int = 300
    leader_imbalance_per_broker_percentage: int = 10
    transaction_max_timeout_ms: int = 900_000
    transactional_id_expiration_ms: int = 604_800_000
    transaction_state_log_num_partitions: int = 50
    transaction_state_log_replication_factor: int = 3
    transaction_state_log_min_isr: int = 2
    transaction_state_log_segment_bytes: int = 100 * 1024 * 1024
    transaction_abort_timed_out_transaction_cleanup_interval_ms: int = 10_000
    transaction_remove_expired_transaction_cleanup_interval_ms: int = 3_600_000
    transaction_partition_verification_enable: bool = True
    # Security, the transport side (docs/security.md); Kafka's defaults.
    listener_security_protocol_map: str = (
        "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"
    )
    sasl_enabled_mechanisms: tuple[str, ...] = ("GSSAPI",)
    sasl_jaas_config: str | None = None
    # The largest frame a SASL listener reads before authentication completes.
    sasl_server_max_receive_size: int = 524288
    sasl_mechanism_inter_broker_protocol: str = "GSSAPI"
    sasl_plain_users_file: str | None = None
    connection_failed_authentication_delay_ms: int = 100
    connections_max_reauth_ms: int = 0
    max_connections_per_ip_overrides: str = ""
    ssl_keystore_type: str = "JKS"
    ssl_keystore_location: str | None = None
    ssl_keystore_password: str | None = None
    ssl_key_password: str | None = None
    ssl_keystore_certificate_chain: str | None = None
    ssl_keystore_key: str | None = None
    ssl_truststore_type: str = "JKS"
    ssl_truststore_location: str | None = None
    ssl_truststore_certificates: str | None = None
    ssl_client_auth: str = "none"
    ssl_enabled_protocols: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
    ssl_principal_mapping_rules: str = "DEFAULT"
    authorizer_class_name: str = ""
    super_users: str = ""
    allow_everyone_if_no_acl_found: bool = False
    unknown: Mapping[str, str] = field(default_factory=dict)

    @property
    def log_roll_effective_ms(self) -> int:
        return self.log_roll_ms if self.log_roll_ms is not None else self.log_roll_hours * 3_600_000

    @property
    def flush_ms(self) -> int:
        if self.log_flush_interval_ms is not None:
            return self.log_flush_interval_ms
        return self.log_flush_scheduler_interval_ms

    @property
    def advertised(self) -> tuple[str, ...]:
        return self.advertised_listeners or self.listeners


def parse_properties(text: str) -> dict[str, str]:
    """Parses Kafka's properties format: `key=value` or `key: value`, `#`/`!` comments."""
    result: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        sep = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if sep <= 0:
            raise ConfigError(f"line {number}: expected key=value, got {raw!r}")
        result[line[:sep].strip()] = line[sep + 1 :].strip()
    return result


def _convert(name: str, value: str) -> tuple[str, Any]:
    field_name, parser, minimum = _PROPERTIES[name]
    try:
        parsed = parser(value)
    except ValueError as exc:
        raise ConfigError(f"invalid value {value!r} for {name}: {exc}") from None
    if minimum is not None and isinstance(parsed, int) and parsed < minimum:
        raise ConfigError(f"invalid value {value!r} for {name}: must be at least {minimum}")
    if name == "log.message.timestamp.type" and parsed not in ("CreateTime", "LogAppendTime"):
        raise ConfigError(f"invalid value {value!r} for {name}: CreateTime or LogAppendTime")
    if name == "authorizer.class.name" and parsed not in ("", *AUTHORIZER_CLASS_NAMES):
        raise ConfigError(
            f"invalid value {value!r} for {name}: {' or '.join(AUTHORIZER_CLASS_NAMES)}"
        )
    if name == "console.listeners":
        for listener in parsed:
            if not listener.lower().startswith("http://"):
                raise ConfigError(f"invalid value {value!r} for {name}: http://host:port")
            try:
                parse_listener(listener)
            except ConfigError as exc:
                raise ConfigError(f"invalid value {value!r} for {name}: {exc}") from None
    return field_name, parsed


def build_config(items: Iterable[tuple[str, str]]) -> BrokerConfig:
    """Builds a BrokerConfig from property pairs; later pairs override earlier ones.

    Unknown property names are kept in `unknown` (Kafka logs and ignores them too)."""
    values: dict[str, Any] = {}
    unknown: dict[str, str] = {}
    for name, value in items:
        if name in _PROPERTIES:
            field_name, parsed = _convert(name, value)
            values[field_name] = parsed
        else:
            unknown[name] = value
    config = dataclasses.replace(BrokerConfig(), **values, unknown=unknown)
    _check_consumer_group_bounds(config)
    return config


def _check_consumer_group_bounds(c: BrokerConfig) -> None:
    """Kafka's start-up checks of the KIP-848 group settings: each value within its
    bounds, and the heartbeat interval below the session timeout."""
    for name, value, low, high in (
        (
            "group.consumer.heartbeat.interval.ms",
            c.group_consumer_heartbeat_interval_ms,
            c.group_consumer_min_heartbeat_interval_ms,
            c.group_consumer_max_heartbeat_interval_ms,
        ),
        (
            "group.consumer.session.timeout.ms",
            c.group_consumer_session_timeout_ms,
            c.group_consumer_min_session_timeout_ms,
            c.group_consumer_max_session_timeout_ms,
        ),
    ):
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    if c.group_consumer_heartbeat_interval_ms >= c.group_consumer_session_timeout_ms:
        raise ConfigError(
            "group.consumer.heartbeat.interval.ms must be less than "
            "group.consumer.session.timeout.ms"
        )
    policies = ("bidirectional", "upgrade", "downgrade", "disabled")
    if c.group_consumer_migration_policy.lower() not in policies:
        raise ConfigError("group.consumer.migration.policy: one of " + ", ".join(policies))
    known = ("uniform", "range")
    if not c.group_consumer_assignors or any(a not in known for a in c.group_consumer_assignors):
        raise ConfigError("group.consumer.assignors: a list of 'uniform' and 'range'")


def parse_listener(listener: str) -> tuple[str, str, int]:
    """Splits `NAME://host:port` into (name, host, port)."""
    name, sep, rest = listener.partition("://")
    host, colon, port = rest.rpartition(":")
    if not sep or not colon:
        raise ConfigError(f"invalid listener {listener!r}: expected NAME://host:port")
    try:
        port_number = int(port)
    except ValueError:
        raise ConfigError(f"invalid port in listener {listener!r}") from None
    return name, host.strip("[]"), port_number


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def property_value(config: BrokerConfig, name: str) -> str | None:
    """The value a property was given at startup (file or `--set`), as text; None when
    it was left at its default. Names this module does not type come from `unknown`.

    A typed property set to exactly its default counts as not given (the typed config
    does not remember which names were written)."""
    if name in config.unknown:
        return config.unknown[name]
    entry = _PROPERTIES.get(name)
    if entry is None:
        return None
    value = getattr(config, entry[0])
    if value is None or value == getattr(_DEFAULTS, entry[0]):
        return None
    return _format(value)


_DEFAULTS = BrokerConfig()


def default_property_value(name: str) -> str | None:
    """The default of a typed property as text (None when unset by default or untyped)."""
    entry = _PROPERTIES.get(name)
    if entry is None:
        return None
    value = getattr(_DEFAULTS, entry[0])
    return None if value is None else _format(value)
