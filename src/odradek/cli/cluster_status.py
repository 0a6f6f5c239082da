"""`odradek cluster status`: per broker its address, PID, whether its process runs and
whether it is registered in ZooKeeper, and the controller; as a table or JSON."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from odradek.cli.cluster_processes import (
    broker_marker,
    controller_of,
    process_alive,
    registered_brokers,
    zookeeper_client,
    zookeeper_marker,
)
from odradek.cli.cluster_state import (
    HOST,
    UP_MARKER,
    BrokerEntry,
    StateDir,
)
from odradek.cli.common import EXIT_OK
from odradek.cli.output import print_json, print_table


def cluster_status(args: argparse.Namespace) -> int:
    """Per broker: address, PID, process running, registered in ZooKeeper; the controller."""
    data = StateDir(args.data)
    state = data.read()
    zk_alive = process_alive(state.zookeeper_pid, zookeeper_marker(data))
    registered: set[int] = set()
    controller: int | None = None
    if zk_alive:
        with zookeeper_client(state.zookeeper_connect, min(args.timeout, 5.0)) as zk:
            if zk is not None:
                registered = registered_brokers(zk)
                controller = controller_of(zk)
    brokers = [_broker_doc(i, b, registered, controller) for i, b in sorted(state.brokers.items())]
    doc = {
        "data": str(data.path),
        "up": process_alive(state.supervisor_pid, UP_MARKER),
        "up_pid": state.supervisor_pid,
        "bootstrap_servers": state.bootstrap_servers,
        "zookeeper": {
            "connect": state.zookeeper_connect,
            "pid": state.zookeeper_pid,
            "running": zk_alive,
        },
        "controller": controller,
        "brokers": brokers,
    }
    if args.output == "json":
        print_json(doc)
        return EXIT_OK
    _print_status(doc)
    return EXIT_OK


def _broker_doc(
    node_id: int, entry: BrokerEntry, registered: set[int], controller: int | None
) -> dict[str, Any]:
    return {
        "id": node_id,
        "address": f"{HOST}:{entry.port}",
        "pid": entry.pid,
        "running": process_alive(entry.pid, broker_marker(entry)),
        "registered": node_id in registered,
        "controller": node_id == controller,
    }


def _print_status(doc: Mapping[str, Any]) -> None:
    zk = doc["zookeeper"]
    up = f"up (odradek cluster up, pid {doc['up_pid']})" if doc["up"] else "not up"
    print(f"cluster in {doc['data']}: {up}")
    print(f"zookeeper {zk['connect']}: {'running' if zk['running'] else 'down'}")
    rows = [
        (
            b["id"],
            b["address"],
            b["pid"],
            "running" if b["running"] else "down",
            "yes" if b["registered"] else "no",
            "*" if b["controller"] else "",
        )
        for b in doc["brokers"]
    ]
    print_table(("broker", "address", "pid", "process", "registered", "controller"), rows)
