"""`odradek.testing.netproxy.TcpProxy` against a plain echo server: forwarding, a silent
(black-hole) cut, a reset cut, healing and shutting down."""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from odradek.testing.netproxy import TcpProxy

SILENCE = 0.5  # how long a read waits before the test calls the link silent


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        # The proxy's reset cut resets this side too: that is the test, not an error.
        with contextlib.suppress(ConnectionResetError):
            while data := self.request.recv(65536):
                self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True  # held connections must not keep the test process waiting


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def proxy(echo: tuple[str, int]) -> Iterator[TcpProxy]:
    with TcpProxy(*echo) as p:
        yield p


def _connect(proxy: TcpProxy) -> socket.socket:
    return socket.create_connection((proxy.host, proxy.port), timeout=5)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 65536))
        assert chunk, "connection closed early"
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _roundtrip(sock: socket.socket, payload: bytes = b"ping") -> bytes:
    sock.sendall(payload)
    return _recv_exactly(sock, len(payload))


def _assert_silent(sock: socket.socket) -> None:
    sock.settimeout(SILENCE)
    with pytest.raises(TimeoutError):
        sock.recv(1)
    sock.settimeout(5)


def test_forwards_bytes_both_ways_and_passes_on_eof(proxy: TcpProxy) -> None:
    """A MiB goes through and comes back intact; a half-close reaches the server, whose
    close reaches the client."""
    assert proxy.address == f"127.0.0.1:{proxy.port}"
    payload = os.urandom(1 << 20)
    with _connect(proxy) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert _recv_exactly(sock, len(payload)) == payload
        sender.join(5)
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""


def test_blackhole_cut_silences_current_and_new_connections(proxy: TcpProxy) -> None:
    """During a cut an open connection gets no answer and a new one is accepted but never
    answered: reads time out, nothing is closed."""
    with _connect(proxy) as old:
        assert _roundtrip(old) == b"ping"
        proxy.cut()
        assert proxy.is_cut
        old.sendall(b"lost?")
        _assert_silent(old)
        with _connect(proxy) as new:
            new.sendall(b"hello")
            _assert_silent(new)
            assert proxy.connection_count == 2


def test_heal_delivers_held_bytes_and_lets_new_connections_through(proxy: TcpProxy) -> None:
    """After a heal the bytes sent during the cut arrive, as after a real partition, and new
    connections are forwarded again."""
    with _connect(proxy) as old:
        assert _roundtrip(old) == b"ping"
        proxy.cut()
        old.sendall(b"held")
        with _connect(proxy) as during:
            during.sendall(b"queued")
            _assert_silent(during)
            proxy.heal()
            assert not proxy.is_cut
            assert _recv_exactly(during, 6) == b"queued"
        assert _recv_exactly(old, 4) == b"held"
    with _connect(proxy) as new:
        assert _roundtrip(new, b"again") == b"again"


def test_reset_cut_resets_current_and_new_connections(proxy: TcpProxy) -> None:
    """`cut(mode="reset")` resets open connections and every new one until the heal."""
    with _connect(proxy) as old:
        assert _roundtrip(old) == b"ping"
        proxy.cut(mode="reset")
        with pytest.raises(ConnectionResetError):
            old.recv(1)
    # The reset may land while connect() returns or at the first read.
    with pytest.raises(ConnectionResetError), _connect(proxy) as new:
        new.recv(1)
    proxy.heal()
    with _connect(proxy) as healed:
        assert _roundtrip(healed) == b"ping"


def test_unreachable_target_closes_the_client_connection() -> None:
    """With nothing listening at the target, the proxy accepts and then closes the client."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    with TcpProxy("127.0.0.1", dead_port) as proxy, _connect(proxy) as sock:
        assert sock.recv(1) == b""


def test_close_stops_listening_and_joins_its_thread(echo: tuple[str, int]) -> None:
    """`close()` ends the proxy's connections, its listener and its thread; twice is fine."""
    proxy = TcpProxy(*echo)
    sock = _connect(proxy)
    assert _roundtrip(sock) == b"ping"
    proxy.close()
    proxy.close()
    assert not proxy._thread.is_alive()
    with pytest.raises(OSError):
        _roundtrip(sock)
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        _connect(proxy)


def test_unknown_cut_mode_is_refused(proxy: TcpProxy) -> None:
    """A misspelt mode is an error, not a silent no-op."""
    with pytest.raises(ValueError, match="cut mode"):
        proxy.cut(mode="drop")  # type: ignore[arg-type]
    assert not proxy.is_cut
