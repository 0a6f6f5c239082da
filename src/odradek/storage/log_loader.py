"""Opening a partition directory: find the segments, clean up stray files, rebuild lost
indexes and, after an unclean shutdown, recover the segments from the recovery point on.

Work after a clean shutdown is one listdir, a size check per index file and a short scan
of the active segment's tail; after a crash it is proportional to the unflushed tail.
"""

from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass

from odradek.storage.checkpoint import LEADER_EPOCH_CHECKPOINT
from odradek.storage.fs import FileSystem
from odradek.storage.index import OffsetIndex, TimeIndex
from odradek.storage.leader_epoch import LeaderEpochCache
from odradek.storage.log_config import LogConfig
from odradek.storage.producer_state import ProducerStateManager
from odradek.storage.segment import INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, LogSegment

_SEGMENT_FILE = re.compile(r"^(\d{20})(\.log|\.index|\.timeindex)$")
# Left by an interrupted compaction (.cleaned), deletion (.deleted) or atomic write (.tmp):
# never live data, so they are removed.
_STRAY_SUFFIXES = (".cleaned", ".deleted", ".tmp")
SWAP_SUFFIX = ".swap"


@dataclass
class LoadedSegments:
    segments: list[LogSegment]
    truncated_bytes: int  # cut from torn or corrupt tails during recovery
    recovered_segments: int


def load_segments(
    fs: FileSystem,
    path: str,
    config: LogConfig,
    recovery_point: int,
    start_offset: int,
    *,
    clean_shutdown: bool,
) -> LoadedSegments:
    """Opens every segment of the directory at `path` (creating it when absent)."""
    fs.mkdir(path)
    swapped = _complete_swaps(fs, path)
    segments = [_segment(fs, path, base, config) for base in _segment_bases(fs, path)]
    recovered: set[int] = set()
    for segment in segments:
        if segment.base_offset in swapped or not _index_files_ok(fs, segment):
            segment.recover()
            recovered.add(segment.base_offset)
    segments = _drop_overlaps(segments, swapped)
    if not segments:
        segments = [_new_segment(fs, path, start_offset, config)]
    truncated = 0
    if not clean_shutdown:
        truncated = _recover_tail(segments, recovery_point, recovered)
    elif not segments[-1].indexes_sane():
        segments[-1].recover()
        recovered.add(segments[-1].base_offset)
    return LoadedSegments(segments, truncated, len(recovered))


def _segment(fs: FileSystem, path: str, base: int, config: LogConfig) -> LogSegment:
    return LogSegment(
        fs,
        path,
        base,
        index_interval_bytes=config.index_interval_bytes,
        max_index_size=config.segment_index_bytes,
    )


def _new_segment(fs: FileSystem, path: str, base: int, config: LogConfig) -> LogSegment:
    return LogSegment.create(
        fs,
        path,
        base,
        index_interval_bytes=config.index_interval_bytes,
        max_index_size=config.segment_index_bytes,
    )


def _segment_bases(fs: FileSystem, path: str) -> list[int]:
    """Base offsets of the .log files; index files without a .log are removed."""
    names = fs.listdir(path)
    bases: set[int] = set()
    orphans: list[str] = []
    for name in names:
        match = _SEGMENT_FILE.match(name)
        if match and match.group(2) == LOG_SUFFIX:
            bases.add(int(match.group(1)))
    for name in names:
        match = _SEGMENT_FILE.match(name)
        orphan_index = match is not None and int(match.group(1)) not in bases
        if orphan_index or name.endswith(_STRAY_SUFFIXES):
            orphans.append(name)
    for name in orphans:
        fs.remove(os.path.join(path, name))
    return sorted(bases)


def _complete_swaps(fs: FileSystem, path: str) -> set[int]:
    """A `.log.swap` holds a finished compaction result whose rename was interrupted:
    finish it (Kafka does the same). Its indexes are rebuilt, so index swaps go."""
    swapped: set[int] = set()
    for name in fs.listdir(path):
        if not name.endswith(SWAP_SUFFIX):
            continue
        full = os.path.join(path, name)
        match = _SEGMENT_FILE.match(name[: -len(SWAP_SUFFIX)])
        if match is None or match.group(2) != LOG_SUFFIX:
            fs.remove(full)
            continue
        stem = os.path.join(path, match.group(1))
        fs.rename(full, stem + LOG_SUFFIX)
        fs.remove(stem + INDEX_SUFFIX)
        fs.remove(stem + TIME_INDEX_SUFFIX)
        swapped.add(int(match.group(1)))
    return swapped


def _index_files_ok(fs: FileSystem, segment: LogSegment) -> bool:
    """Cheap checks that need no reading: both files exist with a whole number of
    entries, within segment.index.bytes."""
    for index in (segment.offset_index, segment.time_index):
        if not fs.exists(index.path):
            return False
        size = fs.file_size(index.path)
        entry = OffsetIndex.ENTRY.size if isinstance(index, OffsetIndex) else TimeIndex.ENTRY.size
        if size % entry or size // entry > index.max_entries:
            return False
    return True


def _drop_overlaps(segments: list[LogSegment], swapped: set[int]) -> list[LogSegment]:
    """Removes the segments a swapped-in (compacted) segment replaced."""
    kept: list[LogSegment] = []
    covered_until = -1
    for segment in segments:
        if segment.base_offset < covered_until:
            segment.delete()
            continue
        kept.append(segment)
        if segment.base_offset in swapped:
            covered_until = segment.next_offset
    return kept


def _recover_tail(segments: list[LogSegment], recovery_point: int, done: set[int]) -> int:
    """Recovers the segment holding the recovery point and every later one. Once a segment
    is cut, the later ones were written after a torn batch and are deleted."""
    bases = [s.base_offset for s in segments]
    start = max(0, bisect.bisect_right(bases, recovery_point) - 1)
    truncated = 0
    for i in range(start, len(segments)):
        cut = segments[i].recover()
        done.add(segments[i].base_offset)
        truncated += cut
        if cut:
            for later in segments[i + 1 :]:
                truncated += later.size
                later.delete()
            del segments[i + 1 :]
            break
    return truncated


def load_producer_state(
    fs: FileSystem, path: str, segments: list[LogSegment], start: int, end: int
) -> ProducerStateManager:
    """The newest producer snapshot, plus the batches written after it."""
    state = ProducerStateManager(fs, path)
    replay_from = state.load(start, end)
    for segment in segments:
        if segment.next_offset <= replay_from:
            continue
        state.replay(h for _, h in segment.batches() if h.base_offset >= replay_from)
    return state


def load_epochs(
    fs: FileSystem, path: str, segments: list[LogSegment], start: int, end: int
) -> LeaderEpochCache:
    """Reads leader-epoch-checkpoint, or rebuilds it from the batch headers if it is gone;
    then drops entries the log no longer holds."""
    checkpoint = os.path.join(path, LEADER_EPOCH_CHECKPOINT)
    if not fs.exists(checkpoint):
        cache = LeaderEpochCache(fs, checkpoint, [])
        for segment in segments:
            for _, header in segment.batches():
                cache.assign(header.partition_leader_epoch, header.base_offset)
        cache.flush()
    else:
        cache = LeaderEpochCache.load(fs, checkpoint)
    cache.truncate_from_end(end)
    cache.truncate_from_start(start)
    return cache
