#!/usr/bin/env python3
"""Transactions: a confluent-kafka transactional producer (1 KiB records, 1,000 records per
transaction) against the idempotent producer in the same sitting; commit latency p50/p99;
read_committed consume throughput against read_uncommitted over the same data. Prints a
table; asserts nothing. Targets (docs/transactions.md): transactional >= 0.7x idempotent,
read_committed >= 0.9x read_uncommitted.

    .venv/bin/python benchmarks/transactions.py [--records 200000] [--rounds 3]
    .venv/bin/python benchmarks/transactions.py --bootstrap 127.0.0.1:9092

Run by `make bench`; the broker it starts (all defaults) is stopped by PID, and every wait
is bounded.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_broker import given_or_started, read_from_start

PARTITIONS = 3
PER_TXN = 1000
VALUE = b"x" * 1024
WAIT_S = 120.0


def create_topic(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(WAIT_S)


def produce(
    bootstrap: str, topic: str, records: int, transactional: bool
) -> tuple[float, list[float]]:
    """Seconds to write `records`, and each commit's latency in seconds (transactional)."""
    config = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    if transactional:
        config["transactional.id"] = f"bench-{uuid.uuid4().hex[:8]}"
    producer = Producer(config)
    if transactional:
        producer.init_transactions(WAIT_S)
    commits: list[float] = []
    started = time.perf_counter()
    for first in range(0, records, PER_TXN):
        if transactional:
            producer.begin_transaction()
        for i in range(first, min(first + PER_TXN, records)):
            while True:
                try:
                    producer.produce(topic, VALUE, partition=i % PARTITIONS)
                    break
                except BufferError:
                    producer.poll(0.01)
        if transactional:
            t0 = time.perf_counter()
            producer.commit_transaction(WAIT_S)  # flushes, then EndTxn
            commits.append(time.perf_counter() - t0)
    if producer.flush(WAIT_S) != 0:
        raise RuntimeError("records not delivered")
    return time.perf_counter() - started, commits


def consume(bootstrap: str, topic: str, records: int, isolation: str) -> float:
    """Seconds for a consumer at `isolation` to read `records` from the start."""
    config = {"bootstrap.servers": bootstrap, "isolation.level": isolation}
    return read_from_start(config, topic, PARTITIONS, records, WAIT_S)


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", help="a running broker on 127.0.0.1 (default: start one)")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    idem: list[float] = []
    txn: list[float] = []
    commits: list[float] = []
    committed_reads: list[float] = []
    plain_reads: list[float] = []
    with given_or_started(args.bootstrap, "odradek-txn-bench-") as bootstrap:
        for _ in range(args.rounds):  # alternate, so both see the same machine
            topic = f"bench-{uuid.uuid4().hex[:8]}"
            create_topic(bootstrap, topic)
            idem.append(produce(bootstrap, topic, args.records, transactional=False)[0])
            topic = f"bench-txn-{uuid.uuid4().hex[:8]}"
            create_topic(bootstrap, topic)
            seconds, latencies = produce(bootstrap, topic, args.records, transactional=True)
            txn.append(seconds)
            commits += latencies
            plain_reads.append(consume(bootstrap, topic, args.records, "read_uncommitted"))
            committed_reads.append(consume(bootstrap, topic, args.records, "read_committed"))

    mib = args.records * len(VALUE) / 2**20

    def rate(seconds: list[float]) -> float:
        return mib / statistics.median(seconds)

    print(
        f"\ntransactions: {args.records} x 1 KiB, {PER_TXN} per transaction, {args.rounds} rounds"
    )
    print(f"  idempotent producer       {rate(idem):8.1f} MiB/s")
    produce_ratio = rate(txn) / rate(idem)
    print(
        f"  transactional producer    {rate(txn):8.1f} MiB/s   ratio {produce_ratio:.2f} (>= 0.7)"
    )
    p50, p99 = ms(commits, 0.5), ms(commits, 0.99)
    print(f"  commit latency            p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")
    print(f"  read_uncommitted consumer {rate(plain_reads):8.1f} MiB/s")
    ratio = rate(committed_reads) / rate(plain_reads)
    print(
        f"  read_committed consumer   {rate(committed_reads):8.1f} MiB/s   ratio {ratio:.2f}",
        "(>= 0.9)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
