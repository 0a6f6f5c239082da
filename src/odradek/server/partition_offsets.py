"""The high watermark of any partition of the cluster, for the metrics and the console.

A broker knows the high watermark of the partitions it leads; consumer lag needs it for
every partition a group committed to, wherever it is led. The others are asked of their
leaders with ListOffsets (latest, read_uncommitted: the high watermark), one request per
leader and all leaders at once, as an admin client would; the answers are kept for a few
seconds, so a scrape every 15 s costs one round trip per broker rather than one per
partition, and a leader that does not answer in time costs the caller at most
`timeout_s`: its partitions are left out (their lag is unknown, not zero).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.list_offsets.v7 import request as list_offsets_v7

from odradek.coordinator.txn.remote import BrokerPool, Leader
from odradek.handlers.context import BrokerServices
from odradek.metadata import zk_layout as zl
from odradek.replication.client import BrokerClientError

log = logging.getLogger("odradek.partition_offsets")

TopicPartition = tuple[str, int]

LIST_OFFSETS_VERSION = 7
LATEST_TIMESTAMP = -1
# How long a leader's answer is used before it is asked again.
MAX_AGE_S = 5.0
TIMEOUT_S = 2.0
# Partitions looked at between two yields to the event loop.
CHUNK = 1000

_Request: Any = list_offsets_v7.ListOffsetsRequest
_Topic: Any = list_offsets_v7.ListOffsetsTopic
_Partition: Any = list_offsets_v7.ListOffsetsPartition


class PartitionOffsets:
    """High watermarks of local and remote partitions; `services` is called for the
    broker's services each time (they exist once the broker has started)."""

    def __init__(
        self,
        services: Callable[[], BrokerServices],
        *,
        max_age_s: float = MAX_AGE_S,
        timeout_s: float = TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._services = services
        self._max_age_s = max_age_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._pool = BrokerPool("odradek-offsets")
        # Partition -> (high watermark, when it was answered).
        self._remote: dict[TopicPartition, tuple[int, float]] = {}

    async def high_watermarks(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The high watermark of each of `partitions` that is known: led here (read at
        once), answered by its leader within the last `max_age_s`, or answered now.
        Partitions without a leader, or whose leader fails or is slow, are left out."""
        services = self._services()
        found: dict[TopicPartition, int] = {}
        ask: dict[Leader, list[TopicPartition]] = {}
        now = self._clock()
        for position, key in enumerate(partitions, start=1):
            if position % CHUNK == 0:
                await asyncio.sleep(0)  # thousands of partitions: let requests in between
            local = services.replicas.get(*key)
            if local is not None and local.is_leader:
                found[key] = local.high_watermark
                continue
            cached = self._remote.get(key)
            if cached is not None and now - cached[1] < self._max_age_s:
                found[key] = cached[0]
                continue
            leader = leader_of(services, key)
            if leader is not None and leader[0] != services.config.node_id:
                ask.setdefault(leader, []).append(key)
        if ask:
            found.update(await self._ask(ask))
        return found

    def known(self, key: TopicPartition) -> int | None:
        """The high watermark of a partition led here, or the last one its leader gave
        (within three times `max_age_s`); None when neither is known. For code that
        cannot wait; `high_watermarks` refreshes what it reads."""
        services = self._services()
        local = services.replicas.get(*key)
        if local is not None and local.is_leader:
            return local.high_watermark
        cached = self._remote.get(key)
        if cached is not None and self._clock() - cached[1] < 3 * self._max_age_s:
            return cached[0]
        return None

    async def _ask(self, ask: dict[Leader, list[TopicPartition]]) -> dict[TopicPartition, int]:
        # Tasks of their own: the client's timeouts need a task, and a caller that runs
        # outside one (a handler's first step) must still be bounded.
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._ask_leader(leader, keys)) for leader, keys in ask.items()]
        done, pending = await asyncio.wait(tasks, timeout=self._timeout_s)
        for task in pending:
            task.cancel()
        answered: dict[TopicPartition, int] = {}
        for task in done:
            if not task.cancelled() and task.exception() is None:
                answered.update(task.result())
        now = self._clock()
        for key, offset in answered.items():
            self._remote[key] = (offset, now)
        return answered

    async def _ask_leader(
        self, leader: Leader, keys: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        try:
            answers = await ask_offsets(self._pool, leader, keys, LATEST_TIMESTAMP)
        except BrokerClientError as exc:
            log.info("asking broker %d for offsets failed: %s", leader[0], exc)
            return {}
        return {
            key: offset
            for key, (error, offset) in answers.items()
            if error == ErrorCode.none and offset >= 0
        }

    async def close(self) -> None:
        await self._pool.close()


async def ask_offsets(
    pool: BrokerPool, leader: Leader, keys: Iterable[TopicPartition], timestamp: int
) -> dict[TopicPartition, tuple[ErrorCode, int]]:
    """One ListOffsets request (read_uncommitted) to `leader` for `keys` at `timestamp`
    (-1 latest: the high watermark, -2 earliest, or a time): each answered partition's
    error and offset. BrokerClientError when the request fails."""
    by_topic: dict[str, list[int]] = {}
    for topic, index in keys:
        by_topic.setdefault(topic, []).append(index)
    request = _Request(
        replica_id=-1,
        isolation_level=0,
        topics=tuple(
            _Topic(
                name=topic,
                partitions=tuple(
                    _Partition(partition_index=index, current_leader_epoch=-1, timestamp=timestamp)
                    for index in indexes
                ),
            )
            for topic, indexes in by_topic.items()
        ),
    )
    response = await pool.request(leader, request, LIST_OFFSETS_VERSION)
    return {
        (str(topic.name), int(p.partition_index)): (p.error_code, int(p.offset))
        for topic in response.topics
        for p in topic.partitions
    }


def leader_of(services: BrokerServices, key: TopicPartition) -> Leader | None:
    """The leader of a partition of the cluster as its metadata says, this broker
    included, with the address of its inter-broker listener; None on a single broker
    (which leads everything it has) or while the partition has no live leader."""
    cluster = services.cluster
    if cluster is None:
        return None
    state = cluster.store.partition_state(*key)
    if state is None or state.leader < 0:
        return None
    broker = cluster.store.brokers.get(state.leader)
    if broker is None:
        return None
    host, port = zl.endpoint_for(broker, services.config.inter_broker_listener_name)
    return broker.node_id, host, port
