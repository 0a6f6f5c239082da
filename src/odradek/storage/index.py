"""Kafka's sparse segment indexes: `.index` (offset -> file position) and `.timeindex`
(timestamp -> offset).

Entries are big-endian: offset index = 4-byte offset relative to the segment's base offset
+ 4-byte position in the .log file; time index = 8-byte timestamp + 4-byte relative offset.
Files hold exactly the entries written (no preallocation; see docs/storage-format.md), but a
file preallocated by Kafka (trailing all-zero entries) is read correctly: the zeros are
dropped. Entries are loaded lazily into a bytearray (8-12 bytes each, no Python objects)
and searched by binary search.

New entries are kept in memory and written to the file in bulk when the segment is
flushed (on roll, by the flush policy) or closed: one write per flush instead of one per
appended batch. A kill -9 may lose the entries not written yet; the file then holds a
valid prefix of them, and the segments above the recovery point, the only ones that can
lack entries, are rebuilt by recovery after an unclean shutdown (the log is the truth).
"""

from __future__ import annotations

import contextlib
import struct

from odradek.storage.fs import FileHandle, FileSystem

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")


class _Index:
    """Entries of one index file; subclasses say the entry layout and its ordering."""

    ENTRY: struct.Struct

    def __init__(self, fs: FileSystem, path: str, base_offset: int, max_index_size: int) -> None:
        self._fs = fs
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max(1, max_index_size // self.ENTRY.size)
        self._full_size = self.max_entries * self.ENTRY.size  # bytes of a full index
        self._buf: bytearray | None = None
        # Bytes of the file (a prefix of _buf, or garbage after it until cut); -1 unknown.
        self._written = -1
        self._handle: FileHandle | None = None
        self._sane = True
        self._dirty = False

    # -- loading ---------------------------------------------------------------------

    def _entries_buf(self) -> bytearray:
        if self._buf is None:
            data = self._fs.read_file(self.path) if self._fs.exists(self.path) else b""
            self._buf, self._sane = self._parse(data)
            self._written = len(data)
        return self._buf

    def _parse(self, data: bytes) -> tuple[bytearray, bool]:
        """The longest valid prefix of entries, and whether that is the whole file. An
        all-zero entry is never valid (Kafka never indexes position 0), so the trailing
        zeros of a preallocated file are dropped; such a file is reported not sane too,
        because a preallocated file left behind means the writer did not close cleanly."""
        size = self.ENTRY.size
        count = 0
        prev: tuple[int, int] | None = None
        while (count + 1) * size <= len(data):
            entry = self.ENTRY.unpack_from(data, count * size)
            if entry == (0, 0) or (prev is not None and not self._ordered(prev, entry)):
                break
            prev = entry
            count += 1
        sane = count * size == len(data) and count <= self.max_entries
        return bytearray(data[: count * size]), sane

    @staticmethod
    def _ordered(prev: tuple[int, int], cur: tuple[int, int]) -> bool:
        raise NotImplementedError

    def known_empty(self) -> None:
        """The caller saw the file exists and is empty: nothing to read."""
        if self._buf is None:
            self._buf, self._sane = bytearray(), True
            self._written = 0

    def is_sane(self) -> bool:
        """False when the file had a torn entry, disorder or garbage: rebuild it."""
        self._entries_buf()
        return self._sane

    # -- access ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries_buf()) // self.ENTRY.size

    def entry(self, n: int) -> tuple[int, int]:
        """The raw n-th entry (relative fields as stored)."""
        result: tuple[int, int] = self.ENTRY.unpack_from(self._entries_buf(), n * self.ENTRY.size)
        return result

    def is_full(self) -> bool:
        # Asked on every append: the bytes, not len(self), which goes through __len__.
        buf = self._buf if self._buf is not None else self._entries_buf()
        return len(buf) >= self._full_size

    def _search(self, key: int) -> int:
        """Index of the largest entry whose first field is <= key, or -1."""
        lo, hi = 0, len(self) - 1
        found = -1
        while lo <= hi:
            mid = (lo + hi) // 2
            if self.entry(mid)[0] <= key:
                found, lo = mid, mid + 1
            else:
                hi = mid - 1
        return found

    def _append_raw(self, first: int, second: int) -> None:
        """Adds an entry in memory; write_pending puts it in the file."""
        self._entries_buf().extend(self.ENTRY.pack(first, second))
        self._dirty = True

    def write_pending(self) -> None:
        """Writes the entries appended since the last write to the file, in one write."""
        buf = self._buf
        if buf is None or self._written == len(buf):
            return
        # From the first unwritten entry; garbage after the entries (only an index found
        # damaged has it, and it is rebuilt before appends) is overwritten, then cut.
        start = min(max(self._written, 0), len(buf))
        handle = self._file()
        if start < len(buf):
            handle.pwrite(start, buf[start:])  # a copy: the buffer grows later
        if self._written > len(buf):
            handle.truncate(len(buf))
        self._written = len(buf)

    def _keep(self, count: int) -> None:
        """Keeps the first `count` entries, in memory and in the file."""
        buf = self._entries_buf()
        del buf[count * self.ENTRY.size :]
        if not 0 <= self._written < len(buf):  # else the cut is all in unwritten entries
            self._file().truncate(len(buf))
            self._written = len(buf)
        self._sane = True
        self._dirty = True

    def reset(self) -> None:
        """Drops every entry (before a rebuild)."""
        self._buf = bytearray()
        self._written = -1  # whatever the file holds is cut
        self._keep(0)

    def _file(self) -> FileHandle:
        if self._handle is None:
            self._handle = self._fs.open(self.path)
        return self._handle

    # -- lifecycle -------------------------------------------------------------------

    def flush(self) -> None:
        """Writes the pending entries, then fsyncs if anything changed."""
        self.write_pending()
        if self._dirty and self._handle is not None:
            self._handle.fsync()
        self._dirty = False

    def close(self) -> None:
        """Writes the pending entries, closes the file and frees the entries (they reload
        on the next lookup). Entries that cannot be written are dropped: the file keeps a
        valid prefix, a sparser index that lookups still get right."""
        try:
            with contextlib.suppress(OSError):  # dropped, as said: the log is intact
                self.write_pending()
        finally:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
            self._buf = None
            self._written = -1

    def delete(self) -> None:
        self._buf = None  # nothing worth writing to a file about to go
        self.close()
        self._fs.remove(self.path)


class OffsetIndex(_Index):
    """Maps an offset to the position of a batch at or before it in the .log file."""

    ENTRY = _OFFSET_ENTRY

    @staticmethod
    def _ordered(prev: tuple[int, int], cur: tuple[int, int]) -> bool:
        return cur[0] > prev[0] and cur[1] > prev[1]

    def append(self, offset: int, position: int) -> None:
        self._append_raw(offset - self.base_offset, position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """(offset, position) of the largest entry <= offset; (base_offset, 0) if none."""
        n = self._search(offset - self.base_offset)
        if n < 0:
            return self.base_offset, 0
        relative, position = self.entry(n)
        return self.base_offset + relative, position

    def last_entry(self) -> tuple[int, int]:
        """(offset, position) of the last entry, or (base_offset, 0)."""
        if len(self) == 0:
            return self.base_offset, 0
        relative, position = self.entry(len(self) - 1)
        return self.base_offset + relative, position

    def truncate_to(self, offset: int) -> None:
        """Removes the entries for offsets >= offset."""
        self._keep(self._search(offset - self.base_offset - 1) + 1)

    def entries(self) -> list[tuple[int, int]]:
        return [(self.base_offset + r, p) for r, p in map(self.entry, range(len(self)))]


class TimeIndex(_Index):
    """Maps a timestamp to the offset of the batch that first reached it."""

    ENTRY = _TIME_ENTRY

    @staticmethod
    def _ordered(prev: tuple[int, int], cur: tuple[int, int]) -> bool:
        return cur[0] > prev[0] and cur[1] >= prev[1]

    def last_entry(self) -> tuple[int, int]:
        """(timestamp, offset) of the last entry, or (-1, base_offset)."""
        if len(self) == 0:
            return -1, self.base_offset
        timestamp, relative = self.entry(len(self) - 1)
        return timestamp, self.base_offset + relative

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Appends only when the timestamp grows (Kafka's rule)."""
        if len(self) == 0 or timestamp > self.last_entry()[0]:
            self._append_raw(timestamp, offset - self.base_offset)

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """(timestamp, offset) of the largest entry <= timestamp; (-1, base_offset) if none."""
        n = self._search(timestamp)
        if n < 0:
            return -1, self.base_offset
        ts, relative = self.entry(n)
        return ts, self.base_offset + relative

    def truncate_to(self, offset: int) -> None:
        """Removes the entries for offsets >= offset."""
        count = len(self)
        while count > 0 and self.base_offset + self.entry(count - 1)[1] >= offset:
            count -= 1
        self._keep(count)

    def entries(self) -> list[tuple[int, int]]:
        return [(t, self.base_offset + r) for t, r in map(self.entry, range(len(self)))]
