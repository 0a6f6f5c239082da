"""The leader epoch cache of one partition and its `leader-epoch-checkpoint` file.

Each entry says: from `start_offset` on, batches were written by the leader of `epoch`.
Followers use it (OffsetsForLeaderEpoch) to find where their log diverges.
"""

from __future__ import annotations

from odradek.storage.checkpoint import read_epochs, write_epochs
from odradek.storage.fs import FileSystem


class LeaderEpochCache:
    """Sorted (epoch, start_offset) entries, persisted after every change, except a new
    epoch taken on the append path (`assign(..., deferred=True)`): that one is written
    with the log's next flush or roll (Kafka's rule since KAFKA-15046). An entry matters
    only for records that are durable, and after a crash recovery assigns the epochs of
    the batches above the recovery point again."""

    def __init__(self, fs: FileSystem, path: str, entries: list[tuple[int, int]]) -> None:
        self._fs = fs
        self.path = path
        self._entries = entries
        self._dirty = False

    @classmethod
    def load(cls, fs: FileSystem, path: str) -> LeaderEpochCache:
        """Reads the checkpoint ([] when absent; CheckpointError when malformed)."""
        return cls(fs, path, read_epochs(fs, path))

    @property
    def entries(self) -> list[tuple[int, int]]:
        return list(self._entries)

    @property
    def latest_epoch(self) -> int:
        """The newest epoch, or -1 when none is known."""
        return self._entries[-1][0] if self._entries else -1

    def assign(self, epoch: int, start_offset: int, *, deferred: bool = False) -> bool:
        """Records that `epoch` starts at `start_offset` (if it is new); True if changed.
        Entries at or after start_offset, or with an epoch >= the new one, are replaced."""
        entries = self._entries  # called on every append: no property calls before this
        if epoch < 0 or (entries and epoch <= entries[-1][0]):
            return False
        self._entries = [(e, o) for e, o in self._entries if o < start_offset and e < epoch] + [
            (epoch, start_offset)
        ]
        self._dirty = True
        if not deferred:
            self.flush()
        return True

    def epoch_for_offset(self, offset: int) -> int:
        """The epoch of the leader that wrote `offset` (-1 when unknown)."""
        found = -1
        for epoch, start in self._entries:
            if start > offset:
                break
            found = epoch
        return found

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(largest known epoch <= epoch, the offset where it ended); (-1, -1) if none."""
        for i in range(len(self._entries) - 1, -1, -1):
            found, _ = self._entries[i]
            if found <= epoch:
                if i + 1 < len(self._entries):
                    return found, self._entries[i + 1][1]
                return found, log_end_offset
        return -1, -1

    def truncate_from_end(self, end_offset: int) -> None:
        """Forgets epochs starting at or after end_offset (the log was cut there)."""
        kept = [(e, o) for e, o in self._entries if o < end_offset]
        if kept != self._entries:
            self._entries = kept
            self.flush()

    def truncate_from_start(self, start_offset: int) -> None:
        """Drops epochs wholly before start_offset; the one spanning it now starts there."""
        before = [(e, o) for e, o in self._entries if o <= start_offset]
        after = [(e, o) for e, o in self._entries if o > start_offset]
        kept = ([(before[-1][0], start_offset)] if before else []) + after
        if kept != self._entries:
            self._entries = kept
            self.flush()

    def clear(self) -> None:
        self._entries = []
        self.flush()

    @property
    def dirty(self) -> bool:
        """Whether an assigned epoch is not in the checkpoint file yet."""
        return self._dirty

    def flush(self) -> None:
        write_epochs(self._fs, self.path, self._entries)
        self._dirty = False

    def flush_if_dirty(self) -> None:
        if self._dirty:
            self.flush()
