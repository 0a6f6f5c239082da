"""A confluent-kafka consumer speaking the KIP-848 protocol (`group.protocol=consumer`)
for the consumer group tests: it commits what it processed after each poll. `python -m
tests.coordinator.kip848_consumer BOOTSTRAP GROUP TOPIC` runs one and prints each value
once committed (the member a test kills with SIGKILL)."""

from __future__ import annotations

import contextlib
import sys
from typing import Any


class Kip848Consumer:
    def __init__(
        self, bootstrap: str, group: str, topic: str, instance_id: str | None = None
    ) -> None:
        from confluent_kafka import Consumer

        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 1000,
        }
        if instance_id is not None:
            conf["group.instance.id"] = instance_id  # a static member (KIP-345)
        self.consumer = Consumer(conf)
        self.consumer.subscribe([topic])
        self.values: list[bytes] = []

    def poll(self, timeout: float = 0.05) -> list[bytes]:
        from confluent_kafka import KafkaException

        messages = [m for m in self.consumer.consume(100, timeout) if not m.error()]
        if messages:
            # Failing means no longer the owner: the next one reads these again.
            with contextlib.suppress(KafkaException):
                self.consumer.commit(asynchronous=False)
        values = [m.value() for m in messages]
        self.values += values
        return values

    def partitions(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}

    def close(self) -> None:
        self.consumer.close()


def main(argv: list[str]) -> Any:
    consumer = Kip848Consumer(*argv[:3])
    while True:
        for value in consumer.poll(0.1):
            print(value.decode(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
