"""The controller against a real ZooKeeper, in-process: election, first states, and
fencing by the controller epoch."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError

from odradek.config import BrokerConfig
from odradek.metadata import zk_layout as zl
from odradek.metadata.controller import Controller
from odradek.metadata.zk_client import ZkClient
from odradek.metadata.zk_store import ZkMetadataStore
from odradek.testing.zookeeper import ZooKeeper


async def _until(check: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _node(zookeeper: ZooKeeper, chroot: str, node_id: int) -> tuple[ZkClient, Controller]:
    config = dataclasses.replace(
        BrokerConfig(), node_id=node_id, zookeeper_connect=f"{zookeeper.connect_string}{chroot}"
    )
    zk = ZkClient(config.zookeeper_connect or "", 4000, asyncio.get_running_loop())
    await zk.start(10)
    store = await ZkMetadataStore.open(zk, config)
    await zk.acreate(
        zl.broker_path(node_id), zl.encode_broker(node_id, {"P": ("h", 1)}, None), ephemeral=True
    )
    controller = Controller(zk, store, node_id)
    controller.start()
    return zk, controller


async def test_an_old_controller_is_fenced(
    zookeeper: ZooKeeper, caplog: pytest.LogCaptureFixture
) -> None:
    """A controller whose epoch was superseded has its partition-state write refused by
    the epoch check and resigns: nothing is written under the old epoch. (Holding
    /controller still, it then stands again and writes under a new, higher epoch.)"""
    chroot = f"/fence-{uuid.uuid4().hex[:8]}"
    zk, controller = await _node(zookeeper, chroot, 1)
    raw = KazooClient(hosts=f"{zookeeper.connect_string}{chroot}")
    await asyncio.to_thread(raw.start, 10)
    try:
        await _until(lambda: controller.active)
        assert controller.epoch == 1
        assignment = zl.TopicAssignment("rides", uuid.uuid4(), {0: (1,)})
        await asyncio.to_thread(raw.create, zl.topic_path("rides"), zl.encode_topic(assignment))
        path = zl.partition_state_path("rides", 0)
        await _until(lambda: raw.exists(path))
        first = json.loads(raw.get(path)[0])
        assert (first["leader"], first["controller_epoch"]) == (1, 1)
        # Another controller's epoch: 2. The old one now has work (the partition's only
        # replica went away while another broker lives: it would mark it offline).
        await asyncio.to_thread(raw.set, zl.CONTROLLER_EPOCH, b"2")
        other = zl.encode_broker(2, {"P": ("h", 2)}, None)
        await asyncio.to_thread(raw.create, zl.broker_path(2), other, ephemeral=True)
        await asyncio.to_thread(raw.delete, zl.broker_path(1))
        await _until(lambda: "fenced" in caplog.text)
        await _until(lambda: json.loads(raw.get(path)[0])["leader"] == -1)
        state = json.loads(raw.get(path)[0])
        assert state["controller_epoch"] >= 3 and controller.epoch >= 3
    finally:
        await asyncio.to_thread(raw.stop)
        await controller.stop()
        await zk.stop()


async def test_a_failed_read_of_the_brokers_is_read_again(zookeeper: ZooKeeper) -> None:
    """The broker-ids watch fires once per change; when reading the registered brokers
    then fails (here a timeout on the first read of the new broker's node), the store
    reads them again shortly instead of missing that broker until the next change."""
    chroot = f"/reread-{uuid.uuid4().hex[:8]}"
    config = dataclasses.replace(
        BrokerConfig(), node_id=1, zookeeper_connect=f"{zookeeper.connect_string}{chroot}"
    )
    zk = ZkClient(config.zookeeper_connect or "", 4000, asyncio.get_running_loop())
    await zk.start(10)
    store = await ZkMetadataStore.open(zk, config)
    real_get = zk.kazoo.get
    failures = []

    def get_failing_once(path: str, *args: object, **kwargs: object) -> object:
        if path.endswith(zl.broker_path(2)) and not failures:
            failures.append(path)
            raise KazooTimeoutError("a slow ZooKeeper")
        return real_get(path, *args, **kwargs)

    zk.kazoo.get = get_failing_once  # type: ignore[method-assign]
    raw = KazooClient(hosts=f"{zookeeper.connect_string}{chroot}")
    await asyncio.to_thread(raw.start, 10)
    try:
        other = zl.encode_broker(2, {"PLAINTEXT": ("127.0.0.1", 9)}, None)
        await asyncio.to_thread(raw.create, zl.broker_path(2), other, ephemeral=True)
        await _until(lambda: 2 in store.brokers)
        assert failures
    finally:
        await asyncio.to_thread(raw.stop)
        store.close()
        await zk.stop()
