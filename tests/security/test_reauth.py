"""KIP-368 re-authentication with connections.max.reauth.ms: SaslAuthenticate tells the
session lifetime; a request after it ends closes the connection; re-authenticating in
time keeps it serving; re-authentication may not change the principal or mechanism; and
librdkafka keeps producing across re-authentications."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from kio.schema.errors import ErrorCode

from odradek.testing import Broker
from tests.server.wire import WireClient, build, request_module

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
REAUTH_MS = 1500


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    config = {
        "connections.max.reauth.ms": REAUTH_MS,
        "connection.failed.authentication.delay.ms": 0,
    }
    with Broker(sasl_users=USERS, config=config) as broker:
        yield broker


def _client(broker: Broker) -> WireClient:
    return WireClient(int(broker.listener_address("SASL_PLAINTEXT").rpartition(":")[2]))


def _login(client: WireClient, user: str, mechanism: str = "PLAIN") -> Any:
    handshake = build(request_module(17, 1).SaslHandshakeRequest, mechanism=mechanism)
    assert client.call(17, 1, handshake).error_code == ErrorCode.none
    token = f"\0{user}\0{USERS[user]}".encode()
    body = build(request_module(36, 2).SaslAuthenticateRequest, auth_bytes=token)
    return client.call(36, 2, body)


def _metadata(client: WireClient) -> Any:
    module = request_module(3, 12)
    body = build(
        module.MetadataRequest,
        topics=None,
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
    return client.call(3, 12, body)


def test_session_lifetime_is_told_and_enforced(broker: Broker) -> None:
    """The answer carries connections.max.reauth.ms; after it, a request closes the
    connection."""
    with _client(broker) as client:
        response = _login(client, "alice")
        assert response.error_code == ErrorCode.none
        assert response.session_lifetime.total_seconds() * 1000 == REAUTH_MS
        assert _metadata(client).brokers
        time.sleep(REAUTH_MS / 1000 + 0.3)
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


def test_reauthenticating_in_time_keeps_the_connection(broker: Broker) -> None:
    """SaslHandshake + SaslAuthenticate again before expiry: still served after the first
    session's end."""
    with _client(broker) as client:
        _login(client, "alice")
        time.sleep(REAUTH_MS / 1000 * 0.6)
        assert _login(client, "alice").error_code == ErrorCode.none
        time.sleep(REAUTH_MS / 1000 * 0.6)  # past the first session's end
        assert _metadata(client).brokers


def test_reauthentication_cannot_change_the_principal(broker: Broker) -> None:
    """Re-authenticating as another user is refused, and the connection closed."""
    with _client(broker) as client:
        _login(client, "alice")
        response = _login(client, "bob")
        assert response.error_code == ErrorCode.sasl_authentication_failed
        assert "Cannot change principals" in (response.error_message or "")
        assert client.closed_by_peer(5)


def test_reauthentication_cannot_change_the_mechanism(broker: Broker) -> None:
    """A re-authentication handshake naming another mechanism: ILLEGAL_SASL_STATE, closed."""
    with _client(broker) as client:
        _login(client, "alice")
        handshake = build(request_module(17, 1).SaslHandshakeRequest, mechanism="SCRAM-SHA-256")
        assert client.call(17, 1, handshake).error_code == ErrorCode.illegal_sasl_state
        assert client.closed_by_peer(5)


def test_librdkafka_keeps_producing_across_reauthentications(broker: Broker) -> None:
    """A producer sending for three session lifetimes gets every record delivered."""
    topic = f"reauth-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, partitions=1)
    assert broker.broker is not None
    stats = broker.broker.request_stats
    before = stats.connections_created
    producer = Producer(broker.client_config("SASL_PLAINTEXT", "alice", "SCRAM-SHA-512"))
    delivered: list[bool] = []
    deadline = time.monotonic() + 3 * REAUTH_MS / 1000
    sent = 0
    while time.monotonic() < deadline:
        producer.produce(topic, b"v", on_delivery=lambda e, _m: delivered.append(e is None))
        sent += 1
        producer.poll(0.1)
    assert producer.flush(20) == 0
    assert delivered == [True] * sent
    opened = stats.connections_created - before
    # librdkafka re-authenticates on its connections instead of reconnecting: its
    # bootstrap and broker connections, not one more per session lifetime.
    assert opened <= 2, opened
