"""Building a GroupCoordinator on a FakeClock and an in-memory log, and short request
builders, for the state machine tests."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any

from odradek.clock import FakeClock
from odradek.config import BrokerConfig
from odradek.coordinator.coordinator import GroupCoordinator
from odradek.coordinator.membership import JoinRequest, JoinResult, SyncResult
from odradek.coordinator.record_log import MemoryRecordLog
from odradek.coordinator.sync import SyncRequest

PROTOCOLS = (("range", b"meta"),)


class Harness:
    def __init__(self, **config: Any) -> None:
        defaults: dict[str, Any] = {
            "group_initial_rebalance_delay_ms": 100,
            "group_min_session_timeout_ms": 1000,
        }
        defaults.update(config)
        self.config = dataclasses.replace(BrokerConfig(), **defaults)
        self.clock = FakeClock()
        self.log = MemoryRecordLog(partitions=3)
        counter = itertools.count(1)
        self.coordinator = GroupCoordinator(
            self.config, self.clock, self.log, lambda prefix: f"{prefix}-{next(counter)}"
        )

    def advance(self, ms: int) -> None:
        self.clock.advance(ms)
        self.coordinator.tick()

    def join(
        self,
        group: str = "g",
        member_id: str = "",
        instance: str | None = None,
        protocols: tuple[tuple[str, bytes], ...] = PROTOCOLS,
        session_ms: int = 10_000,
        rebalance_ms: int = 30_000,
        require_known: bool = False,
        protocol_type: str = "consumer",
    ) -> asyncio.Future[Any]:
        return self.coordinator.join_group(
            JoinRequest(
                group,
                member_id,
                instance,
                "client",
                "/127.0.0.1",
                session_ms,
                rebalance_ms,
                protocol_type,
                protocols,
                require_known,
            )
        )

    def sync(
        self,
        member_id: str,
        generation: int,
        assignments: dict[str, bytes] | None = None,
        group: str = "g",
        instance: str | None = None,
    ) -> asyncio.Future[Any]:
        return self.coordinator.sync_group(
            SyncRequest(
                group,
                generation,
                member_id,
                instance,
                None,
                None,
                tuple((assignments or {}).items()),
            )
        )

    def join_all(self, count: int, group: str = "g", **kwargs: Any) -> list[JoinResult]:
        """`count` new members join one after another; the rebalance completes."""
        futures = [self.join(group, **kwargs) for _ in range(count)]
        self.settle(*futures)
        return [result(f) for f in futures]

    def settle(self, *futures: asyncio.Future[Any]) -> None:
        """Advances the clock in 100 ms steps (at most 1 s) until every future is done."""
        for _ in range(10):
            if all(f.done() for f in futures):
                return
            self.advance(100)

    def stable(self, count: int, group: str = "g", **kwargs: Any) -> list[JoinResult]:
        """A Stable group of `count` members; each member's assignment is its own id."""
        joined = self.join_all(count, group, **kwargs)
        leader = next(j for j in joined if j.members)
        syncs = [
            self.sync(
                j.member_id,
                j.generation,
                {m[0]: m[0].encode() for m in leader.members} if j is leader else None,
                group,
            )
            for j in joined
        ]
        for j, s in zip(joined, syncs, strict=True):
            assert result(s) == SyncResult(
                result(s).error, j.member_id.encode(), "consumer", "range"
            )
        return joined


def result(future: asyncio.Future[Any]) -> Any:
    assert future.done(), "the request is still parked"
    return future.result()
