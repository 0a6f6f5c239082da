"""SASL/PLAIN on a SASL_PLAINTEXT listener next to a PLAINTEXT one: real clients log in,
wrong credentials are refused with SASL_AUTHENTICATION_FAILED and the connection closed,
nothing but ApiVersions/SaslHandshake/SaslAuthenticate is served before authentication,
and each connection carries its principal and listener name."""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kio.schema.errors import ErrorCode

from odradek.testing import Broker
from tests.server.wire import WireClient, build, request_module

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
DELAY_MS = 300


@pytest.fixture(scope="module")
def sasl_broker() -> Iterator[Broker]:
    config = {"connection.failed.authentication.delay.ms": DELAY_MS}
    with Broker(sasl_users=USERS, config=config) as broker:
        yield broker


def _port(broker: Broker, listener: str) -> int:
    return int(broker.listener_address(listener).rpartition(":")[2])


def _handshake(client: WireClient, mechanism: str, version: int = 1) -> Any:
    module = request_module(17, version)
    return client.call(17, version, build(module.SaslHandshakeRequest, mechanism=mechanism))


def _authenticate(client: WireClient, token: bytes, version: int = 2) -> Any:
    module = request_module(36, version)
    return client.call(36, version, build(module.SaslAuthenticateRequest, auth_bytes=token))


def _metadata(client: WireClient) -> Any:
    module = request_module(3, 12)
    return client.call(
        3,
        12,
        build(
            module.MetadataRequest,
            topics=None,
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        ),
    )


def _principals(broker: Broker) -> set[tuple[str, str]]:
    assert broker.broker is not None
    return {(c.principal, c.listener) for c in list(broker.broker.connections)}


def test_confluent_kafka_produces_and_consumes_with_plain(sasl_broker: Broker) -> None:
    """librdkafka logs in with PLAIN, is told the SASL listener's address by Metadata
    (otherwise it would reconnect to the PLAINTEXT port and fail) and round-trips data."""
    topic = f"plain-{uuid.uuid4().hex[:8]}"
    sasl_broker.create_topic(topic, partitions=1)
    conf = sasl_broker.client_config("SASL_PLAINTEXT", "alice")
    producer = Producer(conf)
    producer.produce(topic, key=b"k", value=b"over sasl")
    assert producer.flush(20) == 0
    consumer = Consumer({**conf, "group.id": "g-plain", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 20
        message = None
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
        assert message is not None and message.error() is None
        assert message.value() == b"over sasl"
    finally:
        consumer.close()
    assert ("User:alice", "SASL_PLAINTEXT") in _principals(sasl_broker)


def test_kafka_python_round_trip_with_plain(sasl_broker: Broker) -> None:
    """kafka-python (SaslHandshake v1 + SaslAuthenticate) logs in as bob and produces."""
    from kafka import KafkaConsumer, KafkaProducer

    topic = f"plain-kp-{uuid.uuid4().hex[:8]}"
    sasl_broker.create_topic(topic, partitions=1)
    common: dict[str, Any] = {
        "bootstrap_servers": sasl_broker.listener_address("SASL_PLAINTEXT"),
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "bob",
        "sasl_plain_password": USERS["bob"],
    }
    producer = KafkaProducer(**common)
    producer.send(topic, b"from kafka-python").get(timeout=20)
    producer.close()
    consumer = KafkaConsumer(
        topic, auto_offset_reset="earliest", consumer_timeout_ms=10000, **common
    )
    try:
        first = next(iter(consumer), None)  # the iterator ends after consumer_timeout_ms
        assert first is not None and first.value == b"from kafka-python"
    finally:
        consumer.close()


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("mallory", "x")])
def test_confluent_kafka_bad_credentials_are_refused(
    sasl_broker: Broker, user: str, password: str
) -> None:
    """A wrong password and an unknown user both get the same authentication error, and
    the client is served nothing."""
    errors: list[KafkaError] = []
    conf = {
        **sasl_broker.client_config("SASL_PLAINTEXT"),
        "sasl.mechanism": "PLAIN",
        "sasl.username": user,
        "sasl.password": password,
        "error_cb": errors.append,
        "reconnect.backoff.ms": 1000,
    }
    admin = AdminClient(conf)
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=3)
    admin.poll(1)  # delivers the error callbacks
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    assert any("Invalid username or password" in e.str() for e in errors), errors


def test_wire_wrong_password_answered_after_delay_then_closed(sasl_broker: Broker) -> None:
    """SASL_AUTHENTICATION_FAILED with Kafka's message, sent no sooner than
    connection.failed.authentication.delay.ms, then the connection is closed."""
    with WireClient(_port(sasl_broker, "SASL_PLAINTEXT")) as client:
        assert _handshake(client, "PLAIN").error_code == ErrorCode.none
        started = time.monotonic()
        response = _authenticate(client, b"\0alice\0nope")
        assert time.monotonic() - started >= DELAY_MS / 1000 * 0.9
        assert response.error_code == ErrorCode.sasl_authentication_failed
        assert response.error_message == "Authentication failed: Invalid username or password"
        assert client.closed_by_peer(5)


def test_wire_request_before_authentication_closes(sasl_broker: Broker) -> None:
    """ApiVersions is served before authentication; Metadata closes the connection."""
    with WireClient(_port(sasl_broker, "SASL_PLAINTEXT")) as client:
        module = request_module(18, 3)
        request = build(
            module.ApiVersionsRequest, client_software_name="t", client_software_version="1"
        )
        versions = client.call(18, 3, request)
        assert {17, 36} <= {k.api_key for k in versions.api_keys}
        client.send(
            3,
            12,
            build(
                request_module(3, 12).MetadataRequest,
                topics=None,
                allow_auto_topic_creation=False,
                include_topic_authorized_operations=False,
            ),
        )
        assert client.closed_by_peer(5)


def test_wire_unsupported_mechanism_lists_enabled_ones_and_closes(sasl_broker: Broker) -> None:
    """UNSUPPORTED_SASL_MECHANISM names the enabled mechanisms; the connection closes."""
    with WireClient(_port(sasl_broker, "SASL_PLAINTEXT")) as client:
        response = _handshake(client, "GSSAPI")
        assert response.error_code == ErrorCode.unsupported_sasl_mechanism
        assert response.mechanisms == ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
        assert client.closed_by_peer(5)


def test_wire_handshake_v0_raw_token_then_served(sasl_broker: Broker) -> None:
    """After SaslHandshake v0 the token travels as a raw frame (Kafka's original form);
    the empty answer ends the exchange and requests are served as the user."""
    with WireClient(_port(sasl_broker, "SASL_PLAINTEXT")) as client:
        assert _handshake(client, "PLAIN", version=0).error_code == ErrorCode.none
        token = b"\0bob\0" + USERS["bob"].encode()
        client.sock.sendall(struct.pack(">i", len(token)) + token)
        assert client.read_frame() == b""
        metadata = _metadata(client)
        assert [b.port for b in metadata.brokers] == [_port(sasl_broker, "SASL_PLAINTEXT")]
        assert ("User:bob", "SASL_PLAINTEXT") in _principals(sasl_broker)


def test_wire_plain_listener_refuses_sasl_and_advertises_itself(sasl_broker: Broker) -> None:
    """On the PLAINTEXT listener SaslHandshake is ILLEGAL_SASL_STATE (Kafka's answer),
    requests are served as User:ANONYMOUS, and Metadata names the PLAINTEXT port."""
    with WireClient(_port(sasl_broker, "PLAINTEXT")) as client:
        assert _handshake(client, "PLAIN").error_code == ErrorCode.illegal_sasl_state
        metadata = _metadata(client)
        assert [b.port for b in metadata.brokers] == [_port(sasl_broker, "PLAINTEXT")]
        assert ("User:ANONYMOUS", "PLAINTEXT") in _principals(sasl_broker)


def test_wire_oversized_token_before_authentication_closes(sasl_broker: Broker) -> None:
    """A frame announcing 100 MiB before authentication is over
    sasl.server.max.receive.size: closed at the size prefix, nothing buffered."""
    with WireClient(_port(sasl_broker, "SASL_PLAINTEXT")) as client:
        assert _handshake(client, "PLAIN", version=0).error_code == ErrorCode.none
        client.sock.sendall(struct.pack(">i", 100 * 1024 * 1024) + b"\0" * 1024)
        assert client.closed_by_peer(5)
    with WireClient(_port(sasl_broker, "PLAINTEXT")) as client:  # everyone else served
        assert _metadata(client).brokers


def test_wire_second_authentication_is_illegal(sasl_broker: Broker) -> None:
    """Once authenticated, SaslAuthenticate gets ILLEGAL_SASL_STATE and the connection
    keeps serving."""
    with WireClient(_port(sasl_broker, "SASL_PLAINTEXT")) as client:
        _handshake(client, "PLAIN")
        assert _authenticate(client, b"\0alice\0alice-secret").error_code == ErrorCode.none
        assert _authenticate(client, b"\0alice\0alice-secret").error_code == (
            ErrorCode.illegal_sasl_state
        )
        assert _metadata(client).brokers


def test_users_from_a_file(tmp_path: Any) -> None:
    """sasl.plain.users.file alone (no JAAS) gives PLAIN its users."""
    users = tmp_path / "plain-users.properties"
    users.write_text("# PLAIN users\nfiona=fiona-secret\n")
    config = {
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "PLAIN",
        "sasl.plain.users.file": str(users),
    }
    with Broker(config=config) as broker, WireClient(_port(broker, "SASL_PLAINTEXT")) as client:
        assert _handshake(client, "PLAIN").error_code == ErrorCode.none
        assert _authenticate(client, b"\0fiona\0fiona-secret").error_code == ErrorCode.none
        assert _metadata(client).brokers
