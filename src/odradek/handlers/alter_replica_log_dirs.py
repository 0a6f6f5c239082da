"""AlterReplicaLogDirs (key 34), versions 1-2.

Moves partitions between this broker's log dirs: for each (dir, partition) the log
manager starts a future log in the dir, which the log dir mover fills while the
partition keeps serving, then swaps in (storage/manager.py, replication/
log_dir_mover.py). Per partition, as Kafka answers: NONE once the move is started (or
when the log is already in that dir; a running move elsewhere is replaced),
LOG_DIR_NOT_FOUND for a path that is not one of `log.dirs` (compared as absolute
paths), REPLICA_NOT_AVAILABLE for a partition not hosted here (the dir is remembered: the
partition is created there if it comes later), KAFKA_STORAGE_ERROR when its log is
offline. The answer comes at once; DescribeLogDirs shows the future log while it copies.
With an authorizer ALTER on the cluster is needed (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import cluster_allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation
from odradek.storage.errors import KafkaStorageError
from odradek.storage.manager import LogDirNotFoundError

API_KEY = 34


def _move(ctx: RequestContext, path: str, topic: str, partition: int) -> ErrorCode:
    manager = ctx.services.replicas.log_manager
    try:
        manager.start_move(topic, partition, path)
    except LogDirNotFoundError:
        return ErrorCode.log_dir_not_found
    except KeyError:
        return ErrorCode.replica_not_available
    except (KafkaStorageError, OSError):
        return ErrorCode.kafka_storage_error
    return ErrorCode.none


@api(API_KEY, 1, 2)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    by_topic: dict[str, list[Any]] = {}
    may_alter = cluster_allowed(ctx, AclOperation.ALTER)
    for log_dir in request.dirs:
        for topic in log_dir.topics:
            for partition in topic.partitions:
                code = (
                    _move(ctx, log_dir.path, str(topic.name), int(partition))
                    if may_alter
                    else ErrorCode.cluster_authorization_failed
                )
                by_topic.setdefault(str(topic.name), []).append(
                    make(
                        module.AlterReplicaLogDirPartitionResult,
                        partition_index=partition,
                        error_code=code,
                    )
                )
    return make(
        module.AlterReplicaLogDirsResponse,
        throttle_time=datetime.timedelta(0),
        results=tuple(
            make(module.AlterReplicaLogDirTopicResult, topic_name=name, partitions=tuple(parts))
            for name, parts in by_topic.items()
        ),
    )
