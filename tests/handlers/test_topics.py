"""CreateTopics, DeleteTopics, CreatePartitions and Metadata error codes at the wire level."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode

from odradek.testing import Broker
from tests.handlers.kafka_wire import TIMEOUT, create_topic
from tests.server.wire import WireClient, build, request_module


@pytest.fixture
def broker() -> Iterator[Broker]:
    with Broker(config={"num.partitions": 2, "auto.create.topics.enable": "false"}) as running:
        yield running


def _metadata(client: WireClient, names: list[str], auto: bool = False) -> dict[str, object]:
    m = request_module(3, 12)
    topics = tuple(build(m.MetadataRequestTopic, name=n, topic_id=None) for n in names)
    response = client.call(
        3,
        12,
        build(
            m.MetadataRequest,
            topics=topics,
            allow_auto_topic_creation=auto,
            include_topic_authorized_operations=False,
        ),
    )
    return {t.name: t for t in response.topics}


def test_create_topic_errors(broker: Broker) -> None:
    """Each bad CreateTopics request gets Kafka's error code, and nothing is created."""
    with WireClient(broker.port) as client:
        assert create_topic(client, "fine", partitions=-1).error_code == ErrorCode.none
        assert create_topic(client, "fine").error_code == ErrorCode.topic_already_exists
        assert create_topic(client, "bad/name").error_code == ErrorCode.invalid_topic_exception
        assert create_topic(client, "fi.ne").error_code == ErrorCode.none
        assert create_topic(client, "fi_ne").error_code == ErrorCode.invalid_topic_exception
        assert create_topic(client, "zero", partitions=0).error_code == ErrorCode.invalid_partitions
        bad = create_topic(client, "cfg", configs={"retention.ms": "soon"})
        assert bad.error_code == ErrorCode.invalid_config
        unknown = create_topic(client, "cfg", configs={"no.such.config": "1"})
        assert unknown.error_code == ErrorCode.invalid_config
        found = _metadata(client, ["fine", "cfg", "zero"])
        assert len(found["fine"].partitions) == 2  # type: ignore[attr-defined]
        assert found["cfg"].error_code == ErrorCode.unknown_topic_or_partition  # type: ignore[attr-defined]


def test_replication_factor_and_validate_only(broker: Broker) -> None:
    """Replication factor 3 is refused on one broker; validate_only creates nothing."""
    with WireClient(broker.port) as client:
        m = request_module(19, 7)
        topic = build(
            m.CreatableTopic,
            name="rf",
            num_partitions=1,
            replication_factor=3,
            assignments=(),
            configs=(),
        )
        result = client.call(19, 7, build(m.CreateTopicsRequest, topics=(topic,), timeout=TIMEOUT))
        assert result.topics[0].error_code == ErrorCode.invalid_replication_factor
        topic = build(
            m.CreatableTopic,
            name="dry",
            num_partitions=4,
            replication_factor=1,
            assignments=(),
            configs=(),
        )
        body = build(m.CreateTopicsRequest, topics=(topic,), timeout=TIMEOUT, validate_only=True)
        assert client.call(19, 7, body).topics[0].error_code == ErrorCode.none
        assert _metadata(client, ["dry"])["dry"].error_code == ErrorCode.unknown_topic_or_partition  # type: ignore[attr-defined]


def test_delete_by_id_removes_files(broker: Broker) -> None:
    """DeleteTopics v6 by topic id removes the topic and its partition directories."""
    with WireClient(broker.port) as client:
        topic_id = create_topic(client, "gone", partitions=2).topic_id
        assert os.path.isdir(os.path.join(broker.data_dir, "gone-0"))
        m = request_module(20, 6)
        state = build(m.DeleteTopicState, name=None, topic_id=topic_id)
        result = client.call(20, 6, build(m.DeleteTopicsRequest, topics=(state,), timeout=TIMEOUT))
        assert result.responses[0].error_code == ErrorCode.none
        assert (
            _metadata(client, ["gone"])["gone"].error_code == ErrorCode.unknown_topic_or_partition
        )  # type: ignore[attr-defined]
        assert not any(name.startswith("gone-") for name in os.listdir(broker.data_dir))
        again = client.call(20, 6, build(m.DeleteTopicsRequest, topics=(state,), timeout=TIMEOUT))
        assert again.responses[0].error_code == ErrorCode.unknown_topic_id


def test_create_partitions_grows_only(broker: Broker) -> None:
    """CreatePartitions adds partitions and refuses to shrink."""
    with WireClient(broker.port) as client:
        create_topic(client, "grow", partitions=2)
        m = request_module(37, 3)

        def grow(count: int) -> int:
            topic = build(m.CreatePartitionsTopic, name="grow", count=count, assignments=None)
            body = build(
                m.CreatePartitionsRequest,
                topics=(topic,),
                timeout=datetime.timedelta(seconds=5),
                validate_only=False,
            )
            return int(client.call(37, 3, body).results[0].error_code)

        assert grow(5) == ErrorCode.none
        assert len(_metadata(client, ["grow"])["grow"].partitions) == 5  # type: ignore[attr-defined]
        assert grow(3) == ErrorCode.invalid_partitions


def test_auto_creation_follows_config_and_request() -> None:
    """Metadata creates unknown topics only when both the broker and the request allow it."""
    with Broker(config={"num.partitions": 3}) as running, WireClient(running.port) as client:
        assert (
            _metadata(client, ["auto1"])["auto1"].error_code == ErrorCode.unknown_topic_or_partition
        )  # type: ignore[attr-defined]
        created = _metadata(client, ["auto1"], auto=True)["auto1"]
        assert created.error_code == ErrorCode.none  # type: ignore[attr-defined]
        assert len(created.partitions) == 3  # type: ignore[attr-defined]
        bad = _metadata(client, ["bad name"], auto=True)["bad name"]
        assert bad.error_code == ErrorCode.invalid_topic_exception  # type: ignore[attr-defined]
