"""`odradek cluster kill N | stop N | start N | down`: commands on a running cluster from
another terminal, through the PIDs and ports of its state file."""

from __future__ import annotations

import argparse
import signal
import time
from typing import Any

from odradek.cli.cluster_processes import (
    accepts,
    broker_marker,
    process_alive,
    registration_of,
    signal_pid,
    spawn_detached,
    stop_pids,
    wait_gone,
    zookeeper_client,
    zookeeper_marker,
)
from odradek.cli.cluster_state import (
    HOST,
    KILL_TIMEOUT_S,
    STOP_TIMEOUT_S,
    UP_MARKER,
    BrokerEntry,
    ClusterState,
    StateDir,
)
from odradek.cli.common import EXIT_OK, EXIT_USAGE, CliError

# -- commands on a running cluster -----------------------------------------------------------


def _entry(state: ClusterState, node_id: int) -> BrokerEntry:
    if node_id not in state.brokers:
        ids = ", ".join(str(i) for i in sorted(state.brokers))
        raise CliError(f"no broker {node_id} in this cluster (brokers: {ids})", EXIT_USAGE)
    return state.brokers[node_id]


def _running_entry(data: StateDir, node_id: int) -> BrokerEntry:
    entry = _entry(data.read(), node_id)
    if not process_alive(entry.pid, broker_marker(entry)):
        raise CliError(f"broker {node_id} is not running")
    return entry


def cluster_kill(args: argparse.Namespace) -> int:
    """SIGKILL broker N: no clean stop, its ZooKeeper session expires on its own."""
    data = StateDir(args.data)
    entry = _running_entry(data, args.broker)
    assert entry.pid is not None
    signal_pid(entry.pid, signal.SIGCONT)
    signal_pid(entry.pid, signal.SIGKILL)
    if wait_gone({entry.pid: broker_marker(entry)}, KILL_TIMEOUT_S):
        raise CliError(f"broker {args.broker} (pid {entry.pid}) is still running")
    print(f"killed broker {args.broker} (pid {entry.pid})", flush=True)
    return EXIT_OK


def cluster_stop(args: argparse.Namespace) -> int:
    """SIGTERM broker N and wait until it exited."""
    data = StateDir(args.data)
    entry = _running_entry(data, args.broker)
    assert entry.pid is not None
    signal_pid(entry.pid, signal.SIGCONT)
    signal_pid(entry.pid, signal.SIGTERM)
    if wait_gone({entry.pid: broker_marker(entry)}, args.timeout):
        raise CliError(f"broker {args.broker} (pid {entry.pid}) did not stop in {args.timeout:g} s")
    print(f"stopped broker {args.broker} (pid {entry.pid})", flush=True)
    return EXIT_OK


def cluster_start(args: argparse.Namespace) -> int:
    """Starts broker N of a running `up` again, detached; waits until it registered."""
    data = StateDir(args.data)
    pid = 0

    def spawn(state: ClusterState) -> None:
        nonlocal pid
        if not process_alive(state.supervisor_pid, UP_MARKER):
            raise CliError(f"no cluster is up in {data.path} (start it with: odradek cluster up)")
        entry = _entry(state, args.broker)
        if process_alive(entry.pid, broker_marker(entry)):
            raise CliError(f"broker {args.broker} is already running (pid {entry.pid})")
        if not entry.properties:
            raise CliError(f"broker {args.broker} was never started by odradek cluster up")
        pid = spawn_detached(entry.properties, data.path / f"broker-{args.broker}.log").pid
        entry.pid = pid

    connect = data.read().zookeeper_connect
    with zookeeper_client(connect, min(args.timeout, 10.0)) as zk:
        if zk is None:
            raise CliError(f"cannot reach ZooKeeper at {connect}")
        # A broker killed a moment ago is still registered until its session expires:
        # only a registration made after this one counts.
        before = registration_of(zk, args.broker)
        state = data.update(spawn)
        _wait_registered(data, state, zk, args.broker, before, args.timeout)
    entry = state.brokers[args.broker]
    print(f"started broker {args.broker} (pid {pid}) on {HOST}:{entry.port}", flush=True)
    return EXIT_OK


def _wait_registered(
    data: StateDir, state: ClusterState, zk: Any, node_id: int, before: int | None, timeout: float
) -> None:
    """Waits until broker `node_id` registered anew (another znode than `before`) and
    accepts connections; a CliError if it exits or the time runs out."""
    entry = state.brokers[node_id]
    log = data.path / f"broker-{node_id}.log"
    deadline = time.monotonic() + timeout
    while not (registration_of(zk, node_id) not in (None, before) and accepts(entry.port)):
        if not process_alive(entry.pid, broker_marker(entry)):
            raise CliError(f"broker {node_id} exited; see {log}")
        if time.monotonic() > deadline:
            raise CliError(f"broker {node_id} did not register in {timeout:g} s; see {log}")
        time.sleep(0.05)


def cluster_down(args: argparse.Namespace) -> int:
    """Asks `up` to stop (SIGTERM) and waits; stops whatever is left by PID."""
    data = StateDir(args.data)
    state = data.read()
    if process_alive(state.supervisor_pid, UP_MARKER):
        assert state.supervisor_pid is not None
        signal_pid(state.supervisor_pid, signal.SIGTERM)
        wait_gone({state.supervisor_pid: UP_MARKER}, args.timeout)
        state = data.read()
    brokers = {b.pid: broker_marker(b) for b in state.brokers.values() if b.pid is not None}
    stop_pids(brokers, STOP_TIMEOUT_S)
    if state.zookeeper_pid is not None:
        stop_pids({state.zookeeper_pid: zookeeper_marker(data)}, STOP_TIMEOUT_S)
    print(f"cluster in {data.path} stopped", flush=True)
    return EXIT_OK
