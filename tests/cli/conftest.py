"""Fixtures of the command-line tests: one broker subprocess per test module and a `cli`
runner that starts `python -m odradek ...` against it (bounded, killed by PID)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from helpers import REPO_ROOT, BrokerProcess, ck_forget_admin

CLI_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Result:
    """A finished CLI run: exit code and decoded output."""

    code: int
    out: str
    err: str


def cli_env(bootstrap: str | None) -> dict[str, str]:
    """The environment of a CLI run: this checkout's sources, the broker address."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("ODRADEK_BOOTSTRAP", None)
    if bootstrap is not None:
        env["ODRADEK_BOOTSTRAP"] = bootstrap
    return env


def run_cli(
    *args: str,
    bootstrap: str | None = None,
    stdin: bytes | None = None,
    timeout: float = CLI_TIMEOUT_S,
) -> Result:
    """Runs `python -m odradek ARGS` (bounded; killed by PID if it overruns)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "odradek", *args],
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(bootstrap),
        cwd=str(REPO_ROOT),
    )
    try:
        out, err = proc.communicate(input=stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"odradek {' '.join(args)} did not finish within {timeout}s") from None
    finally:
        stop_pid(proc)
    return Result(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def stop_pid(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process still running (by its PID) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def spawn_cli(*args: str, bootstrap: str) -> subprocess.Popen[bytes]:
    """Starts `python -m odradek ARGS` in the background (the test stops it by PID)."""
    return subprocess.Popen(
        [sys.executable, "-m", "odradek", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(bootstrap),
        cwd=str(REPO_ROOT),
    )


@pytest.fixture(scope="module")
def broker_proc() -> Iterator[BrokerProcess]:
    """A broker subprocess on 127.0.0.1, shared by the tests of one module."""
    with BrokerProcess(config={"num.partitions": 3}) as proc:
        try:
            yield proc
        finally:
            ck_forget_admin(proc.bootstrap_servers)


@pytest.fixture
def cli(broker_proc: BrokerProcess) -> Callable[..., Result]:
    """`cli("topic", "list", ...)` runs the command against the module's broker."""

    def run(*args: str, stdin: bytes | None = None, timeout: float = CLI_TIMEOUT_S) -> Result:
        return run_cli(*args, bootstrap=broker_proc.bootstrap_servers, stdin=stdin, timeout=timeout)

    return run


def assert_clean_failure(result: Result, code: int) -> None:
    """A failure: the expected exit code, no traceback, a one-line `odradek:` message."""
    assert result.code == code, result
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    if code == 1:
        assert len(lines) == 1 and lines[0].startswith("odradek: "), result.err


KCAT = shutil.which("kcat") or "/usr/bin/kcat"


def run_kcat(bootstrap: str, *args: str, stdin: bytes | None = None) -> str:
    """Runs `kcat -b BOOTSTRAP ARGS` (bounded), asserts exit 0, returns its stdout."""
    result = subprocess.run(
        [KCAT, "-b", bootstrap, *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, f"kcat {' '.join(args)} exited {result.returncode}: {stderr}"
    return result.stdout.decode(errors="replace")
