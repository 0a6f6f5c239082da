"""Tests of the codec around kio's classes: request decoding and response encoding (the
broker's side), request encoding and response decoding (a client's side)."""

from __future__ import annotations

import datetime
import io
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.index import load_response_schema
from kio.schema.api_versions.v2.response import ApiVersion as ApiVersionV2
from kio.schema.api_versions.v2.response import ApiVersionsResponse as ApiVersionsResponseV2
from kio.schema.api_versions.v3.response import ApiVersionsResponse as ApiVersionsResponseV3
from kio.schema.errors import ErrorCode
from kio.schema.index import api_key_map, schema_name_map
from kio.schema.metadata.v1.request import MetadataRequest as MetadataV1
from kio.schema.metadata.v12.request import MetadataRequest as MetadataV12
from kio.schema.metadata.v12.request import MetadataRequestTopic
from kio.schema.metadata.v12.response import MetadataResponse as MetadataResponseV12
from kio.schema.metadata.v12.response import MetadataResponseBroker
from kio.schema.request_header.v1.header import RequestHeader as HeaderV1
from kio.schema.request_header.v2.header import RequestHeader as HeaderV2
from kio.schema.types import BrokerId
from kio.serial import entity_writer
from kio.static.primitive import Records, i16, i32

from odradek.protocol.codec import (
    RequestDecodeError,
    ResponseDecodeError,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    peek_header,
)

# kio's Records type has no strategy of its own: any bytes will do.
st.register_type_strategy(Records, st.binary(max_size=64).map(Records))


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


# -- the client side: encode_request and decode_response ---------------------------------


def test_encoded_request_decodes_on_the_server_side() -> None:
    """encode_request writes the size prefix, a v2 header for a flexible version and the
    body; the broker's decode_request reads back the same header fields and message."""
    body = MetadataV12(
        topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=True
    )
    frame = encode_request(body, 12, 77, "replica-1")
    assert struct.unpack_from(">i", frame, 0)[0] == len(frame) - 4
    header, decoded = decode_request(frame[4:], MetadataV12)
    assert decoded == body
    assert (header.api_key, header.api_version, header.correlation_id) == (3, 12, 77)
    assert header.client_id == "replica-1"


def test_encoded_classic_request_uses_header_v1() -> None:
    """A non-flexible version gets request header v1 (no tag section), null client id kept."""
    body = MetadataV1(topics=())
    frame = encode_request(body, 1, -5, None)
    assert frame[4:] == _frame(
        HeaderV1(
            request_api_key=i16(3),
            request_api_version=i16(1),
            correlation_id=i32(-5),
            client_id=None,
        ),
        body,
    )
    assert decode_request(frame[4:], MetadataV1)[1] == body


def test_encoding_a_request_as_another_version_is_refused() -> None:
    """A kio class is one version's layout: asking for another version is a ValueError,
    not a frame of the wrong shape; so is anything but a request message."""
    with pytest.raises(ValueError, match="version 1, not 11"):
        encode_request(MetadataV1(topics=()), 11, 1, None)
    with pytest.raises(ValueError, match="not a kio request class"):
        encode_request(object(), 0, 1, None)
    with pytest.raises(ValueError, match="not a kio request class"):  # a nested entity
        encode_request(MetadataRequestTopic(topic_id=None, name="t"), 12, 1, None)


def _response_round_trip(api_key: int, response: object) -> tuple[int, object]:
    frame = bytes(encode_response(api_key, 4242, response))
    assert struct.unpack_from(">i", frame, 0)[0] == len(frame) - 4
    return decode_response(frame[4:], api_key, type(response).__version__)  # type: ignore[attr-defined]


def test_flexible_response_round_trip() -> None:
    """A flexible response (header v1) reads back with its correlation id."""
    response = MetadataResponseV12(
        throttle_time=datetime.timedelta(milliseconds=3),
        brokers=(MetadataResponseBroker(node_id=BrokerId(1), host="h", port=i32(9092), rack=None),),
        cluster_id="c",
        controller_id=BrokerId(1),
        topics=(),
    )
    assert _response_round_trip(3, response) == (4242, response)


def test_classic_response_round_trip() -> None:
    """A non-flexible response (header v0) reads back."""
    response = ApiVersionsResponseV2(
        error_code=ErrorCode.none,
        api_keys=(ApiVersionV2(api_key=i16(3), min_version=i16(0), max_version=i16(13)),),
        throttle_time=datetime.timedelta(0),
    )
    assert _response_round_trip(18, response) == (4242, response)


def test_flexible_api_versions_response_has_header_v0() -> None:
    """ApiVersions v3 is flexible but its response header is v0 (KIP-511): no tag byte
    after the correlation id, and decode_response expects none."""
    response = ApiVersionsResponseV3(
        error_code=ErrorCode.none,
        api_keys=(),
        throttle_time=datetime.timedelta(0),
    )
    frame = bytes(encode_response(18, 1, response))
    # Right after the correlation id: the error code, then the compact length of api_keys
    # (0 + 1); with header v1 a tag count byte would come first.
    assert frame[8:11] == b"\x00\x00\x01"
    assert decode_response(frame[4:], 18, 3) == (1, response)


def test_response_with_trailing_bytes_is_refused() -> None:
    """A body that ends before the frame does is not this version's response."""
    response = ApiVersionsResponseV3(
        error_code=ErrorCode.none, api_keys=(), throttle_time=datetime.timedelta(0)
    )
    frame = bytes(encode_response(18, 1, response))[4:] + b"\x00"
    with pytest.raises(ResponseDecodeError, match="1 bytes after its body"):
        decode_response(frame, 18, 3)


def test_response_claiming_a_huge_array_is_refused_before_kio_reads_it() -> None:
    """A count the frame cannot hold is an error from the bounds walk (kio would try to
    allocate for it)."""
    frame = struct.pack(">ihi", 1, 0, 2**31 - 1)  # ApiVersions v0: error, then the count
    with pytest.raises(ResponseDecodeError, match="beyond"):
        decode_response(frame, 18, 0)


@pytest.mark.parametrize("frame", [b"", b"\x00\x00", b"\x00\x00\x00\x01"])
def test_short_response_is_refused(frame: bytes) -> None:
    """A frame too short for the header or the body is a ResponseDecodeError."""
    with pytest.raises(ResponseDecodeError):
        decode_response(frame, 3, 12)


def test_unknown_api_version_is_a_decode_error() -> None:
    """A (key, version) kio does not know cannot be decoded: ResponseDecodeError."""
    with pytest.raises(ResponseDecodeError):
        decode_response(b"\x00\x00\x00\x01", 18, 99)


_RESPONSE_CLASSES: list[Any] = [
    load_response_schema(key, version)
    for key, name in api_key_map.items()
    for version in schema_name_map[name]
]


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_every_response_class_round_trips(data: st.DataObject) -> None:
    """Any message of any response class, as the broker encodes it, passes the bounds
    walk and decodes to a message that encodes to the same bytes (bytes are compared:
    float fields may hold NaN)."""
    cls = data.draw(st.sampled_from(_RESPONSE_CLASSES))
    message = data.draw(st.from_type(cls))
    frame = bytes(encode_response(int(cls.__api_key__), 7, message))
    correlation_id, decoded = decode_response(frame[4:], int(cls.__api_key__), cls.__version__)
    assert correlation_id == 7
    assert bytes(encode_response(int(cls.__api_key__), 7, decoded)) == frame
