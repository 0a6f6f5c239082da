"""The file system as a dependency: everything in storage touches disk through `FileSystem`.

`OsFileSystem` is the real one (plain `os.*` calls on file descriptors). Tests use
`odradek.storage.memory_fs.MemoryFileSystem`, which can inject ENOSPC/EIO and simulate a
power loss. Paths are plain `str`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
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
        with open(path, "rb") as f:
            return f.read()

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
