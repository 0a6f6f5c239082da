"""Per-topic configuration: Kafka's topic config names, types, defaults and validation.

A topic stores only the values set on it; everything else falls back to the broker
default (for the names that have a broker synonym) or Kafka's fixed default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from odradek.config import LONG_MAX, BrokerConfig
from odradek.storage.log_config import LogConfig, TimestampType

INT_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ConfigDef:
    name: str
    kind: str  # "int", "long", "double", "bool", "enum", "list"
    default: Callable[[BrokerConfig], str]
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()


def _fixed(value: object) -> Callable[[BrokerConfig], str]:
    return lambda _config: str(value)


_DEFS = [
    ConfigDef("cleanup.policy", "list", _fixed("delete"), choices=("delete", "compact")),
    ConfigDef(
        "compression.type",
        "enum",
        _fixed("producer"),
        choices=("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
    ),
    ConfigDef("delete.retention.ms", "long", _fixed(86_400_000), minimum=0),
    ConfigDef("file.delete.delay.ms", "long", _fixed(60_000), minimum=0),
    ConfigDef("flush.messages", "long", lambda c: str(c.log_flush_interval_messages), minimum=1),
    ConfigDef("flush.ms", "long", lambda c: str(c.flush_ms), minimum=0),
    ConfigDef("index.interval.bytes", "int", lambda c: str(c.log_index_interval_bytes), 0),
    ConfigDef("max.compaction.lag.ms", "long", _fixed(LONG_MAX), minimum=1),
    ConfigDef("max.message.bytes", "int", lambda c: str(c.message_max_bytes), minimum=0),
    ConfigDef(
        "message.timestamp.type",
        "enum",
        lambda c: c.log_message_timestamp_type,
        choices=("CreateTime", "LogAppendTime"),
    ),
    ConfigDef("message.timestamp.before.max.ms", "long", _fixed(LONG_MAX), minimum=0),
    ConfigDef("message.timestamp.after.max.ms", "long", _fixed(LONG_MAX), minimum=0),
    ConfigDef("min.cleanable.dirty.ratio", "double", _fixed(0.5), minimum=0, maximum=1),
    ConfigDef("min.compaction.lag.ms", "long", _fixed(0), minimum=0),
    ConfigDef("min.insync.replicas", "int", _fixed(1), minimum=1),
    ConfigDef("preallocate", "bool", _fixed("false")),
    ConfigDef("retention.bytes", "long", _fixed(-1)),
    ConfigDef("retention.ms", "long", _fixed(604_800_000), minimum=-1),
    ConfigDef("segment.bytes", "int", lambda c: str(c.log_segment_bytes), minimum=14),
    ConfigDef("segment.index.bytes", "int", lambda c: str(c.log_index_size_max_bytes), 4),
    ConfigDef("segment.jitter.ms", "long", _fixed(0), minimum=0),
    ConfigDef("segment.ms", "long", lambda c: str(c.log_roll_effective_ms), minimum=1),
    ConfigDef("unclean.leader.election.enable", "bool", _fixed("false")),
]
TOPIC_CONFIGS: Mapping[str, ConfigDef] = {d.name: d for d in _DEFS}


class InvalidConfigError(ValueError):
    """An unknown topic config name or a bad value (Kafka's INVALID_CONFIG)."""


def _check_number(definition: ConfigDef, value: str) -> None:
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


def validate_topic_config(name: str, value: str | None) -> None:
    """Raises InvalidConfigError unless `name` is a known topic config and `value` fits."""
    definition = TOPIC_CONFIGS.get(name)
    if definition is None:
        raise InvalidConfigError(f"Unknown topic config name: {name}")
    if value is None:
        raise InvalidConfigError(f"Null value not supported for topic config {name}")
    if definition.kind in ("int", "long", "double"):
        _check_number(definition, value)
    elif definition.kind == "bool" and value.lower() not in ("true", "false"):
        raise InvalidConfigError(f"Invalid value {value} for configuration {name}: not a bool")
    elif definition.kind == "enum" and value not in definition.choices:
        raise InvalidConfigError(f"Invalid value {value} for configuration {name}")
    elif definition.kind == "list":
        items = [item.strip() for item in value.split(",")]
        if not items or any(item not in definition.choices for item in items):
            raise InvalidConfigError(f"Invalid value {value} for configuration {name}")


def effective_topic_config(overrides: Mapping[str, str], broker: BrokerConfig) -> dict[str, str]:
    """Every topic config name with its value: the override, else the default."""
    return {name: overrides.get(name, d.default(broker)) for name, d in TOPIC_CONFIGS.items()}


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
    )
