"""How long the console's pages take on a broker with one topic of 10,000 partitions and
1,000 more topics, in-process.

    .venv/bin/python benchmarks/console_pages.py

Starts an `odradek.testing.Broker` in this process's event loop with its HTTP listener on
a free loopback port and its logs in memory (MemoryFileSystem: no file-descriptor limit,
and the cost measured is the pages', not the disk's), creates a topic of `--partitions`
partitions and `--topics` topics of one partition, commits an offset of one group on
every partition, then asks each page `--runs` times over HTTP from a client process (so
that parsing the answers does not take the broker's loop): GET /topics,
/topics/{big}, /topics/{big}?page=99, /groups, /groups/{group}, /brokers and /. It prints
the median and the slowest time of each, and fails (exit 1) when one is over `--limit-s`
(1 s). On a loaded machine the figures vary; the limit leaves room for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys

from odradek.storage.memory_fs import MemoryFileSystem
from odradek.testing import Broker

BIG = "big-topic"
GROUP = "bench-group"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--topics", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit-s", type=float, default=1.0)
    return parser.parse_args(argv)


def paths(partitions: int) -> list[str]:
    last_page = max((partitions - 1) // 100, 0)
    return [
        "/topics",
        f"/topics/{BIG}",
        f"/topics/{BIG}?page={min(99, last_page)}",
        "/groups",
        f"/groups/{GROUP}",
        "/brokers",
        "/",
    ]


# The client: another process; it times each GET from sending it to the last byte read.
CLIENT = """
import json, sys, time, urllib.error, urllib.request
base, runs, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
times = {}
for path in paths:
    for _ in range(runs):
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(base + path, timeout=60) as response:
                response.read()
        except urllib.error.HTTPError as error:
            sys.exit(f"{path}: {error.code}")
        times.setdefault(path, []).append(time.perf_counter() - started)
print(json.dumps(times))
"""


def _commit_everywhere(bootstrap: str, partitions: dict[str, int]) -> None:
    """One OffsetCommit of GROUP for every partition, as a consumer sends it."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP})
    try:
        offsets = [
            TopicPartition(topic, index, 0)
            for topic, count in partitions.items()
            for index in range(count)
        ]
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


async def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    config = {"console.listeners": "http://127.0.0.1:0", "num.partitions": 1}
    async with Broker(config=config, fs=MemoryFileSystem()) as broker:
        counts = {broker.create_topic(BIG, args.partitions): args.partitions}
        for number in range(args.topics):
            counts[broker.create_topic(f"topic-{number:04d}", 1)] = 1
        # A blocking client: in a thread, the broker runs in this loop.
        await asyncio.to_thread(_commit_everywhere, broker.bootstrap_servers, counts)
        assert broker.console_url is not None
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLIENT,
            broker.console_url,
            str(args.runs),
            *paths(args.partitions),
            stdout=asyncio.subprocess.PIPE,
        )
        output, _ = await client.communicate()
        if client.returncode != 0:
            raise SystemExit(f"the client failed ({client.returncode})")
    times: dict[str, list[float]] = json.loads(output)
    return times


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    times = asyncio.run(measure(args))
    print(
        f"console pages: a topic of {args.partitions} partitions and {args.topics} topics, "
        f"a group committed on each partition ({args.runs} GETs each)"
    )
    slow = []
    for path, runs in times.items():
        worst = max(runs)
        print(
            f"  {path:<28} median {statistics.median(runs) * 1000:7.1f} ms, "
            f"max {worst * 1000:7.1f} ms"
        )
        if worst > args.limit_s:
            slow.append(path)
    if slow:
        print(f"over {args.limit_s:.1f} s: {', '.join(slow)}")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
