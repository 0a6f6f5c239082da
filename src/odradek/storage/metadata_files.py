"""The small files Kafka keeps beside the logs: `meta.properties` of a log dir (Java
.properties) and `partition.metadata` of a partition dir (its topic id), with Kafka's
text form of a Uuid."""

from __future__ import annotations

import base64
import os
import uuid

from odradek.storage.checkpoint import write_atomically
from odradek.storage.errors import CheckpointError
from odradek.storage.fs import FileSystem

PARTITION_METADATA = "partition.metadata"


def uuid_to_kafka(value: uuid.UUID) -> str:
    """Kafka's Uuid.toString: URL-safe base64 of the 16 bytes, without padding."""
    return base64.urlsafe_b64encode(value.bytes).rstrip(b"=").decode()


def uuid_from_kafka(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def parse_properties(data: bytes) -> dict[str, str]:
    """Java .properties as Kafka writes them: `key=value` lines, `#`/`!` comments."""
    out: dict[str, str] = {}
    for line in data.decode("utf-8").splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise CheckpointError(f"bad properties line {line!r}")
        out[key.strip()] = value.strip()
    return out


def partition_metadata(topic_id: uuid.UUID) -> bytes:
    return f"version: 0\ntopic_id: {uuid_to_kafka(topic_id)}\n".encode()


def write_partition_metadata(fs: FileSystem, path: str, topic_id: uuid.UUID) -> None:
    """Kafka's partition.metadata: `version: 0` then `topic_id: <base64url>`."""
    write_atomically(fs, os.path.join(path, PARTITION_METADATA), partition_metadata(topic_id))


def read_partition_metadata(fs: FileSystem, path: str) -> uuid.UUID | None:
    file = os.path.join(path, PARTITION_METADATA)
    if not fs.exists(file):
        return None
    fields = dict(
        line.split(": ", 1) for line in fs.read_file(file).decode().splitlines() if ": " in line
    )
    if fields.get("version") != "0" or "topic_id" not in fields:
        raise CheckpointError(f"{file}: not a version 0 partition.metadata")
    return uuid_from_kafka(fields["topic_id"])
