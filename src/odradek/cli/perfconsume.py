"""`odradek perf consume`: reads a number of records as fast as it can (from the
beginning, or as a group member) and reports throughput, records per partition, and the
client's statistics when asked."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from odradek.cli.clientstats import StatsCollector, emit_summary
from odradek.cli.common import EXIT_FAILURE, EXIT_OK, Connection
from odradek.cli.liveline import MB, LiveLine
from odradek.cli.output import message


def perf_consume(args: argparse.Namespace) -> int:
    """Reads --num-records records (from the beginning, or as --group) as fast as it can."""
    conn = Connection.from_args(args)
    collector = StatsCollector() if args.print_metrics else None
    defaults: dict[str, Any] = {
        "group.id": args.group or "odradek-perf",
        "enable.auto.commit": bool(args.group),
        "auto.offset.reset": "earliest",
    }
    if collector is not None:
        defaults.update(collector.config())
    consumer = conn.consumer(**defaults)
    try:
        meta = conn.topic(consumer, args.topic)
        if args.group:
            consumer.subscribe([args.topic])
        else:
            consumer.assign(
                [TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
            )
        result = _consume_until(consumer, args)
        metrics = _consumer_metrics(collector, consumer, conn)
    finally:
        consumer.close()
    _consume_summary(args, result, metrics)
    if result.records < args.num_records:
        message(
            f"odradek: only {result.records} of {args.num_records} records within "
            f"{args.idle_timeout:g} s without new records"
        )
        return EXIT_FAILURE
    return EXIT_OK


@dataclass
class Consumed:
    """What a perf consume read: records, bytes, seconds to the last record, per partition."""

    records: int = 0
    size: int = 0
    elapsed: float = 1e-9
    partitions: Counter[int] = field(default_factory=Counter)


def _consume_until(consumer: Any, args: argparse.Namespace) -> Consumed:
    result = Consumed()
    started = last_record = time.monotonic()
    line = LiveLine("consume", args.num_records)
    try:
        while result.records < args.num_records:
            batch = consumer.consume(min(500, args.num_records - result.records), 0.2)
            good = [m for m in batch if m.error() is None]
            if not good:
                if time.monotonic() - last_record > args.idle_timeout:
                    break
                continue
            last_record = time.monotonic()
            result.records += len(good)
            result.size += sum(len(m.value() or b"") + len(m.key() or b"") for m in good)
            result.partitions.update(m.partition() or 0 for m in good)
            line.update(result.records, result.size)
    finally:
        line.close()
    result.elapsed = max(last_record - started, 1e-9)
    return result


def _consumer_metrics(
    collector: StatsCollector | None, consumer: Any, conn: Connection
) -> dict[str, float] | None:
    """Statistics after the run; the partitions are paused first so that polling for them
    reads no more records (nor commits them)."""
    if collector is None:
        return None
    consumer.pause(consumer.assignment())
    return collector.metrics(consumer.poll, conn.timeout)


def _consume_summary(
    args: argparse.Namespace, result: Consumed, metrics: dict[str, float] | None
) -> None:
    document: dict[str, Any] = {
        "records": result.records,
        "mb": round(result.size / MB, 3),
        "seconds": round(result.elapsed, 3),
        "records_per_s": round(result.records / result.elapsed, 1),
        "mb_per_s": round(result.size / MB / result.elapsed, 3),
        "partitions": {str(p): n for p, n in sorted(result.partitions.items())},
    }
    rows = [(k, v) for k, v in document.items() if k != "partitions"]
    rows += [(f"partition {p} records", n) for p, n in document["partitions"].items()]
    emit_summary(args.output, document, rows, metrics, f"perf consume {args.topic}")
