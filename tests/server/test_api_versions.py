"""Every API version the broker advertises is served: a minimal valid request of each
version gets a well-formed response of that version without an error."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.handlers.registry import HANDLERS
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.testing import Broker
from tests.server.wire import WireClient, build, request_module

TIMEOUT = datetime.timedelta(seconds=5)


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with Broker() as running:
        yield running


def _topic(broker: Broker, name: str) -> uuid.UUID:
    assert broker.broker is not None
    return broker.broker.services.metadata.topics[name].topic_id


def _ensure_topic(broker: Broker, client: WireClient, name: str) -> uuid.UUID:
    module = request_module(19, 7)
    topic = build(
        module.CreatableTopic,
        name=name,
        num_partitions=1,
        replication_factor=1,
        assignments=(),
        configs=(),
    )
    client.call(19, 7, build(module.CreateTopicsRequest, topics=(topic,), timeout=TIMEOUT))
    return _topic(broker, name)


def _produce(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    batch = build_batch([SimpleRecord(b"v", key=b"k", timestamp=1_700_000_000_000)])
    data = build(m.PartitionProduceData, index=0, records=batch)
    topic = build(m.TopicProduceData, name=name, topic_id=topic_id, partition_data=(data,))
    return build(
        m.ProduceRequest, acks=1, timeout=TIMEOUT, topic_data=(topic,), transactional_id=None
    )


def _fetch(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    part = build(m.FetchPartition, partition=0, fetch_offset=0, partition_max_bytes=1 << 20)
    topic = build(m.FetchTopic, topic=name, topic_id=topic_id, partitions=(part,))
    return build(
        m.FetchRequest,
        max_wait=datetime.timedelta(0),
        min_bytes=0,
        topics=(topic,),
        forgotten_topics_data=(),
    )


def _list_offsets(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    part = build(m.ListOffsetsPartition, partition_index=0, timestamp=-1)
    topic = build(m.ListOffsetsTopic, name=name, partitions=(part,))
    return build(
        m.ListOffsetsRequest, replica_id=-1, isolation_level=0, topics=(topic,), timeout=TIMEOUT
    )


def _metadata(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    topic = build(m.MetadataRequestTopic, name=name, topic_id=None)
    return build(
        m.MetadataRequest,
        topics=(topic,),
        allow_auto_topic_creation=False,
        include_cluster_authorized_operations=False,
        include_topic_authorized_operations=False,
    )


def _api_versions(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(m.ApiVersionsRequest, client_software_name="t", client_software_version="1")


def _create_partitions(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    topic = build(m.CreatePartitionsTopic, name=name, count=2, assignments=None)
    return build(m.CreatePartitionsRequest, topics=(topic,), timeout=TIMEOUT, validate_only=True)


def _create_topics(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    topic = build(
        m.CreatableTopic,
        name=name + "-new",
        num_partitions=1,
        replication_factor=1,
        assignments=(),
        configs=(),
    )
    return build(m.CreateTopicsRequest, topics=(topic,), timeout=TIMEOUT, validate_only=True)


def _delete_topics(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    state = (
        build(m.DeleteTopicState, name=name, topic_id=None)
        if hasattr(m, "DeleteTopicState")
        else None
    )
    return build(m.DeleteTopicsRequest, topics=(state,), topic_names=(name,), timeout=TIMEOUT)


def _init_producer_id(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(
        m.InitProducerIdRequest,
        transactional_id=None,
        transaction_timeout=datetime.timedelta(seconds=60),
    )


BUILDERS = {
    0: _produce,
    1: _fetch,
    2: _list_offsets,
    3: _metadata,
    18: _api_versions,
    19: _create_topics,
    20: _delete_topics,
    22: _init_producer_id,
    37: _create_partitions,
}
CASES = [
    (spec.api_key, version)
    for spec in sorted(HANDLERS.values(), key=lambda s: s.api_key)
    for version in range(spec.min_version, spec.max_version + 1)
]


def _errors(value: Any) -> list[int]:
    """Every error_code anywhere in a response."""
    found = []
    if hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            item = getattr(value, name)
            if name == "error_code":
                found.append(int(item))
            else:
                found.extend(_errors(item))
    elif isinstance(value, tuple):
        for item in value:
            found.extend(_errors(item))
    return found


def test_every_registered_api_has_a_builder() -> None:
    """The table below covers every API the broker advertises."""
    assert set(BUILDERS) == set(HANDLERS)


@pytest.mark.parametrize(("api_key", "version"), CASES)
def test_advertised_version_is_served(broker: Broker, api_key: int, version: int) -> None:
    """A minimal valid request of this version is answered without error."""
    name = f"versions-{api_key}-{version}"
    with WireClient(broker.port) as client:
        topic_id = _ensure_topic(broker, client, name)
        body = BUILDERS[api_key](request_module(api_key, version), name, topic_id)
        response = client.call(api_key, version, body)
    assert _errors(response) == [0] * len(_errors(response))


def test_api_versions_lists_the_handler_table(broker: Broker) -> None:
    """ApiVersions v3 lists exactly the registered APIs and their version ranges."""
    with WireClient(broker.port) as client:
        response = client.call(18, 3, _api_versions(request_module(18, 3), "", uuid.uuid4()))
    served = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert served == {s.api_key: (s.min_version, s.max_version) for s in HANDLERS.values()}


def test_too_new_api_versions_gets_v0_unsupported_version(broker: Broker) -> None:
    """ApiVersions v99 is answered as v0 with UNSUPPORTED_VERSION and the table, as Kafka does."""
    import socket
    import struct

    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as sock:
        body = struct.pack(">hhih", 18, 99, 42, -1) + b"\x00"
        sock.sendall(struct.pack(">i", len(body)) + body)
        client = WireClient.__new__(WireClient)
        client.sock = sock
        correlation_id, response = client.receive(18, 0)
    assert correlation_id == 42
    assert response.error_code == ErrorCode.unsupported_version
    assert {k.api_key for k in response.api_keys} == set(HANDLERS)
