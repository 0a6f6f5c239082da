"""Request and response framing around kio's message classes.

A request frame is a request header (v1, or v2 for flexible versions) followed by the
body; a response is a response header (v0, or v1 for flexible versions; ApiVersions
always v0) followed by the body. This module only converts; it knows nothing of handlers.

kio's index, readers and writers, the bounds guard and the generated writers are imported
on first use, not at start-up: the broker reports ready before any request needs them.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

API_VERSIONS_KEY = 18
_FIXED = struct.Struct(">hhi")
_SIZE_CORRELATION = struct.Struct(">ii")


class RequestDecodeError(Exception):
    """The frame is not a valid request; Kafka closes the connection on these."""


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


def peek_header(frame: bytes) -> tuple[int, int, int]:
    """Reads api key, version and correlation id, which every header version starts with."""
    if len(frame) < _FIXED.size:
        raise RequestDecodeError("frame shorter than a request header")
    api_key, api_version, correlation_id = _FIXED.unpack_from(frame, 0)
    return int(api_key), int(api_version), int(correlation_id)


@cache
def request_class(api_key: int, api_version: int) -> type[Any] | None:
    """kio's request class for (key, version), or None when kio does not know it."""
    from kio.index import KioIndexError, load_request_schema

    try:
        return load_request_schema(api_key, api_version)
    except KioIndexError:
        return None


@cache
def response_class(api_key: int, api_version: int) -> type[Any]:
    from kio.index import load_response_schema

    return load_response_schema(api_key, api_version)


@cache
def _reader(cls: Any) -> Any:
    from kio.serial import entity_reader

    return entity_reader(cls)


@cache
def _writer(cls: Any) -> Any:
    from kio.serial import entity_writer

    return entity_writer(cls)


@cache
def _decoders(cls: Any) -> tuple[Any, Callable[[Any, bytes, int], None], Any]:
    """The header reader, bounds check and body reader of a request class."""
    from odradek.protocol.guard import check_bounds

    if cls.__flexible__:
        from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2

        header_reader = _reader(RequestHeaderV2)
    else:
        from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1

        header_reader = _reader(RequestHeaderV1)
    return header_reader, check_bounds, _reader(cls)


@cache
def _fast_writer(cls: Any) -> Callable[[bytearray, Any], None]:
    from odradek.protocol.fastwrite import writer_for

    return writer_for(cls)


def _needs_kio() -> type[Exception]:
    """fastwrite's NeedsKio (an except clause evaluates this only when something raised)."""
    from odradek.protocol.fastwrite import NeedsKio

    return NeedsKio


def decode_request(frame: bytes, cls: Any) -> tuple[RequestHeader, Any]:
    """Decodes header and body with `cls`; bytes after the body are ignored."""
    try:
        read_header, check_bounds, read_body = _decoders(cls)
        raw_header, pos = read_header(frame, 0)
        check_bounds(cls, frame, pos)
        body, size = read_body(frame, pos)
    # kio raises several exception types on malformed input (SerialError, ValueError,
    # KeyError for unknown tagged fields, ...); every one of them means a bad frame.
    except Exception as exc:
        raise RequestDecodeError(f"cannot decode {cls.__name__}: {exc}") from exc
    # Trailing bytes are ignored, as Kafka does: librdkafka 2.x writes a null topic array in
    # flexible Metadata requests as 4 bytes instead of a 1-byte varint (librdkafka #5049),
    # and Kafka never checks that a request was consumed to its end.
    del size
    header = RequestHeader(
        api_key=raw_header.request_api_key,
        api_version=raw_header.request_api_version,
        correlation_id=raw_header.correlation_id,
        client_id=raw_header.client_id,
    )
    return header, body


def encode_response(api_key: int, correlation_id: int, response: Any) -> bytearray:
    """Returns the size-prefixed response frame for a kio response object (a bytearray:
    copying a 1 MiB fetch response once more would cost as much as building it)."""
    cls: Any = type(response)
    out = bytearray(8)
    if cls.__flexible__ and api_key != API_VERSIONS_KEY:
        out.append(0)  # response header v1: no tagged fields
    start = len(out)
    try:
        _fast_writer(cls)(out, response)
    except _needs_kio():
        del out[start:]
        body = io.BytesIO()
        _writer(cls)(body, response)
        out += body.getbuffer()
    _SIZE_CORRELATION.pack_into(out, 0, len(out) - 4, correlation_id)
    return out
