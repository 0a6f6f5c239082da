"""AlterReplicaLogDirs at the wire level and DescribeLogDirs during a move: a partition
moves to the broker's other log dir while it keeps serving, every record readable after,
also across a restart; Kafka's per-partition errors; the future log as DescribeLogDirs
shows it while it copies."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.clock import FakeClock
from odradek.config import build_config
from odradek.handlers import describe_log_dirs
from odradek.handlers.context import RequestContext
from odradek.metadata.store import TopicInfo
from odradek.protocol.batch import read_header
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.replication.log_dir_mover import move_step
from odradek.replication.replica_manager import ReplicaManager
from odradek.storage.log_config import LogConfig
from odradek.storage.manager import LogManager
from odradek.storage.memory_fs import MemoryFileSystem
from odradek.testing import Broker
from tests.handlers.kafka_wire import create_topic, fetch_request, produce, records_of
from tests.server.wire import WireClient, build, request_module

WAIT_S = 30.0


@pytest.fixture
def dirs() -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="odradek-dirs-") as root:
        yield os.path.join(root, "a"), os.path.join(root, "b")


def alter(
    client: WireClient, path: str, topic: str, partitions: tuple[int, ...], v: int = 2
) -> Any:
    m = request_module(34, v)
    moved = build(m.AlterReplicaLogDirTopic, name=topic, partitions=partitions)
    body = build(
        m.AlterReplicaLogDirsRequest,
        dirs=(build(m.AlterReplicaLogDir, path=path, topics=(moved,)),),
    )
    return client.call(34, v, body)


def where(client: WireClient, topic: str) -> dict[tuple[str, bool], list[int]]:
    """(log dir, is future) -> the partitions of `topic` there, from DescribeLogDirs."""
    m = request_module(35, 4)
    found: dict[tuple[str, bool], list[int]] = {}
    for result in client.call(35, 4, build(m.DescribeLogDirsRequest, topics=None)).results:
        for t in result.topics:
            if t.name == topic:
                for p in t.partitions:
                    found.setdefault((result.log_dir, p.is_future_key), []).append(
                        p.partition_index
                    )
    return found


def read_values(client: WireClient, topic: str) -> list[bytes | None]:
    response = client.call(1, 12, fetch_request([(topic, 0, 0)], max_bytes=10 << 20))
    return [r.value for r in records_of(response.responses[0].partitions[0].records)]


def wait_until_in(client: WireClient, topic: str, log_dir: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while where(client, topic) != {(log_dir, False): [0]}:
        assert time.monotonic() < deadline, f"not moved: {where(client, topic)}"
        time.sleep(0.02)


@pytest.mark.parametrize("version", [1, 2])
def test_partition_moves_and_keeps_its_records(dirs: tuple[str, str], version: int) -> None:
    """The partition moves to the other log dir (NONE at once, then DescribeLogDirs shows
    it there alone); every record is read back, produce goes on, and after a restart the
    partition is still in the new dir with everything."""
    a, b = dirs
    values = [f"v{i}".encode() * 50 for i in range(300)]
    with Broker(config={"log.dirs": f"{a},{b}"}) as broker, WireClient(broker.port) as client:
        create_topic(client, "moving")
        for i in range(0, 300, 30):
            batch = [SimpleRecord(v, timestamp=1) for v in values[i : i + 30]]
            assert produce(client, "moving", batch).error_code == ErrorCode.none
        ((source, _future),) = where(client, "moving")
        target = b if os.path.abspath(source) == os.path.abspath(a) else a
        response = alter(client, target, "moving", (0,), version)
        assert [
            (r.topic_name, [(p.partition_index, p.error_code) for p in r.partitions])
            for r in response.results
        ] == [("moving", [(0, ErrorCode.none)])]
        wait_until_in(client, "moving", os.path.abspath(target))
        assert read_values(client, "moving") == values
        assert produce(client, "moving", [SimpleRecord(b"after", timestamp=2)]).error_code == 0
        broker.restart()
        with WireClient(broker.port) as again:
            assert where(again, "moving") == {(os.path.abspath(target), False): [0]}
            assert read_values(again, "moving") == [*values, b"after"]


def test_errors_per_partition(dirs: tuple[str, str]) -> None:
    """A dir that is not in log.dirs is LOG_DIR_NOT_FOUND; a partition the broker does
    not host REPLICA_NOT_AVAILABLE; the connection stays usable."""
    a, b = dirs
    with Broker(config={"log.dirs": f"{a},{b}"}) as broker, WireClient(broker.port) as client:
        create_topic(client, "here")
        missing_dir = alter(client, "/no/such/dir", "here", (0,))
        missing_partition = alter(client, b, "nowhere", (0, 1))
        assert create_topic(client, "still").error_code == ErrorCode.none
    assert missing_dir.results[0].partitions[0].error_code == ErrorCode.log_dir_not_found
    assert [p.error_code for p in missing_partition.results[0].partitions] == [
        ErrorCode.replica_not_available
    ] * 2


def test_describe_log_dirs_shows_the_future_log_while_it_copies() -> None:
    """While the copy runs, the partition appears twice: current in its dir, and in the
    target dir with is_future_key and as lag how far the copy is behind; after the
    swap, once, in the target dir."""
    fs = MemoryFileSystem()
    manager = LogManager(fs, ["/a", "/b"], FakeClock(), LogConfig(), node_id=1, cluster_id="c")
    manager.open()
    config = build_config([("node.id", "1"), ("log.dirs", "/a,/b")])
    replicas = ReplicaManager(manager, config)
    replicas.host_topic(TopicInfo("t", uuid.uuid4(), 1))
    partition = replicas.get("t", 0)
    assert partition is not None
    for i in range(20):
        batch = build_batch([SimpleRecord(f"{i}".encode() * 40, timestamp=1)])
        partition.append(batch, read_header(batch))
    source = manager.log_dir_of("t", 0)
    target = "/b" if source == "/a" else "/a"
    manager.start_move("t", 0, target)
    move_step(replicas, max_bytes=400)
    ctx = RequestContext(
        SimpleNamespace(replicas=replicas, config=config, authorizer=None), 4, 1, "t"
    )  # type: ignore[arg-type]
    m = request_module(35, 4)
    body = build(m.DescribeLogDirsRequest, topics=None)

    def described() -> dict[tuple[str, bool], tuple[int, int]]:
        out = {}
        for result in describe_log_dirs.handle(ctx, body).results:
            for t in result.topics:
                for p in t.partitions:
                    out[(result.log_dir, p.is_future_key)] = (p.partition_size, p.offset_lag)
        return out

    during = described()
    future_size, lag = during[(target, True)]
    assert set(during) == {(source, False), (target, True)}
    assert 0 < future_size < during[(source, False)][0]
    future = manager.future_logs()[0][1]
    assert lag == 20 - future.log_end_offset > 0
    while move_step(replicas, max_bytes=400) == "busy":
        pass
    after = described()
    assert set(after) == {(target, False)}
    assert partition.log.path == os.path.join(target, "t-0")
    assert after[(target, False)][0] == during[(source, False)][0]


def test_copy_is_held_to_the_alter_log_dirs_quota() -> None:
    """With replica.alter.log.dirs.io.max.bytes.per.second set, the copy stops once the
    copied bytes exceed the quota (THROTTLED, nothing copied) and goes on when the bound
    is lifted."""
    fs = MemoryFileSystem()
    manager = LogManager(fs, ["/a", "/b"], FakeClock(), LogConfig(), node_id=1, cluster_id="c")
    manager.open()
    replicas = ReplicaManager(manager, build_config([("node.id", "1"), ("log.dirs", "/a,/b")]))
    replicas.host_topic(TopicInfo("q", uuid.uuid4(), 1))
    partition = replicas.get("q", 0)
    assert partition is not None
    for i in range(20):
        batch = build_batch([SimpleRecord(f"{i}".encode() * 40, timestamp=1)])
        partition.append(batch, read_header(batch))
    source = manager.log_dir_of("q", 0)
    manager.start_move("q", 0, "/b" if source == "/a" else "/a")
    replicas.dynamic_configs = {"replica.alter.log.dirs.io.max.bytes.per.second": "1"}
    assert move_step(replicas, max_bytes=400) == "busy"
    future = manager.future_logs()[0][1]
    copied = future.log_end_offset
    assert move_step(replicas, max_bytes=400) == "throttled"
    assert future.log_end_offset == copied
    replicas.dynamic_configs = {}
    while move_step(replicas, max_bytes=400) == "busy":
        pass
    assert manager.moving() == [] and partition.log.log_end_offset == 20
