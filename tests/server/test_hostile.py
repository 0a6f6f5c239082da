"""Hostile clients on real sockets: canned malicious frames (bad sizes, lying counts and
lengths, over-long varints, huge tagged fields, unknown APIs and versions, truncation,
garbage for every API, random bytes) and malicious record batches (bad CRC, gzip bombs,
absurd record counts). Each case ends in an error response or a closed connection within
its bound; the broker stays up, the process RSS (the broker runs in-process) grows less
than 50 MiB, and a confluent-kafka producer (acks=all) running throughout never fails."""

from __future__ import annotations

import datetime
import os
import random
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import crc32c
import pytest
from confluent_kafka import Producer
from kio.schema.errors import ErrorCode

from odradek.handlers.registry import HANDLERS
from odradek.protocol.batch import CRC_START, HEADER, HEADER_SIZE, LOG_OVERHEAD
from odradek.protocol.codec import request_class
from odradek.protocol.records import GZIP, SimpleRecord, build_batch
from odradek.testing import Broker
from tests.handlers.kafka_wire import ensure_topic, fetch_request, produce_batch
from tests.server.wire import WireClient, build, encode_request, request_module

HOST = "127.0.0.1"
REQUEST_TIMEOUT_MS = 1000
MAX_FRAME = 100 * 1024 * 1024  # socket.request.max.bytes (the default)
CLOSE_BOUND_S = 1.0  # a frame the broker can judge on arrival
DEADLINE_BOUND_S = REQUEST_TIMEOUT_MS / 1000 + 1.5  # frame deadline + sweep period + slack
RSS_BOUND = 50 * 1024 * 1024
TIMEOUT = datetime.timedelta(seconds=5)
PRODUCE_V, FETCH_V, METADATA_V = 9, 12, 12


# -- byte builders ------------------------------------------------------------------------


def uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def sized(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def header_v1(api_key: int, version: int, client_id: bytes | None = b"evil") -> bytes:
    if client_id is None:
        return struct.pack(">hhih", api_key, version, 1, -1)
    return struct.pack(">hhih", api_key, version, 1, len(client_id)) + client_id


def header_v2(api_key: int, version: int, tags: bytes = b"\x00") -> bytes:
    return header_v1(api_key, version) + tags


def metadata_v12(body: bytes) -> bytes:
    return sized(header_v2(3, 12) + body)


def raw_batch(payload: bytes, *, records: int, last_delta: int, attributes: int = 0) -> bytes:
    """A v2 batch around `payload` with whatever counts we claim, and a correct CRC."""
    fields = (0, HEADER_SIZE - LOG_OVERHEAD + len(payload), -1, 2, 0)
    tail = (attributes, last_delta, 1_700_000_000_000, 1_700_000_000_000)
    out = bytearray(HEADER.pack(*fields, *tail, -1, -1, -1, records)) + payload
    struct.pack_into(">I", out, 17, crc32c.crc32c(memoryview(out)[CRC_START:]))
    return bytes(out)


def gzip_zeros(total: int, chunk: int = 1 << 20) -> bytes:
    """A valid gzip stream of `total` zero bytes built in a fraction of a second: after a
    full flush the compressor's output for the next identical chunk is identical, so one
    compressed chunk is repeated and the trailer (CRC-32, size) written by hand."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(chunk)
    first = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    repeat = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    final_block = comp.flush()[:-8]
    crc = 0
    for _ in range(total // chunk):
        crc = zlib.crc32(zeros, crc)
    trailer = struct.pack("<II", crc, total & 0xFFFFFFFF)
    return first + repeat * (total // chunk - 1) + final_block + trailer


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- the canary ---------------------------------------------------------------------------


class ProducerCanary:
    """A librdkafka producer with acks=all producing one record at a time in a thread,
    recording each delivery latency and any error."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.producer: Any = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": False,
                "linger.ms": 0,
                "message.timeout.ms": 10_000,
                "socket.timeout.ms": 10_000,
            }
        )
        self.topic = topic
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            done: list[Any] = []
            started = time.monotonic()
            self.producer.produce(self.topic, b"canary", on_delivery=_recorder(done))
            if self.producer.flush(10) != 0 or not done:
                self.errors.append("not delivered within 10 s")
            elif done[0] is not None:
                self.errors.append(str(done[0]))
            else:
                self.latencies.append(time.monotonic() - started)
            self._stop.wait(0.02)

    def __enter__(self) -> ProducerCanary:
        self._thread.start()
        deadline = time.monotonic() + 15
        while len(self.latencies) < 5 and not self.errors and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.latencies) >= 5, f"canary not producing: {self.errors[:3]}"
        self.warm = len(self.latencies)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        # Destroy the client now, or it keeps reconnecting after the broker has stopped.
        self.producer = None

    def check(self) -> str:
        """Fails on any canary error; waits (bounded) for three more deliveries after the
        attack, so a canary stalled by it cannot pass for one that merely ran briefly."""
        target = len(self.latencies) + 3
        deadline = time.monotonic() + 10
        while len(self.latencies) < target and not self.errors and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not self.errors, f"canary failed: {self.errors[:3]}"
        assert len(self.latencies) >= target, "canary made no progress after the attack"
        during = sorted(self.latencies[self.warm :])
        p50, worst = during[len(during) // 2], during[-1]
        assert worst < 5.0, f"a canary delivery took {worst:.2f}s"
        return (
            f"canary {len(during)} acks=all deliveries "
            f"p50 {p50 * 1000:.1f} ms max {worst * 1000:.1f} ms"
        )


def _recorder(into: list[Any]) -> Any:
    return lambda err, msg: into.append(err)


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    config = {
        "num.partitions": 1,
        "request.timeout.ms": REQUEST_TIMEOUT_MS,
        "connections.max.idle.ms": 60_000,
        "message.max.bytes": 2_000_000,  # room for the 1 MiB gzip bomb of 1 GiB
    }
    with Broker(config=config) as running:
        yield running


@pytest.fixture(scope="module")
def bombs() -> tuple[bytes, bytes]:
    """Built before the canary starts, so their CPU time does not show in its latency."""
    return gzip_zeros(1 << 20), gzip_zeros(1 << 30)


@pytest.fixture
def canary(broker: Broker) -> Iterator[ProducerCanary]:
    with ProducerCanary(broker.bootstrap_servers, "canary") as running:
        yield running


# -- running a case -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    bound: float = CLOSE_BOUND_S
    response_ok: bool = False  # an error response is as good as a close


def outcome(sock: socket.socket, bound: float) -> tuple[str, float]:
    """("closed" | "response" | "silent", seconds) for what the broker did next."""
    started = time.monotonic()
    sock.settimeout(bound + 1.0)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        return "silent", time.monotonic() - started
    except OSError:
        return "closed", time.monotonic() - started
    return ("response" if data else "closed"), time.monotonic() - started


def run_case(port: int, case: Case) -> tuple[str, float]:
    with socket.create_connection((HOST, port), timeout=5) as sock:
        try:
            sock.sendall(case.data)
        except OSError:
            return "closed", 0.0  # refused while we were still sending
        return outcome(sock, case.bound)


def assert_broker_serves(port: int) -> None:
    with WireClient(port, timeout=5) as client:
        m = request_module(3, METADATA_V)
        client.call(
            3,
            METADATA_V,
            build(
                m.MetadataRequest,
                topics=None,
                allow_auto_topic_creation=False,
                include_topic_authorized_operations=False,
            ),
        )


def canned_cases() -> list[Case]:
    valid = encode_request(3, 4, 9, _metadata_v4())
    huge = 2**31 - 1
    return [
        Case("size -1", struct.pack(">i", -1)),
        Case("size 2^31-1", struct.pack(">i", huge) + b"\x00" * 64),
        Case("size one over the limit", struct.pack(">i", MAX_FRAME + 1) + b"\x00" * 4096),
        Case("size 0", struct.pack(">i", 0)),
        Case("size smaller than a header", sized(b"\x00\x03")),
        Case("size prefix then silence", struct.pack(">i", 200), DEADLINE_BOUND_S),
        Case("header then silence", struct.pack(">i", 200) + header_v1(3, 4), DEADLINE_BOUND_S),
        Case("truncated frame then silence", valid[:-3], DEADLINE_BOUND_S),
        Case("truncated body", sized(valid[4:-3])),
        Case(
            "array count 2^31-1 in a 20-byte frame",
            sized(header_v1(3, 4, None) + struct.pack(">ib", huge, 0) + b"\x00" * 5),
        ),
        Case(
            "compact count 2^31 in a flexible frame", metadata_v12(uvarint(2**31) + b"\x00\x00\x00")
        ),
        Case("6-byte varint", metadata_v12(b"\xff\xff\xff\xff\xff\x01" + b"\x00\x00\x00")),
        Case("header client_id length -2", sized(struct.pack(">hhih", 3, 4, 1, -2) + b"\x00" * 8)),
        Case(
            "topic name length -2",
            sized(header_v1(19, 4) + struct.pack(">ih", 1, -2) + b"\x00" * 16),
        ),
        Case(
            "compact string length 1 GiB",
            metadata_v12(b"\x02" + b"\x00" * 16 + uvarint(1 << 30) + b"ab"),
        ),
        Case(
            "records length -2",
            sized(header_v1(0, 3) + _produce_v3_prefix() + struct.pack(">i", -2)),
        ),
        Case(
            "records length 2^31-1",
            sized(header_v1(0, 3) + _produce_v3_prefix() + struct.pack(">i", huge) + b"\x00" * 8),
        ),
        Case(
            "body tagged field of 1 GiB",
            metadata_v12(b"\x01\x00\x00" + b"\x01" + uvarint(7) + uvarint(1 << 30) + b"x"),
        ),
        Case(
            "header tagged field of 1 GiB",
            sized(header_v2(3, 12, b"\x01\x00" + uvarint(1 << 30)) + b"\x01\x00\x00\x00"),
        ),
        Case("tagged field count 2^31", metadata_v12(b"\x01\x00\x00" + uvarint(2**31))),
        Case("unknown API key 999", sized(header_v1(999, 0) + b"\x00" * 8)),
        Case("API key -1", sized(header_v1(-1, 0) + b"\x00" * 8)),
        Case("Metadata version 32767", sized(header_v1(3, 32767) + b"\x00" * 8)),
        Case("Fetch version -1", sized(header_v1(1, -1) + b"\x00" * 8)),
        Case("ApiVersions version 32767", sized(header_v1(18, 32767) + b"\x00"), response_ok=True),
        # Ignored as Kafka ignores it (protocol/codec.py): answered, or closed.
        Case("trailing garbage", sized(valid[4:] + b"\xde\xad"), response_ok=True),
        Case(
            "Fetch topic count 2^31-1",
            sized(header_v1(1, 4) + struct.pack(">iiiibi", -1, 0, 0, 1, 0, huge)),
        ),
        Case("second frame bad after a good one", valid + struct.pack(">i", -5), response_ok=True),
    ]


def _metadata_v4() -> Any:
    m = request_module(3, 4)
    return build(m.MetadataRequest, topics=None, allow_auto_topic_creation=False)


def _produce_v3_prefix() -> bytes:
    """Produce v3 up to the records length: no transactional id, acks 1, one topic "t"
    with one partition."""
    return (
        struct.pack(">hhii", -1, 1, 1000, 1)
        + struct.pack(">h", 1)
        + b"t"
        + struct.pack(">ii", 1, 0)
    )


def garbage_cases(rng: random.Random) -> list[Case]:
    """Garbage bodies behind a valid header, for the oldest and newest version of every API
    the broker serves; and plain random bytes."""
    cases = []
    for spec in sorted(HANDLERS.values(), key=lambda s: s.api_key):
        for version in sorted({spec.min_version, spec.max_version}):
            cls = request_class(spec.api_key, version)
            assert cls is not None
            header = (
                header_v2(spec.api_key, version)
                if cls.__flexible__
                else header_v1(spec.api_key, version)
            )
            for label, body in (
                ("random", rng.randbytes(48)),
                ("all 0xff", b"\xff" * 48),
                ("all 0x7f", b"\x7f" * 48),
            ):
                cases.append(
                    Case(
                        f"API {spec.api_key} v{version} {label}",
                        sized(header + body),
                        response_ok=True,
                    )
                )
    for i in range(12):
        cases.append(
            Case(f"random bytes #{i}", rng.randbytes(rng.randint(1, 2048)), DEADLINE_BOUND_S)
        )
    return cases


# -- tests --------------------------------------------------------------------------------


def test_hostile_frames_end_in_close_or_error(broker: Broker, canary: ProducerCanary) -> None:
    """Every canned hostile frame, garbage body and random byte string ends in a close (or,
    where that is the protocol's answer, an error response) within its bound; the broker
    keeps serving after each; RSS grows < 50 MiB; the canary producer never fails."""
    rng = random.Random(1234)
    cases = canned_cases() + garbage_cases(rng)
    rss_before = rss_bytes()
    results: list[tuple[Case, str, float]] = []
    # Cases the broker judges on arrival run one after the other; those that wait for the
    # frame deadline run side by side, so the suite stays short.
    quick = [c for c in cases if c.bound == CLOSE_BOUND_S]
    slow = [c for c in cases if c.bound != CLOSE_BOUND_S]
    for case in quick:
        results.append((case, *run_case(broker.port, case)))
    threads_out: list[tuple[Case, str, float]] = []
    threads = [
        threading.Thread(target=lambda c=c: threads_out.append((c, *run_case(broker.port, c))))
        for c in slow
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_BOUND_S + 5)
    results += threads_out
    assert len(results) == len(cases), "a case never finished"
    assert_broker_serves(broker.port)
    failures = []
    for case, what, seconds in results:
        allowed = {"closed", "response"} if case.response_ok else {"closed"}
        if what not in allowed or seconds > case.bound:
            failures.append(f"{case.name}: {what} after {seconds:.2f}s (bound {case.bound}s)")
    assert not failures, "\n".join(failures)
    grown = rss_bytes() - rss_before
    assert grown < RSS_BOUND, f"RSS grew {grown / 2**20:.1f} MiB"
    summary = canary.check()
    closed = sum(1 for _, what, _ in results if what == "closed")
    answered = [case.name for case, what, _ in results if what == "response"]
    worst_quick = max(s for c, _, s in results if c.bound == CLOSE_BOUND_S)
    worst_slow = max((s for c, _, s in results if c.bound != CLOSE_BOUND_S), default=0.0)
    print(
        f"\nhostile frames: {len(results)} cases, {closed} closed, "
        f"{len(results) - closed} answered ({', '.join(answered)}); "
        f"slowest on-arrival case {worst_quick * 1000:.0f} ms, "
        f"slowest deadline case {worst_slow * 1000:.0f} ms; RSS +{grown / 2**20:.1f} MiB; {summary}"
    )


def _produce(client: WireClient, topic: str, batch: bytes) -> Any:
    return produce_batch(client, topic, batch, version=PRODUCE_V)


def _fetch(client: WireClient, topic: str, offset: int) -> Any:
    body = fetch_request(
        [(topic, 0, offset)], max_bytes=4 << 20, partition_max_bytes=4 << 20, version=FETCH_V
    )
    return client.call(1, FETCH_V, body).responses[0].partitions[0]


def test_hostile_batches_are_refused_or_stored_as_is(
    broker: Broker, bombs: tuple[bytes, bytes], canary: ProducerCanary
) -> None:
    """Record batches that lie: a bad CRC gets CORRUPT_MESSAGE and the connection stays
    usable; absurd record counts get CORRUPT_MESSAGE / INVALID_RECORD; gzip bombs (1 KiB of
    gzip that inflates to 1 MiB, 1 MiB that inflates to 1 GiB) are stored byte for byte
    without being decompressed (RSS stays flat), and a compressed batch claiming 2^31-1
    records cannot break the partition for the producers after it."""
    timings: list[str] = []
    rss_before = rss_bytes()
    good = build_batch([SimpleRecord(b"v", key=b"k", timestamp=1_700_000_000_000)])
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF
    small_bomb, big_bomb = bombs
    assert len(small_bomb) <= 1100 and len(big_bomb) <= 1_100_000
    with WireClient(broker.port, timeout=10) as client:
        ensure_topic(client, "hostile-batches")
        expect = [
            ("bad CRC", bytes(bad_crc), ErrorCode.corrupt_message),
            (
                "2^31-1 records in 64 bytes",
                raw_batch(b"\x00" * 64, records=2**31 - 1, last_delta=2**31 - 2),
                ErrorCode.corrupt_message,
            ),
            (
                "record count -2^31",
                raw_batch(b"\x00" * 64, records=-(2**31), last_delta=2**31 - 1),
                ErrorCode.invalid_record,
            ),
            ("not a batch", b"\x00" * 70, ErrorCode.corrupt_message),
        ]
        for name, batch, code in expect:
            started = time.monotonic()
            response = _produce(client, "hostile-batches", batch)
            timings.append(f"{name} {(time.monotonic() - started) * 1000:.0f} ms")
            assert response.error_code == code, f"{name}: {response.error_code!r}"
        # The connection is still usable after every refusal.
        assert _produce(client, "hostile-batches", good).error_code == ErrorCode.none
        stored = []
        for name, payload in (
            ("1 KiB gzip bomb", small_bomb),
            ("1 MiB gzip bomb of 1 GiB", big_bomb),
        ):
            batch = raw_batch(payload, records=1, last_delta=0, attributes=GZIP)
            started = time.monotonic()
            response = _produce(client, "hostile-batches", batch)
            timings.append(f"{name} {(time.monotonic() - started) * 1000:.0f} ms")
            assert response.error_code == ErrorCode.none, f"{name}: {response.error_code!r}"
            stored.append((response.base_offset, batch))
        for offset, batch in stored:
            fetched = _fetch(client, "hostile-batches", offset)
            assert fetched.error_code == ErrorCode.none
            # Byte for byte what was sent, apart from the base offset (bytes 0-7) and the
            # partition leader epoch (12-15) the broker assigns.
            got = fetched.records[: len(batch)]
            assert got[8:12] + got[16:] == batch[8:12] + batch[16:], "stored batch differs"
        lying = raw_batch(small_bomb, records=2**31 - 1, last_delta=2**31 - 2, attributes=GZIP)
        response = _produce(client, "hostile-batches", lying)
        after = _produce(client, "hostile-batches", good)
        assert after.error_code == ErrorCode.none, f"after a lying batch: {after.error_code!r}"
        if response.error_code == ErrorCode.none:
            assert after.base_offset == response.base_offset + 2**31 - 1
        timings.append(f"gzip batch claiming 2^31-1 records: {response.error_code.name}")
        assert _fetch(client, "hostile-batches", after.base_offset).records
    assert_broker_serves(broker.port)
    grown = rss_bytes() - rss_before
    assert grown < RSS_BOUND, f"RSS grew {grown / 2**20:.1f} MiB"
    summary = canary.check()
    print(f"\nhostile batches: {'; '.join(timings)}; RSS +{grown / 2**20:.1f} MiB; {summary}")
