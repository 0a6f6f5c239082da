"""OffsetForLeaderEpoch over the wire, every served version: end offsets of known, older,
newer and latest epochs, current-epoch fencing, leadership and unknown partitions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.protocol.batch import read_header
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.replication.client import BrokerClient
from odradek.replication.partition import Partition
from odradek.testing import Broker
from tests.server.wire import build, request_module

API_KEY = 23
VERSIONS = [2, 3, 4]
TOPIC = "epochs"
# (leader epoch, records) appended in turn: epochs 0@0, 2@3, 5@5, log end offset 6
HISTORY = [(0, 3), (2, 2), (5, 1)]


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    """A broker whose partition `epochs`-0 was written by leaders of epochs 0, 2 and 5."""
    async with Broker() as running:
        running.create_topic(TOPIC, partitions=1)
        partition = _partition(running)
        for epoch, count in HISTORY:
            partition.leader_epoch = epoch
            batch = build_batch([SimpleRecord(b"v", key=None, timestamp=1) for _ in range(count)])
            partition.append(batch, read_header(batch))
        yield running


@pytest.fixture
async def client(broker: Broker) -> AsyncIterator[BrokerClient]:
    connected = BrokerClient("127.0.0.1", broker.port)
    await connected.connect(5)
    yield connected
    await connected.close()


def _partition(broker: Broker, topic: str = TOPIC) -> Partition:
    assert broker.broker is not None
    found = broker.broker.services.replicas.get(topic, 0)
    assert found is not None
    return found


async def _ask(
    client: BrokerClient,
    version: int,
    leader_epoch: int,
    current_leader_epoch: int = -1,
    topic: str = TOPIC,
    partition: int = 0,
    replica_id: int = -1,
) -> Any:
    """The one partition result of a request for one partition."""
    m = request_module(API_KEY, version)
    part = build(
        m.OffsetForLeaderPartition,
        partition=partition,
        current_leader_epoch=current_leader_epoch,
        leader_epoch=leader_epoch,
    )
    body = build(
        m.OffsetForLeaderEpochRequest,
        replica_id=replica_id,
        topics=(build(m.OffsetForLeaderTopic, topic=topic, partitions=(part,)),),
    )
    response = await client.request(body)
    (result,) = response.topics
    assert result.topic == topic
    (answer,) = result.partitions
    assert answer.partition == partition
    return answer


def _offsets(answer: Any) -> tuple[ErrorCode, int, int]:
    return answer.error_code, int(answer.leader_epoch), int(answer.end_offset)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        (0, (0, 3)),  # ends where epoch 2 starts
        (1, (0, 3)),  # never a leader: the epoch before it, and where that one ended
        (2, (2, 5)),
        (4, (2, 5)),
        (5, (5, 6)),  # the latest: ends at the log end offset
        (7, (-1, -1)),  # newer than any known: undefined, without an error
        (-1, (-1, -1)),
    ],
)
async def test_end_offsets_of_epochs(
    client: BrokerClient, version: int, asked: int, expected: tuple[int, int]
) -> None:
    """The leader answers each asked epoch as Kafka's leader epoch cache does."""
    answer = await _ask(client, version, asked)
    assert _offsets(answer) == (ErrorCode.none, *expected)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("current", "code"),
    [
        (4, ErrorCode.fenced_leader_epoch),  # the asker's view of the leader is old
        (6, ErrorCode.unknown_leader_epoch),  # newer than this broker knows
        (5, ErrorCode.none),
        (-1, ErrorCode.none),  # no fencing asked for
    ],
)
async def test_current_leader_epoch_fences(
    client: BrokerClient, version: int, current: int, code: ErrorCode
) -> None:
    """current_leader_epoch (v2+) other than -1 must equal the partition's leader epoch;
    an error answer carries -1/-1."""
    answer = await _ask(client, version, 2, current_leader_epoch=current)
    expected = (code, 2, 5) if code == ErrorCode.none else (code, -1, -1)
    assert _offsets(answer) == expected


@pytest.mark.parametrize("version", VERSIONS)
async def test_follower_answers_not_leader_for_everyone(
    broker: Broker, client: BrokerClient, version: int
) -> None:
    """A broker that follows the partition answers NOT_LEADER_OR_FOLLOWER to consumers and
    followers alike (both must ask the leader); epoch fencing is checked first."""
    _partition(broker).is_leader = False
    for replica_id in (-1, 2):
        answer = await _ask(client, version, 2, current_leader_epoch=5, replica_id=replica_id)
        assert _offsets(answer) == (ErrorCode.not_leader_or_follower, -1, -1)
    answer = await _ask(client, version, 2, current_leader_epoch=3)
    assert answer.error_code == ErrorCode.fenced_leader_epoch


@pytest.mark.parametrize("version", VERSIONS)
async def test_follower_request_gets_the_same_answer(client: BrokerClient, version: int) -> None:
    """replica_id (v3+) names a follower; the leader's answer does not depend on it."""
    answer = await _ask(client, version, 2, current_leader_epoch=5, replica_id=2)
    assert _offsets(answer) == (ErrorCode.none, 2, 5)


@pytest.mark.parametrize("version", VERSIONS)
async def test_unknown_topic_or_partition(client: BrokerClient, version: int) -> None:
    """A topic or partition the cluster does not have: UNKNOWN_TOPIC_OR_PARTITION."""
    for topic, partition in (("nope", 0), (TOPIC, 3)):
        answer = await _ask(client, version, 0, topic=topic, partition=partition)
        assert _offsets(answer) == (ErrorCode.unknown_topic_or_partition, -1, -1)


async def test_existing_partition_not_hosted_here_is_not_leader(
    broker: Broker, client: BrokerClient
) -> None:
    """A partition the cluster has but this broker does not host: NOT_LEADER_OR_FOLLOWER
    (the client should find the leader), as Kafka answers from its metadata cache."""
    assert broker.broker is not None
    broker.broker.services.replicas.partitions.pop((TOPIC, 0))
    answer = await _ask(client, 4, 0)
    assert _offsets(answer) == (ErrorCode.not_leader_or_follower, -1, -1)


async def test_offline_log_is_a_storage_error(broker: Broker, client: BrokerClient) -> None:
    """A partition whose log went offline after a disk failure: KAFKA_STORAGE_ERROR."""
    broker.create_topic("broken", partitions=1)
    _partition(broker, "broken").log.take_offline(OSError("injected"))
    answer = await _ask(client, 4, 0, topic="broken")
    assert _offsets(answer) == (ErrorCode.kafka_storage_error, -1, -1)


async def test_empty_log_knows_no_epoch(broker: Broker, client: BrokerClient) -> None:
    """A partition never written to has no epoch: -1/-1 without an error."""
    broker.create_topic("empty", partitions=1)
    assert _offsets(await _ask(client, 4, 0, topic="empty")) == (ErrorCode.none, -1, -1)


async def test_many_partitions_in_one_request(broker: Broker, client: BrokerClient) -> None:
    """Each partition of a request is answered on its own, in request order."""
    broker.create_topic("other", partitions=2)
    m = request_module(API_KEY, 4)

    def part(index: int, epoch: int) -> Any:
        return build(
            m.OffsetForLeaderPartition, partition=index, current_leader_epoch=-1, leader_epoch=epoch
        )

    body = build(
        m.OffsetForLeaderEpochRequest,
        replica_id=-1,
        topics=(
            build(m.OffsetForLeaderTopic, topic=TOPIC, partitions=(part(0, 0), part(0, 5))),
            build(m.OffsetForLeaderTopic, topic="other", partitions=(part(1, 0), part(9, 0))),
        ),
    )
    response = await client.request(body)
    got = [(t.topic, p.partition, *_offsets(p)) for t in response.topics for p in t.partitions]
    assert got == [
        (TOPIC, 0, ErrorCode.none, 0, 3),
        (TOPIC, 0, ErrorCode.none, 5, 6),
        ("other", 1, ErrorCode.none, -1, -1),
        ("other", 9, ErrorCode.unknown_topic_or_partition, -1, -1),
    ]
