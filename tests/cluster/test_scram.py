"""SCRAM users in a ZooKeeper cluster: set through one broker, kept in ZooKeeper's
/config/users as Kafka keeps them (salted keys, no password, a change notification),
seen at once by the other broker, which then logs the user in on its SASL listener;
deleted through the other broker, refused everywhere."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from kazoo.client import KazooClient

from helpers import wait_until
from odradek.testing.cluster import Cluster
from odradek.testing.zookeeper import ZooKeeper

TIMEOUT_S = 30


@pytest.fixture
def cluster(zookeeper: ZooKeeper) -> Iterator[Cluster]:
    config = {"sasl.enabled.mechanisms": "SCRAM-SHA-256"}
    with Cluster(brokers=2, zookeeper=zookeeper, config=config, sasl_listener=True) as running:
        yield running


def _zk(cluster: Cluster) -> KazooClient:
    client = KazooClient(hosts=cluster.zookeeper_connect, timeout=10)
    client.start(timeout=10)
    return client


def _sasl_address(zk: KazooClient, node: int) -> str:
    """The SASL_PLAINTEXT endpoint broker `node` registered."""
    data, _ = zk.get(f"/brokers/ids/{node}")
    registration = json.loads(data)
    assert registration["listener_security_protocol_map"]["SASL_PLAINTEXT"] == "SASL_PLAINTEXT"
    endpoint = next(e for e in registration["endpoints"] if e.startswith("SASL_PLAINTEXT://"))
    return endpoint.partition("://")[2]


def _admin(cluster: Cluster, node: int) -> Any:
    return AdminClient({"bootstrap.servers": f"127.0.0.1:{cluster.brokers[node].port}"})


def _logs_in(address: str, password: str) -> bool:
    errors: list[KafkaError] = []
    producer = Producer(
        {
            "bootstrap.servers": address,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": "frank",
            "sasl.password": password,
            "error_cb": errors.append,
            "reconnect.backoff.ms": 1000,
        }
    )
    try:
        producer.list_topics(timeout=3)
        return True
    except KafkaException:
        return False


def test_scram_users_live_in_zookeeper_and_log_in_on_every_broker(cluster: Cluster) -> None:
    """Set on broker 1, stored in /config/users/frank in Kafka's form, usable on broker 2;
    deleted on broker 2, refused on broker 1."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096)
    upsert = UserScramCredentialUpsertion("frank", info, b"frank-pw", os.urandom(16))
    admin1, admin2 = _admin(cluster, 1), _admin(cluster, 2)  # kept alive for their futures
    for future in admin1.alter_user_scram_credentials([upsert]).values():
        future.result(TIMEOUT_S)
    zk = _zk(cluster)
    try:
        data, _ = zk.get("/config/users/frank")
        assert b"frank-pw" not in data
        stored = json.loads(data)["config"]["SCRAM-SHA-256"]
        assert set(dict(p.split("=", 1) for p in stored.split(","))) == {
            "salt",
            "stored_key",
            "server_key",
            "iterations",
        }
        notices = [
            json.loads(zk.get(f"/config/changes/{c}")[0])
            for c in zk.get_children("/config/changes")
        ]
        assert {"version": 2, "entity_path": "users/frank"} in notices
        second, first = _sasl_address(zk, 2), _sasl_address(zk, 1)
        assert second == f"127.0.0.1:{cluster.sasl_ports[2]}"
    finally:
        zk.stop()
        zk.close()
    wait_until(lambda: _logs_in(second, "frank-pw"), TIMEOUT_S, what="frank on broker 2")
    assert not _logs_in(second, "wrong")
    deletion = UserScramCredentialDeletion("frank", ScramMechanism.SCRAM_SHA_256)
    for future in admin2.alter_user_scram_credentials([deletion]).values():
        future.result(TIMEOUT_S)
    wait_until(lambda: not _logs_in(first, "frank-pw"), TIMEOUT_S, what="frank gone on broker 1")
