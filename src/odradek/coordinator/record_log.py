"""Where a coordinator's records live: the partitions of an internal topic
(`__consumer_offsets` for the group coordinator, `__transaction_state` for transactions).

`RecordLog` is what a coordinator needs: append one batch of (key, value) records to a
partition, atomically, and read a partition back from the start when loading.

Transactional offset commits (KIP-98) append their batch as the producer's: `append` with
a `TxnProducer` writes it with the producer id and epoch and the transactional attribute,
so that the partition's marker for that transaction ends it. Loading then needs batches,
not just records: `read_batches` returns each batch with its producer id, transactional
and control flags, and for a control batch the marker's type (commit or abort, from the
ControlRecordType key).
`TopicRecordLog` stores them in the broker's own internal topic (an `InternalTopic`: its
name, partition count and configs), created on first use as Kafka does; `MemoryRecordLog`
keeps them in lists, for tests.

In a cluster (`zookeeper.connect`) the log is `replicated`: the topic's partitions are
hosted and led as ZooKeeper says (replication/cluster.py), so an append goes only to a
partition this broker leads, and it counts as written once every ISR member has it —
`append` then returns the future of that replication, as an acks=all produce waits.
Creating the topic there is a ZooKeeper write with a replica placement, which belongs to
the handlers' topic operations; the coordinator sits below them, so whoever asks for the
topic passes the function that creates it (`ensure_ready(create)`).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from kio.schema.errors import ErrorCode

from odradek.config import BrokerConfig
from odradek.metadata.image import TopicImage
from odradek.metadata.store import TopicInfo
from odradek.protocol.batch import iter_batches, read_header
from odradek.protocol.records import SimpleRecord, build_batch, decode_batch
from odradek.replication.partition import Partition
from odradek.replication.replica_manager import ReplicaManager
from odradek.storage.errors import KafkaStorageError, RecordTooLargeError, StorageError
from odradek.storage.producer_state import (
    InvalidProducerEpochError,
    InvalidTxnStateError,
    OutOfOrderSequenceError,
)

OFFSETS_TOPIC = "__consumer_offsets"
READ_CHUNK_BYTES = 1 << 20
INT32_MAX = 2**31 - 1
# A control record's key: version int16, type int16 (Kafka's ControlRecordType).
_CONTROL_KEY = struct.Struct(">hh")
CONTROL_ABORT = 0
CONTROL_COMMIT = 1

RawRecord = tuple[bytes, bytes | None]
# Answered with the append's replication error code (ErrorCode.none once every ISR
# member has the batch), as Partition.wait_for_replication answers an acks=all produce.
Replication = asyncio.Future[ErrorCode]
# (topic name, partition count, topic configs): creates the internal topic in a cluster.
TopicCreator = Callable[[str, int, Mapping[str, str]], object]


@dataclass(frozen=True)
class InternalTopic:
    """What an internal topic is created with when first needed (an existing topic keeps
    its partition count and configs)."""

    name: str
    partitions: int
    configs: Mapping[str, str]


def offsets_topic(config: BrokerConfig) -> InternalTopic:
    """`__consumer_offsets` as the group coordinator creates it."""
    return InternalTopic(
        OFFSETS_TOPIC,
        config.offsets_topic_num_partitions,
        {
            "cleanup.policy": "compact",
            "compression.type": "producer",
            "segment.bytes": str(config.offsets_topic_segment_bytes),
        },
    )


@dataclass(frozen=True, slots=True)
class TxnProducer:
    """The producer whose open transaction a batch belongs to."""

    producer_id: int
    producer_epoch: int


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """One batch of a partition as loading sees it. For a control batch `commit` is the
    marker's type (True commit, False abort; None for another control record type) and
    `records` is empty."""

    producer_id: int
    producer_epoch: int
    is_transactional: bool
    is_control: bool
    commit: bool | None
    records: tuple[RawRecord, ...]


def control_commit(key: bytes | None) -> bool | None:
    """The type of a control record's key: True for COMMIT, False for ABORT, None for
    anything else (a newer control type, or bytes that do not parse)."""
    if key is None or len(key) < _CONTROL_KEY.size:
        return None
    _, kind = _CONTROL_KEY.unpack_from(key)
    if kind == CONTROL_COMMIT:
        return True
    return False if kind == CONTROL_ABORT else None


# How an append the log refuses is answered (the coordinator may translate further:
# MESSAGE_TOO_LARGE is INVALID_COMMIT_OFFSET_SIZE for offsets, as in Kafka).
_REFUSALS: dict[type[StorageError], ErrorCode] = {
    RecordTooLargeError: ErrorCode.message_too_large,
    InvalidProducerEpochError: ErrorCode.invalid_producer_epoch,
    OutOfOrderSequenceError: ErrorCode.out_of_order_sequence_number,
    InvalidTxnStateError: ErrorCode.invalid_txn_state,
}


class CoordinatorWriteError(Exception):
    """The records could not be appended; nothing of them was applied. `error` is what
    the request answers: NOT_COORDINATOR when this broker does not lead the partition
    (the client then looks the coordinator up again), else COORDINATOR_NOT_AVAILABLE."""

    def __init__(self, message: str, error: ErrorCode = ErrorCode.coordinator_not_available):
        super().__init__(message)
        self.error = error


class RecordLog(Protocol):
    @property
    def topic(self) -> str:
        """The internal topic's name (whose leadership changes concern this log)."""
        ...

    @property
    def partitions(self) -> int: ...

    @property
    def replicated(self) -> bool:
        """True in a cluster: the coordinator owns only the partitions this broker leads,
        as `GroupCoordinator.leadership_changed` tells it; False: it owns every one."""
        ...

    def ensure_ready(self, create: TopicCreator | None = None) -> None:
        """Creates the storage if it does not exist yet (FindCoordinator calls this);
        a replicated log creates it only through `create`."""

    def append(
        self,
        partition: int,
        records: Sequence[RawRecord],
        timestamp_ms: int,
        producer: TxnProducer | None = None,
    ) -> Replication | None:
        """Appends one batch (transactional, of `producer`, when given); returns its
        replication, or None when it is already as durable as it gets (a single
        broker's log, or no follower left to wait for)."""
        ...

    def read(self, partition: int) -> Iterator[RawRecord]:
        """The records of every data batch, in log order (control batches skipped)."""
        ...

    def read_batches(self, partition: int) -> Iterator[StoredBatch]:
        """Every batch, in log order, with its producer and control information."""
        ...


class MemoryRecordLog:
    """Records in memory, per partition (tests). A `replicated` one acts as a cluster
    broker's log: appending to a partition not in `leading` is NOT_COORDINATOR, and with
    `hold_replication` each append returns a future in `replications` for the test to
    answer."""

    def __init__(
        self, partitions: int = 1, replicated: bool = False, topic: str = OFFSETS_TOPIC
    ) -> None:
        self._topic = topic
        self._partitions = partitions
        self._replicated = replicated
        self.records: dict[int, list[RawRecord]] = {}
        self.batches: dict[int, list[StoredBatch]] = {}
        self.fail_next = False
        self.leading: set[int] = set()
        self.hold_replication = False
        self.replications: list[Replication] = []

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def partitions(self) -> int:
        return self._partitions

    @property
    def replicated(self) -> bool:
        return self._replicated

    def ensure_ready(self, create: TopicCreator | None = None) -> None:
        pass

    def append(
        self,
        partition: int,
        records: Sequence[RawRecord],
        timestamp_ms: int,
        producer: TxnProducer | None = None,
    ) -> Replication | None:
        if self.fail_next:
            self.fail_next = False
            raise CoordinatorWriteError("injected failure")
        if self._replicated and partition not in self.leading:
            raise CoordinatorWriteError(f"not the leader of {partition}", ErrorCode.not_coordinator)
        self.records.setdefault(partition, []).extend(records)
        pid, epoch = (producer.producer_id, producer.producer_epoch) if producer else (-1, -1)
        batch = StoredBatch(pid, epoch, producer is not None, False, None, tuple(records))
        self.batches.setdefault(partition, []).append(batch)
        if not self.hold_replication:
            return None
        replication: Replication = asyncio.get_running_loop().create_future()
        self.replications.append(replication)
        return replication

    def append_marker(
        self, partition: int, producer_id: int, producer_epoch: int, commit: bool
    ) -> None:
        """A transaction marker, as WriteTxnMarkers appends it to a real partition."""
        marker = StoredBatch(producer_id, producer_epoch, True, True, commit, ())
        self.batches.setdefault(partition, []).append(marker)

    def read(self, partition: int) -> Iterator[RawRecord]:
        yield from self.records.get(partition, [])

    def read_batches(self, partition: int) -> Iterator[StoredBatch]:
        yield from self.batches.get(partition, [])


class TopicRecordLog:
    """An internal compacted topic, by default `__consumer_offsets` created when first
    needed with `offsets.topic.num.partitions` partitions (an existing topic keeps its
    count)."""

    def __init__(
        self,
        config: BrokerConfig,
        metadata: TopicImage,
        replicas: ReplicaManager,
        topic: InternalTopic | None = None,
    ) -> None:
        self._config = config
        self._metadata = metadata
        self._replicas = replicas
        self._topic = topic if topic is not None else offsets_topic(config)

    @property
    def topic(self) -> str:
        return self._topic.name

    @property
    def exists(self) -> bool:
        return self._topic.name in self._metadata.topics

    @property
    def partitions(self) -> int:
        topic = self._metadata.topics.get(self._topic.name)
        return topic.partitions if topic is not None else self._topic.partitions

    @property
    def replicated(self) -> bool:
        # The same switch that makes the broker a cluster member (server/broker.py).
        return bool(self._config.zookeeper_connect)

    def ensure_ready(self, create: TopicCreator | None = None) -> None:
        if self.replicated:
            self._ensure_cluster_topic(create)
        else:
            self.ensure_topic()

    def ensure_topic(self) -> TopicInfo:
        """A single broker's topic: created in the image and hosted here, all of it."""
        topic = self._metadata.topics.get(self._topic.name)
        if topic is None:
            topic = self._metadata.create_topic(
                self._topic.name,
                self._topic.partitions,
                dict(self._topic.configs),
                internal=True,
            )
        self._replicas.host_topic(topic)
        return topic

    def _ensure_cluster_topic(self, create: TopicCreator | None) -> None:
        """A cluster's topic: `create` writes it to ZooKeeper; the controller elects the
        leaders and each broker hosts the partitions assigned to it."""
        if self.exists:
            return
        if create is None:
            raise CoordinatorWriteError(f"{self._topic.name} does not exist yet")
        create(self._topic.name, self._topic.partitions, dict(self._topic.configs))

    def append(
        self,
        partition: int,
        records: Sequence[RawRecord],
        timestamp_ms: int,
        producer: TxnProducer | None = None,
    ) -> Replication | None:
        target = self._leader(partition)
        simple = [SimpleRecord(value, key=key, timestamp=timestamp_ms) for key, value in records]
        if producer is None:
            batch = build_batch(simple)
        else:
            batch = build_batch(
                simple,
                producer_id=producer.producer_id,
                producer_epoch=producer.producer_epoch,
                base_sequence=_next_sequence(target, producer),
                is_transactional=True,
            )
        try:
            info = target.append(batch, read_header(batch))
        except (KafkaStorageError, OSError, ValueError) as exc:
            raise CoordinatorWriteError(str(exc)) from exc
        except StorageError as exc:
            # Refused as a produce would be: too large, or the producer's epoch or
            # sequence (a fenced producer: a newer epoch, or its marker, wrote here).
            error = _REFUSALS.get(type(exc), ErrorCode.unknown_server_error)
            raise CoordinatorWriteError(str(exc), error) from exc
        # None at once on a single broker (its partitions are not replicated).
        return target.wait_for_replication(info.last_offset + 1)

    def _leader(self, partition: int) -> Partition:
        """The partition to append to; only its leader may (Kafka appends the
        coordinator's records with acks=-1, so too few in-sync replicas refuse it too)."""
        if not self.replicated:
            self.ensure_topic()
        name = self._topic.name
        target = self._replicas.get(name, partition)
        if target is None or not target.is_leader:
            raise CoordinatorWriteError(
                f"not the leader of {name}-{partition}", ErrorCode.not_coordinator
            )
        if target.replicated and len(target.isr) < target.min_insync_replicas:
            raise CoordinatorWriteError(
                f"{name}-{partition} has {len(target.isr)} in-sync replicas, "
                f"fewer than min.insync.replicas={target.min_insync_replicas}"
            )
        return target

    def read(self, partition: int) -> Iterator[RawRecord]:
        for batch in self.read_batches(partition):
            yield from batch.records

    def read_batches(self, partition: int) -> Iterator[StoredBatch]:
        source = self._replicas.get(self._topic.name, partition)
        if source is None:
            return
        log = source.log
        offset = log.log_start_offset
        while offset < log.log_end_offset:
            data = log.read(offset, READ_CHUNK_BYTES, log.log_end_offset, True).records
            if not data:
                return
            for pos, header in iter_batches(data):
                _, decoded = decode_batch(bytes(data[pos : pos + header.size]))
                commit = None
                records: list[RawRecord] = []
                if header.is_control:
                    commit = control_commit(decoded[0].key) if decoded else None
                else:
                    # A read starting inside a batch skips the records before `offset`.
                    records = [
                        (r.key, r.value)
                        for r in decoded
                        if r.key is not None and r.offset >= offset
                    ]
                yield StoredBatch(
                    header.producer_id,
                    header.producer_epoch,
                    header.is_transactional,
                    header.is_control,
                    commit,
                    tuple(records),
                )
                offset = header.last_offset + 1


def _next_sequence(target: Partition, producer: TxnProducer) -> int:
    """The base sequence the producer state of `target` expects from this producer's
    next batch. Kafka appends the coordinator's transactional batches without sequence
    checks; our log checks every producer batch, so the batch takes the next sequence
    (0 in a new epoch): without it a second commit of the same size would look like a
    retry of the first and not be written."""
    entry = target.log.producer_state.producers.get(producer.producer_id)
    if entry is None or entry.epoch != producer.producer_epoch or not entry.batches:
        return 0
    return 0 if entry.last_seq >= INT32_MAX else entry.last_seq + 1
