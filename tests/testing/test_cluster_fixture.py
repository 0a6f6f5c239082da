"""The `kafka_cluster` fixture as users meet it: a small test suite of their own, run by
`pytester` in a fresh pytest process with only the `pytest11` entry point, doing what a
failover test does (acks=all, kill -9 of the leader, read everything back)."""

from __future__ import annotations

import json
import os

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import json
import os
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition


def publish(bootstrap, topic, rides):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "message.timeout.ms": 60000})
    for ride in rides:
        producer.produce(topic, value=ride)
    assert producer.flush(60) == 0


def read_all(bootstrap, topic, expected):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "check"})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    values, deadline = [], time.monotonic() + 30
    while len(values) < expected and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            values.append(msg.value())
    consumer.close()
    return values


def record(cluster, label):
    line = {
        "label": label,
        "bootstrap": cluster.bootstrap_servers,
        "zookeeper": cluster.zookeeper.connect_string,
        "zookeeper_pid": cluster.zookeeper.pid,
        "chroot": cluster.chroot,
        "broker_pids": [b.pid for b in cluster.brokers.values()],
    }
    with open(os.environ["ODRADEK_RECORD"], "a") as file:
        file.write(json.dumps(line) + "\\n")


def test_no_cluster_code_loaded_before_a_cluster_is_asked_for():
    assert "odradek.testing.cluster" not in sys.modules
    assert "odradek.testing.zookeeper" not in sys.modules


def test_rides_survive_a_leader_crash(kafka_cluster):
    kafka_cluster.create_topic("rides", 1, 3, config={"min.insync.replicas": "2"})
    publish(kafka_cluster.bootstrap_servers, "rides", [b"ride-%d" % i for i in range(20)])
    leader = kafka_cluster.leader_of("rides", 0)
    kafka_cluster.kill(leader)
    kafka_cluster.wait_isr_size("rides", 0, 2, 30)
    assert kafka_cluster.leader_of("rides", 0) != leader
    publish(kafka_cluster.bootstrap_servers, "rides", [b"ride-%d" % i for i in range(20, 30)])
    assert read_all(kafka_cluster.bootstrap_servers, "rides", 30) == [
        b"ride-%d" % i for i in range(30)
    ]
    record(kafka_cluster, "failover")


def test_each_test_gets_a_cluster_of_its_own(kafka_cluster):
    assert len(kafka_cluster.brokers) == 3
    assert kafka_cluster.live_brokers() == [1, 2, 3]
    kafka_cluster.create_topic("rides", 1, 3)  # the same name as the other test's
    record(kafka_cluster, "second")
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(240)
def test_kafka_cluster_fixture(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets three brokers of its own on one ZooKeeper per session (chroots keep
    them apart); a leader kill loses no acks=all record; the plugin loads no cluster code
    until a test asks for a cluster; no process outlives the session."""
    pytester.makepyfile(test_user=USER_TESTS)
    records = pytester.path / "records.jsonl"
    monkeypatch.setenv("ODRADEK_RECORD", str(records))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    first, second = (json.loads(line) for line in records.read_text().splitlines())
    assert first["zookeeper"] == second["zookeeper"]
    assert first["zookeeper_pid"] == second["zookeeper_pid"]
    assert first["chroot"] != second["chroot"]
    assert set(first["bootstrap"].split(",")).isdisjoint(second["bootstrap"].split(","))
    pids = [first["zookeeper_pid"], *first["broker_pids"], *second["broker_pids"]]
    assert [pid for pid in pids if _alive(pid)] == []
