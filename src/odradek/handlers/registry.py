"""The handler table: it feeds both dispatch and the ApiVersions response, so the versions
the broker advertises are exactly the versions it has code for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from functools import cache
from typing import Any, TypeVar

from kio.index import load_payload_module
from kio.static.constants import EntityType

from odradek.handlers.context import RequestContext

Handler = Callable[[RequestContext, Any], Any]
AsyncHandler = Callable[[RequestContext, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ApiSpec:
    api_key: int
    min_version: int
    max_version: int
    handler: Callable[[RequestContext, Any], Any]
    is_async: bool


HANDLERS: dict[int, ApiSpec] = {}


F = TypeVar("F", bound=Callable[[RequestContext, Any], Any])


def api(
    api_key: int, min_version: int, max_version: int, *, is_async: bool = False
) -> Callable[[F], F]:
    """Registers the decorated function as the handler of `api_key` for these versions."""

    def register(func: F) -> F:
        if api_key in HANDLERS:
            raise RuntimeError(f"API {api_key} registered twice")
        HANDLERS[api_key] = ApiSpec(api_key, min_version, max_version, func, is_async)
        return func

    return register


@cache
def response_module(api_key: int, api_version: int) -> Any:
    """The kio module holding the response classes of one API version."""
    return load_payload_module(api_key, api_version, EntityType.response)


@cache
def _field_names(cls: Any) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


def make(cls: Any, **values: Any) -> Any:
    """Builds a kio message, dropping the values its version has no field for."""
    names = _field_names(cls)
    return cls(**{k: v for k, v in values.items() if k in names})
