"""`--print-metrics` of `odradek perf`: librdkafka's statistics (the client's counters,
as Kafka's perf tools print the Java client's metrics), reduced to the figures a
performance run is read by, as one flat name -> number mapping; and the summary output
that carries them."""

from __future__ import annotations

import json
import time
from typing import Any

from odradek.cli.output import emit

# How often librdkafka emits statistics while metrics are asked for.
STATS_INTERVAL_MS = 500

_CLIENT = (
    "tx",
    "tx_bytes",
    "rx",
    "rx_bytes",
    "txmsgs",
    "txmsg_bytes",
    "rxmsgs",
    "rxmsg_bytes",
    "msg_cnt",
    "metadata_cache_cnt",
)
_BROKER = (
    "tx",
    "txbytes",
    "txerrs",
    "txretries",
    "req_timeouts",
    "rx",
    "rxbytes",
    "rxerrs",
    "connects",
    "disconnects",
)
# librdkafka's windowed latencies are in microseconds.
_BROKER_WINDOWS = ("rtt", "int_latency", "outbuf_latency")
_TOPIC_WINDOWS = ("batchsize", "batchcnt")


class StatsCollector:
    """The `stats_cb` of a client: keeps the latest statistics document."""

    def __init__(self) -> None:
        self.latest: dict[str, Any] | None = None
        self.received = 0

    def __call__(self, raw: str) -> None:
        self.latest = json.loads(raw)
        self.received += 1

    def config(self) -> dict[str, Any]:
        """The client properties that make librdkafka call this collector."""
        return {"statistics.interval.ms": STATS_INTERVAL_MS, "stats_cb": self}

    def refresh(self, serve: Any, timeout_s: float) -> dict[str, Any] | None:
        """Statistics emitted after this call (so they count the whole run): `serve(s)`
        runs the client's callbacks (poll) until one arrives or `timeout_s` passes."""
        before = self.received
        deadline = time.monotonic() + timeout_s
        while self.received == before and time.monotonic() < deadline:
            serve(0.1)
        return self.latest

    def metrics(self, serve: Any, timeout_s: float) -> dict[str, float]:
        """`select_metrics` of statistics that count the whole run (see `refresh`)."""
        return select_metrics(self.refresh(serve, 2.0 + timeout_s))


def emit_summary(
    output: str,
    document: dict[str, Any],
    rows: list[tuple[str, Any]],
    metrics: dict[str, float] | None,
    title: str,
) -> None:
    """A perf summary: one JSON document (the metrics inside), or a table (and a table of
    the metrics)."""
    if metrics is not None and output == "json":
        document["metrics"] = metrics
    emit(output, document, ("metric", "value"), rows, title=title)
    if metrics is not None and output != "json":
        emit(output, metrics, ("metric", "value"), list(metrics.items()), title="metrics")


def select_metrics(stats: dict[str, Any] | None) -> dict[str, float]:
    """The figures of one statistics document, flat: client totals, then per broker
    (`broker.ID.*`, bootstrap-only connections left out) and per topic (`topic.NAME.*`)."""
    if not stats:
        return {}
    out: dict[str, float] = {k: stats[k] for k in _CLIENT if isinstance(stats.get(k), int | float)}
    for broker in stats.get("brokers", {}).values():
        node = broker.get("nodeid", -1)
        if node < 0:
            continue
        prefix = f"broker.{node}."
        out.update({prefix + k: broker[k] for k in _BROKER if k in broker})
        for window in _BROKER_WINDOWS:
            _window(out, prefix + window, broker.get(window), scale=1 / 1000, unit="_ms")
    for name, topic in sorted(stats.get("topics", {}).items()):
        for window in _TOPIC_WINDOWS:
            _window(out, f"topic.{name}.{window}", topic.get(window))
    return out


def _window(
    out: dict[str, float], name: str, window: Any, scale: float = 1.0, unit: str = ""
) -> None:
    """avg, p99 and max of a librdkafka window, when it saw anything."""
    if not isinstance(window, dict) or not window.get("cnt"):
        return
    for key in ("avg", "p99", "max"):
        out[f"{name}_{key}{unit}"] = round(window[key] * scale, 3)
