"""Online migration with confluent-kafka: two `group.protocol=classic` members consume a
group when a `group.protocol=consumer` member joins it. The group upgrades to a consumer
group (ListGroups type `consumer`; ConsumerGroupDescribe marks the classic members), the
three share the partitions and consumption goes on; when the consumer-protocol member
leaves, the group goes back to classic and the two classic members take every partition
again. Every member commits what it processed after each poll (manual commits), so no
record is consumed twice across the changes."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from odradek.testing import Broker
from tests.server.wire import WireClient, build, request_module

PARTITIONS = 4
WAIT_S = 90.0
GROUP = "mixed"


class Member:
    """A consumer of the group that commits after each poll that returned records."""

    def __init__(self, bootstrap: str, protocol: str) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": GROUP,
                "group.protocol": protocol,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "topic.metadata.refresh.interval.ms": 1000,
            }
        )
        self.consumer.subscribe([GROUP])
        self.values: list[bytes] = []
        self.errors: list[Any] = []

    def poll(self) -> None:
        from confluent_kafka import KafkaException

        messages = self.consumer.consume(100, 0.05)
        good = [m for m in messages if m.error() is None]
        self.errors += [m.error() for m in messages if m.error() is not None]
        if good:
            self.values += [m.value() for m in good]
            try:
                self.consumer.commit(asynchronous=False)
            except KafkaException as exc:
                self.errors.append(exc.args[0])

    def owned(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}


def _pump(members: list[Member], until: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for member in members:
            member.poll()
        if until():
            return
    owned = [sorted(m.owned()) for m in members]
    raise AssertionError(f"timed out waiting for {what}; owned {owned}")


def _split_among(members: list[Member]) -> Callable[[], bool]:
    """Every partition owned by exactly one of `members`, each owning some."""

    def split() -> bool:
        owned = [m.owned() for m in members]
        return all(owned) and sorted(p for o in owned for p in o) == list(range(PARTITIONS))

    return split


def _group_type(bootstrap: str) -> str:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups().result(10)
    types = {g.group_id: str(g.type).split(".")[-1].lower() for g in listed.valid}
    return types[GROUP]


def _member_types(broker: Broker) -> list[int]:
    """ConsumerGroupDescribe v1's member types, on the wire (0 classic, 1 consumer)."""
    with WireClient(broker.port) as client:
        body = build(
            request_module(69, 1).ConsumerGroupDescribeRequest,
            group_ids=(GROUP,),
            include_authorized_operations=False,
        )
        described = client.call(69, 1, body).groups[0]
    return sorted(int(m.member_type) for m in described.members)


def _produce(bootstrap: str, values: list[bytes]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    for i, value in enumerate(values):
        producer.produce(GROUP, value, partition=i % PARTITIONS)
    producer.flush(15)


def _seen(members: list[Member]) -> Counter[bytes]:
    return Counter(v for m in members for v in m.values)


def test_classic_group_upgrades_when_a_consumer_member_joins_and_downgrades_when_it_leaves() -> (
    None
):
    """Classic members split the partitions and consume; a consumer-protocol member
    joins: the group becomes a consumer group, the three split the partitions and
    consume the next records; it leaves: the group is classic again, the two classic
    members split everything and consume the last records. Every record is consumed
    exactly once."""
    from confluent_kafka.admin import AdminClient, NewTopic

    config = {
        "group.initial.rebalance.delay.ms": 0,
        "group.consumer.heartbeat.interval.ms": 500,
        "group.consumer.min.heartbeat.interval.ms": 100,
    }
    with Broker(config=config) as broker:
        bootstrap = broker.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(GROUP, PARTITIONS, 1)])[GROUP].result(15)
        classic = [Member(bootstrap, "classic") for _ in range(2)]
        everyone = list(classic)
        try:
            batches = [[f"{phase}-{i}".encode() for i in range(40)] for phase in "abc"]
            _pump(classic, _split_among(classic), "the classic members to split")
            assert _group_type(bootstrap) == "classic"
            _produce(bootstrap, batches[0])
            _pump(classic, lambda: set(batches[0]) <= set(_seen(classic)), "batch a")

            newcomer = Member(bootstrap, "consumer")
            everyone.append(newcomer)
            three = [*classic, newcomer]
            _pump(three, _split_among(three), "the three members to split")
            assert _group_type(bootstrap) == "consumer"
            assert _member_types(broker) == [0, 0, 1]
            _produce(bootstrap, batches[1])
            _pump(three, lambda: set(batches[1]) <= set(_seen(three)), "batch b")
            assert newcomer.values and all(m.values for m in classic)

            newcomer.consumer.close()
            _pump(classic, _split_among(classic), "the classic members to take all again")
            assert _group_type(bootstrap) == "classic"
            _produce(bootstrap, batches[2])
            _pump(classic, lambda: set(batches[2]) <= set(_seen(everyone)), "batch c")

            seen = _seen(everyone)
            assert set(seen) == {v for batch in batches for v in batch}
            assert [v for v, n in seen.items() if n > 1] == []
        finally:
            for member in everyone[:2]:
                member.consumer.close()
