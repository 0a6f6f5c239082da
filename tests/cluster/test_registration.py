"""A cluster broker's registration in ZooKeeper (/brokers/ids/N): its advertised
listeners, each with the port its own listener was bound to, whatever the order of
`listeners` and `advertised.listeners`."""

from __future__ import annotations

import json
import secrets

from kazoo.client import KazooClient

from odradek.testing import Broker
from odradek.testing.zookeeper import ZooKeeper


async def test_port_zero_listeners_register_their_own_ports(zookeeper: ZooKeeper) -> None:
    """Two listeners on port 0, advertised in the opposite order: each advertised entry
    gets the port its named listener got (not the port of the listener at the same
    position), in `advertised.listeners` order."""
    chroot = f"/registration-{secrets.token_hex(4)}"
    config = {
        "broker.id": 7,
        "zookeeper.connect": f"{zookeeper.connect_string}{chroot}",
        "listeners": "PLAINTEXT://127.0.0.1:0,REPLICATION://127.0.0.1:0",
        "advertised.listeners": "REPLICATION://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,REPLICATION:PLAINTEXT",
        "inter.broker.listener.name": "REPLICATION",
        "offsets.topic.replication.factor": 1,
    }
    async with Broker(config=config) as broker:
        bound = broker.broker.bound_by_listener
        assert bound["PLAINTEXT"][1] != bound["REPLICATION"][1]
        zk = KazooClient(hosts=f"{zookeeper.connect_string}{chroot}")
        zk.start(10)
        try:
            registered = json.loads(zk.get("/brokers/ids/7")[0])
        finally:
            zk.stop()
            zk.close()
    assert registered["endpoints"] == [
        f"REPLICATION://127.0.0.1:{bound['REPLICATION'][1]}",
        f"PLAINTEXT://127.0.0.1:{bound['PLAINTEXT'][1]}",
    ]
