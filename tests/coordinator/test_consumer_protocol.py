"""The classic consumer's embedded protocol codec: subscriptions of every version decode
to their topics, owned partitions, generation and rack; a version above 3 reads as 3;
assignments round-trip in every version; bytes that are not one decode to None."""

from __future__ import annotations

import io
import struct
from importlib import import_module
from typing import Any

from kio.serial import entity_writer

from odradek.coordinator.consumer_protocol import (
    decode_assignment,
    decode_subscription,
    encode_assignment,
)


def _subscription(version: int, written_as: int | None = None, **fields: Any) -> bytes:
    module = import_module(f"kio.schema.consumer_protocol_subscription.v{version}.data")
    body = module.ConsumerProtocolSubscription(**fields)
    out = io.BytesIO()
    out.write(struct.pack(">h", version if written_as is None else written_as))
    entity_writer(module.ConsumerProtocolSubscription)(out, body)
    return out.getvalue()


def test_subscriptions_of_every_version_decode() -> None:
    """v0 has topics only; v1 adds owned partitions, v2 the generation, v3 the rack;
    a version 7 body is read as v3."""
    v0 = decode_subscription(_subscription(0, topics=("a", "b"), user_data=b"u"))
    assert v0 is not None and (v0.topics, v0.owned, v0.user_data) == (("a", "b"), {}, b"u")
    tp = import_module("kio.schema.consumer_protocol_subscription.v3.data").TopicPartition
    owned = (tp(topic="a", partitions=(0, 2)),)
    v3 = decode_subscription(
        _subscription(3, topics=("a",), owned_partitions=owned, generation_id=4, rack_id="r1")
    )
    assert v3 is not None
    assert (v3.version, v3.owned, v3.generation_id, v3.rack_id) == (3, {"a": (0, 2)}, 4, "r1")
    later = decode_subscription(
        _subscription(3, 7, topics=("a",), owned_partitions=owned, generation_id=4)
    )
    assert later is not None and later.version == 3 and later.owned == {"a": (0, 2)}


def test_assignments_round_trip_and_garbage_is_none() -> None:
    """An assignment written in any version reads back; truncated or negative-version
    bytes are not a subscription or an assignment."""
    for version in range(4):
        data = encode_assignment({"b": [3, 1], "a": [0]}, version)
        assert struct.unpack_from(">h", data)[0] == version
        assert decode_assignment(data) == {"a": (0,), "b": (1, 3)}
    good = _subscription(1, topics=("a",), owned_partitions=())
    for bad in (b"", b"\x00", good[:7], b"\xff\xff" + good[2:]):
        assert decode_subscription(bad) is None
        assert decode_assignment(bad) is None
