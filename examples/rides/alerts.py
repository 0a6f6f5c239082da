"""Consumer group `anomaly-alerts`: checks every completed trip and publishes an alert
for each suspicious one to the `ride-alerts` topic.

It is a group of its own, so it reads every trip event independently of `city-stats`:
each consumer group has its own committed offsets.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass

from confluent_kafka import Consumer, Producer

from .events import TripEvent

MAX_FARE_PER_KM = 10.0
MAX_DURATION_MIN = 180.0


@dataclass(frozen=True)
class Alert:
    trip_id: str
    city: str
    rule: str
    detail: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Alert:
        return cls(**json.loads(data))


def check(event: TripEvent) -> Alert | None:
    """The anomaly rules, applied to one event."""
    if event.kind != "completed":
        return None
    if event.distance_km < 0.1 and event.fare > 0:
        return Alert(event.trip_id, event.city, "phantom_trip", f"paid {event.fare} for 0 km")
    if event.fare / event.distance_km > MAX_FARE_PER_KM:
        per_km = event.fare / event.distance_km
        return Alert(event.trip_id, event.city, "overcharge", f"{per_km:.1f} per km")
    if event.duration_min > MAX_DURATION_MIN:
        return Alert(event.trip_id, event.city, "endless_trip", f"{event.duration_min} min")
    return None


class AlertCounter:
    """How many distinct events the alerting service has checked (for catching up)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def add(self, event_id: str) -> None:
        with self._lock:
            self._seen.add(event_id)

    @property
    def events_seen(self) -> int:
        with self._lock:
            return len(self._seen)


def run_alerts_consumer(
    bootstrap: str,
    topic: str,
    alerts_topic: str,
    group: str,
    run_id: str,
    counter: AlertCounter,
    stop: threading.Event,
) -> None:
    """Reads trip events, publishes an `Alert` (key = trip id) for every anomaly."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": "alerts",
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": "alerts"})
    consumer.subscribe([topic])
    try:
        while not stop.is_set():
            msg = consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            event = TripEvent.from_json(msg.value())
            if event is None or event.run_id != run_id:
                continue
            alert = check(event)
            if alert is not None:
                producer.produce(alerts_topic, key=alert.trip_id, value=alert.to_json())
                producer.flush(10)  # published before the event counts as handled
            counter.add(event.event_id)
    finally:
        producer.flush(10)
        consumer.close()
