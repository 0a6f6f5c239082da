"""What every client subcommand shares: the common options, client configurations built
from them, one-line errors with exit codes, and the broker reachability check."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from odradek.cli.ck import ClusterMetadata, TopicMetadata

DEFAULT_BOOTSTRAP = "localhost:9092"
BOOTSTRAP_ENV = "ODRADEK_BOOTSTRAP"
DEFAULT_TIMEOUT_S = 5.0

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

# librdkafka error codes meaning "no broker answered", whatever the operation was.
_UNREACHABLE = {
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE,
    KafkaError._MSG_TIMED_OUT,
    KafkaError.REQUEST_TIMED_OUT,
}


class CliError(Exception):
    """A failure reported as one line on stderr, with the process exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


Handler = Callable[[argparse.Namespace], int]


def parse_pairs(items: Sequence[str], what: str) -> dict[str, str]:
    """`["k=v", ...]` as a dict; anything without a key and `=` is a usage error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"{what} expects KEY=VALUE, got {item!r}", EXIT_USAGE)
        out[key.strip()] = value
    return out


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options of every client subcommand (kcat-like `-X` included)."""
    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--bootstrap-server",
        metavar="HOST:PORT",
        default=os.environ.get(BOOTSTRAP_ENV) or DEFAULT_BOOTSTRAP,
        help=f"broker to connect to (default ${BOOTSTRAP_ENV} or {DEFAULT_BOOTSTRAP})",
    )
    group.add_argument(
        "-X",
        dest="client_config",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="librdkafka client property (repeatable)",
    )
    group.add_argument(
        "--output",
        choices=("table", "json"),
        default="table",
        help="rich tables (default) or JSON",
    )
    group.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for the broker (default {DEFAULT_TIMEOUT_S:g})",
    )


def add_topic_argument(parser: argparse.ArgumentParser) -> None:
    """The topic: the first argument, or `--topic` as Kafka's tools spell it (`resolve_topic`
    makes it `args.topic`)."""
    parser.add_argument("topic", metavar="TOPIC", nargs="?")
    parser.add_argument(
        "--topic", dest="topic_option", metavar="TOPIC", help="TOPIC, as Kafka's tools take it"
    )


def resolve_topic(args: argparse.Namespace) -> None:
    """`args.topic` from the argument or --topic, for commands with `add_topic_argument`:
    one of them, or both naming the same topic."""
    if not hasattr(args, "topic_option"):
        return
    given = {name for name in (args.topic, args.topic_option) if name}
    if len(given) != 1:
        problem = "two different topics" if given else "no topic"
        raise CliError(f"{problem}: name one as TOPIC or --topic", EXIT_USAGE)
    args.topic = given.pop()


def add_client_properties(parser: argparse.ArgumentParser, role: str, props: str) -> None:
    """Kafka's tools' ways to pass `role` (producer, consumer) properties: `props` (repeatable
    KEY=VALUE; `--producer-props` takes several at once, as Kafka's perf tool) and
    `--ROLE.config FILE`. Both are librdkafka properties like -X, which overrides them."""
    group = parser.add_argument_group(f"{role} properties (Kafka's tool names)")
    several = props.endswith("-props")
    group.add_argument(
        props,
        dest="client_props",
        metavar="KEY=VALUE",
        action="extend" if several else "append",
        nargs="+" if several else None,
        default=[],
        help=f"{role} propert{'ies' if several else 'y (repeatable)'}; "
        "they override the file's, -X overrides them",
    )
    group.add_argument(
        f"--{role}.config",
        dest="client_config_file",
        metavar="FILE",
        help=f"{role} properties from a Java .properties file",
    )


def read_properties(path: str) -> dict[str, str]:
    """KEY=VALUE (or KEY: VALUE) lines of a Java .properties file; `#` and `!` start
    comments. Line continuations and escapes are not read."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", EXIT_USAGE) from None
    out: dict[str, str] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if cut <= 0:
            raise CliError(f"{path}: expected KEY=VALUE, got {line!r}", EXIT_USAGE)
        out[line[:cut].strip()] = line[cut + 1 :].strip()
    return out


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text!r}")
    return value


@dataclass
class Connection:
    """Where and how to connect, from the common options."""

    bootstrap: str
    overrides: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT_S

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Connection:
        """The connection the parsed common options describe."""
        overrides: dict[str, str] = {}
        path = getattr(args, "client_config_file", None)
        if path is not None:
            overrides.update(read_properties(path))
        overrides.update(parse_pairs(getattr(args, "client_props", []), "property"))
        overrides.update(parse_pairs(args.client_config, "-X"))
        # Kafka's perf tools take the brokers as a property; errors then name those.
        bootstrap = overrides.get("bootstrap.servers", args.bootstrap_server)
        return cls(bootstrap, overrides, args.timeout)

    def config(self, **defaults: Any) -> dict[str, Any]:
        """A client configuration: quiet, short timeouts, then `defaults`, then `-X`."""
        timeout_ms = int(self.timeout * 1000)
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "socket.timeout.ms": max(timeout_ms, 10),
            "socket.connection.setup.timeout.ms": max(timeout_ms, 1000),
            "client.id": "odradek-cli",
        }
        if "debug" not in self.overrides:
            # librdkafka would print every failed connection attempt to stderr
            conf["log_level"] = 0
        conf.update(defaults)
        conf.update(self.overrides)
        return conf

    def admin(self) -> AdminClient:
        """An AdminClient; a bad `-X` property is a usage error."""
        admin: AdminClient = _create(lambda: AdminClient(self.config()))
        return admin

    def producer(self, **defaults: Any) -> Producer:
        """A Producer with `defaults` under the `-X` overrides."""
        producer: Producer = _create(lambda: Producer(self.config(**defaults)))
        return producer

    def consumer(self, **defaults: Any) -> Consumer:
        """A Consumer with `defaults` under the `-X` overrides."""
        consumer: Consumer = _create(lambda: Consumer(self.config(**defaults)))
        return consumer

    def unreachable(self) -> CliError:
        """The error for "no broker answered"."""
        return CliError(f"cannot reach a broker at {self.bootstrap}")

    def metadata(self, client: Any, topic: str | None = None) -> ClusterMetadata:
        """Cluster metadata (of one topic, or all): the reachability check of every command."""
        try:
            result: ClusterMetadata = client.list_topics(topic, timeout=self.timeout)
        except KafkaException as exc:
            raise self.error(exc) from None
        return result

    def topic(self, client: Any, name: str, *, create: bool = False) -> TopicMetadata:
        """One topic's metadata; an unknown topic is an error (exit 1).

        All topics are asked for first: a request naming the topic would make a broker with
        `auto.create.topics.enable` create it. Only `create` (producers, as Kafka's console
        producer and perf tool) names the topic, so such a broker creates it."""
        meta = self.metadata(client).topics.get(name)
        if meta is None and create:
            meta = self._auto_created(client, name)
        if meta is None or meta.error is not None:
            code = meta.error.code() if meta is not None and meta.error is not None else None
            if code not in (None, KafkaError.UNKNOWN_TOPIC_OR_PART):
                raise CliError(f"topic {name}: {meta.error.str()}")  # type: ignore[union-attr]
            raise CliError(f"unknown topic {name}")
        return meta

    def _auto_created(self, client: Any, name: str) -> TopicMetadata | None:
        """The topic's metadata from a request naming it (the broker creates it when
        `auto.create.topics.enable` is on). Kafka answers LEADER_NOT_AVAILABLE until the new
        partitions have leaders, so that answer is asked again, within the timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            meta = self.metadata(client, name).topics.get(name)
            error = meta.error if meta is not None else None
            waiting = error is not None and error.code() == KafkaError.LEADER_NOT_AVAILABLE
            if not waiting or time.monotonic() >= deadline:
                return meta
            time.sleep(0.1)

    def error(self, exc: KafkaException, subject: str = "") -> CliError:
        """A KafkaException as a one-line error."""
        return kafka_error(exc, subject, self)


def _create(factory: Callable[[], Any]) -> Any:
    try:
        return factory()
    except (KafkaException, ValueError, TypeError) as exc:
        raise CliError(f"bad client configuration: {describe(exc)}", EXIT_USAGE) from None


def describe(exc: BaseException) -> str:
    """The message of an exception, KafkaError's own text when it carries one."""
    first = exc.args[0] if exc.args else None
    if isinstance(first, KafkaError):
        return str(first.str())
    return str(exc) or type(exc).__name__


def error_code(exc: BaseException) -> int | None:
    """The KafkaError code an exception carries, if any."""
    first = exc.args[0] if exc.args else None
    return first.code() if isinstance(first, KafkaError) else None


def kafka_error(exc: BaseException, subject: str, conn: Connection) -> CliError:
    """Translates the client's exceptions to the messages users see."""
    code = error_code(exc)
    if code in _UNREACHABLE:
        return conn.unreachable()
    prefix = f"{subject}: " if subject else ""
    if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
        return CliError(f"unknown topic {subject}" if subject else "unknown topic")
    if code == KafkaError.TOPIC_ALREADY_EXISTS:
        return CliError(f"topic {subject} already exists")
    first = exc.args[0] if exc.args else None
    name = f"{first.name()}: " if isinstance(first, KafkaError) else ""
    return CliError(f"{prefix}{name}{describe(exc)}")


def wait(
    future: Any,
    conn: Connection,
    subject: str = "",
    translate: Callable[[KafkaException], CliError | None] | None = None,
) -> Any:
    """The result of an admin future, bounded by the connection timeout; errors in words
    (by `translate` first, when it knows the error)."""
    from concurrent.futures import TimeoutError as FutureTimeout

    try:
        return future.result(timeout=conn.timeout + 1.0)
    except FutureTimeout:
        raise conn.unreachable() from None
    except KafkaException as exc:
        raise (translate and translate(exc)) or kafka_error(exc, subject, conn) from None
