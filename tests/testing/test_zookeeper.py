"""`odradek.testing.zookeeper` runs real ZooKeeper servers: sessions and ephemeral znodes,
stop/kill/restart/pause of one server, a three-node ensemble losing a node, and a client
cut off by `TcpProxy` losing its session."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState, WatchedEvent

import odradek.testing.zookeeper as zkmod
from odradek.testing import ZooKeeper, ZooKeeperEnsemble
from odradek.testing.netproxy import TcpProxy
from odradek.testing.zookeeper import zookeeper_available

SHORT_SESSION = 2.0  # seconds; the shortest the servers allow is 1 s (two 500 ms ticks)


@contextmanager
def _client(hosts: str, session_timeout: float = 10.0) -> Iterator[KazooClient]:
    client = KazooClient(hosts=hosts, timeout=session_timeout)
    client.start(timeout=10)
    try:
        yield client
    finally:
        client.stop()
        client.close()


def _path() -> str:
    return f"/test-zookeeper/{uuid.uuid4().hex}"


def _deleted_event(client: KazooClient, path: str) -> threading.Event:
    """An event set when `path` (which must exist now) is deleted."""
    deleted = threading.Event()

    def watch(event: WatchedEvent) -> None:
        if event.type == "DELETED":
            deleted.set()

    assert client.exists(path, watch=watch) is not None
    return deleted


def test_zookeeper_is_installed() -> None:
    """java and the jars are here: the other tests of this module run, never skip."""
    assert zookeeper_available()


def test_shared_server_keeps_ephemeral_znode_while_its_session_lives(
    zookeeper: ZooKeeper,
) -> None:
    """An ephemeral znode is seen by another session and goes when its session closes."""
    path = _path()
    with _client(zookeeper.connect_string) as watcher:
        with _client(zookeeper.connect_string) as owner:
            owner.create(path, b"broker-1", ephemeral=True, makepath=True)
            assert watcher.get(path)[0] == b"broker-1"
            deleted = _deleted_event(watcher, path)
        assert deleted.wait(5)
    assert zookeeper.connect_string == f"127.0.0.1:{zookeeper.port}"
    assert zookeeper.mode() == "standalone"


def test_stop_ends_the_process_and_close_removes_its_data() -> None:
    """`stop()` leaves no process behind but keeps the data and the log; `close()` removes
    the temporary data directory."""
    server = ZooKeeper().start()
    pid = server.pid
    assert pid is not None
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert server.pid is None and not server.running
    assert "binding to port" in server.log_path.read_text()
    assert server.data_dir.is_dir()
    server.close()
    assert not server.data_dir.exists()


def test_kill_and_restart_keep_znodes_and_sessions(tmp_path: Path) -> None:
    """After SIGKILL the server comes back on the same port with its znodes; sessions are
    part of its durable state, so a client that reconnects within its timeout keeps its
    session and its ephemeral znode."""
    with ZooKeeper(tmp_path / "zk") as server:
        port = server.port
        with _client(server.connect_string) as client:
            client.create("/kept", b"value")
            client.create("/session-bound", ephemeral=True)
            server.kill()
            assert server.pid is None
            server.restart()
            assert server.port == port
            assert client.retry(client.get, "/kept")[0] == b"value"
            assert client.exists("/session-bound") is not None
    assert (tmp_path / "zk" / "zookeeper.log").is_file()


def test_pause_longer_than_a_session_expires_its_ephemeral_znode() -> None:
    """A server frozen (SIGSTOP) past a 2 s session timeout expires that session as soon
    as it runs again; a session with a longer timeout survives and sees the deletion."""
    path = _path()
    with (
        ZooKeeper() as server,
        _client(server.connect_string, 30) as watcher,
        TcpProxy("127.0.0.1", server.port) as link,
        _client(link.address, SHORT_SESSION) as owner,
    ):
        owner.create(path, ephemeral=True, makepath=True)
        deleted = _deleted_event(watcher, path)
        server.pause()
        time.sleep(SHORT_SESSION + 1)
        # The owner's client, finding the server silent, reconnects with its session id;
        # if that request reached the server before its session tracker ran after the
        # resume, it would revive the session. Cutting the owner's link first leaves the
        # session to the tracker, which is what this test is about.
        link.cut()
        server.resume()
        assert deleted.wait(SHORT_SESSION + 4)
        assert watcher.state == KazooState.CONNECTED


def test_client_cut_off_loses_its_session_within_about_its_timeout(
    zookeeper: ZooKeeper,
) -> None:
    """A broker partitioned from ZooKeeper (its connection goes silent) is told SUSPENDED
    by its client, and its ephemeral znode vanishes about one session timeout later."""
    path = _path()
    with (
        TcpProxy("127.0.0.1", zookeeper.port) as link,
        _client(zookeeper.connect_string) as watcher,
        _client(link.address, SHORT_SESSION) as owner,
    ):
        suspended = threading.Event()

        def on_state(state: str) -> None:
            if state == KazooState.SUSPENDED:
                suspended.set()

        owner.add_listener(on_state)
        owner.create(path, ephemeral=True, makepath=True)
        deleted = _deleted_event(watcher, path)
        link.cut()
        started = time.monotonic()
        assert suspended.wait(SHORT_SESSION + 1)
        assert deleted.wait(SHORT_SESSION + 4)
        elapsed = time.monotonic() - started
        # The server expires sessions on tick boundaries, so up to a tick late; the lower
        # bound allows for the session's last touch having come shortly before the cut.
        assert SHORT_SESSION / 2 <= elapsed <= SHORT_SESSION + 2, elapsed


def test_ensemble_keeps_serving_writes_when_its_leader_is_killed() -> None:
    """Three servers form a quorum; with the leader killed the other two elect a new one
    and take writes; the killed node restarts, rejoins and has every write."""
    with ZooKeeperEnsemble(3) as ensemble:
        assert ensemble.connect_string.count(",") == 2
        with _client(ensemble.connect_string, SHORT_SESSION) as client:
            client.create("/before", b"1")
            old_leader = ensemble.leader()
            assert old_leader is not None
            ensemble.kill(old_leader)
            client.retry(client.create, "/after", b"2")
            assert ensemble.leader() not in (None, old_leader)
            ensemble.restart(old_leader)
        rejoined = ensemble.nodes[old_leader]
        assert rejoined.mode() in ("leader", "follower")
        with _client(rejoined.connect_string) as direct:
            direct.sync("/after")
            assert direct.get("/before")[0] == b"1"
            assert direct.get("/after")[0] == b"2"


def test_missing_installation_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the jars, starting says what is missing and how to install it."""
    monkeypatch.setattr(zkmod, "ZOOKEEPER_JAR", tmp_path / "absent.jar")
    assert not zookeeper_available()
    with pytest.raises(RuntimeError, match=r"scripts/install-system-deps\.sh"):
        ZooKeeper(tmp_path / "zk").start()
