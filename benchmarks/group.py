"""Consumer group timing: three confluent-kafka consumers subscribe to a 6-partition
topic; prints the time until the group settled (every partition assigned), and after one
member leaves (close -> LeaveGroup) the time until the other two own all partitions.

Run by `make bench` after run.py; `--bootstrap HOST:PORT` measures a running broker.
Every wait is bounded; the broker this script starts is stopped by PID.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_broker import given_or_started

PARTITIONS = 6
WAIT_S = 30.0


class Member(threading.Thread):
    """One consumer polling in its own thread; records its current assignment."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        super().__init__(daemon=True)
        self.owned: set[int] = set()
        self.stop_event = threading.Event()
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 300,
            }
        )
        self.consumer.subscribe(
            [topic],
            on_assign=lambda _c, parts: self.owned.update(p.partition for p in parts),
            on_revoke=lambda _c, parts: self.owned.difference_update(p.partition for p in parts),
        )

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.consumer.poll(0.05)
        self.consumer.close()  # sends LeaveGroup


def wait_for(condition: Any, what: str) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < WAIT_S:
        if condition():
            return time.perf_counter() - start
        time.sleep(0.005)
    raise TimeoutError(f"{what} not within {WAIT_S} s")


def one_round(bootstrap: str) -> tuple[float, float]:
    topic, group = f"group-bench-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(WAIT_S)
    members = [Member(bootstrap, topic, group) for _ in range(3)]
    try:
        for member in members:
            member.start()
        settled = wait_for(
            lambda: sorted(p for m in members for p in m.owned) == list(range(PARTITIONS)),
            "three consumers settling",
        )
        leaver, rest = members[0], members[1:]
        leaver.stop_event.set()
        leaver.join(WAIT_S)
        rebalanced = wait_for(
            lambda: sorted(p for m in rest for p in m.owned) == list(range(PARTITIONS)),
            "the remaining two owning every partition",
        )
        return settled, rebalanced
    finally:
        for member in members:
            member.stop_event.set()
        for member in members:
            member.join(WAIT_S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", help="a running broker on 127.0.0.1 (default: start one)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with given_or_started(args.bootstrap, "odradek-group-bench-") as bootstrap:
        # The first FindCoordinator creates __consumer_offsets: keep that out of the timing.
        one_round(bootstrap)
        rounds = [one_round(bootstrap) for _ in range(args.rounds)]
    settle = [r[0] * 1000 for r in rounds]
    leave = [r[1] * 1000 for r in rounds]
    print(f"\nconsumer group: 3 confluent-kafka consumers, {PARTITIONS} partitions")
    for label, values in (("subscribe -> settled", settle), ("one leaves -> rest own all", leave)):
        median, worst = statistics.median(values), max(values)
        print(f"  {label:28} median {median:6.0f} ms  max {worst:6.0f} ms  ({args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
