"""A transactional id's metadata and the states its transaction moves through.

States and their record ids are Kafka's: Empty (0, no transaction), Ongoing (1, partitions
added), PrepareCommit (2) / PrepareAbort (3) (the outcome is decided and durable, markers
are being written), CompleteCommit (4) / CompleteAbort (5), Dead (6, expired, about to be
removed) and PrepareEpochFence (7, Kafka's in-memory step before aborting a fenced
producer's transaction; we go straight to PrepareAbort with the bumped epoch, so it is only
ever read from a Kafka log). `VALID_PREVIOUS` is Kafka's transition table (without the
transaction-version-2 edges into PrepareAbort, as we serve version 1).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
# Kafka rotates to a new producer id once the epoch reaches Short.MaxValue - 1, keeping the
# last value free for the fencing bump of an ongoing transaction.
MAX_PRODUCER_EPOCH = 32767


class TxnState(enum.Enum):
    EMPTY = (0, "Empty")
    ONGOING = (1, "Ongoing")
    PREPARE_COMMIT = (2, "PrepareCommit")
    PREPARE_ABORT = (3, "PrepareAbort")
    COMPLETE_COMMIT = (4, "CompleteCommit")
    COMPLETE_ABORT = (5, "CompleteAbort")
    DEAD = (6, "Dead")
    PREPARE_EPOCH_FENCE = (7, "PrepareEpochFence")

    @property
    def id(self) -> int:
        return self.value[0]

    @property
    def display(self) -> str:
        """The name DescribeTransactions and ListTransactions show."""
        return self.value[1]

    @classmethod
    def from_id(cls, state_id: int) -> TxnState:
        for state in cls:
            if state.id == state_id:
                return state
        raise ValueError(f"unknown transaction state id {state_id}")

    @classmethod
    def from_display(cls, name: str) -> TxnState | None:
        return next((s for s in cls if s.display == name), None)


_S = TxnState
VALID_PREVIOUS: dict[TxnState, frozenset[TxnState]] = {
    _S.EMPTY: frozenset({_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.ONGOING: frozenset({_S.ONGOING, _S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.PREPARE_COMMIT: frozenset({_S.ONGOING}),
    _S.PREPARE_ABORT: frozenset({_S.ONGOING, _S.PREPARE_EPOCH_FENCE}),
    _S.COMPLETE_COMMIT: frozenset({_S.PREPARE_COMMIT}),
    _S.COMPLETE_ABORT: frozenset({_S.PREPARE_ABORT}),
    _S.DEAD: frozenset({_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.PREPARE_EPOCH_FENCE: frozenset({_S.ONGOING}),
}
# States in which no transaction is open: the id may expire, a new transaction may begin.
IDLE = frozenset({_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT})
PREPARED = frozenset({_S.PREPARE_COMMIT, _S.PREPARE_ABORT})


def epoch_exhausted(epoch: int) -> bool:
    return epoch >= MAX_PRODUCER_EPOCH - 1


@dataclass(slots=True)
class TxnMetadata:
    """One transactional id as the coordinator holds it (a replay of its last record)."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState
    update_ms: int
    start_ms: int = -1
    partitions: set[tuple[str, int]] = field(default_factory=set)
    # The producer id before the last rotation (epoch exhaustion), for KIP-360 retries.
    previous_producer_id: int = NO_PRODUCER_ID
    # The epoch before the last bump (in memory only, as in Kafka): a retried InitProducerId
    # or EndTxn of that epoch is recognised.
    last_epoch: int = NO_PRODUCER_EPOCH
