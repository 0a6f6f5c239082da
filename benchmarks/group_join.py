"""A member joining a busy consumer group, KIP-848 beside the classic protocol: three
confluent-kafka consumers read a 6-partition topic a producer writes to every 10 ms;
a fourth subscribes. Prints, per protocol, the time from the newcomer's subscribe (its
first JoinGroup or ConsumerGroupHeartbeat follows at once) to its first record, and the
longest pause the three others see in their records while it joins (until every
partition has one owner again, and at least 3 s), beside the longest pause they saw in
as long a window before it (at most the 3 s the settled group was left alone).

Protocols: `consumer` (KIP-848, `group.protocol=consumer`), `classic` (librdkafka's
default eager `range,roundrobin`: everyone gives everything back) and
`classic-cooperative` (`cooperative-sticky`). Client and broker settings are at their
defaults, so the KIP-848 figures include the broker's 5 s heartbeat interval.

Run by `make bench` after group.py; `--bootstrap HOST:PORT` measures a running broker.
Every wait is bounded; the broker this script starts is stopped by PID.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_broker import given_or_started

PARTITIONS = 6
PRODUCE_EVERY_S = 0.01
WAIT_S = 60.0
# The group settles this long before the join, and is watched this long after it.
QUIET_S = 3.0
PROTOCOLS: dict[str, dict[str, Any]] = {
    "consumer": {"group.protocol": "consumer"},
    "classic": {"group.protocol": "classic"},
    "classic-cooperative": {
        "group.protocol": "classic",
        "partition.assignment.strategy": "cooperative-sticky",
    },
}


class Member(threading.Thread):
    """One consumer polling in its own thread: when each record arrived, what it owns."""

    def __init__(self, bootstrap: str, topic: str, group: str, protocol: str) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.arrivals: list[float] = []
        self.owned: set[int] = set()
        self.subscribed_at = 0.0
        self.stop_event = threading.Event()
        conf = {"bootstrap.servers": bootstrap, "group.id": group, **PROTOCOLS[protocol]}
        self.consumer = Consumer(
            {**conf, "enable.auto.commit": False, "auto.offset.reset": "latest"}
        )

    def run(self) -> None:
        self.subscribed_at = time.perf_counter()
        self.consumer.subscribe([self.topic])
        while not self.stop_event.is_set():
            messages = self.consumer.consume(100, 0.01)
            now = time.perf_counter()
            self.arrivals += [now for m in messages if m.error() is None]
            self.owned = {tp.partition for tp in self.consumer.assignment()}
        self.consumer.close()

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time in [start, end] without a record arriving."""
        inside = [t for t in self.arrivals if start <= t <= end]
        marks = [start, *inside, end]
        return max(b - a for a, b in itertools.pairwise(marks))


class Writer(threading.Thread):
    """One record to every partition every PRODUCE_EVERY_S seconds."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.stop_event = threading.Event()
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})

    def run(self) -> None:
        while not self.stop_event.wait(PRODUCE_EVERY_S):
            for partition in range(PARTITIONS):
                self.producer.produce(self.topic, b"x", partition=partition)
            self.producer.poll(0)
        self.producer.flush(10)


@dataclass(frozen=True)
class JoinFigures:
    first_record_s: float  # newcomer's subscribe -> its first record
    pause_during_s: float  # the others' longest gap while it joins
    # The others' longest gap in as long a window before (at most the quiet time).
    pause_before_s: float


def wait_for(condition: Any, what: str) -> None:
    deadline = time.perf_counter() + WAIT_S
    while time.perf_counter() < deadline:
        if condition():
            return
        time.sleep(0.005)
    raise TimeoutError(f"{what} not within {WAIT_S} s")


def one_join(bootstrap: str, protocol: str, quiet_s: float = QUIET_S) -> JoinFigures:
    """Three members settle on a busy topic, a fourth joins; its figures."""
    topic, group = f"group-join-bench-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(WAIT_S)
    writer = Writer(bootstrap, topic)
    members = [Member(bootstrap, topic, group, protocol) for _ in range(3)]
    newcomer = Member(bootstrap, topic, group, protocol)
    everyone = [*members, newcomer]
    try:
        writer.start()
        for member in members:
            member.start()
        wait_for(
            lambda: (
                sorted(p for m in members for p in m.owned) == list(range(PARTITIONS))
                and all(m.arrivals for m in members)
            ),
            "three members settling and reading",
        )
        settled_at = time.perf_counter()
        time.sleep(quiet_s)
        newcomer.start()
        wait_for(lambda: bool(newcomer.arrivals), "the newcomer's first record")
        wait_for(
            lambda: sorted(p for m in everyone for p in m.owned) == list(range(PARTITIONS)),
            "four members owning every partition once",
        )  # sorted with repeats: two members owning one partition do not match
        joined_at = time.perf_counter()
        time.sleep(quiet_s)
        start = newcomer.subscribed_at
        end = max(joined_at, start + quiet_s)
        return JoinFigures(
            newcomer.arrivals[0] - start,
            max(m.longest_gap(start, end) for m in members),
            max(m.longest_gap(max(settled_at, start - (end - start)), start) for m in members),
        )
    finally:
        for thread in (*everyone, writer):
            thread.stop_event.set()
        for thread in (*everyone, writer):
            if thread.is_alive():
                thread.join(WAIT_S)


def report(figures: dict[str, list[JoinFigures]]) -> None:
    print(f"\na fourth member joins 3 busy confluent-kafka consumers, {PARTITIONS} partitions")
    for protocol, rounds in figures.items():
        for label, values in (
            ("subscribe -> first record", [r.first_record_s for r in rounds]),
            ("others' longest pause, join", [r.pause_during_s for r in rounds]),
            ("others' longest pause, before", [r.pause_before_s for r in rounds]),
        ):
            ms = [v * 1000 for v in values]
            print(
                f"  {protocol:20} {label:30} median {statistics.median(ms):6.0f} ms"
                f"  max {max(ms):6.0f} ms  ({len(ms)} rounds)"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", help="a running broker on 127.0.0.1 (default: start one)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[JoinFigures]] = {p: [] for p in PROTOCOLS}
    with given_or_started(args.bootstrap, "odradek-group-join-bench-") as bootstrap:
        # The first group creates __consumer_offsets: keep that out of the timing.
        one_join(bootstrap, "classic", quiet_s=0.5)
        for _ in range(args.rounds):
            for protocol in PROTOCOLS:  # alternating, so load hits each alike
                figures[protocol].append(one_join(bootstrap, protocol))
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
