"""`odradek user` against a broker that requires SASL: the CLI logs in with `-X`
security settings, sets a SCRAM user who can then log in, describes and deletes it;
without the settings it fails with a one-line error."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from odradek.testing import Broker
from tests.cli.conftest import Result, run_cli

ADMIN = {"admin": "admin-secret"}


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with Broker(sasl_users=ADMIN) as broker:
        yield broker


def _user(broker: Broker, *args: str, login: bool = True) -> Result:
    security = [
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanism=SCRAM-SHA-512",
        "-X",
        "sasl.username=admin",
        "-X",
        f"sasl.password={ADMIN['admin']}",
    ]
    return run_cli(
        "user",
        *args,
        *(security if login else []),
        bootstrap=broker.listener_address("SASL_PLAINTEXT"),
    )


def test_set_describe_log_in_delete(broker: Broker) -> None:
    """set → describe shows the mechanism and iterations → the user logs in with SCRAM →
    delete → describe names no credential (exit 1, RESOURCE_NOT_FOUND in words)."""
    result = _user(broker, "set", "erin", "--password", "erin-pw", "--mechanism", "SCRAM-SHA-256")
    assert result.code == 0, result.err
    described = _user(broker, "describe", "erin", "--output", "json")
    assert described.code == 0, described.err
    assert json.loads(described.out) == [
        {"user": "erin", "mechanism": "SCRAM-SHA-256", "iterations": 4096}
    ]
    conf = {
        **broker.client_config("SASL_PLAINTEXT", "admin", "SCRAM-SHA-256"),
        "sasl.username": "erin",
        "sasl.password": "erin-pw",
    }
    producer = Producer(conf)
    assert producer.list_topics(timeout=10).brokers
    deleted = _user(broker, "delete", "erin", "--mechanism", "SCRAM-SHA-256")
    assert deleted.code == 0, deleted.err
    gone = _user(broker, "describe", "erin")
    assert gone.code == 1
    assert "does not exist" in gone.err


def test_without_security_settings_the_cli_fails_in_one_line(broker: Broker) -> None:
    """Against the SASL listener without -X settings: exit 1 and a one-line error."""
    result = _user(broker, "describe", "--timeout", "2", login=False)
    assert result.code == 1
    assert len(result.err.strip().splitlines()) == 1
