"""Fixtures: every log test runs on the in-memory and on the real file system."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from odradek.storage.fs import FileSystem, OsFileSystem
from odradek.storage.memory_fs import MemoryFileSystem


@pytest.fixture(params=["memory", "os"])
def any_fs(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[FileSystem, str]:
    """(file system, a partition directory path on it)."""
    if request.param == "memory":
        return MemoryFileSystem(), "/data/orders-0"
    return OsFileSystem(), os.path.join(str(tmp_path), "orders-0")
