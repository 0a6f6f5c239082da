#!/usr/bin/env python3
"""Security: confluent-kafka produce and consume throughput (1 KiB records) over TLS
(SSL) and SASL_SSL with SCRAM-SHA-512, against PLAINTEXT in the same sitting, rounds
alternating; and the rate of new connections completing a SCRAM-SHA-256 login. Prints a
table; asserts nothing. Target (docs/security.md): TLS and SASL_SSL >= 0.6x plaintext.

    .venv/bin/python benchmarks/security.py [--records 200000] [--rounds 3]
    .venv/bin/python benchmarks/security.py --records 2000 --rounds 1 --connections 20

Run by `make bench`; the broker it starts (one PLAINTEXT, SSL, SASL_PLAINTEXT and
SASL_SSL listener each, a throwaway CA) is stopped by PID, and every wait is bounded.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import socket
import statistics
import struct
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    NewTopic,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_broker import LOOPBACK, BrokerProcess, free_port, read_from_start

from odradek.testing.tls import TestCA

PARTITIONS = 3
VALUE = b"x" * 1024
WAIT_S = 120.0
USER, PASSWORD = "bench", "bench-secret"


def create_topic(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(WAIT_S)


def create_user(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    changes = [
        UserScramCredentialUpsertion(USER, ScramCredentialInfo(m, 4096), PASSWORD.encode())
        for m in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)
    ]
    for future in admin.alter_user_scram_credentials(changes).values():
        future.result(WAIT_S)


def produce(config: dict[str, Any], topic: str, records: int) -> float:
    producer = Producer({**config, "linger.ms": 5, "acks": 1})
    started = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, VALUE, partition=i % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.01)
    if producer.flush(WAIT_S) != 0:
        raise RuntimeError("records not delivered")
    return time.perf_counter() - started


def consume(config: dict[str, Any], topic: str, records: int) -> float:
    return read_from_start(config, topic, PARTITIONS, records, WAIT_S)


# -- connection set-up: a minimal SCRAM-SHA-256 client on a plain socket -------------------


def _request(sock: socket.socket, api: int, version: int, correlation: int, body: bytes) -> bytes:
    header = struct.pack(">hhih", api, version, correlation, -1)
    flexible = api == 36 and version >= 2
    frame = header + (b"\0" if flexible else b"") + body
    sock.sendall(struct.pack(">i", len(frame)) + frame)
    size = struct.unpack(">i", _read(sock, 4))[0]
    return _read(sock, size)


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed by the broker")
        data += chunk
    return data


def _string(text: str) -> bytes:
    return struct.pack(">h", len(text)) + text.encode()


def _token(sock: socket.socket, correlation: int, token: bytes) -> bytes:
    """SaslAuthenticate v1 (non-flexible): the server's token; raises on an error."""
    answer = _request(sock, 36, 1, correlation, struct.pack(">i", len(token)) + token)
    error = struct.unpack_from(">h", answer, 4)[0]
    if error:
        raise RuntimeError(f"SaslAuthenticate error {error}")
    message_length = struct.unpack_from(">h", answer, 6)[0]
    at = 8 + max(message_length, 0)
    length = struct.unpack_from(">i", answer, at)[0]
    return answer[at + 4 : at + 4 + length]


def scram_login(port: int) -> None:
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        _request(sock, 17, 1, 1, _string("SCRAM-SHA-256"))
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = f"n={USER},r={nonce}"
        server_first = _token(sock, 2, f"n,,{first_bare}".encode()).decode()
        fields = dict(part.split("=", 1) for part in server_first.split(","))
        salted = hashlib.pbkdf2_hmac(
            "sha256", PASSWORD.encode(), base64.b64decode(fields["s"]), int(fields["i"])
        )
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        without_proof = f"c=biws,r={fields['r']}"
        auth = f"{first_bare},{server_first},{without_proof}".encode()
        signature = hmac.new(hashlib.sha256(client_key).digest(), auth, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        final = f"{without_proof},p={base64.b64encode(proof).decode()}"
        _token(sock, 3, final.encode())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="odradek-security-bench-"))
    ca = TestCA(work / "tls")
    keystore = ca.issue("broker", server=True).keystore
    ports = {name: free_port() for name in ("SSL", "SASL_PLAINTEXT", "SASL_SSL")}
    broker = BrokerProcess(work / "data", work / "broker.log")
    listeners = [f"PLAINTEXT://{LOOPBACK}:{broker.port}"]
    listeners += [f"{name}://{LOOPBACK}:{port}" for name, port in ports.items()]
    broker.settings = [
        f"listeners={','.join(listeners)}",
        "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={keystore}",
    ]
    tls = {"ssl.ca.location": ca.certificate}
    login = {"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": USER, "sasl.password": PASSWORD}
    modes: dict[str, dict[str, Any]] = {
        "PLAINTEXT": {"bootstrap.servers": broker.bootstrap},
        "SSL": {
            "bootstrap.servers": f"{LOOPBACK}:{ports['SSL']}",
            "security.protocol": "SSL",
            **tls,
        },
        "SASL_SSL SCRAM-SHA-512": {
            "bootstrap.servers": f"{LOOPBACK}:{ports['SASL_SSL']}",
            "security.protocol": "SASL_SSL",
            **tls,
            **login,
        },
    }
    produced: dict[str, list[float]] = {mode: [] for mode in modes}
    consumed: dict[str, list[float]] = {mode: [] for mode in modes}
    broker.start()
    try:
        create_user(broker.bootstrap)
        for _ in range(args.rounds):  # alternate, so every mode sees the same machine
            for mode, config in modes.items():
                topic = f"bench-{uuid.uuid4().hex[:8]}"
                create_topic(broker.bootstrap, topic)
                produced[mode].append(produce(config, topic, args.records))
                consumed[mode].append(consume(config, topic, args.records))
        started = time.perf_counter()
        for _ in range(args.connections):
            scram_login(ports["SASL_PLAINTEXT"])
        setup_s = time.perf_counter() - started
    finally:
        broker.stop()

    mib = args.records * len(VALUE) / 2**20

    def rate(seconds: list[float]) -> float:
        return mib / statistics.median(seconds)

    print(f"\nsecurity: {args.records} x 1 KiB, {PARTITIONS} partitions, {args.rounds} rounds")
    base_p, base_c = rate(produced["PLAINTEXT"]), rate(consumed["PLAINTEXT"])
    for mode in modes:
        p, c = rate(produced[mode]), rate(consumed[mode])
        print(
            f"  {mode:24s} produce {p:7.1f} MiB/s ({p / base_p:.2f}x)   "
            f"consume {c:7.1f} MiB/s ({c / base_c:.2f}x)   (>= 0.6x)"
        )
    print(
        f"  SCRAM-SHA-256 logins    {args.connections / setup_s:7.1f} connections/s "
        f"(connect, handshake, 2 round trips; one client)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
