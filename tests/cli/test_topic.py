"""`odradek topic` end to end against a broker subprocess."""

from __future__ import annotations

import json
from collections.abc import Callable

from helpers import unique_topic

from .conftest import Result, assert_clean_failure


def test_topic_lifecycle(cli: Callable[..., Result]) -> None:
    """create (with a config) → list → describe → alter (partitions, config) → delete."""
    name = unique_topic("cli-topic")
    created = cli("topic", "create", name, "--partitions", "2", "--config", "retention.ms=123456")
    assert created.code == 0, created
    assert f"created topic {name}" in created.out

    listed = cli("topic", "list", "--output", "json")
    assert {"name": name, "partitions": 2} in json.loads(listed.out)
    table = cli("topic", "list")
    assert table.code == 0 and name in table.out

    described = json.loads(cli("topic", "describe", name, "--output", "json").out)
    assert [p["partition"] for p in described["partitions"]] == [0, 1]
    assert all(p["start"] == 0 and p["end"] == 0 for p in described["partitions"])
    assert described["configs"] == {
        "retention.ms": {"value": "123456", "source": "DYNAMIC_TOPIC_CONFIG"}
    }

    altered = cli(
        "topic",
        "alter",
        name,
        "--partitions",
        "4",
        "--config",
        "cleanup.policy=compact",
        "--delete-config",
        "retention.ms",
    )
    assert altered.code == 0, altered
    described = json.loads(cli("topic", "describe", name, "--output", "json").out)
    assert len(described["partitions"]) == 4
    assert set(described["configs"]) == {"cleanup.policy"}

    table = cli("topic", "describe", name)
    assert table.code == 0 and "cleanup.policy" in table.out and "end offset" in table.out

    deleted = cli("topic", "delete", name)
    assert deleted.code == 0, deleted
    assert name not in {t["name"] for t in json.loads(cli("topic", "list", "--output", "json").out)}


def test_topic_errors(cli: Callable[..., Result]) -> None:
    """Unknown topics, duplicates, shrinking and bad configs: one line, exit 1 (or 2)."""
    name = unique_topic("cli-missing")
    for argv in (["describe", name], ["delete", name], ["alter", name, "--partitions", "5"]):
        result = cli("topic", *argv)
        assert_clean_failure(result, 1)
        assert result.err.strip() == f"odradek: unknown topic {name}"
    # describing an unknown topic must not auto-create it
    assert name not in cli("topic", "list").out

    existing = unique_topic("cli-dup")
    assert cli("topic", "create", existing, "--partitions", "2").code == 0
    duplicate = cli("topic", "create", existing)
    assert_clean_failure(duplicate, 1)
    assert "already exists" in duplicate.err
    shrink = cli("topic", "alter", existing, "--partitions", "1")
    assert_clean_failure(shrink, 2)
    bad_config = cli("topic", "alter", existing, "--config", "retention.ms=soon")
    assert_clean_failure(bad_config, 1)
    assert "INVALID_CONFIG" in bad_config.err
