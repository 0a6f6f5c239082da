"""confluent-kafka consumers with `group.protocol=consumer` (KIP-848) against the broker:
three members split the partitions; one leaves, one joins, one crashes (SIGKILL of a
consumer process); each time the group settles on a full, disjoint split, every record
produced is consumed, and the members the change does not touch keep consuming their
partitions meanwhile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from odradek.testing import Broker
from tests.coordinator.kip848_consumer import Kip848Consumer
from tests.server.wire import WireClient, build, request_module

PARTITIONS = 6
SESSION_MS = 4000
CONFIG = {
    "num.partitions": PARTITIONS,
    "group.consumer.heartbeat.interval.ms": 300,
    "group.consumer.min.heartbeat.interval.ms": 100,
    "group.consumer.session.timeout.ms": SESSION_MS,
    "group.consumer.min.session.timeout.ms": 1000,
}
WAIT_S = 60.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def kip848_broker() -> Iterator[Broker]:
    with Broker(config=CONFIG) as broker:
        yield broker


class ProcessConsumer:
    """A consumer in its own process; its printed values are collected by a thread."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.coordinator.kip848_consumer", bootstrap, group, topic],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
        )
        self.values: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.values.append(line.strip())

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def _describe(bootstrap: str, group: str) -> Any:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    return admin.describe_consumer_groups([group])[group].result(10)


def _until(condition: Callable[[], bool], polling: list[Kip848Consumer], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for consumer in polling:
            consumer.poll(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}")


def _split(bootstrap: str, group: str, members: int) -> bool:
    """Whether the group is Stable with `members` members owning disjoint partitions
    that cover the topic."""
    description = _describe(bootstrap, group)
    if str(description.state).split(".")[-1].upper() != "STABLE":
        return False
    owned = [{tp.partition for tp in m.assignment.topic_partitions} for m in description.members]
    everything = set().union(*owned) if owned else set()
    return (
        len(owned) == members
        and sum(len(o) for o in owned) == PARTITIONS
        and everything == set(range(PARTITIONS))
    )


def _produce(bootstrap: str, topic: str, values: list[str]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    for i, value in enumerate(values):
        producer.produce(topic, value.encode(), partition=i % PARTITIONS)
    producer.flush(15)


def test_members_split_leave_join_and_crash(kip848_broker: Broker) -> None:
    """The whole scenario of the issue, with the epochs and split checked after each
    change through ConsumerGroupDescribe (AdminClient.describe_consumer_groups)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap, group, topic = kip848_broker.bootstrap_servers, "kip848", "events"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(15)
    a = Kip848Consumer(bootstrap, group, topic)
    b = Kip848Consumer(bootstrap, group, topic)
    c = ProcessConsumer(bootstrap, group, topic)
    local = [a, b]
    seen = lambda: {v for x in (*local, c) for v in x.values}  # noqa: E731
    try:
        # The clients apply what the group's Stable state says at their next poll.
        _until(
            lambda: _split(bootstrap, group, 3) and a.partitions() and b.partitions(),
            local,
            "three members to split",
        )
        assert len(a.partitions()) == 2 and len(b.partitions()) == 2
        assert a.partitions().isdisjoint(b.partitions())

        first = [f"one-{i}" for i in range(60)]
        _produce(bootstrap, topic, first)
        _until(lambda: {v.encode() for v in first} <= seen(), local, "the first records")

        a.close()  # leaves (epoch -1): b and the process take its partitions
        local = [b]
        _until(lambda: _split(bootstrap, group, 2), local, "two members after a leave")
        second = [f"two-{i}" for i in range(60)]
        _produce(bootstrap, topic, second)
        _until(lambda: {v.encode() for v in second} <= seen(), local, "records after a leave")

        d = Kip848Consumer(bootstrap, group, topic)
        local = [b, d]
        _until(lambda: _split(bootstrap, group, 3), local, "three members after a join")

        c.kill()
        killed_at = time.monotonic()
        before = len(b.values) + len(d.values)
        third = [f"three-{i}" for i in range(60)]
        _produce(bootstrap, topic, third)
        # The survivors keep consuming their own partitions before the crash is noticed.
        _until(lambda: len(b.values) + len(d.values) > before, local, "survivors to consume")
        assert time.monotonic() - killed_at < SESSION_MS / 1000
        _until(lambda: _split(bootstrap, group, 2), local, "the crashed member fenced")
        _until(lambda: {v.encode() for v in third} <= seen(), local, "records after a crash")
        assert {v.encode() for v in third} <= {v for x in local for v in x.values}
    finally:
        if c.proc.poll() is None:
            c.kill()
        for consumer in local:
            consumer.close()


def _group_epochs(broker: Broker, group: str) -> tuple[int, dict[str, int]]:
    """The group epoch and each member's epoch, from ConsumerGroupDescribe on the wire."""
    with WireClient(broker.port) as client:
        body = build(
            request_module(69, 0).ConsumerGroupDescribeRequest,
            group_ids=(group,),
            include_authorized_operations=False,
        )
        described = client.call(69, 0, body).groups[0]
    return described.group_epoch, {m.member_id: m.member_epoch for m in described.members}


def test_restart_keeps_members_and_epochs() -> None:
    """After a broker restart the group is replayed from `__consumer_offsets`: the
    members carry on with their epochs (no rejoin, so no new group epoch) and consume
    what is produced after the restart."""
    from confluent_kafka.admin import AdminClient, NewTopic

    with Broker(config=CONFIG) as broker:
        bootstrap, group, topic = broker.bootstrap_servers, "kip848-restart", "restarted"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(15)
        members = [Kip848Consumer(bootstrap, group, topic) for _ in range(2)]
        try:
            _until(
                lambda: _split(bootstrap, group, 2) and all(m.partitions() for m in members),
                members,
                "two members to split",
            )
            before = _group_epochs(broker, group)
            broker.restart()
            values = [f"after-{i}" for i in range(60)]
            _produce(bootstrap, topic, values)
            got = lambda: {v for m in members for v in m.values}  # noqa: E731
            _until(lambda: {v.encode() for v in values} <= got(), members, "records")
            assert _group_epochs(broker, group) == before
        finally:
            for m in members:
                m.close()


def test_static_member_restarting_gets_its_partitions_back(kip848_broker: Broker) -> None:
    """A consumer with `group.instance.id` closing (a static leave, epoch -2) and a new
    one with the same instance id: it gets the same partitions, and meanwhile the other
    member never gets them."""
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap, group, topic = kip848_broker.bootstrap_servers, "kip848-static", "static"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(15)
    one = Kip848Consumer(bootstrap, group, topic, instance_id="one")
    two = Kip848Consumer(bootstrap, group, topic, instance_id="two")
    members = [one, two]
    try:
        _until(
            lambda: _split(bootstrap, group, 2) and all(m.partitions() for m in members),
            members,
            "two static members to split",
        )
        mine, theirs = one.partitions(), two.partitions()
        one.close()
        members = [two]
        one = Kip848Consumer(bootstrap, group, topic, instance_id="one")
        members = [one, two]

        def back() -> bool:
            assert two.partitions() == theirs
            return one.partitions() == mine

        _until(back, members, "the static member's partitions back")
        _until(lambda: _split(bootstrap, group, 2) and back(), members, "a settled group")
    finally:
        for m in members:
            m.close()


def test_regex_subscription_picks_up_a_new_topic(kip848_broker: Broker) -> None:
    """A member subscribed to `^rides-.*` (librdkafka sends it as the heartbeat's
    subscribed_topic_regex) gets the matching topic, not the other one, and a matching
    topic created later reaches it through a heartbeat: its records are consumed too."""
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = kip848_broker.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def create(topic: str) -> None:
        admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(15)

    create("rides-paris")
    create("trips")
    member = Kip848Consumer(bootstrap, "by-regex", "^rides-.*")
    try:
        _produce(bootstrap, "rides-paris", ["paris-1", "paris-2"])
        _produce(bootstrap, "trips", ["trip-1"])
        _until(lambda: {b"paris-1", b"paris-2"} <= set(member.values), [member], "the first topic")
        create("rides-rome")
        _produce(bootstrap, "rides-rome", ["rome-1", "rome-2"])
        _until(lambda: {b"rome-1", b"rome-2"} <= set(member.values), [member], "the new topic")
        member.poll(0.5)
        assert sorted(member.values) == [b"paris-1", b"paris-2", b"rome-1", b"rome-2"]
        topics = {tp.topic for tp in member.consumer.assignment()}
        assert topics == {"rides-paris", "rides-rome"}
    finally:
        member.close()
