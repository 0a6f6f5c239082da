"""An in-memory `FileSystem` for deterministic fault and crash tests.

It can fail the Nth write or fsync with an injected OSError (ENOSPC, EIO, ...) and
`crash()` like a power loss: every byte not fsynced is dropped, optionally keeping a
random prefix of the unsynced tail (seeded `random.Random`, so a failing seed replays).

Model: each file keeps its current bytes and the bytes as of its last fsync. Directory
operations (create, rename, remove) are durable at once, as on a journaling file system
that orders metadata after data; `fsync_dir` is counted but changes nothing. With
`durable_dirs=False` they are not: a crash leaves each directory's entries as they were
at its last `fsync_dir` (a file or directory created, renamed or removed since then is
back to its old state), as POSIX promises and ext4 without a journal does.
"""

from __future__ import annotations

import errno
import os
import posixpath
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from odradek.storage.fs import Bytes


@dataclass
class _Inode:
    data: bytearray = field(default_factory=bytearray)
    durable: bytes = b""


@dataclass
class _Fault:
    remaining: int  # operations to let through before failing
    error: int
    persistent: bool


class MemoryFileHandle:
    """A handle on one in-memory file; survives renames like a file descriptor."""

    def __init__(self, fs: MemoryFileSystem, path: str, inode: _Inode) -> None:
        self._fs = fs
        self._path = path
        self._inode = inode

    @property
    def path(self) -> str:
        return self._path

    def size(self) -> int:
        return len(self._inode.data)

    def append(self, data: Bytes) -> int:
        position = len(self._inode.data)
        self.pwrite(position, data)
        return position

    def append_parts(self, parts: Sequence[Bytes]) -> int:
        return self.append(b"".join(parts))

    def pwrite(self, position: int, data: Bytes) -> None:
        raw = bytes(data)
        error = self._fs._check_fault("write")
        if error is not None:
            # A short write then the error, as a full disk does: the caller must clean up.
            self._store(position, raw[: len(raw) // 2])
            raise OSError(error, os.strerror(error), self._path)
        self._store(position, raw)

    def _store(self, position: int, raw: bytes) -> None:
        buf = self._inode.data
        if position > len(buf):
            buf.extend(bytes(position - len(buf)))
        buf[position : position + len(raw)] = raw

    def pread(self, position: int, size: int) -> bytes:
        return bytes(self._inode.data[position : position + size])

    def truncate(self, size: int) -> None:
        buf = self._inode.data
        if size < len(buf):
            del buf[size:]
        else:
            buf.extend(bytes(size - len(buf)))

    def fsync(self) -> None:
        error = self._fs._check_fault("fsync")
        self._fs.fsync_count += 1
        if error is not None:
            raise OSError(error, os.strerror(error), self._path)
        self._inode.durable = bytes(self._inode.data)

    def close(self) -> None:
        pass


class MemoryFileSystem:
    """Files and directories in a dict, with injected faults and simulated power loss."""

    def __init__(self, *, durable_dirs: bool = True) -> None:
        self._files: dict[str, _Inode] = {}
        self._dirs: set[str] = {"/"}
        self.durable_dirs = durable_dirs
        # Every directory has a number that stays with it through renames; `_synced` holds
        # each directory's entries (name -> file inode or directory number) as of its last
        # fsync_dir. Only crash() reads them, and only with durable_dirs=False.
        self._dir_ids: dict[str, int] = {"/": 0}
        self._next_dir_id = 1
        self._synced: dict[int, dict[str, _Inode | int]] = {0: {}}
        # directory -> names in it, kept for listdir (rebuilt after rare bulk changes)
        self._children: dict[str, set[str]] | None = None
        self._faults: dict[str, _Fault] = {}
        self.write_count = 0
        self.fsync_count = 0

    # -- fault injection -------------------------------------------------------------

    def fail_write(self, nth: int = 1, error: int = errno.ENOSPC, persistent: bool = False) -> None:
        """The `nth` write from now fails with `error` (and every later one if persistent)."""
        self._faults["write"] = _Fault(nth - 1, error, persistent)

    def fail_fsync(self, nth: int = 1, error: int = errno.EIO, persistent: bool = False) -> None:
        """The `nth` fsync from now fails with `error` (and every later one if persistent)."""
        self._faults["fsync"] = _Fault(nth - 1, error, persistent)

    def clear_faults(self) -> None:
        """The disk works again (space freed, device back)."""
        self._faults.clear()

    def _check_fault(self, kind: str) -> int | None:
        if kind == "write":
            self.write_count += 1
        fault = self._faults.get(kind)
        if fault is None:
            return None
        if fault.remaining > 0:
            fault.remaining -= 1
            return None
        if not fault.persistent:
            del self._faults[kind]
        return fault.error

    def crash(self, rng: random.Random | None = None) -> None:
        """Power loss: keep fsynced bytes; with `rng`, also a random prefix of the unsynced
        tail of each file (or, after an overwrite, randomly the old or the new content).
        Handles opened before the crash no longer reach the files."""
        self._faults.clear()
        if not self.durable_dirs:
            self._crash_namespace(rng)
            return
        survivors: dict[str, _Inode] = {}
        for path, inode in self._files.items():
            survivors[path] = _Inode(bytearray(self._survivor(inode, rng)), inode.durable)
        self._files = survivors
        self._children = None

    def _crash_namespace(self, rng: random.Random | None) -> None:
        """crash() with durable_dirs=False: the tree is rebuilt from the root out of each
        directory's entries as of its last fsync_dir."""
        copies: dict[int, _Inode] = {}  # id(inode) -> what survives of it (one per inode)
        files: dict[str, _Inode] = {}
        dir_ids: dict[str, int] = {"/": 0}
        placed = {0}
        pending = [("/", 0)]
        while pending:
            path, dir_id = pending.pop()
            for name, entry in sorted(self._synced.get(dir_id, {}).items()):
                child = posixpath.join(path, name)
                if isinstance(entry, int):
                    if entry not in placed:  # a directory has one place
                        placed.add(entry)
                        dir_ids[child] = entry
                        pending.append((child, entry))
                    continue
                copy = copies.get(id(entry))
                if copy is None:
                    copy = _Inode(bytearray(self._survivor(entry, rng)), entry.durable)
                    copies[id(entry)] = copy
                files[child] = copy
        self._files, self._dirs, self._dir_ids = files, set(dir_ids), dir_ids
        self._children = None
        # What the disk holds now is all there is: every entry of it is durable.
        self._synced = {number: self._entries(path) for path, number in dir_ids.items()}

    def _entries(self, path: str) -> dict[str, _Inode | int]:
        """The entries of directory `path` now: name -> file inode or directory number."""
        out: dict[str, _Inode | int] = {}
        for name in self._index().get(path, ()):
            child = posixpath.join(path, name)
            inode = self._files.get(child)
            out[name] = inode if inode is not None else self._dir_ids[child]
        return out

    def sync_namespace(self) -> None:
        """Test helper: every directory entry made durable, as if each directory had been
        fsynced (for a durable_dirs=False test, the state set up before what it crashes)."""
        self._synced = {number: self._entries(path) for path, number in self._dir_ids.items()}

    @staticmethod
    def _survivor(inode: _Inode, rng: random.Random | None) -> bytes:
        data, durable = bytes(inode.data), inode.durable
        if rng is None:
            return durable
        if data.startswith(durable):
            return data[: len(durable) + rng.randint(0, len(data) - len(durable))]
        return rng.choice([durable, data])

    def durable_size(self, path: str) -> int:
        """How many bytes of `path` would survive a crash without randomness."""
        return len(self._files[self._norm(path)].durable)

    # -- FileSystem ------------------------------------------------------------------

    @staticmethod
    def _norm(path: str) -> str:
        return posixpath.normpath(posixpath.join("/", path))

    def open(self, path: str) -> MemoryFileHandle:
        path = self._norm(path)
        parent = posixpath.dirname(path)
        if parent not in self._dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory", parent)
        inode = self._files.get(path)
        if inode is None:
            inode = self._files[path] = _Inode()
            self._added(path)
        return MemoryFileHandle(self, path, inode)

    def _added(self, path: str) -> None:
        if self._children is not None:
            parent, name = posixpath.split(path)
            self._children.setdefault(parent, set()).add(name)

    def _removed(self, path: str) -> None:
        if self._children is not None:
            parent, name = posixpath.split(path)
            self._children.get(parent, set()).discard(name)

    def _index(self) -> dict[str, set[str]]:
        if self._children is None:
            self._children = {}
            for child in [*self._files, *self._dirs]:
                if child != "/":
                    parent, name = posixpath.split(child)
                    self._children.setdefault(parent, set()).add(name)
        return self._children

    def read_file(self, path: str) -> bytes:
        inode = self._files.get(self._norm(path))
        if inode is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", path)
        return bytes(inode.data)

    def write_file(self, path: str, data: bytes) -> None:
        """Test helper: replace a file's content (durably), as a corrupting tool would;
        creates the parent directories."""
        path = self._norm(path)
        self.mkdir(posixpath.dirname(path))
        self.open(path)
        inode = self._files[path]
        inode.data = bytearray(data)
        inode.durable = bytes(data)
        while path != "/":  # the name too, and its directories' names
            parent, name = posixpath.split(path)
            entry = self._files.get(path)
            self._synced.setdefault(self._dir_ids[parent], {})[name] = (
                entry if entry is not None else self._dir_ids[path]
            )
            path = parent

    def exists(self, path: str) -> bool:
        path = self._norm(path)
        return path in self._files or path in self._dirs

    def is_dir(self, path: str) -> bool:
        return self._norm(path) in self._dirs

    def file_size(self, path: str) -> int:
        inode = self._files.get(self._norm(path))
        if inode is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", path)
        return len(inode.data)

    def listdir(self, path: str) -> list[str]:
        path = self._norm(path)
        if path not in self._dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory", path)
        return sorted(self._index().get(path, ()))

    def mkdir(self, path: str) -> None:
        path = self._norm(path)
        while path not in self._dirs:
            self._dirs.add(path)
            self._dir_ids[path] = self._next_dir_id
            self._next_dir_id += 1
            self._added(path)
            path = posixpath.dirname(path)

    def rename(self, src: str, dst: str) -> None:
        src, dst = self._norm(src), self._norm(dst)
        if src in self._files:
            if dst not in self._files:
                self._added(dst)
            self._files[dst] = self._files.pop(src)
            self._removed(src)
            return
        self._children = None
        if src not in self._dirs:
            raise FileNotFoundError(errno.ENOENT, "no such file", src)
        self.rmtree(dst)
        prefix = src + "/"
        for path in [p for p in self._files if p.startswith(prefix)]:
            self._files[dst + path[len(src) :]] = self._files.pop(path)
        for path in [p for p in self._dirs if p == src or p.startswith(prefix)]:
            self._dirs.discard(path)
            self._dirs.add(dst + path[len(src) :])
            self._dir_ids[dst + path[len(src) :]] = self._dir_ids.pop(path)

    def remove(self, path: str) -> None:
        path = self._norm(path)
        if self._files.pop(path, None) is not None:
            self._removed(path)

    def rmtree(self, path: str) -> None:
        path = self._norm(path)
        prefix = path + "/"
        self._children = None
        self._files = {p: i for p, i in self._files.items() if not p.startswith(prefix)}
        self._dirs = {d for d in self._dirs if d != path and not d.startswith(prefix)}
        self._dir_ids = {d: n for d, n in self._dir_ids.items() if d in self._dirs}

    def fsync_dir(self, path: str) -> None:
        self.fsync_count += 1
        if self.durable_dirs:
            return
        path = self._norm(path)
        if path not in self._dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory", path)
        self._synced[self._dir_ids[path]] = self._entries(path)
