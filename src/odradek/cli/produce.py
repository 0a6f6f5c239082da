"""`odradek produce TOPIC`: one record per input line (stdin or --file)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from odradek.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    CliError,
    Connection,
    add_client_properties,
    add_common_options,
    add_topic_argument,
    kafka_error,
    non_negative_int,
    parse_pairs,
)
from odradek.cli.linereader import Line, LineFormat, read_lines
from odradek.cli.output import message

ACKS = ("0", "1", "all", "-1")
COMPRESSION = ("none", "gzip", "snappy", "lz4", "zstd")
# How long a record may wait for its acknowledgement (librdkafka's message.timeout.ms)
DELIVERY_TIMEOUT_MS = 30_000


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of `odradek produce`."""
    add_topic_argument(parser)
    parser.add_argument("--file", metavar="PATH", help="read lines from PATH, not stdin")
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument(
        "--key-separator", metavar="SEP", help="key and value split at the first SEP (kcat's -K)"
    )
    layout.add_argument(
        "--property",
        dest="properties",
        action="append",
        metavar="KEY=VALUE",
        help="Kafka's console producer line reader instead: parse.key, parse.headers, "
        "ignore.error (true/false), key.separator, headers.delimiter, headers.separator, "
        "headers.key.separator, null.marker (repeatable)",
    )
    parser.add_argument(
        "--header", action="append", default=[], metavar="KEY=VALUE", help="(repeatable)"
    )
    parser.add_argument("--partition", type=non_negative_int, metavar="P")
    parser.add_argument(
        "--acks", "--request-required-acks", dest="acks", choices=ACKS, default="all"
    )
    parser.add_argument(
        "--compression",
        "--compression-codec",
        dest="compression",
        choices=COMPRESSION,
        default="none",
    )
    add_client_properties(parser, "producer", "--producer-property")
    add_common_options(parser)
    parser.set_defaults(handler=produce)


@dataclass
class Deliveries:
    """Delivery reports: how many records and bytes were acknowledged, the first error."""

    records: int = 0
    bytes: int = 0
    failed: int = 0
    first_error: KafkaError | None = None
    offsets: dict[int, int] = field(default_factory=dict)

    def report(self, err: KafkaError | None, msg: Message) -> None:
        """The delivery callback."""
        if err is not None:
            self.failed += 1
            self.first_error = self.first_error or err
            return
        self.records += 1
        self.bytes += len(msg.value() or b"") + len(msg.key() or b"")


def produce(args: argparse.Namespace) -> int:
    """Sends every line, waits for every acknowledgement, prints a summary on stderr."""
    conn = Connection.from_args(args)
    parse_pairs(args.header, "--header")  # validates
    headers = _ordered_headers(args.header)
    if args.properties:
        fmt = LineFormat.from_properties(parse_pairs(args.properties, "--property"))
    else:
        fmt = LineFormat.key_split(args.key_separator)
    producer = conn.producer(
        **{
            "acks": args.acks,
            "compression.type": args.compression,
            "message.timeout.ms": DELIVERY_TIMEOUT_MS,
            "enable.idempotence": False,
        }
    )
    meta = conn.topic(producer, args.topic, create=True)
    if args.partition is not None and args.partition not in meta.partitions:
        raise CliError(f"topic {args.topic} has no partition {args.partition}")
    deliveries = Deliveries()
    started = time.monotonic()
    with _input(args.file) as stream:
        try:
            sent = _send_all(producer, args, read_lines(stream, fmt), headers, deliveries)
        finally:
            # the lines before a bad one are still delivered
            remaining = producer.flush(DELIVERY_TIMEOUT_MS / 1000 + conn.timeout)
    elapsed = time.monotonic() - started
    _summary(args, sent, deliveries, elapsed)
    if deliveries.first_error is not None:
        raise kafka_error(_as_exception(deliveries.first_error), args.topic, conn)
    if remaining:
        raise CliError(f"{remaining} records were not acknowledged")
    return EXIT_OK if deliveries.failed == 0 else EXIT_FAILURE


def _ordered_headers(items: list[str]) -> list[tuple[str, bytes]]:
    """Headers in order, repeated keys kept (parse_pairs would merge them)."""
    out = []
    for item in items:
        key, _, value = item.partition("=")
        out.append((key.strip(), value.encode()))
    return out


def _as_exception(err: KafkaError) -> Exception:
    return KafkaException(err)


class _input:
    """`--file` opened in binary, or stdin's bytes (not closed)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.stream: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        if self.path is None:
            return sys.stdin.buffer
        try:
            self.stream = open(self.path, "rb")  # closed in __exit__
        except OSError as exc:
            raise CliError(f"cannot read {self.path}: {exc.strerror}") from None
        return self.stream

    def __exit__(self, *exc: object) -> None:
        if self.stream is not None:
            self.stream.close()


def _send_all(
    producer: Producer,
    args: argparse.Namespace,
    lines: Iterator[Line],
    headers: list[tuple[str, bytes]],
    deliveries: Deliveries,
) -> int:
    """Produces every line (waiting for room when the local queue is full); the line's
    own headers come before the --header ones."""
    sent = 0
    extra: dict[str, Any] = {}
    if args.partition is not None:
        extra["partition"] = args.partition
    for line in lines:
        extra.pop("headers", None)
        if line.headers or headers:
            extra["headers"] = [*line.headers, *headers]
        while True:
            try:
                producer.produce(
                    args.topic, line.value, line.key, on_delivery=deliveries.report, **extra
                )
                break
            except BufferError:
                producer.poll(0.1)
        sent += 1
        producer.poll(0)
    return sent


def _summary(args: argparse.Namespace, sent: int, d: Deliveries, elapsed: float) -> None:
    document = {
        "topic": args.topic,
        "records": d.records,
        "failed": d.failed,
        "bytes": d.bytes,
        "seconds": round(elapsed, 3),
    }
    if args.output == "json":
        message(json.dumps(document))
        return
    rate = d.records / elapsed if elapsed > 0 else 0.0
    message(
        f"produced {d.records} of {sent} records ({d.bytes} bytes) to {args.topic} "
        f"in {elapsed:.3f} s ({rate:.0f} records/s)"
    )
