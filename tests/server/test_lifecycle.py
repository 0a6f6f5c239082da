"""Broker start and stop: stray partitions, periodic checkpoints, clean restart."""

from __future__ import annotations

import os
import time
from pathlib import Path

from odradek.protocol.records import SimpleRecord
from odradek.testing import Broker
from tests.handlers.kafka_wire import FETCH_V, create_topic, fetch_request, produce, records_of
from tests.server.wire import WireClient


def test_stray_partition_directories_are_removed(tmp_path: object) -> None:
    """A partition directory of a topic the image does not know is deleted at start."""
    data = str(tmp_path)
    with Broker(data_dir=data) as running, WireClient(running.port) as client:
        create_topic(client, "kept")
    os.makedirs(os.path.join(data, "ghost-0"))
    with Broker(data_dir=data):
        assert not os.path.exists(os.path.join(data, "ghost-0"))
        assert os.path.isdir(os.path.join(data, "kept-0"))


def test_recovery_points_are_checkpointed_while_running(tmp_path: object) -> None:
    """With flush.ms and the checkpoint interval short, the checkpoint file soon holds the
    flushed offset, so a crash would recover only what came after it."""
    data = str(tmp_path)
    config = {
        "log.flush.interval.ms": 50,
        "log.flush.offset.checkpoint.interval.ms": 100,
    }
    with Broker(data_dir=data, config=config) as running, WireClient(running.port) as client:
        create_topic(client, "cp")
        produce(client, "cp", [SimpleRecord(b"v", timestamp=1)] * 3)
        path = os.path.join(data, "recovery-point-offset-checkpoint")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(path) and "cp 0 3" in Path(path).read_text():
                break
            time.sleep(0.05)
        assert "cp 0 3" in Path(path).read_text()


def test_a_roll_is_checkpointed_within_seconds(tmp_path: object) -> None:
    """With the default checkpoint interval (60 s), a segment roll still reaches the
    recovery-point checkpoint file within a few seconds: a crash soon after a busy start
    rescans only the active segment, not everything written since the start."""
    data = str(tmp_path)
    config = {"log.segment.bytes": 2_000}
    with Broker(data_dir=data, config=config) as running, WireClient(running.port) as client:
        create_topic(client, "rolled")
        for i in range(20):
            produce(client, "rolled", [SimpleRecord(b"x" * 200, timestamp=i + 1)])
        path = os.path.join(data, "recovery-point-offset-checkpoint")
        deadline = time.monotonic() + 10
        point = 0
        while time.monotonic() < deadline and point == 0:
            if os.path.exists(path):
                lines = Path(path).read_text().splitlines()
                point = max(
                    (int(x.split()[2]) for x in lines[2:] if x.startswith("rolled ")), default=0
                )
            time.sleep(0.05)
        assert point > 0, "the recovery point moved by the roll never reached the file"


def test_clean_restart_keeps_everything(tmp_path: object) -> None:
    """After a clean stop and start, topics, offsets and records are unchanged."""
    data = str(tmp_path)
    with Broker(data_dir=data) as running, WireClient(running.port) as client:
        create_topic(client, "again", partitions=2)
        for i in range(5):
            produce(client, "again", [SimpleRecord(b"%d" % i, timestamp=1)], partition=i % 2)
    assert os.path.exists(os.path.join(data, ".kafka_cleanshutdown"))
    with Broker(data_dir=data) as running, WireClient(running.port) as client:
        request = fetch_request([("again", 0, 0), ("again", 1, 0)])
        parts = client.call(1, FETCH_V, request).responses[0].partitions
        values = sorted(r.value for p in parts for r in records_of(p.records))
        assert values == [b"0", b"1", b"2", b"3", b"4"]
        assert produce(client, "again", [SimpleRecord(b"5", timestamp=1)]).base_offset == 3
