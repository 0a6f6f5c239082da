"""A history of what clients did against a cluster, and a checker of it, in the manner of
Jepsen's Kafka analysis.

Producers record every send, acknowledgement (partition, offset) and failure; consumers
record every record they read; the nemesis and a ZooKeeper watcher record what they did
and saw as `info` operations. Each operation carries the seconds since the history began.
After the cluster healed, the final log (every partition read from the beginning) is
checked against the history:

- lost: an acknowledged value is not at the (partition, offset) it was acknowledged with;
- duplicate: a value of an idempotent producer is in the log more than once;
- order: offsets of a partition do not strictly increase, or one producer's values in a
  partition are not in the order it sent them;
- vanished: a consumer read a value at an offset where the final log has another value or
  none (it read something that was later truncated away);
- phantom: the log holds a value nobody sent.

Values are `<producer>-<sequence>` (`ck-17`): the sequence counts that producer's sends.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

# partition -> [(offset, value)] in offset order, as read from the beginning
FinalLog = dict[int, list[tuple[int, bytes]]]


@dataclass(frozen=True)
class Op:
    """One operation: `kind` is send, ack, fail, read or info."""

    time: float
    process: str
    kind: str
    value: bytes | None = None
    partition: int | None = None
    offset: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        where = "" if self.partition is None else f" p{self.partition}"
        where += "" if self.offset is None else f"@{self.offset}"
        value = "" if self.value is None else f" {self.value.decode(errors='replace')}"
        detail = f" {self.detail}" if self.detail else ""
        return f"{self.time:8.3f} {self.process:>10} {self.kind:<5}{value}{where}{detail}"


@dataclass(frozen=True)
class Anomaly:
    """A violation the checker found: its kind, what it is, and when it became visible."""

    kind: str
    detail: str
    time: float | None = None


class History:
    """A thread-safe, append-only list of operations with timestamps."""

    def __init__(self) -> None:
        self._ops: list[Op] = []
        self._lock = threading.Lock()
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Seconds since the history began."""
        return time.monotonic() - self._t0

    def _add(self, op: Op) -> None:
        with self._lock:
            self._ops.append(op)

    def send(self, process: str, value: bytes, partition: int | None = None) -> None:
        self._add(Op(self.now(), process, "send", value, partition))

    def ack(self, process: str, value: bytes, partition: int, offset: int) -> None:
        self._add(Op(self.now(), process, "ack", value, partition, offset))

    def fail(self, process: str, value: bytes, error: str) -> None:
        self._add(Op(self.now(), process, "fail", value, detail=error))

    def read(self, process: str, partition: int, offset: int, value: bytes) -> None:
        self._add(Op(self.now(), process, "read", value, partition, offset))

    def info(self, process: str, detail: str) -> None:
        self._add(Op(self.now(), process, "info", detail=detail))

    def ops(self) -> list[Op]:
        """A copy of every operation so far, in the order they were recorded."""
        with self._lock:
            return list(self._ops)

    def count(self, kind: str, process: str | None = None) -> int:
        with self._lock:
            return sum(1 for op in self._ops if op.kind == kind and process in (None, op.process))


def value_of(producer: str, sequence: int) -> bytes:
    return f"{producer}-{sequence}".encode()


def parse_value(value: bytes) -> tuple[str, int] | None:
    """(producer, sequence) of a value written by `value_of`, None for anything else."""
    producer, sep, sequence = value.decode(errors="replace").rpartition("-")
    if not sep or not sequence.isdigit():
        return None
    return producer, int(sequence)


# -- the checks ------------------------------------------------------------------------


def check(ops: Iterable[Op], final: FinalLog, idempotent: set[str]) -> list[Anomaly]:
    """Every anomaly of the history against the final log, each kind sorted by time."""
    ops = list(ops)
    return [
        *lost_acknowledged(ops, final),
        *duplicates(final, idempotent),
        *disorder(final, ops),
        *vanished_reads(ops, final),
        *phantoms(ops, final),
    ]


def _index(final: FinalLog) -> dict[tuple[int, int], bytes]:
    return {(p, o): v for p, entries in final.items() for o, v in entries}


def _where(final: FinalLog) -> dict[bytes, list[tuple[int, int]]]:
    places: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    for partition, entries in final.items():
        for offset, value in entries:
            places[value].append((partition, offset))
    return places


def _log_end(final: FinalLog, partition: int) -> int:
    entries = final.get(partition) or []
    return entries[-1][0] + 1 if entries else 0


def lost_acknowledged(ops: list[Op], final: FinalLog) -> list[Anomaly]:
    """(a) Each acknowledged value is in the final log at its acknowledged position."""
    at = _index(final)
    places = _where(final)
    found = []
    for op in ops:
        if op.kind != "ack" or op.partition is None or op.offset is None or op.value is None:
            continue
        there = at.get((op.partition, op.offset))
        if there == op.value:
            continue
        if there is None:
            now = f"nothing (log end {_log_end(final, op.partition)})"
        else:
            now = there.decode(errors="replace")
        elsewhere = places.get(op.value, [])
        found.append(
            Anomaly(
                "lost",
                f"{op.value.decode()} acked at p{op.partition}@{op.offset} by {op.process}; "
                f"the log has {now} there"
                + (f"; the value is at {elsewhere}" if elsewhere else "; the value is nowhere"),
                op.time,
            )
        )
    return found


def duplicates(final: FinalLog, idempotent: set[str]) -> list[Anomaly]:
    """(b) No value of an idempotent producer is in the log twice."""
    found = []
    for value, places in _where(final).items():
        parsed = parse_value(value)
        if len(places) > 1 and parsed is not None and parsed[0] in idempotent:
            found.append(Anomaly("duplicate", f"{value.decode()} at {sorted(places)}"))
    return found


def disorder(final: FinalLog, ops: list[Op]) -> list[Anomaly]:
    """(c) Offsets strictly increase per partition; each producer's values in a partition
    come in its send order."""
    sent_at = {op.value: op.time for op in ops if op.kind == "send" and op.value is not None}
    found = []
    for partition, entries in sorted(final.items()):
        last_offset = -1
        last_sequence: dict[str, tuple[int, int]] = {}
        for offset, value in entries:
            if offset <= last_offset:
                found.append(Anomaly("order", f"p{partition}: offset {offset} after {last_offset}"))
            last_offset = offset
            parsed = parse_value(value)
            if parsed is None:
                continue
            producer, sequence = parsed
            previous = last_sequence.get(producer)
            if previous is not None and sequence <= previous[0]:
                found.append(
                    Anomaly(
                        "order",
                        f"p{partition}: {value.decode()} at offset {offset} after "
                        f"{producer}-{previous[0]} at offset {previous[1]}",
                        sent_at.get(value),
                    )
                )
            last_sequence[producer] = (sequence, offset)
    return found


def vanished_reads(ops: list[Op], final: FinalLog) -> list[Anomaly]:
    """(d) Every record a consumer read is in the final log at the offset it was read at."""
    at = _index(final)
    found = []
    reported: set[tuple[int, int, bytes]] = set()
    for op in ops:
        if op.kind != "read" or op.partition is None or op.offset is None or op.value is None:
            continue
        there = at.get((op.partition, op.offset))
        key = (op.partition, op.offset, op.value)
        if there == op.value or key in reported:
            continue
        reported.add(key)
        now = "nothing" if there is None else there.decode(errors="replace")
        found.append(
            Anomaly(
                "vanished",
                f"{op.process} read {op.value.decode(errors='replace')} at "
                f"p{op.partition}@{op.offset}; the log has {now} there",
                op.time,
            )
        )
    return found


def phantoms(ops: list[Op], final: FinalLog) -> list[Anomaly]:
    """Every value in the log was sent by someone."""
    sent = {op.value for op in ops if op.kind == "send"}
    return [
        Anomaly("phantom", f"p{p}@{o} holds {v!r}, never sent")
        for p, entries in sorted(final.items())
        for o, v in entries
        if v not in sent
    ]


# -- reporting -------------------------------------------------------------------------


def summary(ops: list[Op], final: FinalLog) -> str:
    """One line of counts: operations per kind and records per partition."""
    kinds = Counter(op.kind for op in ops)
    sizes = ", ".join(f"p{p}: {len(e)}" for p, e in sorted(final.items()))
    return (
        f"{kinds['send']} sent, {kinds['ack']} acked, {kinds['fail']} failed, "
        f"{kinds['read']} read by consumers, {kinds['info']} nemesis/state events; "
        f"final log {sizes}"
    )


def report(anomalies: list[Anomaly], ops: list[Op], per_kind: int = 10) -> str:
    """The first `per_kind` anomalies of each kind, then the nemesis and leadership
    events around the earliest one."""
    by_kind: dict[str, list[Anomaly]] = defaultdict(list)
    for anomaly in anomalies:
        by_kind[anomaly.kind].append(anomaly)
    lines = []
    for kind, found in by_kind.items():
        found.sort(key=lambda a: (a.time is None, a.time or 0.0))
        lines.append(f"{len(found)} {kind}:")
        lines += [_anomaly_line(a) for a in found[:per_kind]]
    timed = [a.time for a in anomalies if a.time is not None]
    if timed:
        first = min(timed)
        lines.append(f"events from {first - 15:.1f} s to {first + 3:.1f} s:")
        lines += [
            f"  {op}" for op in ops if op.kind == "info" and first - 15 <= op.time <= first + 3
        ]
    return "\n".join(lines)


def _anomaly_line(anomaly: Anomaly) -> str:
    when = "" if anomaly.time is None else f"[{anomaly.time:8.3f}] "
    return f"  {when}{anomaly.detail}"
