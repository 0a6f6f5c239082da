"""odradek.testing's security options: `kafka_broker_factory(tls=True, sasl_users=...)`
gives a broker whose SSL, SASL_PLAINTEXT and SASL_SSL listeners real clients reach with
`client_config`; OAUTHBEARER works over SASL_SSL too; `ssl.enabled.protocols` limits the
TLS versions offered."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer

from odradek.testing import Broker
from odradek.testing.oauth import TokenIssuer


def _reachable(conf: dict[str, Any]) -> bool:
    return bool(Producer(conf).list_topics(timeout=10).brokers)


def test_factory_option_makes_a_secured_broker(kafka_broker_factory: Callable[..., Broker]) -> None:
    """Every listener the options add is reachable with the configuration it gives."""
    broker = kafka_broker_factory(tls=True, sasl_users={"uma": "uma-secret"})
    assert broker.ca is not None
    assert _reachable(broker.client_config("SSL", certificate=broker.ca.issue("uma")))
    assert _reachable(broker.client_config("SASL_PLAINTEXT", "uma", "SCRAM-SHA-256"))
    assert _reachable(broker.client_config("SASL_SSL", "uma", "SCRAM-SHA-512"))


def test_oauthbearer_over_sasl_ssl(tmp_path: Any) -> None:
    """A JWT login on the TLS listener."""
    issuer = TokenIssuer(tmp_path)
    config = {
        "sasl.enabled.mechanisms": "PLAIN,OAUTHBEARER",
        "sasl.oauthbearer.jwks.endpoint.url": issuer.jwks_url,
    }
    with Broker(tls=True, sasl_users={"v": "v"}, config=config) as broker:
        conf = {
            **broker.client_config("SASL_SSL"),
            "sasl.mechanism": "OAUTHBEARER",
            "oauth_cb": lambda _c: (issuer.token("vera"), time.time() + 300),
        }
        producer = Producer(conf)
        producer.poll(0)
        assert producer.list_topics(timeout=10).brokers


def test_tls_versions_follow_ssl_enabled_protocols() -> None:
    """ssl.enabled.protocols=TLSv1.2: a TLS 1.2 handshake works, a 1.3-only client is
    refused."""
    with Broker(tls=True, config={"ssl.enabled.protocols": "TLSv1.2"}) as broker:
        assert broker.ca is not None
        port = int(broker.listener_address("SSL").rpartition(":")[2])
        context = ssl.create_default_context(cafile=broker.ca.certificate)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version() == "TLSv1.2"
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            pytest.raises(ssl.SSLError),
        ):
            context.wrap_socket(raw, server_hostname="127.0.0.1")
