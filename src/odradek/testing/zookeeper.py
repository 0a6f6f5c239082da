"""Real ZooKeeper servers for tests: one server (`ZooKeeper`) or a quorum (`ZooKeeperEnsemble`).

Each server is a Java process from Debian's `zookeeper` package, listening on 127.0.0.1
on a free port, with its own data directory, its own `zoo.cfg` and its log in
`<data dir>/zookeeper.log`. Ticks are short (500 ms), so a session of 2 s is allowed
and an expired session's ephemeral znodes go away within seconds. Faults are plain
signals to the process: `stop` (SIGTERM), `kill` (SIGKILL), `pause`/`resume`
(SIGSTOP/SIGCONT, a long GC pause or a frozen VM as the clients see it).

`start()` returns once a kazoo client has opened a session, so the server serves.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

__all__ = [
    "QuorumPeer",
    "ZooKeeper",
    "ZooKeeperEnsemble",
    "free_ports",
    "zookeeper_available",
]

HOST = "127.0.0.1"
JAVA_DIR = Path("/usr/share/java")
# The jar's manifest lists the libraries it needs, so it alone is the class path;
# slf4j-simple makes the server log to stderr, which goes to the log file.
ZOOKEEPER_JAR = JAVA_DIR / "zookeeper.jar"
SLF4J_SIMPLE_JAR = JAVA_DIR / "slf4j-simple.jar"
INSTALL_HINT = "run scripts/install-system-deps.sh (Debian's zookeeper package and a JRE)"

STANDALONE_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
QUORUM_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
# A small heap, the serial collector and the C1 compiler only: start-up is ~0.15 s
# faster and three servers of an ensemble fit next to the broker under test.
# -UsePerfData: no hsperfdata files in /tmp.
JVM_FLAGS = (
    "-Xmx128m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.net.preferIPv4Stack=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss.SSS",
)

DEFAULT_TICK_MS = 500
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
KILL_TIMEOUT = 5.0
POLL_INTERVAL = 0.05

_probe_log = logging.getLogger(__name__ + ".probe")
# Readiness probes connect while the server is still coming up; kazoo's warnings about
# those attempts are noise. Handlers further up (pytest's capture) still see them.
_probe_log.addHandler(logging.NullHandler())


def zookeeper_available() -> bool:
    """Whether a ZooKeeper server can be started here: java on PATH and the jars present."""
    return shutil.which("java") is not None and ZOOKEEPER_JAR.is_file()


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago (bound to port 0)."""
    sockets = []
    try:
        # All held open at once, so the kernel hands out distinct ports.
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass(frozen=True)
class QuorumPeer:
    """One `server.N` line of an ensemble: its id and its quorum and election ports."""

    server_id: int
    quorum_port: int
    election_port: int

    def config_line(self) -> str:
        return f"server.{self.server_id}={HOST}:{self.quorum_port}:{self.election_port}"


def _config_text(data_dir: Path, port: int, tick_ms: int, peers: Sequence[QuorumPeer]) -> str:
    lines = [
        f"tickTime={tick_ms}",
        f"dataDir={data_dir}",
        f"clientPort={port}",
        f"clientPortAddress={HOST}",
        # Two ticks is the floor ZooKeeper allows; 2000 ms sessions need it at 1000 or less.
        f"minSessionTimeout={2 * tick_ms}",
        "maxSessionTimeout=60000",
        "initLimit=10",
        "syncLimit=5",
        # The admin server would take port 8080 and is not needed.
        "admin.enableServer=false",
        # srvr tells whether the server serves and in which mode.
        "4lw.commands.whitelist=*",
        # Test servers die by signals, never by power loss: the page cache keeps every
        # write, and an fsync per transaction only slows the tests down.
        "forceSync=no",
    ]
    lines.extend(peer.config_line() for peer in peers)
    return "\n".join(lines) + "\n"


def _four_letter_word(port: int, word: str, timeout: float = 2.0) -> str:
    """The server's answer to a four-letter command, or "" when it does not answer."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while chunk := s.recv(4096):
                chunks.append(chunk)
    except OSError:
        return ""
    return b"".join(chunks).decode(errors="replace")


def _kazoo_session(connect_string: str, timeout: float) -> bool:
    """Whether a kazoo client opens a session within `timeout` seconds."""
    from kazoo.client import KazooClient

    client = KazooClient(hosts=connect_string, timeout=10.0, logger=_probe_log)
    try:
        client.start(timeout=max(timeout, 0.1))
    except Exception:  # kazoo's handler-specific timeout class
        return False
    finally:
        client.stop()
        client.close()
    return True


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _directory(
    owner: object, given: str | os.PathLike[str] | None, prefix: str
) -> tuple[Path, Callable[[], object] | None]:
    """A given directory (kept), or a new temporary one removed when `owner` is
    collected or its cleanup is called."""
    if given is not None:
        return Path(given).resolve(), None
    path = Path(tempfile.mkdtemp(prefix=prefix))
    return path, weakref.finalize(owner, shutil.rmtree, path, ignore_errors=True)


class ZooKeeper:
    """One ZooKeeper server process on 127.0.0.1 (standalone, or one node of an ensemble).

    `data_dir` defaults to a new temporary directory, removed by `close()` (or when the
    object is collected); a given directory is kept. The port is chosen once, so
    `restart()` comes back on the same address with the same data.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        tick_ms: int = DEFAULT_TICK_MS,
        server_id: int | None = None,
        peers: Sequence[QuorumPeer] = (),
    ) -> None:
        self.data_dir, self._cleanup = _directory(self, data_dir, "odradek-zk-")
        if peers and server_id is None:
            raise ValueError("a node of an ensemble needs its server_id")
        self.port = port if port is not None else free_ports(1)[0]
        self.tick_ms = tick_ms
        self.server_id = server_id
        self.peers = tuple(peers)
        self.config_path = self.data_dir / "zoo.cfg"
        self.log_path = self.data_dir / "zookeeper.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def connect_string(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (paused included), else None."""
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        """Start the server and return once it serves clients."""
        self.spawn()
        self.wait_ready(timeout)
        return self

    def spawn(self) -> None:
        """Start the process without waiting (an ensemble starts all its nodes at once)."""
        if self.running:
            raise RuntimeError(f"ZooKeeper on {self.connect_string} is already running")
        if not zookeeper_available():
            raise RuntimeError(
                f"ZooKeeper is not installed (java on PATH and {ZOOKEEPER_JAR}): {INSTALL_HINT}"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            _config_text(self.data_dir, self.port, self.tick_ms, self.peers)
        )
        if self.peers:
            (self.data_dir / "myid").write_text(f"{self.server_id}\n")
        with self.log_path.open("ab") as log:
            self._process = self._popen(log)
        _live.add(self._process)

    def _popen(self, log: IO[bytes]) -> subprocess.Popen[bytes]:
        class_path = [str(ZOOKEEPER_JAR)]
        if SLF4J_SIMPLE_JAR.is_file():
            class_path.append(str(SLF4J_SIMPLE_JAR))
        main = QUORUM_MAIN if self.peers else STANDALONE_MAIN
        command = ["java", *JVM_FLAGS, "-cp", ":".join(class_path), main, str(self.config_path)]
        # A session of its own: a Ctrl-C meant for the tests does not reach the server
        # first, and the server is stopped the way the test says.
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the server serves (in a quorum: has joined one) and a session opens."""
        deadline = time.monotonic() + timeout
        while self.mode() is None:
            self._check_alive()
            if time.monotonic() >= deadline:
                self._fail_start(f"did not serve within {timeout:.0f} s")
            time.sleep(POLL_INTERVAL)
        if not _kazoo_session(self.connect_string, deadline - time.monotonic()):
            self._fail_start(f"accepted no kazoo session within {timeout:.0f} s")

    def _check_alive(self) -> None:
        if self._process is None or self._process.poll() is not None:
            code = None if self._process is None else self._process.returncode
            raise RuntimeError(
                f"ZooKeeper on {self.connect_string} exited ({code}); "
                f"{self.log_path}:\n{_tail(self.log_path)}"
            )

    def _fail_start(self, why: str) -> None:
        self.kill()
        raise RuntimeError(
            f"ZooKeeper on {self.connect_string} {why}; {self.log_path}:\n{_tail(self.log_path)}"
        )

    def mode(self) -> str | None:
        """ "standalone", "leader" or "follower" while serving; None otherwise."""
        for line in _four_letter_word(self.port, "srvr").splitlines():
            if line.startswith("Mode:"):
                return line.partition(":")[2].strip()
        return None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`; data is kept."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        self.resume()  # a stopped process would not act on SIGTERM
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        _live.discard(process)

    def kill(self) -> None:
        """SIGKILL: the server vanishes as in a crash (its sessions live on until expiry)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait(KILL_TIMEOUT)
        _live.discard(process)

    def pause(self) -> None:
        """SIGSTOP: the process holds its sockets but answers nothing."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause()` (harmless otherwise)."""
        self._signal(signal.SIGCONT)

    def _signal(self, signum: signal.Signals) -> None:
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signum)

    def restart(self, timeout: float = START_TIMEOUT) -> Self:
        """Stop (if running) and start again on the same port with the same data."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop the server and remove its data directory if it is a temporary one."""
        self.stop()
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> Self:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ZooKeeper({self.connect_string}, pid={self.pid}, data_dir={self.data_dir})"


class ZooKeeperEnsemble:
    """`n` ZooKeeper servers forming one quorum on 127.0.0.1.

    Nodes are addressed by index `i` (0-based; server id `i + 1`). `base_dir` defaults
    to a temporary directory; node `i` keeps its data in `<base_dir>/zk<i + 1>`.
    """

    def __init__(
        self,
        n: int = 3,
        base_dir: str | os.PathLike[str] | None = None,
        *,
        tick_ms: int = DEFAULT_TICK_MS,
    ) -> None:
        if n < 1:
            raise ValueError("an ensemble needs at least one server")
        self.base_dir, self._cleanup = _directory(self, base_dir, "odradek-zk-ensemble-")
        ports = free_ports(3 * n)
        self.peers = [QuorumPeer(i + 1, ports[n + 2 * i], ports[n + 2 * i + 1]) for i in range(n)]
        self.nodes = [
            ZooKeeper(
                self.base_dir / f"zk{i + 1}",
                port=ports[i],
                tick_ms=tick_ms,
                server_id=i + 1,
                peers=self.peers,
            )
            for i in range(n)
        ]

    @property
    def connect_string(self) -> str:
        return ",".join(node.connect_string for node in self.nodes)

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        """Start every node at once (leader election needs a majority) and wait for all."""
        deadline = time.monotonic() + timeout
        try:
            for node in self.nodes:
                node.spawn()
            for node in self.nodes:
                node.wait_ready(max(deadline - time.monotonic(), 0.1))
        except BaseException:
            self.stop()
            raise
        return self

    def leader(self) -> int | None:
        """The index of the node that leads now, or None while there is no leader."""
        for i, node in enumerate(self.nodes):
            if node.running and node.mode() == "leader":
                return i
        return None

    def kill(self, i: int) -> None:
        self.nodes[i].kill()

    def pause(self, i: int) -> None:
        self.nodes[i].pause()

    def resume(self, i: int) -> None:
        self.nodes[i].resume()

    def restart(self, i: int, timeout: float = START_TIMEOUT) -> None:
        """Restart node `i`; it returns once it has rejoined the quorum."""
        self.nodes[i].restart(timeout)

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL); data is kept."""
        for node in self.nodes:
            node.stop()

    def close(self) -> None:
        """Stop every node and remove the data if it is in a temporary directory."""
        for node in self.nodes:
            node.close()
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# Servers still running when the interpreter exits (a test that failed before its
# cleanup, or dropped its ZooKeeper object) are killed, so no Java process outlives
# the test run.
_live: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_live):
        if process.poll() is None:
            process.kill()
            process.wait(KILL_TIMEOUT)
