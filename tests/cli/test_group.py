"""`odradek group` end to end: a consume --group commits offsets, then list, describe (lag),
reset-offsets (dry run, --execute, refused while members are active) and delete."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from typing import Any

from helpers import BrokerProcess, ck_admin, unique_topic, wait_until

from .conftest import Result, assert_clean_failure, spawn_cli, stop_pid


def _lag(cli: Callable[..., Result], group: str) -> dict[str, Any]:
    result = cli("group", "describe", group, "--output", "json")
    assert result.code == 0, result
    document: dict[str, Any] = json.loads(result.out)
    return document


def _plan(result: Result) -> dict[int, tuple[Any, Any]]:
    assert result.code == 0, result
    return {p["partition"]: (p["current"], p["new"]) for p in json.loads(result.out)["partitions"]}


def test_group_describe_and_reset_offsets(cli: Callable[..., Result]) -> None:
    """Committed offsets and lag after consuming 4 of 6 records; a dry run changes nothing;
    --execute moves the offsets; delete removes the group."""
    topic, group = unique_topic("cli-g"), unique_topic("grp")
    # one partition: a partition without a committed offset has no lag to show
    assert cli("topic", "create", topic, "--partitions", "1").code == 0
    lines = b"".join(b"k%d:v%d\n" % (i, i) for i in range(6))
    assert cli("produce", topic, "--key-separator", ":", stdin=lines).code == 0
    consumed = cli("consume", topic, "--group", group, "--from-beginning", "--count", "4")
    assert consumed.code == 0 and len(consumed.out.splitlines()) == 4, consumed

    listed = cli("group", "list", "--output", "json")
    assert group in {g["group"] for g in json.loads(listed.out)}
    described = _lag(cli, group)
    assert described["state"] == "EMPTY" and described["members"] == []
    assert sum(p["committed"] for p in described["partitions"]) == 4
    assert sum(p["lag"] for p in described["partitions"]) == 2
    assert sum(p["end"] for p in described["partitions"]) == 6
    table = cli("group", "describe", group)
    assert table.code == 0 and "lag" in table.out and topic in table.out

    dry = cli(
        "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--output", "json"
    )
    assert {new for _cur, new in _plan(dry).values()} == {0}
    assert "dry run" in dry.err
    assert sum(p["lag"] for p in _lag(cli, group)["partitions"]) == 2

    latest = cli("group", "reset-offsets", group, "--topic", topic, "--to-latest", "--execute")
    assert latest.code == 0 and "reset" in latest.err, latest
    assert sum(p["lag"] for p in _lag(cli, group)["partitions"]) == 0

    clamped = cli(
        "group",
        "reset-offsets",
        group,
        "--topic",
        topic,
        "--to-offset",
        "1",
        "--execute",
        "--output",
        "json",
    )
    assert all(new == 1 for _cur, new in _plan(clamped).values())
    dated = cli(
        "group",
        "reset-offsets",
        group,
        "--topic",
        topic,
        "--to-datetime",
        "2000-01-01T00:00:00+00:00",
        "--output",
        "json",
    )
    assert all(new == 0 for _cur, new in _plan(dated).values())

    assert cli("group", "delete", group).code == 0
    again = cli("group", "delete", group)
    assert_clean_failure(again, 1)
    assert again.err.strip() == f"odradek: unknown group {group}"
    missing = cli("group", "describe", group)
    assert_clean_failure(missing, 1)


def _members(bootstrap: str, group: str) -> int:
    description = ck_admin(bootstrap).describe_consumer_groups([group])[group].result(10)
    return len(description.members)


def test_reset_refused_while_members_are_active(
    cli: Callable[..., Result], broker_proc: BrokerProcess
) -> None:
    """As Kafka's tool: no reset (not even a dry run) while the group has a live member."""
    topic, group = unique_topic("cli-active"), unique_topic("grp")
    assert cli("topic", "create", topic, "--partitions", "1").code == 0
    bootstrap = broker_proc.bootstrap_servers
    proc = spawn_cli("consume", topic, "--group", group, bootstrap=bootstrap)
    try:
        wait_until(lambda: _members(bootstrap, group) == 1, 20, 0.2, "a group member")
        refused = cli("group", "reset-offsets", group, "--topic", topic, "--to-earliest")
        assert_clean_failure(refused, 1)
        assert "active member" in refused.err
        busy = cli("group", "delete", group)
        assert_clean_failure(busy, 1)
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        stop_pid(proc)
