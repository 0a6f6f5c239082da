"""The log cleaner: Kafka's compaction of logs whose cleanup.policy has `compact`.

A pass over one log (Kafka's `Cleaner.doClean`):
1. Pick the log: the highest dirty ratio (dirty bytes / (clean + dirty) of the inactive
   segments) above min.cleanable.dirty.ratio, or one whose oldest dirty record waited
   longer than max.compaction.lag.ms; failing that, one whose kept tombstones' delete
   horizon has passed. The dirty section starts at the offset in
   `cleaner-offset-checkpoint` and ends before the active segment and before any segment
   younger than min.compaction.lag.ms.
2. Map each key of the dirty section to the offset of its latest record (whole segments,
   up to log.cleaner.dedupe.buffer.size / 24 keys, Kafka's per-entry cost).
3. Rewrite every segment from the log start to the end of the mapped range, in groups
   merged up to segment.bytes: records superseded by a later one for their key go
   (compaction.py); offsets never change. Records of aborted transactions go and are
   never mapped; markers go once their transaction is gone and delete.retention.ms has
   passed; each group's kept aborts are indexed in its copy (cleaned_txns.py). Segments
   from the one holding an open transaction's first offset on are never cleaned.
4. Swap each group's result in crash-safely: write `<base>.log.cleaned` (and indexes),
   fsync, rename to `.swap` (the commit point: recovery completes the swap, see
   log_loader.py), rename the group's other segments `.deleted`, then the `.swap` files
   to their final names. A crash before the commit leaves the old segments.
5. Store the end of the mapped range in `cleaner-offset-checkpoint`.

Everything runs on the event loop, which owns the logs, in steps of about
`step_bytes` read (`run_step`), so one big log never stalls requests; a step checks that
the segments it works on are still in the log (retention may have removed them) and
abandons the pass otherwise.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Generator
from dataclasses import dataclass

from odradek.clock import Clock
from odradek.protocol.batch import BatchHeader, CorruptBatchError, read_header
from odradek.protocol.control import parse_marker
from odradek.protocol.records import decode_batch
from odradek.storage.checkpoint import read_offsets, write_offsets
from odradek.storage.cleaned_txns import CleanedTransactions
from odradek.storage.compaction import (
    CleanableRange,
    cleanable_range,
    filter_batch,
    group_segments,
)
from odradek.storage.errors import StorageError
from odradek.storage.fs import FileSystem
from odradek.storage.log import Log
from odradek.storage.log_loader import SWAP_SUFFIX
from odradek.storage.manager import LogManager
from odradek.storage.retention import schedule_deletion
from odradek.storage.segment import LogSegment

CLEANED_SUFFIX = ".cleaned"
CLEANER_OFFSET_CHECKPOINT = "cleaner-offset-checkpoint"
MAP_ENTRY_BYTES = 24  # Kafka's cost per key: 16-byte MD5 + 8-byte offset

logger = logging.getLogger("odradek.cleaner")
TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class CleanerConfig:
    """log.cleaner.* broker settings."""

    enable: bool = True
    backoff_ms: int = 15_000
    dedupe_buffer_size: int = 128 << 20
    step_bytes: int = 1 << 20  # bytes read per run_step: bounds one event loop turn

    @property
    def max_map_entries(self) -> int:
        return max(1, int(self.dedupe_buffer_size * 0.9) // MAP_ENTRY_BYTES)


@dataclass(slots=True)
class CleanerStats:
    passes: int = 0
    aborted: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    records_removed: int = 0
    segments_swapped: int = 0


class _Abandoned(Exception):
    """The log changed under a pass (segments deleted, log gone or offline)."""


class LogCleaner:
    """Compacts the logs of one LogManager; driven by `run_step` from the broker's loop."""

    def __init__(
        self, fs: FileSystem, manager: LogManager, clock: Clock, config: CleanerConfig
    ) -> None:
        self._fs = fs
        self._manager = manager
        self._clock = clock
        self.config = config
        self.stats = CleanerStats()
        self._checkpoints: dict[str, dict[TopicPartition, int]] = {}
        self._earliest_horizon: dict[TopicPartition, int] = {}  # of kept tombstones
        self._uncleanable: set[TopicPartition] = set()  # failed once: skipped until restart
        self._pass: Generator[int, None, None] | None = None
        self._pass_log: Log | None = None
        self._needed: list[LogSegment] = []  # segments the running pass still reads

    # -- driving -----------------------------------------------------------------------

    def run_step(self) -> bool:
        """Does about step_bytes of cleaning. True while there may be more to do now."""
        if self._pass is None:
            target = self.grab_filthiest_log()
            if target is None:
                return False
            self._pass_log = target.log
            self._pass = self._clean(target)
        budget = self.config.step_bytes
        try:
            self._check_still_valid()
            while budget > 0:
                budget -= next(self._pass)
        except StopIteration:
            self._end_pass()
        except _Abandoned:
            self.stats.aborted += 1
            self._end_pass()
        except (OSError, StorageError, CorruptBatchError) as e:
            log = self._pass_log
            assert log is not None
            logger.warning("cleaning %s failed, skipped until restart: %s", log.path, e)
            self._uncleanable.add((log.topic, log.partition))
            self._end_pass()
        return True

    def clean_all(self, max_steps: int = 100_000) -> None:
        """Runs steps until nothing is cleanable (tests, shutdown-free tools)."""
        for _ in range(max_steps):
            if not self.run_step():
                return
        raise RuntimeError("log cleaner did not settle")

    def _end_pass(self) -> None:
        if self._pass is not None:
            self._pass.close()  # runs the pass's cleanup (removes a half-written .cleaned)
        self._pass, self._pass_log, self._needed = None, None, []

    def _check_still_valid(self) -> None:
        log = self._pass_log
        assert log is not None
        if log.offline or self._manager.get_log(log.topic, log.partition) is not log:
            raise _Abandoned
        live = {id(s) for s in log.segments[:-1]}
        if not all(id(s) in live for s in self._needed):
            raise _Abandoned

    # -- choosing a log ----------------------------------------------------------------

    def grab_filthiest_log(self) -> CleanableRange | None:
        """Kafka's choice: the dirtiest log over its ratio (or past max.compaction.lag.ms),
        else a log whose kept tombstones may now go."""
        now = self._clock.time_ms()
        ranges = [self.cleanable_range(log, now) for log in self._candidates()]
        dirty = [
            r
            for r in ranges
            if r.dirty_bytes > 0
            and (r.lag_exceeded or r.ratio > r.log.config.min_cleanable_dirty_ratio)
        ]
        if dirty:
            return max(dirty, key=lambda r: r.ratio)
        for r in ranges:
            horizon = self._earliest_horizon.get((r.log.topic, r.log.partition))
            if horizon is not None and horizon <= now:
                return r
        return None

    def _candidates(self) -> list[Log]:
        return [
            log
            for log in self._manager.logs()
            if log.config.compact
            and not log.offline
            and (log.topic, log.partition) not in self._uncleanable
        ]

    def cleanable_range(self, log: Log, now_ms: int) -> CleanableRange:
        return cleanable_range(log, self._checkpoint(log), now_ms)

    # -- one pass ----------------------------------------------------------------------

    def _clean(self, target: CleanableRange) -> Generator[int, None, None]:
        log = target.log
        now = self._clock.time_ms()  # one time per pass, as Kafka's cleaner
        offset_map: dict[bytes, int] = {}
        end = yield from self._build_offset_map(target, offset_map)
        # Never a segment holding an open transaction (its outcome is not known yet).
        stable = log.first_unstable_offset
        to_clean = [
            s
            for s in log.segments[:-1]
            if s.base_offset < end and (stable is None or s.next_offset <= stable)
        ]
        self._needed = list(to_clean)
        horizons: list[int] = []
        for group in group_segments(to_clean, log.config):
            yield from self._clean_group(log, group, offset_map, now, horizons)
            del self._needed[: len(group)]
        key = (log.topic, log.partition)
        self._earliest_horizon.pop(key, None)
        if horizons:
            self._earliest_horizon[key] = min(horizons)
        self._set_checkpoint(log, end)
        self.stats.passes += 1

    def _build_offset_map(
        self, target: CleanableRange, offset_map: dict[bytes, int]
    ) -> Generator[int, None, int]:
        """Maps keys to their latest offset over whole dirty segments (as many as fit);
        returns the offset the mapped range ends at (the next segment's base offset)."""
        log = target.log
        segments = log.segments
        end = target.first_dirty
        self._needed = [s for s in segments[:-1] if s.base_offset < target.first_uncleanable]
        # Records of aborted transactions never supersede anything (Kafka's rule too).
        txns = CleanedTransactions(log.collect_aborted(end, target.first_uncleanable))
        for segment, after in itertools.pairwise(segments):
            if after.base_offset <= target.first_dirty:
                continue
            if segment.base_offset >= target.first_uncleanable:
                break
            if len(offset_map) >= self.config.max_map_entries:
                break  # the rest waits for the next pass
            for position, header in segment.batches():
                self.stats.bytes_read += header.size
                if header.is_control:
                    if header.producer_id >= 0:
                        batch = segment.read_batch(position, header)
                        txns.on_control(header, parse_marker(batch, header))
                elif not txns.on_batch(header) and header.last_offset >= target.first_dirty:
                    batch = segment.read_batch(position, header)
                    for record in decode_batch(batch)[1]:
                        if record.key is not None and record.offset >= target.first_dirty:
                            offset_map[record.key] = record.offset
                yield header.size
            end = after.base_offset
        return end

    def _clean_group(
        self,
        log: Log,
        group: list[LogSegment],
        offset_map: dict[bytes, int],
        now: int,
        horizons: list[int],
    ) -> Generator[int, None, None]:
        """Writes the compacted copy of `group` as `.cleaned` and swaps it in, unless
        nothing changed (one segment, every batch kept as it was)."""
        cleaned = LogSegment.create(
            self._fs,
            log.path,
            group[0].base_offset,
            index_interval_bytes=log.config.index_interval_bytes,
            max_index_size=log.config.segment_index_bytes,
            suffix=CLEANED_SUFFIX,
        )
        last_of_producer = _last_batches(log)
        txns = CleanedTransactions(
            log.collect_aborted(group[0].base_offset, group[-1].next_offset), cleaned.txn_index
        )
        changed = len(group) > 1
        try:
            for segment in group:
                for position, header in segment.batches():
                    batch = segment.read_batch(position, header)
                    if header.is_control:
                        discard = txns.on_control(header, parse_marker(batch, header))
                    else:
                        discard = txns.on_batch(header)
                    result = filter_batch(
                        batch,
                        offset_map,
                        now,
                        log.config.delete_retention_ms,
                        keep_empty=_is_last(header, last_of_producer),
                        discard=discard,
                    )
                    changed |= result.changed
                    self.stats.records_removed += result.removed
                    self.stats.bytes_read += header.size
                    if result.horizon is not None:
                        horizons.append(result.horizon)
                    if result.data is not None:
                        cleaned.append(result.data, read_header(result.data), now)
                        self.stats.bytes_written += len(result.data)
                    yield header.size
        except BaseException:
            cleaned.delete()
            raise
        if not changed:
            cleaned.delete()
            return
        self._swap(log, cleaned, group, now)

    def _swap(self, log: Log, cleaned: LogSegment, group: list[LogSegment], now: int) -> None:
        """Replaces `group` by `cleaned`; the order keeps every crash point recoverable."""
        try:
            cleaned.on_become_inactive()  # the last time index entry, fsync of all three
            self._fs.fsync_dir(log.path)
        except OSError:
            cleaned.delete()
            raise
        try:
            cleaned.change_suffix(SWAP_SUFFIX)  # committed: a restart finishes the swap
            self._fs.fsync_dir(log.path)
            group[0].close()
            schedule_deletion(log, group[1:], now)
            cleaned.change_suffix("")
            self._fs.fsync_dir(log.path)
        except OSError as e:
            raise log.take_offline(e) from e
        replace_segments(log, cleaned, group)
        self.stats.segments_swapped += len(group)

    # -- cleaner-offset-checkpoint -----------------------------------------------------

    def _log_dir(self, log: Log) -> str:
        return self._manager.log_dir_of(log.topic, log.partition) or os.path.dirname(log.path)

    def _dir_checkpoints(self, log_dir: str) -> dict[TopicPartition, int]:
        if log_dir not in self._checkpoints:
            path = os.path.join(log_dir, CLEANER_OFFSET_CHECKPOINT)
            self._checkpoints[log_dir] = read_offsets(self._fs, path)
        return self._checkpoints[log_dir]

    def _checkpoint(self, log: Log) -> int | None:
        return self._dir_checkpoints(self._log_dir(log)).get((log.topic, log.partition))

    def _set_checkpoint(self, log: Log, offset: int) -> None:
        log_dir = self._log_dir(log)
        entries = self._dir_checkpoints(log_dir)
        entries[(log.topic, log.partition)] = offset
        live = {(lg.topic, lg.partition) for lg in self._manager.logs()}
        for gone in [key for key in entries if key not in live]:
            del entries[gone]
        write_offsets(self._fs, os.path.join(log_dir, CLEANER_OFFSET_CHECKPOINT), entries)


def holds_segments(log: Log, old: list[LogSegment]) -> bool:
    """Whether `old` are still consecutive inactive segments of `log` (checked before
    swapping, as retention may have deleted some meanwhile)."""
    segments = log.segments
    first = next((i for i, s in enumerate(segments) if s is old[0]), -1)
    if first < 0 or first + len(old) >= len(segments):
        return False
    return all(a is b for a, b in zip(segments[first:], old, strict=False))


def replace_segments(log: Log, new: LogSegment, old: list[LogSegment]) -> None:
    """Puts `new`, the compacted copy of `old`, in their place (in memory: the files
    are renamed first)."""
    if not holds_segments(log, old):
        raise ValueError(f"segments to replace are no longer in {log.path}")
    segments = log.segments
    first = segments.index(old[0])
    segments[first : first + len(old)] = [new]
    log.replace_segment_list(segments)


# producer id -> (offset of its last data batch, None when a marker came last; its epoch)
_LastBatches = dict[int, tuple[int | None, int]]


def _last_batches(log: Log) -> _LastBatches:
    """Kafka keeps each live producer's last batch (emptied if need be), so its state
    survives cleaning: the last data batch, or the markers of its epoch without one."""
    return {
        pid: (entry.batches[-1].last_offset if entry.batches else None, entry.epoch)
        for pid, entry in log.producer_state.producers.items()
    }


def _is_last(header: BatchHeader, last: _LastBatches) -> bool:
    found = last.get(header.producer_id)
    if found is None:
        return False
    last_data, epoch = found
    if last_data is not None:
        return header.last_offset == last_data
    return header.is_control and header.producer_epoch == epoch
