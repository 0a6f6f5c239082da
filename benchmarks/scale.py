"""Many partitions: create them, produce to all, stop cleanly, restart, produce again.

    .venv/bin/python benchmarks/scale.py --partitions 10000

Starts `python -m odradek broker` on an empty data directory (the empty start is timed),
creates `--partitions` partitions as topics of `--per-topic` partitions with
confluent-kafka's AdminClient, produces `--messages` small messages to every partition,
measures a short acks=all round-trip series on one partition, stops the broker
(SIGTERM, by PID), starts it again on the same directory (restart-to-ready time, RSS
from /proc/PID/status), produces to every partition again and checks the offsets
continue where they were. Prints a table. Every wait is bounded; the broker is always
stopped by PID in a `finally`.

Creating partitions allocates a few inodes each (directory, segment files,
partition.metadata). What one costs depends on the file system and on what else runs:
ext4 without a journal skips inodes freed in the last ~35 s, so files deleted nearby
just before (another run's cleanup, other tests) can make each creation 20 times slower.
The table therefore shows the cost of one file creation next to the data directory,
measured just before the topics are created: compare creation times only together with it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import BrokerError, BrokerProcess, rss_mib


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--per-topic", type=int, default=100, help="partitions per topic")
    parser.add_argument("--messages", type=int, default=1, help="messages per partition")
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--create-batch", type=int, default=10, help="topics per CreateTopics")
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--start-timeout", type=float, default=60.0)
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="max s per phase")
    parser.add_argument("--data-dir", type=Path, help="default: a fresh temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the broker")
    parser.add_argument("--set", action="append", default=[], help="broker property KEY=VALUE")
    return parser.parse_args(argv)


def topic_names(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(topic, partition count) covering exactly --partitions partitions."""
    out: list[tuple[str, int]] = []
    left, i = args.partitions, 0
    while left > 0:
        count = min(args.per_topic, left)
        out.append((f"scale-{i:04d}", count))
        left -= count
        i += 1
    return out


def create_topics(bootstrap: str, topics: list[tuple[str, int]], args: argparse.Namespace) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + args.phase_timeout
    for start in range(0, len(topics), args.create_batch):
        chunk = [
            NewTopic(name, count, 1) for name, count in topics[start : start + args.create_batch]
        ]
        left = max(1.0, deadline - time.monotonic())
        futures = admin.create_topics(chunk, request_timeout=left, operation_timeout=left)
        for name, future in futures.items():
            try:
                future.result(timeout=left)
            except Exception as e:
                raise BrokerError(f"creating {name} failed: {e}") from e


def produce_all(
    bootstrap: str, topics: list[tuple[str, int]], args: argparse.Namespace
) -> dict[str, Any]:
    """Produces --messages values to every partition; returns counts and the offsets seen."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 20,
            "queue.buffering.max.messages": 2_000_000,
            "message.timeout.ms": int(args.phase_timeout * 1000),
        }
    )
    value = b"v" * args.value_size
    delivered = 0
    errors: list[str] = []
    first_offsets: dict[tuple[str, int], int] = {}

    def on_delivery(err: Any, msg: Any) -> None:
        nonlocal delivered
        if err is not None:
            errors.append(str(err))
            return
        delivered += 1
        key = (msg.topic(), msg.partition())
        first_offsets[key] = min(first_offsets.get(key, msg.offset()), msg.offset())

    t0 = time.perf_counter()
    for _ in range(args.messages):
        for name, count in topics:
            for p in range(count):
                while True:
                    try:
                        producer.produce(name, value, partition=p, on_delivery=on_delivery)
                        break
                    except BufferError:
                        producer.poll(0.05)
                producer.poll(0)
    remaining = producer.flush(args.phase_timeout)
    elapsed = time.perf_counter() - t0
    return {
        "seconds": elapsed,
        "delivered": delivered,
        "undelivered": remaining,
        "errors": errors[:5],
        "error_count": len(errors),
        "first_offsets": first_offsets,
    }


def produce_latency(bootstrap: str, topic: str, samples: int, timeout: float) -> dict[str, float]:
    """acks=all round trips, one message at a time (produce -> delivery report)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    producer.produce(topic, b"warm-up", partition=0)
    producer.flush(timeout)
    times: list[float] = []
    for _ in range(samples):
        t0 = time.perf_counter()
        producer.produce(topic, b"x" * 100, partition=0)
        if producer.flush(timeout) != 0:
            raise BrokerError("latency probe: message not delivered")
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
    }


def file_creation_us(probe: Path, count: int = 300) -> float:
    """Mean microseconds to create one empty file in the empty directory `probe`. The
    caller removes the files only at the end (removing them at once would slow the next
    creations, see the docstring)."""
    t0 = time.perf_counter()
    for i in range(count):
        os.close(os.open(probe / f"f{i}", os.O_RDWR | os.O_CREAT, 0o644))
    return (time.perf_counter() - t0) / count * 1e6


def open_fds(pid: int | None) -> int | None:
    """How many file descriptors a process holds (Linux /proc), or None."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd")) if pid else None
    except OSError:
        return None


def fd_soft_limit(pid: int | None) -> str:
    """The process's soft RLIMIT_NOFILE, from /proc/PID/limits."""
    try:
        with open(f"/proc/{pid}/limits", encoding="ascii") as file:
            for line in file:
                if line.startswith("Max open files"):
                    return line.split()[3]
    except (OSError, IndexError):
        pass
    return "?"


def row(label: str, value: str) -> str:
    return f"| {label:<52} | {value:>18} |"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="odradek-scale-"))
    data_dir = args.data_dir or (work / "data")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    probe_dir = Path(tempfile.mkdtemp(prefix=".create-probe-", dir=data_dir.parent))
    topics = topic_names(args)
    results: list[tuple[str, str]] = []
    ok = False
    broker: BrokerProcess | None = None
    try:
        broker = BrokerProcess(
            data_dir, work / "broker-1.log", settings=args.set, python=args.python
        )
        ready = broker.start(timeout=args.start_timeout)
        results.append(("start to ready, empty (s)", f"{ready:.2f}"))
        results.append(("  broker's own figure (ms)", f"{broker.self_reported_ms or 0:.0f}"))

        probe = file_creation_us(probe_dir)
        results.append(("  one file creation next to the data dir (us)", f"{probe:.0f}"))
        t0 = time.perf_counter()
        create_topics(broker.bootstrap, topics, args)
        created = time.perf_counter() - t0
        results.append(
            (f"create {args.partitions} partitions ({len(topics)} topics) (s)", f"{created:.1f}")
        )

        first = produce_all(broker.bootstrap, topics, args)
        total = args.partitions * args.messages
        results.append(("produce to all partitions (s)", f"{first['seconds']:.1f}"))
        results.append(("  delivered / expected", f"{first['delivered']} / {total}"))
        latency = produce_latency(broker.bootstrap, topics[0][0], args.latency_samples, 30.0)
        results.append(
            (
                "acks=all produce round trip p50 / p99 (ms)",
                f"{latency['p50_ms']:.2f} / {latency['p99_ms']:.2f}",
            )
        )
        results.append(("RSS after produce (MiB)", f"{rss_mib(broker.pid) or 0:.0f}"))
        results.append(
            (
                "open fds after produce / soft limit",
                f"{open_fds(broker.pid)} / {fd_soft_limit(broker.pid)}",
            )
        )
        stopped = broker.stop(term_timeout=args.phase_timeout)
        results.append(("clean stop (s)", f"{stopped.get('stop_s', float('nan'))}"))
        if stopped.get("killed"):
            raise BrokerError("broker needed SIGKILL to stop")

        broker = BrokerProcess(
            data_dir, work / "broker-2.log", port=broker.port, settings=args.set, python=args.python
        )
        ready = broker.start(timeout=args.start_timeout)
        results.append((f"restart to ready, {args.partitions} partitions (s)", f"{ready:.2f}"))
        results.append(("  broker's own figure (ms)", f"{broker.self_reported_ms or 0:.0f}"))
        results.append(("RSS after restart (MiB)", f"{rss_mib(broker.pid) or 0:.0f}"))

        again = produce_all(broker.bootstrap, topics, args)
        results.append(("produce to all again (s)", f"{again['seconds']:.1f}"))
        results.append(("  delivered / expected", f"{again['delivered']} / {total}"))
        # topic 0 partition 0 also got the latency probe's messages
        expected_offset = args.messages
        wrong = [
            key
            for key, offset in again["first_offsets"].items()
            if offset != expected_offset and key != (topics[0][0], 0)
        ]
        results.append(("  partitions continuing at the wrong offset", str(len(wrong))))
        results.append(("RSS at the end (MiB)", f"{rss_mib(broker.pid) or 0:.0f}"))
        ok = (
            first["delivered"] == total
            and again["delivered"] == total
            and not wrong
            and first["error_count"] == again["error_count"] == 0
        )
        if not ok:
            print("errors:", first["errors"], again["errors"], wrong[:5], file=sys.stderr)
    except BrokerError as e:
        print(f"scale run failed: {e}", file=sys.stderr)
    finally:
        if broker is not None:
            broker.stop(term_timeout=60.0)
        print(row("measure", "value"))
        print(f"|{'-' * 54}|{'-' * 20}|")
        for label, value in results:
            print(row(label, value))
        print(f"result: {'ok' if ok else 'FAILED'}; logs in {work}")
        shutil.rmtree(probe_dir, ignore_errors=True)
        if not args.keep and ok:
            shutil.rmtree(work, ignore_errors=True)
            if args.data_dir is None:
                shutil.rmtree(data_dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
