"""A TransactionCoordinator on a FakeClock, an in-memory log and a recording marker
writer, for the transaction state machine tests."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Collection
from typing import Any

from odradek.clock import FakeClock
from odradek.config import BrokerConfig
from odradek.coordinator.record_log import MemoryRecordLog
from odradek.coordinator.txn.coordinator import TRANSACTION_TOPIC, TransactionCoordinator
from odradek.coordinator.txn.records import decode_key, decode_value
from odradek.coordinator.txn.state import TxnState

PARTITIONS = 3
TXN = "txn-a"


class RecordingMarkers:
    """Records every marker request; with `hold` set each waits for `release()`."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, bool, int, tuple[tuple[str, int], ...]]] = []
        self.hold = False
        self.fenced = False
        self._gate: asyncio.Event | None = None

    async def write_markers(
        self,
        producer_id: int,
        producer_epoch: int,
        committed: bool,
        coordinator_epoch: int,
        partitions: Collection[tuple[str, int]],
    ) -> bool:
        self.calls.append(
            (producer_id, producer_epoch, committed, coordinator_epoch, tuple(partitions))
        )
        if self.hold:
            self._gate = self._gate or asyncio.Event()
            await self._gate.wait()
        return not self.fenced

    def release(self) -> None:
        self.hold = False
        if self._gate is not None:
            self._gate.set()
            self._gate = None


class TxnHarness:
    def __init__(self, log: MemoryRecordLog | None = None, **config: Any) -> None:
        self.config = dataclasses.replace(BrokerConfig(), **config)
        self.clock = FakeClock()
        self.log = log or MemoryRecordLog(partitions=PARTITIONS, topic=TRANSACTION_TOPIC)
        self.markers = RecordingMarkers()
        self.ids = itertools.count(1000)
        self.coordinator = self.new_coordinator()

    def new_coordinator(self) -> TransactionCoordinator:
        return TransactionCoordinator(
            self.config,
            self.clock,
            self.log,
            lambda: next(self.ids),
            self.markers,
            lambda group: ("__consumer_offsets", len(group) % 50),
        )

    def advance(self, ms: int) -> None:
        self.clock.advance(ms)
        self.coordinator.tick()

    async def init(
        self, txn: str = TXN, timeout_ms: int = 60_000, expected: tuple[int, int] | None = None
    ) -> tuple[Any, int, int]:
        result = await self.coordinator.init_producer_id(txn, timeout_ms, expected)
        return result.error, result.producer_id, result.producer_epoch

    def state(self, txn: str = TXN) -> TxnState | None:
        meta = self.coordinator.txns.get(txn)
        return None if meta is None else meta.state

    def records(self) -> list[tuple[str, Any]]:
        """Every record written, decoded, in order (per partition, partitions in order)."""
        out = []
        for partition in sorted(self.log.records):
            for key, value in self.log.records[partition]:
                out.append((decode_key(key), None if value is None else decode_value(value)))
        return out
