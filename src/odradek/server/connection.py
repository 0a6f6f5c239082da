"""One client connection: frames in, handlers run, responses out in request order.

Many requests may be in flight on one connection (up to
`max.in.flight.requests.per.connection`); each takes a slot in arrival order and responses
are written only from the head, so a slow Fetch holds back later responses exactly as
Kafka's ordering guarantee requires; an acks=0 produce holds its slot only until the
requests before it are answered. Frames beyond the limit wait in the decoder, and reading
pauses, until slots free. Memory (`queued.max.request.bytes`, server/limits.py) is granted
to a frame a window at a time as it arrives, the window doubling with what arrived, and
a frame must arrive complete within `request.timeout.ms` of its first byte. Responses
the client has not taken yet (finished behind a slower one, or in the socket's write
buffer once that is over its high-water mark, when reading also stops) count too.
A broken frame, an unknown API or an undecodable body closes the connection after one log
line; nothing a client sends can stop the broker.

On a SASL listener a connection starts unauthenticated: frames are bounded by
`sasl.server.max.receive.size`, only ApiVersions, SaslHandshake and SaslAuthenticate are
served (anything else closes it), and a refused exchange is answered after
`connection.failed.authentication.delay.ms`, then closed. Once authenticated, requests
carry the principal and take the same path as on any listener; on a listener without
SASL frames go straight to that path (`_serve`), with no check added.
On a TLS listener the connection starts TLS itself (`loop.start_tls`) so that a failed
handshake (garbage, plaintext, a certificate from another CA) is logged with the peer;
with a client certificate the principal is its mapped subject (SASL_SSL: SASL's).
"""

from __future__ import annotations

import asyncio
import logging
import time
import types
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, cast

from odradek.handlers.context import RequestContext, count_error
from odradek.handlers.registry import HANDLERS, ApiSpec
from odradek.protocol.codec import (
    API_VERSIONS_KEY,
    RequestDecodeError,
    decode_request,
    encode_response,
    peek_header,
    request_class,
)
from odradek.protocol.frame import EncodedResponse, FrameDecoder, FrameError
from odradek.security.sasl import SaslSession, State
from odradek.security.tls import TlsListener
from odradek.security.transport import ANONYMOUS, PLAINTEXT, ListenerSecurity
from odradek.server.limits import RequestMemory

if TYPE_CHECKING:
    from odradek.server.broker import Broker

log = logging.getLogger("odradek.connection")

# The first memory grant of a frame; each later one doubles what the frame has received,
# so a frame of n bytes is granted in about log2(n / 64 KiB) steps.
FRAME_WINDOW = 64 * 1024

# Tasks of async handlers that waited are named this plus the API key.
TASK_NAME_PREFIX = "odradek-api-"


_clock = time.perf_counter_ns

# What a SASL listener serves before authentication: ApiVersions, SaslHandshake,
# SaslAuthenticate.
SASL_HANDSHAKE_KEY = 17
PRE_AUTHENTICATION_APIS = frozenset((API_VERSIONS_KEY, SASL_HANDSHAKE_KEY, 36))


class _Slot:
    # api_key is -1 for answers the connection gives itself (not counted in RequestStats);
    # the times are perf_counter_ns readings for server/stats.py, local_end 0 for a
    # handler that finished without waiting.
    __slots__ = (
        "api_key",
        "api_version",
        "completed",
        "done",
        "local_end",
        "payload",
        "payload_rest",
        "payload_size",
        "queued",
        "size",
        "started",
    )

    def __init__(self, size: int, api_key: int = -1, api_version: int = 0) -> None:
        self.done = False
        self.payload: bytes | bytearray | None = None
        # the response's further buffers (EncodedResponse.rest) and the size of all
        self.payload_rest: tuple[bytes | bytearray | memoryview, ...] = ()
        self.payload_size = 0
        self.size = size
        self.api_key = api_key
        self.api_version = api_version
        self.started = self.local_end = self.completed = self.queued = 0


class Connection(asyncio.Protocol):
    def __init__(self, broker: Broker, listener: ListenerSecurity = PLAINTEXT) -> None:
        self.broker = broker
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self._address = ""
        self._decoder = FrameDecoder(broker.config.socket_request_max_bytes)
        self.listener = listener.name
        self.principal = ANONYMOUS
        # Where each whole frame goes: straight to _serve on a listener without SASL (the
        # plaintext path has nothing added), through _dispatch_sasl on a SASL listener
        # (authentication, re-authentication, the session's expiry).
        self._dispatch: Callable[[bytes], None] = self._serve
        self._sasl: SaslSession | None = None
        self._refusal: asyncio.TimerHandle | None = None
        # When the SASL session ends unless re-authenticated (KIP-368); None: never.
        self._session_expires: float | None = None
        self._tls: TlsListener | None = listener.tls
        # Decrypted bytes that arrive before start_tls has handed over the TLS transport
        # (the client's first request may come in the same loop turn as the handshake's
        # end); None once requests may be answered on it.
        self._before_tls: list[bytes] | None = [] if listener.tls is not None else None
        # When an unauthenticated connection must have authenticated (request.timeout.ms).
        self.authentication_deadline: float | None = None
        if listener.mechanisms is not None:
            self._sasl = SaslSession(listener.mechanisms, listener.max_reauth_ms)
            self._dispatch = self._dispatch_sasl
            self._decoder.set_limit(
                min(
                    broker.config.sasl_server_max_receive_size,
                    broker.config.socket_request_max_bytes,
                )
            )
        self._max_in_flight = broker.config.max_in_flight_requests_per_connection
        self._slots: deque[_Slot] = deque()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._in_flight_bytes = 0
        # Response bytes not taken by the client: finished slots behind the head, and the
        # transport's write buffer while it is over its high-water mark.
        self._queued_response_bytes = 0
        self._unsent_bytes = 0
        self._paused_reasons: set[str] = set()
        self._closed = False
        self._counted = False
        self._draining = False
        # Bytes of the frame being received that request memory has granted.
        self._granted = 0
        # Whole frames taken from the decoder but not dispatched: writing paused meanwhile.
        self._held: deque[bytes] = deque()
        self._held_bytes = 0
        # When the whole frames now waiting to be dispatched (held, or buffered behind
        # full in-flight slots) began to wait (perf_counter ns; 0: none waits), and the
        # queue time of the frames being dispatched (Kafka's RequestQueueTimeMs).
        self._waiting_since = 0
        self._queued_ns = 0
        self.last_active = broker.clock.monotonic()
        # When the frame being received started; None while none is, or while this side
        # stopped reading (then a slow frame is not the client's fault).
        self.frame_started: float | None = None

    # -- lifecycle -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if peer else "?"
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        if not self.broker.connection_limits.try_open(self._address, self.listener):
            log.warning("refusing connection from %s: connection limit reached", self.peer)
            self._closed = True
            self.transport.abort()
            return
        self._counted = True
        if self._sasl is not None:
            self.authentication_deadline = (
                self.broker.clock.monotonic() + self.broker.config.request_timeout_ms / 1000
            )
        self.broker.connections.add(self)
        self.broker.request_stats.connections_created += 1
        if self._tls is not None:
            # start_tls's first step, which puts the TLS layer in front of this protocol,
            # runs now: a task would start a loop turn later, and the client's first
            # bytes could reach data_received in the clear meanwhile.
            handshake = self._start_tls(self._tls)
            try:
                waiting_for = handshake.send(None)
            except StopIteration:
                return
            task = asyncio.ensure_future(_resume(handshake, waiting_for))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _start_tls(self, tls: TlsListener) -> None:
        """The TLS handshake; on success requests flow as on any connection, on failure
        the reason is logged and the connection closed."""
        raw = self.transport
        assert raw is not None
        try:
            secured = await asyncio.get_running_loop().start_tls(
                raw,
                self,
                tls.context,
                server_side=True,
                ssl_handshake_timeout=self.broker.config.request_timeout_ms / 1000,
            )
            if secured is None:
                raise ConnectionError("closed during the TLS handshake")
            ssl_object = secured.get_extra_info("ssl_object")
            principal = tls.principal(ssl_object.getpeercert(binary_form=True))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._closed:
                log.warning(
                    "TLS handshake with %s on listener %s failed: %s",
                    self.peer,
                    self.listener,
                    exc or type(exc).__name__,
                )
                self.close("TLS handshake failed")
            self._release()
            return
        self.transport = secured
        if principal is not None and self._sasl is None:
            self.principal = principal
        early, self._before_tls = self._before_tls, None
        if early and not self._closed:
            self.data_received(b"".join(early))

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()

    def _release(self) -> None:
        """What the broker counts for this connection; called once it is gone (also
        after a failed TLS handshake, which may never reach connection_lost)."""
        self._closed = True
        if self._counted:
            self._counted = False
            self.broker.connection_limits.close(self._address, self.listener)
        self.broker.connections.discard(self)
        self.broker.request_memory.forget(id(self))
        if self._refusal is not None:
            self._refusal.cancel()
        # A parked Fetch may wait for minutes and nobody will read its answer: without
        # this, a client could open, send fetches with a long max_wait and close, again
        # and again, and pile up waiting tasks without bound.
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()

    def close(self, reason: str) -> None:
        if self._closed:
            return
        log.info("closing connection from %s: %s", self.peer, reason)
        self._closed = True
        if self.transport is not None:
            self.transport.abort()

    @property
    def idle(self) -> bool:
        return not self._slots and not self._held and not self._decoder.pending

    # -- reading ---------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._before_tls is not None:
            self._before_tls.append(data)
            return
        self.last_active = self.broker.clock.monotonic()
        self._drain(data)

    def _drain(self, data: bytes = b"") -> None:
        """Dispatches the buffered frames, and those completed by `data` (just received),
        while in-flight slots are free.

        Frames beyond `max.in.flight.requests.per.connection` stay in the decoder (and
        reading pauses) until responses free slots; taking every frame of a read at once
        would let one pipelined write start thousands of requests. Re-entered when a
        handler completes during dispatch: the outer loop carries on instead.
        """
        if self._draining or self._closed:
            self._decoder.feed(data, 0)  # only buffers
            return
        self._draining = True
        started = False
        try:
            while not self._closed:
                room = max(self._max_in_flight - len(self._slots), 0)
                if self._paused_reasons and "write" in self._paused_reasons:
                    # The client is not taking its responses: answering more of its
                    # requests would only pile more responses up in memory.
                    room = 0
                held = bool(self._held)
                if held:
                    frames = self._take_held(data, room)
                else:
                    try:
                        # What is not taken stays buffered (all of it when no slot is free).
                        frames = self._decoder.feed(data, room)
                    except FrameError as exc:
                        self.close(str(exc))
                        return
                    if frames:
                        # A frame completed: whatever follows is a new one, granted anew.
                        started = True
                        if self._granted:
                            self._granted = 0
                            self.broker.request_memory.frame_ended(id(self))
                data = b""
                if not frames:
                    break
                if self._waiting_since:
                    self._queued_ns = _clock() - self._waiting_since
                for position, frame in enumerate(frames):
                    if self._closed:
                        return
                    if self._paused_reasons and "write" in self._paused_reasons:
                        self._hold(frames[position:])  # a response filled the write buffer
                        break
                    self._dispatch(frame)
                if not held and len(frames) < room:
                    # No whole frame is left: only this loop feeds the decoder (asyncio
                    # never calls data_received from inside a handler).
                    break
        finally:
            self._draining = False
            self._queued_ns = 0
        if not self._closed:
            self._note_waiting()
            self._account_memory()
            self._track_frame_deadline(started)

    def _note_waiting(self) -> None:
        """Starts or stops the clock of whole frames waiting for dispatch. Only a full
        set of in-flight slots or a paused client leaves a whole frame undispatched, so
        the usual drain looks no further than that."""
        if len(self._slots) < self._max_in_flight and not self._paused_reasons:
            self._waiting_since = 0
        elif self._held or self._decoder.has_frame():
            if not self._waiting_since:
                self._waiting_since = _clock()
        else:
            self._waiting_since = 0

    def _take_held(self, data: bytes, room: int) -> list[bytes]:
        """Up to `room` of the frames held back (they go before the decoder's); `data`
        is only buffered."""
        self._decoder.feed(data, 0)
        frames = [self._held.popleft() for _ in range(min(room, len(self._held)))]
        self._held_bytes -= sum(map(len, frames))
        return frames

    def _hold(self, frames: list[bytes]) -> None:
        """Keeps frames already taken from the decoder for when the client reads again."""
        self._held.extend(frames)
        self._held_bytes += sum(map(len, frames))

    def _track_frame_deadline(self, new_frame: bool) -> None:
        # A frame's deadline runs from its first byte: trickling bytes do not extend it.
        if not self._decoder.pending or self._paused_reasons:
            self.frame_started = None
        elif self.frame_started is None or new_frame:
            self.frame_started = self.broker.clock.monotonic()

    def _account_memory(self) -> None:
        memory = self.broker.request_memory
        owner = id(self)
        held = (
            self._in_flight_bytes
            + self._held_bytes
            + self._queued_response_bytes
            + self._unsent_bytes
        )
        buffered, missing = self._decoder.backlog()
        if not missing:
            memory.set_held(owner, held + buffered)
            if self._paused_reasons:  # the usual case has nothing to resume: skip the calls
                self._resume("memory")
        elif self._grant(memory, owner, buffered, missing):
            memory.set_held(owner, held + self._granted)
            if self._paused_reasons:
                self._resume("memory")
        else:
            # Wait for memory before reading more of this frame.
            granted = self._granted
            memory.set_held(owner, held + granted, stray=max(buffered - granted, 0))
            self._pause("memory")
            memory.park(owner, self._memory_freed)
        if len(self._slots) >= self._max_in_flight:
            self._pause("in-flight")
        elif self._paused_reasons:
            self._resume("in-flight")

    def _grant(self, memory: RequestMemory, owner: int, buffered: int, missing: int) -> bool:
        """Grows the frame's grant to the next window if memory admits it; whether the
        connection may read more of the frame."""
        target = buffered + min(missing, max(FRAME_WINDOW, buffered))
        if target > self._granted and memory.admits(owner):
            self._granted = target
            memory.frame_begun(owner)
        return self._granted > buffered

    def _memory_freed(self) -> None:
        if not self._closed:
            self._account_memory()  # commits and resumes reading, or parks again

    def _pause(self, reason: str) -> None:
        if not self._paused_reasons and self.transport is not None and not self._closed:
            self.transport.pause_reading()
            self.frame_started = None
        self._paused_reasons.add(reason)

    def _resume(self, reason: str) -> None:
        if reason not in self._paused_reasons:
            return
        self._paused_reasons.discard(reason)
        if not self._paused_reasons and self.transport is not None and not self._closed:
            self.transport.resume_reading()
            # The client gets a fresh deadline for the frame it was stopped in.
            if self._decoder.pending:
                self.frame_started = self.broker.clock.monotonic()

    def pause_writing(self) -> None:
        # The client does not read as fast as we answer: stop reading its requests, and
        # count what waits in the write buffer as held memory until it drains.
        self._pause("write")
        if self.transport is not None:
            self._unsent_bytes = self.transport.get_write_buffer_size()
        if not self._draining and not self._closed:
            self._account_memory()

    def resume_writing(self) -> None:
        # Below the low-water mark: what is left is small and no longer counted.
        self._unsent_bytes = 0
        self._resume("write")
        if not self._draining and not self._closed:
            self._drain()  # the frames held back meanwhile; also settles memory

    # -- dispatch --------------------------------------------------------------------
    def _serve(self, frame: bytes) -> None:
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
        decoded = self._decode(frame, api_key, api_version, correlation_id)
        if decoded is not None:
            self._run(spec, decoded[0], decoded[1], len(frame))

    def _decode(
        self,
        frame: bytes,
        api_key: int,
        api_version: int,
        correlation_id: int,
        sasl: SaslSession | None = None,
    ) -> tuple[RequestContext, Any] | None:
        """The request's context and decoded body; None (the connection closed) when the
        version has no schema or the body does not decode."""
        cls = request_class(api_key, api_version)
        if cls is None:
            self.close(f"unknown API key {api_key} version {api_version}")
            return None
        try:
            header, body = decode_request(frame, cls)
        except RequestDecodeError as exc:
            self.close(str(exc))
            return None
        ctx = RequestContext(
            self.broker.services,
            api_version,
            correlation_id,
            header.client_id,
            # Kafka's form of the client's address (Java's InetAddress.toString).
            f"/{self._address}",
            self.principal,
            self.listener,
            sasl,
        )
        return ctx, body

    # -- authentication --------------------------------------------------------------
    def _dispatch_sasl(self, frame: bytes) -> None:
        """A frame on a SASL listener. Authenticated: served, unless the session expired
        (closed) or it is a SaslHandshake (re-authentication starts). Otherwise a raw
        token after a v0 SaslHandshake, or one of the few requests served before
        authentication; anything else closes."""
        session = self._sasl
        assert session is not None
        if session.state is State.COMPLETE:
            now = self.broker.clock.monotonic()
            if self._session_expires is not None and now >= self._session_expires:
                log.info("%s on %s: SASL session expired", self.peer, self.listener)
                self.close("SASL session expired without re-authentication")
                return
            if int.from_bytes(frame[:2], "big") != SASL_HANDSHAKE_KEY:
                self._serve(frame)
                return
            session.reauthenticate()
            self.authentication_deadline = now + self.broker.config.request_timeout_ms / 1000
        if session.state is State.FAILED:
            return  # refused: the answer is on its way, then the connection closes
        if session.state is State.RAW:
            self._raw_token(session, frame)
            return
        try:
            api_key, api_version, correlation_id = peek_header(frame)
        except RequestDecodeError as exc:
            self.close(f"before authentication: {exc}")
            return
        spec = HANDLERS.get(api_key)
        if api_key not in PRE_AUTHENTICATION_APIS or spec is None:
            log.warning(
                "closing connection from %s on listener %s: API key %d before authentication",
                self.peer,
                self.listener,
                api_key,
            )
            self.close("request before authentication")
            return
        if api_key == API_VERSIONS_KEY:
            self._serve(frame)
            return
        if not spec.min_version <= api_version <= spec.max_version:
            self.close(f"unsupported API key {api_key} version {api_version}")
            return
        decoded = self._decode(frame, api_key, api_version, correlation_id, session)
        if decoded is None:
            return
        ctx, body = decoded
        response = spec.handler(ctx, body)  # SaslHandshake, SaslAuthenticate: sync
        self._sasl_answered(session, encode_response(api_key, correlation_id, response))

    def _raw_token(self, session: SaslSession, token: bytes) -> None:
        """A SASL token in a frame of its own (after SaslHandshake v0); the answer is a
        frame of its own too."""
        outcome = session.authenticate(token)
        if session.state is State.FAILED:
            self._refuse(session, None)  # no error frame exists in this form: just close
            return
        self._sasl_answered(session, len(outcome.token).to_bytes(4, "big") + outcome.token)

    def _sasl_answered(self, session: SaslSession, payload: bytes | bytearray) -> None:
        if session.state is State.FAILED:
            self._refuse(session, payload)
            return
        self._respond_now(bytes(payload))
        if session.state is State.COMPLETE and session.principal is not None:
            self.principal = session.principal
            self.authentication_deadline = None
            lifetime = session.session_lifetime_ms
            self._session_expires = (
                self.broker.clock.monotonic() + lifetime / 1000 if lifetime else None
            )
            self._decoder.set_limit(self.broker.config.socket_request_max_bytes)
            log.debug("%s authenticated as %s on %s", self.peer, self.principal, self.listener)

    def _refuse(self, session: SaslSession, payload: bytes | bytearray | None) -> None:
        """Answers a refused exchange after connection.failed.authentication.delay.ms
        (a password guesser gets one guess per delay and connection), then closes."""
        log.warning(
            "authentication failed for %s on listener %s (%s): %s",
            self.peer,
            self.listener,
            session.mechanism_name or "no mechanism",
            session.failure,
        )
        self._pause("authentication")
        delay = self.broker.config.connection_failed_authentication_delay_ms / 1000
        self._refusal = asyncio.get_running_loop().call_later(delay, self._send_and_close, payload)

    def _send_and_close(self, payload: bytes | bytearray | None) -> None:
        self._refusal = None
        if self._closed or self.transport is None:
            return
        if payload is not None:
            self.transport.write(payload)
        self._closed = True
        self.transport.close()  # unlike abort(), sends what is written first

    def _run(self, spec: ApiSpec, ctx: RequestContext, body: Any, size: int) -> None:
        slot = _Slot(size, spec.api_key, ctx.api_version)
        self._slots.append(slot)
        self._in_flight_bytes += size
        queued = self._queued_ns
        slot.started = _clock() - queued  # from its arrival: the total includes the wait
        slot.queued = queued
        try:
            if spec.is_async:
                self._start(spec, ctx, slot, spec.handler(ctx, body))
                return
            response = spec.handler(ctx, body)
        except Exception:
            log.exception("handler for API %d failed; closing %s", spec.api_key, self.peer)
            self.close("internal error")
            return
        self._complete(slot, spec, ctx, response)

    def _start(
        self, spec: ApiSpec, ctx: RequestContext, slot: _Slot, coro: Coroutine[Any, Any, Any]
    ) -> None:
        """Runs an async handler's first step at once, as a sync handler runs: most fetches
        have data and finish there, with no task to create and no loop turn to wait for.
        One that awaits goes on in a task from where it stopped."""
        try:
            yielded = coro.send(None)
        except StopIteration as done:
            self._complete(slot, spec, ctx, done.value)
            return
        slot.local_end = _clock()  # what follows is waiting (Kafka's remote time)
        task = asyncio.ensure_future(_resume(coro, yielded))
        task.set_name(f"{TASK_NAME_PREFIX}{spec.api_key}")  # its coroutine is _resume's
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._finish_task(spec, ctx, slot, t))

    def _finish_task(
        self, spec: ApiSpec, ctx: RequestContext, slot: _Slot, task: asyncio.Future[Any]
    ) -> None:
        self._tasks.discard(task)
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
        if type(response) is EncodedResponse:
            slot.payload = response.frame
            slot.payload_rest = response.rest
            slot.payload_size = len(slot.payload) + sum(len(b) for b in response.rest)
        elif response is not None:
            slot.payload = encode_response(spec.api_key, ctx.correlation_id, response)
            slot.payload_size = len(slot.payload)
            if getattr(response, "error_code", 0):  # the top-level code (ErrorsPerSec)
                count_error(ctx.services, spec.api_key, response.error_code)
        self._queued_response_bytes += slot.payload_size
        slot.completed = _clock()
        slot.done = True
        self._flush_ready(slot)

    def _record_waited(self, slot: _Slot, sent: int) -> None:
        self.broker.request_stats.record_waited(
            slot.api_key,
            slot.api_version,
            slot.started,
            slot.local_end or slot.completed,
            slot.completed,
            sent,
            slot.queued,
        )

    def _respond_now(self, payload: bytes) -> None:
        slot = _Slot(0)
        slot.payload = payload
        slot.payload_size = len(payload)
        self._queued_response_bytes += len(payload)
        slot.done = True
        self._slots.append(slot)
        self._flush_ready()

    def _flush_ready(self, completed: _Slot | None = None) -> None:
        """Writes every finished response at the head of the queue, in order;
        `completed` is the slot whose answer just came (its response goes out now if it
        is at the head)."""
        ready: list[bytes | bytearray | memoryview] = []
        sent = 0
        while self._slots and self._slots[0].done:
            slot = self._slots.popleft()
            self._in_flight_bytes -= slot.size
            if slot.api_key < 0:
                pass
            elif slot is completed and not slot.local_end and not slot.queued:
                # The usual case, dispatched, answered and sent at once: total time only.
                self.broker.request_stats.record(
                    slot.api_key, slot.api_version, slot.started, slot.completed
                )
            else:
                sent = sent or _clock()
                self._record_waited(slot, sent if slot is not completed else slot.completed)
            if slot.payload is not None:
                self._queued_response_bytes -= slot.payload_size
                ready.append(slot.payload)
                if slot.payload_rest:
                    ready.extend(slot.payload_rest)
        if self._closed or self.transport is None:
            return
        if ready:
            self.transport.writelines(ready)
            if "write" in self._paused_reasons:  # still over the high-water mark: grew
                self._unsent_bytes = self.transport.get_write_buffer_size()
        if self._draining:
            # The dispatch loop under us accounts once it is done; its caller (data_received
            # or this method, below) has just set last_active.
            return
        # Answering is activity too: a long Fetch must not make the connection look idle
        # the moment its response goes out (nor the requests dispatched below).
        self.last_active = self.broker.clock.monotonic()
        # Freed slots let frames that arrived meanwhile go; this also settles memory and
        # the in-flight pause.
        self._drain()


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Drives `coro` on, inside a task, from its first `yielded` value (it ran its first
    step outside): what the task sends or throws in goes to `coro`, what `coro` yields
    (the future it waits for) goes to the task, and its result is the task's."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # CancelledError from task.cancel(), mostly
            try:
                yielded = coro.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as done:
                return done.value
