"""The cursor every coordinator record decoder reads with (`__consumer_offsets` classic
and KIP-848 records, `__transaction_state` records): fixed-width big-endian integers,
unsigned varints, UTF-8 text and the end check, each failure raised as the schema's own
error (a subclass sets `error`), so a corrupt record is skipped, never a crash."""

from __future__ import annotations

import struct
from typing import ClassVar


class RecordReader:
    """Reads one record's bytes from the start; `done` checks nothing is left over."""

    error: ClassVar[type[ValueError]] = ValueError

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.error("record field runs past the end")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> int:
        """One big-endian integer of the `struct` format `fmt` (">h", ">i", ...)."""
        return int(struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0])

    def i8(self) -> int:
        return self.unpack(">b")

    def i16(self) -> int:
        return self.unpack(">h")

    def i32(self) -> int:
        return self.unpack(">i")

    def i64(self) -> int:
        return self.unpack(">q")

    def uvarint(self) -> int:
        """An unsigned varint (at most 5 bytes: a 32-bit length, count or tag)."""
        result = 0
        for shift in range(0, 35, 7):
            byte = self.take(1)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
        raise self.error("varint longer than 5 bytes")

    def text(self, length: int) -> str:
        """`length` bytes of UTF-8."""
        try:
            return self.take(length).decode()
        except UnicodeDecodeError as exc:
            raise self.error(str(exc)) from None

    def done(self) -> None:
        if self.pos != len(self.data):
            raise self.error("bytes left over after the record")
