"""Consumer group `city-stats`: per-city trip statistics.

Several consumers share the work: the group gives each a share of the partitions, and
moves partitions when a consumer joins or leaves (a rebalance). Delivery is at least
once — after a rebalance a consumer may see events again that another consumer already
handled but had not committed — so the store counts every event id once.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass

from confluent_kafka import Consumer, Producer, TopicPartition

from .events import TripEvent


@dataclass
class CityStats:
    requested: int = 0
    completed: int = 0
    cancelled: int = 0
    revenue: float = 0.0
    distance_km: float = 0.0

    @property
    def average_fare(self) -> float:
        return self.revenue / self.completed if self.completed else 0.0


class StatsStore:
    """The statistics 'database' the consumers write to; idempotent by event id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self.cities: dict[str, CityStats] = {}

    def apply(self, event: TripEvent) -> None:
        with self._lock:
            if event.event_id in self._seen:
                return
            self._seen.add(event.event_id)
            stats = self.cities.setdefault(event.city, CityStats())
            if event.kind == "requested":
                stats.requested += 1
            elif event.kind == "cancelled":
                stats.cancelled += 1
            else:
                stats.completed += 1
                stats.revenue = round(stats.revenue + event.fare, 2)
                stats.distance_km = round(stats.distance_km + event.distance_km, 2)

    @property
    def events_seen(self) -> int:
        with self._lock:
            return len(self._seen)

    def publish(self, bootstrap: str, topic: str) -> None:
        """Writes the latest statistics of every city to `topic` (compacted, key =
        city): a reader of that topic finds the newest figures per city."""
        producer = Producer({"bootstrap.servers": bootstrap, "client.id": "city-stats"})
        with self._lock:
            for city, stats in sorted(self.cities.items()):
                producer.produce(topic, key=city, value=json.dumps(asdict(stats)))
        producer.flush(30)


def run_stats_consumer(
    name: str,
    bootstrap: str,
    topic: str,
    group: str,
    run_id: str,
    store: StatsStore,
    stop: threading.Event,
    log: list[str],
    ready: threading.Event | None = None,
) -> None:
    """One member of the `city-stats` group: polls until `stop` is set. Logs every
    assignment it gets (`log`), and sets `ready` at its first one."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": name,
            "auto.offset.reset": "earliest",
            "heartbeat.interval.ms": 500,  # notice a rebalance quickly
            "session.timeout.ms": 6000,
        }
    )

    def on_assign(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.append(f"{name}: assigned partitions {sorted(p.partition for p in partitions)}")
        if ready is not None:
            ready.set()

    def on_revoke(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if partitions:
            log.append(f"{name}: gives back {sorted(p.partition for p in partitions)}")

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    try:
        while not stop.is_set():
            msg = consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            event = TripEvent.from_json(msg.value())
            # the topic may hold other records, and events of earlier runs
            if event is not None and event.run_id == run_id:
                store.apply(event)
    finally:
        consumer.close()  # commits the offsets and leaves the group: a rebalance
