"""Per-log configuration (Kafka's topic configs) and the results of appends and reads."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1

TimestampType = Literal["CreateTime", "LogAppendTime"]


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Kafka's topic-level log settings, with Kafka's defaults; dotted names map to fields
    (`segment.bytes` -> segment_bytes)."""

    segment_bytes: int = 1 << 30
    segment_ms: int = 7 * 24 * 3600 * 1000
    segment_index_bytes: int = 10 << 20
    index_interval_bytes: int = 4096
    flush_messages: int = LONG_MAX  # LONG_MAX: never fsync on a message count
    flush_ms: int = LONG_MAX  # LONG_MAX: never fsync on time
    message_timestamp_type: TimestampType = "CreateTime"
    max_message_bytes: int = 1048588
    retention_ms: int = 7 * 24 * 3600 * 1000  # -1: no time limit
    retention_bytes: int = -1  # -1: no size limit
    cleanup_policy: str = "delete"  # "delete", "compact" or "compact,delete"
    file_delete_delay_ms: int = 60000
    delete_retention_ms: int = 24 * 3600 * 1000
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = LONG_MAX

    @property
    def compact(self) -> bool:
        """Whether the log cleaner compacts this log (cleanup.policy has `compact`)."""
        return "compact" in _policies(self.cleanup_policy)

    @property
    def delete(self) -> bool:
        """Whether retention deletes old segments (cleanup.policy has `delete`)."""
        return "delete" in _policies(self.cleanup_policy)

    def with_properties(self, properties: Mapping[str, str]) -> LogConfig:
        """A copy with Kafka dotted properties applied; unknown names raise KeyError,
        malformed numbers ValueError."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, object] = {}
        for key, text in properties.items():
            name = key.replace(".", "_")
            if name not in fields:
                raise KeyError(f"unknown log config {key!r}")
            current = getattr(self, name)
            if isinstance(current, float):
                changes[name] = float(text)
            else:
                changes[name] = int(text) if isinstance(current, int) else text
        config = dataclasses.replace(self, **changes)  # type: ignore[arg-type]
        if config.message_timestamp_type not in ("CreateTime", "LogAppendTime"):
            raise ValueError(f"bad message.timestamp.type {config.message_timestamp_type!r}")
        return config


@functools.lru_cache(maxsize=16)  # few distinct values; `compact` is read per produce
def _policies(cleanup_policy: str) -> frozenset[str]:
    return frozenset(part.strip() for part in cleanup_policy.split(","))


# NamedTuples, not frozen dataclasses: one is built per append or read, and a frozen
# dataclass's __init__ costs a setattr call per field.
class AppendInfo(NamedTuple):
    """What an append did: offsets given, the LogAppendTime used (-1 for CreateTime)."""

    base_offset: int
    last_offset: int
    log_append_time_ms: int
    log_start_offset: int


class FetchDataInfo(NamedTuple):
    """Whole record batches read from the log, as stored."""

    records: bytes | memoryview  # a view of what was read when its tail was left off
    fetch_offset: int
