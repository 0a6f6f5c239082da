"""`odradek perf produce | consume`: throughput (and produce latency) tests, like Kafka's
kafka-producer-perf-test and kafka-consumer-perf-test, with their option names where they
have one (`--num-records`, `--throughput -1`, `--producer-props`, `--payload-file`,
`--print-metrics`, `--transactional-id`, `--messages`), keys and a partition count for new
topics. This module holds the options; perfproduce.py and perfconsume.py the runs."""

from __future__ import annotations

import argparse

from odradek.cli.common import (
    add_client_properties,
    add_common_options,
    add_topic_argument,
    positive_float,
    positive_int,
)
from odradek.cli.perfconsume import perf_consume
from odradek.cli.perfproduce import TRANSACTION_ID_PREFIX, perf_produce


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
