"""DescribeLogDirs (key 35), versions 1-4.

One result per configured log dir (absolute path): the size of every partition this
broker hosts in it (Log.size_in_bytes; in a cluster the ones it follows too, as clients
ask each broker about its own disks), the offset lag as Kafka computes it for a current
log (high watermark minus log end offset, at least 0; in practice 0); and, while a
partition moves to another dir (AlterReplicaLogDirs), its future log in the target dir
with is_future_key set and as lag how far it is behind the current log's end, as Kafka
reports it. v4+ the volume's total and usable bytes (os.statvfs, -1 when unknown). A
null topic list means every partition; named partitions this broker does not host are
left out, as Kafka does. v3+ has a top-level error code.
With an authorizer DESCRIBE on the cluster is needed: CLUSTER_AUTHORIZATION_FAILED
(v3+; older versions get no log dirs), as Kafka answers.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import cluster_allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.replication.partition import Partition
from odradek.security.acl import AclOperation
from odradek.storage.log import Log

API_KEY = 35
UNKNOWN_VOLUME_BYTES = -1


def volume_bytes(path: str) -> tuple[int, int]:
    """(total, usable) bytes of the file system holding `path`; -1s when unknown."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return UNKNOWN_VOLUME_BYTES, UNKNOWN_VOLUME_BYTES
    return stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize


def _wanted(ctx: RequestContext, request: Any) -> Iterable[Partition]:
    replicas = ctx.services.replicas
    if request.topics is None:
        return list(replicas.partitions.values())
    found = []
    for topic in request.topics:
        for index in topic.partitions:
            partition = replicas.get(topic.topic, index)
            if partition is not None:
                found.append(partition)
    return found


def _described(module: Any, partition: Partition, future: Log | None) -> Any:
    if future is None:
        size = partition.log.size_in_bytes
        lag = max(partition.high_watermark - partition.log_end_offset, 0)
    else:
        size = future.size_in_bytes
        lag = max(partition.log_end_offset - future.log_end_offset, 0)
    return make(
        module.DescribeLogDirsPartition,
        partition_index=partition.index,
        partition_size=size,
        offset_lag=lag,
        is_future_key=future is not None,
    )


def _dir_result(module: Any, log_dir: str, entries: list[tuple[Partition, Log | None]]) -> Any:
    by_topic: dict[str, list[Any]] = {}
    for partition, future in entries:
        by_topic.setdefault(partition.topic, []).append(_described(module, partition, future))
    total, usable = volume_bytes(log_dir)
    return make(
        module.DescribeLogDirsResult,
        error_code=ErrorCode.none,
        log_dir=log_dir,
        topics=tuple(
            make(module.DescribeLogDirsTopic, name=name, partitions=tuple(parts))
            for name, parts in sorted(by_topic.items())
        ),
        total_bytes=total,
        usable_bytes=usable,
        is_cordoned=False,
    )


@api(API_KEY, 1, 4)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    if not cluster_allowed(ctx, AclOperation.DESCRIBE):
        return make(
            module.DescribeLogDirsResponse,
            throttle_time=datetime.timedelta(0),
            error_code=ErrorCode.cluster_authorization_failed,
            results=(),
        )
    groups: dict[str, list[tuple[Partition, Log | None]]] = {
        os.path.abspath(d): [] for d in ctx.services.config.log_dirs
    }
    wanted = _wanted(ctx, request)
    for partition in wanted:
        log_dir = os.path.abspath(os.path.dirname(partition.log.path))
        groups.setdefault(log_dir, []).append((partition, None))
    futures = {
        (log.topic, log.partition): (log_dir, log)
        for log_dir, log in ctx.services.replicas.log_manager.future_logs()
    }
    for partition in wanted:
        found = futures.get((partition.topic, partition.index))
        if found is not None:
            groups.setdefault(os.path.abspath(found[0]), []).append((partition, found[1]))
    return make(
        module.DescribeLogDirsResponse,
        throttle_time=datetime.timedelta(0),
        error_code=ErrorCode.none,
        results=tuple(_dir_result(module, d, parts) for d, parts in groups.items()),
    )
