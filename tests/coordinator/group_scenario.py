"""The consumer group scenario every client library runs against odradek: three
consumers split a 6-partition topic; records are delivered exactly once while a member
leaves, a member joins and a member crashes (SIGKILL: removed after its session
timeout); consumers restarted, and then a restarted broker, resume from the committed
offsets. Prints how long the group took to settle and to hand partitions over."""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.coordinator.group_clients import CLIENTS, GroupConsumer

PARTITIONS = 6
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
WAIT_S = 20.0


class Worker:
    """One consumer polling in a thread of its own, as applications run them (a blocking
    client's rebalance must not wait for the other consumers' polls)."""

    def __init__(self, factory: Callable[[], GroupConsumer], out: queue.Queue[bytes]) -> None:
        self._factory = factory
        self._out = out
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.error: BaseException | None = None
        # Read by the test thread; only the worker calls into the client (librdkafka's
        # assignment() blocks while another thread is in consume()).
        self.owned: set[tuple[str, int]] = set()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self._ready.wait(WAIT_S), "consumer did not start"
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            consumer = self._factory()
            self._ready.set()
            while not self._stop.is_set():
                for value in consumer.poll(0.05):
                    self._out.put(value)
                self.owned = consumer.assignment()
            consumer.close()
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    def assignment(self) -> set[tuple[str, int]]:
        if self.error is not None:
            raise AssertionError(f"consumer failed: {self.error!r}")
        return self.owned

    def close(self) -> None:
        self._stop.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "consumer did not close"


class Scenario:
    def __init__(
        self,
        client: str,
        broker: Any,
        topic: str,
        group: str,
        consumer_config: dict[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.consumer_config = consumer_config or {}
        self.broker = broker
        self.topic = topic
        self.group = group
        self.seen: collections.Counter[bytes] = collections.Counter()
        self.produced: set[bytes] = set()
        self.consumers: list[Worker] = []
        self.outside: queue.Queue[bytes] = queue.Queue()
        self.timings: dict[str, float] = {}

    # -- plumbing ----------------------------------------------------------------------
    def new_consumer(self, **extra: Any) -> Worker:
        bootstrap = self.broker.bootstrap_servers
        config = {**self.consumer_config, **extra}
        worker = Worker(
            lambda: CLIENTS[self.client](bootstrap, self.group, self.topic, **config),
            self.outside,
        )
        self.consumers.append(worker)
        return worker

    def produce(self, prefix: str, count: int = 60) -> set[bytes]:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.broker.bootstrap_servers})
        values = {f"{prefix}-{i}".encode() for i in range(count)}
        for i, value in enumerate(sorted(values)):
            producer.produce(self.topic, value, partition=i % PARTITIONS)
        assert producer.flush(15) == 0
        self.produced |= values
        return values

    def pump(
        self,
        done: Callable[[], bool],
        what: str,
        timeout: float = WAIT_S,
        start: float | None = None,
    ) -> float:
        """Collects what the consumers deliver until `done()`; returns the seconds since
        `start` (default: now)."""
        start = time.monotonic() if start is None else start
        while not done():
            if time.monotonic() - start > timeout:
                raise AssertionError(
                    f"{self.client}: timed out waiting for {what}; group "
                    f"{self.group_state()}, assignments {self.owned()}"
                )
            with contextlib.suppress(queue.Empty):
                self.seen[self.outside.get(timeout=0.01)] += 1
        return time.monotonic() - start

    def owned(self) -> list[set[tuple[str, int]]]:
        return [c.assignment() for c in self.consumers]

    def all_owned_by_consumers(self) -> bool:
        owned = self.owned()
        return all(owned) and sum(len(o) for o in owned) == PARTITIONS

    def consumed(self, values: set[bytes]) -> Callable[[], bool]:
        return lambda: all(self.seen[v] for v in values)

    def close_all(self) -> None:
        for consumer in self.consumers:
            consumer.close()
        self.consumers.clear()

    def generation(self) -> int:
        group = self.broker.broker.services.groups.groups.get(self.group)
        return int(group.generation) if group else -1

    def group_state(self) -> tuple[str, int]:
        groups = self.broker.broker.services.groups
        group = groups.groups.get(self.group)
        return (group.state.value, len(group.members)) if group else ("Dead", 0)

    # -- phases ------------------------------------------------------------------------
    def start_three(self) -> None:
        start = time.monotonic()
        for _ in range(3):
            self.new_consumer()
        self.timings["3 consumers subscribe -> settled"] = self.pump(
            self.all_owned_by_consumers, "three consumers to share the partitions", start=start
        )
        self.pump(self.consumed(self.produce("first")), "the first records")

    def one_leaves(self) -> None:
        self.consumers.pop(0).close()
        self.timings["one leaves -> rest own all"] = self.pump(
            self.all_owned_by_consumers, "two consumers to own every partition"
        )
        self.pump(self.consumed(self.produce("after-leave")), "records after a leave")

    def one_joins(self) -> None:
        start = time.monotonic()
        self.new_consumer()
        self.timings["one joins -> settled"] = self.pump(
            self.all_owned_by_consumers, "the new consumer to get partitions", start=start
        )
        self.pump(self.consumed(self.produce("after-join")), "records after a join")

    def one_crashes(self) -> None:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.coordinator.group_clients",
                self.client,
                self.broker.bootstrap_servers,
                self.group,
                self.topic,
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            text=True,
        )
        reader = threading.Thread(target=self._read_outside, args=(process,), daemon=True)
        reader.start()
        try:
            in_process = len(self.consumers)
            self.pump(
                lambda: (
                    self.group_state() == ("Stable", in_process + 1)
                    and sum(len(o) for o in self.owned()) < PARTITIONS
                    and all(self.owned())
                ),
                "the outside consumer to get partitions",
                timeout=30,
            )
            self.pump(self.consumed(self.produce("before-crash")), "records before the crash")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        self.timings["member killed -> rest own all (session 6 s)"] = self.pump(
            self.all_owned_by_consumers, "the crashed member's partitions to move", timeout=30
        )
        self.pump(self.consumed(self.produce("after-crash")), "records after the crash")

    def _read_outside(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.outside.put(line.strip().encode())

    def consumers_restart(self) -> None:
        self.close_all()
        for _ in range(2):
            self.new_consumer()
        self.pump(self.consumed(self.produce("after-consumer-restart")), "resumed consumers")

    def broker_restarts(self) -> None:
        self.close_all()
        self.broker.restart()
        for _ in range(2):
            self.new_consumer()
        self.pump(self.consumed(self.produce("after-broker-restart")), "after broker restart")

    def check_exactly_once(self) -> None:
        # A moment for any late duplicate to arrive.
        end = time.monotonic() + 1.0
        self.pump(lambda: time.monotonic() > end, "a quiet second")
        assert set(self.seen) == self.produced
        duplicates = {v: n for v, n in self.seen.items() if n != 1}
        assert duplicates == {}, f"{self.client}: delivered more than once: {duplicates}"

    def report(self) -> None:
        for what, seconds in self.timings.items():
            print(f"[{self.client}] {what}: {seconds * 1000:.0f} ms")


def prepare(broker: Any, topic: str, group: str) -> None:
    """Creates the topic; the first FindCoordinator creates __consumer_offsets, so that
    is not part of the timings."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(15)
    admin.describe_consumer_groups([group])[group].result(15)


def run(client: str, broker: Any, topic: str, group: str) -> Scenario:
    prepare(broker, topic, group)
    scenario = Scenario(client, broker, topic, group)
    try:
        scenario.start_three()
        scenario.one_leaves()
        scenario.one_joins()
        scenario.one_crashes()
        scenario.consumers_restart()
        scenario.broker_restarts()
        scenario.check_exactly_once()
    finally:
        scenario.report()
        scenario.close_all()
    return scenario
