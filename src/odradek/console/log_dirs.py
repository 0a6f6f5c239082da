"""Each live broker's log dirs for the brokers page: the partitions in each, their size,
and the file system's total and free bytes.

This broker's are read here: its hosted partitions' logs (and the future logs of moves
under way, which take room in their target dir too) and `os.statvfs`, as DescribeLogDirs
answers them. The other brokers' are asked with DescribeLogDirs v4 (every partition, with
the volume's total and usable bytes) over their inter-broker listener, all at once; a
broker that fails or does not answer within `timeout_s` is unknown (None) and the page
loads without it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kio.schema.describe_log_dirs.v4 import request as describe_v4
from kio.schema.errors import ErrorCode

from odradek.coordinator.txn.remote import BrokerPool, Leader
from odradek.handlers.describe_log_dirs import volume_bytes
from odradek.metadata import zk_layout as zl
from odradek.replication.client import BrokerClientError
from odradek.server.broker import Broker

log = logging.getLogger("odradek.console.log_dirs")

DESCRIBE_VERSION = 4
TIMEOUT_S = 2.0

_Request: Any = describe_v4.DescribeLogDirsRequest


@dataclass(slots=True)
class LogDir:
    path: str
    partitions: int = 0
    size: int = 0  # bytes of its partitions' logs (future logs of moves included)
    total: int | None = None  # the file system's; None when unknown
    free: int | None = None
    error: str = ""  # Kafka's error name when the broker reports the dir failed


# A broker's log dirs by node id; None when it did not answer.
BrokerDirs = dict[int, list[LogDir] | None]


def local_dirs(broker: Broker) -> list[LogDir]:
    """This broker's log dirs, in `log.dirs` order (then any other dir a log is in)."""
    services = broker.services
    dirs = {os.path.abspath(d): LogDir(os.path.abspath(d)) for d in services.config.log_dirs}
    for partition in services.replicas.partitions.values():
        path = os.path.abspath(os.path.dirname(partition.log.path))
        found = dirs.setdefault(path, LogDir(path))
        found.partitions += 1
        found.size += partition.log.size_in_bytes
    for target, future in services.replicas.log_manager.future_logs():
        path = os.path.abspath(target)
        dirs.setdefault(path, LogDir(path)).size += future.size_in_bytes
    for found in dirs.values():
        total, free = volume_bytes(found.path)
        found.total, found.free = _known(total), _known(free)
    return list(dirs.values())


def other_brokers(broker: Broker) -> list[Leader]:
    """Every other live broker of the cluster with its inter-broker address (none on a
    single node)."""
    services = broker.services
    cluster = services.cluster
    if cluster is None:
        return []
    listener = services.config.inter_broker_listener_name
    found = []
    for node_id, registration in sorted(cluster.store.brokers.items()):
        if node_id != services.config.node_id:
            host, port = zl.endpoint_for(registration, listener)
            found.append((node_id, host, port))
    return found


class LogDirs:
    """Log dirs of every live broker; one connection per other broker, kept."""

    def __init__(self, timeout_s: float = TIMEOUT_S) -> None:
        self._pool = BrokerPool("odradek-console")
        self._timeout_s = timeout_s

    async def collect(self, broker: Broker) -> BrokerDirs:
        """This broker's dirs and every other live broker's answer (None: no answer
        within the timeout, or a failed request)."""
        found: BrokerDirs = {broker.services.config.node_id: local_dirs(broker)}
        found.update(await self.ask(other_brokers(broker)))
        return found

    async def ask(self, brokers: Iterable[Leader]) -> BrokerDirs:
        """DescribeLogDirs to each of `brokers` at once, waiting at most the timeout."""
        loop = asyncio.get_running_loop()
        # Tasks of their own: the client's timeouts need a task, and the slow ones are
        # cancelled when the time is up.
        tasks = {node[0]: loop.create_task(self._describe(node)) for node in brokers}
        if not tasks:
            return {}
        _done, pending = await asyncio.wait(tasks.values(), timeout=self._timeout_s)
        for task in pending:
            task.cancel()
        return {node_id: _result(task) for node_id, task in tasks.items()}

    async def _describe(self, node: Leader) -> list[LogDir] | None:
        try:
            response = await self._pool.request(node, _Request(topics=None), DESCRIBE_VERSION)
        except BrokerClientError as exc:
            log.info("asking broker %d for its log dirs failed: %s", node[0], exc)
            return None
        if response.error_code != ErrorCode.none:
            log.info("broker %d refused DescribeLogDirs: %s", node[0], response.error_code.name)
            return None
        return [_answered(result) for result in response.results]

    async def close(self) -> None:
        await self._pool.close()


def _result(task: asyncio.Task[list[LogDir] | None]) -> list[LogDir] | None:
    """A finished task's dirs; None when it was cut off or failed unexpectedly (the
    page still loads, the failure is logged)."""
    if not task.done() or task.cancelled():
        return None
    error = task.exception()
    if error is not None:
        log.warning("asking for log dirs failed", exc_info=error)
        return None
    return task.result()


def _answered(result: Any) -> LogDir:
    found = LogDir(str(result.log_dir), total=_known(result.total_bytes))
    found.free = _known(result.usable_bytes)
    if result.error_code != ErrorCode.none:
        found.error = result.error_code.name.upper()
    for topic in result.topics:
        for partition in topic.partitions:
            found.size += int(partition.partition_size)
            if not partition.is_future_key:
                found.partitions += 1
    return found


def _known(count: int) -> int | None:
    return None if count < 0 else int(count)
