"""Copies partitions being moved between this broker's log dirs (AlterReplicaLogDirs):
Kafka's ReplicaAlterLogDirsThread, as a task on the event loop.

Each step copies about STEP_BYTES of each moving partition's log into its future log
(`LogManager.copy_future`) and yields the loop in between, so produce and fetch keep
being served from the current log. When a future log has caught up the manager swaps
it in within that step, and the mover hands the moved log to the partition, so the next
append and read use it. The copied bytes count against the broker's
`replica.alter.log.dirs.io.max.bytes.per.second` quota; while it is exceeded nothing is
copied, as Kafka's ReplicaAlterLogDirsThread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from odradek.replication.replica_manager import ReplicaManager
from odradek.storage.errors import StorageError

logger = logging.getLogger("odradek.replication")

STEP_BYTES = 1 << 20
THROTTLED_S = 0.05  # how often a mover held back by its quota looks again
# With nothing to move the mover waits for a move to start (LogDirMoves.on_started);
# this is only the longest it sleeps between looks.
IDLE_S = 5.0


BUSY, THROTTLED, IDLE = "busy", "throttled", "idle"


def move_step(replicas: ReplicaManager, max_bytes: int = STEP_BYTES) -> str:
    """One copy step for each moving partition (each up to `max_bytes`): BUSY when
    partitions are still moving, THROTTLED when the quota held the copy back, IDLE
    when nothing moves."""
    manager = replicas.log_manager
    quota = replicas.alter_log_dirs_quota
    if not manager.moving():
        return IDLE
    if quota.is_exceeded():
        return THROTTLED
    futures = {(log.topic, log.partition): log for _dir, log in manager.future_logs()}
    for topic, index in manager.moving():
        before = futures[(topic, index)].size_in_bytes
        try:
            moved = manager.copy_future(topic, index, max_bytes)
        except (OSError, StorageError) as e:
            # The move stays registered; a failing disk takes the log offline, which
            # stops the copy, as Kafka marks the future replica failed.
            logger.warning("moving %s-%d between log dirs failed: %s", topic, index, e)
            continue
        if moved is None:
            quota.record(max(futures[(topic, index)].size_in_bytes - before, 0))
            continue
        quota.record(max(moved.size_in_bytes - before, 0))
        partition = replicas.get(topic, index)
        if partition is not None:
            partition.log = moved
            moved.replicated_up_to(partition.high_watermark)
    return BUSY if manager.moving() else IDLE


async def run_mover(replicas: ReplicaManager) -> None:
    """The broker's task: copy steps while anything moves and the quota allows, a short
    sleep while the quota holds the copy back, and a wait for the next move when nothing
    moves (an idle broker does not wake for it)."""
    started = asyncio.Event()
    replicas.log_manager.moves.on_started = started.set
    while True:
        state = IDLE
        try:
            state = move_step(replicas)
        except Exception:
            logger.exception("log dir mover failed")
            state = THROTTLED  # look again soon, as after a held-back step
        if state == IDLE:
            started.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(started.wait(), IDLE_S)
        else:
            await asyncio.sleep(0 if state == BUSY else THROTTLED_S)
