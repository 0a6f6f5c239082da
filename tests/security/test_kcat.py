"""kcat (Debian's librdkafka, older than the Python clients') over SASL_SSL with PLAIN
and both SCRAM mechanisms, and over TLS with a client certificate: it produces and
reads back. Older librdkafka repeats its nonce in SCRAM's final message, which Kafka
(and odradek) accept."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from odradek.testing import Broker

USERS = {"alice": "alice-secret"}
TIMEOUT_S = 30


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with Broker(tls=True, sasl_users=USERS) as broker:
        yield broker


def _kcat(broker: Broker, listener: str, settings: list[str], *args: str, stdin: str = "") -> str:
    assert broker.ca is not None
    command = ["kcat", "-b", broker.listener_address(listener), "-X"]
    command += [f"ssl.ca.location={broker.ca.certificate}"]
    for setting in settings:
        command += ["-X", setting]
    result = subprocess.run(
        [*command, *args], input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert result.returncode == 0, result.stderr[-1000:]
    return result.stdout


def _round_trip(broker: Broker, listener: str, settings: list[str]) -> None:
    topic = f"kcat-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, partitions=1)
    _kcat(broker, listener, settings, "-P", "-t", topic, stdin="one\ntwo\n")
    out = _kcat(broker, listener, settings, "-C", "-t", topic, "-o", "beginning", "-e", "-q")
    assert out.split() == ["one", "two"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kcat_sasl_ssl(broker: Broker, mechanism: str) -> None:
    """kcat logs in over TLS with each mechanism, produces and consumes."""
    settings = [
        "security.protocol=SASL_SSL",
        f"sasl.mechanisms={mechanism}",
        "sasl.username=alice",
        f"sasl.password={USERS['alice']}",
    ]
    _round_trip(broker, "SASL_SSL", settings)


def test_kcat_mtls(broker: Broker) -> None:
    """kcat with a client certificate on the SSL listener."""
    assert broker.ca is not None
    kim = broker.ca.issue("kim")
    settings = [
        "security.protocol=SSL",
        f"ssl.certificate.location={kim.certificate}",
        f"ssl.key.location={kim.key}",
    ]
    _round_trip(broker, "SSL", settings)
