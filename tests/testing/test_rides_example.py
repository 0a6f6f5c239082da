"""examples/rides against the `kafka_broker` fixture: the per-city statistics and the
alerts it computes match the events its trip services published."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from odradek.testing import Broker

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from examples.rides.alerts import check  # noqa: E402
from examples.rides.events import TripEvent  # noqa: E402
from examples.rides.run import Settings, run  # noqa: E402


def _settings(bootstrap: str) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    return Settings(
        bootstrap=bootstrap,
        trips_topic=f"trip-events-{suffix}",
        stats_topic=f"city-stats-{suffix}",
        alerts_topic=f"ride-alerts-{suffix}",
        stats_group=f"city-stats-{suffix}",
        alerts_group=f"anomaly-alerts-{suffix}",
    )


def _expected_stats(events: list[TripEvent]) -> dict[str, tuple[int, int, int, float]]:
    kinds: Counter[tuple[str, str]] = Counter((e.city, e.kind) for e in events)
    revenue: Counter[str] = Counter()
    for e in events:
        if e.kind == "completed":
            revenue[e.city] += e.fare
    cities = {e.city for e in events}
    return {
        c: (
            kinds[c, "requested"],
            kinds[c, "completed"],
            kinds[c, "cancelled"],
            round(revenue[c], 2),
        )
        for c in cities
    }


def _latest_per_key(bootstrap: str, topic: str) -> dict[str, dict[str, float]]:
    """The newest value per key in `topic`, read to its end (end-of-partition event, so
    transaction markers after the last record do not matter)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "check", "enable.partition.eof": True}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    latest: dict[str, dict[str, float]] = {}
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return latest
                continue
            latest[msg.key().decode()] = json.loads(msg.value())
    finally:
        consumer.close()
    raise AssertionError(f"{topic} not read to its end within 20 s")


def test_rides_statistics_and_alerts_are_right(kafka_broker: Broker) -> None:
    settings = _settings(kafka_broker.bootstrap_servers)
    report = run(settings, seconds=2.0, rate=150.0, seed=11)

    events = [e for sim in report.published for e in sim.events]
    assert len(events) > 200
    assert len({e.event_id for e in events}) == len(events)

    # every event counted exactly once, through a rebalance of the city-stats group
    actual = {
        city: (s.requested, s.completed, s.cancelled, round(s.revenue, 2))
        for city, s in report.cities.items()
    }
    expected = _expected_stats(events)
    assert (
        actual.keys() == expected.keys() == {"oslo", "berlin", "lisbon", "nyc", "austin", "denver"}
    )
    for city in expected:
        assert actual[city][:3] == expected[city][:3], city
        assert actual[city][3] == pytest.approx(expected[city][3], abs=0.05), city

    # one alert per injected anomaly, with the right rule, and nothing else
    injected = {trip: kind for sim in report.published for trip, kind in sim.anomalies.items()}
    assert injected, "the seed should inject some anomalies"
    assert {a.trip_id: a.rule for a in report.alerts} == injected
    assert all(check(e) is None for e in events if e.trip_id not in injected)

    # the third consumer joined and got partitions: the group rebalanced
    assert any(line.startswith("stats-3: assigned partitions [") for line in report.rebalances)
    assert not any(line == "stats-3: assigned partitions []" for line in report.rebalances)

    # the compacted city-stats topic holds the latest figures per city
    published = _latest_per_key(settings.bootstrap, settings.stats_topic)
    assert {c: int(v["completed"]) for c, v in published.items()} == {
        c: s.completed for c, s in report.cities.items()
    }


def test_rides_runs_with_one_command(kafka_broker: Broker) -> None:
    """`python -m examples.rides --bootstrap ... --seconds 1` from the repository root."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "examples.rides",
            "--bootstrap",
            kafka_broker.bootstrap_servers,
            "--seconds",
            "1",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    assert "trip events published and consumed" in result.stdout
    assert "stats-3: assigned partitions" in result.stdout
    assert "alerts:" in result.stdout


def test_ride_counter_counts_every_event_once_across_kills(kafka_broker: Broker) -> None:
    """examples/rides/counter.py (chapter 11): killed with SIGKILL twice while it counts,
    then run until idle, its per-city figures in the compacted counts topic equal the
    figures computed from every published event, each counted once."""
    import os
    import signal
    import threading

    from examples.rides.services import run_trip_service

    settings = _settings(kafka_broker.bootstrap_servers)
    kafka_broker.create_topic(settings.trips_topic, 6)
    events = []
    for region, seed in (("eu", 3), ("us", 4)):
        sim = run_trip_service(
            settings.bootstrap, settings.trips_topic, "count", region, seed, threading.Event(), 600
        )
        events += sim.events
    counts_topic = f"ride-counts-{uuid.uuid4().hex[:8]}"
    argv = [
        sys.executable,
        "-m",
        "examples.rides.counter",
        "--bootstrap",
        settings.bootstrap,
        "--trips-topic",
        settings.trips_topic,
        "--counts-topic",
        counts_topic,
        "--group",
        f"ride-counter-{uuid.uuid4().hex[:8]}",
    ]
    for delay in (2.5, 1.5):
        counter = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
        try:
            time.sleep(delay)
        finally:
            os.kill(counter.pid, signal.SIGKILL)
            counter.wait(timeout=10)
    result = subprocess.run(
        [*argv, "--idle-exit", "3"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert f"events counted: {len(events)}" in result.stdout
    published = _latest_per_key(settings.bootstrap, counts_topic)
    expected = _expected_stats(events)
    assert published.keys() == expected.keys()
    for city, (requested, completed, cancelled, revenue) in expected.items():
        row = published[city]
        assert (row["requested"], row["completed"], row["cancelled"]) == (
            requested,
            completed,
            cancelled,
        ), city
        assert row["revenue"] == pytest.approx(revenue, abs=0.05), city
