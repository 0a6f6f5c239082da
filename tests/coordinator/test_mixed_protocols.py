"""A group whose members speak different protocols, as a migration would start with
confluent-kafka: two `group.protocol=classic` members hold a group when a
`group.protocol=consumer` member asks to join it. Online migration is not supported, so
the group keeps its protocol: the newcomer gets no partitions (its heartbeats are
GROUP_ID_NOT_FOUND, as Kafka answers when online upgrade is refused or disabled) and
the classic members are not disturbed: the group stays Stable with them, they keep
their partitions and consume every record."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from odradek.testing import Broker

PARTITIONS = 4
WAIT_S = 60.0


def _consumer(bootstrap: str, protocol: str) -> Any:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "mixed",
            "group.protocol": protocol,
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    consumer.subscribe(["mixed"])
    return consumer


def _pump(
    consumers: list[Any],
    seen: list[bytes],
    until: Callable[[], bool],
    what: str,
    errors: list[Any] | None = None,
) -> None:
    """Polls every consumer until `until()`: values into `seen`, errors into `errors`."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for consumer in consumers:
            for m in consumer.consume(100, 0.05):
                if m.error() is None:
                    seen.append(m.value())
                elif errors is not None:
                    errors.append(m.error())
        if until():
            return
    raise AssertionError(f"timed out waiting for {what}")


def _owned(consumer: Any) -> set[int]:
    return {tp.partition for tp in consumer.assignment()}


def _describe(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    return admin.describe_consumer_groups(["mixed"])["mixed"].result(10)


def test_consumer_protocol_member_cannot_take_over_a_live_classic_group() -> None:
    """The classic members split the partitions; the consumer-protocol member polls for
    several of its heartbeat intervals, gets a fatal error (GROUP_ID_NOT_FOUND) and
    nothing else, while the classic members keep their partitions in the same Stable
    group and consume every record produced."""
    from confluent_kafka import KafkaError, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    config = {"group.initial.rebalance.delay.ms": 0, "group.consumer.heartbeat.interval.ms": 500}
    config["group.consumer.min.heartbeat.interval.ms"] = 100
    with Broker(config=config) as broker:
        bootstrap = broker.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("mixed", PARTITIONS, 1)])["mixed"].result(15)
        classic = [_consumer(bootstrap, "classic") for _ in range(2)]
        seen: list[bytes] = []
        try:
            _pump(
                classic,
                seen,
                lambda: (
                    sorted(p for c in classic for p in _owned(c)) == list(range(PARTITIONS))
                    and all(_owned(c) for c in classic)
                ),
                "two classic members to split",
            )
            before = _describe(bootstrap)
            newcomer = _consumer(bootstrap, "consumer")
            classic_owned = [_owned(c) for c in classic]
            try:
                end = time.monotonic() + 3.0
                errors: list[Any] = []
                _pump([*classic, newcomer], seen, lambda: time.monotonic() > end, "3 s", errors)
                # librdkafka takes the refusal as fatal, as it does from Kafka.
                assert any(
                    e.code() == KafkaError._FATAL and "group id does not exist" in e.str()
                    for e in errors
                ), errors
                assert _owned(newcomer) == set()
                assert [_owned(c) for c in classic] == classic_owned
                after = _describe(bootstrap)
                assert str(after.state).split(".")[-1].upper() == "STABLE"
                assert len(after.members) == 2 and after.partition_assignor == (
                    before.partition_assignor
                )
                values = [f"v{i}".encode() for i in range(40)]
                producer = Producer({"bootstrap.servers": bootstrap})
                for i, value in enumerate(values):
                    producer.produce("mixed", value, partition=i % PARTITIONS)
                producer.flush(15)
                _pump(
                    [*classic, newcomer],
                    seen,
                    lambda: set(values) <= set(seen),
                    "the classic members to consume every record",
                )
                assert _owned(newcomer) == set()
            finally:
                newcomer.close()
        finally:
            for consumer in classic:
                consumer.close()
