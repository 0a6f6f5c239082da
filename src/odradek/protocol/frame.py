"""Splits a byte stream into Kafka frames: a 4-byte big-endian size, then that many bytes.

Sans-IO: the server feeds received bytes in and gets whole frames out. The size limit is
checked on the prefix, before any of the body is buffered (`socket.request.max.bytes`).
The caller may take fewer frames than have arrived (`max_frames`); the rest stay buffered
until it asks again, which is how a connection bounds the requests it has in flight.
"""

from __future__ import annotations

import struct

_SIZE = struct.Struct(">i")


class FrameError(Exception):
    """The stream is broken; the only safe answer is to close the connection."""


class FrameDecoder:
    """Accumulates bytes and yields complete frame bodies (without the size prefix)."""

    __slots__ = ("_buffer", "_max_frame_bytes", "_need")

    def __init__(self, max_frame_bytes: int) -> None:
        self._buffer = bytearray()
        self._max_frame_bytes = max_frame_bytes
        self._need = -1  # body size of the frame being read, -1 while reading the prefix

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    @property
    def missing_bytes(self) -> int:
        """Bytes the frame being received still lacks, as its size prefix announced."""
        return max(self._need - len(self._buffer), 0) if self._need >= 0 else 0

    @property
    def pending(self) -> bool:
        """True while a frame has started but not finished arriving, or arrived frames wait
        to be taken. A frame whose 4-byte prefix alone has arrived counts: the prefix is
        consumed from the buffer, so the buffer alone would hide a client that sends a size
        and then nothing (it would escape the whole-frame deadline)."""
        return self._need >= 0 or len(self._buffer) > 0

    def feed(self, data: bytes, max_frames: int | None = None) -> list[bytes]:
        """Adds received bytes; returns the frames now complete, in order, at most
        `max_frames` of them (the others stay buffered for a later call)."""
        self._buffer += data
        frames: list[bytes] = []
        buf = self._buffer
        pos = 0
        while max_frames is None or len(frames) < max_frames:
            if self._need < 0:
                if len(buf) - pos < 4:
                    break
                (size,) = _SIZE.unpack_from(buf, pos)
                if size < 0:
                    raise FrameError(f"negative frame size {size}")
                if size > self._max_frame_bytes:
                    raise FrameError(f"frame of {size} bytes is over the limit")
                self._need = size
                pos += 4
            if len(buf) - pos < self._need:
                break
            # One copy out of the buffer (slicing the bytearray first would make two).
            with memoryview(buf) as view:
                frames.append(view[pos : pos + self._need].tobytes())
            pos += self._need
            self._need = -1
        if pos:
            del buf[:pos]
        return frames


def encode_frame(body: bytes) -> bytes:
    """Prefixes a body with its size."""
    return _SIZE.pack(len(body)) + body
