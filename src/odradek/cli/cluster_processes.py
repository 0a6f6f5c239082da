"""What the `odradek cluster` subcommands do to processes and ZooKeeper: tell a
recorded PID still running (and still ours) from one reused, signal and stop PIDs,
spawn a detached broker, read the controller and broker registrations, probe ports."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from odradek.cli.cluster_state import (
    HOST,
    KILL_TIMEOUT_S,
    BrokerEntry,
    StateDir,
)
from odradek.cli.common import CliError

# kazoo logs every failed connection attempt; `status` against a stopped ZooKeeper
# would print pages of them.
_quiet_kazoo = logging.getLogger("odradek.cli.cluster.zookeeper")
_quiet_kazoo.addHandler(logging.NullHandler())
_quiet_kazoo.propagate = False


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
