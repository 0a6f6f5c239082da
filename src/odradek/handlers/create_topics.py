"""CreateTopics (key 19), versions 2-7.

Partitions (-1 = `num.partitions`), replication factor up to the live brokers (-1 =
`default.replication.factor`; one on a single broker), manual assignments of live,
distinct brokers (in a cluster: the replicas, first = preferred leader), per-topic
configs validated against Kafka's topic config
definitions, `validate_only`. Errors: INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS,
INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, INVALID_REPLICA_ASSIGNMENT,
INVALID_CONFIG, INVALID_REQUEST (a name twice in one request). v5+ returns the created
topic's configs; v7 its id. With an authorizer: CREATE on the cluster or on the topic
(TOPIC_AUTHORIZATION_FAILED), and the configs only with DESCRIBE_CONFIGS on the topic
(otherwise `topic_config_error_code` TOPIC_AUTHORIZATION_FAILED), as Kafka answers.
"""

from __future__ import annotations

import datetime
from collections import Counter
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import TOPIC, allowed, cluster_allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.handlers.topics import TopicError, check_new_topic, create_topic, topic_changes
from odradek.metadata.topic_config import effective_topic_config
from odradek.security.acl import AclOperation

API_KEY = 19
DYNAMIC_TOPIC_CONFIG = 1
DEFAULT_CONFIG = 5


def _assignment_count(ctx: RequestContext, topic: Any) -> int:
    """Partition count from manual assignments, which must all name this broker."""
    if topic.num_partitions != -1 or topic.replication_factor != -1:
        raise TopicError(
            ErrorCode.invalid_request,
            "Both numPartitions or replicationFactor and replicasAssignments were set.",
        )
    indexes = sorted(a.partition_index for a in topic.assignments)
    if indexes != list(range(len(indexes))):
        raise TopicError(ErrorCode.invalid_replica_assignment, "Partitions must be 0..n-1.")
    cluster = ctx.services.cluster
    known = set(cluster.store.brokers) if cluster is not None else {ctx.services.config.node_id}
    sizes = set()
    for assignment in topic.assignments:
        brokers = [int(b) for b in assignment.broker_ids]
        sizes.add(len(brokers))
        if not brokers or len(set(brokers)) != len(brokers) or not set(brokers) <= known:
            raise TopicError(
                ErrorCode.invalid_replica_assignment,
                f"Unknown or repeated broker in assignment {brokers}.",
            )
    if len(sizes) > 1:
        raise TopicError(
            ErrorCode.invalid_replica_assignment,
            "All partitions should have the same number of replicas.",
        )
    return len(indexes)


def _config_entries(ctx: RequestContext, module: Any, overrides: dict[str, str]) -> Any:
    if not hasattr(module, "CreatableTopicConfigs"):  # before v5 no configs are returned
        return None
    effective = effective_topic_config(overrides, ctx.services.config)
    return tuple(
        make(
            module.CreatableTopicConfigs,
            name=name,
            value=value,
            read_only=False,
            config_source=DYNAMIC_TOPIC_CONFIG if name in overrides else DEFAULT_CONFIG,
            is_sensitive=False,
        )
        for name, value in sorted(effective.items())
    )


def _create_one(ctx: RequestContext, module: Any, topic: Any, validate_only: bool) -> Any:
    configs = {c.name: c.value for c in topic.configs}
    partitions = topic.num_partitions
    factor = topic.replication_factor
    assignment = None
    if topic.assignments:
        partitions = _assignment_count(ctx, topic)
        assignment = {
            int(a.partition_index): tuple(int(b) for b in a.broker_ids) for a in topic.assignments
        }
        factor = len(next(iter(assignment.values())))
    count = check_new_topic(ctx.services, topic.name, partitions, factor, configs)
    if factor == -1:
        factor = ctx.services.config.default_replication_factor
    overrides = {k: v for k, v in configs.items() if v is not None}
    topic_id = None
    if not validate_only:
        topic_id = create_topic(
            ctx.services, topic.name, count, overrides, factor, assignment
        ).topic_id
    if allowed(ctx, AclOperation.DESCRIBE_CONFIGS, TOPIC, topic.name):
        config_error, entries = ErrorCode.none, _config_entries(ctx, module, overrides)
    else:
        config_error, entries = ErrorCode.topic_authorization_failed, ()
    return make(
        module.CreatableTopicResult,
        name=topic.name,
        topic_id=topic_id,
        error_code=ErrorCode.none,
        error_message=None,
        num_partitions=count,
        replication_factor=factor,
        configs=entries,
        topic_config_error_code=config_error,
    )


def _error(module: Any, name: str, code: ErrorCode, message: str) -> Any:
    return make(
        module.CreatableTopicResult,
        name=name,
        topic_id=None,
        error_code=code,
        error_message=message,
        configs=None,
    )


def _may_create(ctx: RequestContext, name: str) -> bool:
    return cluster_allowed(ctx, AclOperation.CREATE) or allowed(
        ctx, AclOperation.CREATE, TOPIC, name
    )


@api(API_KEY, 2, 7)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    counts = Counter(t.name for t in request.topics)
    results = []
    # Every topic of the request becomes durable at the end of this block, together.
    with topic_changes(ctx.services):
        for topic in request.topics:
            if counts[topic.name] > 1:
                results.append(
                    _error(module, topic.name, ErrorCode.invalid_request, "Duplicate topic name.")
                )
                continue
            if not _may_create(ctx, topic.name):
                results.append(
                    _error(
                        module,
                        topic.name,
                        ErrorCode.topic_authorization_failed,
                        "Authorization failed.",
                    )
                )
                continue
            try:
                results.append(_create_one(ctx, module, topic, request.validate_only))
            except TopicError as exc:
                results.append(_error(module, topic.name, exc.code, exc.message))
    return make(
        module.CreateTopicsResponse, throttle_time=datetime.timedelta(0), topics=tuple(results)
    )
