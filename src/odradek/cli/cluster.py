"""`odradek cluster up | status | kill | stop | start | down`: a replicated cluster on one
machine, to try replication and failover by hand.

`up` starts a ZooKeeper server and N brokers, each a process of its own on 127.0.0.1
with its data under DIR (default ./cluster-data), prints where they are, and supervises
them until Ctrl-C or SIGTERM: it reports brokers going down and coming back and
controller changes, and at the end stops every process the state file names (brokers
first, then ZooKeeper).

The state file DIR/cluster.json records ports, PIDs, the ZooKeeper chroot and each
broker's properties. The other commands work from another terminal through it: `kill N`
(SIGKILL), `stop N` (SIGTERM) and `status` signal and inspect recorded PIDs; `start N`
spawns broker N again in a session of its own (so it outlives the command) with the same
port and data, and records its PID, so `up` watches and stops it like the others.
`down` asks the `up` process to stop, and stops whatever it left. `up` on the same DIR
again reuses the data and, where they are still free, the same ports.

Processes are spawned by the test runners in odradek.testing (ZooKeeper, Cluster): the
same code the cluster tests use, here as a feature of the command.

This module holds the options; each command is a module of its own: cluster_up.py,
cluster_control.py (kill, stop, start, down), cluster_status.py, on cluster_state.py
(the state file) and cluster_processes.py (PIDs, ZooKeeper reads, ports).
"""

from __future__ import annotations

import argparse

from odradek.cli.cluster_control import cluster_down, cluster_kill, cluster_start, cluster_stop
from odradek.cli.cluster_state import (
    DEFAULT_BASE_PORT,
    DEFAULT_BROKERS,
    DEFAULT_DATA,
    START_TIMEOUT_S,
)
from odradek.cli.cluster_status import cluster_status
from odradek.cli.cluster_up import cluster_up
from odradek.cli.common import positive_float

# -- the command line ------------------------------------------------------------------


def configure(cluster: argparse.ArgumentParser) -> None:
    """The subcommands of `odradek cluster`."""
    actions = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start ZooKeeper and N brokers; Ctrl-C stops them")
    up.add_argument("--brokers", type=_broker_count, metavar="N", help=f"default {DEFAULT_BROKERS}")
    up.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_BASE_PORT,
        metavar="PORT",
        help=f"broker N listens on PORT+N-1 if free (default {DEFAULT_BASE_PORT}; 0: any)",
    )
    up.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a property of every broker (repeatable)",
    )
    up.set_defaults(handler=cluster_up)

    status = actions.add_parser("status", help="brokers alive, controller, PIDs and ports")
    status.add_argument("--output", choices=("table", "json"), default="table")
    status.set_defaults(handler=cluster_status)

    parsers = [up, status]
    for name, help_text, handler in (
        ("kill", "kill -9 broker N", cluster_kill),
        ("stop", "stop broker N cleanly (SIGTERM)", cluster_stop),
        ("start", "start broker N again (same port and data)", cluster_start),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("broker", type=int, metavar="N")
        action.set_defaults(handler=handler)
        parsers.append(action)
    down = actions.add_parser("down", help="stop the cluster of DIR from another terminal")
    down.set_defaults(handler=cluster_down)
    parsers.append(down)

    for parser in parsers:
        parser.add_argument(
            "--data", default=DEFAULT_DATA, metavar="DIR", help=f"default ./{DEFAULT_DATA}"
        )
        parser.add_argument(
            "--timeout",
            type=positive_float,
            default=START_TIMEOUT_S,
            metavar="SECONDS",
            help=f"how long to wait for processes (default {START_TIMEOUT_S:g})",
        )


def _broker_count(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if not 1 <= value <= 32:
        raise argparse.ArgumentTypeError(f"expected 1 to 32 brokers, got {text!r}")
    return value


def _port(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}")
    return value
