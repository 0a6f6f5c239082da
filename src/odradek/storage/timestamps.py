"""ListOffsets lookups of one log by timestamp: the special timestamps (earliest, latest,
max), and the first record at or after a given time via the time indexes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from odradek.protocol.records import max_timestamp_offset, offset_for_timestamp

if TYPE_CHECKING:
    from odradek.storage.log import Log

EARLIEST_TIMESTAMP = -2
LATEST_TIMESTAMP = -1
MAX_TIMESTAMP = -3


def fetch_offset_by_timestamp(log: Log, timestamp: int) -> tuple[int, int, int] | None:
    """(offset, timestamp, leader_epoch) of the first record whose timestamp >= the
    target; -2 earliest, -1 latest, -3 the record with the largest timestamp."""
    start = log.log_start_offset
    if timestamp == EARLIEST_TIMESTAMP:
        return start, -1, log.leader_epoch_cache.epoch_for_offset(start)
    if timestamp == LATEST_TIMESTAMP:
        return log.log_end_offset, -1, log.latest_epoch
    if timestamp == MAX_TIMESTAMP:
        return find_max_timestamp(log)
    for segment in log.segments:
        if segment.max_timestamp < timestamp:
            continue
        found = segment.find_by_timestamp(timestamp, start)
        if found is not None:
            batch = segment.read_batch(*found)
            hit = offset_for_timestamp(batch, timestamp, start)
            if hit is not None:
                return hit[0], hit[1], found[1].partition_leader_epoch
    return None


def find_max_timestamp(log: Log) -> tuple[int, int, int] | None:
    """(offset, timestamp, leader_epoch) of the first record with the largest timestamp
    (ListOffsets MAX_TIMESTAMP); None when the log is empty."""
    best = max(log.segments, key=lambda s: s.max_timestamp)  # first of equals
    if best.max_timestamp < 0:
        return None
    for position, header in best.batches():
        # (compaction may leave empty batches that keep their max timestamp)
        if header.max_timestamp == best.max_timestamp and header.records_count > 0:
            offset, ts = max_timestamp_offset(best.read_batch(position, header))
            return offset, ts, header.partition_leader_epoch
    return None
