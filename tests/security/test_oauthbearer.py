"""SASL/OAUTHBEARER with JWTs checked against a JWKS file: confluent-kafka logs in with a
valid token (principal = its subject); an expired token, a wrong audience, a token
signed by another key and an unsigned token are refused with SASL_AUTHENTICATION_FAILED
and a message saying why; unsigned tokens are accepted only in the opt-in development
mode; a broker with OAUTHBEARER but no keys refuses to start."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer

from odradek.config import ConfigError
from odradek.testing import Broker
from odradek.testing.oauth import TokenIssuer, unsecured_token

AUDIENCE = "odradek-test"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> TokenIssuer:
    return TokenIssuer(tmp_path_factory.mktemp("oauth"))


@pytest.fixture(scope="module")
def oauth_broker(issuer: TokenIssuer) -> Iterator[Broker]:
    config = {
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "sasl.oauthbearer.jwks.endpoint.url": issuer.jwks_url,
        "sasl.oauthbearer.expected.audience": AUDIENCE,
        "connection.failed.authentication.delay.ms": 0,
    }
    with Broker(config=config) as broker:
        yield broker


def _attempt(broker: Broker, token: Callable[[], str]) -> tuple[bool, list[str], Any]:
    """(produced?, authentication error messages, the producer) for one token."""
    errors: list[KafkaError] = []

    def oauth_cb(_config: str) -> tuple[str, float]:
        return token(), time.time() + 300

    producer = Producer(
        {
            "bootstrap.servers": broker.listener_address("SASL_PLAINTEXT"),
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "OAUTHBEARER",
            "oauth_cb": oauth_cb,
            "error_cb": errors.append,
            "reconnect.backoff.ms": 1000,
            "message.timeout.ms": 5000,
        }
    )
    topic = f"oauth-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, partitions=1)
    delivered: list[bool] = []
    producer.produce(topic, b"v", on_delivery=lambda err, _msg: delivered.append(err is None))
    deadline = time.monotonic() + 10
    messages: list[str] = []
    while not delivered and not messages and time.monotonic() < deadline:
        producer.poll(0.1)
        messages = [e.str() for e in errors if e.code() == KafkaError._AUTHENTICATION]
    return delivered == [True], messages, producer


def _principals(broker: Broker) -> set[str]:
    assert broker.broker is not None
    return {c.principal for c in list(broker.broker.connections)}


def test_valid_token_logs_in_as_its_subject(oauth_broker: Broker, issuer: TokenIssuer) -> None:
    """A signed, current token for the expected audience: produced, as User:<sub>."""
    ok, messages, producer = _attempt(oauth_broker, lambda: issuer.token("grace", AUDIENCE))
    assert ok, messages
    assert "User:grace" in _principals(oauth_broker)
    del producer


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("expired", "expired"),
        ("audience", "audience"),
        ("other key", "signature"),
        ("unsigned", "unsecured"),
    ],
)
def test_bad_tokens_are_refused_with_the_reason(
    oauth_broker: Broker, issuer: TokenIssuer, tmp_path: Any, case: str, expected: str
) -> None:
    """Each bad token: nothing delivered, an authentication error naming the reason."""
    stranger = TokenIssuer(tmp_path, key_id=issuer.key_id)  # same kid, another key
    tokens = {
        "expired": lambda: issuer.token("h", AUDIENCE, lifetime_s=-3600),
        "audience": lambda: issuer.token("h", "someone-else"),
        "other key": lambda: stranger.token("h", AUDIENCE),
        "unsigned": lambda: unsecured_token("h"),
    }
    ok, messages, _producer = _attempt(oauth_broker, tokens[case])
    assert not ok
    assert any(expected in m for m in messages), messages


def test_unsecured_mode_is_opt_in(tmp_path: Any) -> None:
    """Without keys OAUTHBEARER refuses to start; with
    sasl.oauthbearer.unsecured.jwt.allowed=true an unsigned token logs in."""
    config = {
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "OAUTHBEARER",
    }
    with pytest.raises(ConfigError, match="unsecured"):
        Broker(config=config).start()
    config["sasl.oauthbearer.unsecured.jwt.allowed"] = "true"
    with Broker(config=config) as broker:
        ok, messages, _producer = _attempt(broker, lambda: unsecured_token("ivan"))
        assert ok, messages
