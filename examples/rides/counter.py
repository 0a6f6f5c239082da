"""The ride counter: per-city trip counts and revenue, exactly once, with transactions.

    python -m examples.rides.counter --bootstrap 127.0.0.1:9092 [--idle-exit 5]

It reads `trip-events` in the consumer group `ride-counter` and keeps, per city, how many
trips were requested, completed and cancelled and the revenue. After each batch it
writes the new figures of the cities it touched to the compacted topic `ride-counts`
(key = city) and commits the batch's input offsets **in the same transaction**. So the
figures in `ride-counts` and the group's position move together or not at all: kill the
counter at any moment (even with SIGKILL) and start it again, and it carries on from the
last committed transaction, from figures that counted every event before that point once
— no event id bookkeeping needed, unlike `stats.py`.

At start, and whenever the group gives it partitions, it reloads its figures by reading
`ride-counts` to the end with isolation.level=read_committed: aborted (or unfinished)
transactions of an earlier run are invisible there.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from .events import TripEvent

T = 30.0  # seconds: bound on every client call


@dataclass
class CityCount:
    requested: int = 0
    completed: int = 0
    cancelled: int = 0
    revenue: float = 0.0

    def apply(self, event: TripEvent) -> None:
        if event.kind == "requested":
            self.requested += 1
        elif event.kind == "cancelled":
            self.cancelled += 1
        else:
            self.completed += 1
            self.revenue = round(self.revenue + event.fare, 2)

    @property
    def events(self) -> int:
        return self.requested + self.completed + self.cancelled


def create_counts_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    future = admin.create_topics([NewTopic(topic, 1, config={"cleanup.policy": "compact"})])
    try:
        future[topic].result(T)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def load_counts(bootstrap: str, topic: str) -> dict[str, CityCount]:
    """The newest committed figures per city in `topic` (read to its end)."""
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"ride-counts-loader-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    counts: dict[str, CityCount] = {}
    reader.assign([TopicPartition(topic, 0, 0)])
    deadline = time.monotonic() + T
    try:
        while time.monotonic() < deadline:
            message = reader.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return counts
                raise KafkaException(error)
            counts[message.key().decode()] = CityCount(**json.loads(message.value()))
    finally:
        reader.close()
    raise TimeoutError(f"could not read {topic} to its end within {T}s")


class Counter:
    """The consume-transform-produce loop; `run` returns when idle for `idle_exit` s."""

    def __init__(self, bootstrap: str, trips: str, counts: str, group: str) -> None:
        self.bootstrap, self.trips_topic, self.counts_topic = bootstrap, trips, counts
        self.counts: dict[str, CityCount] = {}
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6000,
                # A restarted counter takes over its predecessor's membership at once.
                "group.instance.id": f"{group}-1",
            }
        )
        # One transactional id per counter instance: a restarted counter fences the old
        # one (if it is only paused, not dead, it can commit nothing any more).
        self.producer = Producer(
            {"bootstrap.servers": bootstrap, "transactional.id": f"{group}-1", "linger.ms": 5}
        )

    def _reload(self, _consumer: Consumer, _partitions: list[TopicPartition]) -> None:
        self.counts = load_counts(self.bootstrap, self.counts_topic)

    def run(self, idle_exit: float | None) -> None:
        self.producer.init_transactions(T)
        self.consumer.subscribe([self.trips_topic], on_assign=self._reload)
        last = time.monotonic()
        try:
            while idle_exit is None or time.monotonic() - last < idle_exit:
                batch = [m for m in self.consumer.consume(500, 0.5) if m.error() is None]
                if batch:
                    self._process(batch)
                    last = time.monotonic()
        finally:
            self.consumer.close()

    def _process(self, batch: Sequence[object]) -> None:
        touched: set[str] = set()
        for message in batch:
            event = TripEvent.from_json(message.value())  # type: ignore[attr-defined]
            if event is not None:
                self.counts.setdefault(event.city, CityCount()).apply(event)
                touched.add(event.city)
        self.producer.begin_transaction()
        for city in sorted(touched):
            value = json.dumps(asdict(self.counts[city]))
            self.producer.produce(self.counts_topic, key=city, value=value)
        self.producer.send_offsets_to_transaction(
            self.consumer.position(self.consumer.assignment()),
            self.consumer.consumer_group_metadata(),
            T,
        )
        self.producer.commit_transaction(T)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.rides.counter", description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--trips-topic", default="trip-events")
    parser.add_argument("--counts-topic", default="ride-counts")
    parser.add_argument("--group", default="ride-counter")
    parser.add_argument("--idle-exit", type=float, help="stop after this many idle seconds")
    args = parser.parse_args(argv)
    create_counts_topic(args.bootstrap, args.counts_topic)
    counter = Counter(args.bootstrap, args.trips_topic, args.counts_topic, args.group)
    counter.run(args.idle_exit)
    print(f"{'city':8} {'requested':>9} {'completed':>9} {'cancelled':>9} {'revenue':>10}")
    for city, c in sorted(counter.counts.items()):
        print(f"{city:8} {c.requested:9} {c.completed:9} {c.cancelled:9} {c.revenue:10.2f}")
    print(f"events counted: {sum(c.events for c in counter.counts.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
