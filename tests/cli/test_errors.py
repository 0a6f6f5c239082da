"""User mistakes and an absent broker give one-line errors and exit codes, no traceback."""

from __future__ import annotations

import time

import pytest

from helpers import free_port
from odradek.cli.main import main

from .conftest import assert_clean_failure, run_cli


def test_unreachable_broker_fails_fast_with_one_line() -> None:
    """A closed port: "cannot reach a broker at ..." on one line, exit 1, within the timeout."""
    address = f"127.0.0.1:{free_port()}"
    for command in (["topic", "list"], ["consume", "t", "--exit-at-end"]):
        started = time.monotonic()
        result = run_cli(*command, "--bootstrap-server", address, "--timeout", "1", timeout=20)
        assert time.monotonic() - started < 10
        assert_clean_failure(result, 1)
        assert result.err.strip() == f"odradek: cannot reach a broker at {address}"


def test_bootstrap_comes_from_the_environment() -> None:
    """Without --bootstrap-server, ODRADEK_BOOTSTRAP names the broker."""
    address = f"127.0.0.1:{free_port()}"
    result = run_cli("topic", "list", "--timeout", "1", bootstrap=address, timeout=20)
    assert_clean_failure(result, 1)
    assert address in result.err


@pytest.mark.parametrize(
    "argv",
    [
        ["topic"],
        ["topic", "frobnicate"],
        ["topic", "create"],
        ["topic", "create", "x", "--partitions", "zero"],
        ["consume", "t", "--offset", "-3"],
        ["consume", "t", "--from-beginning", "--offset", "3"],
        ["group", "reset-offsets", "g", "--topic", "t"],
        ["group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "yesterday"],
        ["perf", "produce", "t", "--num-records", "10"],
        ["nonsense"],
    ],
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """argparse errors (checked in-process, for speed): exit 2 and a usage message."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_bad_usage_in_a_process_has_no_traceback() -> None:
    """The same as a real process: exit 2, usage on stderr, no traceback."""
    result = run_cli("topic", "create", timeout=20)
    assert_clean_failure(result, 2)
    assert "usage:" in result.err


@pytest.mark.parametrize(
    "argv",
    [
        ["topic", "list", "-X", "no-equals-sign"],
        ["topic", "list", "-X", "no.such.property=1"],
        ["consume", "t", "--format", "%q"],
        ["consume", "t", "--group", "g", "--offset", "1"],
        ["topic", "create", "x", "--config", "novalue"],
    ],
)
def test_bad_values_exit_2_with_one_line(argv: list[str]) -> None:
    """Bad -X, --format, --config or option mixes are usage errors (exit 2), one line."""
    address = f"127.0.0.1:{free_port()}"
    result = run_cli(*argv, "--bootstrap-server", address, "--timeout", "1", timeout=20)
    assert_clean_failure(result, 2)
    assert result.err.startswith("odradek: ") and len(result.err.strip().splitlines()) == 1


def test_help_lists_every_command() -> None:
    """`odradek --help` names the broker and all client commands."""
    result = run_cli("--help", timeout=20)
    assert result.code == 0
    for name in ("broker", "topic", "produce", "consume", "group", "perf"):
        assert name in result.out
