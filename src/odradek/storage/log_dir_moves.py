"""Moves of partitions between log dirs (AlterReplicaLogDirs), as Kafka makes them.

A future log `<topic>-<partition>.<32 hex>-future` in the target dir copies the current
log's batches byte for byte (`copy_future`, in steps, while the current log keeps
serving); once it has caught up, in one step, it is flushed, the current log's directory
is renamed `-delete` and the future's to `<topic>-<partition>`, and the moved log
replaces the current one. A future log is checkpointed in its own dir, follows the
current log's truncations, and survives a restart: opened again it resumes copying, or,
when the crash came between the two renames (the current log already gone), it becomes
the partition's log, since it held everything when the swap began.

`LogDirMoves` holds the future logs; the `LogManager` that owns it keeps the current logs
and is reached only through `LogHost` (its hosted logs, their dirs, its flush tracking and
checkpoints).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping
from typing import Protocol

from odradek.clock import Clock
from odradek.storage.errors import KafkaStorageError, OffsetMismatchError
from odradek.storage.fs import FileSystem
from odradek.storage.log import DELETE_SUFFIX, FUTURE_SUFFIX, Log, parse_topic_partition
from odradek.storage.metadata_files import read_partition_metadata, write_partition_metadata

logger = logging.getLogger("odradek.storage")

TopicPartition = tuple[str, int]


class LogDirNotFoundError(ValueError):
    """A log dir that is none of the configured ones (Kafka's LOG_DIR_NOT_FOUND)."""


class LogHost(Protocol):
    """What the moves need of the LogManager that owns the current logs."""

    @property
    def log_dirs(self) -> list[str]: ...

    def get_log(self, topic: str, partition: int) -> Log | None: ...

    def open_found(
        self,
        path: str,
        key: TopicPartition,
        clean: bool,
        recovery_points: Mapping[TopicPartition, int],
        start_offsets: Mapping[TopicPartition, int],
    ) -> Log:
        """Opens a partition directory found at start, from its dir's checkpoints."""

    def log_dir_of(self, topic: str, partition: int) -> str | None: ...

    def watch_appends(self, log: Log) -> None:
        """Flushes `log` on flush.ms like a current log."""

    def unwatch_appends(self, log: Log) -> None:
        """Stops that (the log is closed)."""

    def host(self, key: TopicPartition, log: Log, log_dir: str) -> None:
        """Makes `log`, in `log_dir`, the partition's current log (replacing any)."""

    def checkpoint_dir(self, log_dir: str) -> None:
        """Writes the recovery-point and log-start-offset checkpoints of `log_dir`."""

    def settle_truncation(self, log: Log, log_dir: str) -> None:
        """Makes a truncation of `log` (in `log_dir`) durable and checkpointed."""


class LogDirMoves:
    """The moves under way on one broker: a future log per moving partition."""

    def __init__(self, fs: FileSystem, clock: Clock, host: LogHost) -> None:
        self._fs = fs
        self._clock = clock
        self._host = host
        # Called when a move starts (the mover waits for it instead of polling).
        self.on_started: Callable[[], None] = lambda: None
        self._futures: dict[TopicPartition, Log] = {}
        self._dir_of: dict[TopicPartition, str] = {}
        # The dir a partition not hosted yet should be created in (asked for before it
        # existed, as Kafka).
        self._preferred_dir: dict[TopicPartition, str] = {}

    # -- what is moving ----------------------------------------------------------------

    def moving(self) -> list[TopicPartition]:
        """The partitions that have a future log."""
        return list(self._futures)

    def future_logs(self) -> list[tuple[str, Log]]:
        """(log dir, future log) of every move under way."""
        return [(self._dir_of[k], log) for k, log in self._futures.items()]

    def in_dir(self, log_dir: str) -> dict[TopicPartition, Log]:
        """The future logs in `log_dir` (checkpointed with the dir's current logs)."""
        return {k: log for k, log in self._futures.items() if self._dir_of[k] == log_dir}

    def take_preferred_dir(self, key: TopicPartition) -> str | None:
        """The dir a move asked for before the partition existed, once."""
        return self._preferred_dir.pop(key, None)

    # -- starting and abandoning ---------------------------------------------------------

    def configured_dir(self, path: str) -> str:
        """The configured log dir `path` names (compared as absolute paths, as Kafka);
        LogDirNotFoundError when it is none of them."""
        wanted = os.path.abspath(path)
        for log_dir in self._host.log_dirs:
            if os.path.abspath(log_dir) == wanted:
                return log_dir
        raise LogDirNotFoundError(f"Log dir {wanted} is not found in the config.")

    def start_move(self, topic: str, partition: int, target_dir: str) -> bool:
        """Moves the partition's log to `target_dir` (a configured log dir): a future log
        is created there for `copy_future` to fill; True when a copy starts. A move to
        another dir replaces a running one; a move to the dir the log is in cancels it.
        A partition not hosted here is remembered to be created in `target_dir` and
        KeyError is raised (Kafka answers REPLICA_NOT_AVAILABLE then); LogDirNotFoundError
        for a dir that is not configured; KafkaStorageError when the log is offline."""
        target = self.configured_dir(target_dir)
        key = (topic, partition)
        current = self._host.get_log(topic, partition)
        if current is None:
            self._preferred_dir[key] = target
            raise KeyError(f"{topic}-{partition} is not hosted here")
        if current.offline:
            raise KafkaStorageError(f"{current.path} is offline")
        source = self._host.log_dir_of(topic, partition)
        if self._dir_of.get(key, target) != target or source == target:
            self.drop(key)
        if source == target or key in self._futures:
            return False
        self._create(key, current, target)
        return True

    def _create(self, key: TopicPartition, current: Log, target: str) -> None:
        topic, partition = key
        path = os.path.join(target, f"{topic}-{partition}.{uuid.uuid4().hex}{FUTURE_SUFFIX}")
        self._fs.mkdir(path)
        future = Log.open(self._fs, path, current.config, self._clock, 0, clean_shutdown=True)
        try:
            if current.log_start_offset > 0:
                future.truncate_fully_and_start_at(current.log_start_offset)
            topic_id = read_partition_metadata(self._fs, current.path)
            if topic_id is not None:
                write_partition_metadata(self._fs, path, topic_id)
            self._fs.fsync_dir(path)
            self._fs.fsync_dir(target)
        except OSError:
            future.close()
            self._fs.rmtree(path)
            raise
        self._register(key, future, target)
        logger.info("moving %s-%d from %s to %s", topic, partition, current.path, target)

    def _register(self, key: TopicPartition, future: Log, log_dir: str) -> None:
        self._futures[key] = future
        self._dir_of[key] = log_dir
        self._host.watch_appends(future)
        self.on_started()

    def open_future(
        self,
        log_dir: str,
        name: str,
        clean: bool,
        recovery_points: Mapping[TopicPartition, int],
        start_offsets: Mapping[TopicPartition, int],
    ) -> None:
        """A future log found at start (after every current log was opened): resumed
        when its partition's current log is in another dir, made the current log when
        there is none (the swap was cut between its renames), removed otherwise."""
        path = os.path.join(log_dir, name)
        try:
            key = parse_topic_partition(name)
        except ValueError:
            return
        if not self._fs.is_dir(path):
            return
        if self._host.log_dir_of(*key) == log_dir or key in self._futures:
            self._fs.rmtree(path)  # cannot be the target of a move: left over
            return
        hosted = self._host.get_log(*key) is not None
        if not hosted:
            final = os.path.join(log_dir, f"{key[0]}-{key[1]}")
            self._fs.rename(path, final)
            self._fs.fsync_dir(log_dir)
            logger.info("%s: completing the move of %s-%d", log_dir, *key)
            path = final
        log = self._host.open_found(path, key, clean, recovery_points, start_offsets)
        if hosted:
            self._register(key, log, log_dir)
        else:
            self._host.host(key, log, log_dir)

    def drop(self, key: TopicPartition) -> None:
        """Abandons a move: the future log's directory is removed."""
        future = self._futures.pop(key, None)
        log_dir = self._dir_of.pop(key, None)
        if future is None or log_dir is None:
            return
        self._host.unwatch_appends(future)
        future.close()
        doomed = future.path.removesuffix(FUTURE_SUFFIX) + DELETE_SUFFIX
        self._fs.rename(future.path, doomed)
        self._fs.fsync_dir(log_dir)
        self._fs.rmtree(doomed)

    def forget(self, key: TopicPartition) -> None:
        """The partition is deleted: its move, or the dir asked for it, goes too."""
        self.drop(key)
        self._preferred_dir.pop(key, None)

    # -- following the current log ---------------------------------------------------------

    def truncate_to(self, key: TopicPartition, offset: int) -> None:
        """A truncation of the current log reaches its future log too, durably, so the
        copy never keeps batches the current log no longer has."""
        future = self._futures.get(key)
        if future is not None and future.truncate_to(offset):
            self._host.settle_truncation(future, self._dir_of[key])

    def truncate_fully_and_start_at(self, key: TopicPartition, offset: int) -> None:
        """The current log emptied and started at `offset`: the future log too."""
        future = self._futures.get(key)
        if future is not None:
            future.truncate_fully_and_start_at(offset)
            self._host.settle_truncation(future, self._dir_of[key])

    # -- copying and the swap --------------------------------------------------------------

    def copy_future(self, topic: str, partition: int, max_bytes: int) -> Log | None:
        """One step of a move: up to about `max_bytes` of the current log's batches
        appended byte for byte to the future log. When the future log has caught up, it
        replaces the current log (see the module docstring) and is returned; None while
        the copy goes on. The caller must make the partition use the returned log."""
        key = (topic, partition)
        current, future = self._host.get_log(topic, partition), self._futures[key]
        if current is None:
            raise KeyError(f"{topic}-{partition} is not hosted here")
        if current.offline or future.offline:
            return None
        if future.config is not current.config:  # the topic's settings changed meanwhile
            future.config = current.config
        if future.log_end_offset < current.log_start_offset:
            future.truncate_fully_and_start_at(current.log_start_offset)
        if future.log_end_offset > current.log_end_offset:
            self.truncate_to(key, current.log_end_offset)
        if future.log_end_offset < current.log_end_offset:
            data = current.read(future.log_end_offset, max_bytes, current.log_end_offset, True)
            try:
                future.append_as_follower(bytes(data.records))
            except OffsetMismatchError:
                # The current log changed under the copy (rewritten): start it again.
                future.truncate_fully_and_start_at(current.log_start_offset)
        if future.log_end_offset != current.log_end_offset:
            return None
        return self._swap(key, current, future)

    def _swap(self, key: TopicPartition, current: Log, future: Log) -> Log:
        """Makes the caught-up future log the partition's log (one loop step: nothing
        can append in between). Order: the future flushed, the current directory renamed
        `-delete`, the future renamed into place, the moved log opened, the checkpoints
        of both dirs written, the old directory removed."""
        topic, partition = key
        source, target = self._host.log_dir_of(topic, partition), self._dir_of[key]
        assert source is not None, "a moving partition is hosted"
        if future.log_start_offset < current.log_start_offset:
            future.maybe_increment_log_start_offset(current.log_start_offset)
        start, end = future.log_start_offset, future.log_end_offset
        future.flush()
        future.close()
        current.close()
        del self._futures[key], self._dir_of[key]
        self._host.unwatch_appends(future)
        self._host.unwatch_appends(current)
        doomed = os.path.join(source, f"{topic}-{partition}.{uuid.uuid4().hex}{DELETE_SUFFIX}")
        self._fs.rename(current.path, doomed)
        self._fs.fsync_dir(source)
        final = os.path.join(target, f"{topic}-{partition}")
        self._fs.rename(future.path, final)
        self._fs.fsync_dir(target)
        moved = Log.open(
            self._fs,
            final,
            current.config,
            self._clock,
            end,
            clean_shutdown=True,
            log_start_offset=start,
        )
        self._host.host(key, moved, target)
        for log_dir in (source, target):
            self._host.checkpoint_dir(log_dir)
        self._fs.rmtree(doomed)
        logger.info("moved %s-%d from %s to %s", topic, partition, source, target)
        return moved
