"""The static API table (what the broker advertises and dispatches before any handler
module is imported) agrees with every handler module's `@api`, and handler modules are
imported on first use only."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest

import odradek.handlers
from odradek.handlers.registry import API_TABLE, HANDLERS, PACKAGE, api, load_all
from tests.helpers import run_python


def test_api_table_equals_what_every_module_registers() -> None:
    """Importing every module of odradek.handlers registers exactly the APIs of API_TABLE,
    each from the module, with the versions and kind (sync/async) the table states."""
    for info in pkgutil.iter_modules(odradek.handlers.__path__):
        importlib.import_module(f"{PACKAGE}.{info.name}")
    load_all()
    registered = {
        key: (spec.handler.__module__, spec.min_version, spec.max_version, spec.is_async)
        for key, spec in HANDLERS.items()
    }
    table = {
        key: (f"{PACKAGE}.{module}", min_version, max_version, is_async)
        for key, (module, min_version, max_version, is_async) in API_TABLE.items()
    }
    assert registered == table
    assert all(spec.api_key == key for key, spec in HANDLERS.items())


@pytest.mark.parametrize(
    ("api_key", "versions", "is_async"),
    [(18, (0, 5), False), (18, (1, 4), False), (18, (0, 4), True), (99, (0, 0), False)],
)
def test_api_refuses_what_the_table_does_not_say(
    api_key: int, versions: tuple[int, int], is_async: bool
) -> None:
    """An `@api` whose versions, kind or key differ from API_TABLE fails at import, naming
    the table, instead of serving versions the broker does not advertise."""

    def handle(ctx: Any, request: Any) -> Any:
        return None

    handle.__module__ = f"{PACKAGE}.api_versions"
    with pytest.raises(RuntimeError, match="API_TABLE"):
        api(api_key, *versions, is_async=is_async)(handle)


def test_api_refuses_a_second_registration() -> None:
    """Registering an already registered API again is an error."""
    load_all()

    def handle(ctx: Any, request: Any) -> Any:
        return None

    handle.__module__ = f"{PACKAGE}.api_versions"
    with pytest.raises(RuntimeError, match="twice"):
        api(18, 0, 4)(handle)
    assert HANDLERS[18].handler is not handle


def test_broker_start_imports_no_handler_module() -> None:
    """The broker's command line and server import no handler module besides the few they
    use, no kio schema index or serializer, and no client library."""
    out = run_python(
        """
        import sys
        import odradek.cli.main, odradek.cli.broker, odradek.server.broker
        print(" ".join(sorted(sys.modules)))
        """
    )
    loaded = set(out.split())
    handlers = {m for m in loaded if m.startswith(f"{PACKAGE}.")}
    assert handlers <= {
        f"{PACKAGE}.{name}" for name in ("registry", "context", "fetch_session", "api_versions")
    }
    unwanted = {"kio.index", "kio.serial", "odradek.protocol.guard", "odradek.protocol.fastwrite"}
    unwanted |= {"confluent_kafka", "rich", "odradek.storage.cleaner"}
    # the HTTP listener's libraries: only a broker with console.listeners loads them
    unwanted |= {"aiohttp", "prometheus_client", "jinja2", "odradek.console.listener"}
    assert loaded & unwanted == set()


def test_first_call_imports_the_handler_and_replaces_the_stand_in() -> None:
    """Before its module is imported an API's handler is a stand-in that imports the module
    and calls the real handler (sync and async alike); afterwards the table holds the real
    handler. ApiVersions answers the same bytes whether or not handlers were imported."""
    out = run_python(
        """
        import asyncio, sys
        from types import SimpleNamespace
        from kio.schema.errors import ErrorCode
        from odradek.handlers.registry import API_TABLE, HANDLERS, load_all
        from odradek.protocol.codec import encode_response

        def loaded():
            return {m for m in sys.modules if m.startswith("odradek.handlers.")} - {
                "odradek.handlers.registry", "odradek.handlers.context"
            }

        assert loaded() == set(), loaded()
        stand_in = HANDLERS[18].handler
        response = stand_in(SimpleNamespace(api_version=3), None)
        real = sys.modules["odradek.handlers.api_versions"].handle
        assert HANDLERS[18].handler is real and real is not stand_in
        assert type(response).__name__ == "ApiVersionsResponse", response
        assert loaded() == {"odradek.handlers.api_versions"}, loaded()

        from odradek.handlers.api_versions import build_response

        def answers():
            return [bytes(encode_response(18, 7, build_response(v))) for v in range(5)] + [
                bytes(encode_response(18, 7, build_response(0, ErrorCode.unsupported_version)))
            ]

        before = answers()
        advertised = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
        assert advertised == {k: (e[1], e[2]) for k, e in API_TABLE.items()}

        services = SimpleNamespace(groups=None, authorizer=None)
        ctx = SimpleNamespace(api_version=5, services=services)
        request = SimpleNamespace(member_id="m", group_id="g")
        coroutine = HANDLERS[11].handler(ctx, request)
        assert "odradek.handlers.join_group" not in sys.modules
        response = asyncio.run(coroutine)
        assert HANDLERS[11].handler is sys.modules["odradek.handlers.join_group"].handle
        assert response.error_code == ErrorCode.coordinator_not_available, response
        assert response.member_id == "m"

        load_all()
        assert answers() == before
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_registry_module_imports_no_handler() -> None:
    """Importing the registry (which every handler does) stays cheap: no handler module,
    no kio index, no broker state modules."""
    out = run_python(
        """
        import sys
        import odradek.handlers.registry
        print(" ".join(sorted(sys.modules)))
        """
    )
    loaded = set(out.split())
    assert {m for m in loaded if m.startswith("odradek.")} == {
        "odradek.handlers",
        "odradek.handlers.registry",
    }
    assert "kio.index" not in loaded
