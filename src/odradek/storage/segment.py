"""One log segment: `<base offset>.log` (v2 record batches back to back) with its `.index`,
`.timeindex` and, once a transaction aborted in it, `.txnindex` (txn_index.py).

Batches are never decoded here: only their 61-byte headers are read, to find positions,
offsets and timestamps, and CRCs are checked on recovery.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from odradek.protocol.batch import (
    HEADER,
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    crc_ok,
    iter_batches,
    make_header,
)
from odradek.storage.fs import Bytes, FileHandle, FileSystem
from odradek.storage.index import OffsetIndex, TimeIndex
from odradek.storage.txn_index import TXN_INDEX_SUFFIX, TransactionIndex

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
_CHUNK = 1 << 20
_FIRST_CHUNK = 16 << 10
_MAX_RELATIVE_OFFSET = (1 << 31) - 1  # index entries hold offsets relative to the base
_HEADER_READ = 4 << 10  # per batch when walking the headers of large batches


def segment_file_name(base_offset: int, suffix: str) -> str:
    """Kafka's name: the base offset zero-padded to 20 digits, then the suffix."""
    return f"{base_offset:020d}{suffix}"


def _header_at(buf: bytes, pos: int) -> BatchHeader | None:
    """The header at `pos` if it looks like v2 framing (the batch may extend past buf)."""
    if len(buf) - pos < HEADER_SIZE:
        return None
    header = make_header(HEADER.unpack_from(buf, pos))
    if header.magic != 2 or header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        return None
    if header.last_offset_delta < 0:
        return None
    return header


def iter_file_batches(
    handle: FileHandle,
    start: int,
    end: int,
    *,
    check_crc: bool = False,
    below: int | None = None,
) -> Iterator[tuple[int, BatchHeader]]:
    """Yields (position, header) of the batches in [start, end); stops at the first batch
    that is torn, malformed, (with check_crc) fails its CRC, or (with `below`) does not lie
    wholly below that offset.

    Reads grow while batches are small (lookups usually stop within one index interval, so
    the first read is small). Without check_crc nothing past a header is needed, so after a
    large batch only the next header is read and the records are skipped unread."""
    pos = start
    buf, buf_pos = b"", start
    chunk = _FIRST_CHUNK
    while end - pos >= HEADER_SIZE:
        off = pos - buf_pos
        if len(buf) - off < HEADER_SIZE:
            buf, buf_pos, off = handle.pread(pos, min(chunk, end - pos)), pos, 0
            chunk = min(chunk * 4, _CHUNK)
        header = _header_at(buf, off)
        if header is None or pos + header.size > end:
            return
        if below is not None and header.last_offset >= below:
            return
        if check_crc:
            if len(buf) - off < header.size:
                size = min(max(_CHUNK, header.size), end - pos)
                buf, buf_pos, off = handle.pread(pos, size), pos, 0
            if not crc_ok(buf, off, header):
                return
        elif header.size > 4 * _HEADER_READ:
            chunk = _HEADER_READ
        yield pos, header
        pos += header.size


@dataclass(slots=True)
class _TailState:
    """What appends keep up to date; saved to undo a failed append."""

    next_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    bytes_since_last_index_entry: int
    # The newest batch: a consumer keeping up asks for it next, found without a scan.
    last_position: int = -1
    last_header: BatchHeader | None = None

    def copy(self) -> _TailState:
        return _TailState(
            self.next_offset,
            self.max_timestamp,
            self.offset_of_max_timestamp,
            self.bytes_since_last_index_entry,
            self.last_position,
            self.last_header,
        )


class LogSegment:
    """A segment's files and the in-memory state needed to append to it."""

    def __init__(
        self,
        fs: FileSystem,
        directory: str,
        base_offset: int,
        *,
        index_interval_bytes: int,
        max_index_size: int,
        suffix: str = "",
    ) -> None:
        self._fs = fs
        self.base_offset = base_offset
        self.index_interval_bytes = index_interval_bytes
        self.suffix = suffix  # "" for a live segment, ".cleaned" while the cleaner writes it
        stem = os.path.join(directory, f"{base_offset:020d}")
        self.log_path = stem + LOG_SUFFIX + suffix
        index_path = stem + INDEX_SUFFIX + suffix
        time_path = stem + TIME_INDEX_SUFFIX + suffix
        self.offset_index = OffsetIndex(fs, index_path, base_offset, max_index_size)
        self.time_index = TimeIndex(fs, time_path, base_offset, max_index_size)
        self.txn_index = TransactionIndex(fs, stem + TXN_INDEX_SUFFIX + suffix)
        self._handle: FileHandle | None = None
        self._state: _TailState | None = None
        # Wall-clock ms of the first append (or of opening), for segment.ms rolling.
        self.rolling_base_ms: int | None = None

    @classmethod
    def create(
        cls,
        fs: FileSystem,
        directory: str,
        base_offset: int,
        *,
        index_interval_bytes: int,
        max_index_size: int,
        suffix: str = "",
    ) -> LogSegment:
        """A new empty segment; all three files exist from the start, so a missing index
        file later always means it was lost."""
        segment = cls(
            fs,
            directory,
            base_offset,
            index_interval_bytes=index_interval_bytes,
            max_index_size=max_index_size,
            suffix=suffix,
        )
        segment._file()
        for path in (segment.offset_index.path, segment.time_index.path):
            fs.open(path).close()
        segment._state = _TailState(base_offset, -1, base_offset, 0)
        return segment

    # -- state -----------------------------------------------------------------------

    def _file(self) -> FileHandle:
        # Opened lazily: a broker with many partitions must not hold a descriptor per
        # old segment it never reads.
        if self._handle is None:
            self._handle = self._fs.open(self.log_path)
        return self._handle

    @property
    def size(self) -> int:
        if self._handle is None:
            return self._fs.file_size(self.log_path) if self._fs.exists(self.log_path) else 0
        return self._handle.size()

    def _tail(self) -> _TailState:
        """The append state, loaded on first use; an index found damaged then is rebuilt
        from the batch headers (without cutting the log: that is recover's job)."""
        if self._state is None:
            if self.indexes_sane():
                self._state = self._load_tail()
            else:
                self.recover(check_crc=False, truncate=False)
        assert self._state is not None
        return self._state

    def _load_tail(self) -> _TailState:
        """Rebuilds the append state from the last index entries plus a short scan."""
        max_ts, max_ts_offset = self.time_index.last_entry()
        _, position = self.offset_index.last_entry()
        handle = self._file()
        size = handle.size()
        state = _TailState(self.base_offset, max_ts, max_ts_offset, size - position)
        for pos, header in iter_file_batches(handle, position, size):
            self._track(state, header, pos)
        return state

    @staticmethod
    def _track(state: _TailState, header: BatchHeader, position: int) -> None:
        if header.max_timestamp > state.max_timestamp:
            state.max_timestamp = header.max_timestamp
            state.offset_of_max_timestamp = header.last_offset
        state.next_offset = header.next_offset
        state.last_position, state.last_header = position, header

    @property
    def next_offset(self) -> int:
        """The offset after the last batch of this segment."""
        return (self._state or self._tail()).next_offset

    @property
    def max_timestamp(self) -> int:
        """The largest batch max timestamp in this segment (-1 when empty)."""
        return self._tail().max_timestamp

    def indexes_full(self) -> bool:
        return self.offset_index.is_full() or self.time_index.is_full()

    def indexes_sane(self) -> bool:
        return self.offset_index.is_sane() and self.time_index.is_sane()

    # -- writing ---------------------------------------------------------------------

    def append(self, batch: Bytes, header: BatchHeader, now_ms: int, prefix: Bytes = b"") -> None:
        """Appends one batch whose header has its final offsets; a `prefix` is written in
        place of as many of the batch's first bytes (a leader's rewritten offset and epoch:
        the records go from the producer's buffer to the file uncopied). On OSError the
        file and indexes are cut back to where they were, then the error propagates."""
        state = self._state or self._tail()
        saved = state.copy()
        handle = self._handle or self._file()
        position = handle.size()
        try:
            if prefix:
                handle.append_parts((prefix, memoryview(batch)[len(prefix) :]))
            else:
                handle.append(batch)
            self._index_batch(state, header, position)
        except OSError:
            self._undo(saved, position)
            raise
        if self.rolling_base_ms is None:
            self.rolling_base_ms = now_ms

    def _undo(self, saved: _TailState, position: int) -> None:
        self._file().truncate(position)
        self.offset_index.truncate_to(saved.next_offset)
        self.time_index.truncate_to(saved.next_offset)
        self._state = saved

    def _index_batch(self, state: _TailState, header: BatchHeader, position: int) -> None:
        """Kafka's rule: index the batch appended once more than index.interval.bytes
        were appended since the last entry. Appends and recovery share it, so a rebuilt
        index equals the one written incrementally."""
        self._track(state, header, position)
        if state.bytes_since_last_index_entry > self.index_interval_bytes:
            self.offset_index.append(header.last_offset, position)
            self.time_index.maybe_append(state.max_timestamp, state.offset_of_max_timestamp)
            state.bytes_since_last_index_entry = 0
        state.bytes_since_last_index_entry += header.size

    def on_become_inactive(self) -> None:
        """On roll: a last time index entry for the segment's max timestamp, then fsync."""
        state = self._tail()
        if state.max_timestamp >= 0:
            self.time_index.maybe_append(state.max_timestamp, state.offset_of_max_timestamp)
        self.flush()

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.fsync()
        self.offset_index.flush()
        self.time_index.flush()
        self.txn_index.flush()

    def truncate_to(self, offset: int) -> int:
        """Removes the batches from the one containing `offset` onwards; returns bytes cut."""
        found = self.translate_offset(offset)
        if found is None:
            return 0
        position = found[0]
        cut = self.size - position
        self._file().truncate(position)
        self.offset_index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        self.txn_index.truncate_to(offset)
        self._state = self._load_tail()
        return cut

    def _in_order(self, state: _TailState, header: BatchHeader) -> bool:
        """Offsets must grow and stay indexable: an old batch here, or one whose offset is
        beyond what the index can hold (a flipped bit in the base offset, which the CRC
        does not cover), is garbage."""
        if header.base_offset < state.next_offset:
            return False
        return header.last_offset - self.base_offset <= _MAX_RELATIVE_OFFSET

    def recover(
        self, *, check_crc: bool = True, truncate: bool = True, durable_before: int = -1
    ) -> int:
        """Scans every batch checking framing, CRC and offset order, cuts the file at the
        first bad or torn one and rebuilds both indexes. Returns the bytes cut.

        Batches whose offsets all lie below `durable_before` (the recovery point: they
        were fsynced before it moved past them) have only their headers walked, without
        reading their records or checking CRCs; they feed the same index bookkeeping, so
        indexes and tail state equal those of a full scan of an intact prefix."""
        self.offset_index.reset()
        self.time_index.reset()
        state = _TailState(self.base_offset, -1, self.base_offset, 0)
        valid_end = 0
        handle, size = self._file(), self.size
        if durable_before > self.base_offset:
            for position, header in iter_file_batches(handle, 0, size, below=durable_before):
                if not self._in_order(state, header):
                    break  # garbage: the full scan below stops at the same batch
                self._index_batch(state, header, position)
                valid_end = position + header.size
        scan = iter_file_batches(handle, valid_end, size, check_crc=check_crc)
        for position, header in scan:
            if not self._in_order(state, header):
                break
            self._index_batch(state, header, position)
            valid_end = position + header.size
        cut = self.size - valid_end
        if cut and truncate:
            self._file().truncate(valid_end)
        self._state = state
        if state.max_timestamp >= 0:
            self.time_index.maybe_append(state.max_timestamp, state.offset_of_max_timestamp)
        # Rebuilt entries go to the files at once (appends leave theirs to the next
        # flush): after a kill -9 a segment below the recovery point is not rebuilt again.
        self.offset_index.write_pending()
        self.time_index.write_pending()
        return cut

    # -- reading ---------------------------------------------------------------------

    def translate_offset(self, offset: int) -> tuple[int, BatchHeader] | None:
        """(position, header) of the first batch whose last offset >= offset."""
        state = self._tail()  # checks the indexes once
        last = state.last_header
        # The batch before the newest ends below its base offset, so the newest is it.
        if last is not None and last.base_offset <= offset <= last.last_offset:
            return state.last_position, last
        _, position = self.offset_index.lookup(offset)
        for pos, header in iter_file_batches(self._file(), position, self.size):
            if header.last_offset >= offset:
                return pos, header
        return None

    def read(
        self, start_offset: int, max_bytes: int, max_offset: int, min_one_message: bool
    ) -> bytes | memoryview | None:
        """Whole batches from the one containing start_offset, up to max_bytes, stopping
        before a batch whose base offset >= max_offset. With min_one_message the first batch
        is returned whole even when larger than max_bytes. None when no batch of this
        segment reaches start_offset (the caller tries the next segment)."""
        found = self.translate_offset(start_offset)
        if found is None:
            return None
        if found[1].base_offset >= max_offset:
            return b""
        position, first = found
        want = min(max_bytes, self.size - position)
        if min_one_message:
            want = max(want, first.size)
        data = self._file().pread(position, want)
        end = 0
        for pos, header in iter_batches(data):
            if header.base_offset >= max_offset:
                break
            end = pos + header.size
        # a view, not a copy, when a batch cut by max_bytes is left off the end
        return memoryview(data)[:end] if end < len(data) else data

    def read_batch(self, position: int, header: BatchHeader) -> bytes:
        return self._file().pread(position, header.size)

    def find_by_timestamp(
        self, timestamp: int, start_offset: int
    ) -> tuple[int, BatchHeader] | None:
        """(position, header) of the first batch at or after start_offset whose max
        timestamp >= timestamp."""
        self._tail()  # checks the indexes once
        _, offset = self.time_index.lookup(timestamp)
        _, position = self.offset_index.lookup(max(offset, start_offset))
        for pos, header in iter_file_batches(self._file(), position, self.size):
            if header.max_timestamp >= timestamp and header.last_offset >= start_offset:
                return pos, header
        return None

    def batches(self, start_position: int = 0) -> Iterator[tuple[int, BatchHeader]]:
        """Every batch header from start_position (no CRC check; the records of large batches
        are skipped unread)."""
        return iter_file_batches(self._file(), start_position, self.size)

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self.offset_index.close()
        self.time_index.close()
        self.txn_index.close()

    def delete(self) -> None:
        self.close()
        self._fs.remove(self.log_path)
        self.offset_index.delete()
        self.time_index.delete()
        self.txn_index.delete()

    @property
    def file_paths(self) -> tuple[str, str, str]:
        """The `.log`, `.index` and `.timeindex` paths (with the current suffix)."""
        return self.log_path, self.offset_index.path, self.time_index.path

    def change_suffix(self, new_suffix: str) -> None:
        """Renames the files (three, or four with a `.txnindex`) to carry `new_suffix`
        instead of the current one (`.deleted` when retention drops the segment,
        `.swap`/`` while the cleaner swaps a rewritten segment in). The files are closed
        first and reopen lazily."""
        self.close()
        cut = len(self.suffix)
        # Indexes first: whenever the .log carries its new name, so do its indexes, so a
        # crash can never pair a .log with another segment's index.
        for index in (self.offset_index, self.time_index):
            target = index.path[: len(index.path) - cut] + new_suffix
            if self._fs.exists(index.path):
                self._fs.rename(index.path, target)
            index.path = target
        txn_path = self.txn_index.path
        self.txn_index.rename(txn_path[: len(txn_path) - cut] + new_suffix)
        target = self.log_path[: len(self.log_path) - cut] + new_suffix
        self._fs.rename(self.log_path, target)
        self.log_path = target
        self.suffix = new_suffix
