"""DescribeCluster (key 60), versions 0-2.

The cluster id, the brokers and the controller id, never fenced (v2). A single node lists
itself and names itself controller (as a Kafka broker answers with a live broker there);
in a cluster every live broker (id, host, port, rack) and the controller are as the
ZooKeeper image shows them (-1 while there is no controller). v1+ asks for an endpoint
type: brokers (1) are answered, controllers (2) get MISMATCHED_ENDPOINT_TYPE as from a
Kafka broker, anything else UNSUPPORTED_ENDPOINT_TYPE. Asked for authorized operations,
the answer is the cluster operations the principal may do (0 without DESCRIBE on the
cluster, as Kafka answers; every one without an authorizer).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import cluster_operations
from odradek.handlers.context import BrokerServices, RequestContext, advertised_address
from odradek.handlers.registry import api, make, response_module
from odradek.metadata.zk_layout import endpoint_for

API_KEY = 60
BROKERS, CONTROLLERS = 1, 2


def _endpoint_error(endpoint_type: int) -> tuple[ErrorCode, str | None]:
    if endpoint_type == BROKERS:
        return ErrorCode.none, None
    if endpoint_type == CONTROLLERS:
        return (
            ErrorCode.mismatched_endpoint_type,
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint "
            "of type CONTROLLER",
        )
    return ErrorCode.unsupported_endpoint_type, f"Unknown endpoint type {endpoint_type}"


def _brokers(services: BrokerServices, listener: str) -> list[tuple[int, str, int, str | None]]:
    """(id, host, port, rack) of this broker alone, or of every live broker, on the
    listener the request came in on."""
    if services.cluster is None:
        return [(services.config.node_id, *advertised_address(services, listener), None)]
    return sorted(
        (b.node_id, *endpoint_for(b, listener), b.rack)
        for b in services.cluster.store.brokers.values()
    )


def _controller_id(services: BrokerServices) -> int:
    if services.cluster is None:
        return services.config.node_id
    return services.cluster.store.controller_id


@api(API_KEY, 0, 2)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    services = ctx.services
    endpoint_type = getattr(request, "endpoint_type", BROKERS)
    code, message = _endpoint_error(endpoint_type)
    brokers: tuple[Any, ...] = ()
    if code == ErrorCode.none:
        brokers = tuple(
            make(
                module.DescribeClusterBroker,
                broker_id=node_id,
                host=host,
                port=port,
                rack=rack,
                is_fenced=False,
            )
            for node_id, host, port, rack in _brokers(services, ctx.listener)
        )
    asked = request.include_cluster_authorized_operations
    return make(
        module.DescribeClusterResponse,
        throttle_time=datetime.timedelta(0),
        error_code=code,
        error_message=message,
        endpoint_type=endpoint_type,
        cluster_id=services.metadata.cluster_id,
        controller_id=_controller_id(services) if code == ErrorCode.none else -1,
        brokers=brokers,
        cluster_authorized_operations=cluster_operations(ctx, asked),
    )
