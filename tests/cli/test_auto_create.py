"""Producing to a topic that does not exist: created when the broker's
`auto.create.topics.enable` is on (as Kafka's console producer, perf tool and kcat do),
"unknown topic" when it is off; consuming never creates."""

from __future__ import annotations

import json
from collections.abc import Callable

from helpers import BrokerProcess, ck_forget_admin, unique_topic

from .conftest import Result, assert_clean_failure, run_cli, run_kcat


def _partitions(cli: Callable[..., Result], topic: str) -> int:
    described = cli("topic", "describe", topic, "--output", "json")
    assert described.code == 0, described
    return len(json.loads(described.out)["partitions"])


def test_produce_and_perf_produce_create_the_topic_as_kcat_does(
    cli: Callable[..., Result], broker_proc: BrokerProcess
) -> None:
    """`produce` and `perf produce` to new topics succeed and the topics get
    `num.partitions` (3) partitions, exactly as `kcat -P` to a new topic; the records
    written are there to read."""
    by_kcat, by_produce, by_perf = (unique_topic(p) for p in ("ac-kcat", "ac-prod", "ac-perf"))
    run_kcat(broker_proc.bootstrap_servers, "-P", "-t", by_kcat, stdin=b"one\n")
    produced = cli("produce", by_produce, stdin=b"one\ntwo\n")
    assert produced.code == 0, produced
    assert "produced 2 of 2 records" in produced.err
    perf = cli(
        "perf", "produce", by_perf, "--num-records", "10", "--record-size", "8", "--output", "json"
    )
    assert perf.code == 0 and json.loads(perf.out)["records"] == 10, perf
    assert _partitions(cli, by_kcat) == 3
    assert _partitions(cli, by_produce) == 3
    assert _partitions(cli, by_perf) == 3
    consumed = cli("consume", by_produce, "--from-beginning", "--exit-at-end")
    assert sorted(consumed.out.splitlines()) == ["one", "two"], consumed


def test_consume_does_not_create(cli: Callable[..., Result]) -> None:
    """`consume` of a topic that does not exist is "unknown topic" (exit 1), and the topic
    stays absent (consumers do not auto-create, as Kafka's console consumer)."""
    name = unique_topic("ac-nope")
    result = cli("consume", name, "--exit-at-end")
    assert_clean_failure(result, 1)
    assert result.err.strip() == f"odradek: unknown topic {name}"
    assert name not in cli("topic", "list").out.split()


def test_no_auto_creation_when_the_broker_forbids_it() -> None:
    """With `auto.create.topics.enable=false` produce and perf produce to a new topic fail
    with one "unknown topic" line (exit 1) and create nothing."""
    with BrokerProcess(config={"auto.create.topics.enable": "false"}) as proc:
        try:
            bootstrap = proc.bootstrap_servers
            name = unique_topic("ac-off")
            for argv in (
                ["produce", name],
                ["perf", "produce", name, "--num-records", "1", "--record-size", "1"],
            ):
                result = run_cli(*argv, bootstrap=bootstrap, stdin=b"x\n")
                assert_clean_failure(result, 1)
                assert result.err.strip() == f"odradek: unknown topic {name}"
            listed = run_cli("topic", "list", bootstrap=bootstrap)
            assert listed.code == 0 and name not in listed.out.split(), listed
        finally:
            ck_forget_admin(proc.bootstrap_servers)
