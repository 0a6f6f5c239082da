"""Committed offsets and group metadata survive a kill -9 of the broker."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from helpers import BrokerProcess

TOPIC = "kill9-groups"
GROUP = "kill9-group"


def _consumer(bootstrap: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": GROUP,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )


def _read(consumer: Consumer, count: int) -> list[bytes]:
    values: list[bytes] = []
    for _ in range(200):
        for message in consumer.consume(count - len(values), 0.1):
            if not message.error():
                values.append(message.value())
        if len(values) >= count:
            break
    return values


def test_committed_offsets_survive_kill9(tmp_path: Path) -> None:
    """A group consumer commits after 60 of 100 records; the broker is SIGKILLed and
    restarted; a new consumer of the group resumes at offset 60 and the group is known."""
    proc = BrokerProcess(
        data_dir=str(tmp_path / "data"), config={"offsets.topic.num.partitions": 3}
    )
    try:
        proc.start()
        bootstrap = proc.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(20)
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        for i in range(100):
            producer.produce(TOPIC, b"%d" % i)
        assert producer.flush(20) == 0

        first = _consumer(bootstrap)
        first.subscribe([TOPIC])
        assert _read(first, 60) == [b"%d" % i for i in range(60)]
        first.commit(asynchronous=False)
        first.close()

        proc.kill9()
        proc.start()
        bootstrap = proc.bootstrap_servers
        committed = _consumer(bootstrap).committed([TopicPartition(TOPIC, 0)], timeout=20)
        assert committed[0].offset == 60
        second = _consumer(bootstrap)
        second.subscribe([TOPIC])
        assert _read(second, 40) == [b"%d" % i for i in range(60, 100)]
        second.close()
        admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive while it answers
        groups = admin.list_consumer_groups().result(20)
        assert GROUP in {g.group_id for g in groups.valid}
    finally:
        proc.kill9()
        proc.cleanup()
