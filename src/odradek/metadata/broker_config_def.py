"""The definition of one broker property as the configs APIs see it (name, type,
documentation, default, whether odradek applies a change while running, whether its
value is a secret)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from odradek.config import default_property_value


@dataclass(frozen=True, slots=True)
class BrokerConfigDef:
    name: str
    kind: str  # "int", "long", "double", "bool", "string", "list", "enum", "password"
    doc: str
    dynamic: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    default_value: str | None = None  # for properties BrokerConfig does not type
    extra_check: Callable[[str], None] | None = None
    # Kafka's PASSWORD type: described as sensitive, its value never returned.
    sensitive: bool = False

    @property
    def default(self) -> str | None:
        """Kafka's default (odradek's where it ships a finite one); None when unset."""
        typed = default_property_value(self.name)
        return typed if typed is not None else self.default_value
