"""Client-side helpers for cluster tests: a producer that keeps sending in the background
and records every acknowledgement, a group member consuming in the background, and a
reader of whole partitions."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from odradek.testing.cluster import wait_until


@dataclass
class AckLog:
    """What the brokers acknowledged: value -> (partition, offset), and the failures."""

    acked: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    failed: dict[bytes, str] = field(default_factory=dict)
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


class BackgroundProducer:
    """An idempotent acks=all confluent-kafka producer sending `ride-N` records until
    stopped; every delivery report goes into `log`."""

    def __init__(self, bootstrap: str, topic: str, rate_per_s: float = 500.0, **extra: object):
        self.topic = topic
        self.log = AckLog()
        self._interval = 1.0 / rate_per_s
        self._stop = threading.Event()
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 1,
                "message.timeout.ms": 120_000,
                "retry.backoff.ms": 50,
                **extra,
            }
        )
        self._thread = threading.Thread(target=self._run, name="background-producer", daemon=True)

    def start(self) -> BackgroundProducer:
        self._thread.start()
        return self

    def _delivered(self, err: KafkaError | None, msg: object) -> None:
        value = msg.value()  # type: ignore[attr-defined]
        with self.log.lock:
            if err is not None:
                self.log.failed[value] = str(err)
            else:
                self.log.acked[value] = (msg.partition(), msg.offset())  # type: ignore[attr-defined]

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            value = f"ride-{n}".encode()
            try:
                self._producer.produce(self.topic, value=value, on_delivery=self._delivered)
            except BufferError:
                self._producer.poll(0.05)
                continue
            n += 1
            self.log.sent = n
            self._producer.poll(0)
            time.sleep(self._interval)

    def stop_quietly(self) -> None:
        """Stops sending (after a failure elsewhere): no flush, no checks."""
        self._stop.set()
        self._thread.join(10)

    def stop(self, flush_timeout: float = 120.0) -> AckLog:
        self._stop.set()
        self._thread.join(10)
        remaining = self._producer.flush(flush_timeout)
        assert remaining == 0, f"{remaining} records never answered"
        return self.log


class GroupMember:
    """A confluent-kafka consumer of `topic` in `group`, polling in a thread and
    committing synchronously every 20 records; `config` adds to (or overrides) its
    settings. Errors polled and failed commits (a coordinator moving: the next commit
    retries) are kept in `errors`."""

    def __init__(self, bootstrap: str, group: str, topic: str, **config: Any) -> None:
        self.seen: list[bytes] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "topic.metadata.refresh.interval.ms": 1000,
                **config,
            }
        )
        self._consumer.subscribe([topic])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                self.errors.append(str(msg.error()))
                continue
            self.seen.append(msg.value())
            if len(self.seen) % 20 == 0:
                try:
                    self._consumer.commit(msg, asynchronous=False)
                except Exception as exc:
                    self.errors.append(str(exc))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


def read_partitions(
    bootstrap: str, topic: str, partitions: int, end_offsets: dict[int, int], timeout: float = 60
) -> dict[int, list[tuple[int, bytes]]]:
    """Every (offset, value) of each partition from the beginning up to its end offset."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"reader-{topic}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    records: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}

    def done() -> bool:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            records[msg.partition()].append((msg.offset(), msg.value()))
        return all(
            (records[p][-1][0] + 1 if records[p] else 0) >= end_offsets.get(p, 0)
            for p in range(partitions)
        )

    try:
        wait_until(done, timeout, f"reading {topic} to {end_offsets}", 0)
    finally:
        consumer.close()
    return records


def high_watermarks(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """Each partition's high watermark, asked of its leader."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"marks-{topic}"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


def check_acknowledged(log: AckLog, records: dict[int, list[tuple[int, bytes]]]) -> None:
    """Every acknowledged record is present exactly once, at the offset it was
    acknowledged with; offsets strictly increase."""
    seen: dict[bytes, tuple[int, int]] = {}
    for partition, entries in records.items():
        offsets = [o for o, _ in entries]
        assert offsets == sorted(set(offsets)), f"offsets out of order in {partition}"
        for offset, value in entries:
            assert value not in seen, f"{value!r} twice: {seen[value]} and {(partition, offset)}"
            seen[value] = (partition, offset)
    lost = {v: where for v, where in log.acked.items() if seen.get(v) != where}
    assert not lost, (
        f"{len(lost)} acknowledged records lost or moved, e.g. {list(lost.items())[:5]}"
    )
