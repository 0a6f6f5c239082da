"""One partition led by this broker: its log, leader epoch, high watermark and the parked
fetches that an append wakes.

With one node the in-sync replica set is this broker alone, so every append is fully
replicated when written and the high watermark is the log end offset.
"""

from __future__ import annotations

import asyncio
import uuid

from odradek.protocol.batch import BatchHeader
from odradek.storage.log import Log
from odradek.storage.log_config import AppendInfo


class Partition:
    __slots__ = (
        "_waiters",
        "index",
        "leader_epoch",
        "log",
        "min_insync_replicas",
        "topic",
        "topic_id",
    )

    def __init__(
        self, topic: str, index: int, topic_id: uuid.UUID, log: Log, leader_epoch: int = 0
    ) -> None:
        self.topic = topic
        self.index = index
        self.topic_id = topic_id
        self.log = log
        self.leader_epoch = leader_epoch
        self.min_insync_replicas = 1
        self._waiters: set[asyncio.Future[None]] = set()

    @property
    def high_watermark(self) -> int:
        return self.log.log_end_offset

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    def append(self, records: bytes, header: BatchHeader) -> AppendInfo:
        """Appends a validated producer batch and wakes every fetch parked on this partition."""
        info = self.log.append_as_leader(records, header, self.leader_epoch)
        if self._waiters:
            self.wake_waiters()
        return info

    def add_waiter(self, waiter: asyncio.Future[None]) -> None:
        """Parks a fetch: `waiter` completes at the next append."""
        self._waiters.add(waiter)

    def remove_waiter(self, waiter: asyncio.Future[None]) -> None:
        self._waiters.discard(waiter)

    def wake_waiters(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
