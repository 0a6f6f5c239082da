"""Shared fixtures: an in-process odradek broker (`broker`, one per test module, and
`fresh_broker`, one per test) and a fresh topic name per test (`topic`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# `import helpers` works however pytest lays out sys.path (rootdir, packages or not).
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from helpers import ck_forget_admin, unique_topic  # noqa: E402

pytest_plugins = ["tests.zookeeper_fixture"]

BROKER_CONFIG: dict[str, Any] = {"num.partitions": 3}


def _start_broker(config: dict[str, Any] | None = None) -> Any:
    # Imported here so that collection works even while the broker does not import yet.
    from odradek.testing import Broker

    return Broker(config={**BROKER_CONFIG, **(config or {})}).start()


def _running_broker() -> Iterator[Any]:
    """A started broker; at the end it stops and the admin client cached for its
    address goes."""
    b = _start_broker()
    bootstrap = b.bootstrap_servers
    try:
        yield b
    finally:
        ck_forget_admin(bootstrap)
        b.stop()


@pytest.fixture(scope="module")
def broker() -> Iterator[Any]:
    """An odradek broker in a background thread, shared by the tests of one module."""
    yield from _running_broker()


@pytest.fixture
def fresh_broker() -> Iterator[Any]:
    """An odradek broker of this test alone (for restarts)."""
    yield from _running_broker()


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses."""
    return unique_topic(request.node.name.split("[")[0].replace("test_", "")[:40])
