"""Connection limits by address and by listener: `max.connections.per.ip.overrides`
lifts (or lowers) the cap for named addresses, `listener.name.<l>.max.connections` caps
one listener while the others keep serving."""

from __future__ import annotations

import socket
import time

import pytest

from odradek.config import ConfigError
from odradek.server.limits import parse_ip_overrides
from odradek.testing import Broker


def _closed(sock: socket.socket, timeout: float = 3.0) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def _open(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


def _wait_connections(broker: Broker, count: int) -> None:
    assert broker.broker is not None
    deadline = time.monotonic() + 5
    while len(broker.broker.connections) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def test_override_lifts_the_per_ip_cap() -> None:
    """max.connections.per.ip=2 with 127.0.0.1 overridden to 4: four connections stay
    open, the fifth is closed."""
    config = {"max.connections.per.ip": 2, "max.connections.per.ip.overrides": "127.0.0.1:4"}
    with Broker(config=config) as broker:
        socks = _open(broker.port, 4)
        try:
            _wait_connections(broker, 4)
            extra = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
            assert _closed(extra)
            assert not any(_closed(s, 0.2) for s in socks)
        finally:
            for s in socks:
                s.close()


def test_listener_cap_leaves_other_listeners_serving() -> None:
    """listener.name.sasl_plaintext.max.connections=1: a second connection to that
    listener is closed, the PLAINTEXT listener still accepts."""
    config = {"listener.name.sasl_plaintext.max.connections": 1}
    with Broker(sasl_users={"u": "p"}, config=config) as broker:
        port = int(broker.listener_address("SASL_PLAINTEXT").rpartition(":")[2])
        first = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            _wait_connections(broker, 1)
            second = socket.create_connection(("127.0.0.1", port), timeout=5)
            assert _closed(second)
            plain = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
            assert not _closed(plain, 0.3)
            plain.close()
        finally:
            first.close()


def test_overrides_parse_addresses_and_host_names() -> None:
    """IP literals as given, host names as the addresses they resolve to; junk refused."""
    overrides = parse_ip_overrides("10.0.0.1:7, localhost:3")
    assert overrides["10.0.0.1"] == 7
    assert overrides.get("127.0.0.1") == 3 or overrides.get("::1") == 3
    with pytest.raises(ConfigError):
        parse_ip_overrides("10.0.0.1")
