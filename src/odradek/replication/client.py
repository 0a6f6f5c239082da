"""A connection to another broker, for the replica fetcher and the controller: send kio
request objects, get kio response objects back.

One TCP connection per `BrokerClient`. Requests are pipelined (sent without waiting for
earlier answers, up to `max_in_flight`) and matched to their responses by correlation id.
A response is at most `max_response_bytes` (100 MiB), checked on its size prefix before
anything of it is buffered, and its body is bounds-checked before kio parses it.

How it connects is the process's inter-broker transport (`set_inter_broker_transport`,
set by a broker of a cluster from `inter.broker.listener.name`): TLS, and a SASL login
right after connecting (security/inter_broker.py); plain TCP when none is set.

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
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from odradek.protocol.codec import ResponseDecodeError, decode_response, encode_request

logger = logging.getLogger("odradek.replication")

MAX_RESPONSE_BYTES = 100 << 20
MAX_IN_FLIGHT = 64
CLOSE_TIMEOUT_S = 1.0
# The buffer the socket is read into between large responses: the size prefixes and the
# small responses are cut out of it; a response larger than what is left of it gets a
# buffer of its own that the socket then fills directly.
_SCRATCH_BYTES = 256 * 1024
# Below this much free room the scratch buffer is compacted before the next read.
_MIN_READ = 64 * 1024
# A large frame's buffer is kept for the next one up to this size (a fetch answer is at
# most replica.fetch.response.max.bytes, 10 MiB by default).
_SPARE_MAX_BYTES = 16 << 20
_INT32 = struct.Struct(">i")


# Reads a response frame (from the correlation id on) without kio, or returns None.
FastDecode = Callable[[bytes | memoryview], Any | None]


class BrokerClientError(Exception):
    """The request failed and the connection is closed (or was never open)."""


@dataclass(frozen=True, slots=True)
class ClientTransport:
    """How to reach another broker: TLS with `ssl_context`, then `authenticate` (a SASL
    login through the client's own requests), each when set."""

    ssl_context: ssl.SSLContext | None = None
    authenticate: Callable[[BrokerClient], Awaitable[None]] | None = None


_inter_broker = ClientTransport()


def set_inter_broker_transport(transport: ClientTransport) -> None:
    """Sets how every BrokerClient of this process connects (one broker per process in
    a cluster; its inter-broker listener's security is broker-wide)."""
    global _inter_broker
    _inter_broker = transport


@dataclass(slots=True)
class _Pending:
    api_key: int
    api_version: int
    future: asyncio.Future[Any]
    # a faster reader of the frame for the common case; None (from it) means kio's
    fast_decode: FastDecode | None = None


class _ResponseReader(asyncio.BufferedProtocol):
    """Cuts response frames out of the byte stream with as few copies as the socket
    allows: the loop reads into `get_buffer`'s memory, small frames are copied out of a
    scratch buffer, and a large frame is read straight into a buffer of its own size
    that is handed on without another copy (and used again for a later large frame once
    nothing refers to it). Frames, the end of the stream and failures
    go to the owning BrokerClient."""

    def __init__(self, client: BrokerClient) -> None:
        self._client = client
        self.transport: asyncio.Transport | None = None
        self._scratch = bytearray(_SCRATCH_BYTES)
        self._scratch_view = memoryview(self._scratch)
        self._start = 0  # first unconsumed byte of the scratch buffer
        self._end = 0  # end of what the socket wrote into it
        self._large: memoryview | None = None  # the frame being read into its own buffer
        self._large_filled = 0
        # The last large frame's buffer, used again once nothing refers to it any more.
        self._spare: bytearray | None = None
        self._can_write: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- reading -------------------------------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        large = self._large
        if large is not None:
            return large[self._large_filled :]
        if self._start and len(self._scratch) - self._end < _MIN_READ:
            # Little room left: move the unconsumed tail to the front.
            tail = self._end - self._start
            self._scratch[:tail] = self._scratch_view[self._start : self._end]
            self._start, self._end = 0, tail
        return self._scratch_view[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        try:
            if self._large is not None:
                self._large_filled += nbytes
                if self._large_filled == len(self._large):
                    frame, self._large = self._large, None
                    readonly = frame.toreadonly()
                    frame.release()
                    self._client._dispatch(readonly)
                return
            self._end += nbytes
            self._cut_frames()
        except BrokerClientError as e:
            self._client._fail(str(e))
        except Exception as e:  # a bug here must not leave requests waiting for ever
            logger.exception("reading responses from %s", self._client.address)
            self._client._fail(f"unexpected error reading from {self._client.address}: {e!r}")

    def _cut_frames(self) -> None:
        view = self._scratch_view
        while not self._client.closed:
            available = self._end - self._start
            if available < 4:
                break
            (size,) = _INT32.unpack_from(view, self._start)
            self._client._check_frame_size(size)
            if available - 4 >= size:
                body = self._start + 4
                self._start = body + size
                self._client._dispatch(view[body : self._start].tobytes())
                continue
            if 4 + size > len(self._scratch):
                # Larger than the scratch buffer: the rest goes straight into its own.
                frame = self._large_buffer(size)
                got = available - 4
                frame[:got] = view[self._start + 4 : self._end]
                self._large, self._large_filled = frame, got
                self._start = self._end = 0
                return
            break
        if self._start == self._end:
            self._start = self._end = 0

    def _large_buffer(self, size: int) -> memoryview:
        """Room for a frame of `size` bytes: the spare buffer when it is big enough and
        no longer exported (no response or record view still refers to it: a bytearray
        with exports cannot be resized), else a new buffer that becomes the spare. This
        saves zero-filling a fresh buffer for every large fetch answer."""
        spare = self._spare
        if spare is not None and len(spare) >= size and _unexported(spare):
            return memoryview(spare)[:size]
        buffer = bytearray(size)
        if size <= _SPARE_MAX_BYTES:
            self._spare = buffer
        return memoryview(buffer)

    def partial(self) -> bool:
        """Whether a response has begun and not ended."""
        return self._large is not None or self._end > self._start

    # -- the connection ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        client = self._client
        if exc is not None:
            client._fail(f"reading from {client.address} failed: {exc}")
        else:
            where = "in the middle of a response" if self.partial() else "between responses"
            client._fail(f"{client.address} closed the connection {where}")
        self._wake_writers()
        if not self.closed.done():
            self.closed.set_result(None)

    def eof_received(self) -> bool:
        return False  # close: the broker never half-closes

    # -- writing -------------------------------------------------------------------------

    def pause_writing(self) -> None:
        if self._can_write is None or self._can_write.done():
            self._can_write = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writers()

    def _wake_writers(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)

    async def drain(self) -> None:
        """Waits while the transport's buffer is over its high-water mark."""
        waiting = self._can_write
        if waiting is not None and not waiting.done():
            await asyncio.shield(waiting)


def _unexported(buffer: bytearray) -> bool:
    """Whether no memoryview of `buffer` is alive (resizing one with exports fails)."""
    try:
        buffer.append(0)
    except BufferError:
        return False
    del buffer[-1]
    return True


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
        self._protocol: _ResponseReader | None = None
        self._pending: dict[int, _Pending] = {}
        self._next_correlation_id = 0
        self._closed = False
        self.close_reason: str | None = None  # why the connection closed, once it has

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._protocol else "new"
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
        if self._closed or self._protocol is not None:
            raise BrokerClientError(f"{self!r} cannot connect again")
        loop = asyncio.get_running_loop()
        transport = _inter_broker
        try:
            async with asyncio.timeout(timeout_s):
                _, protocol = await loop.create_connection(
                    lambda: _ResponseReader(self),
                    self.host,
                    self.port,
                    ssl=transport.ssl_context,
                    server_hostname=self.host if transport.ssl_context is not None else None,
                )
        except TimeoutError:
            raise self._fail(f"connecting to {self.address} timed out after {timeout_s}s") from None
        except OSError as e:
            raise self._fail(f"cannot connect to {self.address}: {e}") from e
        if self._closed:  # closed while connecting
            if protocol.transport is not None:
                protocol.transport.abort()
            raise BrokerClientError(f"connection to {self.address} closed: {self.close_reason}")
        self._protocol = protocol
        if transport.authenticate is not None:
            try:
                async with asyncio.timeout(timeout_s):
                    await transport.authenticate(self)
            except TimeoutError:
                raise self._fail(f"SASL login to {self.address} timed out") from None
            except BrokerClientError:
                raise
            except Exception as e:
                raise self._fail(f"SASL login to {self.address} failed: {e}") from e

    async def close(self) -> None:
        """Closes the connection; requests still waiting fail with BrokerClientError.
        Closing a closed client does nothing."""
        self._fail("closed by this side", abort=False)
        protocol = self._protocol
        if protocol is not None:
            # A peer that does not close its side in time is cut off by the abort below.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await asyncio.shield(protocol.closed)
            if protocol.transport is not None and not protocol.closed.done():
                protocol.transport.abort()

    def _fail(self, reason: str, *, abort: bool = True) -> BrokerClientError:
        """Closes the connection at once (dropping unsent bytes when `abort`), fails every
        waiting request, and returns the error to raise. Only the first reason sticks."""
        if not self._closed:
            self._closed = True
            self.close_reason = reason
            transport = self._protocol.transport if self._protocol is not None else None
            if transport is not None:
                if abort:
                    transport.abort()
                else:
                    transport.close()
            pending, self._pending = self._pending, {}
            for waiting in pending.values():
                if not waiting.future.done():
                    waiting.future.set_exception(self._error())
        return self._error()

    def _error(self) -> BrokerClientError:
        return BrokerClientError(f"connection to {self.address} closed: {self.close_reason}")

    # -- requests ------------------------------------------------------------------------

    async def request(
        self,
        request: Any,
        api_version: int | None = None,
        timeout_s: float = 30.0,
        fast_decode: FastDecode | None = None,
    ) -> Any:
        """Sends a kio request object (the API key comes from its class, the version too
        when `api_version` is None) and returns the kio response. `timeout_s` covers
        waiting for an in-flight slot, sending and the answer. Raises BrokerClientError on
        any failure (the connection is then closed), ValueError when `request` is not a
        kio request of `api_version`. `fast_decode`, when given, reads the response
        first (it must return what kio would, or None to leave the frame to kio)."""
        cls: Any = type(request)
        version = int(getattr(cls, "__version__", -1)) if api_version is None else api_version
        self._check_open()
        correlation_id, frame = self._encode(request, version)
        api_key = int(cls.__api_key__)
        try:
            async with asyncio.timeout(timeout_s):
                return await self._exchange(api_key, version, correlation_id, frame, fast_decode)
        except TimeoutError:
            raise self._fail(_no_response(api_key, version, timeout_s)) from None

    def send(
        self,
        request: Any,
        api_version: int,
        timeout_s: float,
        fast_decode: FastDecode | None = None,
    ) -> asyncio.Future[Any]:
        """Sends a kio request at once and returns the future of its response: the
        per-request path of the replica fetcher, which has one request in flight at a
        time and sends one per round (no task, timeout scope or slot wait of its own).
        The response is what `request` would return; when `timeout_s` passes first the
        connection fails as `request`'s does. Cancelling the future abandons the request
        (its answer is read and dropped). BrokerClientError when the client is closed or
        its in-flight slots are all taken by `request` callers."""
        protocol = self._check_open()
        if self._slots.locked():
            raise BrokerClientError(f"{self!r} has no free in-flight slot")
        correlation_id, frame = self._encode(request, api_version)
        api_key = int(type(request).__api_key__)
        future = self._write(protocol, api_key, api_version, correlation_id, frame, fast_decode)
        reason = _no_response(api_key, api_version, timeout_s)
        expiry = asyncio.get_running_loop().call_later(timeout_s, self._expire, future, reason)
        future.add_done_callback(lambda _: expiry.cancel())
        return future

    def _expire(self, future: asyncio.Future[Any], reason: str) -> None:
        if not future.done():
            self._fail(reason)

    def _encode(self, request: Any, api_version: int) -> tuple[int, bytes]:
        """The next correlation id and the request's frame with it."""
        correlation_id = self._next_correlation_id
        self._next_correlation_id = (correlation_id + 1) & 0x7FFF_FFFF
        return correlation_id, encode_request(request, api_version, correlation_id, self.client_id)

    def _write(
        self,
        protocol: _ResponseReader,
        api_key: int,
        api_version: int,
        correlation_id: int,
        frame: bytes,
        fast_decode: FastDecode | None,
    ) -> asyncio.Future[Any]:
        """Registers the answer's future and hands the whole frame to the transport at
        once: a cancelled caller never leaves half a frame behind, so the stream stays in
        step."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = _Pending(api_key, api_version, future, fast_decode)
        assert protocol.transport is not None
        protocol.transport.write(frame)
        return future

    async def _exchange(
        self,
        api_key: int,
        api_version: int,
        correlation_id: int,
        frame: bytes,
        fast_decode: FastDecode | None = None,
    ) -> Any:
        async with self._slots:
            protocol = self._check_open()  # it may have closed while this waited for a slot
            future = self._write(protocol, api_key, api_version, correlation_id, frame, fast_decode)
            await protocol.drain()
            return await future

    def _check_open(self) -> _ResponseReader:
        if self._closed:
            raise self._error()
        if self._protocol is None:
            raise BrokerClientError(f"{self!r} is not connected")
        return self._protocol

    # -- responses -----------------------------------------------------------------------

    def _check_frame_size(self, size: int) -> None:
        """Refuses a frame by its size prefix, before any of it is buffered."""
        if size > self.max_response_bytes:
            raise BrokerClientError(
                f"response frame of {size} bytes is over the limit of "
                f"{self.max_response_bytes} bytes"
            )
        if size < _INT32.size:
            raise BrokerClientError(f"response frame of {size} bytes has no correlation id")

    def _dispatch(self, frame: bytes | memoryview) -> None:
        (correlation_id,) = _INT32.unpack_from(frame, 0)
        waiting = self._pending.pop(correlation_id, None)
        if waiting is None:
            raise BrokerClientError(f"response to correlation id {correlation_id}, never sent")
        if waiting.future.done():
            return  # its caller was cancelled: the answer is dropped unread
        if waiting.fast_decode is not None:
            response = waiting.fast_decode(frame)
            if response is not None:
                waiting.future.set_result(response)
                return
        try:
            _, response = decode_response(frame, waiting.api_key, waiting.api_version)
        except ResponseDecodeError as e:
            error = BrokerClientError(f"bad response from {self.address}: {e}")
            waiting.future.set_exception(error)
            raise error from e
        waiting.future.set_result(response)


def _no_response(api_key: int, api_version: int, timeout_s: float) -> str:
    return f"no response to API {api_key} v{api_version} within {timeout_s}s"
