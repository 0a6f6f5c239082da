"""FindCoordinator (key 10), versions 0-6 (batched keys from v4).

Groups (key type 0) are coordinated by the leader of their `__consumer_offsets`
partition, transactional ids (key type 1) by the leader of their `__transaction_state`
partition. A single broker leads them all and answers itself. A cluster broker answers
the partition's current leader, from the ZooKeeper image, or COORDINATOR_NOT_AVAILABLE
while it has none (the client retries). The first lookup creates the topic as Kafka does;
in a cluster with `offsets.topic.replication.factor` (or
`transaction.state.log.replication.factor`) replicas, fewer when fewer brokers are alive
(with a warning; the transaction topic's min.insync.replicas is lowered to match). An
empty transactional id is INVALID_REQUEST, as are other key types. With an authorizer
the key needs DESCRIBE (GROUP_AUTHORIZATION_FAILED or
TRANSACTIONAL_ID_AUTHORIZATION_FAILED), checked before anything is created.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.ownership import partition_for
from odradek.coordinator.record_log import (
    OFFSETS_TOPIC,
    CoordinatorWriteError,
    RecordLog,
    TopicCreator,
)
from odradek.handlers.acls import GROUP, TRANSACTIONAL_ID, allowed
from odradek.handlers.context import (
    BrokerServices,
    ClusterServices,
    RequestContext,
    advertised_address,
)
from odradek.handlers.registry import api, make, response_module
from odradek.handlers.topics import TopicError, create_topic
from odradek.metadata.zk_layout import endpoint_for
from odradek.security.acl import AclOperation

API_KEY = 10
GROUP_KEY_TYPE = 0
TRANSACTION_KEY_TYPE = 1

log = logging.getLogger("odradek.handlers.find_coordinator")

# (error, node id, host, port)
Location = tuple[ErrorCode, int, str, int]


def _unavailable(code: ErrorCode) -> Location:
    return code, -1, "", -1


def offsets_replication_factor(services: BrokerServices, cluster: ClusterServices) -> int:
    """`offsets.topic.replication.factor`, capped by the live brokers."""
    return _capped_factor(
        cluster,
        OFFSETS_TOPIC,
        services.config.offsets_topic_replication_factor,
        "offsets.topic.replication.factor",
    )


def _capped_factor(cluster: ClusterServices, topic: str, wanted: int, setting: str) -> int:
    live = len(cluster.store.brokers)
    factor = max(min(wanted, live), 1)
    if factor < wanted:
        log.warning(
            "creating %s with replication factor %d: %s is %d but only %d brokers are alive",
            topic,
            factor,
            setting,
            wanted,
            live,
        )
    return factor


def _factor(services: BrokerServices, cluster: ClusterServices, topic: str) -> int:
    if topic == OFFSETS_TOPIC:
        return offsets_replication_factor(services, cluster)
    return _capped_factor(
        cluster,
        topic,
        services.config.transaction_state_log_replication_factor,
        "transaction.state.log.replication.factor",
    )


def _creator(services: BrokerServices, cluster: ClusterServices) -> TopicCreator:
    """How a coordinator's record log creates its topic in a cluster: a topic operation
    of this layer, which the coordinator below may not import."""

    def create(name: str, partitions: int, configs: Mapping[str, str]) -> None:
        factor = _factor(services, cluster, name)
        settings = dict(configs)
        # A min.insync.replicas above the replicas would refuse every write.
        if int(settings.get("min.insync.replicas", "1")) > factor:
            settings["min.insync.replicas"] = str(factor)
        try:
            create_topic(services, name, partitions, settings, factor, internal=True)
        except TopicError as exc:
            if exc.code != ErrorCode.topic_already_exists:  # another broker won the race
                raise CoordinatorWriteError(exc.message) from exc

    return create


def _ready(ctx: RequestContext, record_log: RecordLog) -> bool:
    """Whether the coordinator's topic exists, creating it if it does not."""
    services = ctx.services
    cluster = services.cluster
    try:
        record_log.ensure_ready(None if cluster is None else _creator(services, cluster))
    except CoordinatorWriteError as exc:
        log.warning("creating %s failed: %s", record_log.topic, exc)
        return False
    except Exception:
        log.exception("creating the coordinator topic %s failed", record_log.topic)
        return False
    return True


def _record_log(ctx: RequestContext, key: str, key_type: int) -> RecordLog | ErrorCode:
    services = ctx.services
    if key_type == GROUP_KEY_TYPE:
        groups = services.groups
        return groups.log if groups is not None else ErrorCode.coordinator_not_available
    if key_type == TRANSACTION_KEY_TYPE:
        if not key:
            return ErrorCode.invalid_request
        txns = services.transactions
        return txns.log if txns is not None else ErrorCode.coordinator_not_available
    return ErrorCode.invalid_request


def _locate(ctx: RequestContext, key: str, key_type: int) -> Location:
    services = ctx.services
    if key_type == GROUP_KEY_TYPE and not allowed(ctx, AclOperation.DESCRIBE, GROUP, key):
        return _unavailable(ErrorCode.group_authorization_failed)
    if key_type == TRANSACTION_KEY_TYPE and not allowed(
        ctx, AclOperation.DESCRIBE, TRANSACTIONAL_ID, key
    ):
        return _unavailable(ErrorCode.transactional_id_authorization_failed)
    record_log = _record_log(ctx, key, key_type)
    if isinstance(record_log, ErrorCode):
        return _unavailable(record_log)
    if not _ready(ctx, record_log):
        return _unavailable(ErrorCode.coordinator_not_available)
    if services.cluster is None:
        return (
            ErrorCode.none,
            services.config.node_id,
            *advertised_address(services, ctx.listener),
        )
    partition = partition_for(key, record_log.partitions)
    return _partition_leader(services.cluster, record_log.topic, partition, ctx.listener)


def _partition_leader(
    cluster: ClusterServices, topic: str, partition: int, listener: str
) -> Location:
    """The live leader of the key's partition; none yet (a new topic, an election in
    progress) is COORDINATOR_NOT_AVAILABLE, which clients retry."""
    state = cluster.store.partition_state(topic, partition)
    leader = cluster.store.brokers.get(state.leader) if state is not None else None
    if leader is None:
        return _unavailable(ErrorCode.coordinator_not_available)
    return ErrorCode.none, leader.node_id, *endpoint_for(leader, listener)


def _fields(location: Location) -> dict[str, Any]:
    code, node_id, host, port = location
    return {
        "error_code": code,
        "error_message": None if code == ErrorCode.none else code.name.upper(),
        "node_id": node_id,
        "host": host,
        "port": port,
    }


@api(API_KEY, 0, 6)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    key_type = int(getattr(request, "key_type", GROUP_KEY_TYPE))
    throttle = datetime.timedelta(0)
    if ctx.api_version < 4:
        fields = _fields(_locate(ctx, str(request.key), key_type))
        return make(module.FindCoordinatorResponse, throttle_time=throttle, **fields)
    coordinators = tuple(
        make(module.Coordinator, key=key, **_fields(_locate(ctx, str(key), key_type)))
        for key in request.coordinator_keys
    )
    return make(module.FindCoordinatorResponse, throttle_time=throttle, coordinators=coordinators)
