"""Broker-wide limits hold against floods on real sockets while a canary client keeps
working: connections per address, idle connections, slowloris frames (whole-frame
deadline), queued request memory (no deadlock, all memory returned) and the in-flight
request limit per connection (enforced, order kept)."""

from __future__ import annotations

import datetime
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.protocol.records import SimpleRecord, build_batch
from odradek.testing import Broker
from tests.handlers.kafka_wire import ensure_topic, fetch_request, produce_request
from tests.server.wire import WireClient, build, encode_request, request_module

HOST = "127.0.0.1"
TIMEOUT = datetime.timedelta(seconds=5)
PRODUCE_V, FETCH_V, METADATA_V = 9, 12, 12


# -- helpers -----------------------------------------------------------------------------


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.02) -> bool:
    """Polls until `predicate()` is true; False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def produce_body(topic: str, value: bytes = b"v") -> Any:
    batch = build_batch([SimpleRecord(value, key=b"k", timestamp=1_700_000_000_000)])
    return produce_request(topic, batch, version=PRODUCE_V)


def metadata_body() -> Any:
    m = request_module(3, METADATA_V)
    return build(
        m.MetadataRequest,
        topics=None,
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )


def fetch_body(topic: str, max_wait_ms: int, min_bytes: int) -> Any:
    return fetch_request(
        [(topic, 0, 0)], max_wait_ms, min_bytes, max_bytes=1 << 20, version=FETCH_V
    )


def produce_ok(response: Any) -> bool:
    return bool(response.responses[0].partition_responses[0].error_code == ErrorCode.none)


class Canary:
    """One connection that keeps doing Metadata + Produce(acks=all) calls in a thread and
    records every latency and every failure."""

    def __init__(self, port: int, topic: str) -> None:
        self.client = WireClient(port, timeout=10)
        self.topic = topic
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.client.call(3, METADATA_V, metadata_body())
                if not produce_ok(self.client.call(0, PRODUCE_V, produce_body(self.topic))):
                    self.failures.append("produce error")
            except Exception as exc:
                self.failures.append(repr(exc))
                return
            self.latencies.append(time.monotonic() - started)
            self._stop.wait(0.02)

    def __enter__(self) -> Canary:
        self._thread.start()
        assert wait_for(lambda: len(self.latencies) >= 3 or self.failures, 10), "canary stuck"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self.client.close()

    def check(self) -> str:
        count = len(self.latencies)
        assert not self.failures, f"canary failed: {self.failures[:3]}"
        assert not self._thread.is_alive() or count > 3, "canary made no progress"
        ordered = sorted(self.latencies)
        p50, worst = ordered[count // 2], ordered[-1]
        assert worst < 3.0, f"a canary call took {worst:.2f}s"
        return f"canary {count} calls p50 {p50 * 1000:.1f} ms max {worst * 1000:.1f} ms"


@contextmanager
def broker_with(config: dict[str, Any]) -> Iterator[Broker]:
    with Broker(config={"num.partitions": 1, **config}) as running:
        yield running


@contextmanager
def canary_on(broker: Broker) -> Iterator[Canary]:
    with WireClient(broker.port) as admin:
        ensure_topic(admin, "canary")
    with Canary(broker.port, "canary") as canary:
        yield canary


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def is_closed(sock: socket.socket) -> bool:
    """Whether the peer closed `sock` (without blocking)."""
    timeout = sock.gettimeout()
    sock.settimeout(0)  # in timeout mode recv would first wait for data
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)


def served(broker: Broker) -> Any:
    assert broker.broker is not None
    return broker.broker


# -- tests -------------------------------------------------------------------------------


def test_connections_over_the_per_ip_cap_are_refused_quickly() -> None:
    """With max.connections.per.ip=20, 200 connections from 127.0.0.1: all but the cap are
    closed by the broker within 2 s, the broker never holds more than the cap, file
    descriptors come back down once the clients go, and the canary never fails."""
    cap, flood = 20, 200
    with broker_with({"max.connections.per.ip": cap}) as broker, canary_on(broker) as canary:
        fds_before = open_fds()
        started = time.monotonic()
        socks = [socket.create_connection((HOST, broker.port), timeout=5) for _ in range(flood)]
        try:
            # The canary holds one slot; the rest of the cap goes to the flood.
            assert wait_for(lambda: sum(map(is_closed, socks)) >= flood - (cap - 1), 2.0), (
                f"only {sum(map(is_closed, socks))} of {flood} closed"
            )
            refused_in = time.monotonic() - started
            assert len(served(broker).connections) <= cap
            open_socks = [s for s in socks if not is_closed(s)]
            assert len(open_socks) == cap - 1
            # The connections that got in are served normally.
            with WireClient.__new__(WireClient) as client:
                client.sock, client._correlation = open_socks[0], 0
                client.call(3, METADATA_V, metadata_body())
            peak_fds = open_fds()
        finally:
            for s in socks:
                s.close()
        assert wait_for(lambda: len(served(broker).connections) <= 1, 3.0)
        assert wait_for(lambda: open_fds() <= fds_before + 2, 3.0), (
            f"{open_fds()} fds open, {fds_before} before the flood"
        )
        summary = canary.check()
    # Our `flood` client sockets plus at most `cap` broker-side ones.
    assert peak_fds <= fds_before + flood + cap
    print(
        f"\nper-ip cap {cap}: {flood - cap + 1} of {flood} refused within "
        f"{refused_in * 1000:.0f} ms; fds peak +{peak_fds - fds_before}; {summary}"
    )


def test_idle_connection_is_closed_and_active_one_is_not() -> None:
    """connections.max.idle.ms=500: a silent connection is closed 0.5-2 s after its last
    request; one that keeps sending requests stays open over the same time."""
    with (
        broker_with({"connections.max.idle.ms": 500}) as broker,
        WireClient(broker.port) as idle,
        WireClient(broker.port) as active,
    ):
        idle.call(3, METADATA_V, metadata_body())
        last_request = time.monotonic()
        closed_at: list[float] = []

        def idle_closed() -> bool:
            if is_closed(idle.sock):
                closed_at.append(time.monotonic())
                return True
            active.call(3, METADATA_V, metadata_body())
            return False

        assert wait_for(idle_closed, 3.0, interval=0.05), "idle connection not closed"
        after = closed_at[0] - last_request
        assert 0.45 <= after <= 2.0, f"idle connection closed after {after:.2f}s"
        # The active connection outlived the idle one and still works.
        active.call(3, METADATA_V, metadata_body())
        assert not is_closed(active.sock)
    print(f"\nidle connection closed {after * 1000:.0f} ms after its last request")


def test_slowloris_clients_are_closed_by_the_whole_frame_deadline() -> None:
    """request.timeout.ms=1000: 50 clients each trickle one byte of a request every 0.2 s
    (each byte resets Kafka's idle timer, so only a whole-frame deadline catches them).
    Every one is closed within ~1-2 s of its first byte; the canary keeps working."""
    clients = 50
    config = {"request.timeout.ms": 1000, "connections.max.idle.ms": 60_000}
    with broker_with(config) as broker, canary_on(broker) as canary:
        frame = encode_request(3, METADATA_V, 1, metadata_body()) + b"\x00" * 100
        frame = struct.pack(">i", len(frame) - 4) + frame[4:]
        socks = [socket.create_connection((HOST, broker.port), timeout=5) for _ in range(clients)]
        sent = [0] * clients
        first_byte = [0.0] * clients
        closed_after: dict[int, float] = {}
        deadline = time.monotonic() + 6.0
        try:
            while len(closed_after) < clients and time.monotonic() < deadline:
                for i, sock in enumerate(socks):
                    if i in closed_after:
                        continue
                    if sent[i] and is_closed(sock):
                        closed_after[i] = time.monotonic() - first_byte[i]
                        continue
                    try:
                        sock.send(frame[sent[i] : sent[i] + 1])
                    except OSError:
                        closed_after[i] = time.monotonic() - first_byte[i]
                        continue
                    if not sent[i]:
                        first_byte[i] = time.monotonic()
                    sent[i] += 1
                time.sleep(0.2)
        finally:
            for sock in socks:
                sock.close()
        summary = canary.check()
    assert len(closed_after) == clients, f"{clients - len(closed_after)} slow clients still open"
    assert max(sent) < len(frame), "a slow frame completed"
    worst = max(closed_after.values())
    assert min(closed_after.values()) >= 0.9 and worst <= 2.5, sorted(closed_after.values())
    print(
        f"\nslowloris: {clients} closed {worst * 1000:.0f} ms after first byte at most; {summary}"
    )


def test_queued_request_memory_never_deadlocks_and_is_returned() -> None:
    """queued.max.request.bytes=1 MiB and eight clients each sending a 900 KiB Produce at
    the same moment, three rounds: every request is answered (frames that started are read
    to the end, so paused connections cannot wait on each other forever), and the
    broker's request memory returns to 0."""
    clients, rounds, value = 8, 3, os.urandom(900 * 1024)
    config = {"queued.max.request.bytes": 1 << 20, "request.timeout.ms": 30_000}
    with broker_with(config) as broker, canary_on(broker) as canary:
        with WireClient(broker.port) as admin:
            ensure_topic(admin, "big")
        body = produce_body("big", value)
        conns = [WireClient(broker.port, timeout=20) for _ in range(clients)]
        answered: list[float] = []
        errors: list[str] = []
        try:
            for _ in range(rounds):
                barrier = threading.Barrier(clients)

                def send_one(client: WireClient, barrier: threading.Barrier) -> None:
                    try:
                        barrier.wait(timeout=5)
                        started = time.monotonic()
                        if produce_ok(client.call(0, PRODUCE_V, body)):
                            answered.append(time.monotonic() - started)
                        else:
                            errors.append("produce error")
                    except Exception as exc:
                        errors.append(repr(exc))

                threads = [threading.Thread(target=send_one, args=(c, barrier)) for c in conns]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=25)
                assert not any(t.is_alive() for t in threads), "a produce never got an answer"
        finally:
            for client in conns:
                client.close()
        assert not errors, errors[:3]
        assert len(answered) == clients * rounds
        memory = served(broker).request_memory
        assert wait_for(lambda: memory.used == 0, 3.0), f"{memory.used} bytes still held"
        summary = canary.check()
    print(
        f"\nqueued.max.request.bytes 1 MiB: {len(answered)} x 900 KiB produce answered, "
        f"slowest {max(answered) * 1000:.0f} ms, memory back to 0; {summary}"
    )


def test_in_flight_limit_is_enforced_and_order_kept() -> None:
    """max.in.flight.requests.per.connection=2: ten pipelined Fetches that each wait
    200 ms, each followed by a Metadata, are taken two requests at a time (a Fetch and the
    Metadata answered behind it), so the batch takes about 10 x 200 ms rather than the
    200 ms of running every Fetch at once, and everything is answered in request order."""
    with (
        broker_with({"max.in.flight.requests.per.connection": 2}) as broker,
        WireClient(broker.port) as client,
    ):
        ensure_topic(client, "inflight")
        kinds = [(1, FETCH_V), (3, METADATA_V)] * 10
        bodies = {1: fetch_body("inflight", 200, 10 << 20), 3: metadata_body()}
        wire = b"".join(
            encode_request(key, version, 500 + i, bodies[key])
            for i, (key, version) in enumerate(kinds)
        )
        started = time.monotonic()
        client.sock.sendall(wire)
        received = [client.receive(key, version)[0] for key, version in kinds]
        elapsed = time.monotonic() - started
        client.call(3, METADATA_V, metadata_body())  # the connection is still usable
    assert received == [500 + i for i in range(len(kinds))]
    # All ten Fetches at once would take ~0.2 s; two requests at a time take ten rounds.
    assert elapsed >= 1.5, f"in-flight limit not enforced: {elapsed:.2f}s"
    assert elapsed < 6.0, f"pipeline took {elapsed:.2f}s"
    print(f"\nin-flight 2: 20 pipelined requests in order in {elapsed * 1000:.0f} ms")


def test_requests_behind_full_in_flight_slots_count_queue_time() -> None:
    """max.in.flight.requests.per.connection=2 and five pipelined pairs of a Fetch that
    waits 200 ms and a Metadata: every pair after the first waits about 200 ms for slots,
    which RequestQueueTimeMs records (and the total time includes) while the local time
    of the Metadata requests stays that of their own work."""
    with (
        broker_with({"max.in.flight.requests.per.connection": 2}) as broker,
        WireClient(broker.port) as client,
    ):
        ensure_topic(client, "queued")
        stats = served(broker).request_stats
        before = stats.apis[3].request_queue.count if 3 in stats.apis else 0
        kinds = [(1, FETCH_V), (3, METADATA_V)] * 5
        bodies = {1: fetch_body("queued", 200, 10 << 20), 3: metadata_body()}
        client.sock.sendall(
            b"".join(
                encode_request(key, version, 700 + i, bodies[key])
                for i, (key, version) in enumerate(kinds)
            )
        )
        for key, version in kinds:
            client.receive(key, version)
        metadata = stats.apis[3].phases()
        fetch_queue = stats.apis[1].request_queue
    assert fetch_queue.count == 4, "the four Fetches behind the first waited for slots"
    assert fetch_queue.sum_ns >= 4 * 150e6, fetch_queue.sum_ns
    assert stats.apis[3].request_queue.count - before == 4
    queue_counts, queue_ns = metadata["requestqueuetimems"]
    total_counts, total_ns = metadata["totaltimems"]
    _local_counts, local_ns = metadata["localtimems"]
    assert sum(queue_counts) == sum(total_counts)  # the others as zeros
    assert total_ns >= queue_ns + local_ns
    assert local_ns < queue_ns / 4, "queue time leaked into the local time"


def test_bare_size_prefixes_hold_one_window_not_their_frames() -> None:
    """queued.max.request.bytes=1 MiB and two clients that send only a size prefix
    claiming 900 KiB and then nothing: they hold one 64 KiB window each, not 1.8 MiB for
    the 30 s frame deadline, so a third client's 600 KiB produce is answered at once."""
    config = {"queued.max.request.bytes": 1 << 20, "request.timeout.ms": 30_000}
    with broker_with(config) as broker:
        with WireClient(broker.port) as admin:
            ensure_topic(admin, "big")
        hangers = [socket.create_connection((HOST, broker.port), timeout=5) for _ in range(2)]
        try:
            for sock in hangers:
                sock.sendall(struct.pack(">i", 900 * 1024))
            memory = served(broker).request_memory
            assert wait_for(lambda: memory.committed >= 2 * 64 * 1024, 5.0)
            assert memory.committed <= 2 * 64 * 1024, memory.committed
            with WireClient(broker.port, timeout=10) as client:
                started = time.monotonic()
                response = client.call(0, PRODUCE_V, produce_body("big", os.urandom(600 << 10)))
                took = time.monotonic() - started
            assert produce_ok(response)
            assert took < 5.0, f"produce waited {took:.1f}s behind bare prefixes"
        finally:
            for sock in hangers:
                sock.close()
        assert wait_for(lambda: memory.used == 0, 5.0), f"{memory.used} bytes still held"


def connection_of(broker: Broker, port: int) -> Any:
    """The broker's Connection for the client socket bound to local `port`, or None."""
    for connection in list(served(broker).connections):
        if connection.peer.endswith(f":{port}"):
            return connection
    return None


def test_responses_a_client_does_not_read_count_and_stop_its_requests() -> None:
    """A client pipelines 40 Fetches of ~1 MiB answers and reads nothing (a small receive
    buffer): once the socket and the write buffer are full, the answers waiting in the
    write buffer count as request memory and the broker stops reading and answering that
    client (requests stay unanswered, memory stays bounded); once the client reads, all
    40 arrive in order and the memory returns to 0."""
    config = {"queued.max.request.bytes": 256 << 20, "max.in.flight.requests.per.connection": 4}
    requests, value = 40, os.urandom(256 << 10)
    with broker_with(config) as broker:
        with WireClient(broker.port) as admin:
            ensure_topic(admin, "data")
            for _ in range(4):
                assert produce_ok(admin.call(0, PRODUCE_V, produce_body("data", value)))
        client = WireClient.__new__(WireClient)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(20)
        sock.connect((HOST, broker.port))
        client.sock, client._correlation = sock, 0
        try:
            body = fetch_body("data", 0, 1)
            frames = b"".join(encode_request(1, FETCH_V, i + 1, body) for i in range(requests))
            sock.sendall(frames)
            memory = served(broker).request_memory
            assert wait_for(lambda: connection_of(broker, sock.getsockname()[1]), 5.0)
            connection = connection_of(broker, sock.getsockname()[1])
            assert wait_for(lambda: "write" in connection._paused_reasons, 10.0)
            time.sleep(0.5)  # would the broker go on answering? It must not.
            unsent, held = connection._unsent_bytes, memory.used
            assert unsent > 0 and memory.committed >= unsent, (unsent, memory.committed)
            assert held < 12 << 20, f"{held} bytes held for a client that reads nothing"
            assert connection._held or connection._decoder.pending, "all requests taken"
            for i in range(requests):
                correlation_id, response = client.receive(1, FETCH_V)
                assert correlation_id == i + 1
                assert response.error_code == ErrorCode.none
        finally:
            sock.close()
        assert wait_for(lambda: memory.used == 0, 5.0), f"{memory.used} bytes still held"
    print(f"\nunread fetch answers: {unsent} bytes in the write buffer counted, {held} held")
