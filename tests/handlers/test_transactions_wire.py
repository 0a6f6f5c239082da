"""The transaction APIs at the wire level on a real in-process broker: FindCoordinator
for transactional ids (single and batched), InitProducerId with a transactional id,
AddPartitionsToTxn (v3 and the batched, verify_only v4+), AddOffsetsToTxn, EndTxn, and
DescribeTransactions / ListTransactions, with Kafka's error codes per version."""

from __future__ import annotations

import asyncio
import datetime
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.protocol.records import SimpleRecord, build_batch
from odradek.testing import Broker
from tests.handlers.kafka_wire import ensure_topic, list_offset, produce_batch
from tests.server.wire import WireClient, build, request_module

TXN = "wire-txn"


@pytest.fixture
def broker() -> Iterator[Broker]:
    with Broker(
        config={"transaction.state.log.num.partitions": 3, "transaction.max.timeout.ms": 60_000}
    ) as running:
        yield running


def find(client: WireClient, key: str, version: int = 3) -> Any:
    m = request_module(10, version)
    if version >= 4:
        body = build(m.FindCoordinatorRequest, key_type=1, coordinator_keys=(key,))
        return client.call(10, version, body).coordinators[0]
    return client.call(10, version, build(m.FindCoordinatorRequest, key=key, key_type=1))


def init(
    client: WireClient,
    txn: str | None = TXN,
    timeout_ms: int = 10_000,
    version: int = 5,
    producer: tuple[int, int] = (-1, -1),
) -> Any:
    m = request_module(22, version)
    body = build(
        m.InitProducerIdRequest,
        transactional_id=txn,
        transaction_timeout=datetime.timedelta(milliseconds=timeout_ms),
        producer_id=producer[0],
        producer_epoch=producer[1],
    )
    return client.call(22, version, body)


def add_partitions(
    client: WireClient, pid: int, epoch: int, parts: dict[str, list[int]], version: int = 3
) -> dict[tuple[str, int], ErrorCode]:
    m = request_module(24, version)
    topics = tuple(
        build(m.AddPartitionsToTxnTopic, name=n, partitions=tuple(p)) for n, p in parts.items()
    )
    body = build(
        m.AddPartitionsToTxnRequest,
        v3_and_below_transactional_id=TXN,
        v3_and_below_producer_id=pid,
        v3_and_below_producer_epoch=epoch,
        v3_and_below_topics=topics,
    )
    response = client.call(24, version, body)
    return {
        (t.name, r.partition_index): r.partition_error_code
        for t in response.results_by_topic_v3_and_below
        for r in t.results_by_partition
    }


def verify(client: WireClient, pid: int, epoch: int, parts: dict[str, list[int]]) -> Any:
    m = request_module(24, 5)
    topics = tuple(
        build(m.AddPartitionsToTxnTopic, name=n, partitions=tuple(p)) for n, p in parts.items()
    )
    txn = build(
        m.AddPartitionsToTxnTransaction,
        transactional_id=TXN,
        producer_id=pid,
        producer_epoch=epoch,
        verify_only=True,
        topics=topics,
    )
    response = client.call(24, 5, build(m.AddPartitionsToTxnRequest, transactions=(txn,)))
    assert response.error_code == ErrorCode.none
    (result,) = response.results_by_transaction
    return {
        (t.name, r.partition_index): r.partition_error_code
        for t in result.topic_results
        for r in t.results_by_partition
    }


def end_txn(client: WireClient, pid: int, epoch: int, commit: bool, version: int = 4) -> Any:
    m = request_module(26, version)
    body = build(
        m.EndTxnRequest,
        transactional_id=TXN,
        producer_id=pid,
        producer_epoch=epoch,
        committed=commit,
    )
    return client.call(26, version, body).error_code


def describe_raw(client: WireClient, txn: str) -> tuple[int, str, str, int, int, int, int]:
    """DescribeTransactions v0 of one id, parsed by hand: kio's reader refuses the -1
    start time Kafka sends for an id with no transaction (and we do too). (error, id,
    state, timeout ms, start ms, producer id, epoch)."""
    m = request_module(65, 0)
    client.send(65, 0, build(m.DescribeTransactionsRequest, transactional_ids=(txn,)))
    frame = client.read_frame()
    pos = 4 + 1 + 4  # correlation id, header tags, throttle time
    assert frame[pos] == 2  # one state (compact array length + 1)
    pos += 1
    (error,) = struct.unpack_from(">h", frame, pos)
    pos += 2
    strings = []
    for _ in range(2):
        length = frame[pos] - 1
        strings.append(frame[pos + 1 : pos + 1 + length].decode())
        pos += 1 + length
    timeout, start, pid, epoch = struct.unpack_from(">iqqh", frame, pos)
    return error, strings[0], strings[1], timeout, start, pid, epoch


def wait_state(client: WireClient, wanted: str, timeout_s: float = 20.0) -> Any:
    """Polls DescribeTransactions until the transaction is in `wanted` (bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        (state,) = describe(client, TXN)
        if state.transaction_state == wanted or time.monotonic() > deadline:
            assert state.transaction_state == wanted
            return state
        time.sleep(0.05)


def describe(client: WireClient, *txns: str) -> Any:
    m = request_module(65, 0)
    body = build(m.DescribeTransactionsRequest, transactional_ids=txns)
    return client.call(65, 0, body).transaction_states


def test_find_coordinator_for_a_transactional_id(broker: Broker) -> None:
    """Key type 1 is answered with this broker (v3 and batched v4+) and creates
    __transaction_state with its configs; an empty id is INVALID_REQUEST."""
    with WireClient(broker.port) as client:
        found = find(client, TXN)
        assert (found.error_code, found.node_id, found.port) == (ErrorCode.none, 1, broker.port)
        batched = find(client, TXN, version=4)
        assert (batched.error_code, batched.node_id) == (ErrorCode.none, 1)
        assert find(client, "", version=4).error_code == ErrorCode.invalid_request
    assert broker.broker is not None
    topic = broker.broker.services.metadata.topics["__transaction_state"]
    assert topic.partitions == 3 and topic.internal
    assert topic.configs["cleanup.policy"] == "compact"


def test_init_producer_id_keeps_the_id_and_bumps_the_epoch(broker: Broker) -> None:
    """A transactional InitProducerId gives epoch 0 of a new id, the next one epoch 1 of
    the same id; a timeout above transaction.max.timeout.ms is
    INVALID_TRANSACTION_TIMEOUT; the idempotent path still gets fresh ids."""
    with WireClient(broker.port) as client:
        first = init(client)
        assert (first.error_code, first.producer_epoch) == (ErrorCode.none, 0)
        second = init(client, producer=(first.producer_id, 0))
        assert (second.producer_id, second.producer_epoch) == (first.producer_id, 1)
        assert init(client, timeout_ms=60_001).error_code == ErrorCode.invalid_transaction_timeout
        assert init(client, txn="").error_code == ErrorCode.invalid_request
        idempotent = init(client, txn=None)
        assert idempotent.error_code == ErrorCode.none
        assert idempotent.producer_id != first.producer_id


@pytest.mark.parametrize(
    ("version", "fenced"), [(3, ErrorCode.producer_fenced), (1, ErrorCode.invalid_producer_epoch)]
)
def test_add_partitions_errors(broker: Broker, version: int, fenced: ErrorCode) -> None:
    """Known partitions are added (NONE); a partition of an unknown topic is
    UNKNOWN_TOPIC_OR_PARTITION and the rest OPERATION_NOT_ATTEMPTED; a stale epoch is
    PRODUCER_FENCED, INVALID_PRODUCER_EPOCH before v2; an unknown producer id
    INVALID_PRODUCER_ID_MAPPING."""
    with WireClient(broker.port) as client:
        ensure_topic(client, "tx-topic", 2)
        r = init(client)
        pid, epoch = r.producer_id, r.producer_epoch
        assert add_partitions(client, pid, epoch, {"tx-topic": [0, 1]}, version) == {
            ("tx-topic", 0): ErrorCode.none,
            ("tx-topic", 1): ErrorCode.none,
        }
        assert add_partitions(client, pid, epoch, {"tx-topic": [0], "nope": [0]}, version) == {
            ("tx-topic", 0): ErrorCode.operation_not_attempted,
            ("nope", 0): ErrorCode.unknown_topic_or_partition,
        }
        assert add_partitions(client, pid, epoch + 1, {"tx-topic": [0]}, version) == {
            ("tx-topic", 0): fenced
        }
        assert add_partitions(client, pid + 99, epoch, {"tx-topic": [0]}, version) == {
            ("tx-topic", 0): ErrorCode.invalid_producer_id_mapping
        }


def test_verify_only_reports_membership_and_adds_nothing(broker: Broker) -> None:
    """Batched AddPartitionsToTxn v5 with verify_only: NONE for a partition of the
    transaction, TRANSACTION_ABORTABLE for one that is not; the transaction is unchanged."""
    with WireClient(broker.port) as client:
        ensure_topic(client, "tx-topic", 2)
        r = init(client)
        pid, epoch = r.producer_id, r.producer_epoch
        add_partitions(client, pid, epoch, {"tx-topic": [0]})
        assert verify(client, pid, epoch, {"tx-topic": [0, 1]}) == {
            ("tx-topic", 0): ErrorCode.none,
            ("tx-topic", 1): ErrorCode.transaction_abortable,
        }
        (state,) = describe(client, TXN)
        assert [(t.topic, t.partitions) for t in state.topics] == [("tx-topic", (0,))]


def test_transaction_lifecycle_and_describe(broker: Broker) -> None:
    """AddOffsetsToTxn adds the group's offsets partition; DescribeTransactions shows the
    Ongoing transaction with its partitions, ListTransactions finds it by state and
    producer id; EndTxn(commit) answers NONE and the transaction leaves Ongoing; EndTxn
    without a transaction is INVALID_TXN_STATE; an unknown id TRANSACTIONAL_ID_NOT_FOUND."""
    with WireClient(broker.port) as client:
        ensure_topic(client, "tx-topic", 1)
        r = init(client)
        pid, epoch = r.producer_id, r.producer_epoch
        assert end_txn(client, pid, epoch, True) == ErrorCode.invalid_txn_state
        empty = describe_raw(client, TXN)
        assert empty == (ErrorCode.none, TXN, "Empty", 10_000, -1, pid, epoch)
        add_partitions(client, pid, epoch, {"tx-topic": [0]})
        m = request_module(25, 4)
        body = build(
            m.AddOffsetsToTxnRequest,
            transactional_id=TXN,
            producer_id=pid,
            producer_epoch=epoch,
            group_id="grp",
        )
        assert client.call(25, 4, body).error_code == ErrorCode.none
        (state,) = describe(client, TXN)
        assert (state.error_code, state.transaction_state) == (ErrorCode.none, "Ongoing")
        assert (state.producer_id, state.producer_epoch) == (pid, epoch)
        assert state.transaction_timeout == datetime.timedelta(seconds=10)
        topics = {t.topic for t in state.topics}
        assert topics == {"tx-topic", "__consumer_offsets"}
        missing = describe_raw(client, "missing")
        assert missing == (ErrorCode.transactional_id_not_found, "missing", "", 0, -1, -1, -1)
        lm = request_module(66, 1)
        listed = client.call(
            66,
            1,
            build(
                lm.ListTransactionsRequest,
                state_filters=("Ongoing", "Nope"),
                producer_id_filters=(pid,),
                duration_filter=-1,
            ),
        )
        assert listed.unknown_state_filters == ("Nope",)
        assert [(t.transactional_id, t.transaction_state) for t in listed.transaction_states] == [
            (TXN, "Ongoing")
        ]
        assert end_txn(client, pid, epoch, True) == ErrorCode.none
        state = wait_state(client, "CompleteCommit")
        assert state.topics == ()
        # The commit marker is the partition's first batch: its log end moved past it.
        assert list_offset(client, "tx-topic", -1).offset == 1
        assert end_txn(client, pid, epoch, True) == ErrorCode.none
        assert end_txn(client, pid, epoch, False) == ErrorCode.invalid_txn_state
        assert end_txn(client, pid, epoch - 1, True, version=1) == ErrorCode.invalid_producer_epoch


def test_abort_writes_markers_and_a_new_transaction_follows(broker: Broker) -> None:
    """EndTxn(abort) reaches CompleteAbort with an abort marker on every partition; the
    same producer then starts its next transaction."""
    with WireClient(broker.port) as client:
        ensure_topic(client, "tx-abort", 2)
        r = init(client)
        pid, epoch = r.producer_id, r.producer_epoch
        add_partitions(client, pid, epoch, {"tx-abort": [0, 1]})
        assert end_txn(client, pid, epoch, False) == ErrorCode.none
        wait_state(client, "CompleteAbort")
        assert [list_offset(client, "tx-abort", -1, p).offset for p in (0, 1)] == [1, 1]
        assert add_partitions(client, pid, epoch, {"tx-abort": [1]}) == {
            ("tx-abort", 1): ErrorCode.none
        }
        assert wait_state(client, "Ongoing").producer_epoch == epoch


def test_init_fences_an_open_transaction(broker: Broker) -> None:
    """A second InitProducerId while a transaction is open answers
    CONCURRENT_TRANSACTIONS and aborts it with the epoch bumped (abort marker written);
    retried, it gets the epoch after that, and the old epoch is PRODUCER_FENCED."""
    with WireClient(broker.port) as client:
        ensure_topic(client, "tx-fence", 1)
        r = init(client)
        pid, epoch = r.producer_id, r.producer_epoch
        add_partitions(client, pid, epoch, {"tx-fence": [0]})
        assert init(client).error_code == ErrorCode.concurrent_transactions
        aborted = wait_state(client, "CompleteAbort")
        assert aborted.producer_epoch == epoch + 1
        assert list_offset(client, "tx-fence", -1).offset == 1
        retried = init(client)
        assert (retried.error_code, retried.producer_id) == (ErrorCode.none, pid)
        assert retried.producer_epoch == epoch + 2
        assert end_txn(client, pid, epoch, True) == ErrorCode.producer_fenced


def test_timed_out_transaction_is_aborted_across_a_restart() -> None:
    """An open transaction survives a broker restart (Ongoing, loaded from
    __transaction_state), then the coordinator aborts it once its timeout passes,
    bumping the epoch: the producer's EndTxn is PRODUCER_FENCED."""
    config = {
        "transaction.state.log.num.partitions": 2,
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": 100,
    }
    with Broker(config=config) as broker:
        with WireClient(broker.port) as client:
            ensure_topic(client, "tx-timeout", 1)
            r = init(client, timeout_ms=1500)
            pid, epoch = r.producer_id, r.producer_epoch
            add_partitions(client, pid, epoch, {"tx-timeout": [0]})
        broker.restart()
        with WireClient(broker.port) as client:
            (state,) = describe(client, TXN)
            assert (state.transaction_state, state.producer_epoch) == ("Ongoing", epoch)
            assert [t.topic for t in state.topics] == ["tx-timeout"]
            aborted = wait_state(client, "CompleteAbort")
            assert aborted.producer_epoch == epoch + 1
            assert end_txn(client, pid, epoch, True) == ErrorCode.producer_fenced


def produce_txn(
    client: WireClient, topic: str, pid: int, epoch: int, seq: int, version: int = 9
) -> Any:
    """One transactional batch of TXN's producer to partition 0; the partition response."""
    batch = build_batch(
        [SimpleRecord(b"v")],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        is_transactional=True,
    )
    return produce_batch(client, topic, batch, version=version, transactional_id=TXN)


@pytest.mark.parametrize(
    ("version", "refused"),
    [(9, ErrorCode.invalid_txn_state), (11, ErrorCode.transaction_abortable)],
)
def test_produce_to_a_partition_outside_the_transaction_is_refused(
    broker: Broker, version: int, refused: ErrorCode
) -> None:
    """KIP-890 part 1: a transactional batch for a partition the transaction did not add
    is refused (INVALID_TXN_STATE before Produce v11, TRANSACTION_ABORTABLE from v11) and
    nothing is written; once added, the batch is appended."""
    with WireClient(broker.port) as client:
        ensure_topic(client, "tx-verify", 1)
        r = init(client)
        pid, epoch = r.producer_id, r.producer_epoch
        assert produce_txn(client, "tx-verify", pid, epoch, 0, version).error_code == refused
        assert list_offset(client, "tx-verify", -1).offset == 0
        add_partitions(client, pid, epoch, {"tx-verify": [0]})
        accepted = produce_txn(client, "tx-verify", pid, epoch, 0, version)
        assert (accepted.error_code, accepted.base_offset) == (ErrorCode.none, 0)


def test_verification_is_asked_once_per_partition_and_transaction(broker: Broker) -> None:
    """The coordinator is asked only for the transaction's first batch on a partition;
    later batches find the transaction open on the partition. Another epoch is checked
    again and refused with INVALID_PRODUCER_EPOCH."""
    assert broker.broker is not None
    txns = broker.broker.services.transactions
    assert txns is not None
    asked: list[object] = []
    verify = txns.verify

    def counting(*args: Any) -> Any:
        asked.append(args)
        return verify(*args)

    txns.verify = counting  # type: ignore[method-assign]
    with WireClient(broker.port) as client:
        ensure_topic(client, "tx-once", 1)
        r = init(client)
        pid, epoch = r.producer_id, r.producer_epoch
        add_partitions(client, pid, epoch, {"tx-once": [0]})
        for seq in range(3):
            assert produce_txn(client, "tx-once", pid, epoch, seq).error_code == ErrorCode.none
        assert len(asked) == 1
        # An epoch the coordinator does not know: checked, PRODUCER_FENCED, which Produce
        # carries as INVALID_PRODUCER_EPOCH.
        other = produce_txn(client, "tx-once", pid, epoch + 5, 0)
        assert other.error_code == ErrorCode.invalid_producer_epoch
        assert len(asked) == 2


def test_verification_can_be_turned_off() -> None:
    """With transaction.partition.verification.enable=false a transactional batch is
    appended without asking the coordinator, as in Kafka."""
    config = {"transaction.partition.verification.enable": "false"}
    with Broker(config=config) as broker, WireClient(broker.port) as client:
        ensure_topic(client, "tx-off", 1)
        r = init(client)
        accepted = produce_txn(client, "tx-off", r.producer_id, r.producer_epoch, 0)
        assert accepted.error_code == ErrorCode.none


class _StuckMarkers:
    """A marker writer that never finishes (a partition leader that cannot be reached)."""

    async def write_markers(self, *args: Any) -> bool:
        await asyncio.Event().wait()
        return False


def test_prepared_commit_is_finished_after_a_restart() -> None:
    """A transaction whose markers were not written before the broker stopped is found in
    PrepareCommit when __transaction_state is loaded again: its markers are sent and it
    reaches CompleteCommit, its records committed."""
    with Broker(config={"transaction.state.log.num.partitions": 2}) as broker:
        assert broker.broker is not None
        txns = broker.broker.services.transactions
        assert txns is not None
        txns.markers = _StuckMarkers()
        with WireClient(broker.port) as client:
            ensure_topic(client, "tx-restart", 1)
            r = init(client)
            pid, epoch = r.producer_id, r.producer_epoch
            add_partitions(client, pid, epoch, {"tx-restart": [0]})
            assert produce_txn(client, "tx-restart", pid, epoch, 0).error_code == ErrorCode.none
            assert end_txn(client, pid, epoch, True) == ErrorCode.none
            time.sleep(0.3)
            (state,) = describe(client, TXN)
            assert state.transaction_state == "PrepareCommit"
            assert list_offset(client, "tx-restart", -1).offset == 1  # no marker yet
        broker.restart()
        with WireClient(broker.port) as client:
            wait_state(client, "CompleteCommit")
            assert list_offset(client, "tx-restart", -1).offset == 2  # the commit marker
