"""The aiohttp application and its listening sockets, bound to `console.listeners`.

Each page module contributes routes (`metrics.routes`, `pages.routes`), and lag.py a
task sampling the groups' lag while the listener runs. Requests are small GETs and form
POSTs: aiohttp's parser refuses request lines and headers over 8 KiB with 400, bodies
over `MAX_BODY_BYTES` get 413, unknown paths 404 and other methods 405, and none of it
touches the broker's state. Connections beyond `MAX_CONNECTIONS` are closed when accepted.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from odradek.config import parse_listener
from odradek.console import lag, log_dirs, login, metrics, pages
from odradek.server.broker import Broker
from odradek.server.partition_offsets import PartitionOffsets

log = logging.getLogger("odradek.console")

# The largest form (a record from the produce form) may be this big; anything larger
# is refused before it is read.
MAX_BODY_BYTES = 128 * 1024
# An idle HTTP connection is closed after this (aiohttp's default is an hour: idle
# connections would hold descriptors); a scraper reconnects at no cost.
KEEPALIVE_S = 60.0
# How long stopping the broker waits for HTTP requests being answered.
SHUTDOWN_S = 2.0
# Open HTTP connections served at once (all listeners together); one more is closed as
# soon as it is accepted, so HTTP clients cannot take the broker's file descriptors.
MAX_CONNECTIONS = 64


def build_app(broker: Broker) -> web.Application:
    """The application with every page's routes, and the lag sampling task."""
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        handler_args={"logger": _ClientErrorsQuiet(log)},
        middlewares=[login.middleware(broker), pages.error_pages],
    )
    offsets = PartitionOffsets(lambda: broker.services)
    history = lag.LagHistory(broker, offsets)
    app.cleanup_ctx.append(history.sampling)

    dirs = log_dirs.LogDirs()

    async def close_pools(_app: web.Application) -> None:
        await offsets.close()
        await dirs.close()

    app.on_cleanup.append(close_pools)
    app.add_routes(list(metrics.routes(broker, offsets)))
    app.add_routes(list(pages.routes(broker, history, dirs)))
    return app


def _bind(listener: str) -> socket.socket:
    """A listening socket for `http://host:port` (port 0: a free one)."""
    _scheme, host, port = parse_listener(listener)  # http://, checked by config.py
    family, kind, proto, _name, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class _ClientErrorsQuiet(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp logs a request it cannot parse (a 400 it already answered) with a
    traceback at ERROR: one line at INFO is enough, and a client sending garbage cannot
    fill the log with tracebacks. Errors of the pages themselves stay at ERROR."""

    def exception(self, msg: object, *args: Any, exc_info: Any = True, **kw: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            self.info("refused an HTTP request: %s %s", exc_info.code, exc_info.message)
            return
        self.error(msg, *args, exc_info=exc_info, **kw)


class _Refused(asyncio.Protocol):
    """A connection over MAX_CONNECTIONS: closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class ConsoleListener:
    """The HTTP listeners of one broker; `bound` lists (host, port) once started.

    The sockets are served with the loop's own `create_server` and aiohttp's request
    handler factory (rather than aiohttp's sites), so that connections can be counted
    and refused over MAX_CONNECTIONS."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.bound: list[tuple[str, int]] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._runner = web.AppRunner(
            build_app(broker),
            handle_signals=False,
            access_log=None,
            keepalive_timeout=KEEPALIVE_S,
            shutdown_timeout=SHUTDOWN_S,
        )

    @property
    def urls(self) -> list[str]:
        return [f"http://{_host(host)}:{port}" for host, port in self.bound]

    async def start(self) -> None:
        await self._runner.setup()
        handlers = self._runner.server
        assert handlers is not None

        def connection() -> asyncio.BaseProtocol:
            if len(handlers.connections) >= MAX_CONNECTIONS:
                return _Refused()
            return handlers()

        loop = asyncio.get_running_loop()
        try:
            for listener in self.broker.config.console_listeners:
                sock = _bind(listener)
                self._servers.append(await loop.create_server(connection, sock=sock))
                host, port = sock.getsockname()[:2]
                self.bound.append((host, port))
        except BaseException:
            await self.close()
            raise
        log.info("console and /metrics on %s", ", ".join(self.urls))

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        await self._runner.cleanup()  # closes the open connections
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
