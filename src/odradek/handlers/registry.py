"""The handler table: it feeds both dispatch and the ApiVersions response, so the versions
the broker advertises are exactly the versions it has code for.

`API_TABLE` names every API's module, versions and kind, so the broker can advertise and
dispatch them without importing any handler: a handler module, with the kio schema modules
it uses, is imported on the first request for its API (a third of start-up time otherwise).
Each module's `@api` decorator states its versions again, next to the code; it refuses to
register anything that differs from the table, and tests/handlers/test_registry.py imports
every module to prove that the two agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from odradek.handlers.context import RequestContext

Handler = Callable[["RequestContext", Any], Any]
AsyncHandler = Callable[["RequestContext", Any], Awaitable[Any]]

PACKAGE = "odradek.handlers"

# api key -> (module in odradek.handlers, min version, max version, handler is async)
API_TABLE: dict[int, tuple[str, int, int, bool]] = {
    0: ("produce", 3, 13, True),
    1: ("fetch", 4, 18, True),
    2: ("list_offsets", 1, 11, False),
    3: ("metadata", 0, 13, False),
    8: ("offset_commit", 2, 10, True),
    9: ("offset_fetch", 1, 10, False),
    10: ("find_coordinator", 0, 6, False),
    11: ("join_group", 0, 9, True),
    12: ("heartbeat", 0, 4, False),
    13: ("leave_group", 0, 5, False),
    14: ("sync_group", 0, 5, True),
    15: ("describe_groups", 0, 6, False),
    16: ("list_groups", 0, 5, False),
    17: ("sasl_handshake", 0, 1, False),
    18: ("api_versions", 0, 4, False),
    19: ("create_topics", 2, 7, False),
    20: ("delete_topics", 1, 6, False),
    21: ("delete_records", 0, 2, False),
    22: ("init_producer_id", 0, 5, True),
    23: ("offset_for_leader_epoch", 2, 4, False),
    24: ("add_partitions_to_txn", 0, 5, True),
    25: ("add_offsets_to_txn", 0, 4, True),
    26: ("end_txn", 0, 4, True),
    27: ("write_txn_markers", 1, 2, True),
    28: ("txn_offset_commit", 0, 5, True),
    29: ("describe_acls", 1, 3, False),
    30: ("create_acls", 1, 3, False),
    31: ("delete_acls", 1, 3, False),
    32: ("describe_configs", 1, 4, False),
    33: ("alter_configs", 0, 2, False),
    34: ("alter_replica_log_dirs", 1, 2, False),
    35: ("describe_log_dirs", 1, 4, False),
    36: ("sasl_authenticate", 0, 2, False),
    37: ("create_partitions", 0, 3, False),
    42: ("delete_groups", 0, 2, False),
    43: ("elect_leaders", 0, 2, True),
    44: ("incremental_alter_configs", 0, 1, False),
    45: ("alter_partition_reassignments", 0, 1, False),
    46: ("list_partition_reassignments", 0, 0, False),
    47: ("offset_delete", 0, 0, False),
    50: ("describe_user_scram_credentials", 0, 0, False),
    51: ("alter_user_scram_credentials", 0, 0, True),
    60: ("describe_cluster", 0, 2, False),
    61: ("describe_producers", 0, 0, False),
    65: ("describe_transactions", 0, 0, False),
    66: ("list_transactions", 0, 1, False),
    68: ("consumer_group_heartbeat", 0, 1, True),
    69: ("consumer_group_describe", 0, 1, False),
}


@dataclass(frozen=True, slots=True)
class ApiSpec:
    api_key: int
    min_version: int
    max_version: int
    handler: Callable[[RequestContext, Any], Any]
    is_async: bool


def _load(api_key: int) -> ApiSpec:
    """Imports the module of `api_key`, whose `@api` replaces the table entry; returns it."""
    importlib.import_module(f"{PACKAGE}.{API_TABLE[api_key][0]}")
    spec = HANDLERS[api_key]
    if api_key not in _registered:
        raise RuntimeError(f"{PACKAGE}.{API_TABLE[api_key][0]} registers no handler for {api_key}")
    return spec


def _deferred(api_key: int, is_async: bool) -> Handler:
    """A stand-in handler that imports the real one, then calls it (first request only:
    the import replaces the table entry, so later requests call the real one directly)."""
    if is_async:

        async def load_then_await(ctx: RequestContext, request: Any) -> Any:
            return await _load(api_key).handler(ctx, request)

        return load_then_await

    def load_then_call(ctx: RequestContext, request: Any) -> Any:
        return _load(api_key).handler(ctx, request)

    return load_then_call


HANDLERS: dict[int, ApiSpec] = {
    key: ApiSpec(key, min_version, max_version, _deferred(key, is_async), is_async)
    for key, (_module, min_version, max_version, is_async) in API_TABLE.items()
}
_registered: set[int] = set()


F = TypeVar("F", bound=Callable[["RequestContext", Any], Any])


def api(
    api_key: int, min_version: int, max_version: int, *, is_async: bool = False
) -> Callable[[F], F]:
    """Registers the decorated function as the handler of `api_key` for these versions,
    which must be the ones `API_TABLE` advertises."""

    def register(func: F) -> F:
        module = func.__module__.removeprefix(f"{PACKAGE}.")
        declared = (module, min_version, max_version, is_async)
        if API_TABLE.get(api_key) != declared:
            raise RuntimeError(
                f"@api{declared[1:]} of API {api_key} in {func.__module__} differs from "
                f"{__name__}.API_TABLE[{api_key}] = {API_TABLE.get(api_key)}: update the table"
            )
        if api_key in _registered:
            raise RuntimeError(f"API {api_key} registered twice")
        _registered.add(api_key)
        HANDLERS[api_key] = ApiSpec(api_key, min_version, max_version, func, is_async)
        return func

    return register


def load_all() -> None:
    """Imports every handler module (tests; a broker imports each on first use)."""
    for api_key in API_TABLE:
        _load(api_key)


@cache
def response_module(api_key: int, api_version: int) -> Any:
    """The kio module holding the response classes of one API version."""
    from kio.index import load_payload_module
    from kio.static.constants import EntityType

    return load_payload_module(api_key, api_version, EntityType.response)


@cache
def _field_names(cls: Any) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


def make(cls: Any, **values: Any) -> Any:
    """Builds a kio message, dropping the values its version has no field for."""
    names = _field_names(cls)
    return cls(**{k: v for k, v in values.items() if k in names})
