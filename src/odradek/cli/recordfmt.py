"""Rendering consumed records: kcat-like `--format` strings, the layout of Kafka's console
consumer (`--property print.key=true` and friends), and JSON objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, Message

from odradek.cli.common import EXIT_USAGE, CliError
from odradek.cli.output import text

DEFAULT_FORMAT = "%v\\n"

Field = Callable[[Message], bytes]


def _num(value: int | None) -> bytes:
    return str(-1 if value is None else value).encode()


def header_pairs(msg: Message) -> list[tuple[str, bytes | None]]:
    """A record's headers as (name, value) pairs, in order."""
    raw: Any = msg.headers() or []
    items = raw.items() if isinstance(raw, dict) else raw
    out: list[tuple[str, bytes | None]] = []
    for key, value in items:
        name = key if isinstance(key, str) else bytes(key).decode("utf-8", "replace")
        out.append((name, None if value is None else bytes(value)))
    return out


def _headers(msg: Message) -> bytes:
    """`k=v,k=v` (kcat's %h); a null value shows as just `k`."""
    parts = []
    for key, value in header_pairs(msg):
        parts.append(key.encode() if value is None else key.encode() + b"=" + value)
    return b",".join(parts)


FIELDS: dict[str, Field] = {
    "t": lambda m: (m.topic() or "").encode(),
    "p": lambda m: _num(m.partition()),
    "o": lambda m: _num(m.offset()),
    "k": lambda m: m.key() or b"",
    "v": lambda m: m.value() or b"",
    "h": _headers,
    "T": lambda m: _num(m.timestamp()[1]),
    "K": lambda m: _num(len(m.key() or b"") if m.key() is not None else -1),
    "S": lambda m: _num(len(m.value() or b"") if m.value() is not None else -1),
}

ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "0": "\0"}


def compile_format(fmt: str) -> list[bytes | Field]:
    """The parts of `fmt`: literal bytes and field getters. Unknown placeholders are a
    usage error."""
    parts: list[bytes | Field] = []
    literal: list[str] = []
    i = 0
    while i < len(fmt):
        char = fmt[i]
        nxt = fmt[i + 1] if i + 1 < len(fmt) else ""
        if char == "\\" and nxt in ESCAPES:
            literal.append(ESCAPES[nxt])
        elif char == "%" and nxt == "%":
            literal.append("%")
        elif char == "%":
            if nxt not in FIELDS:
                known = " ".join(f"%{k}" for k in FIELDS)
                raise CliError(f"--format: unknown placeholder %{nxt} (known: {known})", EXIT_USAGE)
            if literal:
                parts.append("".join(literal).encode())
                literal = []
            parts.append(FIELDS[nxt])
        else:
            literal.append(char)
            i += 1
            continue
        i += 2
    if literal:
        parts.append("".join(literal).encode())
    return parts


def render(parts: list[bytes | Field], msg: Message) -> bytes:
    """One record through a compiled format."""
    return b"".join(p if isinstance(p, bytes) else p(msg) for p in parts)


def timestamp_type(msg: Message) -> str | None:
    """Kafka's name of the record's timestamp type, None when the record has none."""
    return _TIMESTAMP_TYPES.get(msg.timestamp()[0])


_TIMESTAMP_TYPES = {TIMESTAMP_CREATE_TIME: "CreateTime", TIMESTAMP_LOG_APPEND_TIME: "LogAppendTime"}


def as_json(msg: Message) -> dict[str, Any]:
    """One record as a JSON-ready object (keys, values, headers as UTF-8 text)."""
    headers = [[k, text(v)] for k, v in header_pairs(msg)]
    return {
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "timestamp": msg.timestamp()[1],
        "timestamp_type": timestamp_type(msg),
        "key": text(msg.key()),
        "value": text(msg.value()),
        "headers": headers,
    }


# Kafka's console consumer formatter: its properties and their defaults. The print.*
# fields appear in this order, each followed by key.separator, the last by line.separator.
KAFKA_FLAGS = {
    "print.timestamp": False,
    "print.partition": False,
    "print.offset": False,
    "print.headers": False,
    "print.key": False,
    "print.value": True,
}
KAFKA_TEXTS = {
    "key.separator": "\t",
    "line.separator": "\n",
    "headers.separator": ",",
    "null.literal": "null",
}


def kafka_format(properties: dict[str, str]) -> list[bytes | Field]:
    """The parts of the console consumer's layout for `properties`. An unknown property
    (deserializers included: records are printed as their bytes) is a usage error."""
    unknown = sorted(set(properties) - set(KAFKA_FLAGS) - set(KAFKA_TEXTS))
    if unknown:
        known = " ".join([*KAFKA_FLAGS, *KAFKA_TEXTS])
        raise CliError(f"--property: unknown {', '.join(unknown)} (known: {known})", EXIT_USAGE)
    # As Kafka: a flag is on when its value is "true" in any case, off otherwise.
    on = [name for name, default in KAFKA_FLAGS.items() if _flag(properties, name, default)]
    texts = {name: properties.get(name, default).encode() for name, default in KAFKA_TEXTS.items()}
    fields = [_kafka_field(name, texts) for name in on]
    parts: list[bytes | Field] = []
    for i, field in enumerate(fields):
        last = i == len(fields) - 1
        parts += [field, texts["line.separator"] if last else texts["key.separator"]]
    return parts


def _flag(properties: dict[str, str], name: str, default: bool) -> bool:
    value = properties.get(name)
    return default if value is None else value.strip().lower() == "true"


def _kafka_field(name: str, texts: dict[str, bytes]) -> Field:
    null = texts["null.literal"]
    if name == "print.timestamp":
        return _kafka_timestamp
    if name == "print.partition":
        return lambda m: b"Partition:" + _num(m.partition())
    if name == "print.offset":
        return lambda m: b"Offset:" + _num(m.offset())
    if name == "print.headers":
        return lambda m: _kafka_headers(m, texts["headers.separator"], null)
    if name == "print.key":
        return lambda m: null if m.key() is None else m.key() or b""
    return lambda m: null if m.value() is None else m.value() or b""


def _kafka_timestamp(msg: Message) -> bytes:
    kind = timestamp_type(msg)
    return b"NO_TIMESTAMP" if kind is None else f"{kind}:{msg.timestamp()[1]}".encode()


def _kafka_headers(msg: Message, separator: bytes, null: bytes) -> bytes:
    """`k:v` joined by headers.separator, a null value as null.literal; NO_HEADERS if none."""
    pairs = header_pairs(msg)
    if not pairs:
        return b"NO_HEADERS"
    return separator.join(k.encode() + b":" + (null if v is None else v) for k, v in pairs)
