"""One client connection: frames in, handlers run, responses out in request order.

Many requests may be in flight on one connection (up to
`max.in.flight.requests.per.connection`); each takes a slot in arrival order and responses
are written only from the head, so a slow Fetch holds back later responses exactly as
Kafka's ordering guarantee requires. acks=0 produce requests take no slot.
A broken frame, an unknown API or an undecodable body closes the connection after one log
line; nothing a client sends can stop the broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from odradek.handlers.context import RequestContext
from odradek.handlers.registry import HANDLERS, ApiSpec
from odradek.protocol.codec import (
    API_VERSIONS_KEY,
    RequestDecodeError,
    decode_request,
    encode_response,
    peek_header,
    request_class,
)
from odradek.protocol.frame import FrameDecoder, FrameError

if TYPE_CHECKING:
    from odradek.server.broker import Broker

log = logging.getLogger("odradek.connection")


class _Slot:
    __slots__ = ("done", "payload", "size")

    def __init__(self, size: int) -> None:
        self.done = False
        self.payload: bytes | None = None
        self.size = size


class Connection(asyncio.Protocol):
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self._address = ""
        self._decoder = FrameDecoder(broker.config.socket_request_max_bytes)
        self._slots: deque[_Slot] = deque()
        self._in_flight_bytes = 0
        self._paused_reasons: set[str] = set()
        self._closed = False
        self._counted = False
        self.last_active = broker.clock.monotonic()
        self.frame_started: float | None = None

    # -- lifecycle -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if peer else "?"
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        if not self.broker.connection_limits.try_open(self._address):
            log.warning("refusing connection from %s: connection limit reached", self.peer)
            self.transport.abort()
            return
        self._counted = True
        self.broker.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._counted:
            self._counted = False
            self.broker.connection_limits.close(self._address)
        self.broker.connections.discard(self)
        self.broker.request_memory.forget(id(self))

    def close(self, reason: str) -> None:
        if self._closed:
            return
        log.info("closing connection from %s: %s", self.peer, reason)
        self._closed = True
        if self.transport is not None:
            self.transport.abort()

    @property
    def idle(self) -> bool:
        return not self._slots and not self._decoder.pending

    # -- reading ---------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        now = self.broker.clock.monotonic()
        self.last_active = now
        try:
            frames = self._decoder.feed(data)
        except FrameError as exc:
            self.close(str(exc))
            return
        # A frame's deadline runs from its first byte: trickling bytes do not extend it.
        if not self._decoder.pending:
            self.frame_started = None
        elif self.frame_started is None:
            self.frame_started = now
        if frames and self._decoder.pending:
            self.frame_started = now
        for frame in frames:
            if self._closed:
                return
            self._dispatch(frame)
        self._account_memory()

    def _account_memory(self) -> None:
        memory = self.broker.request_memory
        memory.set_held(id(self), self._decoder.buffered_bytes + self._in_flight_bytes)
        if memory.over_budget(id(self)):
            self._pause("memory")
            memory.park(id(self), lambda: self._resume("memory"))
        elif len(self._slots) >= self.broker.config.max_in_flight_requests_per_connection:
            self._pause("in-flight")

    def _pause(self, reason: str) -> None:
        if not self._paused_reasons and self.transport is not None and not self._closed:
            self.transport.pause_reading()
        self._paused_reasons.add(reason)

    def _resume(self, reason: str) -> None:
        if reason not in self._paused_reasons:
            return
        self._paused_reasons.discard(reason)
        if not self._paused_reasons and self.transport is not None and not self._closed:
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        self._pause("write")

    def resume_writing(self) -> None:
        self._resume("write")

    # -- dispatch --------------------------------------------------------------------
    def _dispatch(self, frame: bytes) -> None:
        try:
            api_key, api_version, correlation_id = peek_header(frame)
        except RequestDecodeError as exc:
            self.close(str(exc))
            return
        spec = HANDLERS.get(api_key)
        if api_key == API_VERSIONS_KEY and spec is not None and api_version > spec.max_version:
            self._respond_now(self.broker.unsupported_api_versions(correlation_id))
            return
        if spec is None or not spec.min_version <= api_version <= spec.max_version:
            self.close(f"unsupported API key {api_key} version {api_version}")
            return
        cls = request_class(api_key, api_version)
        if cls is None:
            self.close(f"unknown API key {api_key} version {api_version}")
            return
        try:
            header, body = decode_request(frame, cls)
        except RequestDecodeError as exc:
            self.close(str(exc))
            return
        ctx = RequestContext(self.broker.services, api_version, correlation_id, header.client_id)
        self._run(spec, ctx, body, len(frame))

    def _run(self, spec: ApiSpec, ctx: RequestContext, body: Any, size: int) -> None:
        slot = _Slot(size)
        self._slots.append(slot)
        self._in_flight_bytes += size
        if spec.is_async:
            task = asyncio.ensure_future(spec.handler(ctx, body))
            task.add_done_callback(lambda t: self._finish_task(spec, ctx, slot, t))
            return
        try:
            response = spec.handler(ctx, body)
        except Exception:
            log.exception("handler for API %d failed; closing %s", spec.api_key, self.peer)
            self.close("internal error")
            return
        self._complete(slot, spec, ctx, response)

    def _finish_task(
        self, spec: ApiSpec, ctx: RequestContext, slot: _Slot, task: asyncio.Future[Any]
    ) -> None:
        if task.cancelled():
            self.close("request cancelled")
            return
        error = task.exception()
        if error is not None:
            log.error(
                "handler for API %d failed; closing %s", spec.api_key, self.peer, exc_info=error
            )
            self.close("internal error")
            return
        self._complete(slot, spec, ctx, task.result())

    def _complete(self, slot: _Slot, spec: ApiSpec, ctx: RequestContext, response: Any) -> None:
        if response is not None:
            slot.payload = encode_response(spec.api_key, ctx.correlation_id, response)
        slot.done = True
        self._flush_ready()

    def _respond_now(self, payload: bytes) -> None:
        slot = _Slot(0)
        slot.payload = payload
        slot.done = True
        self._slots.append(slot)
        self._flush_ready()

    def _flush_ready(self) -> None:
        """Writes every finished response at the head of the queue, in order."""
        ready: list[bytes] = []
        while self._slots and self._slots[0].done:
            slot = self._slots.popleft()
            self._in_flight_bytes -= slot.size
            if slot.payload is not None:
                ready.append(slot.payload)
        if self._closed or self.transport is None:
            return
        if ready:
            self.transport.writelines(ready)
        if len(self._slots) < self.broker.config.max_in_flight_requests_per_connection:
            self._resume("in-flight")
        self._account_memory()
