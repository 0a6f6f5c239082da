"""`odradek perf produce`: sends records as fast as allowed (optionally keyed, from a
payload file, in transactions) and reports what the delivery reports say: throughput,
latency percentiles, records per partition, and the client's statistics when asked."""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from odradek.cli.ck import NewTopic
from odradek.cli.clientstats import StatsCollector, emit_summary
from odradek.cli.common import EXIT_OK, EXIT_USAGE, CliError, Connection, wait
from odradek.cli.liveline import MB, LiveLine
from odradek.cli.output import message

# Kafka's perf tool defaults for transactions.
TRANSACTION_ID_PREFIX = "performance-producer-"
TRANSACTION_DURATION_MS = 3000


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The value at `fraction` (0..1) of a sorted list (nearest rank); 0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@dataclass
class ProduceStats:
    """Delivery reports of a perf run, and the live line they advance."""

    line: LiveLine
    delivered: int = 0
    failed: int = 0
    size: int = 0
    first_error: KafkaError | None = None
    latencies_ms: list[float] = field(default_factory=list)
    latency_sum_ms: float = 0.0
    latency_max_ms: float = 0.0
    partitions: Counter[int] = field(default_factory=Counter)

    def report(self, err: KafkaError | None, msg: Message) -> None:
        """The delivery callback."""
        if err is not None:
            self.failed += 1
            self.first_error = self.first_error or err
        else:
            latency = (msg.latency() or 0.0) * 1000
            self.delivered += 1
            self.size += len(msg.value() or b"") + len(msg.key() or b"")
            self.latencies_ms.append(latency)
            self.latency_sum_ms += latency
            self.latency_max_ms = max(self.latency_max_ms, latency)
            self.partitions[msg.partition() or 0] += 1
        average = self.latency_sum_ms / self.delivered if self.delivered else 0.0
        self.line.update(self.delivered + self.failed, self.size, (average, self.latency_max_ms))


def payloads(args: argparse.Namespace) -> Callable[[], bytes]:
    """Where record values come from: --record-size random bytes (one buffer, as Kafka's
    tool reuses its array), or a payload of --payload-file picked at random."""
    if args.payload_file is None:
        payload = os.urandom(args.record_size)
        return lambda: payload
    delimiter = args.payload_delimiter.replace("\\n", "\n").replace("\\t", "\t").encode()
    try:
        with open(args.payload_file, "rb") as file:
            found = [p for p in file.read().split(delimiter) if p]
    except OSError as exc:
        raise CliError(f"cannot read {args.payload_file}: {exc.strerror}", EXIT_USAGE) from None
    if not found:
        raise CliError(f"{args.payload_file} holds no payloads", EXIT_USAGE)
    pick = random.Random(0).choice  # reproducible runs, as Kafka's seeded generator
    return lambda: pick(found)


def perf_produce(args: argparse.Namespace) -> int:
    """Sends --num-records records, at most --throughput per second (in transactions of
    --transaction-duration-ms when asked), then prints what the delivery reports say (and,
    with --print-metrics, the client's statistics)."""
    conn = Connection.from_args(args)
    value = payloads(args)
    collector = StatsCollector() if args.print_metrics else None
    txn_id, txn_ms = _transaction_setup(args, conn)
    producer = conn.producer(**_producer_defaults(args, collector, txn_id))
    _ensure_topic(conn, producer, args)
    txn = Transactions(producer, txn_ms / 1000, 30 + conn.timeout) if txn_ms else None
    line = LiveLine("produce", args.num_records)
    stats = ProduceStats(line)
    try:
        if txn is not None:
            txn.init()  # before the clock starts, as Kafka's tool: not part of the run
        started = time.monotonic()
        for i in range(args.num_records):
            _throttle(args.throughput, i, started)
            key = f"key-{i % args.keys}".encode() if args.keys else None
            if txn is not None:
                txn.before_send()
            _produce_one(producer, args.topic, key, value(), stats)
            if txn is not None:
                txn.after_send()
        if txn is not None:
            txn.commit()
        remaining = producer.flush(30 + conn.timeout)
    except KafkaException as exc:
        raise conn.error(exc, args.topic) from None
    finally:
        line.close()
    elapsed = max(time.monotonic() - started, 1e-9)
    metrics = collector.metrics(producer.poll, conn.timeout) if collector else None
    _produce_summary(args, stats, elapsed, metrics, txn)
    if stats.first_error is not None or remaining:
        reason = stats.first_error.str() if stats.first_error else f"{remaining} not acknowledged"
        raise CliError(f"{stats.failed + remaining} records failed: {reason}")
    return EXIT_OK


def _transaction_setup(args: argparse.Namespace, conn: Connection) -> tuple[str | None, int]:
    """The transactional id and duration (0: no transactions), as Kafka's perf tool picks
    them: --transactional-id over a `transactional.id` property; a duration alone gets a
    fresh id; an id alone commits every TRANSACTION_DURATION_MS."""
    txn_id = args.transactional_id or conn.overrides.get("transactional.id")
    duration: int = args.transaction_duration_ms or 0
    if duration and not txn_id:
        txn_id = f"{TRANSACTION_ID_PREFIX}{uuid.uuid4()}"
    if txn_id and not duration:
        duration = TRANSACTION_DURATION_MS
    return txn_id, duration


@dataclass
class Transactions:
    """The transactions of a perf run: one begun before a send when none is open,
    committed once it is `duration_s` old and at the end."""

    producer: Any
    duration_s: float
    timeout_s: float
    open_since: float | None = None
    committed: int = 0

    def init(self) -> None:
        """InitProducerId for the transactional id (fences an older producer with it)."""
        self.producer.init_transactions(self.timeout_s)

    def before_send(self) -> None:
        """Begins a transaction when none is open."""
        if self.open_since is None:
            self.producer.begin_transaction()
            self.open_since = time.monotonic()

    def after_send(self) -> None:
        """Commits the open transaction once it is old enough."""
        if self.open_since is not None and time.monotonic() - self.open_since >= self.duration_s:
            self.commit()

    def commit(self) -> None:
        """Commits the open transaction, if any (librdkafka flushes its records first)."""
        if self.open_since is not None:
            self.producer.commit_transaction(self.timeout_s)
            self.open_since = None
            self.committed += 1


def _producer_defaults(
    args: argparse.Namespace, collector: StatsCollector | None, txn_id: str | None
) -> dict[str, Any]:
    acks = args.acks or ("all" if txn_id else "1")
    defaults: dict[str, Any] = {"acks": acks, "message.timeout.ms": 30_000}
    if txn_id:
        defaults["transactional.id"] = txn_id
    if args.batch_size is not None:
        defaults["batch.size"] = args.batch_size
    if args.linger_ms is not None:
        defaults["linger.ms"] = args.linger_ms
    if collector is not None:
        defaults.update(collector.config())
    return defaults


def _ensure_topic(conn: Connection, producer: Any, args: argparse.Namespace) -> None:
    """A missing topic is created with --partitions when given; otherwise the broker's
    auto-creation decides (and without it the topic is unknown)."""
    if args.partitions is not None:
        existing = conn.metadata(producer).topics.get(args.topic)
        if existing is None:
            admin = conn.admin()
            new = NewTopic(args.topic, num_partitions=args.partitions)
            wait(admin.create_topics([new], request_timeout=conn.timeout)[args.topic], conn)
            _wait_listed(conn, producer, args.topic)
        elif len(existing.partitions) != args.partitions:
            message(
                f"odradek: topic {args.topic} exists with {len(existing.partitions)} "
                "partitions; --partitions applies to a new topic only"
            )
    conn.topic(producer, args.topic, create=True)


def _wait_listed(conn: Connection, client: Any, topic: str) -> None:
    """Until the broker the client asks lists the new topic (in a cluster it learns of it
    from ZooKeeper a moment after the answer), within the timeout."""
    deadline = time.monotonic() + conn.timeout
    while topic not in conn.metadata(client).topics and time.monotonic() < deadline:
        time.sleep(0.1)


def _throttle(limit: float | None, sent: int, started: float) -> None:
    if limit is None:
        return
    ahead = sent / limit - (time.monotonic() - started)
    if ahead > 0:
        time.sleep(ahead)


def _produce_one(
    producer: Any, topic: str, key: bytes | None, payload: bytes, stats: ProduceStats
) -> None:
    while True:
        try:
            producer.produce(topic, payload, key, on_delivery=stats.report)
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)


def _produce_summary(
    args: argparse.Namespace,
    stats: ProduceStats,
    elapsed: float,
    metrics: dict[str, float] | None,
    txn: Transactions | None,
) -> None:
    latencies = sorted(stats.latencies_ms)
    average = sum(latencies) / len(latencies) if latencies else 0.0
    document: dict[str, Any] = {
        "records": stats.delivered,
        "failed": stats.failed,
        "seconds": round(elapsed, 3),
        "records_per_s": round(stats.delivered / elapsed, 1),
        "mb_per_s": round(stats.size / MB / elapsed, 3),
        "latency_ms": {
            "avg": round(average, 2),
            "p50": round(percentile(latencies, 0.50), 2),
            "p95": round(percentile(latencies, 0.95), 2),
            "p99": round(percentile(latencies, 0.99), 2),
            "p999": round(percentile(latencies, 0.999), 2),
            "max": round(latencies[-1] if latencies else 0.0, 2),
        },
        "partitions": {str(p): n for p, n in sorted(stats.partitions.items())},
    }
    if txn is not None:
        document["transactions"] = txn.committed
    rows = [(k, v) for k, v in document.items() if k not in ("latency_ms", "partitions")]
    rows += [(f"latency {k} (ms)", v) for k, v in document["latency_ms"].items()]
    rows += [(f"partition {p} records", n) for p, n in document["partitions"].items()]
    emit_summary(args.output, document, rows, metrics, f"perf produce {args.topic}")
