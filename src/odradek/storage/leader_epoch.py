"""The leader epoch cache of one partition and its `leader-epoch-checkpoint` file.

Each entry says: from `start_offset` on, batches were written by the leader of `epoch`.
Followers use it (OffsetsForLeaderEpoch) to find where their log diverges.
"""

from __future__ import annotations

import bisect

from odradek.storage.checkpoint import read_epochs, write_epochs
from odradek.storage.fs import FileSystem

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


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
        """Kafka's LeaderEpochFileCache.endOffsetFor: (the largest known epoch <= `epoch`,
        the offset where it ended, which is the start of the next known epoch, or
        `log_end_offset` for the latest one).

        (-1, -1) when `epoch` is -1 or newer than every known epoch (so also when none is
        known): Kafka's leader has always recorded its own epoch, so nothing newer exists.
        An epoch older than every known one answers itself with the first known epoch's
        start: whatever it wrote is gone from this log, and a follower that truncates
        there replicates correctly from the leader's start."""
        entries = self._entries
        if epoch == UNDEFINED_EPOCH or not entries or epoch > entries[-1][0]:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if epoch == entries[-1][0]:
            return epoch, log_end_offset
        after = bisect.bisect_right(entries, epoch, key=_epoch)  # the first newer epoch
        if after == 0:
            return epoch, entries[0][1]
        return entries[after - 1][0], entries[after][1]

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


def _epoch(entry: tuple[int, int]) -> int:
    return entry[0]
