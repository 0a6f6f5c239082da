#!/usr/bin/env python3
"""The replicated cluster: throughput and latency against one broker, failover after
kill -9 and controlled shutdown of a leader, and a consumer group whose coordinator is
killed. Prints a table; asserts nothing.

    .venv/bin/python benchmarks/cluster.py                     # everything, about 4-5 minutes
    .venv/bin/python benchmarks/cluster.py --kills 3 --shutdowns 2 --coordinator-kills 1

The cluster is three `python -m odradek broker` processes on a ZooKeeper of its own
(odradek.testing.cluster.Cluster: replica.lag.time.max.ms=10000,
group.initial.rebalance.delay.ms=0, everything else at its default); the baseline is one
plain `odradek broker` without ZooKeeper (bench_broker.BrokerProcess, all defaults). Both
run in the same sitting; the throughput rounds alternate between them. Throughput and
latency reuse run.py's cases (bench_cases.py, each in a child process with a hard time
limit); the cluster's topics are created beforehand with replication factor 3 and
min.insync.replicas=2. Every wait is bounded and every process is stopped by PID.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_broker import (
    BrokerError,
    BrokerProcess,
    cpu_seconds,
    git_rev,
    stop_cleanly_on_sigterm,
    warm_page_cache,
)
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from run import run_child

from odradek.testing.cluster import Cluster

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "cluster.json"
RF3 = {"min.insync.replicas": "2"}
WAIT_S = 60.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--session-timeout-ms", type=int, default=6000, help="ZooKeeper session")
    ap.add_argument("--count", type=int, default=150_000, help="1 KiB records per round")
    ap.add_argument("--partitions", type=int, default=3, help="partitions, throughput topic")
    ap.add_argument("--rounds", type=int, default=2, help="alternating throughput rounds")
    ap.add_argument("--lat-seconds", type=float, default=10.0, help="latency case duration")
    ap.add_argument("--kills", type=int, default=10, help="kill -9 of a partition leader")
    ap.add_argument("--shutdowns", type=int, default=5, help="SIGTERM of a partition leader")
    ap.add_argument("--coordinator-kills", type=int, default=3, help="kill -9 of a coordinator")
    ap.add_argument("--budget-s", type=float, default=330.0, help="wall clock; then skip")
    ap.add_argument(
        "--warm-page-cache-mib",
        type=int,
        default=2048,
        help="MiB written and deleted before the sitting (bench_broker.warm_page_cache); 0: none",
    )
    ap.add_argument(
        "--warm-round-mib",
        type=int,
        default=1024,
        help="MiB written and deleted just before every throughput round (single and "
        "cluster alike); 0: none",
    )
    ap.add_argument(
        "--warm-up-rounds",
        type=int,
        default=1,
        help="unrecorded throughput rounds on each before the recorded ones",
    )
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the JSON")
    ap.add_argument("--keep", action="store_true", help="keep data and logs")
    return ap.parse_args(argv)


def now() -> float:
    return time.perf_counter()


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Polls `check` every 20 ms until it returns something truthy; TimeoutError after."""
    deadline = now() + timeout
    while True:
        value = check()
        if value:
            return value
        if now() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.02)


class Budget:
    """The run's wall-clock budget: phases ask before each repetition."""

    def __init__(self, seconds: float) -> None:
        self.deadline = now() + seconds
        self.skipped: list[str] = []

    def allows(self, what: str) -> bool:
        if now() < self.deadline:
            return True
        self.skipped.append(what)
        return False


# --------------------------------------------------------------------------- throughput


def throughput_round(
    args: argparse.Namespace, work: Path, run_id: str, case: str, bootstrap: str, pids: list[int]
) -> dict[str, Any]:
    """run.py's 1 KiB throughput case (produce, then consume) on `bootstrap`."""
    params = {
        "kind": "throughput",
        "case": case,
        "partitions": args.partitions,
        "size": 1024,
        "count": args.count,
        "produce_max_s": 20.0,
        "flush_s": 20.0,
        "consume_max_s": 20.0,
        "idle_s": 10.0,
        "bootstrap": bootstrap,
        "broker_pid": None,
        "run_id": run_id,
    }
    warmed_s = warm_page_cache(work, args.warm_round_mib) if args.warm_round_mib > 0 else 0.0
    cpu0 = [cpu_seconds(pid) or 0.0 for pid in pids]
    result = run_child(params, work, hard_limit=150)
    cpu1 = [cpu_seconds(pid) or 0.0 for pid in pids]
    result["brokers_cpu_s"] = round(sum(cpu1) - sum(cpu0), 2)
    result["warm_up_s"] = round(warmed_s, 2)
    return result


def throughput(
    args: argparse.Namespace, work: Path, run_id: str, single: BrokerProcess, cluster: Cluster
) -> dict[str, list[dict[str, Any]]]:
    """Alternating rounds: the single broker (topic created by the case, RF 1), then the
    cluster (topic created here, RF 3)."""
    out: dict[str, list[dict[str, Any]]] = {"single": [], "cluster": []}
    cluster_pids = [b.pid for b in cluster.brokers.values() if b.pid]
    for n in range(args.warm_up_rounds):
        # Unrecorded: a process's first round also pays for growing its heap and
        # buffers into memory never touched before.
        print(f"warm-up round {n + 1} (not recorded)", flush=True)
        throughput_round(args, work, run_id, f"warm-single-{n}", single.bootstrap, [])
        case = f"warm-cluster-{n}"
        cluster.create_topic(f"bench-{run_id}-{case}", args.partitions, 3, RF3)
        throughput_round(args, work, run_id, case, cluster.bootstrap_servers, [])
    for n in range(args.rounds):
        case = f"single-{n}"
        print(f"throughput round {n + 1}: 1 broker", flush=True)
        out["single"].append(
            throughput_round(args, work, run_id, case, single.bootstrap, [single.pid or 0])
        )
        case = f"cluster-{n}"
        cluster.create_topic(f"bench-{run_id}-{case}", args.partitions, 3, RF3)
        print(f"throughput round {n + 1}: 3 brokers", flush=True)
        out["cluster"].append(
            throughput_round(args, work, run_id, case, cluster.bootstrap_servers, cluster_pids)
        )
    return out


def latency(
    args: argparse.Namespace, work: Path, run_id: str, single: BrokerProcess, cluster: Cluster
) -> dict[str, dict[str, Any]]:
    """run.py's latency case (100 B at 2,000 msg/s, acks=all) on each."""
    out = {}
    for label, bootstrap in (("single", single.bootstrap), ("cluster", cluster.bootstrap_servers)):
        case = f"latency-{label}"
        if label == "cluster":
            cluster.create_topic(f"bench-{run_id}-{case}", 1, 3, RF3)
        params = {
            "kind": "latency",
            "case": case,
            "rate": 2000,
            "seconds": args.lat_seconds,
            "warmup_s": 1.0,
            "drain_s": 10.0,
            "bootstrap": bootstrap,
            "broker_pid": None,
            "run_id": run_id,
        }
        print(f"latency: {label}", flush=True)
        out[label] = run_child(params, work, hard_limit=args.lat_seconds + 100)
    return out


# --------------------------------------------------------------------------- failover


class AckClock(threading.Thread):
    """An idempotent acks=all producer sending 100 B records at a fixed rate, record N to
    partition N mod `partitions`, from its own thread; keeps (ack receive time, N)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, rate: float) -> None:
        super().__init__(name=f"ack-clock-{topic}", daemon=True)
        self.topic = topic
        self.partitions = partitions
        self.interval = 1.0 / rate
        self.sent = 0
        self.acks: list[tuple[float, int]] = []
        self.errors: list[str] = []
        self.stop_event = threading.Event()
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 1,
            }
        )

    def _delivered(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))
        else:
            self.acks.append((now(), int.from_bytes(msg.value()[:8], "big")))

    def run(self) -> None:
        padding = bytes(92)
        due = now()
        while not self.stop_event.is_set():
            seq = self.sent
            value = seq.to_bytes(8, "big") + padding
            self.producer.produce(
                self.topic, value, partition=seq % self.partitions, on_delivery=self._delivered
            )
            self.sent += 1
            due += self.interval
            # poll() serves delivery reports as they come while waiting for the next send
            self.producer.poll(max(0.0, due - now()))
        self.producer.flush(30)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(40)

    def first_ack_from(self, seq: int) -> float | None:
        """When the first record numbered `seq` or later was acknowledged (acks come in
        order: walks back from the newest)."""
        acks = self.acks
        i = len(acks)
        while i > 0 and acks[i - 1][1] >= seq:
            i -= 1
        return acks[i][0] if i < len(acks) else None

    def longest_gap(self, start: float, end: float) -> float:
        """The longest stretch in [start, end] without an acknowledgement."""
        times = [start, *(t for t, _ in self.acks if start <= t <= end), end]
        return max(b - a for a, b in itertools.pairwise(times))

    def flowing(self) -> bool:
        """Whether a record sent from now on gets acknowledged (waited, bounded)."""
        seq = self.sent
        return bool(wait_for(lambda: self.first_ack_from(seq), "acks flowing"))


def kill_leader(cluster: Cluster, clock: AckClock, topic: str) -> dict[str, Any]:
    """kill -9 of the partition's leader: seconds to a new leader in ZooKeeper and to the
    first acknowledgement of a record sent after the kill; then a restart."""
    leader = cluster.leader_of(topic, 0)
    was_controller = cluster.controller() == leader
    seq, t0 = clock.sent, now()
    cluster.kill(leader)
    elected: float | None = None
    first: float | None = None

    def done() -> bool:
        nonlocal elected, first
        if elected is None:
            state = cluster.partition_state(topic, 0) or {}
            if state.get("leader", -1) not in (-1, leader):
                elected = now() - t0
        if first is None and (t := clock.first_ack_from(seq)) is not None:
            first = t - t0
        return elected is not None and first is not None

    wait_for(done, "a new leader acknowledging")
    cluster.restart(leader)
    cluster.wait_isr_size(topic, 0, 3, WAIT_S)
    clock.flowing()
    return {
        "killed": leader,
        "was_controller": was_controller,
        "elected_s": elected,
        "first_ack_s": first,
    }


class LeaderWatch(threading.Thread):
    """Polls ZooKeeper every 10 ms until the partition's leader is no longer `old`;
    `after` is then the seconds since `t0`."""

    def __init__(self, cluster: Cluster, topic: str, old: int, t0: float) -> None:
        super().__init__(daemon=True)
        self.cluster, self.topic, self.old, self.t0 = cluster, topic, old, t0
        self.after: float | None = None

    def run(self) -> None:
        while now() - self.t0 < WAIT_S:
            state = self.cluster.partition_state(self.topic, 0) or {}
            if state.get("leader", self.old) != self.old:
                self.after = now() - self.t0
                return
            time.sleep(0.01)


def shut_down_leader(cluster: Cluster, clock: AckClock, topic: str) -> dict[str, Any]:
    """SIGTERM of the partition's leader (controlled shutdown): the longest stretch
    without an acknowledgement from the signal to 2 s after the exit; then a restart."""
    leader = cluster.leader_of(topic, 0)
    seq, t0 = clock.sent, now()
    moved = LeaderWatch(cluster, topic, leader, t0)
    moved.start()
    cluster.stop_broker(leader)
    exited = now() - t0
    time.sleep(2.0)
    gap = clock.longest_gap(t0 - 0.5, now())
    first = clock.first_ack_from(seq)
    cluster.restart(leader)
    cluster.wait_isr_size(topic, 0, 3, WAIT_S)
    clock.flowing()
    moved.join(WAIT_S)
    return {
        "stopped": leader,
        "exit_s": exited,
        "handed_over_s": moved.after,
        "longest_gap_s": gap,
        "first_ack_s": None if first is None else first - t0,
    }


def failover(
    args: argparse.Namespace, cluster: Cluster, budget: Budget
) -> dict[str, list[dict[str, Any]]]:
    topic = f"failover-{uuid.uuid4().hex[:6]}"
    cluster.create_topic(topic, 1, 3, RF3)
    clock = AckClock(cluster.bootstrap_servers, topic, 1, rate=1000)
    clock.start()
    out: dict[str, list[dict[str, Any]]] = {"kills": [], "shutdowns": []}
    try:
        clock.flowing()
        for n in range(args.kills):
            if budget.allows(f"kill {n + 1}"):
                print(f"failover: kill -9 {n + 1}/{args.kills}", flush=True)
                out["kills"].append(kill_leader(cluster, clock, topic))
        for n in range(args.shutdowns):
            if budget.allows(f"shutdown {n + 1}"):
                print(f"failover: SIGTERM {n + 1}/{args.shutdowns}", flush=True)
                out["shutdowns"].append(shut_down_leader(cluster, clock, topic))
    finally:
        clock.stop()
    out["errors"] = [{"count": len(clock.errors), "first": clock.errors[:1]}]
    return out


# --------------------------------------------------------------------------- group


class Member(threading.Thread):
    """A consumer of the group polling in its own thread: (receive time, partition, N)."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        super().__init__(daemon=True)
        self.received: list[tuple[float, int, int]] = []
        self.assignments = 0
        self.stop_event = threading.Event()
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        self.consumer.subscribe([topic], on_assign=self._assigned)

    def _assigned(self, _consumer: Consumer, _partitions: list[Any]) -> None:
        self.assignments += 1

    def run(self) -> None:
        while not self.stop_event.is_set():
            msg = self.consumer.poll(0.05)
            if msg is not None and msg.error() is None:
                seq = int.from_bytes(msg.value()[:8], "big")
                self.received.append((now(), msg.partition(), seq))
        self.consumer.close()

    def first_from(self, index: int, seq: int) -> tuple[float, int] | None:
        """(time, partition) of the first record numbered `seq` or later received at
        position `index` or later."""
        for t, partition, n in self.received[index:]:
            if n >= seq:
                return t, partition
        return None


def coordinator_of(admin: AdminClient, group: str) -> int:
    description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(15)
    return int(description.coordinator.id)


def consuming_again(members: list[Member], marks: list[int], seq: int, parts: int) -> Any:
    """(time every member got a record numbered `seq` or later, time every partition
    delivered one) once both happened, else None."""
    firsts: dict[int, float] = {}
    member_times = []
    for member, mark in zip(members, marks, strict=True):
        got = [(t, p) for t, p, n in member.received[mark:] if n >= seq]
        if not got:
            return None
        member_times.append(got[0][0])
        for t, p in got:
            firsts.setdefault(p, t)
    if len(firsts) < parts:
        return None
    return max(member_times), max(firsts.values())


def kill_coordinator(
    cluster: Cluster, admin: AdminClient, group: str, members: list[Member], clock: AckClock
) -> dict[str, Any]:
    """kill -9 of the group's coordinator: seconds until every member, and every
    partition, delivered a record sent after the kill; then a restart."""
    coordinator = coordinator_of(admin, group)
    leads = [p for p in range(clock.partitions) if cluster.leader_of(clock.topic, p) == coordinator]
    marks = [len(m.received) for m in members]
    assignments = sum(m.assignments for m in members)
    seq, t0 = clock.sent, now()
    cluster.kill(coordinator)
    members_t, partitions_t = wait_for(
        lambda: consuming_again(members, marks, seq, clock.partitions), "the group consuming"
    )
    moved_to = coordinator_of(admin, group)
    cluster.restart(coordinator)
    for p in range(clock.partitions):
        cluster.wait_isr_size(clock.topic, p, 3, WAIT_S)
    return {
        "killed": coordinator,
        "new_coordinator": moved_to,
        "killed_led_partitions": leads,
        "members_s": members_t - t0,
        "partitions_s": partitions_t - t0,
        "rebalances": sum(m.assignments for m in members) - assignments,
    }


def group_failover(
    args: argparse.Namespace, cluster: Cluster, budget: Budget
) -> list[dict[str, Any]]:
    topic, group = f"grouped-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    parts = 6
    cluster.create_topic(topic, parts, 3, RF3)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    clock = AckClock(cluster.bootstrap_servers, topic, parts, rate=300)
    members = [Member(cluster.bootstrap_servers, topic, group) for _ in range(3)]
    out = []
    try:
        clock.start()
        for member in members:
            member.start()
        for n in range(args.coordinator_kills):
            seq, marks = clock.sent, [len(m.received) for m in members]
            wait_for(lambda s=seq, k=marks: consuming_again(members, k, s, parts), "settled")
            if budget.allows(f"coordinator kill {n + 1}"):
                print(f"group: kill -9 of the coordinator {n + 1}", flush=True)
                out.append(kill_coordinator(cluster, admin, group, members, clock))
    finally:
        for member in members:
            member.stop_event.set()
        for member in members:
            member.join(30)
        clock.stop()
    return out


# --------------------------------------------------------------------------- report


def spread(values: list[float], scale: float = 1.0, digits: int = 0) -> str:
    """'min-max' of the values times `scale`, or the one value."""
    if not values:
        return "-"
    low, high = min(values) * scale, max(values) * scale
    if len(values) == 1 or f"{low:,.{digits}f}" == f"{high:,.{digits}f}":
        return f"{low:,.{digits}f}"
    return f"{low:,.{digits}f}-{high:,.{digits}f}"


def phase_values(rounds: list[dict[str, Any]], phase: str, key: str) -> list[float]:
    return [r[phase][key] for r in rounds if r.get(phase, {}).get(key) is not None]


def mean_ratio(a: list[float], b: list[float]) -> str:
    if not a or not b:
        return "-"
    return f"{statistics.mean(b) / statistics.mean(a):.2f}"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def p50_max(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} / {max(values):.2f} s ({len(values)})"


def render_throughput(report: dict[str, Any]) -> list[str]:
    single, cluster = (
        report["throughput"].get("single", []),
        report["throughput"].get("cluster", []),
    )
    rows = [["1 KiB, confluent-kafka", "1 broker, RF 1", "3 brokers, RF 3", "ratio (means)"]]
    for phase in ("produce", "consume"):
        for key, label, scale in (("msgs_per_s", "msg/s", 1e-3), ("mb_per_s", "MB/s", 1.0)):
            a, b = phase_values(single, phase, key), phase_values(cluster, phase, key)
            unit = "k msg/s" if key == "msgs_per_s" else "MB/s"
            rows.append(
                [
                    f"{phase} {label}",
                    f"{spread(a, scale)} {unit}",
                    f"{spread(b, scale)} {unit}",
                    mean_ratio(a, b),
                ]
            )
    cpu = [[r.get("brokers_cpu_s") or 0.0 for r in rounds] for rounds in (single, cluster)]
    rows.append(
        ["brokers' CPU s per round", spread(cpu[0], digits=1), spread(cpu[1], digits=1), ""]
    )
    notes = [
        f"  {r['case_wall_s']:.0f} s {r.get('status')}: {r.get('note') or ''}"
        + " ".join(str(r[p].get("note") or "") for p in ("produce", "consume") if p in r)
        for r in (*single, *cluster)
        if r.get("status") != "ok"
    ]
    return [table(rows), *notes]


def render_latency(report: dict[str, Any], target_ms: float = 20.0) -> list[str]:
    lat = report["latency"]
    rows = [["2,000 msg/s x 100 B, acks=all", "1 broker, RF 1", "3 brokers, RF 3", "target"]]
    for key, label in (("e2e_ms", "send -> receive"), ("ack_ms", "send -> ack")):
        for q in ("p50", "p99", "max"):
            cells = [_ms(lat.get(side, {}).get(key, {}).get(q)) for side in ("single", "cluster")]
            target = f"<= {target_ms:.0f} ms" if (key, q) == ("e2e_ms", "p99") else ""
            rows.append([f"{label} {q}", *cells, target])
    lost = [
        f"{side}: {lat[side].get('lost', '?')} lost, {lat[side].get('duplicates', '?')} dup, "
        f"status {lat[side].get('status')}"
        for side in ("single", "cluster")
        if side in lat
    ]
    return [table(rows), "  " + "; ".join(lost)]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f} ms"


def render_failover(report: dict[str, Any], session_s: float) -> list[str]:
    kills, shutdowns = report["failover"].get("kills", []), report["failover"].get("shutdowns", [])
    group = report["group"]
    rows = [
        ["failover", "p50 / max (count)", "target"],
        ["kill -9 leader -> new leader in ZooKeeper", p50_max([k["elected_s"] for k in kills]), ""],
        [
            "kill -9 leader -> first acks=all success",
            p50_max([k["first_ack_s"] for k in kills]),
            f"<= {session_s + 2:.1f} s",
        ],
        [
            "SIGTERM leader -> longest stretch without ack",
            p50_max([s["longest_gap_s"] for s in shutdowns]),
            "<= 1.0 s",
        ],
        [
            "SIGTERM leader -> new leader in ZooKeeper",
            p50_max([s["handed_over_s"] for s in shutdowns if s["handed_over_s"] is not None]),
            "",
        ],
        ["SIGTERM leader -> process exit", p50_max([s["exit_s"] for s in shutdowns]), ""],
        [
            "kill -9 coordinator -> every member got a new record",
            p50_max([g["members_s"] for g in group]),
            f"<= {session_s + 3:.1f} s",
        ],
        [
            "kill -9 coordinator -> every partition consumed again",
            p50_max([g["partitions_s"] for g in group]),
            "",
        ],
    ]
    errors = report["failover"].get("errors", [{"count": 0, "first": []}])[0]
    lines = [table(rows)]
    lines.append(
        "  kills: "
        + ", ".join(
            f"{k['killed']}{'*' if k['was_controller'] else ''} {k['first_ack_s']:.2f} s"
            for k in kills
        )
        + " (* = also the controller)"
    )
    lines.append(
        "  coordinator kills: "
        + ", ".join(
            f"{g['killed']}->{g['new_coordinator']} led {g['killed_led_partitions']}, "
            f"{g['rebalances']} rebalances"
            for g in group
        )
    )
    lines.append(f"  producer delivery errors: {errors['count']} {errors['first']}")
    return lines


def warm_up_line(report: dict[str, Any]) -> str:
    warm = report.get("page_cache_warm_up")
    sitting = (
        f"page cache warmed before the sitting: {warm['mib']} MiB in {warm['seconds']} s"
        if warm
        else "page cache not warmed before the sitting"
    )
    mib = report.get("warm_round_mib", 0)
    each = f"; {mib} MiB before every throughput round" if mib else ""
    unrecorded = report.get("warm_up_rounds", 0)
    first = f"; {unrecorded} unrecorded round(s) on each first" if unrecorded else ""
    return sitting + each + first


def render(report: dict[str, Any]) -> str:
    session_s = report["session_timeout_ms"] / 1000
    out = [
        f"odradek cluster benchmark - {report['started_at']} - git {report['git_rev']}",
        f"{report['cpus']} cores, load average {report['load_at_start']} at the start; "
        f"ZooKeeper session timeout {report['session_timeout_ms']} ms; "
        f"cluster: 3 brokers, RF 3, min.insync.replicas=2, acks=all",
        warm_up_line(report),
        "",
        f"throughput: {report['count']:,} x 1 KiB per round, {report['partitions']} "
        f"partitions, alternating rounds (run.py's case)",
        *render_throughput(report),
        "",
        *render_latency(report),
        "",
        *render_failover(report, session_s),
    ]
    out += [f"error in {e}" for e in report["errors"]]
    if report["skipped"]:
        out.append(f"skipped for the time budget: {', '.join(report['skipped'])}")
    out.append(f"\ntotal {report['total_s']:.0f} s")
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_cleanly_on_sigterm()
    t0 = now()
    budget = Budget(args.budget_s)
    work = Path(tempfile.mkdtemp(prefix="odradek-cluster-bench-"))
    run_id = dt.datetime.now().strftime("%H%M%S") + secrets.token_hex(2)
    report: dict[str, Any] = {
        "started_at": dt.datetime.now().isoformat(timespec="seconds"),
        "git_rev": git_rev(),
        "cpus": len(os.sched_getaffinity(0)),
        "load_at_start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "session_timeout_ms": args.session_timeout_ms,
        "count": args.count,
        "partitions": args.partitions,
        "warm_round_mib": args.warm_round_mib,
        "warm_up_rounds": args.warm_up_rounds,
    }
    single = BrokerProcess(work / "single", work / "single.log")
    cluster = Cluster(3, session_timeout_ms=args.session_timeout_ms, data_dir=str(work / "3"))
    phases: list[tuple[str, Callable[[], Any], Any]] = [
        ("throughput", lambda: throughput(args, work, run_id, single, cluster), {}),
        ("latency", lambda: latency(args, work, run_id, single, cluster), {}),
        ("failover", lambda: failover(args, cluster, budget), {}),
        ("group", lambda: group_failover(args, cluster, budget), []),
    ]
    report["errors"] = []
    if args.warm_page_cache_mib > 0:
        print(f"warming the page cache: {args.warm_page_cache_mib} MiB", flush=True)
        report["page_cache_warm_up"] = {
            "mib": args.warm_page_cache_mib,
            "seconds": round(warm_page_cache(work, args.warm_page_cache_mib), 2),
        }
    try:
        print("starting 1 broker and a cluster of 3 with ZooKeeper", flush=True)
        single.start(timeout=30)
        cluster.start()
        for name, phase, empty in phases:
            if name == "failover":
                single.stop()  # the baseline is done: its CPU goes back to the cluster
            try:
                report[name] = phase()
            except (TimeoutError, AssertionError, BrokerError, KafkaException) as exc:
                report[name] = empty
                report["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
    finally:
        single.stop()
        cluster.stop()
    report["skipped"] = budget.skipped
    report["total_s"] = round(now() - t0, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(render(report))
    if args.keep:
        print(f"data and logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
