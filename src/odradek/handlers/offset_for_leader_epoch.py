"""OffsetForLeaderEpoch (key 23), versions 2-4 (Kafka 4 removed 0 and 1).

For each partition: where the leader's history of the asked `leader_epoch` ends. Followers
ask it after a leader change to find where their log diverges from the leader's and
truncate there (KIP-101, KIP-279); consumers ask it to detect log truncation (KIP-320).

Per partition, as Kafka's ReplicaManager and Partition answer it:

- not hosted here: UNKNOWN_TOPIC_OR_PARTITION, or NOT_LEADER_OR_FOLLOWER when the
  partition exists in the cluster (the client should look up the leader again);
- its log is offline after a disk failure: KAFKA_STORAGE_ERROR;
- `current_leader_epoch` other than -1 fences stale askers: older than this broker's
  epoch for the partition gives FENCED_LEADER_EPOCH, newer gives UNKNOWN_LEADER_EPOCH
  (this broker has not heard of the new leader yet); checked before leadership;
- this broker is not the leader: NOT_LEADER_OR_FOLLOWER, whoever asks. Followers and
  consumers alike must ask the leader (`replica_id`, v3+, changes nothing);
- otherwise the leader epoch cache's answer (`LeaderEpochCache.end_offset_for`): the
  largest known epoch <= the asked one and the offset where it ended (the log end offset
  for the latest epoch); -1/-1 without an error when the asked epoch is newer than every
  known one, or no epoch is known.
With an authorizer: a follower (replica_id >= 0) needs CLUSTER_ACTION on the cluster
(CLUSTER_AUTHORIZATION_FAILED), a client DESCRIBE on the topic (TOPIC_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import TOPIC, allowed, cluster_allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.replication.partition import Partition
from odradek.security.acl import AclOperation

API_KEY = 23
NO_EPOCH = -1


def _exists(ctx: RequestContext, topic: str, index: int) -> bool:
    """Whether the cluster has this partition (hosted here or not)."""
    info = ctx.services.metadata.topics.get(topic)
    return info is not None and 0 <= index < info.partitions


def _refusal(ctx: RequestContext, request: Any, topic: str) -> ErrorCode | None:
    """A follower needs CLUSTER_ACTION on the cluster, a client DESCRIBE on the topic."""
    if getattr(request, "replica_id", -1) >= 0:
        if cluster_allowed(ctx, AclOperation.CLUSTER_ACTION):
            return None
        return ErrorCode.cluster_authorization_failed
    if allowed(ctx, AclOperation.DESCRIBE, TOPIC, topic):
        return None
    return ErrorCode.topic_authorization_failed


def _refused(module: Any, query: Any, code: ErrorCode) -> Any:
    return make(
        module.EpochEndOffset,
        error_code=code,
        partition=query.partition,
        leader_epoch=NO_EPOCH,
        end_offset=-1,
    )


def _error(ctx: RequestContext, partition: Partition | None, topic: str, query: Any) -> ErrorCode:
    """The error answering `query` (a partition of `topic`) instead of offsets, or
    ErrorCode.none."""
    if partition is None:
        if _exists(ctx, topic, query.partition):
            return ErrorCode.not_leader_or_follower
        return ErrorCode.unknown_topic_or_partition
    if partition.log.offline:
        return ErrorCode.kafka_storage_error
    current = query.current_leader_epoch
    if current != NO_EPOCH:
        if current < partition.leader_epoch:
            return ErrorCode.fenced_leader_epoch
        if current > partition.leader_epoch:
            return ErrorCode.unknown_leader_epoch
    if not partition.is_leader:
        return ErrorCode.not_leader_or_follower
    return ErrorCode.none


def _answer(ctx: RequestContext, module: Any, topic: str, query: Any) -> Any:
    partition = ctx.services.replicas.get(topic, query.partition)
    code = _error(ctx, partition, topic, query)
    epoch, end_offset = NO_EPOCH, -1
    if partition is not None and code == ErrorCode.none:
        log = partition.log
        epoch, end_offset = log.leader_epoch_cache.end_offset_for(
            query.leader_epoch, log.log_end_offset
        )
    return make(
        module.EpochEndOffset,
        error_code=code,
        partition=query.partition,
        leader_epoch=epoch,
        end_offset=end_offset,
    )


@api(API_KEY, 2, 4)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    topics = tuple(
        make(
            module.OffsetForLeaderTopicResult,
            topic=topic.topic,
            partitions=tuple(
                _answer(ctx, module, topic.topic, q)
                if (refused := _refusal(ctx, request, topic.topic)) is None
                else _refused(module, q, refused)
                for q in topic.partitions
            ),
        )
        for topic in request.topics
    )
    return make(
        module.OffsetForLeaderEpochResponse,
        throttle_time=datetime.timedelta(0),
        topics=topics,
    )
