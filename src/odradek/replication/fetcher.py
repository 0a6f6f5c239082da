"""Replica fetchers: one task per leader broker, fetching every partition this broker
follows on that leader in one Fetch request (Kafka's ReplicaFetcherThread).

A partition that just started following (or whose leader epoch changed) first asks the
leader where its own history ends (OffsetForLeaderEpoch with this log's latest epoch,
KIP-101/KIP-279) and truncates to the point where both logs agree; only then does it
fetch. Fetched batches are appended byte for byte (`Log.append_as_follower`) and the
follower's high watermark follows the leader's. The leader parks a follower's fetch
until it has something new, so an acks=all produce is answered about one round trip
after the append.

Throttling (replication/quota.py): a partition in this broker's
follower.replication.throttled.replicas counts its fetched bytes against the follower
quota, and while it is behind the leader's high watermark and the quota is exceeded it
is left out of the fetch request, as Kafka's shouldFollowerThrottle.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.fetch.v11 import request as fetch_request
from kio.schema.offset_for_leader_epoch.v3 import request as epoch_request

from odradek.protocol.batch import CorruptBatchError
from odradek.replication.client import BrokerClient, BrokerClientError
from odradek.replication.fetch_response import VERSION as FAST_FETCH_VERSION
from odradek.replication.fetch_response import parse_fetch_v11
from odradek.replication.partition import Partition
from odradek.replication.quota import ReplicationQuota
from odradek.storage.errors import KafkaStorageError, OffsetMismatchError

log = logging.getLogger("odradek.fetcher")

# kio's classes want its NewType'd ints; these requests are built from plain ones.
_FetchRequest: Any = fetch_request.FetchRequest
_FetchTopic: Any = fetch_request.FetchTopic
_FetchPartition: Any = fetch_request.FetchPartition
_EpochRequest: Any = epoch_request.OffsetForLeaderEpochRequest
_EpochTopic: Any = epoch_request.OffsetForLeaderTopic
_EpochPartition: Any = epoch_request.OffsetForLeaderPartition

FETCH_VERSION = 11
assert FETCH_VERSION == FAST_FETCH_VERSION  # the fast reader knows this version only
EPOCH_VERSION = 3
RETRY_BACKOFF_S = 0.1
# A partition the leader refused (not leader yet, epoch fenced) is asked again after this.
REFUSED_BACKOFF_S = 0.1
CONNECT_TIMEOUT_S = 3.0

Key = tuple[str, int]
# node id -> (host, port) of its inter-broker listener, None while unknown
AddressBook = Callable[[int], tuple[str, int] | None]
# cuts a partition's log at an offset (or, with True, empties it to start there) and
# writes the recovery-point checkpoint before anything is appended again
Truncate = Callable[[Partition, int, bool], None]


@dataclass(slots=True)
class FetcherSettings:
    node_id: int
    max_wait_ms: int = 500
    min_bytes: int = 1
    max_bytes: int = 10 * 1024 * 1024
    partition_max_bytes: int = 1024 * 1024
    request_timeout_ms: int = 30_000


@dataclass(slots=True)
class _Followed:
    partition: Partition
    needs_truncation: bool = True
    # Loop time before which the partition is not fetched: the leader refused us (it
    # may not have learnt of its leadership yet, or our epoch is old and new metadata
    # is on its way), or the log failed.
    backoff_until: float = 0.0
    # Caught up with the leader's high watermark at the last fetch (Kafka's in-sync
    # fetch state): such a partition is never throttled.
    in_sync: bool = False

    def ready(self, now: float) -> bool:
        return now >= self.backoff_until


@dataclass
class ReplicaFetcher:
    leader_id: int
    settings: FetcherSettings
    addresses: AddressBook
    truncate: Truncate
    quota: ReplicationQuota | None = None
    partitions: dict[Key, _Followed] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    # the Fetch request being waited for, which `follow` abandons
    _in_flight: asyncio.Future[Any] | None = None
    _client: BrokerClient | None = None
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"odradek-fetcher-{self.leader_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._disconnect()

    def follow(self, partition: Partition) -> None:
        """Starts (or restarts, after an epoch change) following `partition`; a fetch
        parked at the leader for the others is abandoned, so that a new leader's
        follower starts catching up (and the leader can acknowledge acks=all) without
        waiting out replica.fetch.wait.max.ms."""
        self.partitions[(partition.topic, partition.index)] = _Followed(partition)
        self._wake.set()
        if self._in_flight is not None:
            self._in_flight.cancel()

    async def _unless_followed(self, fetch: asyncio.Future[Any]) -> Any:
        """The answer of the request `fetch` is the future of, or None when `follow` was
        called before it came (the request is then abandoned; the client drops its late
        answer). `follow` cancels the future; a cancellation of the fetcher itself (this
        task has cancel requests pending) goes on up."""
        self._in_flight = fetch
        try:
            return await fetch
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if fetch.cancelled() and task is not None and not task.cancelling():
                return None
            raise
        finally:
            self._in_flight = None

    def unfollow(self, key: Key) -> None:
        self.partitions.pop(key, None)

    async def _disconnect(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await client.close()

    async def _connected(self) -> BrokerClient | None:
        if self._client is not None and not self._client.closed:
            return self._client
        address = self.addresses(self.leader_id)
        if address is None:
            return None
        client = BrokerClient(address[0], address[1], f"odradek-replica-{self.settings.node_id}")
        await client.connect(CONNECT_TIMEOUT_S)
        self._client = client
        return client

    async def _run(self) -> None:
        while True:
            now = asyncio.get_running_loop().time()
            active = {k: f for k, f in self.partitions.items() if f.ready(now)}
            if not active:
                self._wake.clear()
                waits = [f.backoff_until - now for f in self.partitions.values()]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(waits, default=None))
                continue
            try:
                client = await self._connected()
                if client is None:
                    await asyncio.sleep(RETRY_BACKOFF_S)
                    continue
                await self._truncate_all(client)
                await self._fetch_once(client)
            except asyncio.CancelledError:
                raise
            except (BrokerClientError, OSError) as exc:
                log.debug("fetch from node %d failed: %s", self.leader_id, exc)
                await self._disconnect()
                await asyncio.sleep(RETRY_BACKOFF_S)
            except Exception:
                log.exception("replica fetcher for node %d failed", self.leader_id)
                await self._disconnect()
                await asyncio.sleep(RETRY_BACKOFF_S)

    # -- truncation (OffsetForLeaderEpoch) -----------------------------------------------

    async def _truncate_all(self, client: BrokerClient) -> None:
        now = asyncio.get_running_loop().time()
        pending = {k: f for k, f in self.partitions.items() if f.needs_truncation and f.ready(now)}
        if not pending:
            return
        by_topic: dict[str, list[Any]] = {}
        for (topic, index), followed in pending.items():
            p = followed.partition
            by_topic.setdefault(topic, []).append(
                _EpochPartition(
                    partition=index,
                    current_leader_epoch=p.leader_epoch,
                    leader_epoch=p.log.latest_epoch,
                )
            )
        request = _EpochRequest(
            replica_id=self.settings.node_id,
            topics=tuple(_EpochTopic(topic=t, partitions=tuple(ps)) for t, ps in by_topic.items()),
        )
        response = await client.request(request, EPOCH_VERSION, self._timeout_s)
        for topic_result in response.topics:
            for result in topic_result.partitions:
                key = (str(topic_result.topic), int(result.partition))
                waiting = pending.get(key)
                if waiting is not None and self.partitions.get(key) is waiting:
                    self._truncate_one(waiting, result)

    def _truncate_one(self, followed: _Followed, result: object) -> None:
        error = result.error_code  # type: ignore[attr-defined]
        if error != ErrorCode.none:
            if error in (ErrorCode.fenced_leader_epoch, ErrorCode.not_leader_or_follower):
                self._back_off(followed)
            return  # UNKNOWN_LEADER_EPOCH etc.: the leader has not caught up; ask again
        partition = followed.partition
        log_ = partition.log
        leader_epoch = int(result.leader_epoch)  # type: ignore[attr-defined]
        end_offset = int(result.end_offset)  # type: ignore[attr-defined]
        if leader_epoch < 0 or end_offset < 0:
            # The leader knows no epoch this old: keep what we have up to the high
            # watermark, which every ISR member had (the pre-KIP-101 rule).
            target = partition.high_watermark
        else:
            # KIP-279: where our history of that epoch ends, if it ends earlier.
            ours = log_.leader_epoch_cache.end_offset_for(leader_epoch, log_.log_end_offset)[1]
            target = min(end_offset, ours) if ours >= 0 else end_offset
        target = max(target, log_.log_start_offset)
        if target < log_.log_end_offset:
            log.info(
                "%s-%d: truncating from %d to %d (leader %d epoch %d)",
                partition.topic,
                partition.index,
                log_.log_end_offset,
                target,
                self.leader_id,
                leader_epoch,
            )
            self.truncate(partition, target, False)
        followed.needs_truncation = False

    # -- fetching ------------------------------------------------------------------------

    @property
    def _timeout_s(self) -> float:
        return self.settings.request_timeout_ms / 1000

    async def _fetch_once(self, client: BrokerClient) -> None:
        now = asyncio.get_running_loop().time()
        ready = {
            k: f
            for k, f in self.partitions.items()
            if not f.needs_truncation and f.ready(now) and not self._throttled(k, f)
        }
        if not ready:
            await asyncio.sleep(RETRY_BACKOFF_S)
            return
        by_topic: dict[str, list[Any]] = {}
        for (topic, index), followed in ready.items():
            p = followed.partition
            by_topic.setdefault(topic, []).append(
                _FetchPartition(
                    partition=index,
                    current_leader_epoch=p.leader_epoch,
                    fetch_offset=p.log.log_end_offset,
                    log_start_offset=p.log.log_start_offset,
                    partition_max_bytes=self.settings.partition_max_bytes,
                )
            )
        request = _FetchRequest(
            replica_id=self.settings.node_id,
            max_wait=datetime.timedelta(milliseconds=self.settings.max_wait_ms),
            min_bytes=self.settings.min_bytes,
            max_bytes=self.settings.max_bytes,
            isolation_level=0,
            session_id=0,
            session_epoch=-1,
            topics=tuple(_FetchTopic(topic=t, partitions=tuple(ps)) for t, ps in by_topic.items()),
            forgotten_topics_data=(),
            rack_id="",
        )
        response = await self._unless_followed(
            client.send(
                request,
                FETCH_VERSION,
                self._timeout_s + self.settings.max_wait_ms / 1000,
                parse_fetch_v11,
            )
        )
        if response is None:
            return  # a partition was added: it is asked for at once, not after the wait
        if response.error_code != ErrorCode.none:
            raise BrokerClientError(f"fetch refused: {response.error_code.name}")
        for topic_response in response.responses:
            for data in topic_response.partitions:
                key = (str(topic_response.topic), int(data.partition_index))
                fetched = ready.get(key)
                if fetched is not None and self.partitions.get(key) is fetched:
                    self._apply(fetched, data)

    def _throttled(self, key: Key, followed: _Followed) -> bool:
        """Kafka's shouldFollowerThrottle: behind, throttled, and over the quota."""
        quota = self.quota
        return (
            quota is not None
            and not followed.in_sync
            and quota.is_throttled(*key)
            and quota.is_exceeded()
        )

    def _apply(self, followed: _Followed, data: object) -> None:
        error = data.error_code  # type: ignore[attr-defined]
        partition = followed.partition
        if error == ErrorCode.none:
            records = data.records  # type: ignore[attr-defined]
            if self.quota is not None and self.quota.is_throttled(*_key(partition)):
                self.quota.record(len(records or b""))
            # records may be a view of the response frame: appended without a copy
            if records and not self._append(followed, records):
                return
            leader_start = int(data.log_start_offset)  # type: ignore[attr-defined]
            if leader_start > partition.log.log_start_offset:
                partition.log.maybe_increment_log_start_offset(
                    min(leader_start, partition.log.log_end_offset)
                )
            leader_high_watermark = int(data.high_watermark)  # type: ignore[attr-defined]
            partition.set_follower_high_watermark(leader_high_watermark)
            followed.in_sync = partition.log.log_end_offset >= leader_high_watermark
        elif error == ErrorCode.offset_out_of_range:
            followed.needs_truncation = True
            self._reset_out_of_range(partition, int(data.log_start_offset))  # type: ignore[attr-defined]
        elif error in (
            ErrorCode.fenced_leader_epoch,
            ErrorCode.not_leader_or_follower,
            ErrorCode.unknown_topic_or_partition,
        ):
            self._back_off(followed)
        # UNKNOWN_LEADER_EPOCH: the leader has not learnt its epoch yet; fetch again.

    def _append(self, followed: _Followed, records: bytes | memoryview) -> bool:
        """Appends fetched batches; False when they could not be (fetch again)."""
        partition = followed.partition
        try:
            partition.log.append_as_follower(records)
        except CorruptBatchError as exc:
            # Damaged on the way or at the leader: nothing written; fetch it again.
            log.warning("%s-%d: corrupt batch from leader: %s", *_key(partition), exc)
            return False
        except OffsetMismatchError as exc:
            log_ = partition.log
            empty = log_.log_end_offset == log_.log_start_offset
            if empty and exc.first_offset < log_.log_end_offset <= exc.last_offset:
                # Our empty log starts inside the leader's first batch (retention or
                # DeleteRecords moved the start there): start at the batch instead.
                self.truncate(partition, exc.first_offset, True)
                return self._append(followed, records)
            log.warning("%s-%d: %s; finding the divergence again", *_key(partition), exc)
            followed.needs_truncation = True
            return False
        except KafkaStorageError:
            log.exception("%s-%d: follower append failed", *_key(partition))
            self._back_off(followed)
            return False
        return True

    def _back_off(self, followed: _Followed) -> None:
        followed.backoff_until = asyncio.get_running_loop().time() + REFUSED_BACKOFF_S

    def _reset_out_of_range(self, partition: Partition, leader_start: int) -> None:
        """Our log end is outside the leader's log: below its start (retention moved
        past us) means start over at its start; above its end means truncate (found
        again through OffsetForLeaderEpoch)."""
        if leader_start > partition.log.log_end_offset:
            self.truncate(partition, leader_start, True)


def _key(partition: Partition) -> tuple[str, int]:
    return partition.topic, partition.index
