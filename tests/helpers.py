"""Shared helpers for the interop tests: free ports, fresh topic names, a broker run as a
subprocess (start, SIGTERM, SIGKILL, restart) with bounded waits, bounded subprocess runs,
and "consume everything up to the high watermark" helpers for each client library.

Every wait here has a deadline; nothing talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
BROKER_START_TIMEOUT_S = 30.0
BROKER_STOP_TIMEOUT_S = 15.0
CONSUME_TIMEOUT_S = 30.0


# -- small utilities -------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def unique_topic(prefix: str = "t") -> str:
    """A topic name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_until(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Polls `predicate` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            result = predicate()
        except Exception as exc:
            last_exc = exc
            result = None
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from last_exc
        time.sleep(interval)


def port_accepts(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


# -- a normalised record, comparable across clients ---------------------------------------


Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class Rec:
    """One record as produced or consumed; `offset` is -1 until the broker assigned one."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp: int

    def short(self) -> str:
        def clip(b: bytes | None) -> str:
            if b is None:
                return "None"
            return repr(b[:24]) + (f"...({len(b)}B)" if len(b) > 24 else "")

        return (
            f"Rec(p={self.partition}, o={self.offset}, k={clip(self.key)}, "
            f"v={clip(self.value)}, h={self.headers!r}, ts={self.timestamp})"
        )


def norm_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> Headers:
    if not headers:
        return ()
    return tuple((str(k), None if v is None else bytes(v)) for k, v in headers)


def assert_same_records(expected: Sequence[Rec], actual: Sequence[Rec]) -> None:
    """Every expected record is consumed exactly once, equal in every field, nothing else."""
    exp = sorted(expected, key=lambda r: (r.partition, r.offset))
    act = sorted(actual, key=lambda r: (r.partition, r.offset))
    exp_keys = {(r.partition, r.offset) for r in exp}
    act_keys = [(r.partition, r.offset) for r in act]
    assert len(act_keys) == len(set(act_keys)), "a (partition, offset) was consumed twice"
    missing = [r.short() for r in exp if (r.partition, r.offset) not in set(act_keys)]
    extra = [r.short() for r in act if (r.partition, r.offset) not in exp_keys]
    assert not missing, f"{len(missing)} produced records not consumed, e.g. {missing[:5]}"
    assert not extra, f"{len(extra)} unexpected records consumed, e.g. {extra[:5]}"
    diffs = [(e.short(), a.short()) for e, a in zip(exp, act, strict=True) if e != a]
    assert not diffs, f"{len(diffs)} records differ (expected, got), e.g. {diffs[:3]}"


def sample_records(
    partitions: int,
    per_partition: int,
    base_ts: int,
    tag: str = "",
    null_header_values: bool = True,
) -> list[dict[str, Any]]:
    """Records with keys, null keys, null values, empty values, headers (repeated keys,
    null header values, non-ASCII names) and explicit, increasing CreateTime timestamps.
    (kafka-python's producer refuses null header values: pass null_header_values=False.)"""
    out: list[dict[str, Any]] = []
    for i in range(partitions * per_partition):
        partition = i % partitions
        seq = i // partitions
        # (never both key and value null: aiokafka refuses that)
        key: bytes | None = f"key-{tag}-{i}".encode() if i % 5 != 1 or i % 7 == 3 else None
        value: bytes | None
        if i % 7 == 3:
            value = None
        elif i % 11 == 4:
            value = b""
        else:
            value = (f"value-{tag}-{i}-".encode() + bytes(range(256))) * (1 + i % 3)
        headers: list[tuple[str, bytes | None]] = []
        if i % 3 == 0:
            headers = [("h1", b"one"), ("h2", f"{i}".encode()), ("h1", b"repeated")]
        elif i % 3 == 1:
            headers = [
                ("nullval", None if null_header_values else b""),
                ("ключ", "значение".encode()),
            ]
        out.append(
            {
                "partition": partition,
                "key": key,
                "value": value,
                "headers": headers,
                "timestamp": base_ts + seq * 10 + partition,
            }
        )
    return out


# -- bounded subprocesses --------------------------------------------------------------


def run_python(code: str, *args: str, timeout: float = 60.0) -> str:
    """Runs `code` in a fresh interpreter (nothing imported yet) with `args` in sys.argv;
    asserts it succeeded and returns its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_bounded(
    argv: Sequence[str], input: bytes | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[bytes]:
    """Runs a command with a deadline; the process is killed by PID whatever happens."""
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
        return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{argv[0]} did not finish within {timeout}s: {argv}") from exc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


class BrokerProcess:
    """`python -m odradek broker` as a subprocess on 127.0.0.1:`port` with `data_dir`.

    Each start writes stderr to its own log file; `start()` returns once a line containing
    "ready" appears (bounded), and the time that took."""

    def __init__(
        self,
        data_dir: str | None = None,
        port: int | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="odradek-proc-")
        self.port = port or free_port()
        self.config = {"num.partitions": 3, **(config or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_dir = tempfile.mkdtemp(prefix="odradek-proc-logs-")
        self.log_path: Path | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "broker process not running"
        return self.proc.pid

    def argv(self) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "odradek",
            "broker",
            "--set",
            f"listeners=PLAINTEXT://{HOST}:{self.port}",
            "--set",
            f"log.dirs={self.data_dir}",
        ]
        for key, value in self.config.items():
            argv += ["--set", f"{key}={value}"]
        return argv

    def log_text(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def start(self, timeout: float = BROKER_START_TIMEOUT_S) -> float:
        """Starts the process and waits for "ready"; returns seconds from spawn to ready."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        self.log_path = Path(self.log_dir) / f"broker-{self.starts}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO_ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
        started = time.monotonic()
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=str(REPO_ROOT),
                env=env,
            )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if "ready" in self.log_text():
                return time.monotonic() - started
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"broker exited with {self.proc.returncode} before ready:\n{self.log_text()}"
                )
            time.sleep(0.01)
        self.kill9()
        raise AssertionError(f"broker not ready within {timeout}s:\n{self.log_text()}")

    def stop(self, timeout: float = BROKER_STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait (bounded), SIGKILL if still alive. Returns the exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                return proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
                raise AssertionError(
                    f"broker did not stop within {timeout}s of SIGTERM:\n{self.log_text()}"
                ) from None
        return proc.returncode

    def kill9(self) -> None:
        """SIGKILL, then reap (bounded)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def cleanup(self) -> None:
        import shutil

        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.log_dir, ignore_errors=True)

    def __enter__(self) -> BrokerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.kill9() if exc[0] is not None else self.stop()
        finally:
            self.cleanup()


# -- confluent-kafka (librdkafka) --------------------------------------------------------


_ADMINS: dict[str, Any] = {}


def ck_admin(bootstrap: str) -> Any:
    """One AdminClient per broker address, kept alive: a collected AdminClient destroys its
    handle and fails its pending futures with _DESTROY."""
    from confluent_kafka.admin import AdminClient

    if bootstrap not in _ADMINS:
        _ADMINS[bootstrap] = AdminClient(
            {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000}
        )
    return _ADMINS[bootstrap]


def ck_forget_admin(bootstrap: str) -> None:
    """Drops the cached AdminClient of a broker that is going away (its handle is destroyed
    with it, instead of retrying connections for the rest of the session)."""
    _ADMINS.pop(bootstrap, None)


def ck_consumer_conf(bootstrap: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": f"interop-{uuid.uuid4().hex[:8]}",  # required by librdkafka, never used
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "socket.timeout.ms": 10000,
        **extra,
    }


def ck_producer_conf(bootstrap: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": False,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 20000,
        "socket.timeout.ms": 10000,
        **extra,
    }


def ck_rec(msg: Any) -> Rec:
    _ts_type, ts = msg.timestamp()
    return Rec(
        msg.partition(), msg.offset(), msg.key(), msg.value(), norm_headers(msg.headers()), ts
    )


def ck_produce(
    producer: Any, topic: str, records: Sequence[Mapping[str, Any]], timeout: float = 30.0
) -> list[Rec]:
    """Produces `records` (dicts: partition, key, value, headers, timestamp), waits for every
    delivery report (bounded) and returns them as Recs carrying the broker's offsets."""
    from confluent_kafka import KafkaError

    reports: list[tuple[int, Any, Any]] = []

    def on_delivery(err: KafkaError | None, msg: Any, index: int) -> None:
        reports.append((index, err, msg))

    for index, r in enumerate(records):
        kwargs: dict[str, Any] = {"key": r.get("key"), "value": r.get("value")}
        if r.get("partition") is not None:
            kwargs["partition"] = r["partition"]
        if r.get("headers"):
            kwargs["headers"] = list(r["headers"])
        if r.get("timestamp") is not None:
            kwargs["timestamp"] = r["timestamp"]
        while True:
            try:
                producer.produce(
                    topic,
                    on_delivery=lambda err, msg, index=index: on_delivery(err, msg, index),
                    **kwargs,
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(timeout)
    assert remaining == 0, f"{remaining} messages not delivered within {timeout}s"
    assert len(reports) == len(records), f"{len(reports)} delivery reports for {len(records)}"
    errors = [(i, err) for i, err, _ in reports if err is not None]
    assert not errors, f"delivery failed: {errors[:5]}"
    out: list[Rec | None] = [None] * len(records)
    for index, _err, msg in reports:
        r = records[index]
        if r.get("partition") is not None:
            assert msg.partition() == r["partition"], "delivered to a different partition"
        out[index] = Rec(
            msg.partition(),
            msg.offset(),
            r.get("key"),
            r.get("value"),
            norm_headers(r.get("headers")),
            msg.timestamp()[1] if r.get("timestamp") is None else r["timestamp"],
        )
    return [r for r in out if r is not None]


def ck_watermarks(bootstrap: str, topic: str, partitions: Iterable[int]) -> dict[int, tuple]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(ck_consumer_conf(bootstrap))
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
            for p in partitions
        }
    finally:
        consumer.close()


def ck_consume_all(
    bootstrap: str,
    topic: str,
    partitions: Iterable[int],
    timeout: float = CONSUME_TIMEOUT_S,
    start_offsets: Mapping[int, int] | None = None,
    **extra_conf: Any,
) -> list[Rec]:
    """Manually assigns `partitions` from the beginning (or `start_offsets`) and reads until
    every partition reached the high watermark it had when we started (bounded)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    partitions = list(partitions)
    consumer = Consumer(ck_consumer_conf(bootstrap, **extra_conf))
    try:
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
            for p in partitions
        }
        starts = {p: (start_offsets or {}).get(p, OFFSET_BEGINNING) for p in partitions}
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in partitions])
        out: list[Rec] = []
        next_offset = {p: (starts[p] if starts[p] >= 0 else 0) for p in partitions}
        deadline = time.monotonic() + timeout
        while any(next_offset[p] < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"consume timed out after {timeout}s: at {next_offset}, want {ends}"
                )
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            rec = ck_rec(msg)
            out.append(rec)
            next_offset[rec.partition] = rec.offset + 1
        return out
    finally:
        consumer.close()


# -- kafka-python ------------------------------------------------------------------------


def attr_rec(msg: Any) -> Rec:
    """A consumed record of kafka-python or aiokafka (both expose the same attributes)."""
    return Rec(
        msg.partition, msg.offset, msg.key, msg.value, norm_headers(msg.headers), msg.timestamp
    )


def acked_rec(sent: dict[str, Any], metadata: Any) -> Rec:
    """What a record sent with `sent` (key, value, headers, timestamp, partition) should
    read back as, given the producer's acknowledgement metadata."""
    if sent.get("partition") is not None:
        assert metadata.partition == sent["partition"]
    timestamp = sent.get("timestamp")
    return Rec(
        metadata.partition,
        metadata.offset,
        sent.get("key"),
        sent.get("value"),
        tuple(sent.get("headers") or ()),
        timestamp if timestamp is not None else metadata.timestamp,
    )


def kp_consume_all(
    bootstrap: str, topic: str, partitions: Iterable[int], timeout: float = CONSUME_TIMEOUT_S
) -> list[Rec]:
    from kafka import KafkaConsumer, TopicPartition

    tps = [TopicPartition(topic, p) for p in partitions]
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=15000,
    )
    try:
        consumer.assign(tps)
        ends = consumer.end_offsets(tps, timeout_ms=10000)
        consumer.seek_to_beginning(*tps)
        out: list[Rec] = []
        next_offset = {tp: 0 for tp in tps}
        deadline = time.monotonic() + timeout
        while any(next_offset[tp] < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise AssertionError(f"consume timed out: at {next_offset}, want {ends}")
            for tp, msgs in consumer.poll(timeout_ms=200).items():
                for msg in msgs:
                    out.append(attr_rec(msg))
                    next_offset[tp] = msg.offset + 1
        return out
    finally:
        consumer.close()


# -- aiokafka ----------------------------------------------------------------------------


async def aio_consume_all(
    bootstrap: str, topic: str, partitions: Iterable[int], timeout: float = CONSUME_TIMEOUT_S
) -> list[Rec]:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    tps = [TopicPartition(topic, p) for p in partitions]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=15000,
    )
    await asyncio.wait_for(consumer.start(), 15)
    try:
        consumer.assign(tps)
        ends = await asyncio.wait_for(consumer.end_offsets(tps), 15)
        await asyncio.wait_for(consumer.seek_to_beginning(*tps), 15)
        out: list[Rec] = []
        next_offset = {tp: 0 for tp in tps}
        deadline = time.monotonic() + timeout
        while any(next_offset[tp] < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise AssertionError(f"consume timed out: at {next_offset}, want {ends}")
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=200), 15)
            for tp, msgs in batch.items():
                for msg in msgs:
                    out.append(attr_rec(msg))
                    next_offset[tp] = msg.offset + 1
        return out
    finally:
        await asyncio.wait_for(consumer.stop(), 15)
