"""All the logs of a broker across its log directories: open them at start (noting a
clean shutdown), create and delete them, flush on flush.ms, and write the checkpoints
and the clean-shutdown marker at a clean stop.

Moves between log dirs (AlterReplicaLogDirs) are log_dir_moves.py's: the manager keeps
the current logs, and is its `LogHost`.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from odradek.clock import Clock
from odradek.storage.checkpoint import (
    LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
    read_offsets,
    write_atomically,
    write_offsets,
)
from odradek.storage.errors import (
    InconsistentClusterIdError,
    InconsistentNodeIdError,
    KafkaStorageError,
)
from odradek.storage.fs import FileHandle, FileSystem, run_syncs, start_syncs
from odradek.storage.log import DELETE_SUFFIX, FUTURE_SUFFIX, Log, parse_topic_partition
from odradek.storage.log_config import LogConfig
from odradek.storage.log_dir_moves import LogDirMoves

# Re-exported: callers have long imported them from here.
from odradek.storage.log_dir_moves import LogDirNotFoundError as LogDirNotFoundError
from odradek.storage.metadata_files import PARTITION_METADATA, parse_properties, partition_metadata
from odradek.storage.metadata_files import read_partition_metadata as read_partition_metadata
from odradek.storage.metadata_files import uuid_from_kafka as uuid_from_kafka
from odradek.storage.metadata_files import uuid_to_kafka as uuid_to_kafka
from odradek.storage.retention import delete_due_files, delete_old_segments

logger = logging.getLogger("odradek.storage")

META_PROPERTIES = "meta.properties"
CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
# Directories that are not live partitions: pending deletion, moves between disks, and
# KRaft's own metadata log.
_SKIPPED_SUFFIXES = ("-stray",)
_METADATA_LOG = "__cluster_metadata-0"

TopicPartition = tuple[str, int]


@dataclass
class _Creations:
    """The logs created in one batch, and what makes them durable."""

    logs: list[Log] = field(default_factory=list)
    # waits for the per-partition durability steps started in the background
    waits: list[Callable[[], list[Exception | None]]] = field(default_factory=list)
    log_dirs: set[str] = field(default_factory=set)  # the log dirs holding new partitions


class LogManager:
    """Owns every Log of the broker; one instance per broker."""

    def __init__(
        self,
        fs: FileSystem,
        log_dirs: list[str],
        clock: Clock,
        default_config: LogConfig,
        *,
        node_id: int | None = None,
        cluster_id: str | None = None,
    ) -> None:
        self._fs = fs
        self.log_dirs = list(log_dirs)
        self._clock = clock
        self.default_config = default_config
        self.node_id = node_id
        self.cluster_id = cluster_id
        self._logs: dict[TopicPartition, Log] = {}
        self._dir_of: dict[TopicPartition, str] = {}
        self._count_in: dict[str, int] = dict.fromkeys(self.log_dirs, 0)
        # Logs appended to since flush_dirty last looked: the periodic flush.ms check
        # visits these only, not every log.
        self._appended: set[Log] = set()
        # Recovery points as the checkpoint files hold them (read at open, then as written),
        # so flush_dirty can tell when a roll or flush moved one past its file.
        self._checkpointed: dict[TopicPartition, int] = {}
        self.checkpoint_due = False
        self.clean_shutdown: dict[str, bool] = {}
        self._creations: _Creations | None = None  # of the open batch_creations()
        self.moves = LogDirMoves(fs, clock, self)  # between log dirs

    # -- start -----------------------------------------------------------------------

    def open(self, *, node_id: int | None = None, cluster_id: str | None = None) -> None:
        """Checks meta.properties (node_id/cluster_id given here override the
        constructor's) and opens every partition directory."""
        if node_id is not None:
            self.node_id = node_id
        if cluster_id is not None:
            self.cluster_id = cluster_id
        # Opened once every current log is: whether its partition still has one decides.
        futures: list[tuple[str, str, Mapping[TopicPartition, int], Mapping[TopicPartition, int]]]
        futures = []
        for log_dir in self.log_dirs:
            # Judged before meta.properties is written. Not by emptiness: the single-node
            # metadata image is written into the first log dir before this runs.
            had_meta = self._fs.exists(os.path.join(log_dir, META_PROPERTIES))
            self._fs.mkdir(log_dir)
            self._check_meta_properties(log_dir)
            marker = os.path.join(log_dir, CLEAN_SHUTDOWN_FILE)
            clean = self._fs.exists(marker)
            self.clean_shutdown[log_dir] = clean
            recovery_points = read_offsets(
                self._fs, os.path.join(log_dir, RECOVERY_POINT_CHECKPOINT)
            )
            start_offsets = read_offsets(
                self._fs, os.path.join(log_dir, LOG_START_OFFSET_CHECKPOINT)
            )
            self._checkpointed.update(recovery_points)
            for name in self._fs.listdir(log_dir):
                if name.endswith(FUTURE_SUFFIX):
                    futures.append((log_dir, name, recovery_points, start_offsets))
                    continue
                self._open_dir(log_dir, name, clean, recovery_points, start_offsets)
            new = not had_meta and not self._count_in.get(log_dir)
            self._report_start(log_dir, new=new, clean=clean)
            # Removed only once loaded: a crash while opening must recover again.
            self._fs.remove(marker)
            self._fs.fsync_dir(log_dir)
        for future_dir, future_name, points, starts in futures:
            clean = self.clean_shutdown.get(future_dir, False)
            self.moves.open_future(future_dir, future_name, clean, points, starts)

    def _report_start(self, log_dir: str, *, new: bool, clean: bool) -> None:
        """Logs how a log dir was opened, for operators: new (no meta.properties and no
        partition, so there was nothing to recover), after a clean shutdown, or after an unclean one
        with what recovery scanned and cut."""
        logs = self._logs_in(log_dir).values()
        if new:
            logger.info("%s: new log dir", log_dir)
            return
        if clean:
            logger.info("%s: clean start, %d partitions loaded", log_dir, len(logs))
            return
        scanned = [opened for opened in logs if opened.recovered_segments]
        segments = sum(opened.recovered_segments for opened in scanned)
        cut = sum(opened.truncated_on_open for opened in logs)
        logger.info(
            "%s: unclean shutdown; recovered %d segments of %d partitions, cut %d bytes",
            log_dir,
            segments,
            len(scanned),
            cut,
        )

    def _open_dir(
        self,
        log_dir: str,
        name: str,
        clean: bool,
        recovery_points: Mapping[TopicPartition, int],
        start_offsets: Mapping[TopicPartition, int],
    ) -> None:
        path = os.path.join(log_dir, name)
        if not self._fs.is_dir(path) or name == _METADATA_LOG:
            return
        if name.endswith(DELETE_SUFFIX):
            self._fs.rmtree(path)  # a deletion interrupted by the stop
            return
        if name.endswith(_SKIPPED_SUFFIXES):
            return
        try:
            key = parse_topic_partition(name)
        except ValueError:
            return
        self._add(key, self.open_found(path, key, clean, recovery_points, start_offsets), log_dir)

    def open_found(
        self,
        path: str,
        key: TopicPartition,
        clean: bool,
        recovery_points: Mapping[TopicPartition, int],
        start_offsets: Mapping[TopicPartition, int],
    ) -> Log:
        """Opens a partition directory found at start, from the offsets its log dir's
        checkpoints hold (a LogHost method: future logs are opened so too)."""
        return Log.open(
            self._fs,
            path,
            self.default_config,
            self._clock,
            recovery_points.get(key, 0),
            clean_shutdown=clean,
            log_start_offset=start_offsets.get(key, 0),
        )

    def _add(self, key: TopicPartition, log: Log, log_dir: str) -> None:
        self._logs[key] = log
        self._dir_of[key] = log_dir
        self._count_in[log_dir] = self._count_in.get(log_dir, 0) + 1
        log.on_append = self._appended.add
        if log.recovery_point < log.log_end_offset:
            self._appended.add(log)

    def _check_meta_properties(self, log_dir: str) -> None:
        path = os.path.join(log_dir, META_PROPERTIES)
        if not self._fs.exists(path):
            if self.node_id is not None and self.cluster_id is not None:
                self._write_meta_properties(path)
            return
        props = parse_properties(self._fs.read_file(path))
        found = props.get("node.id", props.get("broker.id"))
        if self.node_id is not None and found is not None and int(found) != self.node_id:
            raise InconsistentNodeIdError(
                f"{path} has node.id={found} but this broker is node.id={self.node_id}"
            )
        found_cluster = props.get("cluster.id")
        if self.cluster_id is not None and found_cluster not in (None, self.cluster_id):
            raise InconsistentClusterIdError(
                f"{path} has cluster.id={found_cluster}, expected {self.cluster_id}"
            )

    def _write_meta_properties(self, path: str) -> None:
        lines = [
            "#",
            "#Written by odradek",
            f"cluster.id={self.cluster_id}",
            f"directory.id={uuid_to_kafka(uuid.uuid4())}",
            f"node.id={self.node_id}",
            "version=1",
        ]
        write_atomically(self._fs, path, ("\n".join(lines) + "\n").encode())

    # -- logs ------------------------------------------------------------------------

    def logs(self) -> list[Log]:
        return list(self._logs.values())

    def get_log(self, topic: str, partition: int) -> Log | None:
        return self._logs.get((topic, partition))

    def get_or_create_log(
        self,
        topic: str,
        partition: int,
        config: LogConfig | None = None,
        topic_id: uuid.UUID | None = None,
    ) -> Log:
        """The partition's log, created (in the emptiest log dir) when absent."""
        return self.get_or_create_logs(topic, [partition], config, topic_id)[0]

    def get_or_create_logs(
        self,
        topic: str,
        partitions: Iterable[int],
        config: LogConfig | None = None,
        topic_id: uuid.UUID | None = None,
    ) -> list[Log]:
        """The logs of `partitions` of `topic`, the missing ones created (each in the
        emptiest log dir). Creations are durable on return, or when the enclosing
        `batch_creations()` ends (see there for the order of the fsyncs)."""
        wanted = list(partitions)
        found: dict[int, Log] = {}
        new: dict[int, str] = {}  # partition -> log dir, for the missing ones
        for partition in wanted:
            log = self._logs.get((topic, partition))
            if log is not None:
                if config is not None:
                    log.config = config
                found[partition] = log
            elif partition not in new:
                log_dir = self.moves.take_preferred_dir((topic, partition)) or min(
                    self.log_dirs, key=lambda d: self._count_in.get(d, 0)
                )
                self._count_in[log_dir] = self._count_in.get(log_dir, 0) + 1  # reserved
                new[partition] = log_dir
        if new:
            with self.batch_creations():
                found.update(self._create_logs(topic, new, config, topic_id))
        return [found[p] for p in wanted]

    @contextmanager
    def batch_creations(self) -> Iterator[None]:
        """Logs created inside are durable when the outermost batch ends. Per new
        partition: its partition.metadata is fsynced, renamed into place, then its
        directory fsynced; these steps start in the background as soon as the partition
        exists (up to 16 partitions at a time), while the next ones are being created.
        At the end the batch waits for all of them, then fsyncs each log dir that got a
        new partition once. So a CreateTopics request of many topics pays one wait, not a
        few fsyncs per partition in turn. The new logs are usable before that, so a
        caller answers only after the batch ended. If a step fails, every log created in
        the batch goes offline and the error is raised."""
        if self._creations is not None:
            yield
            return
        pending = self._creations = _Creations()
        try:
            yield
        finally:
            self._creations = None
            self._make_durable(pending)

    def _create_logs(
        self,
        topic: str,
        new: Mapping[int, str],
        config: LogConfig | None,
        topic_id: uuid.UUID | None,
    ) -> dict[int, Log]:
        pending = self._creations
        assert pending is not None, "only inside batch_creations()"
        paths = {p: os.path.join(log_dir, f"{topic}-{p}") for p, log_dir in new.items()}
        created: dict[int, Log] = {}
        steps: list[Callable[[], None]] = []
        try:
            for path in paths.values():
                self._fs.mkdir(path)
            pending.log_dirs.update(new.values())
            for partition, path in paths.items():
                created[partition] = Log.open(
                    self._fs,
                    path,
                    config or self.default_config,
                    self._clock,
                    0,
                    clean_shutdown=True,
                )
            data = partition_metadata(topic_id) if topic_id is not None else None
            for path in paths.values():  # after opening: opening removes stray .tmp files
                steps.append(_settle(self._fs, path, self._metadata_tmp(path, data)))
        finally:
            for log_dir in new.values():
                self._count_in[log_dir] -= 1
            pending.waits.append(start_syncs(self._fs, steps))
        for partition, log in created.items():
            self._add((topic, partition), log, new[partition])
            pending.logs.append(log)
        return created

    def _metadata_tmp(self, path: str, data: bytes | None) -> FileHandle | None:
        """partition.metadata.tmp written in directory `path` and left open (None
        without a topic id)."""
        if data is None:
            return None
        handle = self._fs.open(os.path.join(path, PARTITION_METADATA + ".tmp"))
        try:
            handle.truncate(0)
            handle.pwrite(0, data)
        except BaseException:
            handle.close()
            raise
        return handle

    def _make_durable(self, pending: _Creations) -> None:
        errors = [error for wait in pending.waits for error in wait()]
        try:
            self._raise_first(errors)
            dirs = sorted(pending.log_dirs)
            self._raise_first(run_syncs(self._fs, [_dir_sync(self._fs, d) for d in dirs]))
        except OSError as e:
            for log in pending.logs:
                log.take_offline(e)
            raise

    @staticmethod
    def _raise_first(errors: list[Exception | None]) -> None:
        for error in errors:
            if error is not None:
                raise error

    def delete_log(self, topic: str, partition: int) -> None:
        """Renames the directory to `<name>.<uuid hex>-delete` (atomic: a crash leaves no
        half-deleted live partition), then removes it."""
        key = (topic, partition)
        self.moves.forget(key)
        log = self._logs.pop(key, None)
        self._checkpointed.pop(key, None)
        if log is None:
            return
        log_dir = self._dir_of.pop(key)
        self._count_in[log_dir] -= 1
        self._appended.discard(log)
        log.close()
        doomed = os.path.join(log_dir, f"{topic}-{partition}.{uuid.uuid4().hex}{DELETE_SUFFIX}")
        self._fs.rename(log.path, doomed)
        self._fs.fsync_dir(log_dir)
        self._fs.rmtree(doomed)

    # -- moves between log dirs (log_dir_moves.py) ----------------------------------

    def start_move(self, topic: str, partition: int, target_dir: str) -> bool:
        """Starts moving the partition's log to `target_dir`: see LogDirMoves.start_move."""
        return self.moves.start_move(topic, partition, target_dir)

    def moving(self) -> list[TopicPartition]:
        """The partitions that have a future log."""
        return self.moves.moving()

    def future_logs(self) -> list[tuple[str, Log]]:
        """(log dir, future log) of every move under way."""
        return self.moves.future_logs()

    def copy_future(self, topic: str, partition: int, max_bytes: int) -> Log | None:
        """One step of a move; the moved log once it replaced the current one: see
        LogDirMoves.copy_future."""
        return self.moves.copy_future(topic, partition, max_bytes)

    # The LogHost side of the moves.

    def watch_appends(self, log: Log) -> None:
        log.on_append = self._appended.add

    def unwatch_appends(self, log: Log) -> None:
        self._appended.discard(log)

    def host(self, key: TopicPartition, log: Log, log_dir: str) -> None:
        old = self._logs.get(key)
        if old is not None:
            self._count_in[self._dir_of[key]] -= 1
            self._appended.discard(old)
        self._add(key, log, log_dir)

    def checkpoint_dir(self, log_dir: str) -> None:
        self._checkpoint_recovery_points_in(log_dir)
        self._checkpoint_log_start_offsets_in(log_dir)

    # -- flushing and stop -----------------------------------------------------------

    def flush_dirty(self, now_ms: int) -> int:
        """The flush.ms scheduler hook: fsyncs the logs whose flush.ms has elapsed.
        Returns how many were flushed; a failing log goes offline, the others go on."""
        flushed = 0
        for log in list(self._appended):
            try:
                flushed += log.flush_if_due(now_ms)
            except KafkaStorageError:
                self._appended.discard(log)  # offline for good
                continue
            if log.recovery_point > self._checkpointed.get((log.topic, log.partition), 0):
                self.checkpoint_due = True
            if log.recovery_point >= log.log_end_offset:
                self._appended.discard(log)
        return flushed

    def log_dir_of(self, topic: str, partition: int) -> str | None:
        return self._dir_of.get((topic, partition))

    def _logs_in(self, log_dir: str) -> dict[TopicPartition, Log]:
        return {k: log for k, log in self._logs.items() if self._dir_of[k] == log_dir}

    def _checkpointed_in(self, log_dir: str) -> dict[TopicPartition, Log]:
        """The logs whose offsets the dir's checkpoint files hold: its current logs and
        its future ones (a partition has at most one of the two in a dir)."""
        found = self._logs_in(log_dir)
        found.update(self.moves.in_dir(log_dir))
        return found

    def checkpoint_recovery_points(self) -> None:
        """Writes recovery-point-offset-checkpoint and log-start-offset-checkpoint."""
        self.checkpoint_due = False
        for log_dir in self.log_dirs:
            self._checkpoint_recovery_points_in(log_dir)
        self.checkpoint_log_start_offsets()

    def _checkpoint_recovery_points_in(self, log_dir: str) -> None:
        points = {k: log.recovery_point for k, log in self._checkpointed_in(log_dir).items()}
        write_offsets(self._fs, os.path.join(log_dir, RECOVERY_POINT_CHECKPOINT), points)
        self._checkpointed.update(points)

    def checkpoint_log_start_offsets(self) -> None:
        """Writes log-start-offset-checkpoint: done right after retention or DeleteRecords
        moved a start offset, so a restart never shows deleted records again."""
        for log_dir in self.log_dirs:
            self._checkpoint_log_start_offsets_in(log_dir)

    def _checkpoint_log_start_offsets_in(self, log_dir: str) -> None:
        write_offsets(
            self._fs,
            os.path.join(log_dir, LOG_START_OFFSET_CHECKPOINT),
            {k: log.log_start_offset for k, log in self._checkpointed_in(log_dir).items()},
        )

    # -- truncation (replication) ----------------------------------------------------

    def truncate_to(self, topic: str, partition: int, offset: int) -> bool:
        """Cuts the partition's log at `offset` (Log.truncate_to: the batch holding it and
        everything after go); True if anything was cut. Before it returns, the cut is
        durable (the shortened segment and the directory fsynced: a crash must not bring
        removed batches back) and the log dir's recovery-point and log-start-offset
        checkpoints are written, as Kafka's LogManager.truncateTo does, because recovery
        trusts everything below a checkpointed recovery point. KeyError for a partition
        not hosted here; KafkaStorageError on a disk failure (the log goes offline)."""
        log = self._hosted(topic, partition)
        self.moves.truncate_to((topic, partition), offset)
        if not log.truncate_to(offset):
            return False
        self.settle_truncation(log)
        return True

    def truncate_fully_and_start_at(self, topic: str, partition: int, offset: int) -> None:
        """Empties the partition's log and starts it at `offset` (a follower far behind
        the leader's log start, or one whose log start lies inside the leader's first
        batch); durable and checkpointed before it returns, as truncate_to."""
        log = self._hosted(topic, partition)
        self.moves.truncate_fully_and_start_at((topic, partition), offset)
        log.truncate_fully_and_start_at(offset)
        self.settle_truncation(log)

    def _hosted(self, topic: str, partition: int) -> Log:
        log = self._logs.get((topic, partition))
        if log is None:
            raise KeyError(f"{topic}-{partition} is not hosted here")
        return log

    def settle_truncation(self, log: Log, log_dir: str | None = None) -> None:
        """fsyncs what a truncation changed, then writes the checkpoints of its log dir
        (`log_dir`: a future log's; the current log's when None). A LogHost method."""
        try:
            log.flush()  # the shortened segment and its indexes, the epoch checkpoint
            self._fs.fsync_dir(log.path)  # removed segments and snapshots stay removed
        except OSError as e:
            raise log.take_offline(e) from e
        # Both checkpoints: the start may have come down too.
        self.checkpoint_dir(log_dir or self._dir_of[(log.topic, log.partition)])

    # -- retention -------------------------------------------------------------------

    def cleanup_logs(self, now_ms: int) -> int:
        """The log.retention.check.interval.ms job: deletes the segments past retention or
        below the log start offset in every log, then checkpoints the moved start offsets.
        Returns how many segments were deleted; a failing log is skipped."""
        deleted = 0
        for log in self._logs.values():
            if log.offline:
                continue
            try:
                deleted += delete_old_segments(log, now_ms)
            except KafkaStorageError:
                continue
        if deleted:
            self.checkpoint_log_start_offsets()
        return deleted

    def delete_due_files(self, now_ms: int) -> int:
        """Removes `.deleted` segment files whose file.delete.delay.ms has passed."""
        removed = 0
        for log in self._logs.values():
            if log.files_to_delete:
                try:
                    removed += delete_due_files(log, now_ms)
                except OSError:
                    continue
        return removed

    def close(self) -> None:
        """Clean stop: flush every log, write checkpoints, then the clean-shutdown marker
        in each log dir whose logs all flushed."""
        failed_dirs: set[str] = set()
        entries = [(log, self._dir_of[k]) for k, log in self._logs.items()]
        entries += [(log, log_dir) for log_dir, log in self.moves.future_logs()]
        # Logs are independent: their fsyncs run concurrently (see run_syncs).
        errors = run_syncs(self._fs, [log.flush for log, _dir in entries])
        for (_log, log_dir), error in zip(entries, errors, strict=True):
            if isinstance(error, KafkaStorageError):
                failed_dirs.add(log_dir)
            elif error is not None:
                raise error
        self.checkpoint_recovery_points()
        self._raise_first(run_syncs(self._fs, [log.close for log, _dir in entries]))
        for log_dir in self.log_dirs:
            if log_dir not in failed_dirs:
                marker = os.path.join(log_dir, CLEAN_SHUTDOWN_FILE)
                write_atomically(self._fs, marker, b'{"version":0,"brokerEpoch":-1}')


def _dir_sync(fs: FileSystem, path: str) -> Callable[[], None]:
    return lambda: fs.fsync_dir(path)


def _settle(fs: FileSystem, path: str, metadata: FileHandle | None) -> Callable[[], None]:
    """Makes a new partition directory durable: its partition.metadata.tmp (if any)
    fsynced and renamed into place, then the directory fsynced (which also covers the
    segment files in it)."""

    def run() -> None:
        if metadata is not None:
            try:
                metadata.fsync()
            finally:
                metadata.close()
            target = os.path.join(path, PARTITION_METADATA)
            fs.rename(target + ".tmp", target)
        fs.fsync_dir(path)

    return run
