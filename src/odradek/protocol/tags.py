"""Dropping the tagged fields kio does not know from a request frame (KIP-482).

A flexible message ends every struct with a tagged-field section, and a receiver must
skip the tags it does not know: that is how a newer client adds a field without a new
version. kio 0.6's reader raises KeyError on an unknown tag instead (the change it needs
is in docs/upstream/kio-unknown-tagged-fields.md). Until a kio with the skip is
released, codec.decode_request calls `strip_unknown_tags` only after kio refused a frame
that way, and decodes the copy this returns: requests without unknown tags never come
here, so the decode path costs what it did.

The walk follows the schema of the request class (as guard.py does), copies every
untagged field unchanged, and rewrites each tagged section with the tags the class
declares, at every nesting level, known tagged structs (Fetch's replica_state) included.
Every length is checked against the frame first; a bad one raises BoundsError.
"""

from __future__ import annotations

import dataclasses
import typing
from functools import cache
from typing import Any

from odradek.protocol.guard import BoundsError, Step, field_step, read_length, read_uvarint

# Request header v2: api key, version and correlation id, then client_id as a nullable
# INT16-length string (not compact, KIP-482 kept it), then the header's tagged fields.
_HEADER_FIXED = 8


@dataclasses.dataclass(frozen=True, slots=True)
class _Layout:
    fields: tuple[Step, ...]  # untagged, in wire order
    tagged: dict[int, Step]  # the tags the class declares


@cache
def _layout(cls: Any) -> _Layout:
    hints = typing.get_type_hints(cls)
    fields: list[Step] = []
    tagged: dict[int, Step] = {}
    for field in dataclasses.fields(cls):
        step = field_step(field, hints[field.name])
        if "tag" in field.metadata:
            tagged[int(field.metadata["tag"])] = step
        else:
            fields.append(step)
    return _Layout(tuple(fields), tagged)


def write_uvarint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


class _Walk:
    """One pass over a frame, copying it into `out` without the unknown tags."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.end = len(buf)
        self.pos = 0
        self.out = bytearray()

    def copy(self, size: int) -> None:
        if self.pos + size > self.end:
            raise BoundsError("value runs past the frame")
        self.out += self.buf[self.pos : self.pos + size]
        self.pos += size

    def length(self, flexible: bool, size: int) -> int:
        """Copies a length or count and returns it (-1 for null)."""
        start = self.pos
        n, self.pos = read_length(self.buf, self.pos, self.end, flexible, size)
        self.out += self.buf[start : self.pos]
        return n

    def struct(self, cls: Any) -> None:
        layout = _layout(cls)
        flexible = bool(cls.__flexible__)
        for step in layout.fields:
            self.field(step, flexible)
        if flexible:
            self.tags(layout.tagged)

    def field(self, step: Step, flexible: bool) -> None:
        if not step.array:
            self.value(step, flexible)
            return
        count = self.length(flexible, 4)
        for _ in range(max(count, 0)):
            self.value(step, flexible)

    def value(self, step: Step, flexible: bool) -> None:
        if step.kind == "fixed":
            self.copy(step.size)
        elif step.kind in ("string", "bytes"):
            n = self.length(flexible, 2 if step.kind == "string" else 4)
            self.copy(max(n, 0))
        else:
            if step.nullable and not step.array:
                self.copy(1)  # presence byte: -1 absent, 1 present
                if self.buf[self.pos - 1] >= 0x80:
                    return
            self.struct(step.entity)

    def tags(self, known: dict[int, Step]) -> None:
        count, self.pos = read_uvarint(self.buf, self.pos, self.end)
        kept: list[tuple[int, bytes]] = []
        for _ in range(count):
            tag, self.pos = read_uvarint(self.buf, self.pos, self.end)
            size, self.pos = read_uvarint(self.buf, self.pos, self.end)
            if self.pos + size > self.end:
                raise BoundsError(f"tagged field of {size} bytes runs past the frame")
            step = known.get(tag)
            if step is not None:
                kept.append((tag, self._tagged_value(step, size)))
            self.pos += size
        write_uvarint(self.out, len(kept))
        for tag, data in kept:
            write_uvarint(self.out, tag)
            write_uvarint(self.out, len(data))
            self.out += data

    def _tagged_value(self, step: Step, size: int) -> bytes:
        """A known tag's value, itself stripped when it holds structs."""
        value = self.buf[self.pos : self.pos + size]
        if step.kind != "entity":
            return value
        inner = _Walk(value)
        inner.field(step, True)  # tagged fields exist only in flexible versions
        return bytes(inner.out) + value[inner.pos :]


def strip_unknown_tags(frame: bytes, cls: Any) -> bytes:
    """`frame` (a flexible request: header v2, body of `cls`) without the tagged fields
    neither the header nor `cls` declares; bytes after the body are kept."""
    walk = _Walk(frame)
    walk.copy(_HEADER_FIXED)
    client_id = walk.length(False, 2)
    walk.copy(max(client_id, 0))
    walk.tags({})  # request header v2 declares no tagged field
    walk.struct(cls)
    return bytes(walk.out) + frame[walk.pos :]
