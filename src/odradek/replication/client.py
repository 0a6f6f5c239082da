"""A connection to another broker, for the replica fetcher and the controller: send kio
request objects, get kio response objects back.

One TCP connection per `BrokerClient`. Requests are pipelined (sent without waiting for
earlier answers, up to `max_in_flight`) and matched to their responses by correlation id.
A response is at most `max_response_bytes` (100 MiB), checked on its size prefix before
anything of it is buffered, and its body is bounds-checked before kio parses it.

Every failure raises `BrokerClientError` and closes the connection for good: refused,
reset or closed connections, a frame over the limit or one that does not decode, a
response nobody asked for, and a request timeout. After a timeout the late answer may still
be on its way, and after a bad frame the byte stream cannot be trusted, so, like Kafka's
NetworkClient, the client disconnects; the caller opens a new one. A request whose caller
is cancelled leaves the connection usable: its whole frame was handed to the transport at
once, and its answer is read and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from dataclasses import dataclass
from typing import Any

from odradek.protocol.codec import ResponseDecodeError, decode_response, encode_request

logger = logging.getLogger("odradek.replication")

MAX_RESPONSE_BYTES = 100 << 20
MAX_IN_FLIGHT = 64
CLOSE_TIMEOUT_S = 1.0
# Bytes the stream reader buffers before it stops reading the socket: large enough that a
# big fetch response is not read in 64 KiB pause/resume steps.
_READ_BUFFER = 1 << 20
_INT32 = struct.Struct(">i")


class BrokerClientError(Exception):
    """The request failed and the connection is closed (or was never open)."""


@dataclass(slots=True)
class _Pending:
    api_key: int
    api_version: int
    future: asyncio.Future[Any]


class BrokerClient:
    """One connection to the broker at host:port; use it from one event loop.

    `closed` is False before `connect` and while connected; once closed (by `close` or a
    failure) it stays closed and every request raises BrokerClientError."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str = "odradek-replica",
        *,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.max_response_bytes = max_response_bytes
        self._slots = asyncio.Semaphore(max_in_flight)
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._pending: dict[int, _Pending] = {}
        self._next_correlation_id = 0
        self._closed = False
        self.close_reason: str | None = None  # why the connection closed, once it has

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._writer else "new"
        return f"<BrokerClient {self.address} {state}>"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_flight(self) -> int:
        """Requests sent and not answered yet (abandoned ones included)."""
        return len(self._pending)

    # -- connecting and closing ----------------------------------------------------------

    async def connect(self, timeout_s: float) -> None:
        """Opens the connection; BrokerClientError when refused or not open in time."""
        if self._closed or self._writer is not None:
            raise BrokerClientError(f"{self!r} cannot connect again")
        try:
            async with asyncio.timeout(timeout_s):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, limit=_READ_BUFFER
                )
        except TimeoutError:
            raise self._fail(f"connecting to {self.address} timed out after {timeout_s}s") from None
        except OSError as e:
            raise self._fail(f"cannot connect to {self.address}: {e}") from e
        if self._closed:  # closed while connecting
            writer.transport.abort()
            raise BrokerClientError(f"connection to {self.address} closed: {self.close_reason}")
        self._writer = writer
        self._read_task = asyncio.get_running_loop().create_task(
            self._read_responses(reader), name=f"odradek-broker-client-{self.address}"
        )

    async def close(self) -> None:
        """Closes the connection; requests still waiting fail with BrokerClientError.
        Closing a closed client does nothing."""
        self._fail("closed by this side", abort=False)
        task, self._read_task = self._read_task, None
        if task is not None and task is not asyncio.current_task():
            await asyncio.gather(task, return_exceptions=True)
        writer = self._writer
        if writer is not None:
            # A peer that reset the connection makes wait_closed raise; it is closed anyway.
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await writer.wait_closed()

    def _fail(self, reason: str, *, abort: bool = True) -> BrokerClientError:
        """Closes the connection at once (dropping unsent bytes when `abort`), fails every
        waiting request, and returns the error to raise. Only the first reason sticks."""
        if not self._closed:
            self._closed = True
            self.close_reason = reason
            if self._writer is not None:
                if abort:
                    self._writer.transport.abort()
                else:
                    self._writer.close()
            pending, self._pending = self._pending, {}
            for waiting in pending.values():
                if not waiting.future.done():
                    waiting.future.set_exception(self._error())
            task = self._read_task
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        return self._error()

    def _error(self) -> BrokerClientError:
        return BrokerClientError(f"connection to {self.address} closed: {self.close_reason}")

    # -- requests ------------------------------------------------------------------------

    async def request(
        self, request: Any, api_version: int | None = None, timeout_s: float = 30.0
    ) -> Any:
        """Sends a kio request object (the API key comes from its class, the version too
        when `api_version` is None) and returns the kio response. `timeout_s` covers
        waiting for an in-flight slot, sending and the answer. Raises BrokerClientError on
        any failure (the connection is then closed), ValueError when `request` is not a
        kio request of `api_version`."""
        cls: Any = type(request)
        version = int(getattr(cls, "__version__", -1)) if api_version is None else api_version
        self._check_open()
        correlation_id = self._next_correlation_id
        self._next_correlation_id = (correlation_id + 1) & 0x7FFF_FFFF
        frame = encode_request(request, version, correlation_id, self.client_id)
        try:
            async with asyncio.timeout(timeout_s):
                return await self._exchange(int(cls.__api_key__), version, correlation_id, frame)
        except TimeoutError:
            raise self._fail(
                f"no response to API {cls.__api_key__} v{version} within {timeout_s}s"
            ) from None

    async def _exchange(
        self, api_key: int, api_version: int, correlation_id: int, frame: bytes
    ) -> Any:
        async with self._slots:
            writer = self._check_open()  # it may have closed while this waited for a slot
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._pending[correlation_id] = _Pending(api_key, api_version, future)
            # write() hands the whole frame to the transport at once: a cancelled caller
            # never leaves half a frame behind, so the stream stays in step.
            writer.write(frame)
            try:
                await writer.drain()
            except OSError as e:
                raise self._fail(f"sending to {self.address} failed: {e}") from e
            return await future

    def _check_open(self) -> asyncio.StreamWriter:
        if self._closed:
            raise self._error()
        if self._writer is None:
            raise BrokerClientError(f"{self!r} is not connected")
        return self._writer

    # -- responses -----------------------------------------------------------------------

    async def _read_responses(self, reader: asyncio.StreamReader) -> None:
        """Reads frames until the connection ends, answering the waiting requests."""
        try:
            while True:
                self._dispatch(await self._read_frame(reader))
        except asyncio.IncompleteReadError as e:
            where = "between responses" if not e.partial else "in the middle of a response"
            self._fail(f"{self.address} closed the connection {where}")
        except OSError as e:
            self._fail(f"reading from {self.address} failed: {e}")
        except BrokerClientError as e:
            self._fail(str(e))
        except Exception as e:  # a bug here must not leave requests waiting for ever
            logger.exception("reading responses from %s", self.address)
            self._fail(f"unexpected error reading from {self.address}: {e!r}")

    async def _read_frame(self, reader: asyncio.StreamReader) -> bytes:
        (size,) = _INT32.unpack(await reader.readexactly(4))
        if size > self.max_response_bytes:
            raise BrokerClientError(
                f"response frame of {size} bytes is over the limit of "
                f"{self.max_response_bytes} bytes"
            )
        if size < _INT32.size:
            raise BrokerClientError(f"response frame of {size} bytes has no correlation id")
        return await reader.readexactly(size)

    def _dispatch(self, frame: bytes) -> None:
        (correlation_id,) = _INT32.unpack_from(frame, 0)
        waiting = self._pending.pop(correlation_id, None)
        if waiting is None:
            raise BrokerClientError(f"response to correlation id {correlation_id}, never sent")
        if waiting.future.done():
            return  # its caller was cancelled: the answer is dropped unread
        try:
            _, response = decode_response(frame, waiting.api_key, waiting.api_version)
        except ResponseDecodeError as e:
            error = BrokerClientError(f"bad response from {self.address}: {e}")
            waiting.future.set_exception(error)
            raise error from e
        waiting.future.set_result(response)
