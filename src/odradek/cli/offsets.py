"""Partition offset look-ups through AdminClient.list_offsets (ListOffsets)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from odradek.cli.ck import spec_earliest, spec_for_timestamp, spec_latest
from odradek.cli.common import Connection, wait


def list_offsets(
    admin: AdminClient, conn: Connection, topic: str, partitions: Iterable[int], spec: Any
) -> dict[int, int]:
    """Offset per partition for `spec` (a spec from odradek.cli.ck)."""
    request = {TopicPartition(topic, p): spec for p in partitions}
    if not request:
        return {}
    futures = admin.list_offsets(request, request_timeout=conn.timeout)
    return {tp.partition: int(wait(f, conn, topic).offset) for tp, f in futures.items()}


def earliest(admin: AdminClient, conn: Connection, topic: str, parts: list[int]) -> dict[int, int]:
    """Log start offset of every partition."""
    return list_offsets(admin, conn, topic, parts, spec_earliest())


def latest(admin: AdminClient, conn: Connection, topic: str, parts: list[int]) -> dict[int, int]:
    """High watermark (end offset) of every partition."""
    return list_offsets(admin, conn, topic, parts, spec_latest())


def for_timestamp(
    admin: AdminClient, conn: Connection, topic: str, parts: list[int], timestamp_ms: int
) -> dict[int, int]:
    """First offset with a timestamp >= `timestamp_ms`; the end offset where none is."""
    found = list_offsets(admin, conn, topic, parts, spec_for_timestamp(timestamp_ms))
    missing = [p for p, offset in found.items() if offset < 0]
    if missing:
        found.update(latest(admin, conn, topic, missing))
    return found
