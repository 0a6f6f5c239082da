"""Idempotent and transactional producer state of one partition: per producer id, its
epoch and the last five batches' sequence ranges, so a retried batch is recognised and
answered with its original offsets, a gap is refused, and a fenced (older) epoch is
refused; and its transaction: the first offset of its ongoing transaction on this
partition (a transactional batch starts one, a marker ends it) and the coordinator epoch
of the last marker.

The ongoing transactions give the first unstable offset (the smallest first offset of an
ongoing transaction, or of one whose marker is appended but not yet below the high
watermark: Kafka's unreplicated transactions), which bounds the last stable offset; a
marker that ends one returns a CompletedTxn, which for an abort becomes an
aborted-transaction index entry.

The state is rebuilt from batch headers and saved in Kafka's producer snapshot format
(`<20-digit offset>.snapshot`: version, CRC-32C, then one entry per producer) at every
segment roll and at clean shutdown, so a restart replays only the batches after the
newest snapshot. As in Kafka, a snapshot keeps only each producer's last batch, and
(snapshot v1) its coordinator epoch and ongoing transaction's first offset, so a restart
from a snapshot still knows every open transaction.
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
from odradek.storage.txn_index import AbortedTxn

SNAPSHOT_SUFFIX = ".snapshot"
SNAPSHOT_VERSION = 1
BATCHES_KEPT = 5
INT_MAX = 2**31 - 1
_HEAD = struct.Struct(">hIi")  # version, crc, entry count
_ENTRY = struct.Struct(">qhiqiqiq")  # id, epoch, last seq, last offset, delta, ts, coord epoch, txn
NO_OFFSET = -1


class OutOfOrderSequenceError(StorageError):
    """A batch whose first sequence does not follow the last one (OUT_OF_ORDER_SEQUENCE)."""


class InvalidProducerEpochError(StorageError):
    """A batch or marker from an epoch older than the producer's current one
    (INVALID_PRODUCER_EPOCH)."""


class InvalidTxnStateError(StorageError):
    """A non-transactional batch from a producer with an ongoing transaction on this
    partition (INVALID_TXN_STATE)."""


class TransactionCoordinatorFencedError(StorageError):
    """A marker from an older coordinator epoch than the producer's last marker
    (TRANSACTION_COORDINATOR_FENCED): a zombie coordinator wrote it."""


@dataclass(frozen=True, slots=True)
class CompletedTxn:
    """A transaction a marker ended: its first offset, the marker's offset, and the
    partition's last stable offset right after it (the first offset of the earliest
    other ongoing transaction, else the offset after the marker)."""

    producer_id: int
    first_offset: int
    last_offset: int
    aborted: bool
    last_stable_offset: int

    def index_entry(self) -> AbortedTxn:
        """The aborted-transaction index entry of this (aborted) transaction."""
        return AbortedTxn(
            self.producer_id, self.first_offset, self.last_offset, self.last_stable_offset
        )


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
    coordinator_epoch: int = -1
    current_txn_first_offset: int = NO_OFFSET

    def set_epoch(self, epoch: int) -> None:
        """A new epoch forgets the old one's batches (its sequences restart at 0)."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.batches.clear()

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
        # producer id -> first offset of its ongoing transaction on this partition
        self.ongoing: dict[int, int] = {}
        # (marker offset, first offset) of transactions ended by an appended marker that
        # the high watermark has not passed yet, in marker order; a replay leaves it empty
        # (what a restart reads back was replicated or is cut by the new leader).
        self.unreplicated: deque[tuple[int, int]] = deque()

    # -- the produce path ------------------------------------------------------------

    def check(self, header: BatchHeader) -> BatchMetadata | None:
        """Validates an idempotent batch before it is appended. Returns the stored batch
        when this one is a retry of it; raises when its epoch or sequence is wrong."""
        entry = self.producers.get(header.producer_id)
        if entry is None:
            return None
        if header.producer_epoch < entry.epoch:
            raise InvalidProducerEpochError(
                f"epoch {header.producer_epoch} is older than {entry.epoch}"
            )
        if header.producer_epoch > entry.epoch:
            if header.base_sequence != 0:
                raise OutOfOrderSequenceError("a new epoch must start at sequence 0")
        else:
            for batch in entry.batches:
                if (
                    batch.first_seq == header.base_sequence
                    and batch.last_seq == header.last_sequence
                ):
                    return batch
            # No batch in this epoch yet (a marker moved the producer to it): sequence 0.
            if not _follows(entry.last_seq, header.base_sequence):
                raise OutOfOrderSequenceError(
                    f"sequence {header.base_sequence} does not follow {entry.last_seq}"
                )
        if entry.current_txn_first_offset >= 0 and not header.is_transactional:
            raise InvalidTxnStateError(
                f"producer {header.producer_id} sent a non-transactional batch "
                "during its transaction"
            )
        return None

    def check_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int) -> None:
        """Validates a transaction marker the coordinator asks the leader to write: an
        older producer epoch is refused, a newer one accepted (the coordinator fences a
        zombie producer by bumping its epoch), and an older coordinator epoch fenced."""
        entry = self.producers.get(producer_id)
        if entry is None:
            return
        if producer_epoch < entry.epoch:
            raise InvalidProducerEpochError(
                f"marker epoch {producer_epoch} of producer {producer_id} is older "
                f"than {entry.epoch}"
            )
        if coordinator_epoch < entry.coordinator_epoch:
            raise TransactionCoordinatorFencedError(
                f"coordinator epoch {coordinator_epoch} of producer {producer_id} is older "
                f"than {entry.coordinator_epoch}"
            )

    def update(self, header: BatchHeader) -> None:
        """Records an appended batch (with its final offsets); also used to replay the log."""
        if header.producer_id < 0:
            return
        entry = self._entry(header.producer_id, header.producer_epoch)
        if header.is_transactional and entry.current_txn_first_offset < 0:
            entry.current_txn_first_offset = header.base_offset
            self.ongoing[header.producer_id] = header.base_offset
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

    def _entry(self, producer_id: int, epoch: int) -> ProducerEntry:
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = ProducerEntry(producer_id, epoch)
            self.producers[producer_id] = entry
        else:
            entry.set_epoch(epoch)
        return entry

    def complete_txn(
        self, header: BatchHeader, commit: bool, coordinator_epoch: int, *, appended: bool = True
    ) -> CompletedTxn | None:
        """Applies an appended marker (its control batch's `header`, with its offset):
        the producer moves to the marker's epoch and coordinator epoch, and its ongoing
        transaction, if any, ends (returned). Unchecked: check_marker ran on the leader,
        and a follower or a replay mirrors what the leader wrote. An `appended` marker
        keeps the transaction unstable until `replicated_up_to` passes the marker."""
        entry = self._entry(header.producer_id, header.producer_epoch)
        entry.coordinator_epoch = coordinator_epoch
        entry.last_timestamp = max(entry.last_timestamp, header.max_timestamp)
        first = entry.current_txn_first_offset
        if first < 0:
            return None
        entry.current_txn_first_offset = NO_OFFSET
        self.ongoing.pop(header.producer_id, None)
        marker = header.base_offset
        if appended:
            self.unreplicated.append((marker, first))
        lso = min(self.ongoing.values(), default=marker + 1)
        return CompletedTxn(header.producer_id, first, marker, not commit, lso)

    @property
    def first_unstable_offset(self) -> int | None:
        """The first offset of the earliest transaction that is ongoing, or ended by a
        marker the high watermark has not passed; None when there is none."""
        if not self.unreplicated:  # the usual case
            return min(self.ongoing.values()) if self.ongoing else None
        firsts = [first for _, first in self.unreplicated]
        return min(firsts + list(self.ongoing.values()))

    def replicated_up_to(self, high_watermark: int) -> None:
        """The high watermark moved: markers below it are on every in-sync replica."""
        unreplicated = self.unreplicated
        while unreplicated and unreplicated[0][0] < high_watermark:
            unreplicated.popleft()

    def replay(self, headers: Iterable[BatchHeader]) -> None:
        """Applies data batch headers (markers need their record: see log_loader)."""
        for header in headers:
            self.update(header)

    def remove_expired(self, now_ms: int, expiration_ms: int) -> int:
        """Forgets producers silent for longer than producer.id.expiration.ms."""
        # As in Kafka, a producer with an ongoing transaction is kept until it ends.
        expired = [
            pid
            for pid, entry in self.producers.items()
            if now_ms - entry.last_timestamp >= expiration_ms and entry.current_txn_first_offset < 0
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
        written = list(self.producers.values())
        entries = b"".join(_pack_entry(e) for e in written)
        count = struct.pack(">i", len(written))
        checksum = crc.crc32c(count + entries)
        data = struct.pack(">hI", SNAPSHOT_VERSION, checksum) + count + entries
        write_atomically(self._fs, self._snapshot_path(offset), data)

    def load(
        self,
        log_start_offset: int,
        log_end_offset: int,
        names: list[str] | None = None,
        *,
        newest_at: int | None = None,
    ) -> int:
        """Loads the newest valid snapshot at or below the log end (and at or below
        `newest_at` when given: the others are kept) and removes those above the end;
        returns the offset from which batches must be replayed."""
        for offset in reversed(self.snapshot_offsets(names)):
            path = self._snapshot_path(offset)
            if offset > log_end_offset or offset < log_start_offset:
                self._fs.remove(path)
                continue
            if newest_at is not None and offset > newest_at:
                continue
            try:
                self._set(_parse_snapshot(self._fs.read_file(path)))
            except ValueError:
                self._fs.remove(path)  # corrupt: fall back to an older one or a full replay
                continue
            return offset
        self._set({})
        return log_start_offset

    def _set(self, producers: dict[int, ProducerEntry]) -> None:
        self.producers = producers
        self.unreplicated.clear()
        self.ongoing = {
            pid: e.current_txn_first_offset
            for pid, e in producers.items()
            if e.current_txn_first_offset >= 0
        }

    def delete_snapshots_above(self, offset: int) -> None:
        """Removes the snapshots of offsets past `offset` (a truncated log's new end)."""
        for snapshot in self.snapshot_offsets():
            if snapshot > offset:
                self._fs.remove(self._snapshot_path(snapshot))

    def delete_snapshots_below(self, offset: int) -> None:
        for snapshot in self.snapshot_offsets():
            if snapshot < offset:
                self._fs.remove(self._snapshot_path(snapshot))


def _pack_entry(e: ProducerEntry) -> bytes:
    """One snapshot entry; a producer without batches in its epoch (a marker moved it
    there) has last sequence and last offset -1, as in Kafka."""
    last = e.batches[-1] if e.batches else None
    return _ENTRY.pack(
        e.producer_id,
        e.epoch,
        last.last_seq if last is not None else -1,
        last.last_offset if last is not None else -1,
        last.last_offset - last.first_offset if last is not None else 0,
        e.last_timestamp,
        e.coordinator_epoch,
        e.current_txn_first_offset,
    )


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
        pid, epoch, last_seq, last_offset, delta, ts, coordinator_epoch, txn_first = (
            _ENTRY.unpack_from(data, _HEAD.size + i * _ENTRY.size)
        )
        entry = ProducerEntry(pid, epoch, last_timestamp=ts)
        entry.coordinator_epoch = coordinator_epoch
        entry.current_txn_first_offset = txn_first if txn_first >= 0 else NO_OFFSET
        if last_offset >= 0:
            first_seq = (last_seq - delta) % (INT_MAX + 1)
            entry.batches.append(
                BatchMetadata(first_seq, last_seq, last_offset - delta, last_offset, ts)
            )
        producers[pid] = entry
    return producers
