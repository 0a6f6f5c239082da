"""The client side of each benchmark case, run by run.py in a child process.

    python bench_cases.py PARAMS.json RESULT.json

A child process per case keeps a hung client from hanging the whole run (run.py kills
the child after a hard wall-clock limit), and makes the client's CPU seconds easy to
count: os.times() of this process covers librdkafka's threads too.
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from bench_broker import cpu_seconds
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

# the producer settings of the shared yardstick (kbench ck-* cases)
THROUGHPUT_PRODUCER = {
    "acks": "all",
    "linger.ms": 5,
    "batch.size": 1_048_576,
    "batch.num.messages": 1_000_000,  # batches close on size, not on count
    "compression.type": "none",
    "enable.idempotence": False,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
}
# librdkafka's default fetch.queue.backoff.ms (1000) stalls fetching for a second each
# time the local queue is full, which measures the client; the yardstick uses 10 too
CONSUMER_QUEUE_BACKOFF_MS = 10
LATENCY_MAGIC = 0x6F6472616465  # "odrade"
LATENCY_HEADER = struct.Struct(">qqq")  # magic, sequence number, send time (perf_counter_ns)


def now() -> float:
    return time.perf_counter()


def process_cpu() -> float:
    t = os.times()
    return t.user + t.system


def error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 500 else text[:500] + "..."


def nearest_rank(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = math.ceil(q * len(sorted_values)) - 1
    return sorted_values[max(0, min(len(sorted_values) - 1, k))]


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


class CpuMeter:
    """CPU seconds used by this (client) process and by the broker over one phase."""

    def __init__(self, broker_pid: int | None) -> None:
        self.broker_pid = broker_pid
        self.client0 = process_cpu()
        self.broker0 = cpu_seconds(broker_pid)
        self.t0 = now()

    def read(self) -> dict[str, float | None]:
        """client_cpu_s and broker_cpu_s since construction, over cpu_wall_s seconds."""
        broker1 = cpu_seconds(self.broker_pid)
        broker = None
        if self.broker0 is not None and broker1 is not None:
            broker = round(broker1 - self.broker0, 2)
        return {
            "client_cpu_s": round(process_cpu() - self.client0, 2),
            "broker_cpu_s": broker,
            "cpu_wall_s": round(now() - self.t0, 3),
        }


# --------------------------------------------------------------------------- topics


def create_topic(bootstrap: str, name: str, partitions: int, timeout: float = 30.0) -> float:
    """Creates `name` with CreateTopics and waits until every partition has a leader."""
    t0 = now()
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "odradek-bench-admin"})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)], request_timeout=15.0
    )
    try:
        futures[name].result(timeout=20)
    except KafkaException as exc:
        err = exc.args[0] if exc.args else None
        if not (isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
            raise
    last = "no metadata yet"
    while now() - t0 < timeout:
        try:
            topic = admin.list_topics(topic=name, timeout=5).topics.get(name)
        except KafkaException as exc:
            last = error_text(exc)
        else:
            if topic is None:
                last = "topic missing from metadata"
            elif topic.error is not None:
                last = f"metadata error {topic.error}"
            elif len(topic.partitions) != partitions:
                last = f"{len(topic.partitions)} partitions in metadata, {partitions} created"
            elif any(p.leader < 0 for p in topic.partitions.values()):
                last = "a partition has no leader"
            else:
                return now() - t0
        time.sleep(0.1)
    raise RuntimeError(f"topic {name} not usable after {timeout:.0f} s: {last}")


# --------------------------------------------------------------------------- throughput


def produce_phase(p: dict[str, Any], topic: str) -> dict[str, Any]:
    size, count = p["size"], p["count"]
    state: dict[str, Any] = {"acked": 0, "errors": 0, "first_error": None}

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is None:
            state["acked"] += 1
        else:
            state["errors"] += 1
            if state["first_error"] is None:
                state["first_error"] = str(err)

    config = dict(THROUGHPUT_PRODUCER)
    config.update(
        {
            "bootstrap.servers": p["bootstrap"],
            "client.id": "odradek-bench-producer",
            "on_delivery": delivered,
        }
    )
    producer = Producer(config)
    producer.list_topics(topic=topic, timeout=10)  # connected, with metadata, before the clock
    payload = os.urandom(size)
    produce, poll = producer.produce, producer.poll
    sent, capped = 0, False
    meter = CpuMeter(p.get("broker_pid"))
    t0 = now()
    deadline = t0 + p["produce_max_s"]
    while sent < count:
        try:
            produce(topic, payload)
        except BufferError:  # local queue full: serve delivery reports, then retry
            poll(0.005)
            if now() > deadline:
                capped = True
                break
            continue
        sent += 1
        if not sent & 2047:
            poll(0)
            if now() > deadline:
                capped = True
                break
    t_loop = now()
    undelivered = producer.flush(p["flush_s"])
    t1 = now()
    cpu = meter.read()
    seconds = t1 - t0
    acked = state["acked"]
    problems = []
    if capped:
        problems.append(f"time cap: sent {sent} of {count} in {p['produce_max_s']:.0f} s")
    if state["errors"]:
        problems.append(f"{state['errors']} delivery errors, first: {state['first_error']}")
    if undelivered:
        problems.append(f"{undelivered} not acknowledged after {p['flush_s']:.0f} s flush")
    return {
        "status": "ok" if acked and not (state["errors"] or undelivered) else "fail",
        "note": "; ".join(problems) or None,
        "requested": count,
        "sent": sent,
        "msgs": acked,
        "bytes": acked * size,
        "seconds": round(seconds, 3),
        "send_loop_s": round(t_loop - t0, 3),
        "msgs_per_s": round(acked / seconds, 1) if seconds > 0 else None,
        "mb_per_s": round(acked * size / 1e6 / seconds, 2) if seconds > 0 else None,
        **cpu,
    }


def consume_phase(p: dict[str, Any], topic: str, expected: int) -> dict[str, Any]:
    size = p["size"]
    consumer = Consumer(
        {
            "bootstrap.servers": p["bootstrap"],
            # confluent-kafka requires a group.id; with assign() and no commits it is unused
            "group.id": f"{topic}-reader",
            "client.id": "odradek-bench-consumer",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "fetch.queue.backoff.ms": CONSUMER_QUEUE_BACKOFF_MS,
        }
    )
    msgs = nbytes = errors = out_of_order = wrong_size = first_batch = 0
    first_error = None
    last_offset: dict[int, int] = {}
    stop = None
    meter = CpuMeter(p.get("broker_pid"))
    t0 = now()
    t_first: float | None = None
    t_last = t0
    try:
        consumer.assign(
            [TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(p["partitions"])]
        )
        while msgs < expected:
            t = now()
            if t - t0 > p["consume_max_s"]:
                stop = f"time cap {p['consume_max_s']:.0f} s"
                break
            if t - t_last > p["idle_s"]:
                stop = f"nothing new for {p['idle_s']:.0f} s"
                break
            # consume() waits until it has num_messages or the timeout: ask only for what is left
            batch = consumer.consume(num_messages=min(20_000, expected - msgs), timeout=0.5)
            got = 0
            for m in batch:
                err = m.error()
                if err is not None:
                    errors += 1
                    first_error = first_error or str(err)
                    continue
                partition, offset = m.partition(), m.offset()
                if offset <= last_offset.get(partition, -1):
                    out_of_order += 1
                last_offset[partition] = offset
                value = m.value()
                length = len(value) if value is not None else 0
                if length != size:
                    wrong_size += 1
                nbytes += length
                got += 1
            if got:
                msgs += got
                t_last = now()
                if t_first is None:
                    t_first, first_batch = t_last, got
    finally:
        consumer.close()
    cpu = meter.read()
    problems = []
    if msgs != expected:
        problems.append(f"received {msgs} of {expected} acknowledged")
    if out_of_order:
        problems.append(f"{out_of_order} repeated or out-of-order offsets")
    if wrong_size:
        problems.append(f"{wrong_size} values of the wrong size")
    if errors:
        problems.append(f"{errors} consumer errors, first: {first_error}")
    if stop and problems:
        problems.append(f"stopped: {stop}")
    # steady rate: from the first delivered batch to the last message, that batch excluded,
    # so the start-up (ListOffsets, first fetch) is reported apart as first_msg_s
    if t_first is not None and msgs > first_batch and t_last > t_first:
        seconds = t_last - t_first
        counted = msgs - first_batch
    else:
        seconds = t_last - t0
        counted = msgs
    return {
        "status": "fail" if problems else "ok",
        "note": "; ".join(problems) or None,
        "msgs": msgs,
        "bytes": nbytes,
        "seconds": round(seconds, 3),
        "seconds_total": round(t_last - t0, 3),
        "first_msg_s": rounded(None if t_first is None else t_first - t0),
        "msgs_per_s": round(counted / seconds, 1) if seconds > 0 else None,
        "mb_per_s": round(counted * size / 1e6 / seconds, 2) if seconds > 0 else None,
        "msgs_per_s_incl_startup": round(msgs / (t_last - t0), 1) if t_last > t0 else None,
        **cpu,
    }


def throughput_case(p: dict[str, Any]) -> dict[str, Any]:
    topic = f"bench-{p['run_id']}-{p['case']}"
    out: dict[str, Any] = {"topic": topic, "partitions": p["partitions"], "size": p["size"]}
    out["create_topic_s"] = round(create_topic(p["bootstrap"], topic, p["partitions"]), 3)
    try:
        out["produce"] = produce_phase(p, topic)
    except Exception as exc:
        out["produce"] = {"status": "error", "note": error_text(exc), "msgs": 0}
        out["produce_traceback"] = traceback.format_exc()[-3000:]
    expected = out["produce"].get("msgs", 0)
    if not expected:
        out["consume"] = {"status": "skipped", "note": "nothing was acknowledged"}
    else:
        try:
            out["consume"] = consume_phase(p, topic, expected)
        except Exception as exc:
            out["consume"] = {"status": "error", "note": error_text(exc)}
            out["consume_traceback"] = traceback.format_exc()[-3000:]
    ok = all(out[k].get("status") == "ok" for k in ("produce", "consume"))
    out["status"] = "ok" if ok else "fail"
    return out


# --------------------------------------------------------------------------- latency


def latency_case(p: dict[str, Any]) -> dict[str, Any]:
    bootstrap, rate, seconds = p["bootstrap"], p["rate"], p["seconds"]
    size = 100
    total = int(rate * seconds)
    topic = f"bench-{p['run_id']}-{p['case']}"
    out: dict[str, Any] = {
        "topic": topic,
        "rate_per_s": rate,
        "seconds": seconds,
        "size": size,
        "warmup_s_excluded": p["warmup_s"],
        "producer": "acks=all, linger.ms=0 (as the yardstick)",
        "consumer": "manual assign, librdkafka defaults (fetch.wait.max.ms=500, fetch.min.bytes=1)",
    }
    out["create_topic_s"] = round(create_topic(bootstrap, topic, 1), 3)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "client.id": "odradek-bench-latency-consumer",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
        }
    )
    ack_ms: list[float] = []
    state: dict[str, Any] = {"errors": 0, "first_error": None}

    def delivered(err: KafkaError | None, msg: Any) -> None:
        if err is None:
            ack_ms.append(msg.latency() * 1000)
        else:
            state["errors"] += 1
            state["first_error"] = state["first_error"] or str(err)

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": "odradek-bench-latency-producer",
            "acks": "all",
            "linger.ms": 0,
            "enable.idempotence": False,
            "on_delivery": delivered,
        }
    )
    padding = b"\x00" * (size - LATENCY_HEADER.size)
    try:
        # the consumer must be fetching before the clock starts: wait for a marker message
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        producer.produce(topic, LATENCY_HEADER.pack(LATENCY_MAGIC, -1, 0) + padding)
        producer.flush(15)
        t_ready = now()
        ready = False
        while not ready and now() - t_ready < 20:
            ready = any(m.error() is None for m in consumer.consume(100, 0.2))
        out["consumer_ready_s"] = round(now() - t_ready, 3)
        if not ready:
            raise RuntimeError("the consumer did not receive the marker message within 20 s")
        ack_ms.clear()
        meter = CpuMeter(p.get("broker_pid"))
        late_ms: list[float] = []

        def send_on_schedule() -> None:
            interval = 1_000_000_000 // rate
            clock = time.perf_counter_ns
            start = clock() + 20_000_000
            for seq in range(total):
                due = start + seq * interval
                wait = due - clock()
                if wait > 0:
                    time.sleep(wait / 1e9)
                sent_at = clock()
                late_ms.append((sent_at - due) / 1e6)
                value = LATENCY_HEADER.pack(LATENCY_MAGIC, seq, sent_at) + padding
                try:
                    producer.produce(topic, value)
                except BufferError:
                    state["errors"] += 1
                producer.poll(0)
            producer.flush(30)

        sender = threading.Thread(target=send_on_schedule, daemon=True)
        t_start = now()
        sender.start()
        latency_ms: dict[int, float] = {}
        duplicates = 0
        deadline = t_start + seconds + p["drain_s"]
        clock = time.perf_counter_ns
        while len(latency_ms) < total and now() < deadline:
            m = consumer.poll(0.1)  # returns as soon as one message is there
            if m is None:
                continue
            received_at = clock()
            value = m.value()
            if m.error() is not None or value is None or len(value) < LATENCY_HEADER.size:
                continue
            magic, seq, sent_at = LATENCY_HEADER.unpack_from(value)
            if magic != LATENCY_MAGIC or seq < 0:
                continue
            if seq in latency_ms:
                duplicates += 1
            else:
                latency_ms[seq] = (received_at - sent_at) / 1e6
        sender.join(timeout=max(1.0, deadline - now() + 5))
        cpu = meter.read()
        wall = now() - t_start
    finally:
        consumer.close()
    skip = int(p["warmup_s"] * rate)
    values = sorted(v for seq, v in latency_ms.items() if seq >= skip)
    acks = sorted(ack_ms)
    late = sorted(late_ms[skip:])
    sent = len(late_ms)
    out.update(
        {
            "sent": sent,
            "received": len(latency_ms),
            "lost": sent - len(latency_ms),
            "duplicates": duplicates,
            "delivery_errors": state["errors"],
            "first_error": state["first_error"],
            "samples": len(values),
            "e2e_ms": {
                "p50": rounded(nearest_rank(values, 0.5)),
                "p99": rounded(nearest_rank(values, 0.99)),
                "p999": rounded(nearest_rank(values, 0.999)),
                "max": rounded(values[-1] if values else None),
                "mean": rounded(sum(values) / len(values) if values else None),
            },
            "ack_ms": {
                "p50": rounded(nearest_rank(acks, 0.5)),
                "p99": rounded(nearest_rank(acks, 0.99)),
                "max": rounded(acks[-1] if acks else None),
            },
            "send_late_ms": {
                "p50": rounded(nearest_rank(late, 0.5)),
                "p99": rounded(nearest_rank(late, 0.99)),
                "max": rounded(late[-1] if late else None),
            },
            "wall_s": round(wall, 3),
            **cpu,
        }
    )
    problems = []
    if sent < total:
        problems.append(f"sent {sent} of {total}")
    if out["lost"]:
        problems.append(f"{out['lost']} not received within {p['drain_s']:.0f} s")
    if duplicates:
        problems.append(f"{duplicates} duplicates")
    if state["errors"]:
        problems.append(f"{state['errors']} delivery errors, first: {state['first_error']}")
    if not values:
        problems.append("no samples")
    out["status"] = "fail" if problems else "ok"
    out["note"] = "; ".join(problems) or None
    return out


# --------------------------------------------------------------------------- entry point


def main(argv: list[str]) -> int:
    params_path, result_path = Path(argv[1]), Path(argv[2])
    params = json.loads(params_path.read_text())
    try:
        if params["kind"] == "throughput":
            result = throughput_case(params)
        elif params["kind"] == "latency":
            result = latency_case(params)
        else:
            raise ValueError(f"unknown case kind {params['kind']!r}")
    except Exception as exc:
        result = {
            "status": "error",
            "note": error_text(exc),
            "traceback": traceback.format_exc()[-3000:],
        }
    partial = result_path.with_suffix(".partial")
    partial.write_text(json.dumps(result))
    partial.replace(result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
