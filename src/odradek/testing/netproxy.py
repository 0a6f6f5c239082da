"""A TCP proxy for fault tests: put it between a client and a server, then cut the link.

`TcpProxy(host, port)` listens on a free 127.0.0.1 port and forwards bytes both ways.
It runs its own asyncio loop in a daemon thread, so sync tests can use it and it keeps
forwarding while the test's thread (or an in-process broker's loop) is busy.

`cut()` makes the link silent, as a network partition does: nothing is forwarded in
either direction and new connections are accepted but not forwarded. Nobody is told:
the endpoints find out only through their own timeouts. `heal()` lets the held bytes
and connections through, as a network that comes back does; an endpoint that gave up
in the meantime has closed its side, and the close is passed on. `cut(mode="reset")`
instead resets every connection and every new one, as a crashed peer's host does.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Coroutine
from contextlib import suppress
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

__all__ = ["CutMode", "TcpProxy"]

CutMode = Literal["blackhole", "reset"]
HOST = "127.0.0.1"
CHUNK = 65536
CONTROL_TIMEOUT = 5.0
_T = TypeVar("_T")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a RST (SO_LINGER 0), so the peer sees ECONNRESET, not an orderly EOF."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Link:
    """One proxied connection: the client's side, the upstream side once open, its task."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client, self.upstream) if w is not None]

    def reset(self) -> None:
        for writer in self.writers():
            _reset(writer)
        if self.task is not None:
            self.task.cancel()

    def close(self) -> None:
        for writer in self.writers():
            writer.close()


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port` until `close()`."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        listen_port: int = 0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = HOST
        self.connect_timeout = connect_timeout
        self._mode: CutMode | None = None
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._open = asyncio.Event()  # set while the link is up; only used on the loop
        self._open.set()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"odradek-tcp-proxy-{target_port}", daemon=True
        )
        self._thread.start()
        self.port: int = self._call(self._listen(listen_port))

    @property
    def address(self) -> str:
        """`127.0.0.1:port`, the address to give clients instead of the target's."""
        return f"{self.host}:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._mode is not None

    @property
    def connection_count(self) -> int:
        """Client connections the proxy holds now (forwarded or held by a cut)."""
        return self._call(self._count())

    def cut(self, mode: CutMode = "blackhole") -> None:
        """Partition the link: silence ("blackhole") or reset every connection ("reset")."""
        if mode not in ("blackhole", "reset"):
            raise ValueError(f"unknown cut mode {mode!r}")
        self._call(self._cut(mode))

    def heal(self) -> None:
        """End the cut: held bytes and held connections go through, new ones are forwarded."""
        self._call(self._heal())

    def close(self) -> None:
        """Stop listening, close every connection, stop the loop and join its thread."""
        if self._loop.is_closed() or not self._thread.is_alive():
            return
        with suppress(TimeoutError, RuntimeError):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CONTROL_TIMEOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = self._mode or "open"
        return f"TcpProxy({self.address} -> {self.target_host}:{self.target_port}, {state})"

    # The loop's side. Everything below runs on the proxy's own thread.

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run `coro` on the proxy's loop and wait (bounded) for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CONTROL_TIMEOUT)

    async def _listen(self, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, port)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def _count(self) -> int:
        return len(self._links)

    async def _cut(self, mode: CutMode) -> None:
        self._mode = mode
        self._open.clear()
        if mode == "reset":
            for link in list(self._links):
                link.reset()

    async def _heal(self) -> None:
        self._mode = None
        self._open.set()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.reset()
        # Let the cancelled connections run their cleanup before the loop stops.
        for _ in range(100):
            if not self._links:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._mode == "reset":
            _reset(writer)
            return
        link = _Link(writer)
        # The relay is a task of its own, so a reset can cancel it: asyncio's server
        # reports a cancelled connection callback as an error.
        link.task = asyncio.create_task(self._relay(link, reader))
        self._links.add(link)
        try:
            await asyncio.wait([link.task])
        finally:
            link.close()
            self._links.discard(link)

    async def _relay(self, link: _Link, reader: asyncio.StreamReader) -> None:
        # The target refusing or a side resetting ends the relay: the client sees its
        # socket close.
        with suppress(OSError, TimeoutError):
            # A connection that arrives during a black-hole cut waits here, accepted but
            # not forwarded, as if its packets were lost until the network comes back.
            await self._open.wait()
            up_reader, upstream = await asyncio.wait_for(
                asyncio.open_connection(self.target_host, self.target_port),
                self.connect_timeout,
            )
            link.upstream = upstream
            await self._forward(reader, upstream, up_reader, link.client)

    async def _forward(
        self,
        client_reader: asyncio.StreamReader,
        upstream: asyncio.StreamWriter,
        upstream_reader: asyncio.StreamReader,
        client: asyncio.StreamWriter,
    ) -> None:
        pumps = [
            asyncio.create_task(self._pump(client_reader, upstream)),
            asyncio.create_task(self._pump(upstream_reader, client)),
        ]
        try:
            # Either direction may end with EOF while the other still carries bytes
            # (half-close); an error in either ends both.
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await self._open.wait()
            data = await reader.read(CHUNK)
            if not data:
                break
            # Bytes read just before a cut are held until the heal, not delivered.
            await self._open.wait()
            writer.write(data)
            await writer.drain()
        await self._open.wait()
        if writer.can_write_eof():
            writer.write_eof()
