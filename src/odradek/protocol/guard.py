"""A bounds check that walks a message's schema over the raw bytes before kio parses them.

kio's native reader trusts array counts: a 60-byte frame claiming a billion elements makes
it try to allocate gigabytes and abort the process. This walker reads only lengths and
counts, checks each against the bytes that remain before going on, and so rejects such
frames with RequestDecodeError in time proportional to the frame's size. Plans are built
once per message class from kio's field metadata. Responses from other brokers are
walked the same way before they are parsed (codec.decode_response).
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
    "error_code": 2,
    "int32": 4,
    "timedelta_i32": 4,
    "int64": 8,
    "timedelta_i64": 8,
    "datetime_i64": 8,
    "float64": 8,
    "uuid": 16,
}
MAX_UVARINT_BYTES = 5


class BoundsError(Exception):
    """A length or count that the remaining bytes cannot satisfy."""


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """How to walk one field (tags.py walks with these too)."""

    kind: str  # "fixed", "string", "bytes", "entity"
    array: bool
    size: int = 0
    plan: tuple[Step, ...] | None = None
    flexible: bool = False
    nullable: bool = False
    entity: Any = None  # the struct class of an "entity" step


def _inner_types(annotation: Any) -> list[Any]:
    """The non-None members of a (possibly optional) annotation."""
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def field_step(field: dataclasses.Field[Any], resolved: Any) -> Step:
    """The step of `field`, whose annotation resolves to `resolved`."""
    nullable = len(typing.get_args(resolved)) > 1 and type(None) in typing.get_args(resolved)
    (annotation,) = _inner_types(resolved)
    array = typing.get_origin(annotation) is tuple
    element = typing.get_args(annotation)[0] if array else annotation
    (element,) = _inner_types(element)
    kafka_type = field.metadata.get("kafka_type")
    if kafka_type is None:
        return Step(
            "entity",
            array,
            plan=plan_for(element),
            flexible=element.__flexible__,
            nullable=nullable,
            entity=element,
        )
    if kafka_type in _FIXED_SIZES:
        return Step("fixed", array, size=_FIXED_SIZES[kafka_type], nullable=nullable)
    if kafka_type == "string":
        return Step("string", array, nullable=nullable)
    if kafka_type in ("bytes", "records"):
        return Step("bytes", array, nullable=nullable)
    raise TypeError(f"no bounds rule for kafka_type {kafka_type!r}")


@cache
def plan_for(cls: Any) -> tuple[Step, ...]:
    """The untagged fields of `cls` in wire order (tagged fields are skipped by size)."""
    flexible = cls.__flexible__
    hints = typing.get_type_hints(cls)
    steps = []
    for field in dataclasses.fields(cls):
        if flexible and "tag" in field.metadata:
            continue
        steps.append(field_step(field, hints[field.name]))
    return tuple(steps)


def read_uvarint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(MAX_UVARINT_BYTES):
        if pos >= end:
            raise BoundsError("varint runs past the frame")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise BoundsError("varint longer than 5 bytes")


def read_length(buf: bytes, pos: int, end: int, flexible: bool, size: int) -> tuple[int, int]:
    """A length or count: -1 is null; anything else must fit in what remains."""
    if flexible:
        n, pos = read_uvarint(buf, pos, end)
        n -= 1
    else:
        if pos + size > end:
            raise BoundsError("length runs past the frame")
        n = int.from_bytes(buf[pos : pos + size], "big", signed=True)
        pos += size
    if n < -1:
        raise BoundsError(f"negative length {n}")
    if n > end - pos:
        raise BoundsError(f"length {n} beyond the {end - pos} bytes left")
    return n, pos


def _tags(buf: bytes, pos: int, end: int) -> int:
    count, pos = read_uvarint(buf, pos, end)
    if count > end - pos:
        raise BoundsError("tagged field count beyond the frame")
    for _ in range(count):
        _tag, pos = read_uvarint(buf, pos, end)
        size, pos = read_uvarint(buf, pos, end)
        pos += size
        if pos > end:
            raise BoundsError(f"tagged field of {size} bytes runs past the frame")
    return pos


Checker = typing.Callable[[bytes | memoryview, int, int], int]


def _value_lines(step: Step, flexible: bool, in_array: bool, env: dict[str, Any]) -> list[str]:
    """Source lines advancing `pos` over one value of `step`."""
    if step.kind == "fixed":
        return [
            f"pos += {step.size}",
            "if pos > end: raise BoundsError('value runs past the frame')",
        ]
    if step.kind in ("string", "bytes"):
        size = 2 if step.kind == "string" else 4
        may_be_null = in_array or (step.nullable and not step.array)
        lines = [f"n, pos = read_length(buf, pos, end, {flexible}, {size})"]
        if not may_be_null:
            lines.append("if n == -1: raise BoundsError('null for a field that is not nullable')")
        return [*lines, "if n > 0: pos += n"]
    assert step.plan is not None
    name = f"_c{len(env)}"
    env[name] = checker_for_plan(step.plan, step.flexible)
    call = f"pos = {name}(buf, pos, end)"
    if step.nullable and not step.array:
        # A nullable struct is preceded by a presence byte: -1 absent, 1 present.
        return [
            "if pos >= end: raise BoundsError('presence byte missing')",
            "pos += 1",
            f"if buf[pos - 1] < 0x80: {call}",
        ]
    return [call]


@cache
def checker_for_plan(plan: tuple[Step, ...], flexible: bool) -> Checker:
    """Generated straight-line code walking one struct (built once per schema)."""
    env: dict[str, Any] = {"BoundsError": BoundsError, "read_length": read_length, "_tags": _tags}
    lines: list[str] = []
    for step in plan:
        if not step.array:
            lines += _value_lines(step, flexible, False, env)
            continue
        lines.append(f"count, pos = read_length(buf, pos, end, {flexible}, 4)")
        if not step.nullable:
            lines.append("if count == -1: raise BoundsError('null array, not nullable')")
        lines.append("for _ in range(count):")
        lines += ["    " + line for line in _value_lines(step, flexible, True, env)]
    if flexible:
        lines.append("pos = _tags(buf, pos, end)")
    source = "def check(buf, pos, end):\n    " + "\n    ".join([*lines, "return pos"]) + "\n"
    exec(compile(source, "<guard>", "exec"), env)
    return typing.cast(Checker, env["check"])


@cache
def _checker_for(cls: Any) -> Checker:
    # Cached by class: hashing a plan tree on every request would cost more than the walk.
    return checker_for_plan(plan_for(cls), bool(cls.__flexible__))


def check_bounds(cls: Any, buf: bytes | memoryview, pos: int) -> None:
    """Raises BoundsError unless every length in the body of `cls` at `pos` fits."""
    _checker_for(cls)(buf, pos, len(buf))
