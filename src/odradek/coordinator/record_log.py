"""Where the coordinator's records live: the partitions of `__consumer_offsets`.

`RecordLog` is what the coordinator needs: append one batch of (key, value) records to a
partition, atomically, and read a partition back from the start when loading.
`TopicRecordLog` stores them in the broker's own internal topic, created on first use as
Kafka does; `MemoryRecordLog` keeps them in lists, for tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from odradek.config import BrokerConfig
from odradek.metadata.store import MetadataStore, TopicInfo
from odradek.protocol.batch import iter_batches, read_header
from odradek.protocol.records import SimpleRecord, build_batch, decode_batch
from odradek.replication.replica_manager import ReplicaManager
from odradek.storage.errors import KafkaStorageError

OFFSETS_TOPIC = "__consumer_offsets"
READ_CHUNK_BYTES = 1 << 20

RawRecord = tuple[bytes, bytes | None]


class CoordinatorWriteError(Exception):
    """The records could not be appended; nothing of them was applied."""


class RecordLog(Protocol):
    @property
    def partitions(self) -> int: ...

    def ensure_ready(self) -> None:
        """Creates the storage if it does not exist yet (FindCoordinator calls this)."""

    def append(self, partition: int, records: Sequence[RawRecord], timestamp_ms: int) -> None: ...

    def read(self, partition: int) -> Iterator[RawRecord]: ...


class MemoryRecordLog:
    """Records in memory, per partition (tests)."""

    def __init__(self, partitions: int = 1) -> None:
        self._partitions = partitions
        self.records: dict[int, list[RawRecord]] = {}
        self.fail_next = False

    @property
    def partitions(self) -> int:
        return self._partitions

    def ensure_ready(self) -> None:
        pass

    def append(self, partition: int, records: Sequence[RawRecord], timestamp_ms: int) -> None:
        if self.fail_next:
            self.fail_next = False
            raise CoordinatorWriteError("injected failure")
        self.records.setdefault(partition, []).extend(records)

    def read(self, partition: int) -> Iterator[RawRecord]:
        yield from self.records.get(partition, [])


class TopicRecordLog:
    """The internal compacted topic `__consumer_offsets`, created when first needed with
    `offsets.topic.num.partitions` partitions (an existing topic keeps its count)."""

    def __init__(
        self, config: BrokerConfig, metadata: MetadataStore, replicas: ReplicaManager
    ) -> None:
        self._config = config
        self._metadata = metadata
        self._replicas = replicas

    @property
    def exists(self) -> bool:
        return OFFSETS_TOPIC in self._metadata.topics

    @property
    def partitions(self) -> int:
        topic = self._metadata.topics.get(OFFSETS_TOPIC)
        return topic.partitions if topic is not None else self._config.offsets_topic_num_partitions

    def ensure_ready(self) -> None:
        self.ensure_topic()

    def ensure_topic(self) -> TopicInfo:
        topic = self._metadata.topics.get(OFFSETS_TOPIC)
        if topic is None:
            configs = {
                "cleanup.policy": "compact",
                "compression.type": "producer",
                "segment.bytes": str(self._config.offsets_topic_segment_bytes),
            }
            topic = self._metadata.create_topic(
                OFFSETS_TOPIC, self._config.offsets_topic_num_partitions, configs, internal=True
            )
        self._replicas.host_topic(topic)
        return topic

    def append(self, partition: int, records: Sequence[RawRecord], timestamp_ms: int) -> None:
        self.ensure_topic()
        target = self._replicas.get(OFFSETS_TOPIC, partition)
        if target is None:
            raise CoordinatorWriteError(f"{OFFSETS_TOPIC}-{partition} is not hosted")
        batch = build_batch(
            [SimpleRecord(value, key=key, timestamp=timestamp_ms) for key, value in records]
        )
        try:
            target.append(batch, read_header(batch))
        except (KafkaStorageError, OSError, ValueError) as exc:
            raise CoordinatorWriteError(str(exc)) from exc

    def read(self, partition: int) -> Iterator[RawRecord]:
        source = self._replicas.get(OFFSETS_TOPIC, partition)
        if source is None:
            return
        log = source.log
        offset = log.log_start_offset
        while offset < log.log_end_offset:
            data = log.read(offset, READ_CHUNK_BYTES, log.log_end_offset, True).records
            if not data:
                return
            for pos, header in iter_batches(data):
                if header.is_control:
                    offset = header.last_offset + 1
                    continue
                _, records = decode_batch(bytes(data[pos : pos + header.size]))
                for record in records:
                    if record.key is not None and record.offset >= offset:
                        yield record.key, record.value
                offset = header.last_offset + 1
