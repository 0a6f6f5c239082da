"""Fast response serialization: one generated Python function per kio message class.

kio's writer walks a chain of small closures per field, which costs tens of microseconds
per response; on the produce/fetch path that is a large share of the broker's CPU. Here
each class gets straight-line code that packs runs of fixed-size fields with one
`struct` call. The output is byte-for-byte kio's (a property test compares them over
every response class). Tagged fields are written only when all hold their defaults (an
empty tag section); otherwise `NeedsKio` is raised and the caller uses kio's writer.
"""

from __future__ import annotations

import dataclasses
import struct
import types
import typing
import uuid
from dataclasses import MISSING
from functools import cache
from typing import Any

from kio.serial._implicit_defaults import get_tagged_field_default

_STRUCT_CODES = {
    "int8": "b",
    "int16": "h",
    "int32": "i",
    "int64": "q",
    "uint8": "B",
    "uint16": "H",
    "uint32": "I",
    "uint64": "Q",
    "float64": "d",
    "bool": "?",
    "error_code": "h",
    "timedelta_i32": "i",
    "timedelta_i64": "q",
    "datetime_i64": "q",
    "uuid": "16s",
}
_ZERO_UUID = uuid.UUID(int=0)


class NeedsKio(Exception):
    """The message has a non-default tagged field; serialize it with kio instead."""


Writer = typing.Callable[[bytearray, Any], None]


def write_uvarint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _uuid_bytes(value: uuid.UUID | None) -> bytes:
    return (value or _ZERO_UUID).bytes


def _datetime_ms(value: Any) -> int:
    return -1 if value is None else round(value.timestamp() * 1000)


def _optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], len(args) != len(typing.get_args(annotation))
    return annotation, False


def _fixed_expr(kafka_type: str, ref: str) -> str:
    """The expression giving the struct value of a fixed-size field."""
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        return f"round({ref}.total_seconds() * 1000)"
    if kafka_type == "datetime_i64":
        return f"_datetime_ms({ref})"
    if kafka_type == "uuid":
        return f"_uuid_bytes({ref})"
    return ref


class _Generator:
    """Builds the source of one writer function."""

    def __init__(self, cls: Any) -> None:
        self.cls = cls
        self.flexible = bool(cls.__flexible__)
        self.lines: list[str] = []
        self.env: dict[str, Any] = {
            "_datetime_ms": _datetime_ms,
            "_uuid_bytes": _uuid_bytes,
            "write_uvarint": write_uvarint,
            "NeedsKio": NeedsKio,
        }
        self.run: list[tuple[str, str]] = []  # pending fixed fields: (struct code, expr)

    def flush_run(self) -> None:
        if not self.run:
            return
        name = f"_S{len(self.env)}"
        self.env[name] = struct.Struct(">" + "".join(code for code, _ in self.run))
        self.lines.append(f"out += {name}.pack({', '.join(expr for _, expr in self.run)})")
        self.run = []

    def length(self, expr: str, classic: str) -> None:
        """Writes a length or count (value of `expr`, -1 for null)."""
        if self.flexible:
            self.lines.append(f"write_uvarint(out, {expr} + 1)")
        else:
            name = f"_S{len(self.env)}"
            self.env[name] = struct.Struct(">" + classic)
            self.lines.append(f"out += {name}.pack({expr})")

    def sized(self, ref: str, classic: str, nullable: bool, indent: str = "") -> None:
        """A string or bytes value."""
        self.lines.append(f"{indent}_v = {ref}")
        if nullable:
            self.lines.append(f"{indent}if _v is None:")
            self.lines.append(f"{indent}    {self._len_stmt('-1', classic)}")
            self.lines.append(f"{indent}else:")
            indent += "    "
        self.lines.append(f"{indent}_b = _v.encode() if isinstance(_v, str) else _v")
        self.lines.append(f"{indent}{self._len_stmt('len(_b)', classic)}")
        self.lines.append(f"{indent}out += _b")

    def _len_stmt(self, expr: str, classic: str) -> str:
        if self.flexible:
            return f"write_uvarint(out, {expr} + 1)"
        name = f"_S{len(self.env)}"
        self.env[name] = struct.Struct(">" + classic)
        return f"out += {name}.pack({expr})"

    def field(self, field: dataclasses.Field[Any], annotation: Any) -> None:
        ref = f"e.{field.name}"
        inner, nullable = _optional(annotation)
        kafka_type = field.metadata.get("kafka_type")
        is_array = typing.get_origin(inner) is tuple
        # uuid and datetime handle None themselves; other nullable values are not fixed.
        fixed_ok = kafka_type in ("uuid", "datetime_i64") or not nullable
        if not is_array and kafka_type in _STRUCT_CODES and fixed_ok:
            self.run.append((_STRUCT_CODES[kafka_type], _fixed_expr(kafka_type, ref)))
            return
        self.flush_run()
        if is_array:
            self.array(ref, typing.get_args(inner)[0], kafka_type, nullable)
        elif kafka_type == "string":
            self.sized(ref, "h", nullable)
        elif kafka_type in ("bytes", "records"):
            self.sized(ref, "i", nullable)
        elif kafka_type is None:
            self.entity(ref, inner, nullable)
        else:
            raise TypeError(f"no fast writer for {kafka_type!r} (nullable={nullable})")

    def array(self, ref: str, element: Any, kafka_type: str | None, nullable: bool) -> None:
        self.lines.append(f"_a = {ref}")
        indent = ""
        if nullable:
            self.lines.append("if _a is None:")
            self.lines.append(f"    {self._len_stmt('-1', 'i')}")
            self.lines.append("else:")
            indent = "    "
        self.lines.append(f"{indent}{self._len_stmt('len(_a)', 'i')}")
        if kafka_type is None:
            name = f"_W{len(self.env)}"
            self.env[name] = writer_for(element)
            self.lines.append(f"{indent}for _x in _a:")
            self.lines.append(f"{indent}    {name}(out, _x)")
        elif kafka_type in _STRUCT_CODES:
            name = f"_S{len(self.env)}"
            self.env[name] = struct.Struct(">" + _STRUCT_CODES[kafka_type])
            expr = _fixed_expr(kafka_type, "_x")
            self.lines.append(f"{indent}for _x in _a:")
            self.lines.append(f"{indent}    out += {name}.pack({expr})")
        else:
            classic = "h" if kafka_type == "string" else "i"
            self.lines.append(f"{indent}for _x in _a:")
            self.sized("_x", classic, False, indent + "    ")

    def entity(self, ref: str, cls: Any, nullable: bool) -> None:
        name = f"_W{len(self.env)}"
        self.env[name] = writer_for(cls)
        if nullable:
            self.lines.append(f"if {ref} is None:")
            self.lines.append("    out.append(0xFF)")
            self.lines.append("else:")
            self.lines.append("    out.append(1)")
            self.lines.append(f"    {name}(out, {ref})")
        else:
            self.lines.append(f"{name}(out, {ref})")

    def tags(self, tagged: list[dataclasses.Field[Any]]) -> None:
        """An empty tag section, after checking every tagged field holds its default."""
        for field in tagged:
            default = field.default if field.default is not MISSING else None
            implicit = get_tagged_field_default(field)
            key = f"_D{len(self.env)}"
            self.env[key] = (default, implicit, field.default is MISSING)
            self.lines.append(
                f"if not (e.{field.name} == {key}[0] or "
                f"({key}[2] and e.{field.name} == {key}[1])): raise NeedsKio"
            )
        self.lines.append("out.append(0)")

    def build(self) -> Writer:
        hints = typing.get_type_hints(self.cls)
        tagged = []
        for field in dataclasses.fields(self.cls):
            if "tag" in field.metadata:
                tagged.append(field)
                continue
            self.field(field, hints[field.name])
        self.flush_run()
        if self.flexible:
            self.tags(tagged)
        body = "\n    ".join(self.lines) or "pass"
        source = f"def write(out, e):\n    {body}\n"
        exec(compile(source, f"<fastwrite {self.cls.__qualname__}>", "exec"), self.env)
        return typing.cast(Writer, self.env["write"])


@cache
def writer_for(cls: Any) -> Writer:
    """The generated writer of a kio message class (built once, then cached)."""
    return _Generator(cls).build()
