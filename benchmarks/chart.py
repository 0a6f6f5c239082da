"""Draws a PNG comparing brokers from JSON reports: throughput per client case and
end-to-end latency percentiles. Reads both `run.py` reports (as kept by `versus.py`) and
the shared yardstick's kbench reports; when several reports carry the same label, the
chart shows their mean.

    .venv/bin/pip install matplotlib   # only this script needs it
    .venv/bin/python benchmarks/chart.py results/versus/*.json --out chart.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

KBENCH_THROUGHPUT = ["ck-100B", "ck-1KiB", "aio-100B", "aio-1KiB", "kp-100B", "kp-1KiB"]
KBENCH_LATENCY = ["ck-latency", "ck-lat-fw10"]
RUN_THROUGHPUT = ["p1-100B", "p1-1KiB", "p8-100B", "p8-1KiB"]
RUN_LATENCY = ["latency"]
THROUGHPUT_CASES: list[str] = []
LATENCY_CASES: list[str] = []


def load(path: Path) -> tuple[str, dict[str, Any]]:
    """(label, cases by name) of a kbench report (cases a list) or a run.py one (a dict)."""
    report = json.loads(path.read_text())
    if isinstance(report["cases"], dict):  # run.py: latency figures sit at the case's top
        label = str(report["broker"]["label"]).split(" (")[0]
        cases = {name: {**case, "latency": case} for name, case in report["cases"].items()}
        return label, cases
    return str(report["label"]), {case["case"]: case for case in report["cases"]}


def merge(reports: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """One entry per label, each figure the mean over that label's reports."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for label, cases in reports:
        grouped.setdefault(label, []).append(cases)
    merged = []
    for label, runs in grouped.items():
        by_case: dict[str, Any] = {}
        for name in runs[0]:
            present = [run[name] for run in runs if name in run]
            by_case[name] = {
                phase: {"msgs_per_s": mean([rate(c, phase) * 1000 for c in present])}
                for phase in ("produce", "consume")
            }
            by_case[name]["latency"] = {
                "e2e_ms": {k: mean([latency(c, k) for c in present]) for k in ("p50", "p99", "max")}
            }
        merged.append((label, by_case))
    return merged


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


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
    reports = merge([load(path) for path in args.reports])
    kbench = any(name in cases for _, cases in reports for name in KBENCH_THROUGHPUT)
    THROUGHPUT_CASES[:] = KBENCH_THROUGHPUT if kbench else RUN_THROUGHPUT
    LATENCY_CASES[:] = KBENCH_LATENCY if kbench else RUN_LATENCY
    draw(reports, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
