"""SCRAM-SHA-256/512: real clients log in with credentials the broker keeps salted;
AdminClient sets, describes and deletes users (Kafka's checks and errors); credentials
survive a restart and the stored file holds no password; wrong passwords, unknown users,
a replayed final message and a wrong nonce are refused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from kio.schema.errors import ErrorCode

from odradek.security.scram_store import FILE_NAME
from odradek.testing import Broker
from tests.server.wire import WireClient, build, request_module

USERS = {"alice": "alice-secret"}


@pytest.fixture(scope="module")
def scram_broker() -> Iterator[Broker]:
    config = {"connection.failed.authentication.delay.ms": 0}
    with Broker(sasl_users=USERS, config=config) as broker:
        yield broker


def _produce(conf: dict[str, Any], broker: Broker) -> None:
    topic = f"scram-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, partitions=1)
    producer = Producer(conf)
    producer.produce(topic, value=b"v")
    assert producer.flush(20) == 0


def _refusal(conf: dict[str, Any]) -> list[str]:
    """Messages of the authentication errors a client got (it is served nothing)."""
    errors: list[KafkaError] = []
    admin = AdminClient({**conf, "error_cb": errors.append, "reconnect.backoff.ms": 1000})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=3)
    admin.poll(1)
    return [e.str() for e in errors if e.code() == KafkaError._AUTHENTICATION]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_confluent_kafka_logs_in_with_scram(scram_broker: Broker, mechanism: str) -> None:
    """librdkafka's SCRAM client authenticates (and verifies the server's signature)."""
    _produce(scram_broker.client_config("SASL_PLAINTEXT", "alice", mechanism), scram_broker)


def test_kafka_python_scram_sha_512(scram_broker: Broker) -> None:
    """kafka-python's SCRAM-SHA-512 client produces."""
    from kafka import KafkaProducer

    topic = f"scram-kp-{uuid.uuid4().hex[:8]}"
    scram_broker.create_topic(topic, partitions=1)
    producer = KafkaProducer(
        bootstrap_servers=scram_broker.listener_address("SASL_PLAINTEXT"),
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="alice",
        sasl_plain_password=USERS["alice"],
    )
    try:
        producer.send(topic, b"kp").get(timeout=20)
    finally:
        producer.close()


def test_aiokafka_scram_sha_256(scram_broker: Broker) -> None:
    """aiokafka's SCRAM-SHA-256 client produces."""
    from aiokafka import AIOKafkaProducer

    topic = f"scram-aio-{uuid.uuid4().hex[:8]}"
    scram_broker.create_topic(topic, partitions=1)

    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=scram_broker.listener_address("SASL_PLAINTEXT"),
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_plain_username="alice",
            sasl_plain_password=USERS["alice"],
        )
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"aio")
        finally:
            await producer.stop()

    asyncio.run(asyncio.wait_for(run(), 30))


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("nobody", "x")])
def test_wrong_password_and_unknown_user_get_one_message(
    scram_broker: Broker, user: str, password: str
) -> None:
    """Both refusals carry Kafka's SCRAM message, which does not say which was wrong."""
    conf = {
        **scram_broker.client_config("SASL_PLAINTEXT", "alice", "SCRAM-SHA-256"),
        "sasl.username": user,
        "sasl.password": password,
    }
    messages = _refusal(conf)
    assert any("invalid credentials with SASL mechanism SCRAM-SHA-256" in m for m in messages)


def _admin(broker: Broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap_servers})


def test_admin_sets_describes_and_deletes_a_user(scram_broker: Broker) -> None:
    """AlterUserScramCredentials creates carol (she can log in), Describe shows her
    mechanism and iterations, deleting the credential stops her logging in."""
    admin = _admin(scram_broker)
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    upsert = UserScramCredentialUpsertion("carol", info, b"carol-pw", os.urandom(16))
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(10)
    described = admin.describe_user_scram_credentials(["carol"])["carol"].result(10)
    infos = described.scram_credential_infos
    assert [(i.mechanism, i.iterations) for i in infos] == [(ScramMechanism.SCRAM_SHA_512, 8192)]
    conf = {
        **scram_broker.client_config("SASL_PLAINTEXT", "alice", "SCRAM-SHA-512"),
        "sasl.username": "carol",
        "sasl.password": "carol-pw",
    }
    _produce(conf, scram_broker)
    deletion = UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_512)
    for future in admin.alter_user_scram_credentials([deletion]).values():
        future.result(10)
    assert _refusal(conf)


def _wire_alter(broker: Broker, upsertions: list[dict[str, Any]], deletions: list[Any]) -> Any:
    module = request_module(51, 0)
    body = build(
        module.AlterUserScramCredentialsRequest,
        deletions=tuple(build(module.ScramCredentialDeletion, **d) for d in deletions),
        upsertions=tuple(build(module.ScramCredentialUpsertion, **u) for u in upsertions),
    )
    with WireClient(broker.port) as client:
        return client.call(51, 0, body)


def test_alter_refusals_are_kafkas(scram_broker: Broker) -> None:
    """Too few iterations, an unknown mechanism, the same credential twice and deleting
    a missing one each get Kafka's code; the rest of the request still applies."""
    good = {"mechanism": 1, "iterations": 4096, "salt": b"s" * 16, "salted_password": b"p" * 32}
    response = _wire_alter(
        scram_broker,
        [
            {**good, "name": "few", "iterations": 1000},
            {**good, "name": "odd", "mechanism": 9},
            {**good, "name": "twice"},
            {**good, "name": "twice"},
            {**good, "name": "fine"},
        ],
        [{"name": "ghost", "mechanism": 1}],
    )
    codes = {r.user: r.error_code for r in response.results}
    assert codes == {
        "few": ErrorCode.unacceptable_credential,
        "odd": ErrorCode.unsupported_sasl_mechanism,
        "twice": ErrorCode.duplicate_resource,
        "fine": ErrorCode.none,
        "ghost": ErrorCode.resource_not_found,
    }
    module = request_module(50, 0)
    with WireClient(scram_broker.port) as client:
        users = (build(module.UserName, name="fine"), build(module.UserName, name="ghost"))
        described = client.call(
            50, 0, build(module.DescribeUserScramCredentialsRequest, users=users)
        )
    by_user = {r.user: r for r in described.results}
    assert by_user["fine"].error_code == ErrorCode.none
    assert by_user["ghost"].error_code == ErrorCode.resource_not_found


def test_credentials_survive_restart_and_no_password_is_stored(tmp_path: Any) -> None:
    """The embedded store keeps salted keys only, in the data dir, across a restart."""
    with Broker(data_dir=str(tmp_path), sasl_users={"dora": "dora-pw-123"}) as broker:
        text = (tmp_path / FILE_NAME).read_text()
        assert "dora-pw-123" not in text
        assert set(json.loads(text)["users"]["dora"]) == {"SCRAM-SHA-256", "SCRAM-SHA-512"}
        broker.restart()
        conf = broker.client_config("SASL_PLAINTEXT", "dora", "SCRAM-SHA-256")
        _produce(conf, broker)


# -- the exchange by hand ---------------------------------------------------------------


class _ScramClient:
    """Just enough of RFC 5802's client side to send chosen messages."""

    def __init__(self, client: WireClient, user: str, password: str) -> None:
        self.client, self.user, self.password = client, user, password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n={user},r={self.nonce}"

    def authenticate(self, token: bytes) -> Any:
        module = request_module(36, 2)
        return self.client.call(36, 2, build(module.SaslAuthenticateRequest, auth_bytes=token))

    def start(self) -> dict[str, str]:
        module = request_module(17, 1)
        handshake = build(module.SaslHandshakeRequest, mechanism="SCRAM-SHA-256")
        assert self.client.call(17, 1, handshake).error_code == ErrorCode.none
        response = self.authenticate(f"n,,{self.first_bare}".encode())
        assert response.error_code == ErrorCode.none
        self.server_first = response.auth_bytes.decode()
        return dict(part.split("=", 1) for part in self.server_first.split(","))

    def final(self, server: dict[str, str], nonce: str | None = None) -> bytes:
        salted = hashlib.pbkdf2_hmac(
            "sha256", self.password.encode(), base64.b64decode(server["s"]), int(server["i"])
        )
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={nonce or server['r']}"
        auth = f"{self.first_bare},{self.server_first},{without_proof}".encode()
        signature = hmac.new(stored, auth, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


def _sasl_port(broker: Broker) -> int:
    return int(broker.listener_address("SASL_PLAINTEXT").rpartition(":")[2])


def test_replayed_final_message_is_refused(scram_broker: Broker) -> None:
    """A client-final message captured from one exchange does not log in on another
    connection: the server's nonce differs, the proof does not verify."""
    with WireClient(_sasl_port(scram_broker)) as client:
        first = _ScramClient(client, "alice", USERS["alice"])
        captured = first.final(first.start())
        assert first.authenticate(captured).error_code == ErrorCode.none
    with WireClient(_sasl_port(scram_broker)) as client:
        second = _ScramClient(client, "alice", USERS["alice"])
        second.nonce, second.first_bare = first.nonce, first.first_bare  # same client nonce
        second.start()
        response = second.authenticate(captured)
        assert response.error_code == ErrorCode.sasl_authentication_failed
        assert client.closed_by_peer(5)


def test_wrong_nonce_is_refused(scram_broker: Broker) -> None:
    """A final message naming another nonce is refused even with the right password."""
    with WireClient(_sasl_port(scram_broker)) as client:
        scram = _ScramClient(client, "alice", USERS["alice"])
        server = scram.start()
        response = scram.authenticate(scram.final(server, nonce=scram.nonce + "forged"))
        assert response.error_code == ErrorCode.sasl_authentication_failed
        assert client.closed_by_peer(5)


def test_stalled_exchange_is_closed() -> None:
    """A connection that starts SCRAM and never finishes is closed after
    request.timeout.ms, as one that never starts."""
    with Broker(sasl_users=USERS, config={"request.timeout.ms": 1500}) as broker:
        with WireClient(_sasl_port(broker)) as client:
            _ScramClient(client, "alice", USERS["alice"]).start()
            started = time.monotonic()
            assert client.closed_by_peer(10)
            assert time.monotonic() - started < 9
        with WireClient(broker.port) as client:  # everyone else is served
            module = request_module(3, 12)
            body = build(
                module.MetadataRequest,
                topics=None,
                allow_auto_topic_creation=False,
                include_topic_authorized_operations=False,
            )
            assert client.call(3, 12, body).brokers


def test_unknown_user_is_refused_only_at_the_end(scram_broker: Broker) -> None:
    """An unknown user gets a server-first message like a known one (the same salt on
    every try) and is refused at the final message: names cannot be probed."""
    salts = []
    for _ in range(2):
        with WireClient(_sasl_port(scram_broker)) as client:
            scram = _ScramClient(client, "nobody", "guess")
            server = scram.start()
            salts.append(server["s"])
            assert int(server["i"]) == 4096
            response = scram.authenticate(scram.final(server))
            assert response.error_code == ErrorCode.sasl_authentication_failed
    assert salts[0] == salts[1]
