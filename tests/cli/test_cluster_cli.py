"""`odradek cluster` and `odradek topic describe` against real replicated clusters: a
ZooKeeper (Java) and three broker processes each. Every wait is bounded and every
process is stopped by PID, also when a test fails."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from helpers import REPO_ROOT, unique_topic
from odradek.cli.cluster_processes import process_alive
from odradek.cli.cluster_state import UP_MARKER
from odradek.testing.cluster import Cluster, wait_until
from odradek.testing.zookeeper import ZooKeeper

from .conftest import Result, cli_env, run_cli

UP_TIMEOUT_S = 60.0
# `up` stops brokers one by one, each SIGKILLed after 20 s at worst, then ZooKeeper.
STOP_TIMEOUT_S = 100.0


def _state(data: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((data / "cluster.json").read_text())
    return doc


def _recorded_pids(data: Path) -> dict[int, bytes]:
    """Every PID the state file names (up, ZooKeeper, brokers) with its identity marker."""
    with contextlib.suppress(OSError, ValueError):
        state = _state(data)
        pids = {state["supervisor_pid"]: UP_MARKER}
        pids[state["zookeeper"]["pid"]] = str(data / "zookeeper" / "zoo.cfg").encode()
        for broker in state["brokers"].values():
            pids[broker["pid"]] = f"log.dirs={broker['properties']['log.dirs']}".encode()
        return {pid: marker for pid, marker in pids.items() if pid}
    return {}


def _kill_recorded(data: Path) -> None:
    for pid, marker in _recorded_pids(data).items():
        if process_alive(pid, marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def cluster_up(data: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`odradek cluster up --brokers 3` in the background, until its bootstrap line;
    yields (process, bootstrap servers). Afterwards every recorded PID is killed."""
    out = data.parent / "up.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "odradek",
                "cluster",
                "up",
                "--brokers",
                "3",
                "--port",
                "0",
                "--data",
                str(data),
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=cli_env(None),
            cwd=str(REPO_ROOT),
        )
    try:

        def bootstrap() -> str | None:
            if proc.poll() is not None:
                raise AssertionError(f"cluster up exited:\n{out.read_text()}")
            for line in out.read_text().splitlines():
                if line.startswith("bootstrap servers: "):
                    return line.removeprefix("bootstrap servers: ")
            return None

        yield proc, wait_until(bootstrap, UP_TIMEOUT_S, "the bootstrap line")
    except BaseException:
        _print_logs(data)
        raise
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        _kill_recorded(data)


def _print_logs(data: Path) -> None:
    """The output of `up` and the ends of the broker logs, for the failure report."""
    for path in [data.parent / "up.out", *sorted(data.glob("broker-*.log"))]:
        with contextlib.suppress(OSError):
            lines = path.read_text(errors="replace").splitlines()
            print(f"--- {path.name}", *lines[-40:], sep="\n")


def _cluster(data: Path, *args: str) -> Result:
    return run_cli("cluster", *args, "--data", str(data), timeout=90)


def _status(data: Path) -> dict[str, Any]:
    result = _cluster(data, "status", "--output", "json")
    assert result.code == 0, result
    doc: dict[str, Any] = json.loads(result.out)
    return doc


def _broker(status: dict[str, Any], node_id: int) -> dict[str, Any]:
    (broker,) = [b for b in status["brokers"] if b["id"] == node_id]
    return broker


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    errors: list[Any] = []
    for value in values:
        producer.produce(topic, value=value, on_delivery=lambda e, _m: errors.append(e))
    assert producer.flush(30) == 0
    assert errors == [None] * len(values)


def _consume(bootstrap: str, topic: str, partitions: int, count: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g")})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while len(values) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                values.append(msg.value())
    finally:
        consumer.close()
    return values


@pytest.mark.timeout(240)
def test_up_kill_start_and_stop(tmp_path: Path) -> None:
    """`cluster up` serves records through its printed bootstrap servers; `kill 2` takes
    broker 2 down and `status` says so; `start 2` brings it back on the same port; SIGTERM
    to `up` stops every process the state file records."""
    data = tmp_path / "cluster-data"
    with cluster_up(data) as (up, bootstrap):
        topic = unique_topic("rides")
        created = run_cli(
            "topic",
            "create",
            topic,
            "--partitions",
            "2",
            "--replication-factor",
            "3",
            "--config",
            "min.insync.replicas=2",
            bootstrap=bootstrap,
            timeout=60,
        )
        assert created.code == 0, created
        values = [f"ride-{i}".encode() for i in range(6)]
        _produce(bootstrap, topic, values)
        assert sorted(_consume(bootstrap, topic, 2, len(values))) == values

        status = _status(data)
        assert status["up"] and status["zookeeper"]["running"]
        assert [b["running"] for b in status["brokers"]] == [True, True, True]
        assert status["controller"] in (1, 2, 3)
        port = _broker(status, 2)["address"]

        killed = _cluster(data, "kill", "2")
        assert killed.code == 0 and "killed broker 2" in killed.out, killed
        assert _broker(_status(data), 2)["running"] is False
        again = _cluster(data, "kill", "2")
        assert again.code == 1 and "broker 2 is not running" in again.err, again

        started = _cluster(data, "start", "2")
        assert started.code == 0 and "started broker 2" in started.out, started
        back = _broker(_status(data), 2)
        assert back["running"] and back["registered"] and back["address"] == port

        assert set(_consume(bootstrap, topic, 2, len(values))) == set(values)
        pids = _recorded_pids(data)
        assert len(pids) == 5  # up, ZooKeeper, three brokers

        up.send_signal(signal.SIGTERM)
        assert up.wait(STOP_TIMEOUT_S) == 0
        still = [pid for pid, marker in pids.items() if process_alive(pid, marker)]
        assert still == []
        log = (tmp_path / "up.out").read_text()
        assert "broker 2 is down" in log and "broker 2 is up" in log, log
        assert "cluster stopped" in log


@pytest.mark.timeout(240)
def test_up_again_reuses_data_and_addresses(tmp_path: Path) -> None:
    """A second `up` on the same DIR comes back on the recorded ports with the topics and
    records of the first; `up` refuses to run twice on one DIR."""
    data = tmp_path / "cluster-data"
    topic = unique_topic("kept")
    with cluster_up(data) as (up, bootstrap):
        twice = _cluster(data, "up")
        assert twice.code == 1 and "already up" in twice.err, twice
        created = run_cli(
            "topic", "create", topic, "--replication-factor", "3", bootstrap=bootstrap
        )
        assert created.code == 0, created
        _produce(bootstrap, topic, [b"first run"])
        up.send_signal(signal.SIGTERM)
        assert up.wait(STOP_TIMEOUT_S) == 0
    with cluster_up(data) as (up, second):
        assert second == bootstrap
        assert _consume(second, topic, 1, 1) == [b"first run"]
        down = _cluster(data, "down")
        assert down.code == 0, down
        assert up.wait(STOP_TIMEOUT_S) == 0


def test_commands_without_a_cluster(tmp_path: Path) -> None:
    """Commands on a DIR without a cluster fail in one line; a broker number the cluster
    does not have is a usage error."""
    for action in (["status"], ["kill", "1"], ["start", "1"], ["down"]):
        result = _cluster(tmp_path / "nothing", *action)
        assert result.code == 1, result
        assert result.err.startswith("odradek: no cluster in "), result.err
        assert "Traceback" not in result.err


def test_describe_shows_shrunk_isr_and_offline_replica(zookeeper: ZooKeeper) -> None:
    """After a follower is killed and the controller took it out of the ISR, `topic
    describe` shows the ISR without it, the follower as offline, and the leader epoch."""
    with Cluster(3, zookeeper=zookeeper, session_timeout_ms=2000) as cluster:
        topic = unique_topic("rides")
        cluster.create_topic(topic, 1, 3, {"min.insync.replicas": "2"})
        leader = cluster.leader_of(topic, 0)
        follower = next(b for b in cluster.brokers if b != leader)
        cluster.kill(follower)
        cluster.wait_isr_size(topic, 0, 2, 30)

        def described() -> dict[str, Any] | None:
            # Brokers learn the new ISR from a ZooKeeper watch, a moment after the write.
            result = run_cli(
                "topic", "describe", topic, "--output", "json", bootstrap=cluster.bootstrap_servers
            )
            assert result.code == 0, result
            (partition,) = json.loads(result.out)["partitions"]
            return partition if len(partition["isr"]) == 2 else None

        partition = wait_until(described, 30, "describe to show the shrunk ISR")
        assert partition["leader"] == leader
        assert isinstance(partition["leader_epoch"], int) and partition["leader_epoch"] >= 0
        assert sorted(partition["replicas"]) == [1, 2, 3]
        assert sorted(partition["isr"]) == sorted(set(cluster.brokers) - {follower})
        assert partition["offline"] == [follower]

        table = run_cli("topic", "describe", topic, bootstrap=cluster.bootstrap_servers)
        assert table.code == 0, table
        header = next(line for line in table.out.splitlines() if "partition" in line)
        assert "epoch" in header and "offline" in header


def test_produce_auto_creates_in_a_cluster(zookeeper: ZooKeeper) -> None:
    """In a three-broker cluster `produce` to a new topic has it auto-created (through
    ZooKeeper, leaders elected a moment later) and every line acknowledged by all replicas;
    `perf produce` does the same, and creates one with `--partitions`; consume reads the
    lines back."""
    with Cluster(3, zookeeper=zookeeper) as cluster:
        bootstrap = cluster.bootstrap_servers
        topic, perf_topic = unique_topic("ac-cluster"), unique_topic("ac-cluster-perf")
        produced = run_cli(
            "produce", topic, "--acks", "all", stdin=b"a\nb\nc\n", bootstrap=bootstrap
        )
        assert produced.code == 0 and "produced 3 of 3" in produced.err, produced
        perf = run_cli(
            "perf",
            "produce",
            perf_topic,
            "--num-records",
            "20",
            "--record-size",
            "10",
            "--acks",
            "all",
            "--output",
            "json",
            bootstrap=bootstrap,
        )
        assert perf.code == 0 and json.loads(perf.out)["records"] == 20, perf
        sized = unique_topic("ac-cluster-sized")
        perf_args = ["--num-records", "5", "--record-size", "5", "--partitions", "2"]
        made = run_cli("perf", "produce", sized, *perf_args, bootstrap=bootstrap)
        assert made.code == 0, made
        described = run_cli("topic", "describe", sized, "--output", "json", bootstrap=bootstrap)
        assert len(json.loads(described.out)["partitions"]) == 2, described
        consumed = run_cli(
            "consume", topic, "--from-beginning", "--exit-at-end", bootstrap=bootstrap
        )
        assert consumed.code == 0 and sorted(consumed.out.splitlines()) == ["a", "b", "c"], consumed
