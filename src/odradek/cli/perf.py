"""`odradek perf produce | consume`: throughput (and produce latency) tests, like Kafka's
kafka-producer-perf-test and kafka-consumer-perf-test, with their option names where they
have one (`--num-records`, `--throughput -1`, `--producer-props`, `--payload-file`,
`--print-metrics`, `--messages`), keys and a partition count for new topics."""

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

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, TopicPartition

from odradek.cli.ck import NewTopic
from odradek.cli.clientstats import StatsCollector, select_metrics
from odradek.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Connection,
    add_client_properties,
    add_common_options,
    add_topic_argument,
    positive_float,
    positive_int,
    wait,
)
from odradek.cli.liveline import MB, LiveLine
from odradek.cli.output import emit, message

# Kafka's perf tool defaults for transactions.
TRANSACTION_ID_PREFIX = "performance-producer-"
TRANSACTION_DURATION_MS = 3000


def configure(perf: argparse.ArgumentParser) -> None:
    """The subcommands of `odradek perf`."""
    actions = perf.add_subparsers(dest="action", required=True, metavar="ACTION")
    _configure_produce(actions.add_parser("produce", help="producer throughput and latency"))
    _configure_consume(actions.add_parser("consume", help="consumer throughput"))


def _configure_produce(produce: argparse.ArgumentParser) -> None:
    add_topic_argument(produce)
    produce.add_argument("--num-records", type=positive_int, required=True, metavar="N")
    payload = produce.add_mutually_exclusive_group(required=True)
    payload.add_argument("--record-size", type=positive_int, metavar="BYTES")
    payload.add_argument(
        "--payload-file", metavar="PATH", help="values picked at random from PATH's payloads"
    )
    produce.add_argument(
        "--payload-delimiter",
        default="\\n",
        metavar="SEP",
        help="what separates --payload-file's payloads (default \\n)",
    )
    produce.add_argument(
        "--throughput",
        type=throughput,
        metavar="R",
        help="at most R records/s; -1 (the default) for no limit",
    )
    produce.add_argument(
        "--keys",
        type=positive_int,
        metavar="N",
        help="key the records key-0 .. key-(N-1) in turn (default: no key)",
    )
    produce.add_argument(
        "--partitions",
        type=positive_int,
        metavar="N",
        help="create a missing TOPIC with N partitions (default: the broker auto-creates it)",
    )
    produce.add_argument(
        "--acks",
        choices=("0", "1", "all", "-1"),
        help="default 1, all with transactions (which need it)",
    )
    produce.add_argument(
        "--transactional-id",
        metavar="ID",
        help="produce in transactions as ID (Kafka's perf tool option)",
    )
    produce.add_argument(
        "--transaction-duration-ms",
        type=positive_int,
        metavar="MS",
        help="commit each transaction after MS (default 3000 with a transactional id; "
        f"alone it makes the id {TRANSACTION_ID_PREFIX}UUID)",
    )
    produce.add_argument("--batch-size", type=positive_int, metavar="BYTES")
    produce.add_argument("--linger-ms", type=int, metavar="MS")
    _print_metrics_option(produce)
    add_client_properties(produce, "producer", "--producer-props")
    add_common_options(produce)
    produce.set_defaults(handler=perf_produce)


def _configure_consume(consume: argparse.ArgumentParser) -> None:
    add_topic_argument(consume)
    consume.add_argument(
        "--num-records", "--messages", type=positive_int, required=True, metavar="N"
    )
    consume.add_argument("--group", metavar="GROUP", help="subscribe as GROUP")
    consume.add_argument(
        "--idle-timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="give up after this long without records (default 10)",
    )
    _print_metrics_option(consume)
    add_client_properties(consume, "consumer", "--consumer-property")
    add_common_options(consume)
    consume.set_defaults(handler=perf_consume)


def _print_metrics_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--print-metrics",
        action="store_true",
        help="also print the client's statistics (librdkafka's) at the end",
    )


def throughput(text: str) -> float | None:
    """argparse type of --throughput: records/s > 0, or a negative number for no limit
    (Kafka's -1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0, or -1 for no limit")
    return None if value < 0 else value


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
    started = time.monotonic()
    try:
        if txn is not None:
            txn.init()
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
    metrics = _metrics(collector, producer.poll, conn)
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
        elif len(existing.partitions) != args.partitions:
            message(
                f"odradek: topic {args.topic} exists with {len(existing.partitions)} "
                "partitions; --partitions applies to a new topic only"
            )
    conn.topic(producer, args.topic, create=True)


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


def _metrics(
    collector: StatsCollector | None, serve: Callable[[float], Any], conn: Connection
) -> dict[str, float] | None:
    """The client's statistics as of the end of the run, when --print-metrics asked."""
    if collector is None:
        return None
    return select_metrics(collector.refresh(serve, 2.0 + conn.timeout))


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
    _emit(args, document, rows, metrics, f"perf produce {args.topic}")


def _emit(
    args: argparse.Namespace,
    document: dict[str, Any],
    rows: list[tuple[str, Any]],
    metrics: dict[str, float] | None,
    title: str,
) -> None:
    """The summary: one JSON document (metrics inside), or a table (and a metrics table)."""
    if metrics is not None and args.output == "json":
        document["metrics"] = metrics
    emit(args.output, document, ("metric", "value"), rows, title=title)
    if metrics is not None and args.output != "json":
        emit(args.output, metrics, ("metric", "value"), list(metrics.items()), title="metrics")


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
    return _metrics(collector, consumer.poll, conn)


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
    _emit(args, document, rows, metrics, f"perf consume {args.topic}")
