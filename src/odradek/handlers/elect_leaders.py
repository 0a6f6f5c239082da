"""ElectLeaders (key 43), versions 0-2.

With one broker every partition's leader is already its preferred (and only) replica:
each named partition gets ELECTION_NOT_NEEDED, or UNKNOWN_TOPIC_OR_PARTITION when this
broker does not host it. A null partition list (elect everywhere) answers with no
partitions, as Kafka leaves out those that need no election. v1+ carries the election
type (0 preferred, 1 unclean; another value gives INVALID_REQUEST for the whole
request) and a top-level error code.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module

API_KEY = 43
PREFERRED, UNCLEAN = 0, 1


def _partition(ctx: RequestContext, module: Any, topic: str, index: int) -> Any:
    if ctx.services.replicas.get(topic, index) is None:
        code = ErrorCode.unknown_topic_or_partition
        message = "The partition does not exist."
    else:
        code = ErrorCode.election_not_needed
        message = "Leader election not needed for topic partition."
    return make(module.PartitionResult, partition_id=index, error_code=code, error_message=message)


def _results(ctx: RequestContext, module: Any, request: Any) -> tuple[Any, ...]:
    if request.topic_partitions is None:
        return ()
    return tuple(
        make(
            module.ReplicaElectionResult,
            topic=topic.topic,
            partition_result=tuple(
                _partition(ctx, module, topic.topic, index) for index in topic.partitions
            ),
        )
        for topic in request.topic_partitions
    )


@api(API_KEY, 0, 2)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    election_type = getattr(request, "election_type", PREFERRED)
    if election_type in (PREFERRED, UNCLEAN):
        code, results = ErrorCode.none, _results(ctx, module, request)
    else:
        code, results = ErrorCode.invalid_request, ()
    return make(
        module.ElectLeadersResponse,
        throttle_time=datetime.timedelta(0),
        error_code=code,
        replica_election_results=results,
    )
