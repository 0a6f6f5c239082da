"""The console behind a login on a broker that requires SASL: no or wrong credentials get
401 (asking for Basic credentials), the broker's PLAIN and SCRAM users get the pages and
/metrics; a broker without SASL listeners keeps its console open."""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from odradek.testing import Broker

CONSOLE = {"console.listeners": "http://127.0.0.1:0"}


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    config = {**CONSOLE, "connection.failed.authentication.delay.ms": 0}
    with Broker(sasl_users={"alice": "alice-secret"}, config=config) as broker:
        yield broker


def _get(url: str, user: str | None = None, password: str = "") -> int:
    request = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        if error.code == 401:
            assert "Basic" in error.headers.get("WWW-Authenticate", "")
        return int(error.code)


def test_pages_need_a_login(broker: Broker) -> None:
    """Without or with wrong credentials: 401; as a PLAIN user: the page."""
    assert broker.console_url is not None
    assert _get(broker.console_url + "/") == 401
    assert _get(broker.console_url + "/", "alice", "wrong") == 401
    assert _get(broker.console_url + "/", "mallory", "x") == 401
    assert _get(broker.console_url + "/", "alice", "alice-secret") == 200
    assert _get(broker.console_url + "/metrics") == 401
    assert _get(broker.console_url + "/metrics", "alice", "alice-secret") == 200


def test_scram_user_logs_in(broker: Broker) -> None:
    """A user with only SCRAM credentials (set through the admin API) gets the pages."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
    upsert = UserScramCredentialUpsertion("sam", info, b"sam-secret", os.urandom(16))
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(10)
    assert broker.console_url is not None
    assert _get(broker.console_url + "/topics", "sam", "sam-secret") == 200
    assert _get(broker.console_url + "/topics", "sam", "nope") == 401


def test_console_without_sasl_listeners_stays_open() -> None:
    """No SASL listener: no login asked."""
    with Broker(config=CONSOLE) as broker:
        assert broker.console_url is not None
        assert _get(broker.console_url + "/") == 200
