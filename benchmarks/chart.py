"""Draws a PNG comparing brokers from kbench JSON reports (the shared yardstick's output):
throughput per client case and end-to-end latency percentiles.

    .venv/bin/pip install matplotlib   # only this script needs it
    .venv/bin/python benchmarks/chart.py a.json b.json --out chart.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

THROUGHPUT_CASES = ["ck-100B", "ck-1KiB", "aio-100B", "aio-1KiB", "kp-100B", "kp-1KiB"]
LATENCY_CASES = ["ck-latency", "ck-lat-fw10"]


def load(path: Path) -> tuple[str, dict[str, Any]]:
    report = json.loads(path.read_text())
    return str(report["label"]), {case["case"]: case for case in report["cases"]}


def rate(case: dict[str, Any] | None, phase: str) -> float:
    section = (case or {}).get(phase) or {}
    return float(section.get("msgs_per_s") or 0) / 1000


def latency(case: dict[str, Any] | None, key: str) -> float:
    e2e = ((case or {}).get("latency") or {}).get("e2e_ms") or {}
    return float(e2e.get(key) or 0)


def draw(reports: list[tuple[str, dict[str, Any]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8))
    labels = [f"{c} {p}" for c in THROUGHPUT_CASES for p in ("produce", "consume")]
    width = 0.8 / len(reports)
    for n, (name, cases) in enumerate(reports):
        values = [rate(cases.get(c), p) for c in THROUGHPUT_CASES for p in ("produce", "consume")]
        top.bar([i + n * width for i in range(len(labels))], values, width, label=name)
    top.set_xticks([i + width * (len(reports) - 1) / 2 for i in range(len(labels))])
    top.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
    top.set_ylabel("thousand messages / s")
    top.set_title("throughput (higher is better)")
    top.legend()
    lat_labels = [f"{c} {k}" for c in LATENCY_CASES for k in ("p50", "p99", "max")]
    for n, (name, cases) in enumerate(reports):
        values = [latency(cases.get(c), k) for c in LATENCY_CASES for k in ("p50", "p99", "max")]
        bottom.bar([i + n * width for i in range(len(lat_labels))], values, width, label=name)
    bottom.set_xticks([i + width * (len(reports) - 1) / 2 for i in range(len(lat_labels))])
    bottom.set_xticklabels(lat_labels, fontsize=8)
    bottom.set_yscale("log")
    bottom.set_ylabel("end-to-end latency, ms (log scale)")
    bottom.set_title("latency at 2,000 msg/s, acks=all (lower is better)")
    bottom.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/chart.png"))
    args = parser.parse_args()
    draw([load(path) for path in args.reports], args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
