"""The state of `odradek cluster`: DIR/cluster.json (ports, PIDs, the ZooKeeper chroot
and each broker's properties), read and written under a lock by every subcommand, and
the defaults and timeouts they share."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odradek.cli.common import CliError

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
