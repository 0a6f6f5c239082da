"""Kafka's checkpoint file formats, byte for byte, and the leader epoch cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from odradek.storage.checkpoint import read_epochs, read_offsets, write_epochs, write_offsets
from odradek.storage.errors import CheckpointError
from odradek.storage.fs import OsFileSystem
from odradek.storage.leader_epoch import LeaderEpochCache
from odradek.storage.memory_fs import MemoryFileSystem


def test_offset_checkpoint_is_byte_exact(tmp_path: Path) -> None:
    """`0`, the count, then `topic partition offset` lines, each ending in a newline."""
    fs = OsFileSystem()
    path = os.path.join(str(tmp_path), "recovery-point-offset-checkpoint")
    write_offsets(fs, path, {("orders", 1): 42, ("my.topic-x", 0): 7})
    assert (tmp_path / "recovery-point-offset-checkpoint").read_bytes() == (
        b"0\n2\nmy.topic-x 0 7\norders 1 42\n"
    )
    assert read_offsets(fs, path) == {("orders", 1): 42, ("my.topic-x", 0): 7}
    assert not (tmp_path / "recovery-point-offset-checkpoint.tmp").exists()


def test_empty_and_missing_checkpoints() -> None:
    """An empty checkpoint is `0\\n0\\n`; a missing file reads as empty."""
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    write_offsets(fs, "/d/c", {})
    assert fs.read_file("/d/c") == b"0\n0\n"
    assert read_offsets(fs, "/d/c") == {}
    assert read_offsets(fs, "/d/absent") == {}


@pytest.mark.parametrize(
    "content",
    [b"", b"1\n0\n", b"0\n2\na 0 1\n", b"0\nx\n", b"0\n1\na 0\n", b"0\n1\na b 1\n", b"\xff\xfe"],
)
def test_malformed_checkpoint_raises_a_clear_error(content: bytes) -> None:
    """Wrong version, wrong count, wrong field count or non-numbers raise CheckpointError
    naming the file."""
    fs = MemoryFileSystem()
    fs.write_file("/d/bad", content)
    with pytest.raises(CheckpointError, match="/d/bad"):
        read_offsets(fs, "/d/bad")


def test_checkpoint_write_survives_a_crash() -> None:
    """The atomic write (tmp, fsync, rename) leaves the new content after a power loss."""
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    write_offsets(fs, "/d/c", {("t", 0): 1})
    write_offsets(fs, "/d/c", {("t", 0): 2})
    fs.crash()
    assert read_offsets(fs, "/d/c") == {("t", 0): 2}


def test_leader_epoch_checkpoint_round_trip() -> None:
    """leader-epoch-checkpoint: `0`, count, `epoch start_offset` lines; reloads equal."""
    fs = MemoryFileSystem()
    fs.mkdir("/p")
    cache = LeaderEpochCache.load(fs, "/p/leader-epoch-checkpoint")
    assert cache.latest_epoch == -1
    assert cache.assign(0, 0)
    assert not cache.assign(0, 5)  # not a new epoch
    assert cache.assign(3, 10)
    assert cache.assign(4, 25)
    assert fs.read_file("/p/leader-epoch-checkpoint") == b"0\n3\n0 0\n3 10\n4 25\n"
    again = LeaderEpochCache.load(fs, "/p/leader-epoch-checkpoint")
    assert again.entries == [(0, 0), (3, 10), (4, 25)]
    assert again.epoch_for_offset(9) == 0 and again.epoch_for_offset(10) == 3
    assert again.end_offset_for(3, 40) == (3, 25)
    assert again.end_offset_for(2, 40) == (0, 10)
    assert again.end_offset_for(9, 40) == (-1, -1)  # newer than any: Kafka says UNDEFINED
    again.truncate_from_end(25)
    again.truncate_from_start(12)
    assert read_epochs(fs, "/p/leader-epoch-checkpoint") == [(3, 12)]
    write_epochs(fs, "/p/e", [])
    assert fs.read_file("/p/e") == b"0\n0\n"
