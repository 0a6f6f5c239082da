"""`Cluster`: N real odradek brokers and a ZooKeeper, for tests of a replicated cluster.

Each broker is its own process (`python -m odradek broker`) on a fixed free loopback
port with its own data directory, so a test can kill -9, stop, pause (SIGSTOP), resume
and restart one broker and clients find it at the same address again. The cluster lives
under a ZooKeeper chroot of its own, so many clusters can share one ZooKeeper server
(pass `zookeeper=`); without one the cluster starts its own.

```python
with Cluster(brokers=3) as cluster:
    cluster.create_topic("rides", partitions=3, replication_factor=3)
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
    cluster.kill(cluster.leader_of("rides", 0))
```
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from odradek.testing.netproxy import TcpProxy
from odradek.testing.zookeeper import ZooKeeper, free_ports

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def wait_until(
    check: Callable[[], Any],
    timeout: float,
    what: str | Callable[[], str],
    interval: float = 0.05,
) -> Any:
    """Polls `check` until it returns something truthy (returned); AssertionError after
    `timeout` seconds, saying `what` was awaited (a callable is asked then, so the
    message can tell what was last seen)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            awaited = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {awaited}")
        time.sleep(interval)


class BrokerProcess:
    """One broker of a Cluster: its id, port, data directory and process."""

    def __init__(self, node_id: int, port: int, data_dir: Path, properties: dict[str, str]):
        self.log_level = "INFO"
        self.node_id = node_id
        self.port = port
        self.data_dir = data_dir
        self.properties = properties
        self.log_path = data_dir.parent / f"broker-{node_id}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self) -> None:
        args = [sys.executable, "-m", "odradek", "broker", "--log-level", self.log_level]
        for key, value in self.properties.items():
            args += ["--set", f"{key}={value}"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        try:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    def signal(self, signum: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signum)

    def wait_exit(self, timeout: float) -> bool:
        if self.process is None:
            return True
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class ZooKeeperServers(Protocol):
    """A ZooKeeper server or ensemble: what the cluster needs of it."""

    @property
    def connect_string(self) -> str: ...

    def stop(self) -> None: ...


class Cluster:
    """Brokers 1..N on free ports, coordinated by ZooKeeper under a chroot of their own."""

    def __init__(
        self,
        brokers: int = 3,
        config: Mapping[str, Any] | None = None,
        zookeeper: ZooKeeperServers | None = None,
        data_dir: str | None = None,
        racks: Mapping[int, str] | None = None,
        session_timeout_ms: int = 4000,
        log_level: str = "INFO",
        proxied: bool = False,
        console: bool = False,
        sasl_listener: bool = False,
    ) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="odradek-cluster-"))
        self._own_zookeeper = zookeeper is None
        self.zookeeper: Any = zookeeper
        self.chroot = f"/odradek-{uuid.uuid4().hex[:12]}"
        self.session_timeout_ms = session_timeout_ms
        self._config = {k: str(v) for k, v in (config or {}).items()}
        self._racks = dict(racks or {})
        self.brokers: dict[int, BrokerProcess] = {}
        ports = free_ports(brokers)
        for i, port in enumerate(ports, start=1):
            self.brokers[i] = BrokerProcess(i, port, self.data_dir / f"broker-{i}", {})
            self.brokers[i].log_level = log_level
        self._zk: Any = None
        # With `proxied`, each broker reaches ZooKeeper, and the others reach it for
        # replication, through proxies the test can cut (`cut_off`, `heal`); clients still
        # reach every broker directly on its PLAINTEXT listener.
        self.proxied = proxied
        self._replication_ports = dict(zip(self.brokers, free_ports(brokers), strict=True))
        # With `sasl_listener`, each broker also listens on SASL_PLAINTEXT at a port of its
        # own (`sasl_ports`); the mechanisms and users come from `config`.
        self.sasl_ports: dict[int, int] = {}
        if sasl_listener:
            self.sasl_ports = dict(zip(self.brokers, free_ports(brokers), strict=True))
        # With `console`, each broker serves /metrics on a port of its own (`console_url`).
        self._console_ports: dict[int, int] = {}
        if console:
            self._console_ports = dict(zip(self.brokers, free_ports(brokers), strict=True))
        self.zookeeper_proxies: dict[int, TcpProxy] = {}
        self.replication_proxies: dict[int, TcpProxy] = {}

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def zookeeper_connect(self) -> str:
        assert self.zookeeper is not None, "cluster not started"
        return f"{self.zookeeper.connect_string}{self.chroot}"

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{b.port}" for b in self.brokers.values())

    def _properties(self, broker: BrokerProcess) -> dict[str, str]:
        properties = {
            "broker.id": str(broker.node_id),
            "listeners": f"PLAINTEXT://127.0.0.1:{broker.port}",
            "log.dirs": str(broker.data_dir),
            "zookeeper.connect": self._zookeeper_connect_for(broker.node_id),
            "zookeeper.session.timeout.ms": str(self.session_timeout_ms),
            "zookeeper.connection.timeout.ms": "10000",
            "offsets.topic.replication.factor": str(min(3, len(self.brokers))),
            "group.initial.rebalance.delay.ms": "0",
            "replica.lag.time.max.ms": "10000",
        }
        if self.proxied:
            node = broker.node_id
            internal = self._replication_ports[node]
            proxy = self.replication_proxies[node].port
            properties["listeners"] += f",REPLICATION://127.0.0.1:{internal}"
            properties["advertised.listeners"] = (
                f"PLAINTEXT://127.0.0.1:{broker.port},REPLICATION://127.0.0.1:{proxy}"
            )
            properties["inter.broker.listener.name"] = "REPLICATION"
            properties["listener.security.protocol.map"] = (
                "PLAINTEXT:PLAINTEXT,REPLICATION:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
            )
        if broker.node_id in self.sasl_ports:
            sasl = f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_ports[broker.node_id]}"
            properties["listeners"] += f",{sasl}"
            if "advertised.listeners" in properties:
                properties["advertised.listeners"] += f",{sasl}"
        if broker.node_id in self._racks:
            properties["broker.rack"] = self._racks[broker.node_id]
        if broker.node_id in self._console_ports:
            properties["console.listeners"] = self.console_url(broker.node_id)
        properties.update(self._config)
        return properties

    def console_url(self, node_id: int) -> str:
        """`http://127.0.0.1:PORT` of a broker's HTTP listener (a cluster made with
        `console=True`)."""
        return f"http://127.0.0.1:{self._console_ports[node_id]}"

    def _zookeeper_connect_for(self, node_id: int) -> str:
        proxy = self.zookeeper_proxies.get(node_id)
        if proxy is None:
            return self.zookeeper_connect
        return f"{proxy.address}{self.chroot}"

    def _start_proxies(self) -> None:
        assert self.zookeeper is not None
        zk_host, _, zk_port = self.zookeeper.connect_string.split(",")[0].rpartition(":")
        for node in self.brokers:
            self.zookeeper_proxies[node] = TcpProxy(zk_host, int(zk_port))
            self.replication_proxies[node] = TcpProxy("127.0.0.1", self._replication_ports[node])

    def start(self, timeout: float = START_TIMEOUT_S) -> Self:
        if self.zookeeper is None:
            self.zookeeper = ZooKeeper(data_dir=str(self.data_dir / "zookeeper")).start()
        if self.proxied:
            self._start_proxies()
        for broker in self.brokers.values():
            broker.data_dir.mkdir(parents=True, exist_ok=True)
            broker.properties = self._properties(broker)
            broker.spawn()
        for node_id in self.brokers:
            self.wait_registered(node_id, timeout)
        wait_until(self.controller, timeout, "a controller")
        self.wait_all_see_all(timeout)
        return self

    def wait_all_see_all(self, timeout: float = START_TIMEOUT_S) -> None:
        """Waits until every running broker's Metadata lists every running broker. A broker
        learns of the others through a ZooKeeper watch, a few milliseconds after they
        registered: until then a CreateTopics it handles counts too few live brokers."""
        from confluent_kafka.admin import AdminClient

        running = {n for n, b in self.brokers.items() if b.running}
        for node_id in sorted(running):
            admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{self.brokers[node_id].port}"})

            def sees_all(admin: Any = admin) -> bool:
                return running <= set(admin.list_topics(timeout=5).brokers)

            wait_until(sees_all, timeout, f"broker {node_id} to see brokers {sorted(running)}")

    def stop(self) -> None:
        """Stops every broker (SIGTERM, then SIGKILL), then the own ZooKeeper."""
        for broker in self.brokers.values():
            broker.signal(signal.SIGCONT)  # a paused broker cannot handle SIGTERM
            broker.signal(signal.SIGTERM)
        for broker in self.brokers.values():
            if not broker.wait_exit(STOP_TIMEOUT_S):
                broker.signal(signal.SIGKILL)
                broker.wait_exit(STOP_TIMEOUT_S)
        self.close_zk_client()
        for proxy in [*self.zookeeper_proxies.values(), *self.replication_proxies.values()]:
            proxy.close()
        if self._own_zookeeper and self.zookeeper is not None:
            self.zookeeper.stop()
            self.zookeeper = None

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- faults ------------------------------------------------------------------------

    def kill(self, node_id: int) -> None:
        """kill -9: no clean stop, its ZooKeeper session expires on its own."""
        broker = self.brokers[node_id]
        broker.signal(signal.SIGCONT)
        broker.signal(signal.SIGKILL)
        broker.wait_exit(STOP_TIMEOUT_S)

    def stop_broker(self, node_id: int, timeout: float = STOP_TIMEOUT_S) -> None:
        """A clean stop (SIGTERM), waited for."""
        broker = self.brokers[node_id]
        broker.signal(signal.SIGTERM)
        if not broker.wait_exit(timeout):
            raise AssertionError(f"broker {node_id} did not stop within {timeout} s")

    def pause(self, node_id: int) -> None:
        """SIGSTOP: the process freezes, as in a long GC pause."""
        self.brokers[node_id].signal(signal.SIGSTOP)

    def resume(self, node_id: int) -> None:
        self.brokers[node_id].signal(signal.SIGCONT)

    def cut_off(self, node_id: int) -> None:
        """Cuts the broker off from ZooKeeper and from the other brokers' replica fetches
        (a `proxied` cluster only): its links go silent, as in a network partition. Its
        own fetches from other leaders and its client listener are not cut."""
        assert self.proxied, "cut_off needs Cluster(proxied=True)"
        self.zookeeper_proxies[node_id].cut()
        self.replication_proxies[node_id].cut()

    def heal(self, node_id: int) -> None:
        self.zookeeper_proxies[node_id].heal()
        self.replication_proxies[node_id].heal()

    def restart(self, node_id: int, timeout: float = START_TIMEOUT_S) -> None:
        """Starts a stopped or killed broker again, same id, port and data."""
        broker = self.brokers[node_id]
        if broker.running:
            raise AssertionError(f"broker {node_id} is still running")
        broker.spawn()
        self.wait_registered(node_id, timeout)

    # -- looking at ZooKeeper ------------------------------------------------------------

    @property
    def zk(self) -> Any:
        """A kazoo client on the cluster's chroot (for reading what the brokers wrote)."""
        if self._zk is None:
            from kazoo.client import KazooClient

            self._zk = KazooClient(hosts=self.zookeeper_connect, timeout=10.0)
            self._zk.start(timeout=15)
        return self._zk

    def close_zk_client(self) -> None:
        """Closes the test's own ZooKeeper client (before stopping ZooKeeper on purpose)."""
        if self._zk is not None:
            self._zk.stop()
            self._zk.close()
            self._zk = None

    def live_brokers(self) -> list[int]:
        if not self.zk.exists("/brokers/ids"):
            return []
        return sorted(int(c) for c in self.zk.get_children("/brokers/ids"))

    def controller(self) -> int | None:
        if not self.zk.exists("/controller"):
            return None
        data, _ = self.zk.get("/controller")
        return int(json.loads(data)["brokerid"])

    def partition_state(self, topic: str, partition: int) -> dict[str, Any] | None:
        path = f"/brokers/topics/{topic}/partitions/{partition}/state"
        if not self.zk.exists(path):
            return None
        data, _ = self.zk.get(path)
        return dict(json.loads(data))

    def leader_of(self, topic: str, partition: int, timeout: float = 20.0) -> int:
        """The partition's live leader, waited for."""

        def leader() -> int | None:
            state = self.partition_state(topic, partition)
            if state is None or state["leader"] < 0:
                return None
            return int(state["leader"]) if state["leader"] in self.live_brokers() else None

        return int(wait_until(leader, timeout, f"a leader of {topic}-{partition}"))

    def topic_id(self, topic: str) -> uuid.UUID:
        """The topic's id as /brokers/topics/T records it."""
        from odradek.storage.manager import uuid_from_kafka

        data, _ = self.zk.get(f"/brokers/topics/{topic}")
        return uuid_from_kafka(json.loads(data)["topic_id"])

    def wait_new_leader(self, topic: str, partition: int, old: int, timeout: float = 30.0) -> int:
        """The partition's live leader once it is another broker than `old`, waited for."""

        def moved() -> int | None:
            state = self.partition_state(topic, partition)
            if state is None or state["leader"] in (-1, old):
                return None
            return int(state["leader"]) if state["leader"] in self.live_brokers() else None

        return int(wait_until(moved, timeout, f"a leader of {topic}-{partition} other than {old}"))

    def isr_of(self, topic: str, partition: int) -> list[int]:
        state = self.partition_state(topic, partition)
        return list(state["isr"]) if state else []

    def wait_registered(self, node_id: int, timeout: float = START_TIMEOUT_S) -> None:
        broker = self.brokers[node_id]

        def registered() -> bool:
            if not broker.running:
                raise AssertionError(f"broker {node_id} exited:\n{broker.tail()}")
            return node_id in self.live_brokers() and _accepts(broker.port)

        wait_until(registered, timeout, f"broker {node_id} to register")

    def wait_unregistered(self, node_id: int, timeout: float = 30.0) -> None:
        """Waits until a killed or paused broker's ZooKeeper session has expired (its
        /brokers/ids/N is gone): from then on the cluster treats it as dead."""
        wait_until(lambda: node_id not in self.live_brokers(), timeout, f"{node_id} to leave")

    def wait_isr(self, topic: str, partition: int, isr: set[int], timeout: float = 30.0) -> None:
        wait_until(
            lambda: set(self.isr_of(topic, partition)) == isr,
            timeout,
            f"ISR of {topic}-{partition} to be {sorted(isr)}",
        )

    # -- topics --------------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        replication_factor: int = 3,
        config: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Creates the topic with the admin client and waits until every partition has a
        leader and a full ISR."""
        from confluent_kafka.admin import AdminClient

        from odradek.cli.ck import NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        futures = admin.create_topics(
            [NewTopic(name, partitions, replication_factor, config=dict(config or {}))],
            operation_timeout=timeout,
        )
        futures[name].result(timeout)
        for p in range(partitions):
            self.leader_of(name, p, timeout)
            self.wait_isr_size(name, p, replication_factor, timeout)

    def wait_isr_size(self, topic: str, partition: int, size: int, timeout: float = 30.0) -> None:
        def full() -> bool:
            return len(self.isr_of(topic, partition)) == size

        wait_until(full, timeout, f"an ISR of {size} for {topic}-{partition}")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
