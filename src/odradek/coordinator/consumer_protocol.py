"""The classic consumer's embedded protocol (ConsumerProtocolSubscription and
ConsumerProtocolAssignment, versions 0-3): what a classic member's JoinGroup metadata
says (topics, owned partitions, generation, rack) and the assignment bytes its SyncGroup
answer carries. The building block for classic members inside a KIP-848 group and for
converting a group between the protocols.

The first two bytes are the version; a version above the highest known is read as the
highest (Kafka does the same), and bytes that do not decode give None.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any

HIGHEST = 3
OwnedByName = dict[str, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class Subscription:
    version: int
    topics: tuple[str, ...]
    owned: OwnedByName
    generation_id: int = -1
    rack_id: str | None = None
    user_data: bytes | None = None


def _schema(kind: str, version: int) -> Any:
    module = import_module(f"kio.schema.consumer_protocol_{kind}.v{version}")
    return getattr(module, f"ConsumerProtocol{kind.capitalize()}")


def _body(data: bytes, kind: str) -> tuple[int, Any] | None:
    if len(data) < 2:
        return None
    (version,) = struct.unpack_from(">h", data, 0)
    if version < 0:
        return None
    version = min(version, HIGHEST)
    from kio.serial import entity_reader  # only when a group migrates: not at start

    try:
        body, _size = entity_reader(_schema(kind, version))(memoryview(data), 2)
    except Exception:  # any malformed input: kio raises several kinds
        return None
    return version, body


def decode_subscription(data: bytes) -> Subscription | None:
    """A classic member's subscription, or None when the bytes are not one."""
    found = _body(data, "subscription")
    if found is None:
        return None
    version, body = found
    owned = {
        str(tp.topic): tuple(int(p) for p in tp.partitions)
        for tp in getattr(body, "owned_partitions", ())
    }
    return Subscription(
        version,
        tuple(str(t) for t in body.topics),
        owned,
        int(getattr(body, "generation_id", -1)),
        getattr(body, "rack_id", None),
        body.user_data,
    )


def decode_assignment(data: bytes) -> OwnedByName | None:
    """The partitions of an assignment, or None when the bytes are not one."""
    found = _body(data, "assignment")
    if found is None:
        return None
    return {
        str(tp.topic): tuple(int(p) for p in tp.partitions) for tp in found[1].assigned_partitions
    }


def assignment_user_data(data: bytes) -> bytes | None:
    """The user data of an assignment (what a custom assignor put there), or None."""
    found = _body(data, "assignment")
    if found is None or found[1].user_data is None:
        return None
    return bytes(found[1].user_data)


def version_of(data: bytes) -> int:
    """The version a subscription was written in (0 when the bytes are too short)."""
    if len(data) < 2:
        return 0
    return max(0, min(int(struct.unpack_from(">h", data, 0)[0]), HIGHEST))


def encode_assignment(
    partitions: Mapping[str, Sequence[int]], version: int = 0, user_data: bytes | None = None
) -> bytes:
    """An assignment in `version` (that of the member's subscription), topics and
    partitions in order."""
    version = max(0, min(version, HIGHEST))
    module = import_module(f"kio.schema.consumer_protocol_assignment.v{version}.data")
    schema = module.ConsumerProtocolAssignment
    body = schema(
        assigned_partitions=tuple(
            module.TopicPartition(topic=t, partitions=tuple(sorted(ps)))
            for t, ps in sorted(partitions.items())
        ),
        user_data=user_data,
    )
    from kio.serial import entity_writer  # only when a group migrates: not at start

    out = io.BytesIO()
    out.write(struct.pack(">h", version))
    entity_writer(schema)(out, body)
    return out.getvalue()
