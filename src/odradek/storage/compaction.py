"""Compaction's pieces: which part of a log a cleaning pass covers and how its segments
are grouped (Kafka's LogCleanerManager/groupSegmentsBySize), and the record-level
filtering of one batch (Kafka's `MemoryRecords.filterTo` as the cleaner uses it).

A batch keeps its base offset, last offset delta, partition leader epoch, producer id,
epoch and base sequence, attributes and compression codec; only the records the offset
map does not supersede remain, each with its own offset delta (so offsets never move).
A batch nothing was removed from is kept byte for byte. A batch left without records
disappears, unless it is the last batch of an idempotent producer still in the producer
state: then an empty batch (header only, count 0) keeps the producer's last sequence,
as Kafka does (`BatchRetention.RETAIN_EMPTY`).

Tombstones (null value) follow KIP-534: the first cleaning that keeps a tombstone stamps
its batch with a delete horizon (now + delete.retention.ms) in the base timestamp, marked
by attribute bit 0x40; a later cleaning after that horizon removes the tombstone.

Transactions (cleaned_txns.py decides which): a batch of an aborted transaction loses all
its records. A transaction marker that may go is stamped with a delete horizon the same
way, and removed by a cleaning after it (emptied instead, when it is its producer's last
batch). The dirty section ends before the segment holding the first offset of any open
transaction, so only finished transactions are ever cleaned (Kafka stops at the first
unstable offset too).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from odradek.protocol import crc
from odradek.protocol.batch import (
    COMPRESSION_MASK,
    CRC_START,
    HEADER,
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    CorruptBatchError,
)
from odradek.protocol.records import Record, compress, decode_batch, write_varint
from odradek.storage.log import Log
from odradek.storage.log_config import INT_MAX, LONG_MAX, LogConfig
from odradek.storage.segment import LogSegment

DELETE_HORIZON_BIT = 0x40
NO_TIMESTAMP = -1

# key -> offset of its latest record in the dirty section
OffsetMap = Mapping[bytes, int]


def delete_horizon(header: BatchHeader) -> int | None:
    """The batch's delete horizon (ms), or None when no cleaning has stamped it yet."""
    return header.base_timestamp if header.attributes & DELETE_HORIZON_BIT else None


@dataclass(frozen=True, slots=True)
class FilteredBatch:
    """What filtering did to one batch: the bytes to write (None: drop the batch)."""

    data: bytes | None
    changed: bool
    kept: list[Record]
    removed: int
    horizon: int | None  # the delete horizon of a kept batch holding tombstones


def should_retain(record: Record, offset_map: OffsetMap, horizon: int | None, now_ms: int) -> bool:
    """Kafka's rule: a record without a key is dropped (compacted topics need keys), a
    record with a newer one for its key goes, and a tombstone goes once its batch's
    delete horizon has passed."""
    if record.key is None:
        return False
    latest = offset_map.get(record.key)
    if latest is not None and record.offset < latest:
        return False
    return not (record.value is None and horizon is not None and horizon <= now_ms)


def filter_batch(
    batch: bytes,
    offset_map: OffsetMap,
    now_ms: int,
    delete_retention_ms: int,
    *,
    keep_empty: bool,
    discard: bool = False,
) -> FilteredBatch:
    """Filters one stored batch; `keep_empty` when it is a live producer's last batch.
    `discard`: a data batch of an aborted transaction (every record goes), or a marker
    that may go once its delete horizon passed (see cleaned_txns.py)."""
    header, records = decode_batch(batch)
    if header.is_control:
        return _filter_marker(
            batch, header, records, now_ms, delete_retention_ms, keep_empty, discard
        )
    horizon = delete_horizon(header)
    kept = [] if discard else [r for r in records if should_retain(r, offset_map, horizon, now_ms)]
    removed = len(records) - len(kept)
    has_tombstones = any(r.value is None for r in kept)
    stamp = horizon is None and has_tombstones
    if stamp:
        horizon = now_ms + delete_retention_ms
    kept_horizon = horizon if has_tombstones else None
    if not removed and not stamp:
        return FilteredBatch(batch, False, kept, 0, kept_horizon)
    if kept:
        data = rebuild_batch(header, kept, horizon)
    elif keep_empty:
        data = empty_batch(header)
    else:
        return FilteredBatch(None, True, kept, removed, None)
    return FilteredBatch(data, True, kept, removed, kept_horizon)


def _filter_marker(
    batch: bytes,
    header: BatchHeader,
    records: list[Record],
    now_ms: int,
    delete_retention_ms: int,
    keep_empty: bool,
    discardable: bool,
) -> FilteredBatch:
    """A control batch: kept as it is until it may go; then stamped with a delete
    horizon, and removed (or emptied, as its producer's last batch) after it."""
    if not discardable:
        return FilteredBatch(batch, False, records, 0, None)
    if not records:  # emptied before: only a producer's last batch stays
        return FilteredBatch(batch if keep_empty else None, not keep_empty, [], 0, None)
    horizon = delete_horizon(header)
    if horizon is None:
        horizon = now_ms + delete_retention_ms
        return FilteredBatch(rebuild_batch(header, records, horizon), True, records, 0, horizon)
    if horizon > now_ms:
        return FilteredBatch(batch, False, records, 0, horizon)
    data = empty_batch(header) if keep_empty else None
    return FilteredBatch(data, True, [], len(records), None)


def _encode_record(out: bytearray, record: Record, base_offset: int, base_ts: int) -> None:
    body = bytearray(b"\x00")  # record attributes: unused in v2
    write_varint(body, record.timestamp - base_ts)
    write_varint(body, record.offset - base_offset)
    for field in (record.key, record.value):
        if field is None:
            write_varint(body, -1)
        else:
            write_varint(body, len(field))
            body += field
    write_varint(body, len(record.headers))
    for key, value in record.headers:
        encoded = key.encode()
        write_varint(body, len(encoded))
        body += encoded
        if value is None:
            write_varint(body, -1)
        else:
            write_varint(body, len(value))
            body += value
    write_varint(out, len(body))
    out += body


def _with_crc(out: bytearray) -> bytes:
    struct.pack_into(">I", out, 17, crc.crc32c(memoryview(out)[CRC_START:]))
    return bytes(out)


def rebuild_batch(header: BatchHeader, records: Sequence[Record], horizon: int | None) -> bytes:
    """A batch like `header` holding only `records`, at their own offsets; with a
    delete horizon, the base timestamp carries it (record timestamps stay right)."""
    base_ts = horizon if horizon is not None else records[0].timestamp
    payload = bytearray()
    for record in records:
        _encode_record(payload, record, header.base_offset, base_ts)
    body = compress(header.compression, bytes(payload))
    attributes = header.attributes & ~DELETE_HORIZON_BIT
    if horizon is not None:
        attributes |= DELETE_HORIZON_BIT
    # LogAppendTime batches keep their append time; CreateTime ones their newest record's.
    max_ts = header.max_timestamp
    if not header.is_log_append_time:
        max_ts = max(r.timestamp for r in records)
    out = bytearray(_pack_header(header, len(body), attributes, base_ts, max_ts, len(records)))
    out += body
    return _with_crc(out)


def empty_batch(header: BatchHeader) -> bytes:
    """Kafka's empty batch: the header alone, keeping the offsets and producer fields."""
    attributes = header.attributes & ~(COMPRESSION_MASK | DELETE_HORIZON_BIT)
    packed = _pack_header(header, 0, attributes, NO_TIMESTAMP, header.max_timestamp, 0)
    return _with_crc(bytearray(packed))


def _pack_header(
    header: BatchHeader, body_size: int, attributes: int, base_ts: int, max_ts: int, count: int
) -> bytes:
    return HEADER.pack(
        header.base_offset,
        HEADER_SIZE - LOG_OVERHEAD + body_size,
        header.partition_leader_epoch,
        2,
        0,
        attributes,
        header.last_offset_delta,
        base_ts,
        max_ts,
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
        count,
    )


# -- planning: what a cleaning pass covers ------------------------------------------------


@dataclass(frozen=True, slots=True)
class CleanableRange:
    """A log and its dirty section [first_dirty, first_uncleanable) (Kafka's LogToClean)."""

    log: Log
    first_dirty: int
    first_uncleanable: int
    clean_bytes: int
    dirty_bytes: int
    lag_exceeded: bool  # max.compaction.lag.ms passed for the oldest dirty data

    @property
    def ratio(self) -> float:
        total = self.clean_bytes + self.dirty_bytes
        return self.dirty_bytes / total if total else 0.0


def cleanable_range(log: Log, checkpoint: int | None, now_ms: int) -> CleanableRange:
    """The dirty section of `log` (from the cleaner checkpoint, or the log start when it
    is missing or outside the log) and the byte counts behind its dirty ratio. It stops
    at the active segment and at the first segment younger than min.compaction.lag.ms."""
    segments = log.segments
    first_dirty = log.log_start_offset
    if checkpoint is not None and first_dirty <= checkpoint <= log.log_end_offset:
        first_dirty = checkpoint
    uncleanable = segments[-1].base_offset
    lag = log.config.min_compaction_lag_ms
    nexts = [s.base_offset for s in segments[1:]]
    dirty = [s for s, end in zip(segments, nexts, strict=False) if end > first_dirty]
    for segment in dirty:
        if lag > 0 and segment.max_timestamp > now_ms - lag:
            uncleanable = segment.base_offset  # too young, and so is all after it
            break
    uncleanable = max(first_dirty, uncleanable)
    unstable = log.first_unstable_offset
    if unstable is not None:  # an open transaction's segment and the later ones wait
        uncleanable = min(uncleanable, segments[log.segment_index(unstable)].base_offset)
    dirty = [s for s in dirty if s.base_offset < uncleanable]
    clean = [s for s in segments[:-1] if s.base_offset < first_dirty and s not in dirty]
    return CleanableRange(
        log,
        first_dirty,
        uncleanable,
        sum(s.size for s in clean),
        sum(s.size for s in dirty),
        _lag_exceeded(log, dirty, now_ms),
    )


def _lag_exceeded(log: Log, dirty: list[LogSegment], now_ms: int) -> bool:
    """max.compaction.lag.ms: whether the oldest dirty batch waited longer than that."""
    lag = log.config.max_compaction_lag_ms
    if lag >= LONG_MAX:
        return False
    firsts = [ts for ts in map(_first_batch_timestamp, dirty) if ts > 0]
    return bool(firsts) and min(firsts) < now_ms - lag


def _first_batch_timestamp(segment: LogSegment) -> int:
    for _, header in segment.batches():
        return header.max_timestamp
    return -1


def group_segments(segments: list[LogSegment], config: LogConfig) -> list[list[LogSegment]]:
    """Kafka's groupSegmentsBySize: consecutive segments merged while the group stays
    within segment.bytes, its indexes within segment.index.bytes, and its offsets within
    32-bit relative offsets."""
    max_entries = max(1, config.segment_index_bytes // 12)  # 12: the larger (time) entry
    groups: list[list[LogSegment]] = []
    i = 0
    while i < len(segments):
        group = [segments[i]]
        size, entries = segments[i].size, _index_entries(segments[i])
        i += 1
        while i < len(segments):
            candidate = segments[i]
            fits = size + candidate.size <= config.segment_bytes
            fits &= entries + _index_entries(candidate) <= max_entries
            fits &= candidate.next_offset - 1 - group[0].base_offset <= INT_MAX
            if not fits:
                break
            group.append(candidate)
            size += candidate.size
            entries += _index_entries(candidate)
            i += 1
        groups.append(group)
    return groups


def _index_entries(segment: LogSegment) -> int:
    return max(len(segment.offset_index), len(segment.time_index))


def all_records_keyed(batch: bytes) -> bool:
    """Kafka refuses a record without a key in a compacted topic (INVALID_RECORD); this
    decodes the batch, so produce calls it for compacted topics only. False too when
    the records do not decode."""
    try:
        return all(record.key is not None for record in decode_batch(batch)[1])
    except CorruptBatchError:
        return False
