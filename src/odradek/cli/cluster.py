"""`odradek cluster up | status | kill | stop | start | down`: a replicated cluster on one
machine, to try replication and failover by hand.

`up` starts a ZooKeeper server and N brokers, each a process of its own on 127.0.0.1
with its data under DIR (default ./cluster-data), prints where they are, and supervises
them until Ctrl-C or SIGTERM: it reports brokers going down and coming back and
controller changes, and at the end stops every process the state file names (brokers
first, then ZooKeeper).

The state file DIR/cluster.json records ports, PIDs, the ZooKeeper chroot and each
broker's properties. The other commands work from another terminal through it: `kill N`
(SIGKILL), `stop N` (SIGTERM) and `status` signal and inspect recorded PIDs; `start N`
spawns broker N again in a session of its own (so it outlives the command) with the same
port and data, and records its PID, so `up` watches and stops it like the others.
`down` asks the `up` process to stop, and stops whatever it left. `up` on the same DIR
again reuses the data and, where they are still free, the same ports.

Processes are spawned by the test runners in odradek.testing (ZooKeeper, Cluster): the
same code the cluster tests use, here as a feature of the command.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odradek.cli.common import EXIT_OK, EXIT_USAGE, CliError, parse_pairs, positive_float
from odradek.cli.output import print_json, print_table
from odradek.testing.cluster import BrokerProcess, Cluster
from odradek.testing.zookeeper import ZooKeeper, free_ports

DEFAULT_DATA = "cluster-data"
DEFAULT_BROKERS = 3
DEFAULT_BASE_PORT = 9092
STATE_FILE = "cluster.json"
LOCK_FILE = "cluster.json.lock"
CHROOT = "/odradek"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
KILL_TIMEOUT_S = 10.0
SUPERVISE_INTERVAL_S = 0.5
# How `up` shows up in /proc/PID/cmdline (arguments are NUL-separated), to tell a live
# `up` from an unrelated process that reused its PID.
UP_MARKER = b"cluster\0up\0"

# kazoo logs every failed connection attempt; `status` against a stopped ZooKeeper
# would print pages of them.
_quiet_kazoo = logging.getLogger(__name__ + ".zookeeper")
_quiet_kazoo.addHandler(logging.NullHandler())
_quiet_kazoo.propagate = False


# -- the command line ------------------------------------------------------------------


def configure(cluster: argparse.ArgumentParser) -> None:
    """The subcommands of `odradek cluster`."""
    actions = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start ZooKeeper and N brokers; Ctrl-C stops them")
    up.add_argument("--brokers", type=_broker_count, metavar="N", help=f"default {DEFAULT_BROKERS}")
    up.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_BASE_PORT,
        metavar="PORT",
        help=f"broker N listens on PORT+N-1 if free (default {DEFAULT_BASE_PORT}; 0: any)",
    )
    up.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a property of every broker (repeatable)",
    )
    up.set_defaults(handler=cluster_up)

    status = actions.add_parser("status", help="brokers alive, controller, PIDs and ports")
    status.add_argument("--output", choices=("table", "json"), default="table")
    status.set_defaults(handler=cluster_status)

    parsers = [up, status]
    for name, help_text, handler in (
        ("kill", "kill -9 broker N", cluster_kill),
        ("stop", "stop broker N cleanly (SIGTERM)", cluster_stop),
        ("start", "start broker N again (same port and data)", cluster_start),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("broker", type=int, metavar="N")
        action.set_defaults(handler=handler)
        parsers.append(action)
    down = actions.add_parser("down", help="stop the cluster of DIR from another terminal")
    down.set_defaults(handler=cluster_down)
    parsers.append(down)

    for parser in parsers:
        parser.add_argument(
            "--data", default=DEFAULT_DATA, metavar="DIR", help=f"default ./{DEFAULT_DATA}"
        )
        parser.add_argument(
            "--timeout",
            type=positive_float,
            default=START_TIMEOUT_S,
            metavar="SECONDS",
            help=f"how long to wait for processes (default {START_TIMEOUT_S:g})",
        )


def _broker_count(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if not 1 <= value <= 32:
        raise argparse.ArgumentTypeError(f"expected 1 to 32 brokers, got {text!r}")
    return value


def _port(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}")
    return value


# -- the state file ----------------------------------------------------------------------


@dataclass
class BrokerEntry:
    """One broker of the state file: its port, last PID and properties."""

    port: int
    pid: int | None = None
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> str:
        return self.properties.get("log.dirs", "")


@dataclass
class ClusterState:
    """What DIR/cluster.json records."""

    chroot: str
    zookeeper_port: int
    brokers: dict[int, BrokerEntry]
    overrides: dict[str, str] = field(default_factory=dict)
    zookeeper_pid: int | None = None
    supervisor_pid: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "supervisor_pid": self.supervisor_pid,
            "chroot": self.chroot,
            "zookeeper": {"port": self.zookeeper_port, "pid": self.zookeeper_pid},
            "brokers": {
                str(i): {"port": b.port, "pid": b.pid, "properties": b.properties}
                for i, b in sorted(self.brokers.items())
            },
            "overrides": self.overrides,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ClusterState:
        brokers = {
            int(i): BrokerEntry(int(b["port"]), b.get("pid"), dict(b.get("properties", {})))
            for i, b in doc["brokers"].items()
        }
        return cls(
            chroot=str(doc["chroot"]),
            zookeeper_port=int(doc["zookeeper"]["port"]),
            brokers=brokers,
            overrides=dict(doc.get("overrides", {})),
            zookeeper_pid=doc["zookeeper"].get("pid"),
            supervisor_pid=doc.get("supervisor_pid"),
        )

    @property
    def zookeeper_connect(self) -> str:
        return f"{HOST}:{self.zookeeper_port}{self.chroot}"

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{HOST}:{b.port}" for _, b in sorted(self.brokers.items()))


class StateDir:
    """DIR: the state file, read and written under an exclusive lock, so `up` and a
    `start N` in another terminal never lose each other's PIDs."""

    def __init__(self, path: str) -> None:
        self.path = Path(path).resolve()
        self.state_path = self.path / STATE_FILE

    def exists(self) -> bool:
        return self.state_path.is_file()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> ClusterState:
        """The recorded state; a CliError when DIR holds none."""
        try:
            doc = json.loads(self.state_path.read_text())
            return ClusterState.from_json(doc)
        except FileNotFoundError:
            raise CliError(
                f"no cluster in {self.path} (start one with: odradek cluster up --data DIR)"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(f"{self.state_path} is not a cluster state file: {exc}") from None

    def write(self, state: ClusterState) -> None:
        # Written aside and renamed: a reader never sees half a file.
        tmp = self.state_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
        os.replace(tmp, self.state_path)

    def update(self, change: Callable[[ClusterState], None]) -> ClusterState:
        """Applies `change` to the recorded state under the lock and writes it back."""
        if not self.exists():
            self.read()  # the "no cluster" error, without creating DIR
        with self.locked():
            state = self.read()
            change(state)
            self.write(state)
            return state


# -- processes by PID ----------------------------------------------------------------------


def process_alive(pid: int | None, marker: bytes) -> bool:
    """Whether `pid` runs and is the process we recorded (its command line contains
    `marker`), not one that reused the PID; a zombie (exited, not yet reaped) is gone."""
    if pid is None or pid <= 0:
        return False
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():  # no procfs: trust the PID
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        cmdline = (proc / "cmdline").read_bytes()
        stat = (proc / "stat").read_text()
    except OSError:
        return False
    # The state letter follows the command name in parentheses, which may hold spaces.
    state = stat.rpartition(")")[2].split()[:1]
    return state != ["Z"] and marker in cmdline


def broker_marker(entry: BrokerEntry) -> bytes:
    return f"log.dirs={entry.data_dir}".encode()


def zookeeper_marker(data: StateDir) -> bytes:
    return str(data.path / "zookeeper" / "zoo.cfg").encode()


def signal_pid(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def wait_gone(
    pids: Mapping[int, bytes], timeout: float, reap: Callable[[], None] = lambda: None
) -> set[int]:
    """Waits until none of `pids` (pid -> marker) runs; returns those still running."""
    deadline = time.monotonic() + timeout
    while True:
        reap()
        left = {pid for pid, marker in pids.items() if process_alive(pid, marker)}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def stop_pids(
    pids: Mapping[int, bytes], timeout: float, reap: Callable[[], None] = lambda: None
) -> None:
    """SIGTERM to every running one of `pids`, SIGKILL to those still there after
    `timeout`."""
    running = {pid: m for pid, m in pids.items() if process_alive(pid, m)}
    for pid in running:
        signal_pid(pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
        signal_pid(pid, signal.SIGTERM)
    left = wait_gone(running, timeout, reap)
    for pid in left:
        signal_pid(pid, signal.SIGKILL)
    wait_gone({pid: running[pid] for pid in left}, KILL_TIMEOUT_S, reap)


def spawn_detached(properties: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Starts `odradek broker` with `properties`, its output appended to `log_path`, in a
    session of its own: no terminal signal reaches it and it outlives its parent."""
    args = [sys.executable, "-m", "odradek", "broker"]
    for key, value in properties.items():
        args += ["--set", f"{key}={value}"]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


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


# -- ZooKeeper reads ---------------------------------------------------------------------


@contextlib.contextmanager
def zookeeper_client(connect: str, timeout: float) -> Iterator[Any | None]:
    """A kazoo client on `connect` (chroot included), or None when no session opens."""
    from kazoo.client import KazooClient

    client = KazooClient(hosts=connect, timeout=timeout, logger=_quiet_kazoo)
    try:
        client.start(timeout=timeout)
    except Exception:  # kazoo's handler-specific timeout class
        client.close()
        yield None
        return
    try:
        yield client
    finally:
        client.stop()
        client.close()


def controller_of(zk: Any) -> int | None:
    """The broker holding /controller, or None."""
    try:
        data, _ = zk.get("/controller")
        return int(json.loads(data)["brokerid"])
    except Exception:  # no node, or mid-election
        return None


def registered_brokers(zk: Any) -> set[int]:
    try:
        return {int(c) for c in zk.get_children("/brokers/ids")}
    except Exception:  # no brokers yet
        return set()


def registration_of(zk: Any, node_id: int) -> int | None:
    """The czxid (creating transaction) of /brokers/ids/N, which tells one registration
    from the next; None while the broker is not registered."""
    try:
        stat = zk.exists(f"/brokers/ids/{node_id}")
    except Exception:  # connection trouble: as good as not known yet
        return None
    return int(stat.czxid) if stat is not None else None


def ensure_chroot(connect_root: str, chroot: str, timeout: float) -> None:
    """Creates the chroot znode (brokers would, racing each other and warning meanwhile)."""
    with zookeeper_client(connect_root, timeout) as zk:
        if zk is None:
            raise CliError(f"ZooKeeper at {connect_root} opened no session")
        zk.ensure_path(chroot)


def accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def port_free(port: int) -> bool:
    """Whether nothing listens on HOST:port (SO_REUSEADDR, as a listener binds, so a
    closed connection of the last run in TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


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


def cluster_status(args: argparse.Namespace) -> int:
    """Per broker: address, PID, process running, registered in ZooKeeper; the controller."""
    data = StateDir(args.data)
    state = data.read()
    zk_alive = process_alive(state.zookeeper_pid, zookeeper_marker(data))
    registered: set[int] = set()
    controller: int | None = None
    if zk_alive:
        with zookeeper_client(state.zookeeper_connect, min(args.timeout, 5.0)) as zk:
            if zk is not None:
                registered = registered_brokers(zk)
                controller = controller_of(zk)
    brokers = [_broker_doc(i, b, registered, controller) for i, b in sorted(state.brokers.items())]
    doc = {
        "data": str(data.path),
        "up": process_alive(state.supervisor_pid, UP_MARKER),
        "up_pid": state.supervisor_pid,
        "bootstrap_servers": state.bootstrap_servers,
        "zookeeper": {
            "connect": state.zookeeper_connect,
            "pid": state.zookeeper_pid,
            "running": zk_alive,
        },
        "controller": controller,
        "brokers": brokers,
    }
    if args.output == "json":
        print_json(doc)
        return EXIT_OK
    _print_status(doc)
    return EXIT_OK


def _broker_doc(
    node_id: int, entry: BrokerEntry, registered: set[int], controller: int | None
) -> dict[str, Any]:
    return {
        "id": node_id,
        "address": f"{HOST}:{entry.port}",
        "pid": entry.pid,
        "running": process_alive(entry.pid, broker_marker(entry)),
        "registered": node_id in registered,
        "controller": node_id == controller,
    }


def _print_status(doc: Mapping[str, Any]) -> None:
    zk = doc["zookeeper"]
    up = f"up (odradek cluster up, pid {doc['up_pid']})" if doc["up"] else "not up"
    print(f"cluster in {doc['data']}: {up}")
    print(f"zookeeper {zk['connect']}: {'running' if zk['running'] else 'down'}")
    rows = [
        (
            b["id"],
            b["address"],
            b["pid"],
            "running" if b["running"] else "down",
            "yes" if b["registered"] else "no",
            "*" if b["controller"] else "",
        )
        for b in doc["brokers"]
    ]
    print_table(("broker", "address", "pid", "process", "registered", "controller"), rows)
