"""Tests of the sans-IO frame splitter: sizes, limits and arbitrary chunking."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odradek.protocol.frame import _PIECES_FROM, FrameDecoder, FrameError, encode_frame


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


@given(
    bodies=st.lists(st.binary(max_size=40), max_size=6),
    cuts=st.lists(st.integers(0, 400), max_size=6),
    takes=st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=1, max_size=8),
)
def test_any_chunking_and_take_limits_give_the_frames_in_order(
    bodies: list[bytes], cuts: list[int], takes: list[int | None]
) -> None:
    """Frames come out whole, in order and no more than asked for per call, whether they
    are read straight from the received bytes or from the buffer, for any chunking and
    any max_frames; backlog() always agrees with buffered_bytes and missing_bytes."""
    stream = b"".join(encode_frame(b) for b in bodies)
    bounds = sorted({0, len(stream), *(min(c, len(stream)) for c in cuts)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    decoder = FrameDecoder(64)
    out: list[bytes] = []
    for i, chunk in enumerate(chunks):
        take = takes[i % len(takes)]
        frames = decoder.feed(chunk, take)
        assert take is None or len(frames) <= take
        out.extend(frames)
        assert decoder.backlog() == (decoder.buffered_bytes, decoder.missing_bytes)
    out.extend(decoder.feed(b""))
    assert out == bodies
    assert not decoder.pending
    assert decoder.backlog() == (0, 0)


def test_a_zero_length_frame_completes_on_its_prefix() -> None:
    """An empty body is a whole frame as soon as its prefix is read; a prefix left over
    by max_frames is buffered, then read on the next call."""
    decoder = FrameDecoder(10)
    assert decoder.feed(encode_frame(b"") + struct.pack(">i", 2), 1) == [b""]
    assert decoder.backlog() == (4, 0)  # the next prefix, not read yet
    assert decoder.feed(b"") == []
    assert decoder.backlog() == (0, 2)  # read: the body is missing
    assert decoder.feed(b"ok") == [b"ok"]


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.sampled_from([0, 5, _PIECES_FROM - 1, _PIECES_FROM, 70_000, 200_000])),
    cuts=st.lists(st.integers(0, 600_000), max_size=12),
    takes=st.lists(st.one_of(st.none(), st.integers(0, 2)), min_size=1, max_size=8),
)
def test_large_frames_kept_in_pieces_come_out_whole(
    sizes: list[int], cuts: list[int], takes: list[int | None]
) -> None:
    """Frames large enough to be kept as received pieces come out byte for byte, in order
    and within max_frames, for any chunking, also when a frame completes while no frame
    may be taken; the backlog counts the pieces."""
    bodies = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    stream = b"".join(encode_frame(b) for b in bodies)
    bounds = sorted({0, len(stream), *(min(c, len(stream)) for c in cuts)})
    decoder = FrameDecoder(1 << 20)
    out: list[bytes] = []
    fed = 0
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        take = takes[i % len(takes)]
        frames = decoder.feed(stream[a:b], take)
        assert take is None or len(frames) <= take
        out.extend(frames)
        fed = b
        taken = sum(len(f) + 4 for f in out)
        assert decoder.buffered_bytes <= fed - taken
    while decoder.has_frame():
        out.extend(decoder.feed(b"", 1))
    out.extend(decoder.feed(b""))
    assert out == bodies
    assert all(type(f) is bytes for f in out)
    assert decoder.backlog() == (0, 0)


def test_a_large_frame_does_not_alias_a_reused_buffer() -> None:
    """Bytes handed over in a mutable buffer are copied: changing the buffer after the
    call does not change the frame being assembled."""
    body = b"q" * (3 * _PIECES_FROM)
    frame = encode_frame(body)
    decoder = FrameDecoder(1 << 20)
    chunk = bytearray(frame[:_PIECES_FROM])
    assert decoder.feed(chunk) == []  # type: ignore[arg-type]
    assert decoder.backlog() == (_PIECES_FROM - 4, 2 * _PIECES_FROM + 4)
    chunk[:] = b"x" * len(chunk)
    assert decoder.feed(frame[_PIECES_FROM:]) == [body]
