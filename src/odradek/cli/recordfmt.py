"""Rendering consumed records: kcat-like `--format` strings and JSON objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import Message

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


def as_json(msg: Message) -> dict[str, Any]:
    """One record as a JSON-ready object (keys, values, headers as UTF-8 text)."""
    headers = [[k, text(v)] for k, v in header_pairs(msg)]
    return {
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "timestamp": msg.timestamp()[1],
        "key": text(msg.key()),
        "value": text(msg.value()),
        "headers": headers,
    }
