"""Idempotent producer state of one partition: per producer id, its epoch and the last
five batches' sequence ranges, so a retried batch is recognised and answered with its
original offsets, a gap is refused, and a fenced (older) epoch is refused.

The state is rebuilt from batch headers and saved in Kafka's producer snapshot format
(`<20-digit offset>.snapshot`: version, CRC-32C, then one entry per producer) at every
segment roll and at clean shutdown, so a restart replays only the batches after the
newest snapshot. As in Kafka, a snapshot keeps only each producer's last batch.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from odradek.protocol import crc
from odradek.protocol.batch import BatchHeader
from odradek.storage.checkpoint import write_atomically
from odradek.storage.errors import StorageError
from odradek.storage.fs import FileSystem

SNAPSHOT_SUFFIX = ".snapshot"
SNAPSHOT_VERSION = 1
BATCHES_KEPT = 5
INT_MAX = 2**31 - 1
_HEAD = struct.Struct(">hIi")  # version, crc, entry count
_ENTRY = struct.Struct(">qhiqiqiq")  # id, epoch, last seq, last offset, delta, ts, coord epoch, txn


class OutOfOrderSequenceError(StorageError):
    """A batch whose first sequence does not follow the last one (OUT_OF_ORDER_SEQUENCE)."""


class InvalidProducerEpochError(StorageError):
    """A batch from an epoch older than the producer's current one (INVALID_PRODUCER_EPOCH)."""


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass(slots=True)
class ProducerEntry:
    producer_id: int
    epoch: int
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=BATCHES_KEPT))
    last_timestamp: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1


def _follows(last_seq: int, first_seq: int) -> bool:
    """Whether `first_seq` comes right after `last_seq` (sequences wrap at Int.MAX)."""
    return first_seq == (0 if last_seq == INT_MAX else last_seq + 1)


class ProducerStateManager:
    def __init__(self, fs: FileSystem, path: str) -> None:
        self._fs = fs
        self._path = path
        self.producers: dict[int, ProducerEntry] = {}

    # -- the produce path ------------------------------------------------------------

    def check(self, header: BatchHeader) -> BatchMetadata | None:
        """Validates an idempotent batch before it is appended. Returns the stored batch
        when this one is a retry of it; raises when its epoch or sequence is wrong."""
        entry = self.producers.get(header.producer_id)
        if entry is None or header.producer_epoch > entry.epoch:
            if header.base_sequence != 0 and entry is not None:
                raise OutOfOrderSequenceError("a new epoch must start at sequence 0")
            return None
        if header.producer_epoch < entry.epoch:
            raise InvalidProducerEpochError(
                f"epoch {header.producer_epoch} is older than {entry.epoch}"
            )
        for batch in entry.batches:
            if batch.first_seq == header.base_sequence and batch.last_seq == header.last_sequence:
                return batch
        if entry.batches and not _follows(entry.last_seq, header.base_sequence):
            raise OutOfOrderSequenceError(
                f"sequence {header.base_sequence} does not follow {entry.last_seq}"
            )
        return None

    def update(self, header: BatchHeader) -> None:
        """Records an appended batch (with its final offsets); also used to replay the log."""
        if header.producer_id < 0:
            return
        entry = self.producers.get(header.producer_id)
        if entry is None or header.producer_epoch != entry.epoch:
            entry = ProducerEntry(header.producer_id, header.producer_epoch)
            self.producers[header.producer_id] = entry
        entry.batches.append(
            BatchMetadata(
                header.base_sequence,
                header.last_sequence,
                header.base_offset,
                header.last_offset,
                header.max_timestamp,
            )
        )
        entry.last_timestamp = max(entry.last_timestamp, header.max_timestamp)

    def replay(self, headers: Iterable[BatchHeader]) -> None:
        for header in headers:
            self.update(header)

    def remove_expired(self, now_ms: int, expiration_ms: int) -> int:
        """Forgets producers silent for longer than producer.id.expiration.ms."""
        expired = [
            pid
            for pid, entry in self.producers.items()
            if now_ms - entry.last_timestamp >= expiration_ms
        ]
        for pid in expired:
            del self.producers[pid]
        return len(expired)

    # -- snapshots -------------------------------------------------------------------

    def _snapshot_path(self, offset: int) -> str:
        return os.path.join(self._path, f"{offset:020d}{SNAPSHOT_SUFFIX}")

    def snapshot_offsets(self, names: list[str] | None = None) -> list[int]:
        """Offsets of the snapshot files (from `names`, the directory listing, if given)."""
        if names is None:
            names = self._fs.listdir(self._path)
        return sorted(
            int(name[: -len(SNAPSHOT_SUFFIX)])
            for name in names
            if name.endswith(SNAPSHOT_SUFFIX) and name[: -len(SNAPSHOT_SUFFIX)].isdigit()
        )

    def take_snapshot(self, offset: int) -> None:
        """Writes the state as of `offset` (the log end offset it reflects)."""
        written = [e for e in self.producers.values() if e.batches]
        entries = b"".join(
            _ENTRY.pack(
                e.producer_id,
                e.epoch,
                e.last_seq,
                e.batches[-1].last_offset,
                e.batches[-1].last_offset - e.batches[-1].first_offset,
                e.last_timestamp,
                -1,
                -1,
            )
            for e in written
        )
        count = struct.pack(">i", len(written))
        checksum = crc.crc32c(count + entries)
        data = struct.pack(">hI", SNAPSHOT_VERSION, checksum) + count + entries
        write_atomically(self._fs, self._snapshot_path(offset), data)

    def load(
        self, log_start_offset: int, log_end_offset: int, names: list[str] | None = None
    ) -> int:
        """Loads the newest valid snapshot at or below the log end and removes the others
        above it; returns the offset from which batches must be replayed."""
        for offset in reversed(self.snapshot_offsets(names)):
            path = self._snapshot_path(offset)
            if offset > log_end_offset or offset < log_start_offset:
                self._fs.remove(path)
                continue
            try:
                self.producers = _parse_snapshot(self._fs.read_file(path))
            except ValueError:
                self._fs.remove(path)  # corrupt: fall back to an older one or a full replay
                continue
            return offset
        self.producers = {}
        return log_start_offset

    def delete_snapshots_above(self, offset: int) -> None:
        """Removes the snapshots of offsets past `offset` (a truncated log's new end)."""
        for snapshot in self.snapshot_offsets():
            if snapshot > offset:
                self._fs.remove(self._snapshot_path(snapshot))

    def delete_snapshots_below(self, offset: int) -> None:
        for snapshot in self.snapshot_offsets():
            if snapshot < offset:
                self._fs.remove(self._snapshot_path(snapshot))


def _parse_snapshot(data: bytes) -> dict[int, ProducerEntry]:
    if len(data) < _HEAD.size:
        raise ValueError("snapshot too short")
    version, checksum, count = _HEAD.unpack_from(data, 0)
    if version != SNAPSHOT_VERSION or crc.crc32c(data[6:]) != checksum:
        raise ValueError("snapshot version or CRC mismatch")
    if count < 0 or len(data) != _HEAD.size + count * _ENTRY.size:
        raise ValueError("snapshot length mismatch")
    producers: dict[int, ProducerEntry] = {}
    for i in range(count):
        pid, epoch, last_seq, last_offset, delta, ts, _, _ = _ENTRY.unpack_from(
            data, _HEAD.size + i * _ENTRY.size
        )
        entry = ProducerEntry(pid, epoch, last_timestamp=ts)
        first_seq = (last_seq - delta) % (INT_MAX + 1)
        entry.batches.append(
            BatchMetadata(first_seq, last_seq, last_offset - delta, last_offset, ts)
        )
        producers[pid] = entry
    return producers
