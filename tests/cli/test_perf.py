"""`odradek perf produce | consume` with small counts."""

from __future__ import annotations

import json
from collections.abc import Callable

from helpers import unique_topic

from .conftest import Result


def test_perf_produce_then_consume(cli: Callable[..., Result]) -> None:
    """perf produce sends N records of B bytes (summary with latency percentiles); perf
    consume reads them back, without and with a group."""
    topic = unique_topic("cli-perf")
    assert cli("topic", "create", topic, "--partitions", "2").code == 0
    produced = cli(
        "perf",
        "produce",
        topic,
        "--num-records",
        "500",
        "--record-size",
        "100",
        "--throughput",
        "5000",
        "--acks",
        "all",
        "--linger-ms",
        "2",
        "--batch-size",
        "16384",
        "--output",
        "json",
    )
    assert produced.code == 0, produced
    summary = json.loads(produced.out)
    assert summary["records"] == 500 and summary["failed"] == 0
    latency = summary["latency_ms"]
    assert 0 <= latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert summary["seconds"] >= 0.09  # 500 records at most 5000/s

    consumed = cli("perf", "consume", topic, "--num-records", "500", "--output", "json")
    assert consumed.code == 0, consumed
    assert json.loads(consumed.out)["records"] == 500
    table = cli("perf", "consume", topic, "--num-records", "500", "--group", unique_topic("pg"))
    assert table.code == 0 and "records_per_s" in table.out, table

    short = cli(
        "perf", "consume", topic, "--num-records", "501", "--idle-timeout", "1", "--output", "json"
    )
    assert short.code == 1 and json.loads(short.out)["records"] == 500
    assert "only 500 of 501" in short.err
