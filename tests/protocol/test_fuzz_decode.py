"""Fuzzing of request decoding: garbage must only ever produce RequestDecodeError."""

from __future__ import annotations

import contextlib
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.index import api_key_map, schema_name_map

from odradek.protocol.codec import RequestDecodeError, decode_request, request_class

_CLASSES = [
    (key, version, cls)
    for key, name in api_key_map.items()
    for version in schema_name_map[name]
    if (cls := request_class(key, version)) is not None
]


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(_CLASSES), st.binary(max_size=120))
def test_garbage_bodies_only_raise_decode_errors(
    target: tuple[int, int, type[object]], body: bytes
) -> None:
    """Any bytes after a valid api key/version decode or raise RequestDecodeError."""
    key, version, cls = target
    frame = struct.pack(">hhi", key, version, 1) + body
    with contextlib.suppress(RequestDecodeError):
        decode_request(frame, cls)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_CLASSES), st.binary(max_size=64), st.integers(0, 63))
def test_bit_flips_in_valid_looking_frames(
    target: tuple[int, int, type[object]], body: bytes, flip: int
) -> None:
    """Flipping a bit anywhere still gives a message or RequestDecodeError."""
    key, version, cls = target
    frame = bytearray(struct.pack(">hhih", key, version, 1, -1) + b"\x00" + body)
    frame[flip % len(frame)] ^= 1 << (flip % 8)
    with contextlib.suppress(RequestDecodeError):
        decode_request(bytes(frame), cls)
