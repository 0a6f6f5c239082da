"""`odradek perf produce | consume` with small counts."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from helpers import REPO_ROOT, BrokerProcess, unique_topic

from .conftest import (
    CLI_TIMEOUT_S,
    Result,
    assert_clean_failure,
    cli_env,
    run_cli,
    run_kcat,
    stop_pid,
)


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


def test_perf_kafka_options_keys_partitions_and_metrics(
    cli: Callable[..., Result], broker_proc: BrokerProcess
) -> None:
    """Kafka's perf options: `--throughput -1`, `--producer-props` (several at once),
    `--print-metrics`; `--partitions 4` creates the new topic with 4 partitions and
    `--keys 6` keys the records so each key stays on one partition (kcat reads them back);
    `perf consume --messages` counts per partition. No progress line without a terminal."""
    bootstrap = broker_proc.bootstrap_servers
    topic = unique_topic("cli-perf-keys")
    produced = cli(
        "perf",
        "produce",
        topic,
        "--num-records",
        "300",
        "--record-size",
        "20",
        "--throughput",
        "-1",
        "--keys",
        "6",
        "--partitions",
        "4",
        "--producer-props",
        "acks=all",
        "linger.ms=5",
        "--print-metrics",
        "--output",
        "json",
    )
    assert produced.code == 0, produced
    assert "\r" not in produced.err and produced.err == "", produced.err
    summary = json.loads(produced.out)
    assert summary["records"] == 300
    assert sum(summary["partitions"].values()) == 300 and len(summary["partitions"]) > 1
    assert summary["metrics"]["txmsgs"] == 300
    assert any(k.startswith("broker.") and k.endswith(".rtt_avg_ms") for k in summary["metrics"])
    described = json.loads(cli("topic", "describe", topic, "--output", "json").out)
    assert len(described["partitions"]) == 4

    lines = run_kcat(bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-q", "-f", "%k %p\n")
    placed: dict[str, set[str]] = {}
    for line in lines.splitlines():
        key, partition = line.split()
        placed.setdefault(key, set()).add(partition)
    assert sorted(placed) == [f"key-{i}" for i in range(6)]
    assert all(len(partitions) == 1 for partitions in placed.values()), placed

    consumed = cli(
        "perf", "consume", topic, "--messages", "300", "--print-metrics", "--output", "json"
    )
    assert consumed.code == 0 and "\r" not in consumed.err, consumed
    result = json.loads(consumed.out)
    assert result["partitions"] == summary["partitions"]
    assert result["metrics"]["rxmsgs"] >= 300

    table = cli(
        "perf", "produce", topic, "--num-records", "5", "--record-size", "5", "--print-metrics"
    )
    assert table.code == 0 and "partition" in table.out and "txmsgs" in table.out, table
    again = cli(
        "perf", "produce", topic, "--num-records", "1", "--record-size", "1", "--partitions", "2"
    )
    assert again.code == 0 and "exists with 4 partitions" in again.err, again


def test_perf_payload_file_and_properties(
    cli: Callable[..., Result], broker_proc: BrokerProcess, tmp_path: Path
) -> None:
    """`--payload-file` values come from the file (split at `--payload-delimiter`); the
    brokers may be given as `--producer-props bootstrap.servers=...` alone, as Kafka's tool
    takes them; `--producer.config` reads a properties file, and a property librdkafka does
    not know is a usage error; `--throughput 0` is a usage error."""
    topic = unique_topic("cli-perf-payload")
    payload_file = tmp_path / "payloads.txt"
    payload_file.write_bytes(b"alpha|beta|gamma|")
    produced = run_cli(
        "perf",
        "produce",
        topic,
        "--num-records",
        "30",
        "--payload-file",
        str(payload_file),
        "--payload-delimiter",
        "|",
        "--producer-props",
        f"bootstrap.servers={broker_proc.bootstrap_servers}",
        bootstrap=None,
    )
    assert produced.code == 0, produced
    values = run_kcat(
        broker_proc.bootstrap_servers, "-C", "-t", topic, "-e", "-o", "beginning", "-q"
    ).split()
    assert len(values) == 30 and set(values) <= {"alpha", "beta", "gamma"}

    good = tmp_path / "good.properties"
    good.write_text("# a comment\nacks = all\n! another\nlinger.ms: 1\n")
    bad = tmp_path / "bad.properties"
    bad.write_text("key.serializer=org.apache.kafka.common.serialization.ByteArraySerializer\n")
    base = ["perf", "produce", topic, "--num-records", "3", "--record-size", "3"]
    assert cli(*base, "--producer.config", str(good)).code == 0
    assert_clean_failure(cli(*base, "--producer.config", str(bad)), 2)
    assert_clean_failure(cli(*base, "--producer.config", str(tmp_path / "none")), 2)
    assert_clean_failure(cli(*base, "--throughput", "0"), 2)


def test_progress_line_on_a_terminal(broker_proc: BrokerProcess) -> None:
    """With stderr on a terminal (a pseudo-terminal here) perf produce and perf consume
    redraw a progress line in place and erase it at the end; stdout keeps the summary."""
    topic = unique_topic("cli-perf-tty")
    for argv in (
        ["produce", topic, "--num-records", "200", "--record-size", "10"],
        ["consume", topic, "--num-records", "200"],
    ):
        out, terminal = _run_with_terminal_stderr(broker_proc.bootstrap_servers, "perf", *argv)
        assert "records_per_s" in out
        drawn = terminal.split("\r")
        assert any(f"{argv[0]}: 200/200 records (100%)" in d for d in drawn), terminal
        assert terminal.endswith("\r\x1b[K"), terminal


def _run_with_terminal_stderr(bootstrap: str, *args: str) -> tuple[str, str]:
    """Runs the CLI with stderr on a pseudo-terminal; (stdout, what the terminal got)."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "odradek", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=cli_env(bootstrap),
        cwd=str(REPO_ROOT),
    )
    os.close(slave)
    received = bytearray()
    try:
        deadline = time.monotonic() + CLI_TIMEOUT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not chunk:
                    break
                received += chunk
            elif proc.poll() is not None:
                break
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        assert proc.wait(timeout=CLI_TIMEOUT_S) == 0, received.decode(errors="replace")
    finally:
        os.close(master)
        stop_pid(proc)
    return out, received.decode(errors="replace")


def test_perf_produce_in_transactions(cli: Callable[..., Result]) -> None:
    """`--transaction-duration-ms` alone (a fresh transactional id, acks all) commits a
    transaction every few milliseconds: read_committed consume sees every record, and the
    log holds one commit marker per transaction after them. `--transactional-id` alone
    commits every 3 s (here: once, at the end)."""
    topic = unique_topic("cli-perf-txn")
    assert cli("topic", "create", topic, "--partitions", "1").code == 0
    produced = cli(
        "perf",
        "produce",
        topic,
        "--num-records",
        "200",
        "--record-size",
        "10",
        "--throughput",
        "1000",
        "--transaction-duration-ms",
        "40",
        "--output",
        "json",
    )
    assert produced.code == 0, produced
    summary = json.loads(produced.out)
    assert summary["records"] == 200 and summary["transactions"] >= 2, summary
    committed = summary["transactions"]
    named = cli(
        "perf",
        "produce",
        topic,
        "--num-records",
        "10",
        "--record-size",
        "10",
        "--transactional-id",
        unique_topic("perf-txn-id"),
        "--output",
        "json",
    )
    assert named.code == 0 and json.loads(named.out)["transactions"] == 1, named

    consumed = cli("perf", "consume", topic, "--num-records", "210", "--output", "json")
    assert consumed.code == 0 and json.loads(consumed.out)["records"] == 210, consumed
    described = json.loads(cli("topic", "describe", topic, "--output", "json").out)
    (partition,) = described["partitions"]
    assert partition["end"] == 210 + committed + 1, partition
