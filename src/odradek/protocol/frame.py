"""Splits a byte stream into Kafka frames: a 4-byte big-endian size, then that many bytes.

Sans-IO: the server feeds received bytes in and gets whole frames out. The size limit is
checked on the prefix, before any of the body is buffered (`socket.request.max.bytes`).
The caller may take fewer frames than have arrived (`max_frames`); the rest stay buffered
until it asks again, which is how a connection bounds the requests it has in flight.
"""

from __future__ import annotations

import struct

_SIZE = struct.Struct(">i")
_SIZE_CORRELATION = struct.Struct(">ii")


class FrameError(Exception):
    """The stream is broken; the only safe answer is to close the connection."""


# A frame at least this large that is still arriving is kept as the received pieces and
# joined once when whole: buffering it in a growing bytearray and then copying it out
# (the way of small frames) copied each of its bytes twice.
_PIECES_FROM = 1 << 16


class FrameDecoder:
    """Accumulates bytes and yields complete frame bodies (without the size prefix)."""

    __slots__ = ("_buffer", "_have", "_max_frame_bytes", "_need", "_pieces")

    def __init__(self, max_frame_bytes: int) -> None:
        self._buffer = bytearray()
        self._max_frame_bytes = max_frame_bytes
        self._need = -1  # body size of the frame being read, -1 while reading the prefix
        # The received pieces of a large frame's body, while it is incomplete (then the
        # buffer is empty); each is immutable bytes, a view of such, or a bytearray
        # this object made and nobody else holds.
        self._pieces: list[bytes | bytearray | memoryview] | None = None
        self._have = 0  # bytes in _pieces

    def set_limit(self, max_frame_bytes: int) -> None:
        """Changes the size limit for frames whose prefix has not been read yet (a SASL
        listener allows only small frames before authentication)."""
        self._max_frame_bytes = max_frame_bytes

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer) + self._have

    @property
    def missing_bytes(self) -> int:
        """Bytes the frame being received still lacks, as its size prefix announced."""
        return self.backlog()[1]

    def backlog(self) -> tuple[int, int]:
        """(buffered_bytes, missing_bytes) in one call, for the per-read accounting."""
        buffered = len(self._buffer) + self._have
        need = self._need
        return buffered, (need - buffered if need > buffered else 0)

    @property
    def pending(self) -> bool:
        """True while a frame has started but not finished arriving, or arrived frames wait
        to be taken. A frame whose 4-byte prefix alone has arrived counts: the prefix is
        consumed from the buffer, so the buffer alone would hide a client that sends a size
        and then nothing (it would escape the whole-frame deadline)."""
        return self._need >= 0 or len(self._buffer) > 0

    def has_frame(self) -> bool:
        """Whether a whole frame is buffered, waiting to be taken."""
        if self._pieces is not None:
            return False  # pieces are kept only while their frame is incomplete
        buf = self._buffer
        need = self._need
        if need < 0:
            if len(buf) < 4:
                return False
            size: int = _SIZE.unpack_from(buf, 0)[0]
            return len(buf) - 4 >= size
        return len(buf) >= need

    def feed(self, data: bytes, max_frames: int | None = None) -> list[bytes]:
        """Adds received bytes; returns the frames now complete, in order, at most
        `max_frames` of them (the others stay buffered for a later call)."""
        if type(data) is not bytes:
            data = bytes(data)  # pieces may be kept: they must never change
        frames: list[bytes] = []
        rest: bytes | memoryview = data
        if self._pieces is not None:
            missing = self._need - self._have
            if len(data) < missing:
                self._pieces.append(data)
                self._have += len(data)
                return frames
            if max_frames == 0:  # whole but not to be taken: buffered as a small one
                self._buffer += b"".join(self._pieces)
                self._pieces, self._have = None, 0
            else:
                with memoryview(data) as view:
                    self._pieces.append(view[:missing])
                    frames.append(b"".join(self._pieces))
                    rest = view[missing:] if missing < len(data) else b""
                self._pieces, self._have, self._need = None, 0, -1
                if max_frames is not None:
                    max_frames -= 1
        self._feed_buffered(rest, max_frames, frames)
        return frames

    def _feed_buffered(
        self, data: bytes | memoryview, max_frames: int | None, frames: list[bytes]
    ) -> None:
        """feed's way for all but a large frame's later pieces: `data` (bytes, or a view
        of bytes) after what is buffered; whole frames are appended to `frames`."""
        buf = self._buffer
        if max_frames == 0:
            buf += data
            return
        # With nothing buffered (the usual case) frames come straight out of `data`, and
        # only what is left of it is buffered.
        source: bytes | bytearray | memoryview = data
        if buf:
            buf += data
            source = buf
        pos = 0
        end = len(source)
        limit = None if max_frames is None else len(frames) + max_frames
        # One copy out per frame (slicing a bytearray first would make two).
        with memoryview(source) as view:
            while limit is None or len(frames) < limit:
                if self._need < 0:
                    if end - pos < 4:
                        break
                    (size,) = _SIZE.unpack_from(view, pos)
                    if size < 0:
                        raise FrameError(f"negative frame size {size}")
                    if size > self._max_frame_bytes:
                        raise FrameError(f"frame of {size} bytes is over the limit")
                    self._need = size
                    pos += 4
                if end - pos < self._need:
                    break
                frames.append(view[pos : pos + self._need].tobytes())
                pos += self._need
                self._need = -1
            if self._need >= _PIECES_FROM and end - pos < self._need:
                # A large frame has begun: what arrived of it becomes its first piece.
                if source is buf:
                    self._pieces = [buf[pos:end]]  # a copy, as the buffer is emptied
                else:
                    self._pieces = [memoryview(data)[pos:end]]
                self._have = end - pos
                pos = end
        if source is buf:
            del buf[:pos]
        elif pos < end:
            buf += memoryview(data)[pos:]


def encode_frame(body: bytes) -> bytes:
    """Prefixes a body with its size."""
    return _SIZE.pack(len(body)) + body


class EncodedResponse:
    """A whole response frame a handler wrote itself rather than returning kio objects
    for codec.encode_response (the produce hot path); the connection sends it as it is.
    `rest`, when given, is the frame's continuation in further buffers (the size prefix
    at the start of `frame` counts them), sent after `frame` without being joined to it
    (a follower's fetch: records stay where the log read put them)."""

    __slots__ = ("frame", "rest")

    def __init__(
        self, frame: bytearray, rest: tuple[bytes | bytearray | memoryview, ...] = ()
    ) -> None:
        self.frame = frame
        self.rest = rest


def start_response(flexible: bool) -> bytearray:
    """The start of a response frame: room for the size and the correlation id, then for
    a flexible version the response header v1's empty tag section (as codec writes it;
    ApiVersions, which always has header v0, never comes this way)."""
    out = bytearray(8)
    if flexible:
        out.append(0)
    return out


def finish_response(out: bytearray, correlation_id: int) -> EncodedResponse:
    """Fills in the size and correlation id of a frame begun with start_response."""
    _SIZE_CORRELATION.pack_into(out, 0, len(out) - 4, correlation_id)
    return EncodedResponse(out)
