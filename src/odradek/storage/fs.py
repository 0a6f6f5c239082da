"""The file system as a dependency: everything in storage touches disk through `FileSystem`.

`OsFileSystem` is the real one (plain `os.*` calls on file descriptors). Tests use
`odradek.storage.memory_fs.MemoryFileSystem`, which can inject ENOSPC/EIO and simulate a
power loss. Paths are plain `str`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

Bytes = bytes | bytearray | memoryview


class FileHandle(Protocol):
    """An open file: positioned reads and writes, never a shared file pointer."""

    @property
    def path(self) -> str: ...

    def size(self) -> int:
        """Current length in bytes (including bytes not yet fsynced)."""
        ...

    def append(self, data: Bytes) -> int:
        """Writes `data` at the end; returns the position it was written at. On an OSError
        a prefix of `data` may have reached the file (the caller truncates it away)."""
        ...

    def pwrite(self, position: int, data: Bytes) -> None:
        """Writes `data` at `position` (may extend the file)."""
        ...

    def append_parts(self, parts: Sequence[Bytes]) -> int:
        """`append` of the parts' concatenation, without building it (one pwritev)."""
        ...

    def pread(self, position: int, size: int) -> bytes:
        """Reads up to `size` bytes at `position` (fewer at the end of the file)."""
        ...

    def truncate(self, size: int) -> None: ...

    def fsync(self) -> None:
        """Makes the data durable (fdatasync: the size is data, metadata is not needed)."""
        ...

    def close(self) -> None: ...


class FileSystem(Protocol):
    """The directory and file operations storage needs."""

    def open(self, path: str) -> FileHandle:
        """Opens `path` for reading and writing, creating it when absent."""
        ...

    def read_file(self, path: str) -> bytes:
        """The whole content of a small file (checkpoints, properties)."""
        ...

    def exists(self, path: str) -> bool: ...

    def is_dir(self, path: str) -> bool: ...

    def file_size(self, path: str) -> int: ...

    def listdir(self, path: str) -> list[str]: ...

    def mkdir(self, path: str) -> None:
        """Creates the directory and its parents; no error when it exists."""
        ...

    def rename(self, src: str, dst: str) -> None:
        """Atomically replaces `dst` with `src` (files or directories)."""
        ...

    def remove(self, path: str) -> None:
        """Removes a file; no error when it is already gone."""
        ...

    def rmtree(self, path: str) -> None: ...

    def fsync_dir(self, path: str) -> None:
        """Makes creations, renames and removals inside `path` durable."""
        ...


class OsFileHandle:
    """A file descriptor opened O_RDWR (not O_APPEND, so pwrite can fill index slots)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        # The size is tracked here so append needs no lseek/fstat per write.
        self._size = os.fstat(self._fd).st_size

    @property
    def path(self) -> str:
        return self._path

    def size(self) -> int:
        return self._size

    def append(self, data: Bytes) -> int:
        position = self._size
        self.pwrite(position, data)
        return position

    def pwrite(self, position: int, data: Bytes) -> None:
        view = memoryview(data)
        written = 0
        try:
            while written < len(view):
                written += os.pwrite(self._fd, view[written:], position + written)
        finally:
            self._size = max(self._size, position + written)

    def append_parts(self, parts: Sequence[Bytes]) -> int:
        position = self._size
        written = 0
        try:
            written = os.pwritev(self._fd, parts, position)
            total = sum(map(len, parts))
            if written < total:  # a short write (rare): the rest from a joined copy
                whole = memoryview(b"".join(parts))
                while written < total:
                    written += os.pwrite(self._fd, whole[written:], position + written)
        finally:
            self._size = max(self._size, position + written)
        return position

    def pread(self, position: int, size: int) -> bytes:
        return os.pread(self._fd, size, position)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)
        self._size = size

    def fsync(self) -> None:
        fdatasync = getattr(os, "fdatasync", os.fsync)
        fdatasync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class OsFileSystem:
    """The real file system."""

    def open(self, path: str) -> OsFileHandle:
        return OsFileHandle(path)

    def read_file(self, path: str) -> bytes:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            size = os.fstat(fd).st_size
            chunks = [os.read(fd, max(size, 1))]
            while chunks[-1]:  # the file may have grown since the fstat
                chunks.append(os.read(fd, 1 << 16))
            return b"".join(chunks)
        finally:
            os.close(fd)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def file_size(self, path: str) -> int:
        return os.stat(path).st_size

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def mkdir(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)

    def rmtree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_SYNC_WORKERS = 16
_pool: ThreadPoolExecutor | None = None
_worker_state = threading.local()


def _mark_worker() -> None:
    _worker_state.active = True


def _forget_pool() -> None:
    global _pool
    _pool = None  # a forked child has none of the parent's threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _sync_pool() -> ThreadPoolExecutor:
    """One pool for the process, its threads started on demand and then kept: starting
    16 threads per call cost more than the fsyncs of a small batch."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(
            _SYNC_WORKERS, thread_name_prefix="odradek-sync", initializer=_mark_worker
        )
    return _pool


def run_syncs(fs: FileSystem, calls: Sequence[Callable[[], None]]) -> list[Exception | None]:
    """Runs many independent durability calls (fsyncs of different files or directories,
    flushes of different logs) and returns each one's exception or None; every call runs.

    On the real file system they run up to 16 at a time: an fsync waits for the disk, not
    for the interpreter, and the journal commits concurrent ones together (about 4x faster
    for many small files here). Each call still completes before this returns, so every
    guarantee its caller gives afterwards holds as with one call after the other. Other
    file systems (the in-memory one of the tests), single calls and calls made from a
    pool thread (no waiting on the pool from inside it) run in order."""
    if len(calls) < 2:
        return _run_in_order(calls)
    return start_syncs(fs, calls)()


def start_syncs(
    fs: FileSystem, calls: Sequence[Callable[[], None]]
) -> Callable[[], list[Exception | None]]:
    """run_syncs that returns at once: on the real file system the calls start now, in
    the background, and the caller goes on working while the disk does; the function
    returned waits for them and gives each one's exception or None (call it exactly
    once, before relying on any of them). Other file systems run the calls, in order,
    when it is called."""
    inline = getattr(_worker_state, "active", False)
    if not calls or inline or not isinstance(fs, OsFileSystem):
        return lambda: _run_in_order(calls)
    # One task per worker, each running every n-th call: 20,000 fsyncs cost 16 futures,
    # not 20,000 (their setup took longer than the fsyncs of a creation batch).
    n = min(_SYNC_WORKERS, len(calls))
    pool = _sync_pool()
    futures = [pool.submit(_run_in_order, calls[i::n]) for i in range(n)]

    def wait() -> list[Exception | None]:
        results: list[Exception | None] = [None] * len(calls)
        for i, future in enumerate(futures):
            results[i::n] = future.result()
        return results

    return wait


def _run_in_order(calls: Sequence[Callable[[], None]]) -> list[Exception | None]:
    results: list[Exception | None] = []
    for fn in calls:
        try:
            fn()
        except Exception as e:  # handed to the caller, per call
            results.append(e)
        else:
            results.append(None)
    return results
