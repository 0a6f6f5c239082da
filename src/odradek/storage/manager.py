"""All the logs of a broker across its log directories: open them at start (noting a
clean shutdown), create and delete them, flush on flush.ms, and write the checkpoints
and the clean-shutdown marker at a clean stop.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterable, Mapping

from odradek.clock import Clock
from odradek.storage.checkpoint import (
    LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
    read_offsets,
    write_atomically,
    write_offsets,
)
from odradek.storage.errors import (
    CheckpointError,
    InconsistentClusterIdError,
    InconsistentNodeIdError,
    KafkaStorageError,
)
from odradek.storage.fs import FileSystem, run_syncs
from odradek.storage.log import Log, parse_topic_partition
from odradek.storage.log_config import LogConfig
from odradek.storage.retention import delete_due_files, delete_old_segments

META_PROPERTIES = "meta.properties"
CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
PARTITION_METADATA = "partition.metadata"
# Directories that are not live partitions: pending deletion, moves between disks, and
# KRaft's own metadata log.
_DELETE_SUFFIX = "-delete"
_SKIPPED_SUFFIXES = ("-future", "-stray")
_METADATA_LOG = "__cluster_metadata-0"

TopicPartition = tuple[str, int]


def uuid_to_kafka(value: uuid.UUID) -> str:
    """Kafka's Uuid.toString: URL-safe base64 of the 16 bytes, without padding."""
    return base64.urlsafe_b64encode(value.bytes).rstrip(b"=").decode()


def uuid_from_kafka(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def parse_properties(data: bytes) -> dict[str, str]:
    """Java .properties as Kafka writes them: `key=value` lines, `#`/`!` comments."""
    out: dict[str, str] = {}
    for line in data.decode("utf-8").splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise CheckpointError(f"bad properties line {line!r}")
        out[key.strip()] = value.strip()
    return out


def _partition_metadata(topic_id: uuid.UUID) -> bytes:
    return f"version: 0\ntopic_id: {uuid_to_kafka(topic_id)}\n".encode()


def write_partition_metadata(fs: FileSystem, path: str, topic_id: uuid.UUID) -> None:
    """Kafka's partition.metadata: `version: 0` then `topic_id: <base64url>`."""
    write_atomically(fs, os.path.join(path, PARTITION_METADATA), _partition_metadata(topic_id))


def read_partition_metadata(fs: FileSystem, path: str) -> uuid.UUID | None:
    file = os.path.join(path, PARTITION_METADATA)
    if not fs.exists(file):
        return None
    fields = dict(
        line.split(": ", 1) for line in fs.read_file(file).decode().splitlines() if ": " in line
    )
    if fields.get("version") != "0" or "topic_id" not in fields:
        raise CheckpointError(f"{file}: not a version 0 partition.metadata")
    return uuid_from_kafka(fields["topic_id"])


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
        self.clean_shutdown: dict[str, bool] = {}

    # -- start -----------------------------------------------------------------------

    def open(self, *, node_id: int | None = None, cluster_id: str | None = None) -> None:
        """Checks meta.properties (node_id/cluster_id given here override the
        constructor's) and opens every partition directory."""
        if node_id is not None:
            self.node_id = node_id
        if cluster_id is not None:
            self.cluster_id = cluster_id
        for log_dir in self.log_dirs:
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
            for name in self._fs.listdir(log_dir):
                self._open_dir(log_dir, name, clean, recovery_points, start_offsets)
            # Removed only once loaded: a crash while opening must recover again.
            self._fs.remove(marker)
            self._fs.fsync_dir(log_dir)

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
        if name.endswith(_DELETE_SUFFIX):
            self._fs.rmtree(path)  # a deletion interrupted by the stop
            return
        if name.endswith(_SKIPPED_SUFFIXES):
            return
        try:
            key = parse_topic_partition(name)
        except ValueError:
            return
        log = Log.open(
            self._fs,
            path,
            self.default_config,
            self._clock,
            recovery_points.get(key, 0),
            clean_shutdown=clean,
            log_start_offset=start_offsets.get(key, 0),
        )
        self._add(key, log, log_dir)

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
        emptiest log dir). Creations are durable on return: partition.metadata is
        fsynced before its rename, then every new directory and its log dir are fsynced,
        all of it batched (concurrent fsyncs) rather than a few fsyncs per partition."""
        wanted = list(partitions)
        found: dict[int, Log] = {}
        new: list[tuple[int, str, str]] = []  # (partition, log dir, path)
        for partition in wanted:
            log = self._logs.get((topic, partition))
            if log is not None:
                if config is not None:
                    log.config = config
                found[partition] = log
            elif all(p != partition for p, _, _ in new):
                log_dir = min(self.log_dirs, key=lambda d: self._count_in.get(d, 0))
                self._count_in[log_dir] = self._count_in.get(log_dir, 0) + 1  # reserved
                new.append((partition, log_dir, os.path.join(log_dir, f"{topic}-{partition}")))
        try:
            for _, _, path in new:
                self._fs.mkdir(path)
            if topic_id is not None:
                self._write_partition_metadata([path for _, _, path in new], topic_id)
            opened = [
                Log.open(
                    self._fs,
                    path,
                    config or self.default_config,
                    self._clock,
                    0,
                    clean_shutdown=True,
                )
                for _, _, path in new
            ]
            dirs = [path for _, _, path in new] + sorted({d for _, d, _ in new})
            self._raise_first(run_syncs(self._fs, [_dir_sync(self._fs, d) for d in dirs]))
        finally:
            for _, log_dir, _ in new:
                self._count_in[log_dir] -= 1
        for (partition, log_dir, _), log in zip(new, opened, strict=True):
            self._add((topic, partition), log, log_dir)
            found[partition] = log
        return [found[p] for p in wanted]

    def _write_partition_metadata(self, paths: list[str], topic_id: uuid.UUID) -> None:
        """partition.metadata in each new directory, atomically (tmp, fsync, rename)."""
        data = _partition_metadata(topic_id)
        handles = []
        try:
            for path in paths:
                handle = self._fs.open(os.path.join(path, PARTITION_METADATA + ".tmp"))
                handles.append(handle)
                handle.truncate(0)
                handle.pwrite(0, data)
            self._raise_first(run_syncs(self._fs, [h.fsync for h in handles]))
        finally:
            for handle in handles:
                handle.close()
        for path in paths:
            target = os.path.join(path, PARTITION_METADATA)
            self._fs.rename(target + ".tmp", target)

    @staticmethod
    def _raise_first(errors: list[Exception | None]) -> None:
        for error in errors:
            if error is not None:
                raise error

    def delete_log(self, topic: str, partition: int) -> None:
        """Renames the directory to `<name>.<uuid hex>-delete` (atomic: a crash leaves no
        half-deleted live partition), then removes it."""
        key = (topic, partition)
        log = self._logs.pop(key, None)
        if log is None:
            return
        log_dir = self._dir_of.pop(key)
        self._count_in[log_dir] -= 1
        self._appended.discard(log)
        log.close()
        doomed = os.path.join(log_dir, f"{topic}-{partition}.{uuid.uuid4().hex}{_DELETE_SUFFIX}")
        self._fs.rename(log.path, doomed)
        self._fs.fsync_dir(log_dir)
        self._fs.rmtree(doomed)

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
            if log.recovery_point >= log.log_end_offset:
                self._appended.discard(log)
        return flushed

    def log_dir_of(self, topic: str, partition: int) -> str | None:
        return self._dir_of.get((topic, partition))

    def _logs_in(self, log_dir: str) -> dict[TopicPartition, Log]:
        return {k: log for k, log in self._logs.items() if self._dir_of[k] == log_dir}

    def checkpoint_recovery_points(self) -> None:
        """Writes recovery-point-offset-checkpoint and log-start-offset-checkpoint."""
        for log_dir in self.log_dirs:
            write_offsets(
                self._fs,
                os.path.join(log_dir, RECOVERY_POINT_CHECKPOINT),
                {k: log.recovery_point for k, log in self._logs_in(log_dir).items()},
            )
        self.checkpoint_log_start_offsets()

    def checkpoint_log_start_offsets(self) -> None:
        """Writes log-start-offset-checkpoint: done right after retention or DeleteRecords
        moved a start offset, so a restart never shows deleted records again."""
        for log_dir in self.log_dirs:
            write_offsets(
                self._fs,
                os.path.join(log_dir, LOG_START_OFFSET_CHECKPOINT),
                {k: log.log_start_offset for k, log in self._logs_in(log_dir).items()},
            )

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
        keys = list(self._logs)
        # Logs are independent: their fsyncs run concurrently (see run_syncs).
        errors = run_syncs(self._fs, [self._logs[key].flush for key in keys])
        for key, error in zip(keys, errors, strict=True):
            if isinstance(error, KafkaStorageError):
                failed_dirs.add(self._dir_of[key])
            elif error is not None:
                raise error
        self.checkpoint_recovery_points()
        self._raise_first(run_syncs(self._fs, [log.close for log in self._logs.values()]))
        for log_dir in self.log_dirs:
            if log_dir not in failed_dirs:
                marker = os.path.join(log_dir, CLEAN_SHUTDOWN_FILE)
                write_atomically(self._fs, marker, b'{"version":0,"brokerEpoch":-1}')


def _dir_sync(fs: FileSystem, path: str) -> Callable[[], None]:
    return lambda: fs.fsync_dir(path)
