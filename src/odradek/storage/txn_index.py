"""The aborted-transaction index of one segment: `<base offset>.txnindex`.

Kafka's format (TransactionIndex.java): fixed 34-byte entries, big-endian: version
int16 (0), producer id int64, first offset int64, last offset int64 (the abort marker's
offset) and last stable offset int64 (the partition's LSO once that transaction ended).
An entry goes to the index of the segment that holds its abort marker, so entries are
in marker order and a fetch from offset F finds every aborted transaction ending at or
after F in F's segment and the later ones.

The file exists only once a segment has an entry. Entries are kept in memory after the
first read (an index holds one entry per aborted transaction, so it stays small).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from odradek.storage.fs import FileHandle, FileSystem

TXN_INDEX_SUFFIX = ".txnindex"
_ENTRY = struct.Struct(">hqqqq")
ENTRY_SIZE = _ENTRY.size  # 34
_VERSION = 0


class AbortedTxn(NamedTuple):
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class TransactionIndex:
    """One segment's aborted transactions, appended in marker order."""

    def __init__(self, fs: FileSystem, path: str) -> None:
        self._fs = fs
        self.path = path
        self._handle: FileHandle | None = None
        self._entries: list[AbortedTxn] | None = None

    def _load(self) -> list[AbortedTxn]:
        if self._entries is None:
            data = self._fs.read_file(self.path) if self._fs.exists(self.path) else b""
            whole = len(data) - len(data) % ENTRY_SIZE  # a torn last entry is dropped
            self._entries = [
                AbortedTxn(*_ENTRY.unpack_from(data, pos)[1:])
                for pos in range(0, whole, ENTRY_SIZE)
            ]
            if whole != len(data):
                self._file().truncate(whole)
        return self._entries

    def _file(self) -> FileHandle:
        if self._handle is None:
            self._handle = self._fs.open(self.path)
        return self._handle

    @property
    def entries(self) -> list[AbortedTxn]:
        return list(self._load())

    def append(self, txn: AbortedTxn) -> None:
        """Adds an entry (the file is created on the first). Raises ValueError when its
        last offset does not follow the previous entry's, as Kafka does."""
        entries = self._load()
        if entries and txn.last_offset <= entries[-1].last_offset:
            raise ValueError(
                f"aborted transaction ending at {txn.last_offset} does not follow "
                f"{entries[-1].last_offset} in {self.path}"
            )
        handle = self._file()
        size = handle.size()
        try:
            handle.append(_ENTRY.pack(_VERSION, *txn))
        except OSError:
            handle.truncate(size)
            raise
        entries.append(txn)

    def truncate_to(self, offset: int) -> None:
        """Drops the entries whose marker is at or after `offset` (the log was cut there)."""
        entries = self._load()
        keep = sum(1 for txn in entries if txn.last_offset < offset)
        if keep == len(entries):
            return
        self._file().truncate(keep * ENTRY_SIZE)
        del entries[keep:]

    def reset(self) -> None:
        """Empties the index (recovery rebuilds it)."""
        self.close()
        self._fs.remove(self.path)
        self._entries = []

    def collect(self, fetch_offset: int, upper_bound: int) -> tuple[list[AbortedTxn], bool]:
        """Kafka's collectAbortedTxns: the entries overlapping [fetch_offset, upper_bound),
        and whether the search is complete (an entry's LSO reached `upper_bound`, so no
        later segment can hold a transaction that started below it)."""
        found: list[AbortedTxn] = []
        for txn in self._load():
            if txn.last_offset >= fetch_offset and txn.first_offset < upper_bound:
                found.append(txn)
            if txn.last_stable_offset >= upper_bound:
                return found, True
        return found, False

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.fsync()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def delete(self) -> None:
        self.close()
        self._fs.remove(self.path)
        self._entries = []

    def rename(self, target: str) -> None:
        """Moves the file to `target`, replacing what is there; without a file (no
        entries) a file at `target` is removed, as it belongs to no segment of ours (a
        compacted segment replacing one with entries). Entries stay cached."""
        self.close()
        if self._fs.exists(self.path):
            self._fs.rename(self.path, target)
        else:
            self._fs.remove(target)
        self.path = target
