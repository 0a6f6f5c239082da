"""CreateTopics, CreatePartitions and Metadata auto-creation are durable when they
answer: a power loss right after the answer keeps every topic and partition. The broker
runs on a MemoryFileSystem whose directory entries survive a crash only once their
directory was fsynced, so a missing or late fsync loses partitions here."""

from __future__ import annotations

import asyncio
import copy
import datetime
import posixpath
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.storage.manager import read_partition_metadata
from odradek.storage.memory_fs import MemoryFileHandle, MemoryFileSystem
from odradek.testing import Broker
from tests.server.wire import WireClient, build, request_module

DATA = "/data"
IMAGE_TMP = "/data/odradek-metadata.json.tmp"
TIMEOUT = datetime.timedelta(seconds=5)


class ImageWriteCounter(MemoryFileSystem):
    """Counts how often the metadata image is written (its temporary file opened)."""

    def __init__(self) -> None:
        super().__init__(durable_dirs=False)
        self.image_writes = 0

    def open(self, path: str) -> MemoryFileHandle:
        if posixpath.normpath(path) == IMAGE_TMP:
            self.image_writes += 1
        return super().open(path)


def _fresh_fs() -> ImageWriteCounter:
    fs = ImageWriteCounter()
    fs.mkdir(DATA)
    fs.sync_namespace()  # the data directory exists before the broker starts
    return fs


def _create_topics(topics: dict[str, int]) -> Any:
    m = request_module(19, 7)
    return build(
        m.CreateTopicsRequest,
        topics=tuple(
            build(
                m.CreatableTopic,
                name=name,
                num_partitions=count,
                replication_factor=1,
                assignments=(),
                configs=(),
            )
            for name, count in topics.items()
        ),
        timeout=TIMEOUT,
        validate_only=False,
    )


def _create_partitions(name: str, count: int) -> Any:
    m = request_module(37, 3)
    topic = build(m.CreatePartitionsTopic, name=name, count=count, assignments=None)
    return build(m.CreatePartitionsRequest, topics=(topic,), timeout=TIMEOUT, validate_only=False)


def _auto_create(name: str) -> Any:
    m = request_module(3, 12)
    return build(
        m.MetadataRequest,
        topics=(build(m.MetadataRequestTopic, name=name, topic_id=None),),
        allow_auto_topic_creation=True,
        include_topic_authorized_operations=False,
    )


async def test_created_topics_survive_a_power_loss_right_after_the_answer() -> None:
    """One CreateTopics of three topics (the image written once for all of them), a
    CreatePartitions and a Metadata auto-creation; then a power loss taken the moment the
    last answer is out. The restarted broker has every topic, every partition directory
    and every partition.metadata with the topic's id."""
    fs = _fresh_fs()
    wanted = {"orders": 4, "payments.v1": 3, "audit": 1}
    config = {"num.partitions": 2, "auto.create.topics.enable": "true"}
    async with Broker(data_dir=DATA, fs=fs, config=config) as broker:
        with WireClient(broker.port) as client:
            before = fs.image_writes
            created = await asyncio.to_thread(client.call, 19, 7, _create_topics(wanted))
            assert [t.error_code for t in created.topics] == [ErrorCode.none] * 3
            assert fs.image_writes - before == 1
            grown = await asyncio.to_thread(client.call, 37, 3, _create_partitions("audit", 3))
            assert grown.results[0].error_code == ErrorCode.none
            auto = await asyncio.to_thread(client.call, 3, 12, _auto_create("auto"))
            assert auto.topics[0].error_code == ErrorCode.none
        # On the broker's loop: nothing of the broker runs while the copy is taken.
        crashed = copy.deepcopy(fs)
    crashed.crash()
    ids = {t.name: t.topic_id for t in created.topics}
    ids["auto"] = auto.topics[0].topic_id
    async with Broker(data_dir=DATA, fs=crashed, config=config) as again:
        assert again.topics() == {"orders": 4, "payments.v1": 3, "audit": 3, "auto": 2}
        for name, count in again.topics().items():
            for p in range(count):
                path = posixpath.join(DATA, f"{name}-{p}")
                assert read_partition_metadata(crashed, path) == ids[name]


async def test_refused_and_duplicate_topics_leave_nothing_behind() -> None:
    """A request mixing a good topic, a name given twice and a colliding name creates
    only the good one, durably; the refused ones leave no directory."""
    fs = _fresh_fs()
    async with Broker(data_dir=DATA, fs=fs) as broker:
        with WireClient(broker.port) as client:
            first = await asyncio.to_thread(client.call, 19, 7, _create_topics({"a.b": 1}))
            assert first.topics[0].error_code == ErrorCode.none
            m = request_module(19, 7)
            request = _create_topics({"ok": 2, "dup": 1, "a_b": 1})
            dup = build(
                m.CreatableTopic,
                name="dup",
                num_partitions=1,
                replication_factor=1,
                assignments=(),
                configs=(),
            )
            request = build(
                m.CreateTopicsRequest,
                topics=(*request.topics, dup),
                timeout=TIMEOUT,
                validate_only=False,
            )
            answer = await asyncio.to_thread(client.call, 19, 7, request)
        codes = {t.name: t.error_code for t in answer.topics}
        assert codes == {
            "ok": ErrorCode.none,
            "dup": ErrorCode.invalid_request,
            "a_b": ErrorCode.invalid_topic_exception,
        }
        crashed = copy.deepcopy(fs)
    crashed.crash()
    assert sorted(crashed.listdir(DATA)) == [
        "a.b-0",
        "meta.properties",
        "odradek-metadata.json",
        "ok-0",
        "ok-1",
    ]
