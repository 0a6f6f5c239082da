"""The pytest plugin shipped with odradek, registered by the `pytest11` entry point: once
odradek is installed, every test can ask for a real Kafka-protocol broker.

Fixtures:

- `kafka_broker` (session scope): one broker per test session — per xdist worker under
  `pytest -n` — started on first use on a free 127.0.0.1 port with a temporary data
  directory, stopped at the end. Its properties come from the `odradek_broker_config`
  ini option (`key=value` lines). Has `.bootstrap_servers`.
- `kafka_topic` (function scope): a factory of fresh topics,
  `kafka_topic(partitions=3, config={"cleanup.policy": "compact"}) -> name`, created on
  `kafka_broker` (or on `broker=`) with a unique name.
- `kafka_broker_factory` (function scope): `kafka_broker_factory(config={...}) ->
  Broker` starts a broker of the test's own (another config, restarts, several brokers);
  every broker it started is stopped after the test. `tls=True` adds an SSL listener
  with a throwaway CA (`broker.ca`), `sasl_users={"alice": "pw"}` a SASL_PLAINTEXT
  listener (PLAIN, SCRAM-SHA-256/512; SASL_SSL too with `tls`);
  `broker.client_config("SASL_SSL", "alice")` is a client configuration for it.
- `kafka_cluster` (function scope): a replicated cluster of three broker processes of
  the test's own (`odradek.testing.cluster.Cluster`), coordinated by the session's
  ZooKeeper (`odradek_zookeeper`, session scope: one Java ZooKeeper server per session,
  started when a test first asks for a cluster; each cluster lives under a chroot of its
  own). Every process is stopped after the test. It needs Java and ZooKeeper's jars
  (Debian's `zookeeper` package). For failover tests:

  ```python
  def test_rides_survive_a_leader_crash(kafka_cluster):
      kafka_cluster.create_topic("rides", partitions=1, replication_factor=3,
                                 config={"min.insync.replicas": "2"})
      publish_rides(kafka_cluster.bootstrap_servers, "rides")      # acks=all
      kafka_cluster.kill(kafka_cluster.leader_of("rides", 0))      # kill -9
      assert count_rides(kafka_cluster.bootstrap_servers, "rides") == 100
  ```

Importing this module stays cheap: pytest imports it in every session of an environment
where odradek is installed, so the broker is imported only when a fixture needs it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from odradek.testing.broker import Broker
    from odradek.testing.cluster import Cluster
    from odradek.testing.zookeeper import ZooKeeper

CONFIG_INI = "odradek_broker_config"

# Friendlier defaults for tests than a production broker's: a new consumer group
# rebalances at once instead of waiting for more members.
TEST_DEFAULTS: dict[str, str] = {"group.initial.rebalance.delay.ms": "0"}
CLUSTER_BROKERS = 3
# A killed broker's ZooKeeper session, and so its partitions' leadership, ends this
# long after the kill: short, so failover tests wait seconds, not the default 6.
CLUSTER_SESSION_TIMEOUT_MS = 2000


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        CONFIG_INI,
        type="linelist",
        default=[],
        help="odradek: broker properties (key=value lines) of the kafka_broker fixture",
    )


def _ini_config(config: pytest.Config) -> dict[str, str]:
    properties: dict[str, str] = {}
    for line in config.getini(CONFIG_INI):
        key, sep, value = str(line).partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(f"{CONFIG_INI}: expected key=value, got {line!r}")
        properties[key.strip()] = value.strip()
    return properties


def _start(config: Mapping[str, Any], **security: Any) -> Broker:
    from odradek.testing.broker import Broker

    return Broker(config={**TEST_DEFAULTS, **config}, **security).start()


@pytest.fixture(scope="session")
def kafka_broker(pytestconfig: pytest.Config) -> Iterator[Broker]:
    """A real odradek broker shared by the whole session (one per xdist worker)."""
    broker = _start(_ini_config(pytestconfig))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_broker_factory(pytestconfig: pytest.Config) -> Iterator[Callable[..., Broker]]:
    """Starts brokers of this test's own: `kafka_broker_factory(config={...})`."""
    started: list[Broker] = []

    def factory(
        config: Mapping[str, Any] | None = None,
        *,
        tls: bool = False,
        sasl_users: Mapping[str, str] | None = None,
        ssl_client_auth: str = "requested",
    ) -> Broker:
        broker = _start(
            {**_ini_config(pytestconfig), **(config or {})},
            tls=tls,
            sasl_users=sasl_users,
            ssl_client_auth=ssl_client_auth,
        )
        started.append(broker)
        return broker

    try:
        yield factory
    finally:
        for broker in reversed(started):
            broker.stop()


_NOT_TOPIC_CHARS = re.compile(r"[^a-zA-Z0-9._-]+")


@pytest.fixture
def kafka_topic(request: pytest.FixtureRequest) -> Callable[..., str]:
    """Creates fresh topics: `kafka_topic(partitions=1, config=None, broker=None)`."""
    base = _NOT_TOPIC_CHARS.sub("-", request.node.name.removeprefix("test_"))[:40].strip("-.")

    def create(
        partitions: int = 1,
        config: Mapping[str, Any] | None = None,
        broker: Broker | None = None,
        prefix: str | None = None,
    ) -> str:
        target: Broker = broker or request.getfixturevalue("kafka_broker")
        name = f"{prefix or base or 'topic'}-{uuid.uuid4().hex[:10]}"
        return target.create_topic(name, partitions, config)

    return create


@pytest.fixture(scope="session")
def odradek_zookeeper() -> Iterator[ZooKeeper]:
    """One ZooKeeper server for the session's clusters, started on first use."""
    from odradek.testing.zookeeper import ZooKeeper

    with ZooKeeper() as server:
        yield server


@pytest.fixture
def kafka_cluster(odradek_zookeeper: ZooKeeper) -> Iterator[Cluster]:
    """Three brokers of this test's own in separate processes, replicating through the
    session's ZooKeeper; all stopped (by PID) and removed after the test."""
    from odradek.testing.cluster import Cluster

    cluster = Cluster(
        CLUSTER_BROKERS,
        config=TEST_DEFAULTS,
        zookeeper=odradek_zookeeper,
        session_timeout_ms=CLUSTER_SESSION_TIMEOUT_MS,
    )
    with cluster:
        yield cluster
