"""Consume-transform-produce with transactions, killed with SIGKILL again and again: the
output topic, read read_committed, has every input record transformed exactly once, and
the group's committed offsets reach the end of the input.

The kill times come from a seeded generator (ODRADEK_EOS_SEED, default 11) so a failure
can be replayed."""

from __future__ import annotations

import collections
import contextlib
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from confluent_kafka import Producer, TopicPartition

from tests.transactions.txn_clients import T, consumer, read_all

INPUT_RECORDS = 1500
PARTITIONS = 3
KILLS = 8
REPO = Path(__file__).resolve().parents[2]


def _start_app(broker: Any, names: tuple[str, str, str, str], idle_exit: float) -> Any:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.transactions.eos_app",
            broker.bootstrap_servers,
            *names,
            str(idle_exit),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _kill(proc: Any) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_the_output_has_each_input_once_across_many_kills(broker: Any, topic: str) -> None:
    """The application is killed -9 KILLS times at random moments (mid-transaction, between
    produce and commit, during a rebalance); a last run drains the input. Output values are
    exactly {out:v for v in input}, each once; offsets committed reach the end."""
    rng = random.Random(int(os.environ.get("ODRADEK_EOS_SEED", "11")))
    source, sink, group = f"{topic}-in", f"{topic}-out", f"{topic}-app"
    broker.create_topic(source, PARTITIONS)
    broker.create_topic(sink, PARTITIONS)
    feeder = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 5})
    inputs = [b"ride-%d" % i for i in range(INPUT_RECORDS)]
    for i, value in enumerate(inputs):
        feeder.produce(source, value, partition=i % PARTITIONS)
    assert feeder.flush(T) == 0

    names = (source, sink, group, f"{topic}-txn")
    for _ in range(KILLS):
        app = _start_app(broker, names, 0)
        try:
            with contextlib.suppress(subprocess.TimeoutExpired):
                app.wait(timeout=rng.uniform(1.0, 4.0))
            assert app.poll() is None, app.stdout.read().decode(errors="replace")
        finally:
            _kill(app)
    app = _start_app(broker, names, 4.0)
    try:
        out, _ = app.communicate(timeout=120)
    finally:
        _kill(app)
    assert app.returncode == 0, out.decode(errors="replace")

    seen = read_all(
        broker.bootstrap_servers, sink, range(PARTITIONS), "read_committed", INPUT_RECORDS
    )
    counts = collections.Counter(m.value() for m in seen)
    assert {v for v, n in counts.items() if n > 1} == set()
    assert set(counts) == {b"out:" + v for v in inputs}

    reader = consumer(broker.bootstrap_servers, "read_committed", group=group)
    try:
        committed = reader.committed(
            [TopicPartition(source, p) for p in range(PARTITIONS)], timeout=T
        )
    finally:
        reader.close()
    assert sorted(tp.offset for tp in committed) == [INPUT_RECORDS // PARTITIONS] * PARTITIONS
