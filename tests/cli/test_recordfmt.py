"""The consume output formats, in-process: kcat-like placeholders and JSON objects."""

from __future__ import annotations

from typing import Any

import pytest

from odradek.cli.common import CliError
from odradek.cli.recordfmt import DEFAULT_FORMAT, as_json, compile_format, kafka_format, render


class FakeMessage:
    """What the formats read from a confluent_kafka Message."""

    def __init__(self, key: bytes | None, value: bytes | None, headers: Any) -> None:
        self._key, self._value, self._headers = key, value, headers

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 41

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> Any:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (self.timestamp_type, 1700000000000)

    timestamp_type = 1  # librdkafka's TIMESTAMP_CREATE_TIME


def test_placeholders_and_escapes() -> None:
    """Every placeholder, %% and the backslash escapes render as kcat does."""
    msg: Any = FakeMessage(b"k", b"v\xff", [("a", b"1"), ("n", None)])
    parts = compile_format(r"%t %p %o %k %v %h %T %K %S %%\t|\n")
    assert render(parts, msg) == b"t 2 41 k v\xff a=1,n 1700000000000 1 2 %\t|\n"
    assert render(compile_format(DEFAULT_FORMAT), msg) == b"v\xff\n"


def test_null_key_and_value() -> None:
    """A null key or value renders empty, with length -1 (as kcat)."""
    msg: Any = FakeMessage(None, None, None)
    assert render(compile_format("[%k][%v][%K][%S][%h]"), msg) == b"[][][-1][-1][]"


def test_unknown_placeholder_is_a_usage_error() -> None:
    """%q is not a placeholder: a usage error (exit 2)."""
    with pytest.raises(CliError) as failed:
        compile_format("%q")
    assert failed.value.code == 2


def test_json_object() -> None:
    """JSON: every field; bytes as UTF-8 text (invalid bytes replaced), null kept."""
    msg: Any = FakeMessage(None, b"caf\xc3\xa9", [("h", b"x"), ("z", None)])
    assert as_json(msg) == {
        "topic": "t",
        "partition": 2,
        "offset": 41,
        "timestamp": 1700000000000,
        "timestamp_type": "CreateTime",
        "key": None,
        "value": "café",
        "headers": [["h", "x"], ["z", None]],
    }


def test_kafka_console_consumer_layout() -> None:
    """--property: only the value by default; every print.* field in Kafka's order, each
    followed by key.separator and the last by line.separator; null key as null.literal."""
    msg: Any = FakeMessage(None, b"v", [("a", b"1"), ("n", None)])
    assert render(kafka_format({}), msg) == b"v\n"
    every = {
        f"print.{name}": "true" for name in ("timestamp", "partition", "offset", "headers", "key")
    }
    assert (
        render(kafka_format(every), msg)
        == b"CreateTime:1700000000000\tPartition:2\tOffset:41\ta:1,n:null\tnull\tv\n"
    )
    custom = {
        "print.key": "TRUE",
        "print.value": "false",
        "print.headers": "yes",  # anything but "true" is off, as Kafka reads it
        "key.separator": " | ",
        "line.separator": ";",
        "null.literal": "-",
    }
    assert render(kafka_format(custom), msg) == b"-;"
    keyed: Any = FakeMessage(b"k", None, [])
    both = {"print.key": "true", "key.separator": "=", "print.headers": "true"}
    assert render(kafka_format(both), keyed) == b"NO_HEADERS=k=null\n"


def test_kafka_layout_timestamp_types() -> None:
    """Log-append time and records without a timestamp print as Kafka's formatter does."""
    msg: Any = FakeMessage(b"k", b"v", None)
    msg.timestamp_type = 2  # TIMESTAMP_LOG_APPEND_TIME
    stamp = {"print.timestamp": "true", "print.value": "false"}
    assert render(kafka_format(stamp), msg) == b"LogAppendTime:1700000000000\n"
    msg.timestamp_type = 0  # TIMESTAMP_NOT_AVAILABLE
    assert render(kafka_format(stamp), msg) == b"NO_TIMESTAMP\n"
    assert as_json(msg)["timestamp_type"] is None


def test_unknown_kafka_property_is_a_usage_error() -> None:
    """A property the layout does not know (a deserializer, a typo) is a usage error."""
    with pytest.raises(CliError) as failed:
        kafka_format({"print.kye": "true", "key.deserializer": "x"})
    assert failed.value.code == 2
    assert "key.deserializer, print.kye" in failed.value.message
