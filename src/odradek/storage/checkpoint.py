"""Kafka's text checkpoint files, written atomically (tmp file, fsync, rename, fsync dir).

Offset checkpoints (`recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
`replication-offset-checkpoint`) are: a version line `0`, a count line, then one
`topic partition offset` line per partition. The `leader-epoch-checkpoint` has the same
frame with `epoch start_offset` lines.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from odradek.storage.errors import CheckpointError
from odradek.storage.fs import FileSystem

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
REPLICATION_OFFSET_CHECKPOINT = "replication-offset-checkpoint"
LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint"
CURRENT_VERSION = 0

TopicPartition = tuple[str, int]


def write_atomically(fs: FileSystem, path: str, data: bytes) -> None:
    """Replaces `path` so a crash leaves either the old or the new content, whole."""
    tmp = path + ".tmp"
    handle = fs.open(tmp)
    try:
        handle.truncate(0)
        handle.pwrite(0, data)
        handle.fsync()
    finally:
        handle.close()
    fs.rename(tmp, path)
    fs.fsync_dir(os.path.dirname(path) or ".")


def _format(lines: Sequence[str]) -> bytes:
    body = "".join(line + "\n" for line in lines)
    return f"{CURRENT_VERSION}\n{len(lines)}\n{body}".encode()


def _parse(fs: FileSystem, path: str, fields: int) -> list[list[str]]:
    """The entry lines of a checkpoint split into `fields` fields; [] when the file is
    absent. Raises CheckpointError naming the file and the problem."""
    if not fs.exists(path):
        return []
    try:
        lines = fs.read_file(path).decode().splitlines()
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path}: not text") from e
    if len(lines) < 2 or lines[0].strip() != str(CURRENT_VERSION):
        raise CheckpointError(f"{path}: expected version {CURRENT_VERSION}")
    try:
        count = int(lines[1])
    except ValueError as e:
        raise CheckpointError(f"{path}: bad entry count {lines[1]!r}") from e
    entries = [line.split() for line in lines[2:] if line.strip()]
    if count != len(entries):
        raise CheckpointError(f"{path}: count {count} but {len(entries)} entries")
    for entry in entries:
        if len(entry) != fields:
            raise CheckpointError(f"{path}: malformed line {' '.join(entry)!r}")
    return entries


def _int(path: str, text: str) -> int:
    try:
        return int(text)
    except ValueError as e:
        raise CheckpointError(f"{path}: {text!r} is not a number") from e


def write_offsets(fs: FileSystem, path: str, offsets: Mapping[TopicPartition, int]) -> None:
    """Writes an offset checkpoint (entries sorted, so the file is deterministic)."""
    lines = [
        f"{topic} {partition} {offset}" for (topic, partition), offset in sorted(offsets.items())
    ]
    write_atomically(fs, path, _format(lines))


def read_offsets(fs: FileSystem, path: str) -> dict[TopicPartition, int]:
    """Reads an offset checkpoint; {} when the file does not exist."""
    return {
        (topic, _int(path, partition)): _int(path, offset)
        for topic, partition, offset in _parse(fs, path, 3)
    }


def write_epochs(fs: FileSystem, path: str, epochs: Sequence[tuple[int, int]]) -> None:
    """Writes a leader-epoch-checkpoint of (epoch, start_offset) entries."""
    write_atomically(fs, path, _format([f"{epoch} {offset}" for epoch, offset in epochs]))


def read_epochs(fs: FileSystem, path: str) -> list[tuple[int, int]]:
    """Reads a leader-epoch-checkpoint; [] when the file does not exist."""
    return [(_int(path, e), _int(path, o)) for e, o in _parse(fs, path, 2)]
