#!/usr/bin/env python3
"""odradek benchmarks: start a broker, measure it with confluent-kafka, print a table.

    .venv/bin/python benchmarks/run.py                    # everything, about 45 s on 2 cores
    .venv/bin/python benchmarks/run.py --scale 0.1        # a quick run
    .venv/bin/python benchmarks/run.py --cases p1-1KiB,latency
    .venv/bin/python benchmarks/run.py --bootstrap 127.0.0.1:9092 --broker-pid 1234

Without --bootstrap it starts `python -m odradek broker` on a free 127.0.0.1 port with a
fresh temporary data directory (on disk, default settings) and stops it by PID at the
end (SIGTERM, then SIGKILL). Results: a table on stdout and JSON in
benchmarks/results/latest.json. See benchmarks/README.md for what each case measures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import ipaddress
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_broker import (
    BrokerError,
    BrokerProcess,
    accepts_connections,
    cpu_seconds,
    filesystem_type,
    git_rev,
    rss_mib,
    stop_cleanly_on_sigterm,
)

HERE = Path(__file__).resolve().parent
CASES_SCRIPT = HERE / "bench_cases.py"
DEFAULT_JSON = HERE / "results" / "latest.json"

SIZES = {"100B": 100, "1KiB": 1024}
# messages per throughput case at --scale 1.0
BASE_COUNT = {"100B": 2_000_000, "1KiB": 500_000}  # as the yardstick
THROUGHPUT_CASES = {
    f"p{parts}-{size}": (parts, size) for parts in (1, 8) for size in ("100B", "1KiB")
}
ALL_CASES = ["startup", *THROUGHPUT_CASES, "latency"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--cases",
        default=",".join(ALL_CASES),
        help=f"comma-separated subset of {','.join(ALL_CASES)} (default: all)",
    )
    ap.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="fraction of the message counts of the throughput cases (default 1.0: "
        f"{BASE_COUNT['100B']:,} x 100 B and {BASE_COUNT['1KiB']:,} x 1 KiB per case)",
    )
    ap.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help="measure an already running broker on loopback instead of starting odradek",
    )
    ap.add_argument(
        "--broker-pid",
        type=int,
        help="with --bootstrap: PID of that broker, to report its CPU seconds",
    )
    ap.add_argument("--label", help="name of the broker under test in the report")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the JSON")
    ap.add_argument("--lat-rate", type=int, default=2000, help="latency case: messages/s")
    ap.add_argument("--lat-seconds", type=float, default=10.0, help="latency case: duration")
    ap.add_argument(
        "--lat-warmup-s", type=float, default=1.0, help="leading seconds left out of percentiles"
    )
    ap.add_argument("--lat-drain-s", type=float, default=10.0, help="wait for late messages")
    ap.add_argument("--produce-max-s", type=float, default=15.0, help="cap of a send loop")
    ap.add_argument("--flush-s", type=float, default=15.0, help="cap of the final flush")
    ap.add_argument("--consume-max-s", type=float, default=15.0, help="cap of a consume phase")
    ap.add_argument("--idle-s", type=float, default=10.0, help="consume gives up when idle")
    ap.add_argument(
        "--startup-runs",
        type=int,
        default=3,
        help="extra broker starts (fresh empty data dir each) for the startup case",
    )
    ap.add_argument(
        "--start-timeout", type=float, default=30.0, help="max wait for the broker's ready line"
    )
    ap.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra broker property for the started broker (default: none, all defaults)",
    )
    ap.add_argument(
        "--work-dir",
        type=Path,
        help="parent of the temporary directory for data and logs (default: system temp)",
    )
    ap.add_argument("--keep", action="store_true", help="keep data and logs after the run")
    ap.add_argument(
        "--budget-s",
        type=float,
        default=270.0,
        help="wall-clock budget of the whole run: a case is cut off or skipped when it is spent",
    )
    args = ap.parse_args(argv)
    args.case_list = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in args.case_list if c not in ALL_CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {ALL_CASES}")
    if not 0 < args.scale <= 100:
        ap.error("--scale must be in (0, 100]")
    if args.bootstrap:
        problem = loopback_problem(args.bootstrap)
        if problem:
            ap.error(problem)
    elif args.broker_pid:
        ap.error("--broker-pid only goes with --bootstrap")
    return args


def loopback_problem(hostport: str) -> str | None:
    host, sep, port = hostport.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit():
        return f"--bootstrap expects HOST:PORT, got {hostport!r}"
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, int(port))}
    except OSError as exc:
        return f"cannot resolve {host!r}: {exc}"
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        return f"{host!r} is not a loopback address; these benchmarks only use 127.0.0.1"
    return None


# --------------------------------------------------------------------------- environment


def machine_info(work: Path) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus_online": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": None,
        "mem_total_mib": None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "data_fs": filesystem_type(work),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["mem_total_mib"] = int(line.split()[1]) // 1024
                break
    return info


def software_info() -> dict[str, Any]:
    import confluent_kafka

    version = confluent_kafka.version()  # a string, or (string, int) in older releases
    info: dict[str, Any] = {
        "confluent-kafka": version[0] if isinstance(version, tuple) else version,
        "librdkafka": confluent_kafka.libversion()[0],
    }
    try:
        info["odradek"] = importlib.metadata.version("odradek")
    except importlib.metadata.PackageNotFoundError:
        info["odradek"] = None
    info["git_rev"] = git_rev()
    return info


# --------------------------------------------------------------------------- running cases


def stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)


def file_tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run_child(params: dict[str, Any], work: Path, hard_limit: float) -> dict[str, Any]:
    """Runs one case in a child process; kills it (by PID) after `hard_limit` seconds."""
    name = params["case"]
    params_path = work / f"{name}.params.json"
    result_path = work / f"{name}.result.json"
    log_path = work / f"{name}.client.log"
    params_path.write_text(json.dumps(params))
    t0 = time.perf_counter()
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            [sys.executable, str(CASES_SCRIPT), str(params_path), str(result_path)],
            cwd=HERE,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            child.wait(timeout=hard_limit)
        except subprocess.TimeoutExpired:
            result = {"status": "error", "note": f"killed after the {hard_limit:.0f} s limit"}
        else:
            result = None
        finally:
            stop_child(child)
    if result is None:
        try:
            result = json.loads(result_path.read_text())
        except (OSError, ValueError):
            result = {
                "status": "error",
                "note": f"the case process exited with code {child.returncode} without a result",
            }
    result["case_wall_s"] = round(time.perf_counter() - t0, 2)
    if result.get("status") != "ok":
        result["client_log_tail"] = file_tail(log_path)
    return result


def startup_sample(work: Path, index: int, settings: list[str], timeout: float) -> dict[str, Any]:
    broker = BrokerProcess(work / f"startup-{index}", work / f"startup-{index}.log", None, settings)
    sample: dict[str, Any] = {}
    try:
        broker.start(timeout=timeout)
        sample.update(
            ready_s=round(broker.ready_s or 0.0, 3),
            accept_s=round(broker.accept_s or 0.0, 3),
            self_reported_ms=broker.self_reported_ms,
            rss_mib=rss_mib(broker.pid),
        )
    except BrokerError as exc:
        sample["error"] = str(exc)
    finally:
        stopped = broker.stop()
    sample["stop_s"] = stopped.get("stop_s")
    sample["killed_on_stop"] = stopped.get("killed")
    return sample


def summarize(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def throughput_params(args: argparse.Namespace, case: str) -> dict[str, Any]:
    parts, size = THROUGHPUT_CASES[case]
    return {
        "kind": "throughput",
        "case": case,
        "partitions": parts,
        "size": SIZES[size],
        "count": max(1, int(BASE_COUNT[size] * args.scale)),
        "produce_max_s": args.produce_max_s,
        "flush_s": args.flush_s,
        "consume_max_s": args.consume_max_s,
        "idle_s": args.idle_s,
    }


def latency_params(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "kind": "latency",
        "case": "latency",
        "rate": args.lat_rate,
        "seconds": args.lat_seconds,
        "warmup_s": args.lat_warmup_s,
        "drain_s": args.lat_drain_s,
    }


# --------------------------------------------------------------------------- report


def fmt_int(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_float(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def cpu_cell(cpu: float | None, wall: float | None) -> str:
    if cpu is None:
        return "-"
    if not wall:
        return f"{cpu:.2f}"
    return f"{cpu:.2f} ({100 * cpu / wall:.0f}%)"


def limit_hint(phase: dict[str, Any]) -> str:
    """Which side looks CPU-bound, from CPU seconds over the phase's wall time."""
    wall = phase.get("cpu_wall_s")
    broker, client = phase.get("broker_cpu_s"), phase.get("client_cpu_s")
    if not wall or client is None:
        return "-"
    if broker is not None and broker / wall >= 0.85:
        return "broker"
    if client / wall >= 0.85:
        return "client"
    if broker is not None and (broker + client) / wall >= 1.7:
        return "cpus"
    return "neither"


def aligned(rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render(report: dict[str, Any]) -> str:
    m, sw = report["machine"], report["software"]
    out = [
        f"odradek benchmarks - {report['broker']['label']} - {report['started_at']}",
        f"machine: {m['cpus_usable']} cores ({m['cpu_model']}), {m['mem_total_mib']} MiB, "
        f"Linux {m['kernel']}, Python {m['python']}, data on {m['data_fs']}",
        f"clients: confluent-kafka {sw['confluent-kafka']} (librdkafka {sw['librdkafka']})",
    ]
    broker = report["broker"]
    if broker.get("pid"):
        out.append(f"broker pid {broker['pid']} on {broker['bootstrap']}")
    startup = report.get("startup")
    if startup:
        ready = startup.get("ready_s")
        if ready:
            reported = startup.get("self_reported_ms")
            out.append(
                f"\nstartup (empty data dir, spawn -> 'ready' line): median "
                f"{ready['median'] * 1000:.0f} ms, range {ready['min'] * 1000:.0f}-"
                f"{ready['max'] * 1000:.0f} ms over {len(startup['samples'])} starts"
                + (
                    f"; broker's own figure (after imports) median {reported['median']:.0f} ms"
                    if reported
                    else ""
                )
            )
        errors = [s["error"] for s in startup["samples"] if s.get("error")]
        if errors:
            out.append(f"startup errors: {errors[0]}")
    rows = [
        [
            "case",
            "phase",
            "messages",
            "seconds",
            "msgs/s",
            "MB/s",
            "client CPU s",
            "broker CPU s",
            "limit",
            "status",
        ]
    ]
    notes = []
    for case, res in report["cases"].items():
        if case == "latency":
            continue
        if "produce" not in res:
            rows.append([case, "-", "-", "-", "-", "-", "-", "-", "-", res.get("status", "?")])
            notes.append(f"{case}: {res.get('note')}")
            continue
        for phase_name in ("produce", "consume"):
            ph = res[phase_name]
            rows.append(
                [
                    case,
                    phase_name,
                    fmt_int(ph.get("msgs")),
                    fmt_float(ph.get("seconds"), 2),
                    fmt_int(ph.get("msgs_per_s")),
                    fmt_float(ph.get("mb_per_s")),
                    cpu_cell(ph.get("client_cpu_s"), ph.get("cpu_wall_s")),
                    cpu_cell(ph.get("broker_cpu_s"), ph.get("cpu_wall_s")),
                    limit_hint(ph),
                    ph.get("status", "?"),
                ]
            )
            if ph.get("note"):
                notes.append(f"{case} {phase_name}: {ph['note']}")
    if len(rows) > 1:
        out.append(
            "\nthroughput (confluent-kafka; produce acks=all linger.ms=5 batch.size=1 MiB; "
            "consume: manual assign from offset 0)"
        )
        out.append(aligned(rows, right={2, 3, 4, 5, 6, 7}))
        out.append(
            "p1/p8 = 1 or 8 partitions; MB/s = 10^6 value bytes/s; CPU % = share of one core "
            "over the phase; limit = side at >= 85% of a core (hint)"
        )
    lat = report["cases"].get("latency")
    if lat:
        out.append(
            f"\nend-to-end latency ({lat.get('rate_per_s', '?')} msg/s for "
            f"{lat.get('seconds', '?')} s, 100 B, acks=all, consumer defaults "
            "fetch.wait.max.ms=500)"
        )
        if "e2e_ms" in lat:
            e2e, ack = lat["e2e_ms"], lat["ack_ms"]
            rows = [
                ["measure", "p50 ms", "p99 ms", "max ms"],
                ["send -> receive", *(fmt_float(e2e[k], 2) for k in ("p50", "p99", "max"))],
                ["send -> ack", *(fmt_float(ack[k], 2) for k in ("p50", "p99", "max"))],
            ]
            out.append(aligned(rows, right={1, 2, 3}))
            out.append(
                f"{lat['samples']} samples, {lat['lost']} lost, {lat['duplicates']} duplicates; "
                f"client CPU {cpu_cell(lat.get('client_cpu_s'), lat.get('cpu_wall_s'))}, "
                f"broker CPU {cpu_cell(lat.get('broker_cpu_s'), lat.get('cpu_wall_s'))}; "
                f"status {lat['status']}"
            )
        if lat.get("note"):
            notes.append(f"latency: {lat['note']}")
    if broker.get("stop"):
        stop = broker["stop"]
        out.append(
            f"\nbroker: {fmt_float(broker.get('cpu_s_total'), 1)} CPU s in total, RSS at end "
            f"{fmt_float(broker.get('rss_mib_end'), 0)} MiB, stopped in "
            f"{fmt_float(stop.get('stop_s'), 2)} s"
            + (" (SIGKILL needed)" if stop.get("killed") else "")
        )
    if report.get("error"):
        notes.append(f"run: {report['error']}")
    if notes:
        out.append("\nproblems:")
        out.extend(f"  {n}" for n in notes)
    out.append(f"\ntotal {report['total_s']:.0f} s; JSON in {report['json_path']}")
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_cleanly_on_sigterm()
    t_begin = time.perf_counter()
    if args.work_dir:
        args.work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="odradek-bench-", dir=args.work_dir))
    run_id = dt.datetime.now().strftime("%H%M%S") + secrets.token_hex(2)
    report: dict[str, Any] = {
        "started_at": dt.datetime.now().isoformat(timespec="seconds"),
        "run_id": run_id,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine_info(work),
        "software": software_info(),
        "broker": {},
        "cases": {},
    }
    report["json_path"] = str(args.json)
    broker: BrokerProcess | None = None
    failed = False
    try:
        if args.bootstrap:
            bootstrap, pid = args.bootstrap, args.broker_pid
            report["broker"] = {
                "label": args.label or f"broker at {bootstrap}",
                "bootstrap": bootstrap,
                "pid": pid,
                "started_here": False,
            }
            if not accepts_connections(int(bootstrap.rpartition(":")[2])):
                raise BrokerError(f"nothing accepts connections on {bootstrap}")
        else:
            if "startup" in args.case_list:
                samples = []
                for i in range(args.startup_runs):
                    print(f"startup: broker start {i + 1}/{args.startup_runs + 1}", flush=True)
                    samples.append(startup_sample(work, i, args.settings, args.start_timeout))
                report["startup"] = {"samples": samples}
            broker = BrokerProcess(work / "data", work / "broker.log", None, args.settings)
            report["broker"] = {
                "label": args.label or "odradek (started here, default settings)",
                "command": broker.command(),
                "data_dir": str(broker.data_dir),
                "started_here": True,
            }
            print("starting the broker for the measurements", flush=True)
            broker.start(timeout=args.start_timeout)
            bootstrap, pid = broker.bootstrap, broker.pid
            report["broker"].update(
                bootstrap=bootstrap,
                pid=pid,
                ready_s=round(broker.ready_s or 0.0, 3),
                ready_line=broker.ready_line,
            )
            if "startup" in report:
                report["startup"]["samples"].append(
                    {
                        "ready_s": round(broker.ready_s or 0.0, 3),
                        "accept_s": round(broker.accept_s or 0.0, 3),
                        "self_reported_ms": broker.self_reported_ms,
                    }
                )
        cpu0 = cpu_seconds(pid)
        for case in args.case_list:
            if case == "startup":
                continue
            params = throughput_params(args, case) if case != "latency" else latency_params(args)
            params.update(bootstrap=bootstrap, broker_pid=pid, run_id=run_id)
            if case == "latency":
                limit = args.lat_seconds + args.lat_drain_s + 90
            else:
                limit = args.produce_max_s + args.flush_s + args.consume_max_s + 90
            remaining = args.budget_s - (time.perf_counter() - t_begin)
            if remaining < 15:
                report["cases"][case] = {
                    "status": "skipped",
                    "note": f"--budget-s {args.budget_s:.0f} spent",
                }
                print(f"{case}: skipped, time budget spent", flush=True)
                continue
            print(f"{case}: running", flush=True)
            result = run_child(params, work, min(limit, remaining))
            report["cases"][case] = result
            print(f"{case}: {result.get('status')} in {result['case_wall_s']:.1f} s", flush=True)
            if broker is not None and not broker.alive():
                report["error"] = (
                    f"the broker exited during {case} (code {broker.proc and broker.proc.poll()});"
                    f" log tail:\n{broker.log_tail()}"
                )
                break
        cpu1 = cpu_seconds(pid)
        if cpu0 is not None and cpu1 is not None:
            report["broker"]["cpu_s_total"] = round(cpu1 - cpu0, 2)
        report["broker"]["rss_mib_end"] = rss_mib(pid)
    except BrokerError as exc:
        report["error"] = str(exc)
    except KeyboardInterrupt:
        report["error"] = "interrupted (SIGINT or SIGTERM)"
    finally:
        if broker is not None:
            report["broker"]["stop"] = broker.stop()
            report["broker"]["log"] = str(broker.log_path)
    if "startup" in report:
        samples = report["startup"]["samples"]
        ok = [s for s in samples if "error" not in s]
        report["startup"]["ready_s"] = summarize([s["ready_s"] for s in ok])
        report["startup"]["accept_s"] = summarize([s["accept_s"] for s in ok])
        reported = [s["self_reported_ms"] for s in ok if s.get("self_reported_ms") is not None]
        report["startup"]["self_reported_ms"] = summarize(reported)
        failed |= len(ok) < len(samples)
    failed |= bool(report.get("error"))
    failed |= any(r.get("status") != "ok" for r in report["cases"].values())
    report["status"] = "fail" if failed else "ok"
    report["total_s"] = round(time.perf_counter() - t_begin, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(render(report))
    if failed or args.keep:
        print(f"data and logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
