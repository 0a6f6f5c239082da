"""Request and response framing around kio's message classes.

A request frame is a request header (v1, or v2 for flexible versions) followed by the
body; a response is a response header (v0, or v1 for flexible versions; ApiVersions
always v0) followed by the body. This module only converts; it knows nothing of handlers.

Both directions are here: the broker decodes requests and encodes responses, and as a
client of other brokers (replication) it encodes requests and decodes responses.

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
_SIZE = struct.Struct(">i")


class RequestDecodeError(Exception):
    """The frame is not a valid request; Kafka closes the connection on these."""


class ResponseDecodeError(Exception):
    """The frame is not a valid response of the API version asked for; a client can only
    close the connection (the stream cannot be trusted any more)."""


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
        body, _size = read_body(frame, pos)
    except KeyError:
        # kio 0.6 raises KeyError on a tagged field it does not know, where KIP-482 says
        # to skip it: decode again without those (tags.py). Only such frames pay for it.
        raw_header, body = _decode_without_unknown_tags(frame, cls)
    # kio raises several exception types on malformed input (SerialError, ValueError,
    # ...); every one of them means a bad frame.
    except Exception as exc:
        raise RequestDecodeError(f"cannot decode {cls.__name__}: {exc}") from exc
    # Trailing bytes are ignored, as Kafka does: librdkafka 2.x writes a null topic array in
    # flexible Metadata requests as 4 bytes instead of a 1-byte varint (librdkafka #5049),
    # and Kafka never checks that a request was consumed to its end.
    header = RequestHeader(
        api_key=raw_header.request_api_key,
        api_version=raw_header.request_api_version,
        correlation_id=raw_header.correlation_id,
        client_id=raw_header.client_id,
    )
    return header, body


def _decode_without_unknown_tags(frame: bytes, cls: Any) -> tuple[Any, Any]:
    """Header and body of a flexible request frame, its unknown tagged fields skipped."""
    if not cls.__flexible__:
        raise RequestDecodeError(f"cannot decode {cls.__name__}: KeyError from kio")
    from odradek.protocol.tags import strip_unknown_tags

    read_header, check_bounds, read_body = _decoders(cls)
    try:
        stripped = strip_unknown_tags(frame, cls)
        raw_header, pos = read_header(stripped, 0)
        check_bounds(cls, stripped, pos)
        body, _size = read_body(stripped, pos)
    except Exception as exc:  # as in decode_request: any of these is a bad frame
        raise RequestDecodeError(f"cannot decode {cls.__name__}: {exc}") from exc
    return raw_header, body


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


# -- the client side -------------------------------------------------------------------


@cache
def _request_header(flexible: bool) -> tuple[Any, Any]:
    """The request header class (v2 for flexible versions, else v1) and its writer."""
    if flexible:
        from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2

        return RequestHeaderV2, _writer(RequestHeaderV2)
    from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1

    return RequestHeaderV1, _writer(RequestHeaderV1)


def encode_request(
    request: Any, api_version: int, correlation_id: int, client_id: str | None
) -> bytes:
    """The size-prefixed frame of a kio request object. Its class names the API key and
    is one version's layout, so `api_version` must be that class's version (ValueError
    otherwise: the bytes would be another version's)."""
    cls: Any = type(request)
    kind = getattr(getattr(cls, "__type__", None), "name", None)
    if kind != "request":  # kio's EntityType.request; nested entities carry a key too
        raise ValueError(f"{cls.__name__} is not a kio request class")
    if api_version != cls.__version__:
        raise ValueError(
            f"{cls.__module__}.{cls.__name__} is version {cls.__version__}, not {api_version}"
        )
    header_cls, write_header = _request_header(bool(cls.__flexible__))
    header = header_cls(
        request_api_key=cls.__api_key__,
        request_api_version=api_version,
        correlation_id=correlation_id,
        client_id=client_id,
    )
    out = io.BytesIO()
    out.write(b"\0\0\0\0")  # the size, filled in below
    write_header(out, header)
    _writer(cls)(out, request)
    with out.getbuffer() as frame:
        _SIZE.pack_into(frame, 0, len(frame) - 4)
    return out.getvalue()


@cache
def _response_decoders(api_key: int, api_version: int) -> tuple[Any, Any, Any]:
    """The response class of (key, version) with its header reader and body reader."""
    cls: Any = response_class(api_key, api_version)
    header: Any
    if cls.__flexible__ and api_key != API_VERSIONS_KEY:
        from kio.schema.response_header.v1.header import ResponseHeader as HeaderV1

        header = HeaderV1
    else:  # ApiVersions answers with header v0 even in flexible versions (KIP-511)
        from kio.schema.response_header.v0.header import ResponseHeader as HeaderV0

        header = HeaderV0
    return cls, _reader(header), _reader(cls)


def decode_response(frame: bytes | memoryview, api_key: int, api_version: int) -> tuple[int, Any]:
    """(correlation id, kio response object) of a response frame without its size prefix.

    The lengths and counts in the body are checked against the frame before kio reads it
    (a peer's bad count must not make kio allocate without limit), and the body must end
    exactly at the end of the frame. Raises ResponseDecodeError otherwise. `frame` may be a
    read-only memoryview (kio refuses writable buffers)."""
    from odradek.protocol.guard import check_bounds

    try:
        cls, read_header, read_body = _response_decoders(api_key, api_version)
        header, pos = read_header(frame, 0)
        check_bounds(cls, frame, pos)
        body, size = read_body(frame, pos)
    # kio raises several exception types on malformed input (see decode_request), and
    # KioIndexError for a (key, version) it does not know.
    except Exception as exc:
        raise ResponseDecodeError(
            f"cannot decode a response of API {api_key} v{api_version}: {exc}"
        ) from exc
    if pos + size != len(frame):
        raise ResponseDecodeError(
            f"response of API {api_key} v{api_version} has {len(frame) - pos - size} "
            "bytes after its body"
        )
    return int(header.correlation_id), body
