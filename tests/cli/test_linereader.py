"""Input lines as records, in-process: kcat's --key-separator and the properties of Kafka's
console producer line reader."""

from __future__ import annotations

import io

import pytest

from odradek.cli.common import CliError
from odradek.cli.linereader import Line, LineFormat, parse_line, read_lines


def test_default_is_the_whole_line_as_value() -> None:
    """Without options every line (CR LF or LF dropped) is a value without key."""
    lines = list(read_lines(io.BytesIO(b"a\tb\r\nc:d\nlast"), LineFormat()))
    assert lines == [Line(None, b"a\tb"), Line(None, b"c:d"), Line(None, b"last")]


def test_key_separator_as_kcat() -> None:
    """--key-separator: the key before the first SEP; no SEP means no key."""
    fmt = LineFormat.key_split(":")
    assert parse_line(b"k:v:w", fmt) == Line(b"k", b"v:w")
    assert parse_line(b"plain", fmt) == Line(None, b"plain")
    assert parse_line(b":v", fmt) == Line(b"", b"v")


def test_kafka_properties_headers_key_value_and_null_marker() -> None:
    """parse.headers and parse.key split headers, key and value in Kafka's order with its
    default separators (tab, comma, colon); a part equal to null.marker is null."""
    fmt = LineFormat.from_properties(
        {"parse.key": "true", "parse.headers": "TRUE", "null.marker": "NULL"}
    )
    line = parse_line(b"h1:a,h2:NULL\tk\tv", fmt)
    assert line == Line(b"k", b"v", [("h1", b"a"), ("h2", None)])
    assert parse_line(b"NULL\tNULL\tNULL", fmt) == Line(None, None, [])
    custom = LineFormat.from_properties(
        {"parse.key": "true", "key.separator": " => ", "parse.headers": "false"}
    )
    assert parse_line(b"key => value => more", custom) == Line(b"key", b"value => more")


def test_missing_separator_is_an_error_unless_ignored() -> None:
    """A line without the key separator (or a header without its key separator) stops the
    run with the line number; ignore.error makes the key absent (header value null)."""
    strict = LineFormat.from_properties({"parse.key": "true"})
    with pytest.raises(CliError) as failed:
        list(read_lines(io.BytesIO(b"k\tv\nno-separator\n"), strict))
    assert failed.value.code == 1 and "line 2" in failed.value.message
    lenient = LineFormat.from_properties({"parse.key": "true", "ignore.error": "true"})
    assert parse_line(b"no-separator", lenient) == Line(None, b"no-separator")
    headers = LineFormat.from_properties({"parse.headers": "true", "ignore.error": "true"})
    assert parse_line(b"lonely\tv", headers) == Line(None, b"v", [("lonely", None)])


def test_bad_properties_are_usage_errors() -> None:
    """Unknown names, empty separators and separators Kafka requires to differ."""
    for props in (
        {"parse.kye": "true"},
        {"key.separator": ""},
        {"headers.separator": ":"},
        {"null.marker": "\t"},
    ):
        with pytest.raises(CliError) as failed:
            LineFormat.from_properties(props)
        assert failed.value.code == 2, props
