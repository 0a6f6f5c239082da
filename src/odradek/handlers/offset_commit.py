"""OffsetCommit (key 8), versions 2-10 (topic ids instead of names in v10).

Members commit with their generation and member id (ILLEGAL_GENERATION,
UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS while the group completes a rebalance,
FENCED_INSTANCE_ID); a simple consumer (generation -1) commits to a group with no members.
In a KIP-848 group the generation is the member epoch, and a member of the consumer
protocol must use v9+ (UNSUPPORTED_VERSION), as in Kafka.
Leader epochs (v6+) and metadata strings (up to offset.metadata.max.bytes) are stored.
Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID in v10).
The v2-4 `retention_time` is ignored: offsets.retention.minutes applies. In a cluster
the answer waits until the commit reached the in-sync replicas; a broker that is not the
group's coordinator answers NOT_COORDINATOR for every partition.
With an authorizer: READ on the group (GROUP_AUTHORIZATION_FAILED for every partition
otherwise) and READ on each topic (TOPIC_AUTHORIZATION_FAILED for its partitions).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.offsets import OffsetCommit
from odradek.handlers.acls import GROUP, TOPIC, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 8


def _topic_name(ctx: RequestContext, topic: Any) -> str | None:
    if ctx.api_version >= 10:
        info = ctx.services.metadata.by_id.get(topic.topic_id)
        return info.name if info is not None else None
    return str(topic.name)


def _partition_known(ctx: RequestContext, name: str | None, partition: int) -> bool:
    info = ctx.services.metadata.topics.get(name) if name is not None else None
    return info is not None and 0 <= partition < info.partitions


@api(API_KEY, 2, 10, is_async=True)
async def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    groups = ctx.services.groups
    missing = (
        ErrorCode.unknown_topic_id
        if ctx.api_version >= 10
        else ErrorCode.unknown_topic_or_partition
    )
    errors: dict[tuple[int, int], ErrorCode] = {}
    commits: list[OffsetCommit] = []
    keys: dict[tuple[str, int], tuple[int, int]] = {}
    group_allowed = allowed(ctx, AclOperation.READ, GROUP, str(request.group_id))
    for t_index, topic in enumerate(request.topics):
        name = _topic_name(ctx, topic)
        topic_allowed = name is None or allowed(ctx, AclOperation.READ, TOPIC, name)
        for p in topic.partitions:
            index = (t_index, int(p.partition_index))
            if not group_allowed:
                errors[index] = ErrorCode.group_authorization_failed
            elif not topic_allowed:
                errors[index] = ErrorCode.topic_authorization_failed
            elif groups is None:
                errors[index] = ErrorCode.coordinator_not_available
            elif name is None or not _partition_known(ctx, name, p.partition_index):
                errors[index] = missing
            else:
                epoch = int(getattr(p, "committed_leader_epoch", -1))
                commits.append(
                    OffsetCommit(
                        name, p.partition_index, p.committed_offset, epoch, p.committed_metadata
                    )
                )
                keys[(name, int(p.partition_index))] = index
    if groups is not None and commits:
        results = await groups.commit_offsets(
            str(request.group_id),
            int(request.generation_id_or_member_epoch),
            request.member_id,
            getattr(request, "group_instance_id", None),
            commits,
            ctx.api_version,
        )
        for tp, code in results.items():
            errors[keys[tp]] = code
    topics = tuple(
        make(
            module.OffsetCommitResponseTopic,
            name=getattr(topic, "name", None),
            topic_id=getattr(topic, "topic_id", None),
            partitions=tuple(
                make(
                    module.OffsetCommitResponsePartition,
                    partition_index=p.partition_index,
                    error_code=errors[(t_index, int(p.partition_index))],
                )
                for p in topic.partitions
            ),
        )
        for t_index, topic in enumerate(request.topics)
    )
    return make(module.OffsetCommitResponse, throttle_time=datetime.timedelta(0), topics=topics)
