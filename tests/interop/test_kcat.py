"""kcat (Debian's build on librdkafka 2.0.2, an older client) against odradek: produce keyed
lines, consume them back, list metadata."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from helpers import ck_watermarks, run_bounded

KCAT = shutil.which("kcat") or "/usr/bin/kcat"


def kcat(broker: Any, *args: str, input: bytes | None = None, timeout: float = 30) -> str:
    result = run_bounded(
        [KCAT, "-b", broker.bootstrap_servers, "-X", "socket.timeout.ms=10000", *args],
        input=input,
        timeout=timeout,
    )
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, f"kcat {' '.join(args)} exited {result.returncode}: {stderr}"
    return result.stdout.decode()


def create_topic(broker: Any, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(name, partitions, 1)], request_timeout=15)[name].result(20)


def test_kcat_is_installed() -> None:
    """kcat is on the machine (scripts/install-system-deps.sh installs it)."""
    assert shutil.which("kcat"), "kcat missing: run scripts/install-system-deps.sh"


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_keyed_lines_and_consume_back(broker: Any, topic: str, codec: str) -> None:
    """`kcat -P -K: -p N -z codec` lines land in partition N in order and
    `kcat -C -e -o beginning -f '%k=%s\\n'` prints them back key=value, in order."""
    create_topic(broker, topic, 2)
    lines = {p: [f"key{p}-{i}:value {p}/{i} ünï" for i in range(30)] for p in (0, 1)}
    for p, ls in lines.items():
        payload = ("\n".join(ls) + "\n").encode()
        kcat(broker, "-P", "-t", topic, "-p", str(p), "-K:", "-z", codec, input=payload)
    assert ck_watermarks(broker.bootstrap_servers, topic, [0, 1]) == {0: (0, 30), 1: (0, 30)}
    for p, ls in lines.items():
        out = kcat(
            broker, "-C", "-t", topic, "-p", str(p), "-e", "-o", "beginning", "-f", "%k=%s\n"
        )
        assert out.splitlines() == [line.replace(":", "=", 1) for line in ls]


def test_consume_offsets_partitions_and_headers(broker: Any, topic: str) -> None:
    """kcat's %p/%o/%h/%T format fields: offsets are 0.. per partition, headers from `-H` come
    back, `-o 5` starts at offset 5, and `-c 2` stops after two messages."""
    create_topic(broker, topic, 1)
    payload = "".join(f"k{i}:v{i}\n" for i in range(10)).encode()
    kcat(broker, "-P", "-t", topic, "-p", "0", "-K:", "-H", "h1=x", "-H", "h2=y", input=payload)
    out = kcat(
        broker, "-C", "-t", topic, "-p", "0", "-e", "-o", "beginning", "-f", "%p|%o|%k|%s|%h\n"
    )
    assert out.splitlines() == [f"0|{i}|k{i}|v{i}|h1=x,h2=y" for i in range(10)]
    out = kcat(broker, "-C", "-t", topic, "-p", "0", "-e", "-o", "5", "-f", "%o:%s\n")
    assert out.splitlines() == [f"{i}:v{i}" for i in range(5, 10)]
    out = kcat(broker, "-C", "-t", topic, "-p", "0", "-o", "3", "-c", "2", "-f", "%o:%s\n")
    assert out.splitlines() == ["3:v3", "4:v4"]


def test_metadata_listing(broker: Any, topic: str) -> None:
    """`kcat -L` lists the broker and the topic with its partitions (text and -J JSON), and
    `kcat -L -t` shows one topic."""
    create_topic(broker, topic, 4)
    text = kcat(broker, "-L")
    assert "1 brokers:" in text
    assert f'topic "{topic}" with 4 partitions:' in text
    data = json.loads(kcat(broker, "-L", "-J"))
    assert len(data["brokers"]) == 1
    host, port = broker.bootstrap_servers.split(":")
    assert data["brokers"][0]["name"] == f"{host}:{port}"
    (entry,) = [t for t in data["topics"] if t["topic"] == topic]
    parts = sorted(entry["partitions"], key=lambda p: p["partition"])
    assert [p["partition"] for p in parts] == [0, 1, 2, 3]
    leader = data["brokers"][0]["id"]
    assert all(p["leader"] == leader for p in parts)
    assert all([r["id"] for r in p["replicas"]] == [leader] for p in parts)
    one = json.loads(kcat(broker, "-L", "-J", "-t", topic))
    assert [t["topic"] for t in one["topics"]] == [topic]
