"""`odradek perf produce | consume`: throughput (and produce latency) tests, like Kafka's
kafka-producer-perf-test and kafka-consumer-perf-test."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, Message, TopicPartition
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn

from odradek.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    CliError,
    Connection,
    add_common_options,
    positive_float,
    positive_int,
)
from odradek.cli.output import emit, message, stderr_console

MB = 1024 * 1024


def configure(perf: argparse.ArgumentParser) -> None:
    """The subcommands of `odradek perf`."""
    actions = perf.add_subparsers(dest="action", required=True, metavar="ACTION")
    produce = actions.add_parser("produce", help="producer throughput and latency")
    produce.add_argument("topic", metavar="TOPIC")
    produce.add_argument("--num-records", type=positive_int, required=True, metavar="N")
    produce.add_argument("--record-size", type=positive_int, required=True, metavar="BYTES")
    produce.add_argument(
        "--throughput", type=positive_float, metavar="R", help="at most R records/s"
    )
    produce.add_argument("--acks", choices=("0", "1", "all", "-1"), default="1")
    produce.add_argument("--batch-size", type=positive_int, metavar="BYTES")
    produce.add_argument("--linger-ms", type=int, metavar="MS")
    produce.set_defaults(handler=perf_produce)
    consume = actions.add_parser("consume", help="consumer throughput")
    consume.add_argument("topic", metavar="TOPIC")
    consume.add_argument("--num-records", type=positive_int, required=True, metavar="N")
    consume.add_argument("--group", metavar="GROUP", help="subscribe as GROUP")
    consume.add_argument(
        "--idle-timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="give up after this long without records (default 10)",
    )
    consume.set_defaults(handler=perf_consume)
    for parser in (produce, consume):
        add_common_options(parser)


@contextmanager
def progress_bar(total: int, what: str) -> Iterator[Any]:
    """A live bar on stderr when it is a terminal; yields `advance(n)`."""
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TaskProgressColumn())
    with Progress(*columns, console=stderr_console(), transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The value at `fraction` (0..1) of a sorted list (nearest rank); 0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@dataclass
class ProduceStats:
    """Delivery reports of a perf run."""

    advance: Any
    delivered: int = 0
    failed: int = 0
    first_error: KafkaError | None = None
    latencies_ms: list[float] = field(default_factory=list)

    def report(self, err: KafkaError | None, msg: Message) -> None:
        """The delivery callback."""
        if err is not None:
            self.failed += 1
            self.first_error = self.first_error or err
        else:
            self.delivered += 1
            self.latencies_ms.append((msg.latency() or 0.0) * 1000)
        self.advance(1)


def perf_produce(args: argparse.Namespace) -> int:
    """Sends --num-records records of --record-size bytes, at most --throughput per second."""
    conn = Connection.from_args(args)
    defaults: dict[str, Any] = {"acks": args.acks, "message.timeout.ms": 30_000}
    if args.batch_size is not None:
        defaults["batch.size"] = args.batch_size
    if args.linger_ms is not None:
        defaults["linger.ms"] = args.linger_ms
    producer = conn.producer(**defaults)
    conn.topic(producer, args.topic, create=True)
    payload = os.urandom(args.record_size)
    started = time.monotonic()
    with progress_bar(args.num_records, "produce") as advance:
        stats = ProduceStats(advance)
        for i in range(args.num_records):
            _throttle(args.throughput, i, started)
            _produce_one(producer, args.topic, payload, stats)
        remaining = producer.flush(30 + conn.timeout)
    elapsed = max(time.monotonic() - started, 1e-9)
    _produce_summary(args, stats, elapsed)
    if stats.first_error is not None or remaining:
        reason = stats.first_error.str() if stats.first_error else f"{remaining} not acknowledged"
        raise CliError(f"{stats.failed + remaining} records failed: {reason}")
    return EXIT_OK


def _throttle(throughput: float | None, sent: int, started: float) -> None:
    if throughput is None:
        return
    ahead = sent / throughput - (time.monotonic() - started)
    if ahead > 0:
        time.sleep(ahead)


def _produce_one(producer: Any, topic: str, payload: bytes, stats: ProduceStats) -> None:
    while True:
        try:
            producer.produce(topic, payload, on_delivery=stats.report)
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)


def _produce_summary(args: argparse.Namespace, stats: ProduceStats, elapsed: float) -> None:
    latencies = sorted(stats.latencies_ms)
    average = sum(latencies) / len(latencies) if latencies else 0.0
    document = {
        "records": stats.delivered,
        "failed": stats.failed,
        "seconds": round(elapsed, 3),
        "records_per_s": round(stats.delivered / elapsed, 1),
        "mb_per_s": round(stats.delivered * args.record_size / MB / elapsed, 3),
        "latency_ms": {
            "avg": round(average, 2),
            "p50": round(percentile(latencies, 0.50), 2),
            "p95": round(percentile(latencies, 0.95), 2),
            "p99": round(percentile(latencies, 0.99), 2),
            "max": round(latencies[-1] if latencies else 0.0, 2),
        },
    }
    rows = [(k, v) for k, v in document.items() if k != "latency_ms"]
    rows += [(f"latency {k} (ms)", v) for k, v in document["latency_ms"].items()]
    emit(args.output, document, ("metric", "value"), rows, title=f"perf produce {args.topic}")


def perf_consume(args: argparse.Namespace) -> int:
    """Reads --num-records records (from the beginning, or as --group) as fast as it can."""
    conn = Connection.from_args(args)
    consumer = conn.consumer(
        **{
            "group.id": args.group or "odradek-perf",
            "enable.auto.commit": bool(args.group),
            "auto.offset.reset": "earliest",
        }
    )
    try:
        meta = conn.topic(consumer, args.topic)
        if args.group:
            consumer.subscribe([args.topic])
        else:
            consumer.assign(
                [TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
            )
        records, size, elapsed = _consume_until(consumer, args)
    finally:
        consumer.close()
    _consume_summary(args, records, size, elapsed)
    if records < args.num_records:
        message(
            f"odradek: only {records} of {args.num_records} records within "
            f"{args.idle_timeout:g} s without new records"
        )
        return EXIT_FAILURE
    return EXIT_OK


def _consume_until(consumer: Any, args: argparse.Namespace) -> tuple[int, int, float]:
    """Records and bytes read, and seconds from the start to the last record."""
    records = size = 0
    started = last_record = time.monotonic()
    with progress_bar(args.num_records, "consume") as advance:
        while records < args.num_records:
            batch = consumer.consume(min(500, args.num_records - records), 0.2)
            good = [m for m in batch if m.error() is None]
            if not good:
                if time.monotonic() - last_record > args.idle_timeout:
                    break
                continue
            last_record = time.monotonic()
            records += len(good)
            size += sum(len(m.value() or b"") + len(m.key() or b"") for m in good)
            advance(len(good))
    return records, size, max(last_record - started, 1e-9)


def _consume_summary(args: argparse.Namespace, records: int, size: int, elapsed: float) -> None:
    document = {
        "records": records,
        "mb": round(size / MB, 3),
        "seconds": round(elapsed, 3),
        "records_per_s": round(records / elapsed, 1),
        "mb_per_s": round(size / MB / elapsed, 3),
    }
    rows = list(document.items())
    emit(args.output, document, ("metric", "value"), rows, title=f"perf consume {args.topic}")
