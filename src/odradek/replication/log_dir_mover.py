"""Copies partitions being moved between this broker's log dirs (AlterReplicaLogDirs):
Kafka's ReplicaAlterLogDirsThread, as a task on the event loop.

Each step copies about STEP_BYTES of one moving partition's log into its future log
(`LogManager.copy_future`), round robin, and yields the loop in between, so produce and
fetch keep being served from the current log. When a future log has caught up the
manager swaps it in within that step, and the mover hands the moved log to the
partition, so the next append and read use it.
"""

from __future__ import annotations

import asyncio
import logging

from odradek.replication.replica_manager import ReplicaManager
from odradek.storage.errors import StorageError

logger = logging.getLogger("odradek.replication")

STEP_BYTES = 1 << 20
IDLE_S = 0.05  # how often a broker with nothing to move looks again


def move_step(replicas: ReplicaManager, max_bytes: int = STEP_BYTES) -> bool:
    """One copy step for each moving partition (each up to `max_bytes`); True when
    partitions are still moving."""
    manager = replicas.log_manager
    for topic, index in manager.moving():
        try:
            moved = manager.copy_future(topic, index, max_bytes)
        except (OSError, StorageError) as e:
            # The move stays registered; a failing disk takes the log offline, which
            # stops the copy, as Kafka marks the future replica failed.
            logger.warning("moving %s-%d between log dirs failed: %s", topic, index, e)
            continue
        if moved is None:
            continue
        partition = replicas.get(topic, index)
        if partition is not None:
            partition.log = moved
            moved.replicated_up_to(partition.high_watermark)
    return bool(manager.moving())


async def run_mover(replicas: ReplicaManager) -> None:
    """The broker's task: copy steps while anything moves, a short sleep otherwise."""
    while True:
        busy = False
        try:
            busy = move_step(replicas)
        except Exception:
            logger.exception("log dir mover failed")
        await asyncio.sleep(0 if busy else IDLE_S)
