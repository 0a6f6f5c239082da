"""Request builders shared by the handler tests (latest versions unless told)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from odradek.protocol.batch import iter_batches
from odradek.protocol.records import Record, SimpleRecord, build_batch, decode_batch
from tests.server.wire import WireClient, build, request_module

TIMEOUT = datetime.timedelta(seconds=5)
PRODUCE_V = 11
FETCH_V = 12


def create_topics_request(
    name: str, partitions: int = 1, configs: dict[str, str] | None = None
) -> Any:
    """A CreateTopics v7 body for one topic (replication factor 1)."""
    m = request_module(19, 7)
    entries = tuple(
        build(m.CreatableTopicConfig, name=k, value=v) for k, v in (configs or {}).items()
    )
    topic = build(
        m.CreatableTopic,
        name=name,
        num_partitions=partitions,
        replication_factor=1,
        assignments=(),
        configs=entries,
    )
    return build(m.CreateTopicsRequest, topics=(topic,), timeout=TIMEOUT)


def create_topic(
    client: WireClient, name: str, partitions: int = 1, configs: dict[str, str] | None = None
) -> Any:
    return client.call(19, 7, create_topics_request(name, partitions, configs)).topics[0]


def ensure_topic(client: WireClient, name: str, partitions: int = 1) -> str:
    """Creates a topic and asserts that it worked; returns its name."""
    result = create_topic(client, name, partitions)
    assert result.error_code == 0, f"creating {name}: {result.error_code!r}"
    return name


def produce(
    client: WireClient,
    name: str,
    records: list[SimpleRecord],
    partition: int = 0,
    acks: int = -1,
    compression: int = 0,
) -> Any:
    """The partition response of one produce request."""
    batch = build_batch(records, compression=compression)
    return produce_batch(client, name, batch, partition=partition, acks=acks)


def produce_request(
    topic: str,
    batch: bytes,
    *,
    version: int = PRODUCE_V,
    partition: int = 0,
    acks: int = -1,
    transactional_id: str | None = None,
    topic_id: uuid.UUID | None = None,
) -> Any:
    """A Produce body carrying one batch to one partition (the topic named, or from
    version 13 given by `topic_id`)."""
    m = request_module(0, version)
    data = build(m.PartitionProduceData, index=partition, records=batch)
    ids = {} if topic_id is None else {"topic_id": topic_id}
    topic_data = build(m.TopicProduceData, name=topic, partition_data=(data,), **ids)
    return build(
        m.ProduceRequest,
        acks=acks,
        timeout=TIMEOUT,
        transactional_id=transactional_id,
        topic_data=(topic_data,),
    )


def produce_batch(
    client: WireClient, topic: str, batch: bytes, *, version: int = PRODUCE_V, **options: Any
) -> Any:
    """The partition response of a Produce of one batch (options: see produce_request)."""
    body = produce_request(topic, batch, version=version, **options)
    return client.call(0, version, body).responses[0].partition_responses[0]


def fetch_request(
    parts: list[tuple[str, int, int]],
    max_wait_ms: int = 0,
    min_bytes: int = 0,
    max_bytes: int = 50 << 20,
    partition_max_bytes: int = 1 << 20,
    session_id: int = 0,
    session_epoch: int = -1,
    forgotten: list[tuple[str, int]] | None = None,
    version: int = FETCH_V,
) -> Any:
    m = request_module(1, version)
    topics: dict[str, list[Any]] = {}
    for name, partition, offset in parts:
        topics.setdefault(name, []).append(
            build(
                m.FetchPartition,
                partition=partition,
                fetch_offset=offset,
                partition_max_bytes=partition_max_bytes,
            )
        )
    gone: dict[str, list[int]] = {}
    for name, partition in forgotten or []:
        gone.setdefault(name, []).append(partition)
    return build(
        m.FetchRequest,
        max_wait=datetime.timedelta(milliseconds=max_wait_ms),
        min_bytes=min_bytes,
        max_bytes=max_bytes,
        session_id=session_id,
        session_epoch=session_epoch,
        topics=tuple(build(m.FetchTopic, topic=n, partitions=tuple(p)) for n, p in topics.items()),
        forgotten_topics_data=tuple(
            build(m.ForgottenTopic, topic=n, partitions=tuple(p)) for n, p in gone.items()
        ),
    )


def records_of(data: bytes | None) -> list[Record]:
    """Every record in a fetched record set."""
    out: list[Record] = []
    for pos, header in iter_batches(data or b""):
        out.extend(decode_batch(bytes(data or b"")[pos : pos + header.size])[1])
    return out


def list_offset(
    client: WireClient, name: str, timestamp: int, partition: int = 0, isolation: int = 0
) -> Any:
    """The partition response of ListOffsets v9 (`isolation` 1: read_committed)."""
    m = request_module(2, 9)
    part = build(m.ListOffsetsPartition, partition_index=partition, timestamp=timestamp)
    topic = build(m.ListOffsetsTopic, name=name, partitions=(part,))
    body = build(
        m.ListOffsetsRequest,
        replica_id=-1,
        isolation_level=isolation,
        topics=(topic,),
        timeout=TIMEOUT,
    )
    return client.call(2, 9, body).topics[0].partitions[0]
