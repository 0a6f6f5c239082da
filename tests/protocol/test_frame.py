"""Tests of the sans-IO frame splitter: sizes, limits and arbitrary chunking."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odradek.protocol.frame import FrameDecoder, FrameError, encode_frame


def test_frames_split_across_any_chunking() -> None:
    """Frames come out whole and in order however the bytes are chunked."""
    bodies = [b"a", b"", b"hello" * 100, b"z" * 7]
    stream = b"".join(encode_frame(b) for b in bodies)
    for chunk in (1, 2, 3, 7, 64, len(stream)):
        decoder = FrameDecoder(1 << 20)
        out: list[bytes] = []
        for i in range(0, len(stream), chunk):
            out.extend(decoder.feed(stream[i : i + chunk]))
        assert out == bodies
        assert not decoder.pending


def test_negative_size_is_refused() -> None:
    """A negative size prefix breaks the stream."""
    with pytest.raises(FrameError):
        FrameDecoder(100).feed(struct.pack(">i", -1))


def test_size_over_limit_is_refused_before_the_body_arrives() -> None:
    """The limit is checked on the prefix alone: nothing of a huge body is buffered."""
    decoder = FrameDecoder(100)
    with pytest.raises(FrameError):
        decoder.feed(struct.pack(">i", 101))
    assert FrameDecoder(100).feed(encode_frame(b"x" * 100)) == [b"x" * 100]


def test_partial_frame_is_pending() -> None:
    """A started frame is reported as pending until its last byte."""
    decoder = FrameDecoder(100)
    assert decoder.feed(struct.pack(">i", 3) + b"ab") == []
    assert decoder.pending
    assert decoder.feed(b"c") == [b"abc"]
    assert not decoder.pending


@given(st.binary(max_size=200))
def test_garbage_gives_frames_or_frame_error(data: bytes) -> None:
    """Arbitrary bytes yield frames within the limit or a FrameError, nothing else."""
    decoder = FrameDecoder(64)
    try:
        frames = decoder.feed(data)
    except FrameError:
        return
    assert all(len(f) <= 64 for f in frames)
