"""Run an odradek broker as a child process, and read process CPU and memory from /proc.

Everything here is bounded: starting waits at most `start_timeout` seconds for the
"ready" log line, stopping sends SIGTERM and then SIGKILL after `term_timeout` seconds.
The broker only ever listens on 127.0.0.1.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
READY_RE = re.compile(r"\bready\b", re.IGNORECASE)
SELF_REPORTED_MS_RE = re.compile(r"\bin (\d+(?:\.\d+)?) ?ms\b")
REPO_ROOT = Path(__file__).resolve().parent.parent


class BrokerError(RuntimeError):
    """The broker did not start, or died; carries the tail of its log."""


def clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds a process has used so far (all threads), or None."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            # the command name may contain spaces and parentheses: split after the last ")"
            fields = file.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / clock_ticks()


def rss_mib(pid: int | None) -> float | None:
    """Resident set size of a process in MiB, or None."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as file:
            for line in file:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def accepts_connections(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


def filesystem_type(path: str | Path) -> str | None:
    """Type of the filesystem holding `path` (the longest matching mount point)."""
    target = os.path.realpath(path)
    best, kind = "", None
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as file:
            for line in file:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mount = parts[1]
                inside = target == mount or target.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best):
                    best, kind = mount, parts[2]
    except OSError:
        return None
    return kind


def _load_libc() -> object | None:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except Exception:
        return None


_LIBC = _load_libc()  # loaded in the parent: nothing is imported between fork and exec
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the benchmark process dies (Linux only)."""
    if _LIBC is not None:
        with contextlib.suppress(Exception):
            _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))  # type: ignore[attr-defined]


class BrokerProcess:
    """One `python -m odradek broker` child on 127.0.0.1:`port` with data in `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        port: int | None = None,
        settings: Sequence[str] = (),
        python: str = sys.executable,
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = port or free_port()
        self.settings = list(settings)
        self.python = python
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s: float | None = None
        self.accept_s: float | None = None
        self.self_reported_ms: float | None = None
        self.ready_line: str | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=40)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self._t0 = 0.0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        cmd = [self.python, "-m", "odradek", "broker"]
        cmd += ["--set", f"listeners=PLAINTEXT://{LOOPBACK}:{self.port}"]
        cmd += ["--set", f"log.dirs={self.data_dir}"]
        for setting in self.settings:
            cmd += ["--set", setting]
        return cmd

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(list(self._tail)[-lines:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _read_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with open(self.log_path, "ab") as log:
            for raw in iter(self.proc.stdout.readline, b""):
                seen = time.perf_counter()
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", errors="replace").rstrip()
                self._tail.append(line)
                if not self._ready.is_set() and READY_RE.search(line):
                    self.ready_s = seen - self._t0
                    self.ready_line = line
                    found = SELF_REPORTED_MS_RE.search(line)
                    if found:
                        self.self_reported_ms = float(found.group(1))
                    self._ready.set()

    def start(self, timeout: float = 20.0) -> float:
        """Starts the broker and waits for its "ready" line; returns seconds from spawn."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command(),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        deadline = self._t0 + timeout
        while not self._ready.wait(0.01):
            if self.proc.poll() is not None:
                self._reader.join(timeout=2)
                raise BrokerError(
                    f"broker exited with code {self.proc.returncode} before it was ready; "
                    f"log tail:\n{self.log_tail()}"
                )
            if time.perf_counter() > deadline:
                raise BrokerError(
                    f"broker not ready after {timeout:.0f} s; log tail:\n{self.log_tail()}"
                )
        while not accepts_connections(self.port, timeout=0.5):
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                raise BrokerError(
                    f"broker logged ready but 127.0.0.1:{self.port} refuses connections; "
                    f"log tail:\n{self.log_tail()}"
                )
            time.sleep(0.005)
        self.accept_s = time.perf_counter() - self._t0
        assert self.ready_s is not None
        return self.ready_s

    def stop(self, term_timeout: float = 15.0) -> dict[str, object]:
        """SIGTERM, wait up to `term_timeout` s, then SIGKILL. Returns how it went."""
        out: dict[str, object] = {"stopped": False}
        if self.proc is None:
            return out
        proc = self.proc
        t0 = time.perf_counter()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=term_timeout)
                out["stop_s"] = round(time.perf_counter() - t0, 3)
                out["killed"] = False
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                out["killed"] = True
        else:
            out["already_exited"] = True
        out["stopped"] = True
        out["returncode"] = proc.returncode
        if self._reader is not None:
            self._reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
        return out


@contextlib.contextmanager
def given_or_started(bootstrap: str | None, prefix: str) -> Iterator[str]:
    """`bootstrap` when given (a running broker), else the address of a broker started
    for the run, with its data in a new temporary dir named `prefix`..., stopped at the
    end."""
    if bootstrap is not None:
        yield bootstrap
        return
    work = Path(tempfile.mkdtemp(prefix=prefix))
    broker = BrokerProcess(work / "data", work / "broker.log")
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the finally blocks that stop the broker


def warm_page_cache(directory: Path, mib: int) -> float:
    """Writes `mib` MiB to a file in `directory` and deletes it unwritten to disk; returns
    the seconds it took.

    On a machine whose memory has never held data (a fresh virtual machine or container),
    the first page-cache page placed in each piece of memory costs several times what a
    page placed in reused memory costs: measured here, 300 MB appended to new files took
    0.8 s of CPU into untouched memory and 0.07 s once that memory had been used and
    freed. A broker writes everything it receives, so a benchmark on such a machine
    measures the machine's first touch of its memory rather than the broker, and a
    replicated cluster, which writes every byte once per replica, pays it three times. A
    server that has run a while has touched its memory; this brings the machine there
    before a sitting."""
    started = time.monotonic()
    path = directory / "page-cache-warm-up"
    chunk = b"\0" * (1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for i in range(mib):
            os.pwrite(fd, chunk, i << 20)
    finally:
        os.close(fd)
        path.unlink()
    return time.monotonic() - started


def read_from_start(
    config: dict[str, Any], topic: str, partitions: int, records: int, wait_s: float
) -> float:
    """Seconds for a confluent-kafka consumer with `config` (bootstrap and any settings;
    a fresh group id is added) to read `records` from the start of `topic`'s
    `partitions`; RuntimeError when it cannot within `wait_s` or a read fails."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {**config, "group.id": f"bench-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = 0
    started = time.perf_counter()
    try:
        while got < records:
            if time.perf_counter() - started > wait_s:
                raise RuntimeError(f"read {got} of {records} records within {wait_s}s")
            for message in consumer.consume(10000, 0.5):
                error = message.error()
                if error is None:
                    got += 1
                elif error.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(str(error))
    finally:
        consumer.close()
    return time.perf_counter() - started


def stop_cleanly_on_sigterm() -> None:
    """Makes SIGTERM unwind like Ctrl-C, so a benchmark's `finally` blocks stop its broker."""
    signal.signal(signal.SIGTERM, _interrupt)


def git_rev() -> str | None:
    """The short commit of this checkout; None outside a git checkout (read-only)."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return rev.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
