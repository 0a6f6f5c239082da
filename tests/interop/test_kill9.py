"""kill -9 durability: a broker subprocess is SIGKILLed repeatedly under a continuous acks=all
producer and restarted on the same data directory and port; nothing it acknowledged may be
lost, moved or reordered."""

from __future__ import annotations

import statistics
import struct
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from helpers import (
    BrokerProcess,
    ck_consume_all,
    ck_produce,
    ck_producer_conf,
    ck_watermarks,
    wait_until,
)

PARTITIONS = 4
CYCLES = 8
ACKS_PER_CYCLE = 300
CYCLE_TIMEOUT_S = 15.0


class ContinuousProducer(threading.Thread):
    """Sends "seq" values round-robin over the partitions until stopped; records every
    delivery-report-acknowledged (partition, offset, value) and every failure."""

    def __init__(self, bootstrap: str, topic: str, idempotent: bool) -> None:
        super().__init__(daemon=True, name="kill9-producer")
        self.topic = topic
        self.conf = ck_producer_conf(
            bootstrap,
            **{
                "acks": "all",
                "enable.idempotence": idempotent,
                # Idempotence keeps order with 5 in flight; without it, 1 keeps retries in order.
                "max.in.flight.requests.per.connection": 5 if idempotent else 1,
                "linger.ms": 2,
                "message.timeout.ms": 30000,  # outlives a restart: retried, not dropped
                "retry.backoff.ms": 50,
                "retry.backoff.max.ms": 200,
                "reconnect.backoff.ms": 20,
                "reconnect.backoff.max.ms": 200,
                "socket.timeout.ms": 5000,
                "queue.buffering.max.messages": 2000,
            },
        )
        self.acked: list[tuple[int, int, bytes]] = []
        self.failed: list[tuple[bytes, str]] = []
        self.sent = 0
        self.stop_event = threading.Event()
        self.unflushed = -1
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def ack_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        with self.lock:
            if err is None:
                self.acked.append((msg.partition(), msg.offset(), msg.value()))
            else:
                self.failed.append((msg.value(), str(err)))

    def run(self) -> None:
        try:
            producer = Producer(self.conf)
            seq = 0
            while not self.stop_event.is_set():
                value = b"%010d" % seq
                try:
                    producer.produce(
                        self.topic,
                        value=value,
                        partition=seq % PARTITIONS,
                        on_delivery=self._on_delivery,
                    )
                except BufferError:
                    producer.poll(0.05)
                    continue
                seq += 1
                self.sent = seq
                producer.poll(0)
                if seq % 50 == 0:
                    producer.poll(0.005)
            self.unflushed = producer.flush(40)
        except BaseException as exc:
            self.error = exc


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
def test_kill9_loses_no_acknowledged_record(tmp_path: Path, idempotent: bool) -> None:
    """Under a continuous acks=all producer, the broker process is SIGKILLed and restarted
    on the same port and data dir CYCLES times. Afterwards every acknowledged record is at
    its acknowledged offset with its value, each partition's offsets run 0..n-1 with no
    gaps, acknowledged values are in send order, and no acknowledged value appears again at
    a later offset. A plain producer may leave an unacknowledged copy at an earlier offset
    (its at-least-once retry of a request whose response the kill swallowed); with
    idempotence every value is stored exactly once, because the restarted broker rebuilds
    the producer state and recognises the retries."""
    proc = BrokerProcess(data_dir=str(tmp_path / "data"), config={"num.partitions": 3})
    producer: ContinuousProducer | None = None
    restart_s: list[float] = []
    try:
        proc.start()
        topic = "kill9-topic"
        admin = AdminClient({"bootstrap.servers": proc.bootstrap_servers})
        admin.create_topics(
            [NewTopic(topic, PARTITIONS, 1, config={"segment.bytes": "65536"})],
            request_timeout=15,
        )[topic].result(20)

        producer = ContinuousProducer(proc.bootstrap_servers, topic, idempotent)
        producer.start()
        for cycle in range(CYCLES):
            target = producer.ack_count() + ACKS_PER_CYCLE
            wait_until(
                lambda target=target: producer.ack_count() >= target or producer.error,
                CYCLE_TIMEOUT_S,
                what=f"{ACKS_PER_CYCLE} more acks in cycle {cycle}",
            )
            assert producer.error is None, producer.error
            proc.kill9()
            restart_s.append(proc.start())
        # the producer resumes after the last restart
        target = producer.ack_count() + ACKS_PER_CYCLE
        wait_until(lambda: producer.ack_count() >= target, CYCLE_TIMEOUT_S, what="acks after")
        producer.stop_event.set()
        producer.join(timeout=60)
        assert not producer.is_alive(), "producer thread did not stop"
        assert producer.error is None, producer.error

        log = ck_consume_all(proc.bootstrap_servers, topic, range(PARTITIONS), timeout=60)
    finally:
        if producer is not None:
            producer.stop_event.set()
            producer.join(timeout=60)
        proc.kill9()
        proc.cleanup()

    acked = producer.acked
    by_partition: dict[int, dict[int, bytes | None]] = defaultdict(dict)
    positions: dict[bytes | None, list[tuple[int, int]]] = defaultdict(list)
    for r in log:
        assert r.offset not in by_partition[r.partition], f"offset {r.offset} read twice"
        by_partition[r.partition][r.offset] = r.value
        positions[r.value].append((r.partition, r.offset))

    lost = [(p, o, v) for p, o, v in acked if by_partition[p].get(o) != v]
    moved_later = [
        (v, (p, o), positions[v])
        for p, o, v in acked
        if any(pos != (p, o) and pos[1] > o for pos in positions[v])
    ]
    retried_copies = sum(len(positions[v]) - 1 for _p, _o, v in acked)
    restart_p50 = statistics.median(restart_s)
    print(
        f"acked lost: {len(lost)} of {len(acked)} over {CYCLES} cycles; "
        f"restart time p50/max {restart_p50 * 1000:.0f}/{max(restart_s) * 1000:.0f} ms; "
        f"sent {producer.sent}, failed {len(producer.failed)}, unflushed {producer.unflushed}, "
        f"unacked retry copies {retried_copies}"
    )
    assert not lost, f"{len(lost)} acknowledged records lost or changed, e.g. {lost[:5]}"
    for p, offsets in by_partition.items():
        assert sorted(offsets) == list(range(len(offsets))), f"partition {p} has offset gaps"
    for p in range(PARTITIONS):
        ack_offsets = [o for q, o, _v in acked if q == p]
        assert ack_offsets == sorted(set(ack_offsets)), f"partition {p}: acks not increasing"
        seqs = [int(v) for q, _o, v in sorted(acked, key=lambda a: a[1]) if q == p]
        assert seqs == sorted(seqs), f"partition {p}: acknowledged values out of send order"
    assert not moved_later, f"acknowledged values written again later: {moved_later[:5]}"
    assert producer.unflushed == 0, f"{producer.unflushed} messages never delivered"
    if idempotent:
        assert retried_copies == 0, f"{retried_copies} duplicates despite idempotence"
        stored = [v for r in log for v in [r.value]]
        assert len(stored) == len(set(stored)), "a value is stored twice"


@pytest.mark.parametrize("damage", ["partial-batch", "bad-crc", "zeros"])
def test_kill9_torn_tail_is_truncated(tmp_path: Path, damage: str) -> None:
    """After a kill -9 whose last write was torn (a batch cut short, a whole batch with a bad
    CRC, or a run of zero bytes from a preallocated/unwritten tail appended to the active
    segment), the restarted broker recovers like Kafka: it drops the invalid tail, keeps every
    complete batch before it, reports the same log end offset, and appends new records right
    after the last valid one."""
    proc = BrokerProcess(data_dir=str(tmp_path / "data"))
    topic = "torn-topic"
    try:
        proc.start()
        admin = AdminClient({"bootstrap.servers": proc.bootstrap_servers})
        admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=15)[topic].result(20)
        producer = Producer(ck_producer_conf(proc.bootstrap_servers, **{"linger.ms": 0}))
        before = []
        for i in range(5):  # five batches
            before += ck_produce(
                producer, topic, [{"partition": 0, "key": b"k", "value": b"v%d" % i}]
            )
        del producer
        assert [r.offset for r in before] == list(range(5))
        proc.kill9()

        segment = sorted((tmp_path / "data" / f"{topic}-0").glob("*.log"))[-1]
        data = segment.read_bytes()
        # the last batch: base offset (8 bytes) + batch length (4 bytes) + body
        last_start = 0
        pos = 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack_from(">i", data, pos + 8)
            last_start, pos = pos, pos + 12 + length
        assert pos == len(data), "segment does not end on a batch boundary"
        last = bytearray(data[last_start:])
        struct.pack_into(">q", last, 0, 5)  # as if it were the next batch, offset 5
        if damage == "partial-batch":
            tail = bytes(last[: len(last) // 2])
        elif damage == "bad-crc":
            last[-1] ^= 0xFF  # payload changed, CRC (at byte 17) no longer matches
            tail = bytes(last)
        else:
            tail = bytes(4096)
        with open(segment, "ab") as f:
            f.write(tail)

        proc.start()
        assert ck_watermarks(proc.bootstrap_servers, topic, [0]) == {0: (0, 5)}
        assert [
            (r.offset, r.value) for r in ck_consume_all(proc.bootstrap_servers, topic, [0])
        ] == [(r.offset, r.value) for r in before]
        producer = Producer(ck_producer_conf(proc.bootstrap_servers))
        after = ck_produce(producer, topic, [{"partition": 0, "value": b"after"}])
        assert [r.offset for r in after] == [5]
        got = ck_consume_all(proc.bootstrap_servers, topic, [0])
        assert [(r.offset, r.value) for r in got] == [(r.offset, r.value) for r in before] + [
            (5, b"after")
        ]
    finally:
        proc.kill9()
        proc.cleanup()
