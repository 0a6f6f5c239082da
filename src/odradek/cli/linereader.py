"""Input lines as records for `odradek produce`: kcat's `--key-separator`, or the
properties of Kafka's console producer line reader (`--property parse.key=true`,
`key.separator`, `parse.headers`, `headers.delimiter`, `headers.separator`,
`headers.key.separator`, `null.marker`, `ignore.error`) with its defaults."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from odradek.cli.common import EXIT_USAGE, CliError

Header = tuple[str, bytes | None]

# property name -> LineFormat field
FLAGS = {"parse.key": "parse_key", "parse.headers": "parse_headers", "ignore.error": "ignore_error"}
TEXTS = {
    "key.separator": "key_separator",
    "headers.delimiter": "headers_delimiter",
    "headers.separator": "headers_separator",
    "headers.key.separator": "headers_key_separator",
    "null.marker": "null_marker",
}
# Pairs that must differ, or a line would split two ways (Kafka refuses the same pairs).
_DISTINCT = (
    ("headers.delimiter", "headers.separator"),
    ("headers.delimiter", "headers.key.separator"),
    ("headers.separator", "headers.key.separator"),
    ("null.marker", "key.separator"),
    ("null.marker", "headers.separator"),
    ("null.marker", "headers.delimiter"),
    ("null.marker", "headers.key.separator"),
)


@dataclass(frozen=True)
class Line:
    """One input line as a record."""

    key: bytes | None
    value: bytes | None
    headers: list[Header] = field(default_factory=list)


@dataclass(frozen=True)
class LineFormat:
    """How a line splits into headers, key and value (by default the whole line is the
    value)."""

    parse_key: bool = False
    key_separator: bytes = b"\t"
    parse_headers: bool = False
    headers_delimiter: bytes = b"\t"
    headers_separator: bytes = b","
    headers_key_separator: bytes = b":"
    ignore_error: bool = False
    null_marker: bytes | None = None

    @classmethod
    def key_split(cls, separator: str | None) -> LineFormat:
        """`--key-separator SEP` (kcat's -K): the key before the first SEP; a line without
        SEP is all value, without a key."""
        if not separator:
            return cls()
        return cls(parse_key=True, key_separator=separator.encode(), ignore_error=True)

    @classmethod
    def from_properties(cls, properties: dict[str, str]) -> LineFormat:
        """The console producer's reader properties; unknown names, empty separators and
        separators that must differ but do not are usage errors."""
        unknown = sorted(set(properties) - set(FLAGS) - set(TEXTS))
        if unknown:
            known = " ".join([*FLAGS, *TEXTS])
            raise CliError(f"--property: unknown {', '.join(unknown)} (known: {known})", EXIT_USAGE)
        values: dict[str, Any] = {}
        for name, text in properties.items():
            if name in FLAGS:
                values[FLAGS[name]] = text.strip().lower() == "true"
            elif not text:
                raise CliError(f"--property: {name} may not be empty", EXIT_USAGE)
            else:
                values[TEXTS[name]] = text.encode()
        fmt = cls(**values)
        for first, second in _DISTINCT:
            if fmt.text(first) == fmt.text(second):
                raise CliError(f"--property: {first} and {second} may not be equal", EXIT_USAGE)
        return fmt

    def text(self, name: str) -> bytes | None:
        """A separator or marker by its property name."""
        value: bytes | None = getattr(self, TEXTS[name])
        return value


class LineError(CliError):
    """A line the format cannot split (exit 1)."""


def read_lines(stream: BinaryIO, fmt: LineFormat) -> Iterator[Line]:
    """Records of the input, one per line (the line ending dropped)."""
    for number, raw in enumerate(stream, start=1):
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if line.endswith(b"\r"):
            line = line[:-1]
        yield parse_line(line, fmt, number)


def parse_line(line: bytes, fmt: LineFormat, number: int = 1) -> Line:
    """Headers (up to headers.delimiter), then key (up to key.separator), then value, as
    Kafka's line reader splits them; a part equal to null.marker is null."""
    start = 0
    headers: list[Header] = []
    if fmt.parse_headers:
        part, start = _cut(line, start, fmt.headers_delimiter, fmt, "headers delimiter", number)
        if part is not None and part != fmt.null_marker:
            headers = [_header(pair, fmt, number) for pair in part.split(fmt.headers_separator)]
    key = None
    if fmt.parse_key:
        key, start = _cut(line, start, fmt.key_separator, fmt, "key separator", number)
    value: bytes | None = line[start:]
    return Line(_null(key, fmt), _null(value, fmt), headers)


def _cut(
    line: bytes, start: int, separator: bytes, fmt: LineFormat, what: str, number: int
) -> tuple[bytes | None, int]:
    """The part from `start` to `separator` and where the rest begins; a line without the
    separator is an error unless ignore.error (then the part is absent)."""
    end = line.find(separator, start)
    if end < 0:
        if fmt.ignore_error:
            return None, start
        raise LineError(f"no {what} on line {number}: {line.decode(errors='replace')!r}")
    return line[start:end], end + len(separator)


def _header(pair: bytes, fmt: LineFormat, number: int) -> Header:
    name, sep, value = pair.partition(fmt.headers_key_separator)
    if not sep:
        if fmt.ignore_error:
            return pair.decode(errors="replace"), None
        raise LineError(
            f"no header key separator in {pair.decode(errors='replace')!r} on line {number}"
        )
    if name == fmt.null_marker:
        raise LineError(f"a header key may not be the null marker (line {number})")
    return name.decode(errors="replace"), _null(value, fmt)


def _null(part: bytes | None, fmt: LineFormat) -> bytes | None:
    return None if part is None or part == fmt.null_marker else part
