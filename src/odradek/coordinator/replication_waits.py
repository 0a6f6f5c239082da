"""The coordinators' writes whose answers wait for the in-sync replicas (in a cluster,
as Kafka appends coordinator records with acks=-1), shared by the group and the
transaction coordinator: each wait has a deadline, and one that passes is cancelled,
which answers its request with the coordinator's timeout error. `replication_error`
maps how a replication ended to what the request answers.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from kio.schema.errors import ErrorCode

from odradek.clock import Clock
from odradek.coordinator.record_log import Replication

T = TypeVar("T")

# Append errors as the coordinator answers them (Kafka's GroupMetadataManager mapping).
_NOT_COORDINATOR = frozenset({ErrorCode.not_leader_or_follower, ErrorCode.kafka_storage_error})
_NOT_AVAILABLE = frozenset(
    {
        ErrorCode.unknown_topic_or_partition,
        ErrorCode.not_enough_replicas,
        ErrorCode.not_enough_replicas_after_append,
    }
)


def answered(value: T) -> asyncio.Future[T]:
    """A future that already holds `value` (an operation answered without waiting)."""
    future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


def replication_error(replication: Replication, timed_out: ErrorCode) -> ErrorCode:
    """What a write's request answers once its replication ended: NOT_COORDINATOR when
    this broker lost the partition, COORDINATOR_NOT_AVAILABLE when the in-sync replicas
    fell short, `timed_out` when they did not catch up in time."""
    if replication.cancelled():
        return timed_out
    code = replication.result()
    if code in _NOT_COORDINATOR:
        return ErrorCode.not_coordinator
    if code in _NOT_AVAILABLE:
        return ErrorCode.coordinator_not_available
    if code == ErrorCode.request_timed_out:
        return timed_out
    return code


class ReplicationWaits:
    """The replications a coordinator's answers wait for, each until `timeout_s` after
    it was added (on `clock`'s monotonic time)."""

    def __init__(self, clock: Clock, timeout_s: float) -> None:
        self._clock = clock
        self._timeout_s = timeout_s
        self._waits: list[tuple[float, Replication]] = []  # (deadline, replication)

    def __bool__(self) -> bool:
        """Whether any write still waits (its deadline needs the coordinator's tick)."""
        return any(not replication.done() for _deadline, replication in self._waits)

    def add(self, replication: Replication) -> None:
        self._waits.append((self._clock.monotonic() + self._timeout_s, replication))

    def expire(self, now: float) -> None:
        """Cancels the waits whose deadline passed (which answers their requests) and
        forgets the finished ones; the coordinator's tick calls this."""
        waiting = []
        for deadline, replication in self._waits:
            if replication.done():
                continue
            if deadline <= now:
                replication.cancel()
            else:
                waiting.append((deadline, replication))
        self._waits = waiting

    def cancel_all(self) -> None:
        """The broker stops: every waiting request is answered now."""
        for _deadline, replication in self._waits:
            replication.cancel()
        self._waits = []
