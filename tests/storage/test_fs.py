"""The FileSystem implementations: same behaviour, plus MemoryFileSystem's faults and crash."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest

from odradek.storage.fs import FileSystem, OsFileSystem
from odradek.storage.memory_fs import MemoryFileSystem


@pytest.fixture(params=["memory", "os"])
def fs_root(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[FileSystem, str]:
    if request.param == "memory":
        return MemoryFileSystem(), "/root"
    return OsFileSystem(), str(tmp_path)


def test_file_operations(fs_root: tuple[FileSystem, str]) -> None:
    """Append, pwrite, pread, truncate, rename, listdir and rmtree behave alike on both."""
    fs, root = fs_root
    d = os.path.join(root, "a", "b")
    fs.mkdir(d)
    fs.mkdir(d)  # idempotent
    f = fs.open(os.path.join(d, "x.log"))
    assert f.append(b"hello") == 0
    assert f.append(b" world") == 5
    f.pwrite(13, b"!")
    assert f.size() == 14
    assert f.pread(0, 5) == b"hello"
    assert f.pread(11, 10) == b"\x00\x00!"
    f.truncate(5)
    f.fsync()
    assert fs.read_file(os.path.join(d, "x.log")) == b"hello"
    f.close()
    fs.rename(os.path.join(d, "x.log"), os.path.join(d, "y.log"))
    assert fs.listdir(d) == ["y.log"]
    assert fs.file_size(os.path.join(d, "y.log")) == 5
    assert fs.is_dir(d) and not fs.is_dir(os.path.join(d, "y.log"))
    fs.rename(d, os.path.join(root, "c"))
    assert fs.exists(os.path.join(root, "c", "y.log"))
    fs.remove(os.path.join(root, "c", "nothing"))  # no error
    fs.rmtree(os.path.join(root, "c"))
    assert not fs.exists(os.path.join(root, "c"))
    assert "a" in fs.listdir(root)


def test_memory_fs_fails_nth_write_with_short_write() -> None:
    """fail_write lets N-1 writes through, then a short write and the injected error."""
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    f = fs.open("/d/f")
    fs.fail_write(nth=2, error=errno.ENOSPC)
    f.append(b"aaaa")
    with pytest.raises(OSError) as info:
        f.append(b"bbbb")
    assert info.value.errno == errno.ENOSPC
    assert fs.read_file("/d/f") == b"aaaabb"  # half of the failed write landed
    f.append(b"cc")  # the fault was one-shot
    assert fs.read_file("/d/f") == b"aaaabbcc"


def test_memory_fs_persistent_fault_until_cleared() -> None:
    """A persistent fault keeps failing (disk full) until clear_faults()."""
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    f = fs.open("/d/f")
    fs.fail_fsync(error=errno.EIO, persistent=True)
    for _ in range(3):
        with pytest.raises(OSError):
            f.fsync()
    fs.clear_faults()
    f.fsync()


def test_crash_keeps_only_fsynced_bytes() -> None:
    """crash() without randomness drops everything written after the last fsync."""
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    f = fs.open("/d/f")
    f.append(b"durable")
    f.fsync()
    f.append(b"-lost")
    fs.open("/d/never-synced").append(b"zzz")
    fs.crash()
    assert fs.read_file("/d/f") == b"durable"
    assert fs.read_file("/d/never-synced") == b""


def test_crash_with_rng_keeps_a_prefix_of_the_unsynced_tail() -> None:
    """With a seeded rng the survivor is the synced bytes plus a prefix of the rest, and
    the same seed gives the same result."""
    outcomes = set()
    for seed in range(30):
        results = []
        for _ in range(2):
            fs = MemoryFileSystem()
            fs.mkdir("/d")
            f = fs.open("/d/f")
            f.append(b"sync")
            f.fsync()
            f.append(b"0123456789")
            fs.crash(random.Random(seed))
            results.append(fs.read_file("/d/f"))
        assert results[0] == results[1]
        assert b"sync0123456789".startswith(results[0]) and results[0].startswith(b"sync")
        outcomes.add(results[0])
    assert len(outcomes) > 3


def test_append_parts_writes_the_concatenation(fs_root: tuple[FileSystem, str]) -> None:
    """append_parts stores exactly what append of the joined parts would, at the end,
    whatever the part types (the leader's rewritten prefix, then a view of the batch)."""
    fs, root = fs_root
    fs.mkdir(root)
    parts_file = fs.open(os.path.join(root, "parts"))
    joined_file = fs.open(os.path.join(root, "joined"))
    rng = random.Random(7)
    for _ in range(20):
        body = rng.randbytes(rng.randrange(0, 3000))
        cut = rng.randrange(0, len(body) + 1)
        parts = (bytearray(body[:cut]), memoryview(body)[cut:])
        assert parts_file.append_parts(parts) == joined_file.append(body)
    assert parts_file.size() == joined_file.size()
    assert parts_file.pread(0, 1 << 20) == joined_file.pread(0, 1 << 20)


def test_append_parts_finishes_a_short_pwritev(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the kernel takes only part of the vector, the rest is written after it."""
    f = OsFileSystem().open(str(tmp_path / "f"))
    f.append(b"head:")
    real = os.pwritev

    def short(fd: int, buffers: list[bytes], offset: int) -> int:
        return real(fd, [bytes(buffers[0])[:3]], offset)

    monkeypatch.setattr(os, "pwritev", short)
    assert f.append_parts((b"abcdef", memoryview(b"ghij"))) == 5
    assert f.size() == 15
    assert f.pread(0, 100) == b"head:abcdefghij"


def test_memory_fs_append_parts_fails_like_a_write() -> None:
    """An injected write fault hits append_parts as one write: a prefix may land."""
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    f = fs.open("/d/f")
    fs.fail_write(nth=1, error=errno.EIO)
    with pytest.raises(OSError):
        f.append_parts((b"abcd", b"efgh"))
    assert f.pread(0, 100) == b"abcd"
