"""TxnOffsetCommit (API 28), WriteTxnMarkers (API 27) and OffsetFetch's require_stable
over the wire against a real broker: every TxnOffsetCommit version is accepted for a
transaction that added the group (AddOffsetsToTxn) and refused otherwise (KIP-890), its
offsets stay hidden (and unstable) until the transaction's marker, written here by raw
WriteTxnMarkers, commits or aborts them; unknown partitions and KIP-447 fencing get
Kafka's codes, markers are fenced by producer and coordinator epoch, and pending,
committed and aborted offsets are the same after a restart (replayed from the batches of
`__consumer_offsets`)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.coordinator.ownership import partition_for
from odradek.coordinator.record_log import OFFSETS_TOPIC
from odradek.testing import Broker
from tests.coordinator.test_wire import member
from tests.handlers.kafka_wire import create_topic
from tests.server.wire import WireClient, build, request_module

TOPIC = "txn-offsets"
OFFSETS_PARTITIONS = 3


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    config = {
        "group.initial.rebalance.delay.ms": 0,
        "offsets.topic.num.partitions": OFFSETS_PARTITIONS,
    }
    with Broker(config=config) as running:
        with WireClient(running.port) as client:
            create_topic(client, TOPIC, 2)
        yield running


@dataclass(frozen=True)
class Txn:
    transactional_id: str
    producer_id: int
    producer_epoch: int


def init_producer(client: WireClient, transactional_id: str) -> Txn:
    m = request_module(22, 4)
    body = build(
        m.InitProducerIdRequest,
        transactional_id=transactional_id,
        transaction_timeout=datetime.timedelta(seconds=60),
    )
    response = client.call(22, 4, body)
    assert response.error_code == ErrorCode.none
    return Txn(transactional_id, int(response.producer_id), int(response.producer_epoch))


def open_txn(client: WireClient, transactional_id: str, group: str) -> Txn:
    """A transaction of a new producer that added the group's offsets partition."""
    txn = init_producer(client, transactional_id)
    m = request_module(25, 3)
    body = build(
        m.AddOffsetsToTxnRequest,
        transactional_id=transactional_id,
        producer_id=txn.producer_id,
        producer_epoch=txn.producer_epoch,
        group_id=group,
    )
    assert client.call(25, 3, body).error_code == ErrorCode.none
    return txn


def txn_commit(
    client: WireClient,
    group: str,
    txn: Txn,
    version: int = 3,
    offset: int = 10,
    topic: str = TOPIC,
    partition: int = 0,
    generation: int = -1,
    member_id: str = "",
    producer_epoch: int | None = None,
) -> ErrorCode:
    m = request_module(28, version)
    part = build(
        m.TxnOffsetCommitRequestPartition,
        partition_index=partition,
        committed_offset=offset,
        committed_leader_epoch=-1,
        committed_metadata="md",
    )
    body = build(
        m.TxnOffsetCommitRequest,
        transactional_id=txn.transactional_id,
        group_id=group,
        producer_id=txn.producer_id,
        producer_epoch=txn.producer_epoch if producer_epoch is None else producer_epoch,
        generation_id=generation,
        member_id=member_id,
        group_instance_id=None,
        topics=(build(m.TxnOffsetCommitRequestTopic, name=topic, partitions=(part,)),),
    )
    response = client.call(28, version, body)
    (t,) = response.topics
    assert (t.name, t.partitions[0].partition_index) == (topic, partition)
    return ErrorCode(t.partitions[0].error_code)


def fetch(
    client: WireClient, group: str, require_stable: bool, version: int = 8, partition: int = 0
) -> tuple[int, ErrorCode]:
    """(committed offset, partition error) of TOPIC's `partition`."""
    m = request_module(9, version)
    topics = None
    if version >= 8:
        wanted = build(m.OffsetFetchRequestTopics, name=TOPIC, partition_indexes=(partition,))
        groups = (build(m.OffsetFetchRequestGroup, group_id=group, topics=(wanted,)),)
        body = build(m.OffsetFetchRequest, require_stable=require_stable, groups=groups)
        response: Any = client.call(9, version, body).groups[0]
    else:
        topics = (build(m.OffsetFetchRequestTopic, name=TOPIC, partition_indexes=(partition,)),)
        body = build(
            m.OffsetFetchRequest, group_id=group, topics=topics, require_stable=require_stable
        )
        response = client.call(9, version, body)
    assert response.error_code == ErrorCode.none
    found = response.topics[0].partitions[0]
    return int(found.committed_offset), ErrorCode(found.error_code)


def plain_commit(client: WireClient, group: str, offset: int, partition: int = 0) -> None:
    m = request_module(8, 9)
    part = build(
        m.OffsetCommitRequestPartition,
        partition_index=partition,
        committed_offset=offset,
        committed_leader_epoch=-1,
        committed_metadata="",
    )
    body = build(
        m.OffsetCommitRequest,
        group_id=group,
        generation_id_or_member_epoch=-1,
        member_id="",
        group_instance_id=None,
        topics=(build(m.OffsetCommitRequestTopic, name=TOPIC, partitions=(part,)),),
    )
    assert client.call(8, 9, body).topics[0].partitions[0].error_code == ErrorCode.none


@pytest.mark.parametrize("version", range(6))
def test_txn_offset_commit_every_version(broker: Broker, version: int) -> None:
    """Each version is accepted; the offset is not what OffsetFetch returns, and with
    require_stable (v7, v8) the partition is UNSTABLE_OFFSET_COMMIT."""
    group = f"txn-v{version}"
    with WireClient(broker.port) as client:
        plain_commit(client, group, 3)
        txn = open_txn(client, f"tx-v{version}", group)
        assert txn_commit(client, group, txn, version) == ErrorCode.none
        assert fetch(client, group, False) == (3, ErrorCode.none)
        assert fetch(client, group, False, version=6) == (3, ErrorCode.none)
        assert fetch(client, group, True) == (-1, ErrorCode.unstable_offset_commit)
        assert fetch(client, group, True, version=7) == (-1, ErrorCode.unstable_offset_commit)
        assert fetch(client, group, True, partition=1) == (-1, ErrorCode.none)


def test_unknown_partitions_and_groups(broker: Broker) -> None:
    """An unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION, an empty group id
    INVALID_GROUP_ID, a generation for a group that does not exist ILLEGAL_GENERATION."""
    with WireClient(broker.port) as client:
        txn = open_txn(client, "tx-unknown", "g1")
        assert txn_commit(client, "g1", txn, topic="nope") == ErrorCode.unknown_topic_or_partition
        assert txn_commit(client, "g1", txn, partition=7) == ErrorCode.unknown_topic_or_partition
        assert txn_commit(client, "", txn) == ErrorCode.invalid_group_id
        assert txn_commit(client, "g1", txn, generation=4, member_id="m") == (
            ErrorCode.illegal_generation
        )


def test_member_fencing(broker: Broker) -> None:
    """KIP-447 (v3+): the member's generation must be the group's current one."""
    group = "txn-member"
    with WireClient(broker.port) as client:
        joined = member(client, group)
        txn = open_txn(client, "tx-member", group)
        gen, mid = joined.generation_id, joined.member_id
        assert txn_commit(client, group, txn, generation=gen, member_id=mid) == ErrorCode.none
        assert txn_commit(client, group, txn, generation=gen + 1, member_id=mid) == (
            ErrorCode.illegal_generation
        )
        assert txn_commit(client, group, txn, generation=gen, member_id="x") == (
            ErrorCode.unknown_member_id
        )


def test_pending_offsets_survive_a_restart() -> None:
    """After a restart the transaction's offsets are still pending (replayed from
    its transactional batch), and the committed offset is unchanged."""
    with Broker(config={"offsets.topic.num.partitions": OFFSETS_PARTITIONS}) as broker:
        with WireClient(broker.port) as client:
            create_topic(client, TOPIC, 2)
            plain_commit(client, "restart", 4)
            txn = open_txn(client, "tx-restart", "restart")
            assert txn_commit(client, "restart", txn) == ErrorCode.none
        broker.restart()
        with WireClient(broker.port) as client:
            assert fetch(client, "restart", True) == (-1, ErrorCode.unstable_offset_commit)
            assert fetch(client, "restart", False) == (4, ErrorCode.none)


def write_marker(
    client: WireClient,
    topic: str,
    partition: int,
    producer_id: int,
    commit: bool,
    producer_epoch: int = 0,
    coordinator_epoch: int = 0,
    version: int = 1,
) -> ErrorCode:
    """Writes one marker by raw request, as the transaction coordinator does."""
    m = request_module(27, version)
    marker = build(
        m.WritableTxnMarker,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        transaction_result=commit,
        topics=(build(m.WritableTxnMarkerTopic, name=topic, partition_indexes=(partition,)),),
        coordinator_epoch=coordinator_epoch,
    )
    response = client.call(27, version, build(m.WriteTxnMarkersRequest, markers=(marker,)))
    (result,) = response.markers
    assert result.producer_id == producer_id
    (t,) = result.topics
    assert (t.name, t.partitions[0].partition_index) == (topic, partition)
    return ErrorCode(t.partitions[0].error_code)


def end_txn(client: WireClient, group: str, txn: Txn, commit: bool, version: int = 1) -> None:
    """Writes the transaction's marker to the group's partition by raw WriteTxnMarkers."""
    partition = partition_for(group, OFFSETS_PARTITIONS)
    written = write_marker(
        client,
        OFFSETS_TOPIC,
        partition,
        txn.producer_id,
        commit,
        producer_epoch=txn.producer_epoch,
        version=version,
    )
    assert written == ErrorCode.none


@pytest.mark.parametrize("version", [1, 2])
def test_markers_commit_and_abort_survive_a_restart(version: int) -> None:
    """A commit marker makes the transaction's offset the committed one, an abort
    marker drops it (the earlier committed offset stays); a transaction left open stays
    pending; a restart replays all three the same way."""
    config = {"offsets.topic.num.partitions": OFFSETS_PARTITIONS}
    with Broker(config=config) as broker:
        with WireClient(broker.port) as client:
            create_topic(client, TOPIC, 2)
            txns = {g: open_txn(client, f"tx-{g}", g) for g in ("committed", "aborted", "open")}
            assert txn_commit(client, "committed", txns["committed"], offset=11) == ErrorCode.none
            end_txn(client, "committed", txns["committed"], True, version)
            plain_commit(client, "aborted", 5)
            assert txn_commit(client, "aborted", txns["aborted"], offset=22) == ErrorCode.none
            end_txn(client, "aborted", txns["aborted"], False, version)
            assert txn_commit(client, "open", txns["open"], offset=33) == ErrorCode.none
            expected = {
                "committed": [(11, ErrorCode.none), (11, ErrorCode.none)],
                "aborted": [(5, ErrorCode.none), (5, ErrorCode.none)],
                "open": [(-1, ErrorCode.none), (-1, ErrorCode.unstable_offset_commit)],
            }
            for group, answers in expected.items():
                assert [fetch(client, group, False), fetch(client, group, True)] == answers
        broker.restart()
        with WireClient(broker.port) as client:
            for group, answers in expected.items():
                assert [fetch(client, group, False), fetch(client, group, True)] == answers
            end_txn(client, "open", txns["open"], True, version)
            assert fetch(client, "open", True) == (33, ErrorCode.none)


def test_marker_errors(broker: Broker) -> None:
    """Markers on a data partition are written (also without a transaction there); an
    unknown partition is UNKNOWN_TOPIC_OR_PARTITION; an older producer epoch is
    INVALID_PRODUCER_EPOCH; an older coordinator epoch TRANSACTION_COORDINATOR_FENCED."""
    with WireClient(broker.port) as client:
        assert write_marker(client, TOPIC, 1, 500, True, producer_epoch=3) == ErrorCode.none
        assert write_marker(client, "nope", 0, 500, True) == ErrorCode.unknown_topic_or_partition
        assert write_marker(client, TOPIC, 9, 500, True) == ErrorCode.unknown_topic_or_partition
        assert write_marker(client, TOPIC, 1, 500, False, producer_epoch=2) == (
            ErrorCode.invalid_producer_epoch
        )
        assert write_marker(client, TOPIC, 1, 501, True, producer_epoch=0, coordinator_epoch=4) == (
            ErrorCode.none
        )
        assert write_marker(client, TOPIC, 1, 501, True, producer_epoch=0, coordinator_epoch=3) == (
            ErrorCode.transaction_coordinator_fenced
        )


def test_a_fenced_producer_cannot_commit_offsets(broker: Broker) -> None:
    """Once a marker moved the producer to a newer epoch on the group's partition, a
    TxnOffsetCommit with the old epoch is INVALID_PRODUCER_EPOCH and changes nothing."""
    group = "fenced"
    partition = partition_for(group, OFFSETS_PARTITIONS)
    with WireClient(broker.port) as client:
        txn = open_txn(client, "tx-fenced", group)
        assert txn_commit(client, group, txn, offset=1) == ErrorCode.none
        newer = txn.producer_epoch + 1
        assert write_marker(
            client, OFFSETS_TOPIC, partition, txn.producer_id, False, producer_epoch=newer
        ) == (ErrorCode.none)
        assert txn_commit(client, group, txn, offset=2) == ErrorCode.invalid_producer_epoch
        assert fetch(client, group, True) == (-1, ErrorCode.none)


@pytest.mark.parametrize(
    ("version", "expected"), [(3, "invalid_txn_state"), (4, "transaction_abortable")]
)
def test_kip_890_verification(broker: Broker, version: int, expected: str) -> None:
    """A producer whose transaction did not add the group (no AddOffsetsToTxn) is refused
    (INVALID_TXN_STATE before v4, TRANSACTION_ABORTABLE from v4); an unknown
    transactional id is INVALID_PRODUCER_ID_MAPPING, an old epoch (PRODUCER_FENCED at the
    transaction coordinator) INVALID_PRODUCER_EPOCH; nothing is written."""
    group = f"unverified-{version}"
    with WireClient(broker.port) as client:
        txn = init_producer(client, f"tx-unverified-{version}")
        assert txn_commit(client, group, txn, version) == ErrorCode[expected]
        stranger = Txn("tx-stranger", txn.producer_id, txn.producer_epoch)
        assert txn_commit(client, group, stranger, version) == (
            ErrorCode.invalid_producer_id_mapping
        )
        txn = open_txn(client, f"tx-unverified-{version}", group)
        assert txn_commit(client, group, txn, version, producer_epoch=txn.producer_epoch - 1) == (
            ErrorCode.invalid_producer_epoch
        )
        assert fetch(client, group, True) == (-1, ErrorCode.none)


def test_several_markers_in_one_request(broker: Broker) -> None:
    """One request with two markers (two producers) over several topics and partitions,
    as the transaction coordinator batches them per leader: every partition is answered
    in the request's order, and each producer's offsets end as its marker says."""
    groups = ("batched-a", "batched-b")
    with WireClient(broker.port) as client:
        txns = [open_txn(client, f"tx-{g}", g) for g in groups]
        for g, txn in zip(groups, txns, strict=True):
            assert txn_commit(client, g, txn, offset=40) == ErrorCode.none
        m = request_module(27, 1)

        def marker(txn: Txn, group: str, commit: bool) -> Any:
            topics = (
                build(
                    m.WritableTxnMarkerTopic,
                    name=OFFSETS_TOPIC,
                    partition_indexes=(partition_for(group, OFFSETS_PARTITIONS),),
                ),
                build(m.WritableTxnMarkerTopic, name=TOPIC, partition_indexes=(1, 0)),
                build(m.WritableTxnMarkerTopic, name="nope", partition_indexes=(0,)),
            )
            return build(
                m.WritableTxnMarker,
                producer_id=txn.producer_id,
                producer_epoch=txn.producer_epoch,
                transaction_result=commit,
                topics=topics,
                coordinator_epoch=0,
            )

        markers = (marker(txns[0], groups[0], True), marker(txns[1], groups[1], False))
        response = client.call(27, 1, build(m.WriteTxnMarkersRequest, markers=markers))
        answered = [
            (
                r.producer_id,
                [
                    (t.name, [(p.partition_index, p.error_code) for p in t.partitions])
                    for t in r.topics
                ],
            )
            for r in response.markers
        ]
        offsets = [(OFFSETS_TOPIC, [(partition_for(g, OFFSETS_PARTITIONS), 0)]) for g in groups]
        data = [(TOPIC, [(1, 0), (0, 0)]), ("nope", [(0, ErrorCode.unknown_topic_or_partition)])]
        assert answered == [
            (txn.producer_id, [o, *data]) for txn, o in zip(txns, offsets, strict=True)
        ]
        assert fetch(client, groups[0], True) == (40, ErrorCode.none)
        assert fetch(client, groups[1], True) == (-1, ErrorCode.none)


def test_a_commit_too_large_for_the_log(kafka_broker_factory: Any) -> None:
    """A commit whose batch exceeds the log's max message size is answered
    INVALID_COMMIT_OFFSET_SIZE (plain and transactional), nothing is kept, and the
    connection stays usable."""
    broker = kafka_broker_factory(
        config={"offsets.topic.num.partitions": OFFSETS_PARTITIONS, "message.max.bytes": 6000}
    )
    with WireClient(broker.port) as client:
        create_topic(client, TOPIC, 2)
        m = request_module(8, 9)
        parts = tuple(
            build(
                m.OffsetCommitRequestPartition,
                partition_index=i,
                committed_offset=1,
                committed_leader_epoch=-1,
                committed_metadata="m" * 4000,
            )
            for i in range(2)
        )
        body = build(
            m.OffsetCommitRequest,
            group_id="large",
            generation_id_or_member_epoch=-1,
            member_id="",
            group_instance_id=None,
            topics=(build(m.OffsetCommitRequestTopic, name=TOPIC, partitions=parts),),
        )
        answer = client.call(8, 9, body).topics[0].partitions
        assert [p.error_code for p in answer] == [ErrorCode.invalid_commit_offset_size] * 2
        txn = open_txn(client, "tx-large", "large")
        t = request_module(28, 3)
        txn_parts = tuple(
            build(
                t.TxnOffsetCommitRequestPartition,
                partition_index=i,
                committed_offset=1,
                committed_leader_epoch=-1,
                committed_metadata="m" * 4000,
            )
            for i in range(2)
        )
        txn_body = build(
            t.TxnOffsetCommitRequest,
            transactional_id=txn.transactional_id,
            group_id="large",
            producer_id=txn.producer_id,
            producer_epoch=txn.producer_epoch,
            generation_id=-1,
            member_id="",
            group_instance_id=None,
            topics=(build(t.TxnOffsetCommitRequestTopic, name=TOPIC, partitions=txn_parts),),
        )
        answer = client.call(28, 3, txn_body).topics[0].partitions
        assert [p.error_code for p in answer] == [ErrorCode.invalid_commit_offset_size] * 2
        assert fetch(client, "large", True) == (-1, ErrorCode.none)
