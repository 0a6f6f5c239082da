"""`odradek produce` and `odradek consume` end to end against a broker subprocess."""

from __future__ import annotations

import json
import os
import select
import signal
import time
from collections.abc import Callable

from helpers import BrokerProcess, unique_topic

from .conftest import Result, assert_clean_failure, run_kcat, spawn_cli, stop_pid

LINES = b"k1:hello\nk2:wor:ld\nno-key\n"


def _topic(cli: Callable[..., Result], partitions: int = 2) -> str:
    name = unique_topic("cli-pc")
    assert cli("topic", "create", name, "--partitions", str(partitions)).code == 0
    return name


def test_produce_keys_headers_then_consume_with_format(cli: Callable[..., Result]) -> None:
    """Lines become records (key split at the first separator, headers on each), and
    `consume --from-beginning --exit-at-end --format` prints them all, then stops."""
    topic = _topic(cli)
    produced = cli(
        "produce",
        topic,
        "--key-separator",
        ":",
        "--header",
        "h1=a",
        "--header",
        "h2=b",
        "--partition",
        "1",
        "--acks",
        "1",
        stdin=LINES,
    )
    assert produced.code == 0, produced
    assert "produced 3 of 3 records" in produced.err

    fmt = r"%t|%p|%o|%k|%v|%h|%K\n"
    consumed = cli("consume", topic, "--from-beginning", "--exit-at-end", "--format", fmt)
    assert consumed.code == 0, consumed
    assert consumed.out.splitlines() == [
        f"{topic}|1|0|k1|hello|h1=a,h2=b|2",
        f"{topic}|1|1|k2|wor:ld|h1=a,h2=b|2",
        f"{topic}|1|2||no-key|h1=a,h2=b|-1",
    ]
    assert "consumed 3 records" in consumed.err


def test_consume_json_offsets_and_timestamps(cli: Callable[..., Result], tmp_path: object) -> None:
    """--file with compression; --output json from --partition/--offset; --timestamp
    (offsets_for_times) past the end reads nothing; --count stops early."""
    topic = _topic(cli, partitions=1)
    path = os.path.join(str(tmp_path), "input.txt")
    with open(path, "wb") as file:
        file.write(b"".join(b"v%d\n" % i for i in range(5)))
    produced = cli("produce", topic, "--file", path, "--compression", "gzip", "--output", "json")
    assert produced.code == 0 and json.loads(produced.err)["records"] == 5, produced

    result = cli(
        "consume", topic, "--partition", "0", "--offset", "3", "--exit-at-end", "--output", "json"
    )
    records = [json.loads(line) for line in result.out.splitlines()]
    assert [(r["offset"], r["value"], r["key"]) for r in records] == [
        (3, "v3", None),
        (4, "v4", None),
    ]
    assert records[0]["topic"] == topic and records[0]["timestamp"] > 0

    future = str(int(time.time() * 1000) + 3_600_000)
    late = cli("consume", topic, "--timestamp", future, "--exit-at-end")
    assert late.code == 0 and late.out == "", late
    early = cli("consume", topic, "--timestamp", "0", "--count", "2")
    assert early.code == 0 and early.out.splitlines() == ["v0", "v1"], early


def test_ctrl_c_stops_consume_cleanly(
    cli: Callable[..., Result], broker_proc: BrokerProcess
) -> None:
    """A running consume (no --exit-at-end) stops on SIGINT: exit 0, summary, no traceback."""
    topic = _topic(cli, partitions=1)
    assert cli("produce", topic, stdin=b"first\n").code == 0
    proc = spawn_cli("consume", topic, "--from-beginning", bootstrap=broker_proc.bootstrap_servers)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "consume printed nothing within 20 s"
        assert proc.stdout.readline() == b"first\n"
        os.kill(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=15)
        err = proc.stderr.read().decode() if proc.stderr else ""
    finally:
        stop_pid(proc)
    assert code == 0, err
    assert "Traceback" not in err and "consumed 1 records" in err


def test_consume_isolation_levels(cli: Callable[..., Result], broker_proc: BrokerProcess) -> None:
    """`consume` reads committed records only by default (librdkafka's read_committed);
    `--isolation-level read_uncommitted` also prints an aborted transaction's records, and
    neither prints the commit and abort markers."""
    from confluent_kafka import Producer

    topic = _topic(cli, partitions=1)
    producer = Producer(
        {"bootstrap.servers": broker_proc.bootstrap_servers, "transactional.id": topic}
    )
    producer.init_transactions(30)
    for value, commit in ((b"kept", True), (b"dropped", False)):
        producer.begin_transaction()
        producer.produce(topic, value)
        assert producer.flush(30) == 0  # an abort drops what is not sent yet
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)
    fmt = r"%o %v\n"
    committed = cli("consume", topic, "--from-beginning", "--exit-at-end", "--format", fmt)
    assert committed.code == 0, committed
    assert committed.out.splitlines() == ["0 kept"]
    everything = cli(
        "consume",
        topic,
        "--from-beginning",
        "--exit-at-end",
        "--isolation-level",
        "read_uncommitted",
        "--format",
        fmt,
    )
    assert everything.code == 0, everything
    assert everything.out.splitlines() == ["0 kept", "2 dropped"]


def test_console_consumer_options_on_kcat_records(
    cli: Callable[..., Result], broker_proc: BrokerProcess
) -> None:
    """Records kcat wrote (keys, a header, a null key) read with Kafka's console consumer
    options: `--property print.*=true` and `key.separator` lay them out as Kafka does,
    `--max-messages` stops early, `--timeout-ms` stops once idle; and `--output json` gives
    one object per record that agrees with `kcat -J`."""
    bootstrap = broker_proc.bootstrap_servers
    topic = _topic(cli, partitions=1)
    run_kcat(bootstrap, "-P", "-t", topic, "-K:", "-H", "h=x", stdin=b"k1:v1\nk2:v2\n")
    run_kcat(bootstrap, "-P", "-t", topic, stdin=b"v3\n")
    props = [
        f"--property={p}"
        for p in (
            "print.partition=true",
            "print.offset=true",
            "print.headers=true",
            "print.key=true",
            "key.separator= | ",
        )
    ]
    laid_out = cli("consume", topic, "--from-beginning", "--max-messages", "3", *props)
    assert laid_out.code == 0, laid_out
    assert laid_out.out.splitlines() == [
        "Partition:0 | Offset:0 | h:x | k1 | v1",
        "Partition:0 | Offset:1 | h:x | k2 | v2",
        "Partition:0 | Offset:2 | NO_HEADERS | null | v3",
    ]
    first = cli("consume", topic, "--from-beginning", "--max-messages", "1")
    assert first.code == 0 and first.out == "v1\n", first
    started = time.monotonic()
    idle = cli("consume", topic, "--from-beginning", "--timeout-ms", "3000")
    assert idle.code == 0 and idle.out.splitlines() == ["v1", "v2", "v3"], idle
    assert time.monotonic() - started < 20

    ours = cli("consume", topic, "--from-beginning", "--exit-at-end", "--output", "json")
    assert ours.code == 0, ours
    theirs = run_kcat(bootstrap, "-C", "-t", topic, "-J", "-e", "-o", "beginning", "-q")
    mine = [json.loads(line) for line in ours.out.splitlines()]
    kcat_records = [json.loads(line) for line in theirs.splitlines()]
    assert len(mine) == len(kcat_records) == 3
    for record, reference in zip(mine, kcat_records, strict=True):
        assert record["offset"] == reference["offset"]
        assert record["partition"] == reference["partition"]
        assert record["key"] == reference["key"]
        assert record["value"] == reference["payload"]
        assert record["timestamp"] == reference["ts"]
        assert record["timestamp_type"] == "CreateTime" and reference["tstype"] == "create"
        flat = [item for pair in record["headers"] for item in pair]
        assert flat == reference.get("headers", [])


def test_consume_layout_usage_errors(cli: Callable[..., Result]) -> None:
    """--property with --format or --output json, and an unknown property, are usage
    errors (exit 2) before anything is read."""
    topic = _topic(cli, partitions=1)
    for argv in (
        ["--property", "print.key=true", "--format", "%v"],
        ["--property", "print.key=true", "--output", "json"],
        ["--property", "print.kye=true"],
        ["--property", "print.key"],
    ):
        result = cli("consume", topic, "--exit-at-end", *argv)
        assert_clean_failure(result, 2)


def test_java_partitioning_with_murmur2(cli: Callable[..., Result]) -> None:
    """`-X partitioner=murmur2_random` places keyed lines on the partitions Java clients
    (and kafka-python, whose murmur2 is checked here) pick for the same keys."""
    from kafka.partitioner.default import murmur2

    topic = _topic(cli, partitions=5)
    keys = [f"user-{i}" for i in range(20)]
    lines = "".join(f"{k}:v\n" for k in keys).encode()
    argv = ("--key-separator", ":", "-X", "partitioner=murmur2_random")
    assert cli("produce", topic, *argv, stdin=lines).code == 0
    out = cli("consume", topic, "--from-beginning", "--exit-at-end", "--format", r"%k %p\n").out
    placed = dict(line.split() for line in out.splitlines())
    assert placed == {k: str((murmur2(k.encode()) & 0x7FFFFFFF) % 5) for k in keys}


def test_kafka_console_command_lines(
    cli: Callable[..., Result], broker_proc: BrokerProcess
) -> None:
    """Command lines written for Kafka's console tools work: `--topic`, the producer's
    `--property parse.key/parse.headers/null.marker`, `--request-required-acks` and
    `--compression-codec`, the consumer's `--property print.*` and `--offset
    earliest/latest`; kcat sees the same keys, values and headers. A bad line stops
    produce with its line number after delivering the lines before it."""
    topic = _topic(cli, partitions=1)
    lines = b"src:cli,n:1\tk1\tv1\nsrc:cli\tk2\tNULL\nNULL\tNULL\tv3\n"
    reader = [
        "--property=parse.key=true",
        "--property=parse.headers=true",
        "--property=null.marker=NULL",
    ]
    produced = cli("produce", "--topic", topic, *reader, stdin=lines)
    assert produced.code == 0, produced
    printer = ["--property=print.key=true", "--property=print.headers=true"]
    consumed = cli("consume", "--topic", topic, "--from-beginning", "--max-messages", "3", *printer)
    assert consumed.code == 0, consumed
    assert consumed.out.splitlines() == [
        "src:cli,n:1\tk1\tv1",
        "src:cli\tk2\tnull",
        "NO_HEADERS\tnull\tv3",
    ]
    seen = run_kcat(
        broker_proc.bootstrap_servers, "-C", "-t", topic, "-e", "-q", "-f", r"%k|%s|%h|%S\n"
    )
    assert seen.splitlines() == ["k1|v1|src=cli,n=1|2", "k2||src=cli|-1", "|v3||2"]

    bad = cli("produce", topic, "--property", "parse.key=true", stdin=b"k\tok\nno-tab\nafter\n")
    assert_clean_failure(bad, 1)
    assert "no key separator on line 2" in bad.err
    tail = cli("consume", topic, "--offset", "3", "--exit-at-end", "--property", "print.key=true")
    assert tail.out.splitlines() == ["k\tok"], tail

    usage = (["produce", topic, "--topic", "other"], ["consume", "--exit-at-end"])
    for argv in usage:
        assert_clean_failure(cli(*argv, stdin=b""), 2)
    perf = cli("perf", "produce", "--topic", topic, "--num-records", "3", "--record-size", "4")
    assert perf.code == 0, perf

    java_names = ["--request-required-acks", "1", "--compression-codec", "gzip"]
    assert cli("produce", "--topic", topic, *java_names, stdin=b"last\n").code == 0
    earliest = ["--partition", "0", "--offset", "earliest", "--max-messages", "1"]
    assert cli("consume", "--topic", topic, *earliest).out == "v1\n"
    latest = ["--partition", "0", "--offset", "latest", "--timeout-ms", "1000"]
    nothing = cli("consume", "--topic", topic, *latest)
    assert nothing.code == 0 and nothing.out == "", nothing
    end = cli("consume", topic, "--offset", "7", "--exit-at-end")
    assert end.out == "last\n", end
