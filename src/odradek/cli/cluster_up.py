"""`odradek cluster up`: starts ZooKeeper and the brokers (with odradek.testing's process
runners, detached), prints where they are, supervises them until Ctrl-C or SIGTERM and
then stops every process the state file names, brokers first."""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

from odradek.cli.cluster_processes import (
    broker_marker,
    controller_of,
    ensure_chroot,
    port_free,
    process_alive,
    spawn_detached,
    stop_pids,
    zookeeper_marker,
)
from odradek.cli.cluster_state import (
    CHROOT,
    DEFAULT_BROKERS,
    DEFAULT_DATA,
    HOST,
    STOP_TIMEOUT_S,
    SUPERVISE_INTERVAL_S,
    UP_MARKER,
    BrokerEntry,
    ClusterState,
    StateDir,
)
from odradek.cli.common import EXIT_OK, EXIT_USAGE, CliError, parse_pairs
from odradek.testing.cluster import BrokerProcess, Cluster
from odradek.testing.zookeeper import ZooKeeper, free_ports

# -- up ----------------------------------------------------------------------------------


def _pick_ports(wanted: list[int]) -> list[int]:
    """`wanted` where free (0 or taken: a free port instead), all distinct."""
    chosen: list[int] = []
    for port in wanted:
        if 0 < port <= 65535 and port not in chosen and port_free(port):
            chosen.append(port)
            continue
        while (spare := free_ports(1)[0]) in chosen or spare in wanted:
            pass
        chosen.append(spare)
    return chosen


class DetachedBroker(BrokerProcess):
    """A broker of `up`, detached: Ctrl-C reaches only `up`, which then stops the
    brokers one way and in order (brokers before ZooKeeper)."""

    def spawn(self) -> None:
        self.process = spawn_detached(self.properties, self.log_path)


class LocalCluster(Cluster):
    """A Cluster with the addresses and data of a state file: fixed broker ports and
    ZooKeeper chroot, data in DIR (kept), and its ZooKeeper given."""

    def __init__(self, data: StateDir, state: ClusterState, zookeeper: ZooKeeper) -> None:
        super().__init__(
            len(state.brokers), config=state.overrides, zookeeper=zookeeper, data_dir=str(data.path)
        )
        self.chroot = state.chroot
        self.brokers = {
            i: DetachedBroker(i, b.port, data.path / f"broker-{i}", {})
            for i, b in sorted(state.brokers.items())
        }

    def reap(self) -> None:
        """Collects the exit status of brokers this process spawned and that exited."""
        for broker in self.brokers.values():
            if broker.process is not None:
                broker.process.poll()


def _plan(data: StateDir, args: argparse.Namespace) -> ClusterState:
    """The state `up` starts from: the recorded one (ports re-checked) or a new one."""
    overrides = parse_pairs(args.set, "--set")
    if not data.exists():
        count = args.brokers or DEFAULT_BROKERS
        base = args.port
        wanted = [base + i if base else 0 for i in range(count)]
        ports = _pick_ports([0, *wanted])
        brokers = {i + 1: BrokerEntry(p) for i, p in enumerate(ports[1:])}
        return ClusterState(CHROOT, ports[0], brokers, overrides)
    state = data.read()
    if args.brokers is not None and args.brokers != len(state.brokers):
        raise CliError(
            f"{data.path} holds a cluster of {len(state.brokers)} brokers, not {args.brokers}; "
            "use another --data",
            EXIT_USAGE,
        )
    _refuse_running(data, state)
    recorded = [state.zookeeper_port, *(b.port for _, b in sorted(state.brokers.items()))]
    ports = _pick_ports(recorded)
    state.zookeeper_port = ports[0]
    for (_, entry), port in zip(sorted(state.brokers.items()), ports[1:], strict=True):
        entry.port = port
    state.overrides.update(overrides)
    return state


def _refuse_running(data: StateDir, state: ClusterState) -> None:
    """A CliError when processes of an earlier `up` on DIR still run."""
    if process_alive(state.supervisor_pid, UP_MARKER):
        raise CliError(f"a cluster is already up in {data.path} (pid {state.supervisor_pid})")
    left = [
        f"broker {i}" for i, b in state.brokers.items() if process_alive(b.pid, broker_marker(b))
    ]
    if process_alive(state.zookeeper_pid, zookeeper_marker(data)):
        left.append("ZooKeeper")
    if left:
        raise CliError(
            f"{', '.join(left)} of an earlier run still running; "
            f"stop them with: odradek cluster down --data {data.path}"
        )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cluster_up(args: argparse.Namespace) -> int:
    """Starts the cluster, prints its addresses, supervises until interrupted, stops it."""
    data = StateDir(args.data)
    with data.locked():
        state = _plan(data, args)
        state.supervisor_pid = os.getpid()
        data.write(state)
    # SIGTERM and a closed terminal stop the cluster the way Ctrl-C does.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    zookeeper = ZooKeeper(data.path / "zookeeper", port=state.zookeeper_port)
    cluster: LocalCluster | None = None
    try:
        cluster = _start(data, state, zookeeper, args.timeout)
        _announce(data, data.read(), zookeeper)
        _supervise(data, cluster)
    except KeyboardInterrupt:
        pass
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # the stop itself is not interrupted
        _shut_down(data, cluster, zookeeper)
    return EXIT_OK


def _start(
    data: StateDir, state: ClusterState, zookeeper: ZooKeeper, timeout: float
) -> LocalCluster:
    print(f"starting ZooKeeper and {len(state.brokers)} brokers in {data.path} ...", flush=True)
    try:
        zookeeper.start(timeout)
    except RuntimeError as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    data.update(lambda s: setattr(s, "zookeeper_pid", zookeeper.pid))
    ensure_chroot(zookeeper.connect_string, state.chroot, timeout)
    cluster = LocalCluster(data, state, zookeeper)
    try:
        cluster.start(timeout)
    except AssertionError as exc:
        raise CliError(f"{str(exc).splitlines()[0]} (logs: {data.path})") from None
    finally:
        _record_brokers(data, cluster)
    return cluster


def _record_brokers(data: StateDir, cluster: LocalCluster) -> None:
    def record(state: ClusterState) -> None:
        for i, broker in cluster.brokers.items():
            state.brokers[i].pid = broker.pid
            state.brokers[i].properties = dict(broker.properties)

    data.update(record)


def _announce(data: StateDir, state: ClusterState, zookeeper: ZooKeeper) -> None:
    """What the user needs: addresses, PIDs, logs, and how to reach the cluster."""
    lines = []
    for i, b in sorted(state.brokers.items()):
        log = data.path / f"broker-{i}.log"
        lines.append(f"  broker {i}   {HOST}:{b.port}   pid {b.pid}   log {log}")
    data_option = "" if data.path == Path(DEFAULT_DATA).resolve() else f" --data {data.path}"
    lines += [
        f"  zookeeper  {zookeeper.connect_string}   pid {zookeeper.pid}   log {zookeeper.log_path}",
        f"bootstrap servers: {state.bootstrap_servers}",
        f"zookeeper.connect: {state.zookeeper_connect}",
        f"  export ODRADEK_BOOTSTRAP={state.bootstrap_servers}",
        "Ctrl-C stops the cluster. From another terminal: "
        f"odradek cluster status|kill N|stop N|start N{data_option}",
    ]
    print("\n".join(lines), flush=True)


def _supervise(data: StateDir, cluster: LocalCluster) -> None:
    """Reports brokers going down and coming back and controller changes; returns only
    by KeyboardInterrupt (Ctrl-C, SIGTERM, SIGHUP)."""
    seen: dict[int, tuple[int | None, bool]] = {}
    controller: int | None = None
    while True:
        cluster.reap()
        _report_brokers(data.read(), seen, cluster)
        current = controller_of(cluster.zk)
        if current is not None and current != controller:
            print(f"controller: broker {current}", flush=True)
            controller = current
        time.sleep(SUPERVISE_INTERVAL_S)


def _report_brokers(
    state: ClusterState, seen: dict[int, tuple[int | None, bool]], cluster: LocalCluster
) -> None:
    """Prints what changed since `seen` (broker -> (pid, running)) and updates it. A new
    PID means a restart, even one quicker than a poll."""
    for i, entry in sorted(state.brokers.items()):
        now = process_alive(entry.pid, broker_marker(entry))
        if i in seen:
            old_pid, was = seen[i]
            if was and (entry.pid != old_pid or not now):
                print(_down(i, old_pid, cluster), flush=True)
            if now and (entry.pid != old_pid or not was):
                print(f"broker {i} is up (pid {entry.pid})", flush=True)
        seen[i] = (entry.pid, now)


def _down(node_id: int, pid: int | None, cluster: LocalCluster) -> str:
    """The "broker N is down" line, with how it ended when `up` spawned it (so knows)."""
    process = cluster.brokers[node_id].process
    how = ""
    if process is not None and process.pid == pid and process.returncode is not None:
        code = process.returncode
        how = f", killed by {signal.Signals(-code).name}" if code < 0 else f", exit code {code}"
    return f"broker {node_id} is down (pid {pid}{how})"


def _shut_down(data: StateDir, cluster: LocalCluster | None, zookeeper: ZooKeeper) -> None:
    """Stops every broker the state file names, then ZooKeeper; records that `up` ended."""
    print("stopping the cluster ...", flush=True)
    state = data.read()
    reap = cluster.reap if cluster is not None else (lambda: None)
    # One at a time, as a rolling stop: each broker hands its partitions to brokers
    # still running instead of to ones that are stopping too.
    for entry in state.brokers.values():
        if entry.pid is not None:
            stop_pids({entry.pid: broker_marker(entry)}, STOP_TIMEOUT_S, reap)
    if cluster is not None:
        cluster.stop()  # reaps the brokers it spawned, closes its ZooKeeper client
    zookeeper.stop()
    if state.zookeeper_pid is not None:  # a ZooKeeper whose start did not complete
        stop_pids({state.zookeeper_pid: zookeeper_marker(data)}, STOP_TIMEOUT_S)
    data.update(lambda s: setattr(s, "supervisor_pid", None))
    print(f"cluster stopped; data kept in {data.path}", flush=True)
