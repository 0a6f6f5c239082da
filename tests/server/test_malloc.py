"""The broker's allocator settings keep large request buffers from page-faulting anew."""

from __future__ import annotations

import importlib

import pytest

from tests.helpers import run_python

# Grows a 4 MiB buffer the way the frame decoder does, copies a slice out of it and frees
# both, 100 times; prints the minor page faults taken.
_WORKLOAD = """
import os, resource, sys
if sys.argv[1] == "tuned":
    from odradek.server.malloc import tune_for_large_buffers
    assert tune_for_large_buffers()
chunk = os.urandom(1 << 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    frame = bytearray()
    for _ in range(4):
        frame += chunk
    body = bytes(frame[100:])
    del frame, body
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

PAGES_PER_BUFFER = (4 << 20) // 4096


def _faults(mode: str) -> int:
    return int(run_python(_WORKLOAD, mode).strip())


def test_default_allocator_faults_on_every_large_buffer() -> None:
    """Control: without the settings each round faults in at least one 4 MiB buffer anew
    (this is the cost the settings remove, so the next test can tell them apart)."""
    assert _faults("default") > 100 * PAGES_PER_BUFFER


def test_tuned_allocator_reuses_large_buffers() -> None:
    """With the broker's settings the freed buffers are reused: a few rounds' worth of
    faults in total instead of several buffers' worth per round."""
    assert _faults("tuned") < 4 * PAGES_PER_BUFFER


def test_broker_command_tunes_the_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    """`odradek broker` applies the settings before it serves."""
    from odradek.cli import broker
    from odradek.config import BrokerConfig
    from odradek.server import malloc

    events: list[str] = []

    def fake_tune() -> bool:
        events.append("tune")
        return True

    monkeypatch.setattr(malloc, "tune_for_large_buffers", fake_tune)

    async def fake_serve(config: BrokerConfig) -> None:
        events.append("serve")

    monkeypatch.setattr(broker, "_serve", fake_serve)
    # _run hides hypothesis unless it is loaded; load it so this test process keeps it.
    importlib.import_module("hypothesis")
    broker._run(BrokerConfig())
    assert events == ["tune", "serve"]
