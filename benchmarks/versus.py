"""Side by side: `run.py` against odradek and against a peer broker, alternating, in one sitting.

    .venv/bin/python benchmarks/versus.py --peer-bin /path/to/tansu --runs 2

Each round runs `benchmarks/run.py` twice: once on an odradek it starts itself (data on
disk, defaults), once with `--bootstrap` on a peer broker this script starts on a free
127.0.0.1 port (`--peer-cmd`, a command template with `{bin}` and `{port}`; the default
starts Tansu with in-memory storage) and stops by PID afterwards. The order alternates
(odradek first in odd rounds, the peer first in even ones) so that drifting load on a
shared machine hits both alike. At the end it prints, for every case and phase, the range
of each broker's rate, the ratio of the means and the worst and best pairing, and the
broker CPU share; the per-run reports are kept as JSON in `--out`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import LOOPBACK, accepts_connections, free_port

HERE = Path(__file__).resolve().parent
TANSU_CMD = (
    "{bin} broker --storage-engine memory://tansu/ --listener-url tcp://127.0.0.1:{port}"
    " --advertised-listener-url tcp://127.0.0.1:{port}"
)
PHASES = ("produce", "consume")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-bin", required=True, help="the peer broker's executable")
    parser.add_argument("--peer-cmd", default=TANSU_CMD, help="template with {bin} and {port}")
    parser.add_argument("--peer-label", default="tansu")
    parser.add_argument("--runs", type=int, default=2, help="rounds (each broker once a round)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "versus")
    parser.add_argument("--start-timeout", type=float, default=30.0)
    parser.add_argument("run_args", nargs="*", help="passed to run.py (after --)")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 10:
        parser.error("--runs must be 1..10")
    return args


def run_bench(extra: list[str], json_path: Path, timeout: float) -> dict[str, Any]:
    """One run.py run; its report (also when some case failed)."""
    command = [sys.executable, str(HERE / "run.py"), "--json", str(json_path), *extra]
    subprocess.run(command, timeout=timeout, check=False)
    report: dict[str, Any] = json.loads(json_path.read_text())
    return report


def start_peer(args: argparse.Namespace, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = shlex.split(args.peer_cmd.format(bin=args.peer_bin, port=port))
    with log_path.open("wb") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + args.start_timeout
    while not accepts_connections(port):
        if child.poll() is not None or time.monotonic() > deadline:
            stop_peer(child)
            raise RuntimeError(f"peer did not start; see {log_path}")
        time.sleep(0.1)
    return child, port


def stop_peer(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)


def run_peer(args: argparse.Namespace, round_no: int) -> dict[str, Any]:
    child, port = start_peer(args, args.out / f"peer-run{round_no}.log")
    try:
        extra = [
            "--bootstrap",
            f"{LOOPBACK}:{port}",
            "--broker-pid",
            str(child.pid),
            "--label",
            args.peer_label,
            *args.run_args,
        ]
        return run_bench(extra, args.out / f"peer-run{round_no}.json", 900)
    finally:
        stop_peer(child)


def run_odradek(args: argparse.Namespace, round_no: int) -> dict[str, Any]:
    return run_bench(list(args.run_args), args.out / f"odradek-run{round_no}.json", 900)


def rates(reports: list[dict[str, Any]], case: str, phase: str) -> list[tuple[float, float]]:
    """(msgs/s, broker CPU share of one core) of one case and phase in every report."""
    out = []
    for report in reports:
        section = (report.get("cases", {}).get(case) or {}).get(phase) or {}
        rate, cpu, wall = (section.get(key) for key in ("msgs_per_s", "broker_cpu_s", "cpu_wall_s"))
        if rate:
            out.append((float(rate), float(cpu or 0) / float(wall or 1)))
    return out


def thousands(value: float) -> str:
    return f"{value / 1000:,.0f} k"


def comparison_rows(ours: list[dict[str, Any]], peer: list[dict[str, Any]]) -> list[list[str]]:
    cases = [c for c in ours[0].get("cases", {}) if c != "latency"] if ours else []
    rows = []
    for case in cases:
        for phase in PHASES:
            a, b = rates(ours, case, phase), rates(peer, case, phase)
            if not a or not b:
                continue
            ar, br = [r for r, _ in a], [r for r, _ in b]
            ratio = statistics.mean(ar) / statistics.mean(br)
            rows.append(
                [
                    f"{case} {phase}",
                    f"{thousands(min(ar))}-{thousands(max(ar))}",
                    f"{thousands(min(br))}-{thousands(max(br))}",
                    f"{ratio:.2f} ({min(ar) / max(br):.2f}-{max(ar) / min(br):.2f})",
                    f"{min(c for _, c in a):.0%}-{max(c for _, c in a):.0%}",
                    f"{min(c for _, c in b):.0%}-{max(c for _, c in b):.0%}",
                ]
            )
    return rows


def latency_rows(reports: list[dict[str, Any]], label: str) -> list[str]:
    lines = []
    for report in reports:
        lat = (report.get("cases", {}).get("latency") or {}).get("e2e_ms") or {}
        if lat:
            p50, p99, top = (lat.get(key) for key in ("p50", "p99", "max"))
            lines.append(f"{label}: p50 {p50} ms, p99 {p99} ms, max {top} ms")
    return lines


def render(ours: list[dict[str, Any]], peer: list[dict[str, Any]], peer_label: str) -> str:
    header = ["case", "odradek msg/s", f"{peer_label} msg/s", "ratio (worst-best)"]
    header += ["odradek CPU", f"{peer_label} CPU"]
    rows = [header, *comparison_rows(ours, peer)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    text = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    text.insert(1, "-+-".join("-" * w for w in widths))
    text += ["", *latency_rows(ours, "odradek"), *latency_rows(peer, peer_label)]
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    ours: list[dict[str, Any]] = []
    peer: list[dict[str, Any]] = []
    for round_no in range(1, args.runs + 1):
        order = ("odradek", "peer") if round_no % 2 else ("peer", "odradek")
        for who in order:
            print(f"round {round_no}: {who}", flush=True)
            if who == "odradek":
                ours.append(run_odradek(args, round_no))
            else:
                peer.append(run_peer(args, round_no))
    print(render(ours, peer, args.peer_label))
    print(f"\nreports in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
