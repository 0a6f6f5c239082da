"""Per-topic configuration: Kafka's topic config names, types, defaults and validation.

A topic stores only the values set on it; everything else falls back to the broker
property that is its synonym (`retention.ms` ← `log.retention.ms`, `log.retention.minutes`,
`log.retention.hours`), set dynamically or at startup, else Kafka's fixed default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, cast

from odradek.config import LONG_MAX, BrokerConfig, property_value
from odradek.protocol.records import GZIP, LZ4, NONE, SNAPPY, ZSTD
from odradek.storage.log_config import LogConfig, TimestampType

INT_MAX = 2**31 - 1
HOUR_MS = 3_600_000
# A broker property that stands in for a topic config, and how many of the topic
# config's units one of its units is (log.retention.hours -> retention.ms: 3,600,000).
Synonym = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ConfigDef:
    name: str
    kind: str  # "int", "long", "double", "bool", "enum", "list"
    default: Callable[[BrokerConfig], str]
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    synonyms: tuple[Synonym, ...] = ()  # broker properties, highest precedence first
    doc: str = ""
    # A check beyond type and range (raises InvalidConfigError), as Kafka's validators.
    extra_check: Callable[[str], None] | None = None


def _fixed(value: object) -> Callable[[BrokerConfig], str]:
    return lambda _config: str(value)


def _same(name: str) -> tuple[Synonym, ...]:
    return ((name, 1),)


def check_gzip_level(value: str) -> None:
    """Kafka's gzip levels: 1..9, or -1 for zlib's default."""
    if int(value) != -1 and not 1 <= int(value) <= 9:
        raise InvalidConfigError(
            f"Invalid value {value} for configuration compression.gzip.level: "
            "Value must be between 1 and 9, or equal to -1"
        )


def _throttled_replicas(value: str) -> None:
    """Kafka's throttled replica list: empty, "*", or "partition:broker" pairs of ints."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    if items == ["*"]:
        return
    for item in items:
        partition, _, broker = item.partition(":")
        if not (partition.isdigit() and broker.isdigit()):
            raise InvalidConfigError(
                f"Invalid value {value}: it must be a list of partitionId:brokerId "
                "entries (e.g. 0:101,1:102), or the wildcard '*'"
            )


def _no_tiered_storage(value: str) -> None:
    """Tiered storage does not exist here: like a Kafka broker with
    remote.log.storage.system.enable=false, a topic cannot turn it on."""
    if value.strip().lower() == "true":
        raise InvalidConfigError(
            "Tiered Storage functionality is disabled in the broker. "
            "Topic cannot be configured with remote log storage."
        )


_DEFS = [
    ConfigDef(
        "cleanup.policy",
        "list",
        _fixed("delete"),
        choices=("delete", "compact"),
        synonyms=_same("log.cleanup.policy"),
        doc="Whether old segments are deleted, compacted by key, or both.",
    ),
    ConfigDef(
        "compression.type",
        "enum",
        _fixed("producer"),
        choices=("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
        synonyms=_same("compression.type"),
        doc="The codec batches are stored with; 'producer' keeps the producer's codec.",
    ),
    ConfigDef(
        "delete.retention.ms",
        "long",
        _fixed(86_400_000),
        minimum=0,
        synonyms=_same("log.cleaner.delete.retention.ms"),
        doc="How long tombstones stay readable in a compacted topic.",
    ),
    ConfigDef(
        "file.delete.delay.ms",
        "long",
        _fixed(60_000),
        minimum=0,
        synonyms=_same("log.segment.delete.delay.ms"),
        doc="How long a deleted segment's files are kept before they are removed.",
    ),
    ConfigDef(
        "flush.messages",
        "long",
        lambda c: str(c.log_flush_interval_messages),
        minimum=1,
        synonyms=_same("log.flush.interval.messages"),
        doc="Force an fsync after this many messages have been appended.",
    ),
    ConfigDef(
        "flush.ms",
        "long",
        lambda c: str(c.flush_ms),
        minimum=0,
        synonyms=(("log.flush.interval.ms", 1), ("log.flush.scheduler.interval.ms", 1)),
        doc="Force an fsync when the oldest unflushed message is this old.",
    ),
    ConfigDef(
        "index.interval.bytes",
        "int",
        lambda c: str(c.log_index_interval_bytes),
        0,
        synonyms=_same("log.index.interval.bytes"),
        doc="Bytes of batches between two entries of the offset index.",
    ),
    ConfigDef(
        "max.compaction.lag.ms",
        "long",
        _fixed(LONG_MAX),
        minimum=1,
        synonyms=_same("log.cleaner.max.compaction.lag.ms"),
        doc="The longest a message may stay uncompacted.",
    ),
    ConfigDef(
        "max.message.bytes",
        "int",
        lambda c: str(c.message_max_bytes),
        minimum=0,
        synonyms=_same("message.max.bytes"),
        doc="The largest record batch the topic accepts, in bytes.",
    ),
    ConfigDef(
        "message.timestamp.type",
        "enum",
        lambda c: c.log_message_timestamp_type,
        choices=("CreateTime", "LogAppendTime"),
        synonyms=_same("log.message.timestamp.type"),
        doc="Keep the producer's timestamp (CreateTime) or stamp the append time.",
    ),
    ConfigDef(
        "message.timestamp.before.max.ms",
        "long",
        _fixed(LONG_MAX),
        minimum=0,
        synonyms=_same("log.message.timestamp.before.max.ms"),
        doc="How far a CreateTime timestamp may lie behind the broker's clock.",
    ),
    ConfigDef(
        "message.timestamp.after.max.ms",
        "long",
        _fixed(LONG_MAX),
        minimum=0,
        synonyms=_same("log.message.timestamp.after.max.ms"),
        doc="How far a CreateTime timestamp may lie ahead of the broker's clock.",
    ),
    ConfigDef(
        "min.cleanable.dirty.ratio",
        "double",
        _fixed(0.5),
        minimum=0,
        maximum=1,
        synonyms=_same("log.cleaner.min.cleanable.ratio"),
        doc="The share of uncompacted log that makes the log eligible for compaction.",
    ),
    ConfigDef(
        "min.compaction.lag.ms",
        "long",
        _fixed(0),
        minimum=0,
        synonyms=_same("log.cleaner.min.compaction.lag.ms"),
        doc="The shortest time a message stays uncompacted.",
    ),
    ConfigDef(
        "min.insync.replicas",
        "int",
        _fixed(1),
        minimum=1,
        synonyms=_same("min.insync.replicas"),
        doc="In-sync replicas an acks=all produce needs.",
    ),
    ConfigDef(
        "preallocate",
        "bool",
        _fixed("false"),
        synonyms=_same("log.preallocate"),
        doc="Preallocate segment files on disk.",
    ),
    ConfigDef(
        "retention.bytes",
        "long",
        _fixed(-1),
        synonyms=_same("log.retention.bytes"),
        doc="Largest size of a partition before old segments go; -1 for no limit.",
    ),
    ConfigDef(
        "retention.ms",
        "long",
        _fixed(604_800_000),
        minimum=-1,
        synonyms=(
            ("log.retention.ms", 1),
            ("log.retention.minutes", 60_000),
            ("log.retention.hours", HOUR_MS),
        ),
        doc="How long segments are kept before they are deleted; -1 for no limit.",
    ),
    ConfigDef(
        "segment.bytes",
        "int",
        lambda c: str(c.log_segment_bytes),
        minimum=14,
        synonyms=_same("log.segment.bytes"),
        doc="Size at which the active segment is rolled.",
    ),
    ConfigDef(
        "segment.index.bytes",
        "int",
        lambda c: str(c.log_index_size_max_bytes),
        4,
        synonyms=_same("log.index.size.max.bytes"),
        doc="Size of each segment's offset index file.",
    ),
    ConfigDef(
        "segment.jitter.ms",
        "long",
        _fixed(0),
        minimum=0,
        synonyms=(("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", HOUR_MS)),
        doc="Random jitter subtracted from segment.ms.",
    ),
    ConfigDef(
        "segment.ms",
        "long",
        lambda c: str(c.log_roll_effective_ms),
        minimum=1,
        synonyms=(("log.roll.ms", 1), ("log.roll.hours", HOUR_MS)),
        doc="Age at which the active segment is rolled even when not full.",
    ),
    ConfigDef(
        "unclean.leader.election.enable",
        "bool",
        _fixed("false"),
        synonyms=_same("unclean.leader.election.enable"),
        doc="Whether a replica outside the ISR may become leader.",
    ),
]
_DEFS += [
    ConfigDef(
        "compression.gzip.level",
        "int",
        _fixed(-1),
        synonyms=_same("compression.gzip.level"),
        doc="The gzip level batches are re-compressed with (compression.type gzip).",
        extra_check=check_gzip_level,
    ),
    ConfigDef(
        "compression.lz4.level",
        "int",
        _fixed(9),
        minimum=1,
        maximum=17,
        synonyms=_same("compression.lz4.level"),
        doc="The lz4 level batches are re-compressed with (compression.type lz4).",
    ),
    ConfigDef(
        "compression.zstd.level",
        "int",
        _fixed(3),
        minimum=-131072,
        maximum=22,
        synonyms=_same("compression.zstd.level"),
        doc="The zstd level batches are re-compressed with (compression.type zstd).",
    ),
    ConfigDef(
        "leader.replication.throttled.replicas",
        "list",
        _fixed(""),
        doc="Replicas (partition:broker, or *) whose replication the leader throttles to "
        "leader.replication.throttled.rate.",
        extra_check=_throttled_replicas,
    ),
    ConfigDef(
        "follower.replication.throttled.replicas",
        "list",
        _fixed(""),
        doc="Replicas (partition:broker, or *) whose fetching the follower throttles to "
        "follower.replication.throttled.rate.",
        extra_check=_throttled_replicas,
    ),
    # Tiered storage: accepted as Kafka accepts them with tiered storage disabled (the
    # local retention settings have no effect then); turning it on is refused.
    ConfigDef(
        "local.retention.bytes",
        "long",
        _fixed(-2),
        minimum=-2,
        synonyms=_same("log.local.retention.bytes"),
        doc="Local size limit when tiered storage is on; -2 means retention.bytes.",
    ),
    ConfigDef(
        "local.retention.ms",
        "long",
        _fixed(-2),
        minimum=-2,
        synonyms=_same("log.local.retention.ms"),
        doc="Local time limit when tiered storage is on; -2 means retention.ms.",
    ),
    ConfigDef(
        "remote.log.copy.disable",
        "bool",
        _fixed("false"),
        doc="Stop copying segments to tiered storage (no tiered storage here).",
    ),
    ConfigDef(
        "remote.log.delete.on.disable",
        "bool",
        _fixed("false"),
        doc="Delete tiered data when tiered storage is turned off (no tiered storage here).",
    ),
    ConfigDef(
        "remote.storage.enable",
        "bool",
        _fixed("false"),
        doc="Tiered storage for this topic; refused: the broker has none.",
        extra_check=_no_tiered_storage,
    ),
]
TOPIC_CONFIGS: Mapping[str, ConfigDef] = {d.name: d for d in _DEFS}


class InvalidConfigError(ValueError):
    """An unknown topic config name or a bad value (Kafka's INVALID_CONFIG)."""


class ValueSpec(Protocol):
    """What value checks need from a config definition (topic or broker)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def minimum(self) -> float | None: ...
    @property
    def maximum(self) -> float | None: ...
    @property
    def choices(self) -> tuple[str, ...]: ...
    @property
    def extra_check(self) -> Callable[[str], None] | None: ...


def _check_number(definition: ValueSpec, value: str) -> None:
    try:
        number: float = float(value) if definition.kind == "double" else int(value)
    except ValueError:
        raise InvalidConfigError(
            f"Invalid value {value} for configuration {definition.name}: not a number"
        ) from None
    upper = INT_MAX if definition.kind == "int" else LONG_MAX
    if definition.maximum is not None:
        upper = min(upper, definition.maximum)  # type: ignore[assignment]
    if (definition.minimum is not None and number < definition.minimum) or number > upper:
        raise InvalidConfigError(
            f"Invalid value {value} for configuration {definition.name}: out of range"
        )


def check_value(definition: ValueSpec, value: str) -> None:
    """Raises InvalidConfigError unless `value` has the definition's type and range."""
    name = definition.name
    if definition.kind in ("int", "long", "double"):
        _check_number(definition, value)
    elif definition.kind == "bool" and value.lower() not in ("true", "false"):
        raise InvalidConfigError(f"Invalid value {value} for configuration {name}: not a bool")
    elif definition.kind == "enum" and value not in definition.choices:
        raise InvalidConfigError(f"Invalid value {value} for configuration {name}")
    elif definition.kind == "list" and definition.choices:
        items = [item.strip() for item in value.split(",")]
        if not items or any(item not in definition.choices for item in items):
            raise InvalidConfigError(f"Invalid value {value} for configuration {name}")
    if definition.extra_check is not None:
        definition.extra_check(value)


def validate_topic_config(name: str, value: str | None) -> None:
    """Raises InvalidConfigError unless `name` is a known topic config and `value` fits."""
    definition = TOPIC_CONFIGS.get(name)
    if definition is None:
        raise InvalidConfigError(f"Unknown topic config name: {name}")
    if value is None:
        raise InvalidConfigError(f"Null value not supported for topic config {name}")
    check_value(definition, value)


def _scaled(definition: ConfigDef, value: str, factor: int) -> str | None:
    """A broker synonym's value in the topic config's unit; None when it does not parse."""
    if definition.kind not in ("int", "long"):
        return value.strip()
    try:
        number = int(value)
    except ValueError:
        return None
    return "-1" if number < 0 and factor > 1 else str(number * factor)


def topic_default(
    definition: ConfigDef, broker: BrokerConfig, dynamic: Mapping[str, str] | None = None
) -> tuple[str, str | None]:
    """(value, broker property it comes from or None) for a topic config left unset.

    Synonyms are tried in precedence order, each dynamic first, then as given at startup,
    as Kafka does (so a static log.retention.ms beats a dynamic log.retention.hours)."""
    for synonym, factor in definition.synonyms:
        raw = (dynamic or {}).get(synonym)
        if raw is None:
            raw = property_value(broker, synonym)
        value = None if raw is None else _scaled(definition, raw, factor)
        if value is not None:
            return value, synonym
    return definition.default(broker), None


def effective_topic_config(
    overrides: Mapping[str, str],
    broker: BrokerConfig,
    dynamic: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every topic config name with its value: the override, else the broker's default
    (`dynamic`: the broker properties set through the configs APIs)."""
    return {
        name: overrides[name] if name in overrides else topic_default(d, broker, dynamic)[0]
        for name, d in TOPIC_CONFIGS.items()
    }


def log_config(effective: Mapping[str, str]) -> LogConfig:
    """The storage settings a topic's effective config asks for."""
    return LogConfig(
        segment_bytes=int(effective["segment.bytes"]),
        segment_ms=int(effective["segment.ms"]),
        segment_index_bytes=int(effective["segment.index.bytes"]),
        index_interval_bytes=int(effective["index.interval.bytes"]),
        flush_messages=int(effective["flush.messages"]),
        flush_ms=int(effective["flush.ms"]),
        message_timestamp_type=cast(TimestampType, effective["message.timestamp.type"]),
        max_message_bytes=int(effective["max.message.bytes"]),
        retention_ms=int(effective["retention.ms"]),
        retention_bytes=int(effective["retention.bytes"]),
        cleanup_policy=effective["cleanup.policy"],
        file_delete_delay_ms=int(effective["file.delete.delay.ms"]),
        delete_retention_ms=int(effective["delete.retention.ms"]),
        min_cleanable_dirty_ratio=float(effective["min.cleanable.dirty.ratio"]),
        min_compaction_lag_ms=int(effective["min.compaction.lag.ms"]),
        max_compaction_lag_ms=int(effective["max.compaction.lag.ms"]),
    )


CODECS = {"uncompressed": NONE, "gzip": GZIP, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}


@dataclass(frozen=True, slots=True)
class ProducePolicy:
    """What produce must check or change in a topic's batches beyond the header checks."""

    compression: int | None = None  # codec to store batches in; None keeps the producer's
    compression_level: int | None = None  # its level (compression.<codec>.level)
    timestamp_before_max_ms: int = LONG_MAX
    timestamp_after_max_ms: int = LONG_MAX

    @property
    def is_default(self) -> bool:
        """True when batches are stored as sent (the path that never decodes records)."""
        return self == DEFAULT_PRODUCE_POLICY


DEFAULT_PRODUCE_POLICY = ProducePolicy()


def produce_policy(effective: Mapping[str, str]) -> ProducePolicy:
    """The produce-time rules of a topic: `compression.type`, and for CreateTime topics
    `message.timestamp.before.max.ms`/`message.timestamp.after.max.ms`."""
    create_time = effective["message.timestamp.type"] == "CreateTime"
    codec_name = effective["compression.type"]
    level = effective.get(f"compression.{codec_name}.level")
    return ProducePolicy(
        compression=CODECS.get(codec_name),
        compression_level=None if level is None else int(level),
        timestamp_before_max_ms=(
            int(effective["message.timestamp.before.max.ms"]) if create_time else LONG_MAX
        ),
        timestamp_after_max_ms=(
            int(effective["message.timestamp.after.max.ms"]) if create_time else LONG_MAX
        ),
    )
