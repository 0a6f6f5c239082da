"""TLS listeners: SSL and SASL_SSL next to PLAINTEXT on one broker, with real clients;
client certificates (mTLS) give the principal through ssl.principal.mapping.rules;
certificates from another CA, expired ones, plaintext, garbage and stalled handshakes are
closed and logged while everyone else is served; a changed keystore is used by new
connections without a restart."""

from __future__ import annotations

import logging
import os
import socket
import ssl
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from odradek.config import ConfigError, build_config
from odradek.security.principal_mapping import PrincipalMapper
from odradek.security.transport import build_listeners
from odradek.testing import Broker
from odradek.testing.tls import TestCA

USERS = {"alice": "alice-secret"}
TIMEOUT_MS = 3000


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[Broker]:
    config = {"request.timeout.ms": TIMEOUT_MS, "connection.failed.authentication.delay.ms": 0}
    with Broker(tls=True, sasl_users=USERS, config=config) as broker:
        yield broker


def _port(broker: Broker, listener: str) -> int:
    return int(broker.listener_address(listener).rpartition(":")[2])


def _principals(broker: Broker) -> set[tuple[str, str]]:
    assert broker.broker is not None
    return {(c.principal, c.listener) for c in list(broker.broker.connections)}


def _round_trip(
    broker: Broker, conf: dict[str, Any], principal: tuple[str, str] | None = None
) -> None:
    """Produces and consumes one record; `principal` (name, listener) must be among the
    broker's connections while the consumer is open."""
    topic = f"tls-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, partitions=1)
    producer = Producer(conf)
    producer.produce(topic, value=b"secret")
    assert producer.flush(20) == 0
    consumer = Consumer({**conf, "group.id": "g", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 20
        message = None
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
        assert message is not None and message.error() is None
        assert message.value() == b"secret"
        if principal is not None:
            assert principal in _principals(broker)
    finally:
        consumer.close()


def _refused(conf: dict[str, Any]) -> None:
    admin = AdminClient({**conf, "reconnect.backoff.ms": 1000})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=3)


def test_ssl_round_trip_without_client_certificate(tls_broker: Broker) -> None:
    """confluent-kafka over TLS, no client certificate: served as User:ANONYMOUS."""
    _round_trip(tls_broker, tls_broker.client_config("SSL"), ("User:ANONYMOUS", "SSL"))


def test_mtls_principal_is_the_certificate_subject(tls_broker: Broker) -> None:
    """With a client certificate the principal is its subject in RFC 2253 form (rules
    DEFAULT), as Kafka's."""
    assert tls_broker.ca is not None
    carol = tls_broker.ca.issue("carol")
    conf = tls_broker.client_config("SSL", certificate=carol)
    _round_trip(tls_broker, conf, ("User:CN=carol,O=odradek tests", "SSL"))


def test_sasl_ssl_plain_round_trip(tls_broker: Broker) -> None:
    """SASL/PLAIN over TLS: the principal is the SASL user."""
    conf = tls_broker.client_config("SASL_SSL", "alice")
    _round_trip(tls_broker, conf, ("User:alice", "SASL_SSL"))


def test_kafka_python_with_client_certificate(tls_broker: Broker) -> None:
    """kafka-python over TLS with a client certificate produces."""
    from kafka import KafkaProducer

    assert tls_broker.ca is not None
    dave = tls_broker.ca.issue("dave")
    topic = f"tls-kp-{uuid.uuid4().hex[:8]}"
    tls_broker.create_topic(topic, partitions=1)
    producer = KafkaProducer(
        bootstrap_servers=tls_broker.listener_address("SSL"),
        security_protocol="SSL",
        ssl_cafile=tls_broker.ca.certificate,
        ssl_certfile=dave.certificate,
        ssl_keyfile=dave.key,
        ssl_check_hostname=True,
    )
    try:
        producer.send(topic, b"kp").get(timeout=20)
        assert ("User:CN=dave,O=odradek tests", "SSL") in _principals(tls_broker)
    finally:
        producer.close()


def test_certificate_from_another_ca_is_refused_and_logged(
    tls_broker: Broker, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A client certificate signed by a CA the broker does not trust ends the handshake
    (logged with the reason); nothing is served to it."""
    stranger = TestCA(tmp_path, name="another CA").issue("eve")
    with caplog.at_level(logging.WARNING, logger="odradek.connection"):
        _refused(tls_broker.client_config("SSL", certificate=stranger))
    assert any("TLS handshake" in r.getMessage() for r in caplog.records)
    assert not any(p.startswith("User:CN=eve") for p, _ in _principals(tls_broker))


def test_expired_client_certificate_is_refused(tls_broker: Broker) -> None:
    """An expired client certificate fails verification: no connection."""
    assert tls_broker.ca is not None
    old = tls_broker.ca.issue("old", expired=True)
    _refused(tls_broker.client_config("SSL", certificate=old))


def test_sasl_ssl_wrong_password_is_refused(tls_broker: Broker) -> None:
    """A wrong PLAIN password over TLS is refused as on SASL_PLAINTEXT."""
    conf = {**tls_broker.client_config("SASL_SSL", "alice"), "sasl.password": "nope"}
    _refused(conf)


def _closed_soon(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


@pytest.mark.parametrize(
    "payload",
    [
        struct.pack(">ihhih", 10, 18, 0, 1, -1),  # a plaintext ApiVersions request
        b"\x16\x03\x01\x00\x05garbage-garbage" * 4,  # a TLS record header, then junk
    ],
)
def test_plaintext_or_garbage_to_tls_port_is_closed(tls_broker: Broker, payload: bytes) -> None:
    """Plaintext Kafka or garbage on the TLS port: closed; the plain listener still
    answers."""
    with socket.create_connection(("127.0.0.1", _port(tls_broker, "SSL")), timeout=5) as sock:
        sock.sendall(payload)
        assert _closed_soon(sock, 10)
    _round_trip(tls_broker, tls_broker.client_config("PLAINTEXT"))


def test_stalled_handshake_is_closed(tls_broker: Broker) -> None:
    """A client that connects and never speaks TLS is closed after request.timeout.ms."""
    with socket.create_connection(("127.0.0.1", _port(tls_broker, "SSL")), timeout=5) as sock:
        started = time.monotonic()
        assert _closed_soon(sock, TIMEOUT_MS / 1000 + 10)
        assert time.monotonic() - started >= TIMEOUT_MS / 1000 * 0.8


def _served_certificate(port: int, ca: str) -> bytes:
    context = ssl.create_default_context(cafile=ca)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_changed_keystore_is_used_without_restart(tls_broker: Broker) -> None:
    """Rewriting the keystore file makes new handshakes present the new certificate."""
    assert tls_broker.ca is not None
    port = _port(tls_broker, "SSL")
    before = _served_certificate(port, tls_broker.ca.certificate)
    tls_broker.ca.issue("broker", server=True)  # same files, a new key and certificate
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _served_certificate(port, tls_broker.ca.certificate) != before:
            return
        time.sleep(0.2)
    raise AssertionError("the broker still presents the old certificate")


def test_principal_mapping_rules() -> None:
    """Kafka's rule syntax: first full match wins, $n groups, /L and /U, DEFAULT."""
    mapper = PrincipalMapper(
        r"RULE:^CN=([^,]+),OU=ops,.*$/$1-ops/U, RULE:^CN=(.*?),O=(.*)$/$1@$2/L, DEFAULT"
    )
    assert mapper.map("CN=Bob,OU=ops,O=acme") == "BOB-OPS"
    assert mapper.map("CN=Alice,O=Acme") == "alice@acme"
    assert mapper.map("OU=x") == "OU=x"
    strict = PrincipalMapper(r"RULE:^CN=(.*)$/$1/")
    with pytest.raises(ValueError):
        strict.map("O=nobody")


def test_jks_keystore_is_refused_with_a_clear_message(tmp_path: Any) -> None:
    """ssl.keystore.type other than PEM stops the broker at start-up, saying why."""
    config = build_config(
        [
            ("listeners", "SSL://127.0.0.1:0"),
            ("ssl.keystore.location", str(tmp_path / "ks.jks")),
        ]
    )
    with pytest.raises(ConfigError, match=r"ssl\.keystore\.type=PEM"):
        build_listeners(config)


def test_a_ca_removed_from_the_truststore_is_no_longer_trusted(tmp_path: Any) -> None:
    """A truststore rewritten without one of its two CAs: after the reload new
    handshakes use a context that trusts only the CA left (a reload that added to the
    old context would keep trusting the removed one)."""
    from odradek.security.tls import TlsListener

    kept, removed = TestCA(tmp_path / "kept"), TestCA(tmp_path / "removed", name="gone CA")
    truststore = tmp_path / "truststore.pem"
    kept_pem = Path(kept.certificate).read_bytes()
    truststore.write_bytes(kept_pem + Path(removed.certificate).read_bytes())
    config = build_config(
        [
            ("listeners", "SSL://127.0.0.1:0"),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", kept.issue("broker", server=True).keystore),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", str(truststore)),
            ("ssl.client.auth", "required"),
        ]
    )
    listener = TlsListener(config, "SSL")

    def trusted() -> set[str]:
        return {str(ca["subject"]) for ca in listener.context.get_ca_certs()}

    assert len(trusted()) == 2
    before = listener.context
    truststore.write_bytes(kept_pem)
    os.utime(truststore, (time.time() + 5, time.time() + 5))  # a visibly newer file
    assert listener.reload_if_changed()
    assert listener.context is not before
    assert len(trusted()) == 1 and "gone CA" not in next(iter(trusted()))


UVLOOP_PROBE = """
import asyncio, socket, ssl, sys
import uvloop
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
from odradek.testing import Broker
with Broker(tls=True) as broker:
    port = int(broker.listener_address("SSL").rpartition(":")[2])
    context = ssl.create_default_context(cafile=broker.ca.certificate)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            print(tls.version())
"""


def test_tls_handshake_under_uvloop() -> None:
    """The handshake completes on uvloop too, the loop `odradek broker` runs on (its
    start_tls differs from asyncio's)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", UVLOOP_PROBE], capture_output=True, timeout=60, env=env, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith("TLSv1.")
