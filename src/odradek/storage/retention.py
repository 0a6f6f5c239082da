"""Retention: Kafka's deletion of whole old segments, by log start offset (moved by
DeleteRecords), by size (`retention.bytes`) and by time (`retention.ms`), and the delayed
removal of their files.

The rules are Kafka's `UnifiedLog.deleteOldSegments`: segments are considered oldest
first and deletion stops at the first one that does not qualify, so the log stays one
contiguous range. The active segment qualifies too; it is rolled first (a new empty
active segment always remains). Segments are never cut: retention works at segment
granularity, so a log holds up to one segment more than `retention.bytes`.

Deleted segments leave the log at once (reads and ListOffsets no longer see them) and
their files are renamed `<name>.deleted`, then removed after `file.delete.delay.ms` (at
once when it is 0). A restart removes any `.deleted` file left over.
"""

from __future__ import annotations

from collections.abc import Callable

from odradek.storage.errors import KafkaStorageError
from odradek.storage.log import Log
from odradek.storage.segment import LogSegment

DELETED_SUFFIX = ".deleted"

# (segment, the segment after it or None for the last one) -> may it be deleted?
SegmentPredicate = Callable[[LogSegment, LogSegment | None], bool]


def delete_old_segments(log: Log, now_ms: int) -> int:
    """Deletes the segments below the log start offset and, when cleanup.policy has
    `delete`, those past retention.bytes and retention.ms. Returns how many went."""
    deleted = delete_log_start_offset_breached(log, now_ms)
    if log.config.delete:
        deleted += _delete(log, _retention_size_predicate(log), now_ms)
        deleted += _delete(log, _retention_ms_predicate(log, now_ms), now_ms)
    return deleted


def delete_log_start_offset_breached(log: Log, now_ms: int) -> int:
    """Deletes the segments wholly below log_start_offset (after DeleteRecords)."""
    start = log.log_start_offset

    def below_start(_segment: LogSegment, after: LogSegment | None) -> bool:
        return after is not None and after.base_offset <= start

    return _delete(log, below_start, now_ms)


def _retention_size_predicate(log: Log) -> SegmentPredicate:
    """Oldest segments go while the log stays at or above retention.bytes without them."""
    limit = log.config.retention_bytes
    # (the sizes only when there is a limit: a stat per segment file otherwise wasted)
    excess = log.size_in_bytes - limit if limit >= 0 else 0
    if excess <= 0:
        return lambda _segment, _after: False

    def over_size(segment: LogSegment, _after: LogSegment | None) -> bool:
        nonlocal excess
        if excess - segment.size < 0:
            return False
        excess -= segment.size
        return True

    return over_size


def _retention_ms_predicate(log: Log, now_ms: int) -> SegmentPredicate:
    """A segment goes when its largest record timestamp is older than retention.ms.
    (A segment without timestamps is kept: Kafka falls back to the file's mtime.)"""
    retention_ms = log.config.retention_ms

    def too_old(segment: LogSegment, _after: LogSegment | None) -> bool:
        if retention_ms < 0:  # checked first: max_timestamp may load the segment's tail
            return False
        newest = segment.max_timestamp
        return newest >= 0 and now_ms - newest > retention_ms

    return too_old


def _deletable_count(log: Log, predicate: SegmentPredicate) -> int:
    """How many of the oldest segments qualify in a row (an empty last segment never)."""
    segments = log.segments
    count = 0
    for i, segment in enumerate(segments):
        after = segments[i + 1] if i + 1 < len(segments) else None
        if (after is None and segment.size == 0) or not predicate(segment, after):
            break
        count += 1
    return count


def _delete(log: Log, predicate: SegmentPredicate, now_ms: int) -> int:
    count = _deletable_count(log, predicate)
    if count == 0:
        return 0
    doomed = remove_oldest_segments(log, count)
    try:
        schedule_deletion(log, doomed, now_ms)
        # Producer snapshots below the new start describe deleted data (Kafka drops them).
        log.producer_state.delete_snapshots_below(log.segments[0].base_offset)
    except OSError as e:
        # The segments are out of the log already; files left behind are hidden by the
        # log start offset and removed on a later pass or at the next start.
        raise KafkaStorageError(f"deleting segments of {log.path} failed: {e}") from e
    return len(doomed)


def remove_oldest_segments(log: Log, count: int) -> list[LogSegment]:
    """Takes the `count` oldest segments out of the log and moves log_start_offset to
    the new first one. When all would go, a new active segment is rolled first (as
    Kafka does); an empty active segment always stays. The caller deletes the files."""
    if log.offline:
        raise KafkaStorageError(f"log {log.path} is offline after a disk failure")
    if count >= len(log.segments):
        log.roll()
    segments = log.segments
    doomed = segments[: min(count, len(segments) - 1)]
    if doomed:
        log.replace_segment_list(segments[len(doomed) :])
        log.maybe_increment_log_start_offset(segments[len(doomed)].base_offset)
    return doomed


def schedule_deletion(log: Log, segments: list[LogSegment], now_ms: int) -> None:
    """Renames the files of segments already out of the log to `.deleted` and removes
    them after file.delete.delay.ms (at once when it is 0). Raises OSError."""
    for segment in segments:
        segment.change_suffix(DELETED_SUFFIX)
        log.files_to_delete.append((now_ms + log.config.file_delete_delay_ms, segment))
    delete_due_files(log, now_ms)


def delete_due_files(log: Log, now_ms: int) -> int:
    """Removes the `.deleted` files whose file.delete.delay.ms has passed."""
    due = [entry for entry in log.files_to_delete if entry[0] <= now_ms]
    if not due:
        return 0
    log.files_to_delete = [entry for entry in log.files_to_delete if entry[0] > now_ms]
    for _, segment in due:
        segment.delete()
    return len(due)
