"""A bounds check that walks a request's schema over the raw bytes before kio parses them.

kio's native reader trusts array counts: a 60-byte frame claiming a billion elements makes
it try to allocate gigabytes and abort the process. This walker reads only lengths and
counts, checks each against the bytes that remain before going on, and so rejects such
frames with RequestDecodeError in time proportional to the frame's size. Plans are built
once per message class from kio's field metadata.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any

_FIXED_SIZES = {
    "int8": 1,
    "bool": 1,
    "int16": 2,
    "uint16": 2,
    "int32": 4,
    "timedelta_i32": 4,
    "int64": 8,
    "timedelta_i64": 8,
    "float64": 8,
    "uuid": 16,
}
MAX_UVARINT_BYTES = 5


class BoundsError(Exception):
    """A length or count that the remaining bytes cannot satisfy."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Step:
    kind: str  # "fixed", "string", "bytes", "entity"
    array: bool
    size: int = 0
    plan: tuple[_Step, ...] | None = None
    flexible: bool = False
    nullable: bool = False


def _inner_types(annotation: Any) -> list[Any]:
    """The non-None members of a (possibly optional) annotation."""
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _step(field: dataclasses.Field[Any], resolved: Any) -> _Step:
    nullable = len(typing.get_args(resolved)) > 1 and type(None) in typing.get_args(resolved)
    (annotation,) = _inner_types(resolved)
    array = typing.get_origin(annotation) is tuple
    element = typing.get_args(annotation)[0] if array else annotation
    (element,) = _inner_types(element)
    kafka_type = field.metadata.get("kafka_type")
    if kafka_type is None:
        return _Step(
            "entity",
            array,
            plan=plan_for(element),
            flexible=element.__flexible__,
            nullable=nullable,
        )
    if kafka_type in _FIXED_SIZES:
        return _Step("fixed", array, size=_FIXED_SIZES[kafka_type], nullable=nullable)
    if kafka_type == "string":
        return _Step("string", array, nullable=nullable)
    if kafka_type in ("bytes", "records"):
        return _Step("bytes", array, nullable=nullable)
    raise TypeError(f"no bounds rule for kafka_type {kafka_type!r}")


@cache
def plan_for(cls: Any) -> tuple[_Step, ...]:
    """The untagged fields of `cls` in wire order (tagged fields are skipped by size)."""
    flexible = cls.__flexible__
    hints = typing.get_type_hints(cls)
    steps = []
    for field in dataclasses.fields(cls):
        if flexible and "tag" in field.metadata:
            continue
        steps.append(_step(field, hints[field.name]))
    return tuple(steps)


class _Reader:
    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf)

    def skip(self, size: int) -> None:
        if size < 0 or size > self.end - self.pos:
            raise BoundsError(f"{size} bytes claimed, {self.end - self.pos} remain")
        self.pos += size

    def int_be(self, size: int) -> int:
        start = self.pos
        self.skip(size)
        return int.from_bytes(self.buf[start : self.pos], "big", signed=True)

    def uvarint(self) -> int:
        value = shift = 0
        for _ in range(MAX_UVARINT_BYTES):
            self.skip(1)
            byte = self.buf[self.pos - 1]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise BoundsError("varint longer than 5 bytes")

    def length(self, flexible: bool, classic_size: int) -> int:
        """A length or count: -1 is null; anything else must fit in what remains."""
        n = self.uvarint() - 1 if flexible else self.int_be(classic_size)
        if n < -1:
            raise BoundsError(f"negative length {n}")
        if n > self.end - self.pos:
            raise BoundsError(f"length {n} beyond the {self.end - self.pos} bytes left")
        return n


def _sized(reader: _Reader, flexible: bool, classic_size: int, may_be_null: bool) -> None:
    """Skips a string or bytes value; null (-1) only where the schema allows it."""
    n = reader.length(flexible, classic_size)
    if n == -1 and not may_be_null:
        raise BoundsError("null for a field that is not nullable")
    reader.skip(max(n, 0))


def _value(reader: _Reader, step: _Step, flexible: bool, in_array: bool) -> None:
    """One value of `step`; `in_array` for array elements, whose nullability the schema
    annotations do not carry (so null is let through there)."""
    may_be_null = in_array or (step.nullable and not step.array)
    if step.kind == "fixed":
        reader.skip(step.size)
    elif step.kind == "string":
        _sized(reader, flexible, 2, may_be_null)
    elif step.kind == "bytes":
        _sized(reader, flexible, 4, may_be_null)
    else:
        assert step.plan is not None
        # A nullable struct is preceded by a presence byte: -1 absent, 1 present.
        if step.nullable and not step.array and reader.int_be(1) < 0:
            return
        _entity(reader, step.plan, step.flexible)


def _tagged_fields(reader: _Reader) -> None:
    count = reader.uvarint()
    if count > reader.end - reader.pos:
        raise BoundsError("tagged field count beyond the frame")
    for _ in range(count):
        reader.uvarint()
        reader.skip(reader.uvarint())


def _entity(reader: _Reader, plan: tuple[_Step, ...], flexible: bool) -> None:
    for step in plan:
        if not step.array:
            _value(reader, step, flexible, in_array=False)
            continue
        count = reader.length(flexible, 4)
        if count == -1 and not step.nullable:
            raise BoundsError("null array for a field that is not nullable")
        for _ in range(count):
            _value(reader, step, flexible, in_array=True)
    if flexible:
        _tagged_fields(reader)


def check_bounds(cls: Any, buf: bytes, pos: int) -> None:
    """Raises BoundsError unless every length in the body of `cls` at `pos` fits."""
    _entity(_Reader(buf, pos), plan_for(cls), bool(cls.__flexible__))
