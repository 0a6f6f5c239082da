"""The live progress line of `odradek perf` and the `--print-metrics` selection, in-process."""

from __future__ import annotations

import io
from typing import Any

from odradek.cli.clientstats import select_metrics
from odradek.cli.liveline import LiveLine, format_progress


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_format_progress() -> None:
    """Records of the total, rates since the start and (producing) latencies, in the words
    of Kafka's perf tools."""
    line = format_progress("produce", 2500, 10000, 2.0, 2 * 1024 * 1024, (3.25, 40.0))
    assert line == (
        "produce: 2500/10000 records (25%), 1250.0 records/sec (1.00 MB/sec), "
        "3.2 ms avg latency, 40.0 ms max latency"
    )
    assert format_progress("consume", 0, 5, 0.0, 0) == (
        "consume: 0/5 records (0%), 0.0 records/sec (0.00 MB/sec)"
    )


def test_no_line_without_a_terminal() -> None:
    """Written to a pipe or file (as under tests), the line never appears."""
    stream = io.StringIO()
    line = LiveLine("produce", 10, stream)
    for done in range(1, 11):
        line.update(done, done * 100, (1.0, 2.0))
    line.close()
    assert stream.getvalue() == ""


def test_line_redrawn_in_place_on_a_terminal() -> None:
    """On a terminal the line is redrawn after a carriage return, erasing the old tail, at
    most every quarter second (but always at the end), and erased on close."""
    stream = Terminal()
    now = [100.0]
    line = LiveLine("consume", 4, stream, clock=lambda: now[0])
    line.update(1, 10)
    now[0] += 0.1
    line.update(2, 20)  # too soon after the first: not drawn
    now[0] += 0.2
    line.update(3, 30)  # a quarter second after the first: drawn
    now[0] += 0.01
    line.update(4, 40)  # the last record: drawn at once
    drawn = stream.getvalue().split("\r")[1:]
    assert [d.split(" records")[0] for d in drawn] == [
        "consume: 1/4",
        "consume: 3/4",
        "consume: 4/4",
    ]
    assert "10.0 records/sec" in drawn[1]  # 3 records in 0.3 s
    assert all(d.endswith("\x1b[K") for d in drawn)
    line.close()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_select_metrics() -> None:
    """Client totals, per real broker counters and latency windows in ms, per topic batch
    windows; bootstrap connections (nodeid -1) and empty windows left out."""
    stats: dict[str, Any] = {
        "txmsgs": 100,
        "tx": 7,
        "name": "odradek-cli#producer-1",
        "brokers": {
            "127.0.0.1:9092/bootstrap": {"nodeid": -1, "tx": 1},
            "127.0.0.1:9092/1": {
                "nodeid": 1,
                "tx": 6,
                "txretries": 0,
                "rtt": {"cnt": 6, "avg": 1500, "p99": 3000, "max": 3100},
                "int_latency": {"cnt": 0, "avg": 0, "p99": 0, "max": 0},
            },
        },
        "topics": {"t": {"batchsize": {"cnt": 6, "avg": 1700, "p99": 2000, "max": 2100}}},
    }
    assert select_metrics(stats) == {
        "tx": 7,
        "txmsgs": 100,
        "broker.1.tx": 6,
        "broker.1.txretries": 0,
        "broker.1.rtt_avg_ms": 1.5,
        "broker.1.rtt_p99_ms": 3.0,
        "broker.1.rtt_max_ms": 3.1,
        "topic.t.batchsize_avg": 1700,
        "topic.t.batchsize_p99": 2000,
        "topic.t.batchsize_max": 2100,
    }
    assert select_metrics(None) == {}
