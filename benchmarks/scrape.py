"""What a /metrics scrape costs a broker with many partitions, in-process.

    .venv/bin/python benchmarks/scrape.py --partitions 10000

Starts an `odradek.testing.Broker` in this process's event loop with its HTTP listener on
a free loopback port and its logs in memory (MemoryFileSystem: the cost measured is the
scrape's, not the disk's), creates `--partitions` partitions as topics of `--per-topic`,
commits an offset of one group on every partition (so every consumer lag series exists),
then scrapes `/metrics` `--scrapes` times over HTTP from a client process. It reports:

- broker CPU per scrape: the broker thread's CPU time (`time.thread_time`, measured on
  the loop around each request) from the request's arrival to the response's write;
- how long the event loop was kept from running anything else while scraping (a
  ticker task on the loop notes each gap between its 1 ms sleeps; the client is another
  process): how long a Kafka request could have waited behind a scrape;
- the size of the answer and its sample count.

The run fails (exit 1) when the median broker time reaches `--budget-ms` (50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

from odradek.storage.memory_fs import MemoryFileSystem
from odradek.testing import Broker


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--per-topic", type=int, default=100)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--budget-ms", type=float, default=50.0)
    return parser.parse_args(argv)


class Ticker:
    """Notes every gap between 1 ms sleeps of a task on the loop (beyond the 1 ms)."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.running = True

    async def run(self) -> None:
        last = time.perf_counter()
        while self.running:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.gaps.append(max(now - last - 0.001, 0.0))
            last = now


# The client: another process, so that reading and parsing the answer does not take the
# GIL from the broker's loop and count as the broker's stall.
CLIENT = """
import sys, urllib.request
url, count = sys.argv[1], int(sys.argv[2])
size = 0
for _ in range(count):
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
print(len(body))
sys.stdout.buffer.write(body)
"""


def _commit_everywhere(broker: Broker, topics: list[str], per_topic: int) -> None:
    groups = broker.broker.services.groups if broker.broker is not None else None
    assert groups is not None
    from odradek.coordinator.group import CommittedOffset, Group

    group = groups.groups.setdefault("bench-group", Group("bench-group"))
    for topic in topics:
        for index in range(per_topic):
            group.offsets[(topic, index)] = CommittedOffset(0, -1, "", 0)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    config = {"console.listeners": "http://127.0.0.1:0", "num.partitions": 1}
    async with Broker(config=config, fs=MemoryFileSystem()) as broker:
        topics = []
        for number in range(args.partitions // args.per_topic):
            topics.append(broker.create_topic(f"scrape-{number:05d}", args.per_topic))
        _commit_everywhere(broker, topics, args.per_topic)
        assert broker.console_url is not None
        url = broker.console_url + "/metrics"
        cpu: list[float] = []
        _time_broker_requests(cpu)
        ticker = Ticker()
        tick_task = asyncio.create_task(ticker.run())
        await asyncio.sleep(0.5)
        idle = list(ticker.gaps)
        ticker.gaps.clear()
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLIENT, url, str(args.scrapes), stdout=asyncio.subprocess.PIPE
        )
        output, _ = await client.communicate()
        ticker.running = False
        await tick_task
    body = output.split(b"\n", 1)[1]
    samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return {
        "partitions": args.partitions,
        "cpu_ms": statistics.median(cpu) * 1000,
        "cpu_ms_max": max(cpu) * 1000,
        "stall_ms_p99": _percentile(ticker.gaps, 0.99) * 1000,
        "stall_ms_max": max(ticker.gaps) * 1000,
        "idle_ms_max": max(idle) * 1000,
        "bytes": len(body),
        "samples": samples,
    }


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


def _time_broker_requests(cpu: list[float]) -> None:
    """Wraps the /metrics renderer so each call's broker-thread CPU time is recorded."""
    from odradek.console import metrics

    original = metrics.render

    async def timed(*a: Any) -> Any:
        # thread_time across the yields also counts the ticker's few wake-ups: a little
        # more than the scrape's own CPU, never less.
        started = time.thread_time()
        try:
            return await original(*a)
        finally:
            cpu.append(time.thread_time() - started)

    metrics.render = timed  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(measure(args))
    print(
        f"/metrics with {result['partitions']} partitions: {result['samples']} samples, "
        f"{result['bytes'] / 1024:.0f} KiB\n"
        f"  broker CPU per scrape: median {result['cpu_ms']:.1f} ms, "
        f"max {result['cpu_ms_max']:.1f} ms (budget {args.budget_ms:.0f} ms)\n"
        f"  loop stalls while scraping: 99th percentile {result['stall_ms_p99']:.1f} ms, "
        f"max {result['stall_ms_max']:.1f} ms (idle loop, before: max "
        f"{result['idle_ms_max']:.1f} ms)"
    )
    return 0 if result["cpu_ms"] < args.budget_ms else 1


if __name__ == "__main__":
    sys.exit(main())
