"""Tests of request decoding and response encoding around kio's classes."""

from __future__ import annotations

import io
import struct

import pytest
from kio.schema.metadata.v1.request import MetadataRequest as MetadataV1
from kio.schema.metadata.v12.request import MetadataRequest as MetadataV12
from kio.schema.request_header.v1.header import RequestHeader as HeaderV1
from kio.schema.request_header.v2.header import RequestHeader as HeaderV2
from kio.serial import entity_writer
from kio.static.primitive import i16, i32

from odradek.protocol.codec import RequestDecodeError, decode_request, peek_header


def _frame(header: object, body: object) -> bytes:
    out = io.BytesIO()
    entity_writer(type(header))(out, header)
    entity_writer(type(body))(out, body)
    return out.getvalue()


def test_flexible_request_round_trip() -> None:
    """A v2-header flexible request decodes to the same message."""
    header = HeaderV2(
        request_api_key=i16(3), request_api_version=i16(12), correlation_id=i32(9), client_id="c"
    )
    body = MetadataV12(
        topics=None, allow_auto_topic_creation=True, include_topic_authorized_operations=False
    )
    decoded_header, decoded = decode_request(_frame(header, body), MetadataV12)
    assert decoded == body
    assert (decoded_header.correlation_id, decoded_header.client_id) == (9, "c")
    assert peek_header(_frame(header, body)) == (3, 12, 9)


def test_classic_request_round_trip() -> None:
    """A v1-header request (non-flexible version) decodes too."""
    header = HeaderV1(
        request_api_key=i16(3), request_api_version=i16(1), correlation_id=i32(1), client_id=None
    )
    body = MetadataV1(topics=())
    assert decode_request(_frame(header, body), MetadataV1)[1] == body


def test_trailing_bytes_are_ignored_as_kafka_does() -> None:
    """Bytes after the body are ignored: Kafka does, and librdkafka 2.x relies on it."""
    header = HeaderV1(
        request_api_key=i16(3), request_api_version=i16(1), correlation_id=i32(1), client_id=None
    )
    frame = _frame(header, MetadataV1(topics=())) + b"\x00\x00\x00"
    assert decode_request(frame, MetadataV1)[1] == MetadataV1(topics=())


def test_huge_array_count_in_tiny_frame_is_an_error() -> None:
    """An array claiming 2^31-1 elements in a few bytes fails without allocating."""
    frame = struct.pack(">hhih", 3, 1, 1, -1) + struct.pack(">i", 2**31 - 1)
    with pytest.raises(RequestDecodeError):
        decode_request(frame, MetadataV1)


def test_short_frame_cannot_be_peeked() -> None:
    """A frame shorter than the fixed header part is an error."""
    with pytest.raises(RequestDecodeError):
        peek_header(b"\x00\x03")
