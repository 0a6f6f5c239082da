"""Fetch (key 1), versions 4-18.

Returns stored batches as they are on disk (never decoded), up to `max_bytes` in all and
`partition_max_bytes` per partition, except that the first batch of the first partition
with data is returned whole even when larger ("first batch always"). A fetch without
`min_bytes` of data waits up to `max_wait_ms` and is answered as soon as an append brings
enough. Fetch sessions (KIP-227) from v7; topic ids instead of names from v13.

Isolation: read_uncommitted (0) reads up to the high watermark; read_committed (1) up to
the last stable offset (no ongoing transaction's data) and gets, per partition, the
aborted transactions (producer id, first offset) overlapping the returned batches, from
the aborted-transaction index, so the consumer can drop their records. Every partition
response carries the last stable offset. A parked read_committed fetch wakes when a
marker moves the LSO (Partition.append_txn_marker wakes parked fetches).

In a cluster only a partition's leader serves it (others: NOT_LEADER_OR_FOLLOWER); a
`current_leader_epoch` (v9+) older than the leader's gets FENCED_LEADER_EPOCH, a newer one
UNKNOWN_LEADER_EPOCH (KIP-320). A fetch from a follower (replica_id, or ReplicaState from
v15, naming a live broker) reads up to the log end instead of the high watermark, and
its fetch offset tells the leader how far the follower has come. On a single broker a
fetch claiming to come from a replica is refused with CLUSTER_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import TOPIC, allowed, cluster_allowed
from odradek.handlers.context import RequestContext, count_error
from odradek.handlers.fetch_replica import VERSION as REPLICA_FAST_VERSION
from odradek.handlers.fetch_replica import encode_replica_fetch_v11
from odradek.handlers.fetch_session import (
    FINAL_EPOCH,
    INITIAL_EPOCH,
    FetchSession,
    FetchSessionError,
    PartitionKey,
    SessionPartition,
)
from odradek.handlers.leader_hints import (
    LEADER_ERRORS,
    current_leader,
    epoch_error,
    leader_field,
    node_endpoints,
    role_error,
)
from odradek.handlers.registry import api, make, response_module
from odradek.protocol.batch import iter_batches
from odradek.replication.partition import Partition
from odradek.security.acl import AclOperation
from odradek.storage.errors import OffsetOutOfRangeError

API_KEY = 1


@dataclass(slots=True)
class PartitionRead:
    key: PartitionKey
    error: ErrorCode
    high_watermark: int = -1
    log_start_offset: int = -1
    records: bytes | memoryview = b""  # a view when the log read left a tail off
    last_stable_offset: int = -1
    aborted: tuple[tuple[int, int], ...] = ()  # (producer id, first offset), read_committed


def _topic_key(ctx: RequestContext, topic: Any) -> str:
    return str(topic.topic_id) if ctx.api_version >= 13 else str(topic.topic)


def _requested(ctx: RequestContext, request: Any) -> dict[PartitionKey, SessionPartition]:
    wanted: dict[PartitionKey, SessionPartition] = {}
    for topic in request.topics:
        name = _topic_key(ctx, topic)
        for p in topic.partitions:
            wanted[(name, p.partition)] = SessionPartition(
                p.fetch_offset,
                p.partition_max_bytes,
                current_leader_epoch=getattr(p, "current_leader_epoch", -1),
            )
    return wanted


def _forgotten(ctx: RequestContext, request: Any) -> list[PartitionKey]:
    result: list[PartitionKey] = []
    for topic in getattr(request, "forgotten_topics_data", ()):
        name = str(topic.topic_id) if ctx.api_version >= 13 else str(topic.topic)
        result.extend((name, p) for p in topic.partitions)
    return result


def _open_session(
    ctx: RequestContext, request: Any
) -> tuple[FetchSession | None, dict[PartitionKey, SessionPartition], bool]:
    """Applies the request to the session cache: (session, partitions to read, incremental)."""
    cache = ctx.services.fetch_sessions
    session_id = getattr(request, "session_id", 0)
    epoch = getattr(request, "session_epoch", FINAL_EPOCH)
    wanted = _requested(ctx, request)
    if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
        if session_id:
            cache.close(session_id)
        session = cache.create() if epoch == INITIAL_EPOCH else None
        if session is not None:
            session.partitions = wanted
        return session, wanted, False
    session = cache.resume(session_id, epoch)
    for key in _forgotten(ctx, request):
        session.partitions.pop(key, None)
    for key, update in wanted.items():
        known = session.partitions.get(key)
        if known is None:
            session.partitions[key] = update
        else:
            known.fetch_offset, known.max_bytes = update.fetch_offset, update.max_bytes
            known.current_leader_epoch = update.current_leader_epoch
    return session, session.partitions, True


def _partition(ctx: RequestContext, key: PartitionKey) -> Partition | None:
    name = key[0]
    if ctx.api_version >= 13:
        topic = ctx.services.metadata.by_id.get(uuid.UUID(name))
        if topic is None:
            return None
        name = topic.name
    return ctx.services.replicas.get(name, key[1])


def _leadership_error(partition: Partition, spec: SessionPartition) -> ErrorCode:
    """Only the leader serves fetches, at the leader epoch the client expects (KIP-320)."""
    if not partition.is_leader:
        return ErrorCode.not_leader_or_follower
    return epoch_error(partition, spec.current_leader_epoch) or ErrorCode.none


def _missing(ctx: RequestContext, key: PartitionKey) -> ErrorCode:
    """A partition not hosted here: hosted by other brokers of the cluster, or unknown."""
    name = _topic_name(ctx, key[0])
    if name is not None and role_error(ctx.services, name, key[1], None) is not None:
        return ErrorCode.not_leader_or_follower
    return (
        ErrorCode.unknown_topic_id
        if ctx.api_version >= 13
        else ErrorCode.unknown_topic_or_partition
    )


def _read_all(
    ctx: RequestContext,
    wanted: dict[PartitionKey, SessionPartition],
    max_bytes: int,
    replica_id: int = -1,
    read_committed: bool = False,
) -> list[PartitionRead]:
    """Reads every partition: below the high watermark for consumers (the last stable
    offset for read_committed ones), up to the log end for a follower (`replica_id` >= 0)."""
    reads: list[PartitionRead] = []
    remaining = max_bytes
    min_one = True
    for key, spec in wanted.items():
        partition = _partition(ctx, key)
        if partition is None:
            reads.append(PartitionRead(key, _missing(ctx, key)))
            continue
        refused = _leadership_error(partition, spec)
        if refused != ErrorCode.none:
            reads.append(PartitionRead(key, refused))
            continue
        lso = partition.last_stable_offset
        read = PartitionRead(
            key, ErrorCode.none, partition.high_watermark, partition.log_start_offset
        )
        read.last_stable_offset = lso
        limit = min(spec.max_bytes, remaining)
        throttled = False
        if replica_id >= 0:
            upto = partition.log_end_offset
            throttled = ctx.services.replicas.leader_quota.is_throttled(*_key_of(partition))
            if throttled and _leader_holds_back(ctx, partition, replica_id):
                reads.append(read)  # no records this time (Kafka's shouldLeaderThrottle)
                continue
        else:
            upto = lso if read_committed else read.high_watermark
            partition.fetch_requests += 1
        if limit > 0 or min_one:
            try:
                data = partition.log.read(spec.fetch_offset, limit, upto, min_one)
                read.records = data.records
            except OffsetOutOfRangeError:
                read.error = ErrorCode.offset_out_of_range
        if read.records:
            remaining -= len(read.records)
            min_one = False
            if read_committed:
                read.aborted = _aborted(partition, spec.fetch_offset, read.records)
            if throttled:
                ctx.services.replicas.leader_quota.record(len(read.records))
            if replica_id < 0:
                partition.bytes_out += len(read.records)
        reads.append(read)
    return reads


def _key_of(partition: Partition) -> tuple[str, int]:
    return partition.topic, partition.index


def _leader_holds_back(ctx: RequestContext, partition: Partition, replica_id: int) -> bool:
    """A throttled partition is left out of a follower's answer while the follower is
    out of the ISR and the leader's replication quota is exceeded (in-sync followers
    are never throttled, so the ISR does not thrash)."""
    return replica_id not in partition.isr and ctx.services.replicas.leader_quota.is_exceeded()


def _aborted(
    partition: Partition, fetch_offset: int, records: bytes | memoryview
) -> tuple[tuple[int, int], ...]:
    """The aborted transactions overlapping the returned batches, from the fetch offset
    to the end of the last batch (only read_committed fetches pay for the header walk)."""
    upper_bound = fetch_offset
    for _, header in iter_batches(records):
        upper_bound = header.next_offset
    found = partition.log.collect_aborted(fetch_offset, upper_bound)
    return tuple((txn.producer_id, txn.first_offset) for txn in found)


async def _wait_for_append(
    ctx: RequestContext, keys: list[PartitionKey], timeout: float, replica: bool = False
) -> None:
    """Parks until any of these partitions is appended to (or, for a consumer's fetch,
    not a `replica`'s, its high watermark moves), or `timeout` seconds pass. (A timer
    completes the same future: cheaper per parked fetch than asyncio.wait.)"""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    partitions = [p for p in (_partition(ctx, key) for key in keys) if p is not None]
    for partition in partitions:
        partition.add_waiter(waiter, replica)
    timer = loop.call_later(timeout, _wake, waiter)
    try:
        await waiter
    finally:
        timer.cancel()
        for partition in partitions:
            partition.remove_waiter(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _changed(read: PartitionRead, known: SessionPartition) -> bool:
    """Whether an incremental response must include this partition."""
    return bool(
        read.records
        or read.error != ErrorCode.none
        or read.high_watermark != known.high_watermark
        or read.log_start_offset != known.log_start_offset
        or read.last_stable_offset != known.last_stable_offset
    )


def _hint(ctx: RequestContext, module: Any, read: PartitionRead, leaders: set[int]) -> Any:
    """KIP-951: the current leader of a partition refused for its role (v12+)."""
    leader = None
    if read.error in LEADER_ERRORS:
        partition = _topic_name(ctx, read.key[0])
        if partition is not None:
            leader = current_leader(ctx.services, partition, read.key[1])
    if leader is not None:
        leaders.add(leader[0])
    return leader_field(module, leader)


def _topic_name(ctx: RequestContext, key: str) -> str | None:
    if ctx.api_version < 13:
        return key
    topic = ctx.services.metadata.by_id.get(uuid.UUID(key))
    return topic.name if topic is not None else None


def _build(ctx: RequestContext, reads: list[PartitionRead], session_id: int) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    by_topic: dict[str, list[Any]] = {}
    hints = ctx.services.cluster is not None and hasattr(module, "LeaderIdAndEpoch")
    leaders: set[int] = set()
    for read in reads:
        if read.error:
            count_error(ctx.services, API_KEY, read.error)
        extra = {"current_leader": _hint(ctx, module, read, leaders)} if hints else {}
        by_topic.setdefault(read.key[0], []).append(
            make(
                module.PartitionData,
                partition_index=read.key[1],
                error_code=read.error,
                high_watermark=read.high_watermark,
                last_stable_offset=read.last_stable_offset,
                log_start_offset=read.log_start_offset,
                aborted_transactions=_aborted_field(module, read),
                preferred_read_replica=-1,
                records=read.records,
                **extra,
            )
        )
    topics = tuple(
        make(
            module.FetchableTopicResponse,
            topic=name,
            topic_id=uuid.UUID(name) if ctx.api_version >= 13 else None,
            partitions=tuple(parts),
        )
        for name, parts in by_topic.items()
    )
    return make(
        module.FetchResponse,
        throttle_time=datetime.timedelta(0),
        error_code=ErrorCode.none,
        session_id=session_id,
        responses=topics,
        node_endpoints=node_endpoints(ctx.services, module, leaders),
    )


def _aborted_field(module: Any, read: PartitionRead) -> tuple[Any, ...] | None:
    if read.error != ErrorCode.none:
        return None
    if not read.aborted:
        return ()
    return tuple(
        make(module.AbortedTransaction, producer_id=pid, first_offset=first)
        for pid, first in read.aborted
    )


def _error_response(ctx: RequestContext, code: ErrorCode) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    return make(
        module.FetchResponse,
        throttle_time=datetime.timedelta(0),
        error_code=code,
        session_id=0,
        responses=(),
    )


def _readable(
    ctx: RequestContext, wanted: dict[PartitionKey, SessionPartition]
) -> tuple[dict[PartitionKey, SessionPartition], list[PartitionRead]]:
    """The partitions whose topic the principal may READ, and TOPIC_AUTHORIZATION_FAILED
    for the others (they stay in the fetch session, as in Kafka)."""
    readable: dict[PartitionKey, SessionPartition] = {}
    refused: list[PartitionRead] = []
    for key, spec in wanted.items():
        name = _topic_name(ctx, key[0])
        if name is None or allowed(ctx, AclOperation.READ, TOPIC, name):
            readable[key] = spec
        else:
            refused.append(PartitionRead(key, ErrorCode.topic_authorization_failed))
    return readable, refused


def _replica_id(request: Any) -> int:
    state = getattr(request, "replica_state", None)
    return int(state.replica_id if state is not None else getattr(request, "replica_id", -1))


async def _read_when_ready(
    ctx: RequestContext,
    request: Any,
    wanted: dict[PartitionKey, SessionPartition],
    replica_id: int = -1,
) -> list[PartitionRead]:
    """Reads, and while there is less than min_bytes and time is left, waits and reads again."""
    loop = asyncio.get_running_loop()
    max_bytes = min(request.max_bytes, ctx.services.config.fetch_max_bytes)
    deadline = loop.time() + request.max_wait.total_seconds()
    read_committed = getattr(request, "isolation_level", 0) == 1 and replica_id < 0
    while True:
        reads = _read_all(ctx, wanted, max_bytes, replica_id, read_committed)
        size = sum(len(r.records) for r in reads)
        errors = any(r.error != ErrorCode.none for r in reads)
        remaining = deadline - loop.time()
        if size >= request.min_bytes or errors or remaining <= 0 or not wanted:
            return reads
        await _wait_for_append(ctx, list(wanted), remaining, replica_id >= 0)


def _follower_fetched(
    ctx: RequestContext, replica_id: int, wanted: dict[PartitionKey, SessionPartition]
) -> None:
    """A follower's fetch offset is its log end: the leader's high watermark and ISR
    follow from it."""
    cluster = ctx.services.cluster
    assert cluster is not None
    now_ms = ctx.services.clock.time_ms()
    for key, spec in wanted.items():
        partition = _partition(ctx, key)
        if partition is not None and partition.is_leader and partition.replicated:
            partition.update_follower(replica_id, spec.fetch_offset, now_ms)
            cluster.replicas.follower_fetched(partition, replica_id)


async def _replica_fetch(ctx: RequestContext, request: Any, replica_id: int) -> Any:
    wanted = _requested(ctx, request)
    _follower_fetched(ctx, replica_id, wanted)
    reads = await _read_when_ready(ctx, request, wanted, replica_id)
    if ctx.api_version == REPLICA_FAST_VERSION and all(not r.error for r in reads):
        # the replica fetcher's own version: records go out without another copy
        fields = [
            (*r.key, r.high_watermark, r.last_stable_offset, r.log_start_offset, r.records)
            for r in reads
        ]
        return encode_replica_fetch_v11(ctx.correlation_id, fields)
    return _build(ctx, reads, 0)


@api(API_KEY, 4, 18, is_async=True)
async def handle(ctx: RequestContext, request: Any) -> Any:
    replica_id = _replica_id(request)
    if replica_id >= 0:
        if ctx.services.cluster is None or replica_id not in ctx.services.cluster.store.brokers:
            return _error_response(ctx, ErrorCode.cluster_authorization_failed)
        if not cluster_allowed(ctx, AclOperation.CLUSTER_ACTION):
            return _error_response(ctx, ErrorCode.cluster_authorization_failed)
        return await _replica_fetch(ctx, request, replica_id)
    try:
        session, wanted, incremental = _open_session(ctx, request)
    except FetchSessionError as exc:
        return _error_response(ctx, exc.code)
    if ctx.services.authorizer is None:
        reads = await _read_when_ready(ctx, request, wanted)
    else:
        readable, refused = _readable(ctx, wanted)
        reads = refused + await _read_when_ready(ctx, request, readable)
    if session is None:
        return _build(ctx, reads, 0)
    included = []
    for read in reads:
        known = session.partitions.get(read.key)
        if known is None:
            continue  # forgotten while this fetch waited
        if not incremental or _changed(read, known):
            included.append(read)
        known.high_watermark, known.log_start_offset = read.high_watermark, read.log_start_offset
        known.last_stable_offset = read.last_stable_offset
    session.epoch = session.epoch + 1 if session.epoch < 2**31 - 1 else 1
    return _build(ctx, included, session.session_id)
