"""Trip events and a seeded trip simulator.

Every trip is a `requested` event followed by either `completed` (with distance,
duration and fare) or `cancelled`. Events are JSON; the Kafka key is the city, so all the
events of one city land in one partition, in order.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Literal

Kind = Literal["requested", "completed", "cancelled"]

REGIONS: dict[str, tuple[str, ...]] = {
    "eu": ("oslo", "berlin", "lisbon"),
    "us": ("nyc", "austin", "denver"),
}

BASE_FARE = 3.0
CANCEL_RATE = 0.15
ANOMALY_RATE = 0.05


@dataclass(frozen=True)
class TripEvent:
    """One thing that happened to a trip. `run_id` tells runs apart in a shared topic."""

    run_id: str
    event_id: str
    trip_id: str
    city: str
    kind: Kind
    timestamp_ms: int
    distance_km: float = 0.0
    duration_min: float = 0.0
    fare: float = 0.0

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | None) -> TripEvent | None:
        """The event in `data`; None for anything else (a consumer skips it, instead of
        stopping at a record it cannot read)."""
        try:
            return cls(**json.loads(data or b""))
        except (ValueError, TypeError):
            return None


@dataclass
class Simulation:
    """What a simulator produced: the ground truth a test compares the consumers with."""

    events: list[TripEvent] = field(default_factory=list)
    anomalies: dict[str, str] = field(default_factory=dict)  # trip id -> injected kind


def simulate_trips(
    run_id: str, cities: tuple[str, ...], rng: random.Random, start_ms: int, sim: Simulation
) -> Iterator[TripEvent]:
    """Endless trips in `cities`: a few are in flight at any time, so the events of
    different trips interleave. About 5% of the completed trips are made anomalous
    (recorded in `sim.anomalies`)."""
    in_flight: list[tuple[str, str]] = []
    clock_ms = start_ms
    while True:
        clock_ms += rng.randint(50, 2000)
        if len(in_flight) < 3 or rng.random() < 0.5:
            trip = (uuid.UUID(int=rng.getrandbits(128)).hex[:12], rng.choice(cities))
            in_flight.append(trip)
            yield _event(sim, run_id, rng, trip, "requested", clock_ms)
            continue
        trip = in_flight.pop(rng.randrange(len(in_flight)))
        if rng.random() < CANCEL_RATE:
            yield _event(sim, run_id, rng, trip, "cancelled", clock_ms)
            continue
        distance = round(rng.uniform(1.0, 25.0), 2)
        duration = round(distance * rng.uniform(2.0, 4.0) + rng.uniform(0, 10), 1)
        fare = round(BASE_FARE + distance * rng.uniform(1.5, 2.5), 2)
        if rng.random() < ANOMALY_RATE:
            kind = rng.choice(("overcharge", "endless_trip", "phantom_trip"))
            sim.anomalies[trip[0]] = kind
            if kind == "overcharge":
                fare = round(distance * rng.uniform(20, 40), 2)
            elif kind == "endless_trip":
                duration = round(rng.uniform(200, 600), 1)
            else:
                distance = 0.0
        yield _event(sim, run_id, rng, trip, "completed", clock_ms, distance, duration, fare)


def _event(
    sim: Simulation,
    run_id: str,
    rng: random.Random,
    trip: tuple[str, str],
    kind: Kind,
    timestamp_ms: int,
    distance_km: float = 0.0,
    duration_min: float = 0.0,
    fare: float = 0.0,
) -> TripEvent:
    event = TripEvent(
        run_id=run_id,
        event_id=uuid.UUID(int=rng.getrandbits(128)).hex,
        trip_id=trip[0],
        city=trip[1],
        kind=kind,
        timestamp_ms=timestamp_ms,
        distance_km=distance_km,
        duration_min=duration_min,
        fare=fare,
    )
    sim.events.append(event)
    return event
