"""Runs the whole ride-hailing system against a broker and prints what it computed.

    python -m examples.rides --bootstrap 127.0.0.1:9092 --seconds 10

Creates the topics (if missing), starts the consumer groups, waits until they have their
partitions, runs the two trip services, adds a third `city-stats` consumer half-way
(a rebalance), waits until both groups have handled every event, then publishes the
per-city statistics and prints them with the alerts read back from `ride-alerts`.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from .alerts import Alert, AlertCounter, run_alerts_consumer
from .events import REGIONS, Simulation
from .services import run_trip_service
from .stats import CityStats, StatsStore, run_stats_consumer

CATCH_UP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Settings:
    """Where everything lives; tests use their own names."""

    bootstrap: str = "127.0.0.1:9092"
    trips_topic: str = "trip-events"
    stats_topic: str = "city-stats"
    alerts_topic: str = "ride-alerts"
    stats_group: str = "city-stats"
    alerts_group: str = "anomaly-alerts"
    partitions: int = 6


@dataclass
class Report:
    run_id: str
    published: list[Simulation]
    cities: dict[str, CityStats]
    alerts: list[Alert]
    rebalances: list[str] = field(default_factory=list)


def create_topics(settings: Settings) -> None:
    """`trip-events`: partitioned by city, kept 7 days; `city-stats`: compacted (the
    latest figures per city); `ride-alerts`: one partition, kept 30 days."""
    week_ms, month_ms = 7 * 24 * 3600 * 1000, 30 * 24 * 3600 * 1000
    topics = [
        NewTopic(settings.trips_topic, settings.partitions, config={"retention.ms": str(week_ms)}),
        NewTopic(settings.stats_topic, 1, config={"cleanup.policy": "compact"}),
        NewTopic(settings.alerts_topic, 1, config={"retention.ms": str(month_ms)}),
    ]
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    for name, future in admin.create_topics(topics, operation_timeout=10).items():
        try:
            future.result(timeout=15)
            print(f"created topic {name}")
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def read_alerts(settings: Settings, run_id_trips: set[str]) -> list[Alert]:
    """Everything in `ride-alerts` up to its end, for this run's trips, one per trip."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": "alerts-report"})
    _low, high = consumer.get_watermark_offsets(TopicPartition(settings.alerts_topic, 0), 10)
    consumer.assign([TopicPartition(settings.alerts_topic, 0, 0)])
    alerts: dict[str, Alert] = {}
    position, deadline = 0, time.monotonic() + 30
    while position < high and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error() is not None:
            continue
        position = msg.offset() + 1
        alert = Alert.from_json(msg.value())
        if alert.trip_id in run_id_trips:
            alerts[alert.trip_id] = alert
    consumer.close()
    return sorted(alerts.values(), key=lambda a: (a.city, a.trip_id))


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def run(
    settings: Settings,
    seconds: float | None = 10.0,
    events: int | None = None,
    rate: float = 50.0,
    seed: int = 7,
) -> Report:
    """Runs everything once: for `seconds` at `rate` events per second per service, or
    (`events` given) exactly `events` events per service as fast as possible."""
    run_id = uuid.uuid4().hex[:8]
    create_topics(settings)
    store, counter = StatsStore(), AlertCounter()
    stop_consumers, stop_services = threading.Event(), threading.Event()
    rebalances: list[str] = []
    pool = ThreadPoolExecutor(max_workers=8)
    consumers: list[Future[None]] = []

    def stats_consumer(name: str) -> threading.Event:
        ready = threading.Event()
        consumers.append(
            pool.submit(
                run_stats_consumer,
                name,
                settings.bootstrap,
                settings.trips_topic,
                settings.stats_group,
                run_id,
                store,
                stop_consumers,
                rebalances,
                ready,
            )
        )
        return ready

    first = [stats_consumer("stats-1"), stats_consumer("stats-2")]
    consumers.append(
        pool.submit(
            run_alerts_consumer,
            settings.bootstrap,
            settings.trips_topic,
            settings.alerts_topic,
            settings.alerts_group,
            run_id,
            counter,
            stop_consumers,
        )
    )
    if not all(ready.wait(30) for ready in first):
        raise TimeoutError("the city-stats group did not form")
    services = [
        pool.submit(
            run_trip_service,
            settings.bootstrap,
            settings.trips_topic,
            run_id,
            region,
            seed,
            stop_services,
            events,
            None if events else rate,
        )
        for region in REGIONS
    ]
    started = time.monotonic()
    if events is None:
        time.sleep((seconds or 0) / 2)
    else:
        _wait_for(lambda: store.events_seen > 0, 30)
    if not stats_consumer("stats-3").wait(30):  # scale out: the group rebalances
        raise TimeoutError("stats-3 got no partitions")
    if events is None:
        time.sleep(max(0.0, (seconds or 0) - (time.monotonic() - started)))
        stop_services.set()
    published = [service.result(timeout=120) for service in services]
    total = sum(len(sim.events) for sim in published)
    caught_up = _wait_for(
        lambda: store.events_seen >= total and counter.events_seen >= total, CATCH_UP_TIMEOUT_S
    )
    stop_consumers.set()
    for consumer in consumers:
        consumer.result(timeout=30)
    pool.shutdown()
    if not caught_up:
        raise TimeoutError(
            f"consumers handled {store.events_seen} and {counter.events_seen} of {total}"
        )
    store.publish(settings.bootstrap, settings.stats_topic)
    trips = {e.trip_id for sim in published for e in sim.events}
    return Report(run_id, published, store.cities, read_alerts(settings, trips), rebalances)


def print_report(report: Report) -> None:
    total = sum(len(sim.events) for sim in report.published)
    print(f"\nrun {report.run_id}: {total} trip events published and consumed")
    print("\nrebalances of the city-stats group:")
    for line in report.rebalances:
        print(f"  {line}")
    print(
        f"\n{'city':<8} {'requested':>9} {'completed':>9} {'cancelled':>9} "
        f"{'revenue':>10} {'avg fare':>8}"
    )
    for city, s in sorted(report.cities.items()):
        print(
            f"{city:<8} {s.requested:>9} {s.completed:>9} {s.cancelled:>9} "
            f"{s.revenue:>10.2f} {s.average_fare:>8.2f}"
        )
    print(f"\n{len(report.alerts)} alerts:")
    for alert in report.alerts:
        print(f"  {alert.city:<8} trip {alert.trip_id}  {alert.rule:<13} {alert.detail}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.rides", description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="broker address")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to publish")
    parser.add_argument("--rate", type=float, default=50.0, help="events/s per trip service")
    parser.add_argument("--events", type=int, help="publish exactly this many per service")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed")
    args = parser.parse_args(argv)
    settings = Settings(bootstrap=args.bootstrap)
    report = run(settings, seconds=args.seconds, events=args.events, rate=args.rate, seed=args.seed)
    print_report(report)
    return 0
