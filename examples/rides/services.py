"""The trip services: one producer per region, publishing its cities' trip events.

Each service owns its cities, so all the events of a city come from one producer and
(keyed by city) go to one partition: consumers see every trip's events in order.
"""

from __future__ import annotations

import random
import threading
import time

from confluent_kafka import KafkaError, Message, Producer

from .events import REGIONS, Simulation, simulate_trips


def run_trip_service(
    bootstrap: str,
    topic: str,
    run_id: str,
    region: str,
    seed: int,
    stop: threading.Event,
    max_events: int | None = None,
    events_per_second: float | None = None,
) -> Simulation:
    """Publishes trip events until `stop` is set or `max_events` were sent, at most
    `events_per_second` (None: as fast as the broker takes them). Returns what was
    published, once every event is acknowledged."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": f"trips-{region}",
            "acks": "all",
            "enable.idempotence": True,  # a retried send is never written twice
            "linger.ms": 5,
        }
    )
    failures: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err)

    sim = Simulation()
    rng = random.Random(f"{seed}-{region}")
    trips = simulate_trips(run_id, REGIONS[region], rng, int(time.time() * 1000), sim)
    started = time.monotonic()
    sent = 0
    while not stop.is_set() and (max_events is None or sent < max_events):
        event = next(trips)
        producer.produce(topic, key=event.city, value=event.to_json(), on_delivery=on_delivery)
        sent += 1
        producer.poll(0)  # serve delivery callbacks
        if events_per_second:
            ahead = sent / events_per_second - (time.monotonic() - started)
            if ahead > 0:
                stop.wait(ahead)
    if producer.flush(30) != 0 or failures:
        raise RuntimeError(f"trips-{region}: not every event was acknowledged: {failures}")
    return sim
