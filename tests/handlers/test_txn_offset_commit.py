"""TxnOffsetCommit's KIP-890 verification, the handler called directly with a stand-in
transaction coordinator (local or remote alike: `verify_anywhere`): the group's
`__consumer_offsets` partition is what is verified, each answer is translated as Kafka
does for this API's version, a refused commit writes nothing, and
transaction.partition.verification.enable=false skips the check."""

from __future__ import annotations

import dataclasses
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.clock import FakeClock
from odradek.config import BrokerConfig
from odradek.coordinator.coordinator import GroupCoordinator
from odradek.coordinator.record_log import OFFSETS_TOPIC, MemoryRecordLog
from odradek.handlers import txn_offset_commit
from odradek.handlers.context import RequestContext
from odradek.metadata.store import TopicInfo
from tests.server.wire import build, request_module

TOPIC = TopicInfo("t", uuid.uuid4(), 1)


class Verifier:
    """Answers every verification with `answer` and notes what was asked."""

    def __init__(self, answer: ErrorCode) -> None:
        self.answer = answer
        self.asked: list[tuple[str, int, int, list[tuple[str, int]]]] = []

    async def verify_anywhere(
        self, txn_id: str, producer_id: int, epoch: int, partitions: list[tuple[str, int]]
    ) -> dict[tuple[str, int], ErrorCode]:
        self.asked.append((txn_id, producer_id, epoch, partitions))
        return {p: self.answer for p in partitions}


def context(
    answer: ErrorCode, version: int, verify: bool = True
) -> tuple[GroupCoordinator, Verifier, RequestContext]:
    config = dataclasses.replace(BrokerConfig(), transaction_partition_verification_enable=verify)
    groups = GroupCoordinator(config, FakeClock(), MemoryRecordLog(partitions=3))
    verifier = Verifier(answer)
    services = SimpleNamespace(
        config=config,
        metadata=SimpleNamespace(topics={"t": TOPIC}),
        groups=groups,
        transactions=verifier,
        authorizer=None,
    )
    return groups, verifier, RequestContext(services, version, 1, "test")  # type: ignore[arg-type]


def request(version: int) -> Any:
    m = request_module(28, version)
    part = build(
        m.TxnOffsetCommitRequestPartition,
        partition_index=0,
        committed_offset=3,
        committed_leader_epoch=-1,
        committed_metadata="",
    )
    return build(
        m.TxnOffsetCommitRequest,
        transactional_id="tx",
        group_id="g",
        producer_id=5,
        producer_epoch=2,
        topics=(build(m.TxnOffsetCommitRequestTopic, name="t", partitions=(part,)),),
    )


@pytest.mark.parametrize(
    ("answer", "version", "expected"),
    [
        (ErrorCode.none, 3, ErrorCode.none),
        (ErrorCode.transaction_abortable, 3, ErrorCode.invalid_txn_state),
        (ErrorCode.transaction_abortable, 4, ErrorCode.transaction_abortable),
        (ErrorCode.producer_fenced, 0, ErrorCode.invalid_producer_epoch),
        (ErrorCode.not_coordinator, 5, ErrorCode.coordinator_load_in_progress),
        (ErrorCode.concurrent_transactions, 2, ErrorCode.coordinator_load_in_progress),
        (ErrorCode.invalid_producer_id_mapping, 1, ErrorCode.invalid_producer_id_mapping),
    ],
)
async def test_verification_answers(answer: ErrorCode, version: int, expected: ErrorCode) -> None:
    """The verified partition is the group's; a refusal is translated and writes nothing."""
    groups, verifier, ctx = context(answer, version)
    response = await txn_offset_commit.handle(ctx, request(version))
    assert response.topics[0].partitions[0].error_code == expected
    assert verifier.asked == [("tx", 5, 2, [(OFFSETS_TOPIC, groups.partition_of("g"))])]
    assert groups.unstable_partitions("g") == ({("t", 0)} if expected == ErrorCode.none else set())


async def test_verification_can_be_turned_off() -> None:
    """With transaction.partition.verification.enable=false nothing is asked."""
    groups, verifier, ctx = context(ErrorCode.transaction_abortable, 3, verify=False)
    response = await txn_offset_commit.handle(ctx, request(3))
    assert response.topics[0].partitions[0].error_code == ErrorCode.none
    assert verifier.asked == []
    assert groups.unstable_partitions("g") == {("t", 0)}
