"""Metadata (key 3), versions 0-13.

Brokers (this one, or every live broker of a cluster), cluster id, controller id, and per
topic its id and partitions with leader, leader epoch, replicas, ISR and offline replicas
(a partition without a live leader: LEADER_NOT_AVAILABLE, leader -1). Unknown topics
are created when
both the request (v4+) and `auto.create.topics.enable` allow it, and answered complete in
the same response. Illegal names get INVALID_TOPIC_EXCEPTION, unknown ones
UNKNOWN_TOPIC_OR_PARTITION, unknown ids (v10+) UNKNOWN_TOPIC_ID.

With an authorizer (handlers/acls.py): a topic is listed only if the principal may
DESCRIBE it; one asked for by name and not describable gets TOPIC_AUTHORIZATION_FAILED
(whether it exists is not disclosed), as does an unknown topic whose auto-creation needs
CREATE on the cluster or the topic and has neither. Topic and cluster (v8-10) authorized
operations are filled in when asked for.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import (
    TOPIC,
    allowed,
    authorized_operations,
    cluster_allowed,
    cluster_operations,
)
from odradek.handlers.context import BrokerServices, RequestContext, advertised_address
from odradek.handlers.registry import api, make, response_module
from odradek.handlers.topics import auto_create_topic, topic_changes
from odradek.metadata.names import topic_name_error
from odradek.metadata.store import TopicInfo
from odradek.metadata.zk_layout import endpoint_for
from odradek.security.acl import AclOperation

API_KEY = 3
ZERO_UUID = uuid.UUID(int=0)


def _cluster_partitions(services: BrokerServices, module: Any, topic: TopicInfo) -> tuple[Any, ...]:
    """Each partition as ZooKeeper has it: leader (-1 with LEADER_NOT_AVAILABLE while
    none is elected), epoch, replicas, ISR, and the replicas on brokers not alive."""
    assert services.cluster is not None
    store = services.cluster.store
    live = store.brokers
    result = []
    for index in range(topic.partitions):
        replicas = store.replicas_of(topic.name, index)
        state = store.partition_state(topic.name, index)
        leader = state.leader if state is not None and state.leader in live else -1
        result.append(
            make(
                module.MetadataResponsePartition,
                error_code=ErrorCode.none if leader >= 0 else ErrorCode.leader_not_available,
                partition_index=index,
                leader_id=leader,
                leader_epoch=state.leader_epoch if state is not None else -1,
                replica_nodes=replicas,
                isr_nodes=state.isr if state is not None else (),
                offline_replicas=tuple(r for r in replicas if r not in live),
            )
        )
    return tuple(result)


def _partitions(services: BrokerServices, module: Any, topic: TopicInfo) -> tuple[Any, ...]:
    if services.cluster is not None:
        return _cluster_partitions(services, module, topic)
    node = services.config.node_id
    result = []
    for index in range(topic.partitions):
        partition = services.replicas.get(topic.name, index)
        epoch = partition.leader_epoch if partition is not None else -1
        result.append(
            make(
                module.MetadataResponsePartition,
                error_code=ErrorCode.none,
                partition_index=index,
                leader_id=node,
                leader_epoch=epoch,
                replica_nodes=(node,),
                isr_nodes=(node,),
                offline_replicas=(),
            )
        )
    return tuple(result)


def _topic(ctx: RequestContext, module: Any, request: Any, topic: TopicInfo) -> Any:
    requested = getattr(request, "include_topic_authorized_operations", False)
    return make(
        module.MetadataResponseTopic,
        error_code=ErrorCode.none,
        name=topic.name,
        topic_id=topic.topic_id,
        is_internal=topic.internal,
        partitions=_partitions(ctx.services, module, topic),
        topic_authorized_operations=authorized_operations(ctx, requested, TOPIC, topic.name),
    )


def _error_topic(module: Any, code: ErrorCode, name: str | None, topic_id: Any) -> Any:
    return make(
        module.MetadataResponseTopic,
        error_code=code,
        name=name,
        topic_id=topic_id or ZERO_UUID,
        is_internal=False,
        partitions=(),
    )


def _lookup(ctx: RequestContext, module: Any, request: Any, requested: Any) -> Any:
    services = ctx.services
    name = requested.name
    topic_id = getattr(requested, "topic_id", None)
    if name is None:
        found = services.metadata.by_id.get(topic_id) if topic_id else None
        if found is None:
            return _error_topic(module, ErrorCode.unknown_topic_id, None, topic_id)
        if not allowed(ctx, AclOperation.DESCRIBE, TOPIC, found.name):
            # Topic ids are not secret: Kafka answers with the id.
            return _error_topic(module, ErrorCode.topic_authorization_failed, None, topic_id)
        return _topic(ctx, module, request, found)
    if not allowed(ctx, AclOperation.DESCRIBE, TOPIC, name):
        return _error_topic(module, ErrorCode.topic_authorization_failed, name, None)
    topic = services.metadata.topics.get(name)
    if topic is not None:
        return _topic(ctx, module, request, topic)
    if topic_name_error(name) is not None:
        return _error_topic(module, ErrorCode.invalid_topic_exception, name, None)
    # v0-v3 always auto-create; v4+ asks explicitly.
    if (
        getattr(request, "allow_auto_topic_creation", True)
        and services.config.auto_create_topics_enable
    ):
        if not (
            cluster_allowed(ctx, AclOperation.CREATE)
            or allowed(ctx, AclOperation.CREATE, TOPIC, name)
        ):
            return _error_topic(module, ErrorCode.topic_authorization_failed, name, None)
        created = auto_create_topic(services, name)
        if created is not None:
            return _topic(ctx, module, request, created)
    return _error_topic(module, ErrorCode.unknown_topic_or_partition, name, None)


@api(API_KEY, 0, 13)
def handle(ctx: RequestContext, request: Any) -> Any:
    services = ctx.services
    module = response_module(API_KEY, ctx.api_version)
    requested = request.topics
    if requested is None or (ctx.api_version == 0 and not requested):
        # Every topic the principal may describe; the others are left out silently.
        topics = tuple(
            _topic(ctx, module, request, t)
            for t in services.metadata.topics.values()
            if allowed(ctx, AclOperation.DESCRIBE, TOPIC, t.name)
        )
    else:
        with topic_changes(services):  # auto-created topics: durable before the answer
            topics = tuple(_lookup(ctx, module, request, t) for t in requested)
    return make(
        module.MetadataResponse,
        throttle_time=datetime.timedelta(0),
        brokers=_brokers(services, module, ctx.listener),
        cluster_id=services.metadata.cluster_id,
        controller_id=_controller_id(services),
        topics=topics,
        error_code=ErrorCode.none,
        cluster_authorized_operations=cluster_operations(
            ctx, getattr(request, "include_cluster_authorized_operations", False)
        ),
    )


def _brokers(services: BrokerServices, module: Any, listener: str) -> tuple[Any, ...]:
    """This broker alone, or every live broker of the cluster, at their addresses on the
    listener the request came in on."""
    endpoints: list[tuple[int, str, int, str | None]]
    if services.cluster is None:
        endpoints = [(services.config.node_id, *advertised_address(services, listener), None)]
    else:
        endpoints = [
            (b.node_id, *endpoint_for(b, listener), b.rack)
            for b in services.cluster.store.brokers.values()
        ]
    return tuple(
        make(module.MetadataResponseBroker, node_id=node, host=host, port=port, rack=rack)
        for node, host, port, rack in sorted(endpoints)
    )


def _controller_id(services: BrokerServices) -> int:
    """The controller; while none is live (an election is under way) this broker, as
    any broker here handles admin requests: clients send CreateTopics and DeleteTopics
    to the controller id and would otherwise wait for a dead one."""
    if services.cluster is None:
        return services.config.node_id
    store = services.cluster.store
    if store.controller_id in store.brokers:
        return store.controller_id
    return services.config.node_id
