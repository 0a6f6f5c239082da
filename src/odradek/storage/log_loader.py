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

from odradek.protocol.control import parse_marker
from odradek.storage.checkpoint import LEADER_EPOCH_CHECKPOINT
from odradek.storage.fs import FileSystem
from odradek.storage.index import OffsetIndex, TimeIndex
from odradek.storage.leader_epoch import LeaderEpochCache
from odradek.storage.log_config import LogConfig
from odradek.storage.producer_state import SNAPSHOT_SUFFIX, ProducerStateManager
from odradek.storage.segment import INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, LogSegment
from odradek.storage.txn_index import TXN_INDEX_SUFFIX

_SEGMENT_FILE = re.compile(r"^(\d{20})(\.log|\.index|\.timeindex|\.txnindex)$")
# Left by an interrupted compaction (.cleaned), deletion (.deleted) or atomic write (.tmp):
# never live data, so they are removed.
_STRAY_SUFFIXES = (".cleaned", ".deleted", ".tmp")
SWAP_SUFFIX = ".swap"


@dataclass
class LoadedSegments:
    segments: list[LogSegment]
    truncated_bytes: int  # cut from torn or corrupt tails during recovery
    recovered_segments: int
    # After a crash: the base offset of the first segment recovery scanned (the one
    # holding the recovery point); its aborted-transaction indexes and the later
    # segments' are rebuilt with the producer state.
    tail_from: int | None = None


@dataclass
class LoadedLog:
    """Everything a Log is built from."""

    segments: list[LogSegment]
    log_start_offset: int
    recovery_point: int
    # None after a clean shutdown: read on first use (see load_state)
    epochs: LeaderEpochCache | None
    producers: ProducerStateManager | None
    truncated_bytes: int
    recovered_segments: int
    newest_snapshot: int | None  # offset of the newest producer snapshot file, if any


def load_log(
    fs: FileSystem,
    path: str,
    config: LogConfig,
    recovery_point: int,
    log_start_offset: int,
    *,
    clean_shutdown: bool,
) -> LoadedLog:
    """Segments, offsets, leader epochs and producer state of the directory at `path`
    (created when absent). One listdir serves segments and snapshots alike."""
    names = fs.listdir(path) if fs.is_dir(path) else None
    if names is None:
        fs.mkdir(path)
        names = []
    loaded = load_segments(
        fs,
        path,
        config,
        recovery_point,
        log_start_offset,
        clean_shutdown=clean_shutdown,
        names=names,
    )
    segments = loaded.segments
    end = segments[-1].next_offset
    start = min(max(log_start_offset, segments[0].base_offset), end)
    epochs = producers = None
    if not clean_shutdown:
        # After a crash the epochs of the recovered tail are assigned again: a new epoch
        # reaches the checkpoint only with the flush that makes its records durable.
        epochs = load_epochs(fs, path, segments, start, end, min(recovery_point, end))
        producers = load_producer_state(
            fs, path, segments, start, end, rebuild_from=loaded.tail_from
        )
    snapshots = [n for n in names if n.endswith(SNAPSHOT_SUFFIX) and n[:20].isdigit()]
    return LoadedLog(
        segments,
        start,
        min(recovery_point, end),
        epochs,
        producers,
        loaded.truncated_bytes,
        loaded.recovered_segments,
        int(max(snapshots)[:20]) if snapshots else None,
    )


def load_state(
    fs: FileSystem, path: str, segments: list[LogSegment], start: int, end: int
) -> tuple[LeaderEpochCache, ProducerStateManager]:
    """The leader epochs and producer state of a log opened after a clean shutdown, read
    when first needed (most of 10,000 partitions may see no request for a while)."""
    epochs = load_epochs(fs, path, segments, start, end)
    return epochs, load_producer_state(fs, path, segments, start, end)


def load_segments(
    fs: FileSystem,
    path: str,
    config: LogConfig,
    recovery_point: int,
    start_offset: int,
    *,
    clean_shutdown: bool,
    names: list[str] | None = None,
) -> LoadedSegments:
    """Opens every segment of the directory at `path` (creating it when absent); `names`
    is its listing when the caller has one."""
    if names is None:
        fs.mkdir(path)
        names = fs.listdir(path)
    swapped = _complete_swaps(fs, path, names)
    if swapped:
        names = fs.listdir(path)
    segments = [_segment(fs, path, base, config) for base in _segment_bases(fs, path, names)]
    recovered: set[int] = set()
    listed = set(names)
    for segment in segments:
        if segment.base_offset in swapped or not _index_files_ok(fs, segment, listed):
            segment.recover()
            recovered.add(segment.base_offset)
    segments = _drop_overlaps(segments, swapped)
    if not segments:
        segments = [_new_segment(fs, path, start_offset, config)]
    truncated = 0
    tail_from = None
    if not clean_shutdown:
        truncated, tail_from = _recover_tail(segments, recovery_point, recovered)
    elif not segments[-1].indexes_sane():
        segments[-1].recover()
        recovered.add(segments[-1].base_offset)
    return LoadedSegments(segments, truncated, len(recovered), tail_from)


def _segment(fs: FileSystem, path: str, base: int, config: LogConfig) -> LogSegment:
    return LogSegment(
        fs,
        path,
        base,
        index_interval_bytes=config.index_interval_bytes,
        max_index_size=config.segment_index_bytes,
    )


def _new_segment(fs: FileSystem, path: str, base: int, config: LogConfig) -> LogSegment:
    segment = LogSegment.create(
        fs,
        path,
        base,
        index_interval_bytes=config.index_interval_bytes,
        max_index_size=config.segment_index_bytes,
    )
    # Both index files were just created empty: checking them would read them back.
    segment.offset_index.known_empty()
    segment.time_index.known_empty()
    return segment


def _segment_bases(fs: FileSystem, path: str, names: list[str]) -> list[int]:
    """Base offsets of the .log files; index files without a .log are removed."""
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


def _complete_swaps(fs: FileSystem, path: str, names: list[str]) -> set[int]:
    """A `.log.swap` holds a finished compaction result whose rename was interrupted:
    finish it (Kafka does the same). Its indexes are rebuilt, so index swaps go."""
    swapped: set[int] = set()
    for name in names:
        if not name.endswith(SWAP_SUFFIX):
            continue
        full = os.path.join(path, name)
        match = _SEGMENT_FILE.match(name[: -len(SWAP_SUFFIX)])
        if match is not None and match.group(2) == TXN_INDEX_SUFFIX:
            # Renamed before its .log (see change_suffix): it belongs to the swap only
            # if the .log.swap is there too, else the old segment keeps its own.
            if match.group(1) + LOG_SUFFIX + SWAP_SUFFIX in names:
                fs.rename(full, full[: -len(SWAP_SUFFIX)])
            else:
                fs.remove(full)
            continue
        if match is None or match.group(2) != LOG_SUFFIX:
            fs.remove(full)
            continue
        stem = os.path.join(path, match.group(1))
        fs.rename(full, stem + LOG_SUFFIX)
        fs.remove(stem + INDEX_SUFFIX)
        fs.remove(stem + TIME_INDEX_SUFFIX)
        if match.group(1) + TXN_INDEX_SUFFIX + SWAP_SUFFIX not in names:
            fs.remove(stem + TXN_INDEX_SUFFIX)  # the replaced segment's; the swap had none
        swapped.add(int(match.group(1)))
    return swapped


def _index_files_ok(fs: FileSystem, segment: LogSegment, names: set[str]) -> bool:
    """Cheap checks that need no reading: both files exist (in the listing `names`) with
    a whole number of entries, within segment.index.bytes. An empty one is known empty
    from here on, so it is never read."""
    for index in (segment.offset_index, segment.time_index):
        if os.path.basename(index.path) not in names:
            return False
        size = fs.file_size(index.path)
        entry = OffsetIndex.ENTRY.size if isinstance(index, OffsetIndex) else TimeIndex.ENTRY.size
        if size % entry or size // entry > index.max_entries:
            return False
        if size == 0:
            index.known_empty()
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


def _assign_epochs(
    cache: LeaderEpochCache, segments: list[LogSegment], from_offset: int | None = None
) -> None:
    """Assigns the epochs of the batches of `segments`, skipping those of the first one
    that end before `from_offset` (their epochs are in the checkpoint already)."""
    for i, segment in enumerate(segments):
        position = 0
        if i == 0 and from_offset is not None and from_offset > segment.base_offset:
            found = segment.translate_offset(from_offset)
            if found is None:
                continue
            position = found[0]
        for _, header in segment.batches(position):
            cache.assign(header.partition_leader_epoch, header.base_offset, deferred=True)


def _recover_tail(
    segments: list[LogSegment], recovery_point: int, done: set[int]
) -> tuple[int, int]:
    """Recovers the segment holding the recovery point and every later one. Once a segment
    is cut, the later ones were written after a torn batch and are deleted. Returns the
    bytes cut and the base offset of the first segment recovered."""
    bases = [s.base_offset for s in segments]
    start = max(0, bisect.bisect_right(bases, recovery_point) - 1)
    truncated = 0
    for i in range(start, len(segments)):
        # Batches below the recovery point were fsynced before it moved: headers only.
        cut = segments[i].recover(durable_before=recovery_point)
        done.add(segments[i].base_offset)
        truncated += cut
        if cut:
            for later in segments[i + 1 :]:
                truncated += later.size
                later.delete()
            del segments[i + 1 :]
            break
    return truncated, segments[start].base_offset


def load_producer_state(
    fs: FileSystem,
    path: str,
    segments: list[LogSegment],
    start: int,
    end: int,
    *,
    names: list[str] | None = None,
    rebuild_from: int | None = None,
) -> ProducerStateManager:
    """The newest producer snapshot, plus the batches written after it.

    With `rebuild_from` (after a crash: the first recovered segment's base offset) the
    replay starts from a snapshot at or below it, and the aborted-transaction indexes of
    the segments from there on are rebuilt by the replay, as appends wrote them: their
    tails were not fsynced, so their indexes may miss entries or hold ones of cut
    batches."""
    state = ProducerStateManager(fs, path)
    replay_from = state.load(start, end, names, newest_at=rebuild_from)
    rebuilt: set[int] = set()
    if rebuild_from is not None:
        for segment in segments:
            if segment.base_offset >= rebuild_from:
                segment.txn_index.reset()
                rebuilt.add(segment.base_offset)
    for segment in segments:
        if segment.next_offset > replay_from:
            _replay_segment(state, segment, replay_from, segment.base_offset in rebuilt)
    return state


def _replay_segment(
    state: ProducerStateManager, segment: LogSegment, from_offset: int, index: bool
) -> None:
    """Applies the segment's batches from `from_offset` on to the producer state; a
    transaction marker's record is read to know how it ended. With `index`, aborted
    transactions are added to the segment's aborted-transaction index."""
    for position, header in segment.batches():
        if header.base_offset < from_offset or header.producer_id < 0:
            continue
        if not header.is_control:
            state.update(header)
            continue
        marker = parse_marker(segment.read_batch(position, header), header)
        if marker is None:
            continue
        completed = state.complete_txn(
            header, marker.commit, marker.coordinator_epoch, appended=False
        )
        if index and completed is not None and completed.aborted:
            segment.txn_index.append(completed.index_entry())


def load_epochs(
    fs: FileSystem,
    path: str,
    segments: list[LogSegment],
    start: int,
    end: int,
    replay_from: int | None = None,
    *,
    names: list[str] | None = None,
) -> LeaderEpochCache:
    """Reads leader-epoch-checkpoint, or rebuilds it from the batch headers if it is gone
    (an empty log needs no file); with `replay_from` (after a crash) the batches from the
    segment holding it on assign their epochs again. Then drops entries the log no
    longer holds."""
    checkpoint = os.path.join(path, LEADER_EPOCH_CHECKPOINT)
    present = fs.exists(checkpoint) if names is None else LEADER_EPOCH_CHECKPOINT in names
    if not present:
        cache = LeaderEpochCache(fs, checkpoint, [])
        _assign_epochs(cache, segments)
        if cache.dirty or end > start:
            cache.flush()
    else:
        cache = LeaderEpochCache.load(fs, checkpoint)
        if replay_from is not None:
            bases = [s.base_offset for s in segments]
            first = max(0, bisect.bisect_right(bases, replay_from) - 1)
            # The epochs of batches below the recovery point reached the checkpoint before
            # it moved past them (Log.flush and roll flush the cache first).
            _assign_epochs(cache, segments[first:], replay_from)
            cache.flush_if_dirty()
    cache.truncate_from_end(end)
    cache.truncate_from_start(start)
    return cache
