"""Broker CPU per small request, in-process: no sockets, no client library.

    .venv/bin/python benchmarks/request_cost.py                    # every case
    .venv/bin/python benchmarks/request_cost.py --cases produce    # one case
    .venv/bin/python benchmarks/request_cost.py --profile produce  # cProfile of one case

For each case a fresh `Broker` starts in this process on a temporary data directory; one
`Connection` is wired to a fake transport that keeps what is written, and request frames
are fed to it with `data_received`, as the event loop would after a socket read. What is measured
is the broker's own work per request: frame splitting, decoding, the handler, storage,
response encoding and the connection's bookkeeping. Timing uses `time.process_time`
(CPU, not wall clock), so other processes on a shared machine matter less; still compare
runs taken back to back.

Cases (all on a one-partition topic; the produced batch is one 100-byte record):

- `produce`: Produce v11, acks=-1.
- `produce-acks1`: the same with acks=1.
- `fetch`: Fetch v12 without a session, of the last batch of the log (one batch back).
- `metadata`: Metadata v12 for that one topic.

Each case runs `--warmup` requests, then `--rounds` rounds of `--requests` requests and
prints the median and the best round in µs of CPU per request. Every request must get
its response (a missing one fails the run); the last response's error codes must be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime
import io
import pstats
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import fields
from typing import Any

from kio.index import load_payload_module, load_request_schema, load_response_schema
from kio.schema.request_header.v1.header import RequestHeader as HeaderV1
from kio.schema.request_header.v2.header import RequestHeader as HeaderV2
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType
from kio.static.primitive import i16, i32

from odradek.config import BrokerConfig
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.server.broker import Broker
from odradek.server.connection import Connection
from odradek.testing.transport import RecordingTransport

TOPIC = "bench"
TIMEOUT = datetime.timedelta(seconds=5)
PRODUCE_V, FETCH_V, METADATA_V, CREATE_TOPICS_V = 11, 12, 12, 7
CASES = ("produce", "produce-acks1", "fetch", "metadata")


# -- request building ------------------------------------------------------------------


def build(cls: Any, **values: Any) -> Any:
    """A kio message from the values its version has fields for."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def request_module(api_key: int, version: int) -> Any:
    return load_payload_module(api_key, version, EntityType.request)


def encode_request(api_key: int, version: int, body: Any) -> bytes:
    """The size-prefixed request frame (correlation id 1)."""
    cls = load_request_schema(api_key, version)
    header_cls: Any = HeaderV2 if cls.__flexible__ else HeaderV1
    header = header_cls(
        request_api_key=i16(api_key),
        request_api_version=i16(version),
        correlation_id=i32(1),
        client_id="request-cost",
    )
    out = io.BytesIO()
    entity_writer(header_cls)(out, header)
    entity_writer(cls)(out, body)
    return struct.pack(">i", out.tell()) + out.getvalue()


def decode_response(api_key: int, version: int, frame: bytes | bytearray) -> Any:
    """The kio response object of a size-prefixed response frame."""
    cls = load_response_schema(api_key, version)
    header_size = 8 + (1 if cls.__flexible__ and api_key != 18 else 0)
    body, _ = entity_reader(cls)(bytes(frame), header_size)
    return body


def create_topic_frame() -> bytes:
    m = request_module(19, CREATE_TOPICS_V)
    topic = build(
        m.CreatableTopic,
        name=TOPIC,
        num_partitions=1,
        replication_factor=1,
        assignments=(),
        configs=(),
    )
    body = build(m.CreateTopicsRequest, topics=(topic,), timeout=TIMEOUT)
    return encode_request(19, CREATE_TOPICS_V, body)


def produce_frame(acks: int) -> bytes:
    m = request_module(0, PRODUCE_V)
    batch = build_batch([SimpleRecord(key=None, value=b"x" * 100)])
    data = build(m.PartitionProduceData, index=0, records=batch)
    topic = build(m.TopicProduceData, name=TOPIC, partition_data=(data,))
    body = build(
        m.ProduceRequest, acks=acks, timeout=TIMEOUT, topic_data=(topic,), transactional_id=None
    )
    return encode_request(0, PRODUCE_V, body)


def fetch_frame(offset: int) -> bytes:
    m = request_module(1, FETCH_V)
    partition = build(
        m.FetchPartition,
        partition=0,
        fetch_offset=offset,
        partition_max_bytes=1 << 20,
        current_leader_epoch=-1,
        last_fetched_epoch=-1,
        log_start_offset=-1,
    )
    body = build(
        m.FetchRequest,
        replica_id=-1,
        max_wait=datetime.timedelta(0),
        min_bytes=0,
        max_bytes=50 << 20,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        topics=(build(m.FetchTopic, topic=TOPIC, partitions=(partition,)),),
        forgotten_topics_data=(),
        rack_id="",
    )
    return encode_request(1, FETCH_V, body)


def metadata_frame() -> bytes:
    m = request_module(3, METADATA_V)
    body = build(
        m.MetadataRequest,
        topics=(build(m.MetadataRequestTopic, name=TOPIC, topic_id=None),),
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
    return encode_request(3, METADATA_V, body)


# -- running ---------------------------------------------------------------------------


class Bench:
    """A started broker and one connection to it."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.transport = RecordingTransport()
        self.connection = Connection(broker)
        self.connection.connection_made(self.transport)  # type: ignore[arg-type]

    async def call(self, frame: bytes) -> bytes | bytearray:
        """Sends one request and waits (on the loop) for its response."""
        before = len(self.transport.written)
        self.connection.data_received(frame)
        while len(self.transport.written) == before:
            if self.transport.aborted:
                raise RuntimeError("the broker closed the benchmark connection")
            await asyncio.sleep(0)
        return self.transport.written[-1]

    def send_sync(self, frame: bytes, count: int) -> None:
        """Sends `count` requests whose handler answers at once (no loop turn needed)."""
        feed = self.connection.data_received
        before = len(self.transport.written)
        for _ in range(count):
            feed(frame)
        if self.transport.aborted or len(self.transport.written) != before + count:
            raise RuntimeError("a request got no response")
        del self.transport.written[:-1]

    async def send_async(self, frame: bytes, count: int) -> None:
        """Sends `count` requests one at a time, giving the loop a turn until each is
        answered (for an async handler such as Fetch's, which may wait)."""
        for _ in range(count):
            await self.call(frame)
        del self.transport.written[:-1]


Runner = Callable[[int], Awaitable[None]]


async def prepare(bench: Bench, case: str) -> tuple[Runner, Callable[[], None]]:
    """The function sending n requests of `case`, and a check of the last response."""
    if case in ("produce", "produce-acks1"):
        frame = produce_frame(-1 if case == "produce" else 1)

        async def produce(n: int) -> None:
            bench.send_sync(frame, n)

        return produce, lambda: check_produce(bench.transport.written[-1])
    if case == "fetch":
        for _ in range(3):
            await bench.call(produce_frame(-1))
        last = check_produce(bench.transport.written[-1])
        frame = fetch_frame(last)

        async def fetch(n: int) -> None:
            await bench.send_async(frame, n)

        return fetch, lambda: check_fetch(bench.transport.written[-1], last)
    if case == "metadata":
        frame = metadata_frame()

        async def metadata(n: int) -> None:
            bench.send_sync(frame, n)

        return metadata, lambda: check_metadata(bench.transport.written[-1])
    raise ValueError(f"unknown case {case!r}")


def check_produce(frame: bytes | bytearray) -> int:
    """The base offset of a successful produce response."""
    partition = decode_response(0, PRODUCE_V, frame).responses[0].partition_responses[0]
    if partition.error_code != 0:
        raise RuntimeError(f"produce failed: {partition.error_code!r}")
    return int(partition.base_offset)


def check_fetch(frame: bytes | bytearray, offset: int) -> None:
    response = decode_response(1, FETCH_V, frame)
    partition = response.responses[0].partitions[0]
    if response.error_code != 0 or partition.error_code != 0:
        raise RuntimeError(f"fetch failed: {partition.error_code!r}")
    if not partition.records or struct.unpack_from(">q", partition.records)[0] != offset:
        raise RuntimeError("fetch did not return the last batch")


def check_metadata(frame: bytes | bytearray) -> None:
    topic = decode_response(3, METADATA_V, frame).topics[0]
    if topic.error_code != 0:
        raise RuntimeError(f"metadata failed: {topic.error_code!r}")


async def measure(run: Runner, requests: int, rounds: int) -> list[float]:
    """µs of CPU per request, one figure per round."""
    results = []
    for _ in range(rounds):
        start = time.process_time()
        await run(requests)
        results.append((time.process_time() - start) / requests * 1e6)
    return results


async def profile(run: Runner, requests: int, top: int) -> None:
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    await run(requests)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


async def run_case(case: str, args: argparse.Namespace) -> None:
    """Times (or profiles) one case on a fresh broker, so cases do not affect each other."""
    with tempfile.TemporaryDirectory(prefix="request-cost-") as data_dir:
        config = BrokerConfig(log_dirs=(data_dir,), listeners=("PLAINTEXT://127.0.0.1:0",))
        broker = Broker(config)
        await broker.start()
        try:
            bench = Bench(broker)
            await bench.call(create_topic_frame())
            run, check = await prepare(bench, case)
            await run(args.warmup)
            if args.profile:
                print(f"== {case}: {args.requests} requests")
                await profile(run, args.requests, args.top)
                return
            per_request = await measure(run, args.requests, args.rounds)
            check()
            print(
                f"{case:<14} median {statistics.median(per_request):7.1f} µs"
                f"   best {min(per_request):7.1f} µs CPU per request"
            )
        finally:
            await broker.stop()


async def main(args: argparse.Namespace) -> None:
    for case in args.profile or args.cases:
        await run_case(case, args)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=lambda s: s.split(","), default=list(CASES))
    parser.add_argument("--requests", type=int, default=2000, help="per round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument(
        "--profile", nargs="*", choices=CASES, help="cProfile these cases instead of timing"
    )
    parser.add_argument("--top", type=int, default=30, help="profile lines to print")
    args = parser.parse_args(argv)
    unknown = set(args.cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}; known: {', '.join(CASES)}")
    if args.profile == []:
        args.profile = list(args.cases)
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args(sys.argv[1:])))
