"""OffsetFetch (key 9), versions 1-10 (several groups at once from v8, topic ids in v10).

Answers each partition's committed offset, leader epoch (v5+) and metadata, or offset -1
when none is committed; a null topic list (v2+) means every partition with an offset.
An open transaction's offsets (TxnOffsetCommit before its marker) are never shown: with
`require_stable` (v7+, KIP-447; read_committed consumers set it) a partition that has one
answers UNSTABLE_OFFSET_COMMIT (offset -1), which the client retries; without it the last
committed offset. The v9+ member id and epoch are checked against a KIP-848 consumer group
(UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH); epoch -1 without a member id (an admin client, a
consumer outside the group) may always fetch. A broker
that is not the group's coordinator answers NOT_COORDINATOR: per group (v8+), at the top
(v2-7), or on every partition asked for (v1, which has no top-level error).
With an authorizer: DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED) and on each topic
(TOPIC_AUTHORIZATION_FAILED per partition asked for; left out of "every partition").
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.coordinator import GroupCoordinator
from odradek.coordinator.group import CommittedOffset
from odradek.handlers.acls import GROUP, TOPIC, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 9


def _partition(
    module: Any, cls: str, index: int, found: CommittedOffset | None, error: ErrorCode
) -> Any:
    return make(
        getattr(module, cls),
        partition_index=index,
        committed_offset=found.offset if found else -1,
        committed_leader_epoch=found.leader_epoch if found else -1,
        metadata=found.metadata if found else "",
        error_code=error,
    )


def _wanted(
    ctx: RequestContext, committed: dict[tuple[str, int], CommittedOffset | None], topics: Any
) -> list[tuple[str, Any, list[int]]]:
    """(name, topic id, partitions) to answer: those asked for, or with a null topic
    list every partition with a committed offset."""
    by_id = ctx.api_version >= 10
    wanted: list[tuple[str, Any, list[int]]] = []
    if topics is None:
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sorted(committed):
            by_topic.setdefault(topic, []).append(partition)
        for name, parts in by_topic.items():
            info = ctx.services.metadata.topics.get(name)
            if by_id and info is None:
                continue
            if not allowed(ctx, AclOperation.DESCRIBE, TOPIC, name):
                continue
            wanted.append((name, info.topic_id if info else None, parts))
        return wanted
    for t in topics:
        if by_id:
            info = ctx.services.metadata.by_id.get(t.topic_id)
            name = info.name if info is not None else ""
            wanted.append((name, t.topic_id, [int(p) for p in t.partition_indexes]))
        else:
            wanted.append((str(t.name), None, [int(p) for p in t.partition_indexes]))
    return wanted


def _group_topics(
    ctx: RequestContext,
    groups: GroupCoordinator | None,
    group_id: str,
    topics: Any,
    batched: bool,
    require_stable: bool = False,
    member: tuple[str, int] | None = None,
) -> tuple[ErrorCode, tuple[Any, ...]]:
    """The group's error and its topics. With an error there are no topics, except in
    v1, which has no group error: every partition asked for carries it (as Kafka)."""
    module = response_module(API_KEY, ctx.api_version)
    topic_cls = "OffsetFetchResponseTopics" if batched else "OffsetFetchResponseTopic"
    part_cls = "OffsetFetchResponsePartitions" if batched else "OffsetFetchResponsePartition"
    committed: dict[tuple[str, int], CommittedOffset | None] = {}
    unstable: set[tuple[str, int]] = set()
    if not allowed(ctx, AclOperation.DESCRIBE, GROUP, group_id):
        error = ErrorCode.group_authorization_failed
    elif groups is None:
        error = ErrorCode.coordinator_not_available
    else:
        error, committed = groups.fetch_offsets(group_id, None, member)
        if require_stable and error == ErrorCode.none:
            unstable = groups.unstable_partitions(group_id)

    refused: set[str] = set()
    if ctx.services.authorizer is not None and topics is not None:
        refused = {
            name
            for name, _id, _parts in _wanted(ctx, committed, topics)
            if not allowed(ctx, AclOperation.DESCRIBE, TOPIC, name)
        }

    def partition(name: str, index: int) -> Any:
        if name in refused:
            return _partition(module, part_cls, index, None, ErrorCode.topic_authorization_failed)
        if (name, index) in unstable:
            return _partition(module, part_cls, index, None, ErrorCode.unstable_offset_commit)
        return _partition(module, part_cls, index, committed.get((name, index)), error)

    if error != ErrorCode.none and (ctx.api_version >= 2 or topics is None):
        return error, ()
    return error, tuple(
        make(
            getattr(module, topic_cls),
            name=name,
            topic_id=topic_id,
            partitions=tuple(partition(name, p) for p in parts),
        )
        for name, topic_id, parts in _wanted(ctx, committed, topics)
    )


@api(API_KEY, 1, 10)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    groups = ctx.services.groups
    throttle = datetime.timedelta(0)
    stable = bool(getattr(request, "require_stable", False))
    if ctx.api_version < 8:
        error, topics = _group_topics(
            ctx, groups, str(request.group_id), request.topics, False, stable
        )
        return make(
            module.OffsetFetchResponse, throttle_time=throttle, topics=topics, error_code=error
        )
    results = []
    for g in request.groups:
        member = None
        # No member id and epoch -1: an admin client or a consumer outside the group.
        if ctx.api_version >= 9 and (g.member_id or int(g.member_epoch) >= 0):
            member = (g.member_id or "", int(g.member_epoch))
        error, topics = _group_topics(ctx, groups, str(g.group_id), g.topics, True, stable, member)
        results.append(
            make(
                module.OffsetFetchResponseGroup,
                group_id=g.group_id,
                topics=topics,
                error_code=error,
            )
        )
    return make(module.OffsetFetchResponse, throttle_time=throttle, groups=tuple(results))
