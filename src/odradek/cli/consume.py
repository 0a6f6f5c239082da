"""`odradek consume TOPIC`: print records, as a group member or from chosen positions."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from odradek.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Connection,
    add_client_properties,
    add_common_options,
    add_topic_argument,
    kafka_error,
    non_negative_int,
    parse_pairs,
    positive_int,
)
from odradek.cli.output import message
from odradek.cli.recordfmt import DEFAULT_FORMAT, as_json, compile_format, kafka_format, render

BATCH = 500
POLL_S = 0.2


NAMED_OFFSETS = {"earliest": OFFSET_BEGINNING, "latest": OFFSET_END}


def start_offset(text: str) -> int | str:
    """argparse type of --offset: an offset >= 0, or "earliest" / "latest"."""
    if text.lower() in NAMED_OFFSETS:
        return text.lower()
    return non_negative_int(text)


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of `odradek consume`."""
    add_topic_argument(parser)
    parser.add_argument("--group", metavar="GROUP", help="subscribe as a member of GROUP")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--from-beginning", action="store_true", help="start at the log start")
    start.add_argument(
        "--offset",
        type=start_offset,
        metavar="N",
        help="start at offset N, or at earliest / latest (as Kafka's console consumer)",
    )
    start.add_argument("--timestamp", type=non_negative_int, metavar="MS", help="start at time")
    parser.add_argument("--partition", type=non_negative_int, metavar="P", help="only P")
    parser.add_argument(
        "--count",
        "--max-messages",
        dest="count",
        type=positive_int,
        metavar="N",
        help="stop after N records",
    )
    parser.add_argument(
        "--timeout-ms",
        type=positive_int,
        metavar="MS",
        help="stop after MS milliseconds without a record",
    )
    parser.add_argument(
        "--exit-at-end", action="store_true", help="stop at the end offsets as of start"
    )
    parser.add_argument(
        "--isolation-level",
        choices=("read_committed", "read_uncommitted"),
        default="read_committed",
        help="read_uncommitted also prints records of open and aborted transactions "
        "(default %(default)s)",
    )
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument(
        "--format",
        help="%%t topic %%p partition %%o offset %%k key %%v value %%h headers "
        "%%T timestamp %%K/%%S key/value length, \\n \\t escapes "
        f"(default {DEFAULT_FORMAT.replace('%', '%%')})",
    )
    layout.add_argument(
        "--property",
        "--formatter-property",
        dest="properties",
        action="append",
        metavar="KEY=VALUE",
        help="Kafka's console consumer layout instead: print.timestamp, print.partition, "
        "print.offset, print.headers, print.key, print.value (true/false), key.separator, "
        "line.separator, headers.separator, null.literal (repeatable)",
    )
    add_client_properties(parser, "consumer", "--consumer-property")
    add_common_options(parser)
    parser.set_defaults(handler=consume)


@dataclass
class Progress:
    """Where consumption stands: records printed, partitions at their end."""

    ends: dict[int, int]
    count: int | None
    exit_at_end: bool
    idle_s: float | None = None
    printed: int = 0
    at_end: set[int] = field(default_factory=set)
    stop: bool = False
    last_record: float = field(default_factory=time.monotonic)

    def wanted(self, msg: Message) -> bool:
        """Whether to print `msg` (not past the end offsets of --exit-at-end)."""
        partition, offset = msg.partition() or 0, msg.offset() or 0
        end = self.ends.get(partition)
        if self.exit_at_end and end is not None and offset + 1 >= end:
            self.at_end.add(partition)
            return offset < end
        return True

    def done(self, assigned: list[int]) -> bool:
        """Stopped by a signal, --count, --timeout-ms without a record, or (with
        --exit-at-end) every partition at its end."""
        if self.stop or (self.count is not None and self.printed >= self.count):
            return True
        if self.idle_s is not None and time.monotonic() - self.last_record >= self.idle_s:
            return True
        return self.exit_at_end and bool(assigned) and set(assigned) <= self.at_end


def consume(args: argparse.Namespace) -> int:
    """Reads until --count, --timeout-ms, --exit-at-end or a signal; prints each record."""
    _check_usage(args)
    conn = Connection.from_args(args)
    write = _writer(args)
    consumer = conn.consumer(**_consumer_defaults(args))
    try:
        return _consume(conn, consumer, args, write)
    finally:
        consumer.close()


def _check_usage(args: argparse.Namespace) -> None:
    if args.group and (args.offset is not None or args.timestamp is not None):
        raise CliError("--offset and --timestamp need no --group (they assign partitions)", 2)
    if args.group and args.partition is not None:
        raise CliError("--partition cannot be used with --group", EXIT_USAGE)


def _consumer_defaults(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "group.id": args.group or "odradek-cli",
        "enable.auto.commit": bool(args.group),
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest" if args.from_beginning else "latest",
        "enable.partition.eof": True,
        "isolation.level": args.isolation_level,
    }


def _consume(
    conn: Connection, consumer: Consumer, args: argparse.Namespace, write: Callable[[Message], None]
) -> int:
    meta = conn.topic(consumer, args.topic)
    partitions = sorted(meta.partitions)
    if args.partition is not None:
        if args.partition not in meta.partitions:
            raise CliError(f"topic {args.topic} has no partition {args.partition}")
        partitions = [args.partition]
    ends = _end_offsets(conn, consumer, args.topic, partitions) if args.exit_at_end else {}
    idle_s = args.timeout_ms / 1000 if args.timeout_ms is not None else None
    progress = Progress(ends, args.count, args.exit_at_end, idle_s)
    if args.group:
        consumer.subscribe([args.topic])
    else:
        consumer.assign(_start_positions(conn, consumer, args, partitions))
    _on_signals(progress)
    _loop(conn, consumer, args, progress, write)
    if args.group and progress.printed:
        _commit(consumer)
    message(f"consumed {progress.printed} records")
    return EXIT_OK


def _end_offsets(
    conn: Connection, consumer: Consumer, topic: str, partitions: list[int]
) -> dict[int, int]:
    ends = {}
    for p in partitions:
        try:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=conn.timeout, cached=False
            )
        except KafkaException as exc:
            raise kafka_error(exc, topic, conn) from None
        ends[p] = int(high)
    return ends


def _start_positions(
    conn: Connection, consumer: Consumer, args: argparse.Namespace, partitions: list[int]
) -> list[TopicPartition]:
    """Where each assigned partition starts (the end unless told otherwise)."""
    if args.timestamp is not None:
        query = [TopicPartition(args.topic, p, args.timestamp) for p in partitions]
        try:
            found = consumer.offsets_for_times(query, timeout=conn.timeout)
        except KafkaException as exc:
            raise kafka_error(exc, args.topic, conn) from None
        return [
            TopicPartition(args.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
            for tp in found
        ]
    if args.offset is not None:
        start = NAMED_OFFSETS.get(args.offset, args.offset)
    else:
        start = OFFSET_BEGINNING if args.from_beginning else OFFSET_END
    return [TopicPartition(args.topic, p, start) for p in partitions]


def _on_signals(progress: Progress) -> None:
    """SIGINT and SIGTERM end the loop at the next poll (within POLL_S)."""

    def handler(_signum: int, _frame: Any) -> None:
        progress.stop = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _loop(
    conn: Connection,
    consumer: Consumer,
    args: argparse.Namespace,
    progress: Progress,
    write: Callable[[Message], None],
) -> None:
    while not progress.done(_assigned(consumer, args)):
        for msg in consumer.consume(BATCH, POLL_S):
            error = msg.error()
            if error is not None:
                _handle_error(conn, error, msg, args, progress)
            elif progress.wanted(msg):
                write(msg)
                progress.printed += 1
                progress.last_record = time.monotonic()
                if args.group:
                    consumer.store_offsets(message=msg)
            if progress.done(_assigned(consumer, args)):
                break
        sys.stdout.buffer.flush()


def _assigned(consumer: Consumer, args: argparse.Namespace) -> list[int]:
    return [tp.partition for tp in consumer.assignment() if tp.topic == args.topic]


def _handle_error(
    conn: Connection, error: KafkaError, msg: Message, args: argparse.Namespace, progress: Progress
) -> None:
    if error.code() == KafkaError._PARTITION_EOF:
        if progress.exit_at_end:
            progress.at_end.add(msg.partition() or 0)
        return
    if error.fatal() or error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
        raise kafka_error(KafkaException(error), args.topic, conn)
    message(f"odradek: warning: {error.str()}")


def _commit(consumer: Consumer) -> None:
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        first = exc.args[0] if exc.args else None
        if not (isinstance(first, KafkaError) and first.code() == KafkaError._NO_OFFSET):
            raise


def _writer(args: argparse.Namespace) -> Callable[[Message], None]:
    """How one record is written to stdout: --output json (one object per line), Kafka's
    console consumer layout (--property), or the --format."""
    out = sys.stdout.buffer
    if args.output == "json" and (args.format is not None or args.properties):
        raise CliError("--output json prints whole records: no --format or --property", 2)
    if args.output == "json":

        def write_json(msg: Message) -> None:
            out.write(json.dumps(as_json(msg), ensure_ascii=False).encode() + b"\n")

        return write_json
    if args.properties:
        parts = kafka_format(parse_pairs(args.properties, "--property"))
    else:
        parts = compile_format(args.format or DEFAULT_FORMAT)

    def write_formatted(msg: Message) -> None:
        out.write(render(parts, msg))

    return write_formatted
