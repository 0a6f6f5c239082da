"""Recovery after kill -9: restart time on a big data directory vs a small one, same tail.

    .venv/bin/python benchmarks/recovery.py                       # 5 GB, then 0.5 GB
    .venv/bin/python benchmarks/recovery.py --data-gb 0.2 --compare-gb 0.1   # quick
    .venv/bin/python benchmarks/recovery.py --wait-checkpoint     # see below

For each data size (`--data-gb`, then `--compare-gb`, each on a fresh directory) it starts
`python -m odradek broker` on a free 127.0.0.1 port, creates one topic of `--partitions`
partitions and fills it with that many GB of `--value-kib` values with confluent-kafka
(acks=all, 1 MB batches, round robin over the partitions); the fill is timed. Then:

1. crash after the fill: produce a `--tail-mb` tail, `kill -9` the broker by PID, read
   what recovery will have to scan (the on-disk `recovery-point-offset-checkpoint` and
   the segment files: recovery scans the segment holding each partition's recovery point
   and every later one), restart on the same directory and time spawn -> `ready` line;
   then check every acknowledged message is there (log-end offset >= acked count per
   partition, and the last `--verify-last` acked tail messages of every partition read
   back byte for byte). With `--wait-checkpoint` the tail waits until the broker has
   written its periodic recovery-point checkpoint after the fill
   (`log.flush.offset.checkpoint.interval.ms`, default 60 s).
2. clean restart: SIGTERM, start again on the same data, time spawn -> ready
   (`--no-clean-restart` skips this and step 3).
3. crash after the clean restart: the same as 1 (new tail, kill -9, restart, verify); the
   clean stop flushed everything and checkpointed the recovery points.

After each restart of 1 and 3 (unless `--no-cold`) the broker is killed again at once
(nothing new to scan or checkpointed, so recovery has the same range to scan), the data
directory's files are written back and dropped from the page cache (fsync +
POSIX_FADV_DONTNEED, those files only) and the restart is measured cold.

Prints a table and writes JSON (`--json`, default benchmarks/results/recovery.json).
Every wait is bounded, every broker is stopped by PID in a `finally`, data directories
are deleted after each size unless `--keep` (a `--data-dir` given is left in place),
logs too unless the run failed.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import (
    READY_RE,
    BrokerError,
    BrokerProcess,
    filesystem_type,
    git_rev,
    rss_mib,
    stop_cleanly_on_sigterm,
)

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "recovery.json"
TOPIC = "recovery"
CHECKPOINT_FILE = "recovery-point-offset-checkpoint"
CLEAN_MARKER = ".kafka_cleanshutdown"
DEFAULT_CHECKPOINT_MS = 60_000
POOL_SIZE = 16  # distinct random values, reused (no compression: reuse costs nothing)
RECOVERY_LINE = re.compile(r"recover|truncat|unclean|corrupt|torn|crash", re.IGNORECASE)
GB = 10**9
MB = 10**6


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-gb", type=float, default=5.0, help="GB (10^9) of values")
    parser.add_argument(
        "--compare-gb", type=float, default=0.5, help="second data size, same tail (0: none)"
    )
    parser.add_argument("--tail-mb", type=float, default=50.0, help="MB produced before kill -9")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--value-kib", type=int, default=64, help="size of each value")
    parser.add_argument("--verify-last", type=int, default=50, help="tail messages read back")
    parser.add_argument(
        "--wait-checkpoint",
        action="store_true",
        help="before the first tail, wait for the broker's periodic recovery-point checkpoint",
    )
    parser.add_argument(
        "--no-cold",
        dest="cold",
        action="store_false",
        help="skip the second kill -9 of each crash step, restarted with a cold page cache",
    )
    parser.add_argument("--no-clean-restart", action="store_true", help="skip steps 2 and 3")
    parser.add_argument("--start-timeout", type=float, default=600.0, help="max s to ready")
    parser.add_argument("--phase-timeout", type=float, default=1800.0, help="max s per phase")
    parser.add_argument("--data-dir", type=Path, help="data dir of --data-gb (must be empty)")
    parser.add_argument("--keep", action="store_true", help="keep data directories and logs")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the JSON")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the broker")
    parser.add_argument("--set", action="append", default=[], help="broker property KEY=VALUE")
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- values


class Values:
    """Deterministic values: the message's sequence number, then pool bytes; so any
    message can be checked from its key alone."""

    def __init__(self, size: int, seed: int) -> None:
        rng = random.Random(seed)
        self.size = max(16, size)
        self.pool = [rng.randbytes(self.size) for _ in range(POOL_SIZE)]

    def value(self, seq: int) -> bytes:
        return seq.to_bytes(8, "big") + self.pool[seq % POOL_SIZE][8:]

    @staticmethod
    def key(phase: str, seq: int) -> bytes:
        return f"{phase}-{seq}".encode()


class Acked:
    """Per partition: the end of the acknowledged offsets, and the newest acked tail
    messages (offset, key, seq) to read back after the restart."""

    def __init__(self, partitions: int) -> None:
        self.end = dict.fromkeys(range(partitions), 0)
        self.count = dict.fromkeys(range(partitions), 0)
        self.recent: dict[int, deque[tuple[int, bytes, int]]] = {}

    def reset_recent(self, keep: int) -> None:
        self.recent = {p: deque(maxlen=keep) for p in self.end}


def produce(
    bootstrap: str,
    phase: str,
    total_bytes: int,
    values: Values,
    acked: Acked,
    args: argparse.Namespace,
    *,
    remember: bool,
) -> dict[str, Any]:
    """Produces `total_bytes` of values round robin over the partitions, acks=all; waits
    for every delivery report (bounded by --phase-timeout)."""
    from confluent_kafka import KafkaError, Message, Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "batch.num.messages": 1_000_000,
            "compression.type": "none",
            "enable.idempotence": False,
            "queue.buffering.max.kbytes": 256 * 1024,
            "queue.buffering.max.messages": 1_000_000,
            # a broker that answers nothing fails the phase in minutes, not at its end
            "message.timeout.ms": int(min(args.phase_timeout, 120.0) * 1000),
        }
    )
    errors: list[str] = []
    delivered = 0
    partitions = args.partitions

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        nonlocal delivered
        if err is not None:
            errors.append(str(err))
            return
        delivered += 1
        p, offset = msg.partition(), msg.offset()
        if p is None or offset is None:
            errors.append("delivery report without partition or offset")
            return
        acked.end[p] = max(acked.end[p], offset + 1)
        acked.count[p] += 1
        if remember:
            key = msg.key()
            assert isinstance(key, bytes)
            acked.recent[p].append((offset, key, int(key.rsplit(b"-", 1)[1])))

    count = max(partitions, -(-total_bytes // values.size))
    t0 = time.perf_counter()
    deadline = t0 + args.phase_timeout
    for seq in range(count):
        while True:
            try:
                producer.produce(
                    TOPIC,
                    values.value(seq),
                    Values.key(phase, seq),
                    partition=seq % partitions,
                    on_delivery=on_delivery,
                )
                break
            except BufferError as e:
                producer.poll(0.05)
                if errors or time.perf_counter() > deadline:
                    raise BrokerError(
                        f"{phase}: local queue still full; {len(errors)} errors {errors[:3]}"
                    ) from e
        producer.poll(0)
    left = producer.flush(max(1.0, deadline - time.perf_counter()))
    seconds = time.perf_counter() - t0
    if left or errors or delivered != count:
        raise BrokerError(
            f"{phase}: {delivered}/{count} delivered, {left} undelivered, "
            f"{len(errors)} errors {errors[:3]}"
        )
    return {
        "messages": count,
        "value_bytes": count * values.size,
        "seconds": round(seconds, 2),
        "mb_per_s": round(count * values.size / MB / seconds, 1),
    }


def create_topic(bootstrap: str, partitions: int, timeout: float) -> None:
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(TOPIC, partitions, 1)], request_timeout=timeout, operation_timeout=timeout
    )
    futures[TOPIC].result(timeout=timeout)


# --------------------------------------------------------------------------- disk state


def read_checkpoint(data_dir: Path) -> dict[tuple[str, int], int] | None:
    """The recovery-point checkpoint on disk, or None when there is none yet."""
    path = data_dir / CHECKPOINT_FILE
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    out: dict[tuple[str, int], int] = {}
    for line in lines[2:]:
        parts = line.split()
        if len(parts) == 3:
            out[(parts[0], int(parts[1]))] = int(parts[2])
    return out


def disk_state(data_dir: Path) -> dict[str, Any]:
    """What recovery after a crash will scan, from the files alone (log_loader's rule: the
    segment holding the checkpointed recovery point and every later one; everything when
    there is no checkpoint)."""
    checkpoint = read_checkpoint(data_dir)
    partitions: dict[str, Any] = {}
    total = scanned = dirs = 0
    for child in sorted(data_dir.iterdir()):
        name, _, number = child.name.rpartition("-")
        if not child.is_dir() or not number.isdigit():
            continue
        segments = sorted(
            (int(f.name[:20]), f.stat().st_size)
            for f in child.iterdir()
            if f.name.endswith(".log") and f.name[:20].isdigit()
        )
        if not segments:
            continue
        dirs += 1
        point = (checkpoint or {}).get((name, int(number)), 0)
        first = max(0, bisect.bisect_right([b for b, _ in segments], point) - 1)
        size = sum(s for _, s in segments)
        scan = sum(s for _, s in segments[first:])
        total += size
        scanned += scan
        if name == TOPIC:
            partitions[child.name] = {
                "recovery_point": point,
                "segments": len(segments),
                "bytes": size,
                "scan_bytes": scan,
            }
    return {
        "checkpoint_present": checkpoint is not None,
        "clean_marker": (data_dir / CLEAN_MARKER).exists(),
        "partition_dirs": dirs,
        "log_bytes": total,
        "scan_bytes": scanned,
        "partitions": partitions,
    }


def wait_for_checkpoint(data_dir: Path, after_ns: int, timeout: float) -> float:
    """Waits until recovery-point-offset-checkpoint is rewritten after `after_ns` (wall
    clock ns) and names the topic's partitions; returns the seconds waited."""
    t0 = time.perf_counter()
    path = data_dir / CHECKPOINT_FILE
    while time.perf_counter() - t0 < timeout:
        try:
            fresh = path.stat().st_mtime_ns > after_ns
        except OSError:
            fresh = False
        if fresh and any(t == TOPIC for t, _ in read_checkpoint(data_dir) or {}):
            return time.perf_counter() - t0
        time.sleep(0.2)
    raise BrokerError(f"no recovery-point checkpoint written within {timeout:.0f} s")


def checkpoint_interval_s(settings: list[str]) -> float:
    for setting in settings:
        key, _, value = setting.partition("=")
        if key.strip() == "log.flush.offset.checkpoint.interval.ms":
            return int(value) / 1000
    return DEFAULT_CHECKPOINT_MS / 1000


# --------------------------------------------------------------------------- verify


def verify(
    bootstrap: str, acked: Acked, values: Values, partitions: int, timeout: float
) -> dict[str, Any]:
    """Log-end offsets >= acked ends, and the remembered tail messages read back intact."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"recovery-verify-{uuid.uuid4().hex[:8]}",  # required; no commits
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": False,
        }
    )
    problems: list[str] = []
    ends: dict[int, int] = {}
    checked = 0
    try:
        for p in range(partitions):
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(TOPIC, p), timeout=timeout, cached=False
            )
            ends[p] = high
            if high < acked.end[p]:
                problems.append(f"partition {p}: log end {high} < acked end {acked.end[p]}")
        wanted = {
            (p, off): (key, seq) for p, recent in acked.recent.items() for off, key, seq in recent
        }
        firsts = [
            TopicPartition(TOPIC, p, recent[0][0]) for p, recent in acked.recent.items() if recent
        ]
        consumer.assign(firsts)
        deadline = time.perf_counter() + timeout
        while wanted and time.perf_counter() < deadline:
            for msg in consumer.consume(500, 0.5):
                if msg.error() is not None:
                    problems.append(f"consume error: {msg.error()}")
                    continue
                part, off = msg.partition(), msg.offset()
                if part is None or off is None or (part, off) not in wanted:
                    continue
                key, seq = wanted.pop((part, off))
                checked += 1
                if msg.key() != key or msg.value() != values.value(seq):
                    problems.append(f"partition {part} offset {off}: key or value differs")
        if wanted:
            problems.append(f"{len(wanted)} acked tail messages not read back in {timeout:.0f} s")
    finally:
        consumer.close()
    return {
        "ok": not problems,
        "problems": problems[:10],
        "log_end_offsets": ends,
        "acked_ends": dict(acked.end),
        "extra_over_acked": sum(ends[p] - acked.end[p] for p in ends),
        "tail_messages_checked": checked,
    }


# --------------------------------------------------------------------------- phases


class Run:
    """One data size: a data directory, the current broker, what was acknowledged."""

    def __init__(self, label: str, data_gb: float, data_dir: Path, work: Path, args: Any) -> None:
        self.label = label
        self.data_gb = data_gb
        self.data_dir = data_dir
        self.work = work
        self.args = args
        self.values = Values(args.value_kib * 1024, seed=zlib.crc32(label.encode()))
        self.acked = Acked(args.partitions)
        self.broker: BrokerProcess | None = None
        self.starts = 0
        self.port: int | None = None
        self.fill_end_ns = 0

    def start(self) -> BrokerProcess:
        self.starts += 1
        broker = BrokerProcess(
            self.data_dir,
            self.work / f"{self.label}-broker-{self.starts}.log",
            port=self.port,
            settings=self.args.set,
            python=self.args.python,
        )
        self.broker = broker
        self.port = broker.port
        broker.start(timeout=self.args.start_timeout)
        return broker

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop(term_timeout=self.args.phase_timeout)
            self.broker = None

    def fill(self) -> dict[str, Any]:
        broker = self.start()
        create_topic(broker.bootstrap, self.args.partitions, 60.0)
        # The checking consumer needs a group.id, and librdkafka then looks up the group
        # coordinator, which creates __consumer_offsets (50 empty partitions). Done here,
        # before anything is measured, so that every restart opens the same partitions.
        verify(broker.bootstrap, self.acked, self.values, self.args.partitions, 60.0)
        out = produce(
            broker.bootstrap,
            "fill",
            int(self.data_gb * GB),
            self.values,
            self.acked,
            self.args,
            remember=False,
        )
        self.fill_end_ns = time.time_ns()
        out["rss_mib"] = rss_mib(broker.pid)
        out["disk_after"] = disk_state(self.data_dir)
        return out

    def crash(self, phase: str) -> dict[str, Any]:
        """Tail, kill -9, restart, verify."""
        broker = self.broker
        assert broker is not None and broker.pid is not None
        self.acked.reset_recent(self.args.verify_last)
        tail = produce(
            broker.bootstrap,
            phase,
            int(self.args.tail_mb * MB),
            self.values,
            self.acked,
            self.args,
            remember=True,
        )
        out: dict[str, Any] = {"tail": tail}
        out.update(self._kill_and_restart(broker, cold=False))
        if self.args.cold:
            # The same crash again (nothing was written or checkpointed since: recovery
            # scans the same range), now with the data out of the page cache.
            assert self.broker is not None
            out["cold"] = self._kill_and_restart(self.broker, cold=True)
        return out

    def _kill_and_restart(self, broker: BrokerProcess, *, cold: bool) -> dict[str, Any]:
        """kill -9 by PID, optionally evict the data from the page cache, restart, verify."""
        pid = broker.pid
        assert pid is not None and broker.proc is not None
        os.kill(pid, signal.SIGKILL)
        broker.proc.wait(timeout=30)
        broker.stop()  # already exited: joins the log reader
        self.broker = None
        disk = disk_state(self.data_dir)
        out: dict[str, Any] = {"killed_pid": pid, "disk_at_kill": disk}
        if cold:
            out["evict"] = evict_page_cache(self.data_dir)
        restarted = self.start()
        out.update(
            restart_s=round(restarted.ready_s or 0.0, 3),
            accept_s=round(restarted.accept_s or 0.0, 3),
            self_reported_ms=restarted.self_reported_ms,
            rss_mib=rss_mib(restarted.pid),
            broker_recovery_lines=recovery_lines(restarted.log_path),
        )
        out["verify"] = verify(
            restarted.bootstrap,
            self.acked,
            self.values,
            self.args.partitions,
            min(120.0, self.args.phase_timeout),
        )
        out["rss_mib_after_verify"] = rss_mib(restarted.pid)
        return out

    def clean_restart(self) -> dict[str, Any]:
        assert self.broker is not None
        stopped = self.broker.stop(term_timeout=self.args.phase_timeout)
        self.broker = None
        if stopped.get("killed"):
            raise BrokerError("the clean stop needed SIGKILL")
        disk = disk_state(self.data_dir)
        restarted = self.start()
        return {
            "stop_s": stopped.get("stop_s"),
            "disk_at_stop": disk,
            "restart_s": round(restarted.ready_s or 0.0, 3),
            "self_reported_ms": restarted.self_reported_ms,
            "rss_mib": rss_mib(restarted.pid),
        }


def evict_page_cache(data_dir: Path) -> dict[str, Any]:
    """Writes back and drops this data directory's files from the page cache (fsync, then
    POSIX_FADV_DONTNEED per file): the next start reads them from the disk, as after a
    reboot. Only these files are touched; the recovery point on disk does not change."""
    t0 = time.perf_counter()
    count = size = 0
    for path in data_dir.rglob("*"):
        if not path.is_file():
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        count += 1
        size += path.stat().st_size
    return {"files": count, "bytes": size, "seconds": round(time.perf_counter() - t0, 2)}


def recovery_lines(log_path: Path) -> list[str]:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return []
    lines = [line for line in text.splitlines() if not READY_RE.search(line)]
    return [line for line in lines if RECOVERY_LINE.search(line)][:20]


def run_size(
    label: str, data_gb: float, data_dir: Path, work: Path, args: Any, *, remove: bool
) -> dict[str, Any]:
    """Fill, crash, clean restart, crash on `data_dir`; removes it at the end if `remove`."""
    out: dict[str, Any] = {"label": label, "data_gb": data_gb, "data_dir": str(data_dir)}
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BrokerError(f"{data_dir} is not empty")
    data_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(data_dir).free
    if free < data_gb * GB * 1.15 + 2 * GB:
        raise BrokerError(f"{free / GB:.1f} GB free under {data_dir}: not enough for the run")
    run = Run(label, data_gb, data_dir, work, args)
    try:
        print(f"[{label}] filling {data_gb} GB", flush=True)
        out["fill"] = run.fill()
        print(f"[{label}] fill: {out['fill']['seconds']} s", flush=True)
        if args.wait_checkpoint:
            limit = checkpoint_interval_s(args.set) + 30
            print(f"[{label}] waiting for a recovery-point checkpoint (<= {limit:.0f} s)")
            waited = wait_for_checkpoint(data_dir, run.fill_end_ns, limit)
            out["checkpoint_wait_s"] = round(waited, 1)
        kind = "after checkpoint" if args.wait_checkpoint else "right after fill"
        print(f"[{label}] tail, kill -9 {kind}, restart", flush=True)
        out["crash_after_fill"] = run.crash("tail1")
        out["crash_after_fill"]["when"] = kind
        print(f"[{label}] restart: {out['crash_after_fill']['restart_s']} s", flush=True)
        if not args.no_clean_restart:
            print(f"[{label}] clean stop and restart", flush=True)
            out["clean_restart"] = run.clean_restart()
            print(f"[{label}] tail, kill -9 after the clean restart, restart", flush=True)
            out["crash_after_clean"] = run.crash("tail2")
            out["crash_after_clean"]["when"] = "after clean restart"
        out["status"] = "ok" if all_verified(out) else "fail"
    except (BrokerError, OSError, subprocess.SubprocessError) as e:
        out["status"] = "fail"
        out["error"] = str(e)
        print(f"[{label}] failed: {e}", file=sys.stderr)
    except Exception as e:  # e.g. KafkaException from the admin client
        out["status"] = "fail"
        out["error"] = f"{type(e).__name__}: {e}"
        print(f"[{label}] failed: {out['error']}", file=sys.stderr)
    finally:
        run.stop()
        if remove:
            shutil.rmtree(data_dir, ignore_errors=True)
    return out


def all_verified(size: dict[str, Any]) -> bool:
    crashes = [size[k] for k in ("crash_after_fill", "crash_after_clean") if k in size]
    crashes += [c["cold"] for c in crashes if "cold" in c]
    return bool(crashes) and all(c["verify"]["ok"] for c in crashes)


# --------------------------------------------------------------------------- report


def restart_cell(crash: dict[str, Any] | None) -> str:
    if crash is None:
        return "-"
    return f"{crash['restart_s']:.2f} ({crash['self_reported_ms'] or 0:.0f})"


def table(report: dict[str, Any]) -> str:
    head = (
        "| data | kill -9 | tail MB | recovery scans | clean restart s | kill -9 restart s "
        "(own ms), warm cache | same, cold cache | RSS MiB | acked all there |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for size in report["sizes"]:
        data = f"{size['data_gb']:g} GB"
        clean = size.get("clean_restart")
        for key in ("crash_after_fill", "crash_after_clean"):
            crash = size.get(key)
            if crash is None:
                continue
            disk = crash["disk_at_kill"]
            scan = f"{disk['scan_bytes'] / GB:.2f} of {disk['log_bytes'] / GB:.2f} GB"
            if not disk["checkpoint_present"]:
                scan += " (no checkpoint)"
            clean_s = f"{clean['restart_s']:.2f}" if clean and key == "crash_after_clean" else "-"
            cold = crash.get("cold")
            verified = crash["verify"]["ok"] and (cold is None or cold["verify"]["ok"])
            lines.append(
                f"| {data} | {crash['when']} | {crash['tail']['value_bytes'] / MB:.0f} | {scan} "
                f"| {clean_s} | {restart_cell(crash)} | {restart_cell(cold)} "
                f"| {crash['rss_mib'] or 0:.0f} | {'yes' if verified else 'NO'} |"
            )
        if "error" in size:
            lines.append(f"| {data} | failed: {size['error'][:80]} | | | | | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_cleanly_on_sigterm()
    work = Path(tempfile.mkdtemp(prefix="odradek-kill9-"))
    report: dict[str, Any] = {
        "started_at_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_rev": git_rev(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "filesystem": filesystem_type(args.data_dir or work),
        },
        "sizes": [],
    }
    sizes = [("main", args.data_gb, args.data_dir or work / "data-main")]
    if args.compare_gb > 0:
        sizes.append(("compare", args.compare_gb, work / "data-compare"))
    try:
        for label, gb, data_dir in sizes:
            # a --data-dir given is the user's: left in place, like scale.py does
            remove = not args.keep and data_dir != args.data_dir
            report["sizes"].append(run_size(label, gb, data_dir, work, args, remove=remove))
    except KeyboardInterrupt:
        report["error"] = "interrupted"
    ok = bool(report["sizes"]) and all(s["status"] == "ok" for s in report["sizes"])
    ok = ok and len(report["sizes"]) == len(sizes)
    report["status"] = "ok" if ok else "fail"
    report["finished_at_utc"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(report))
    if ok and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
        print(f"result: {report['status']}; JSON in {args.json}")
    else:
        print(f"result: {report['status']}; JSON in {args.json}; logs kept in {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
