"""The `__transaction_state` record codec: our values round-trip, match Kafka's byte
layout, Kafka's flexible version 1 (with tagged fields) decodes, and damaged bytes raise
TxnRecordError rather than anything else."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odradek.coordinator.txn.records import (
    TxnRecordError,
    TxnValue,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
)
from odradek.coordinator.txn.state import TxnState

states = st.sampled_from(list(TxnState))
partitions = st.lists(
    st.tuples(st.text(min_size=1, max_size=8), st.integers(0, 2**31 - 1)), max_size=6
)


@given(
    st.integers(-1, 2**63 - 1),
    st.integers(-1, 32767),
    st.integers(0, 2**31 - 1),
    states,
    partitions,
    st.integers(-1, 2**62),
    st.integers(-1, 2**62),
)
@settings(max_examples=200)
def test_value_round_trip(
    pid: int,
    epoch: int,
    timeout: int,
    state: TxnState,
    parts: list[tuple[str, int]],
    upd: int,
    start: int,
) -> None:
    """Any value decodes to itself (partitions sorted, none kept for Empty)."""
    expected_parts = () if state is TxnState.EMPTY else tuple(sorted(set(parts)))
    value = TxnValue(pid, epoch, timeout, state, expected_parts, upd, start)
    assert decode_value(encode_value(value)) == value


@given(st.text(max_size=40))
def test_key_round_trip(txn_id: str) -> None:
    """Any transactional id (unicode too) survives the key codec."""
    assert decode_key(encode_key(txn_id)) == txn_id


def test_value_v0_layout_is_kafkas() -> None:
    """Version 0 bytes field by field: version, producer id, epoch, timeout, status,
    partitions grouped by topic, last update and start timestamps."""
    value = TxnValue(7, 3, 60000, TxnState.ONGOING, (("b", 1), ("a", 2), ("a", 0)), 11, 10)
    expected = (
        struct.pack(">hqhib", 0, 7, 3, 60000, 1)
        + struct.pack(">i", 2)
        + struct.pack(">h", 1)
        + b"a"
        + struct.pack(">iii", 2, 0, 2)
        + struct.pack(">h", 1)
        + b"b"
        + struct.pack(">ii", 1, 1)
        + struct.pack(">qq", 11, 10)
    )
    assert encode_value(value) == expected
    assert encode_key("tx") == struct.pack(">hh", 0, 2) + b"tx"


def test_empty_writes_null_partitions() -> None:
    """An Empty value stores a null partition array, as Kafka does."""
    data = encode_value(TxnValue(1, 0, 100, TxnState.EMPTY, (), 5, -1))
    assert data[2 + 8 + 2 + 4 + 1 : 2 + 8 + 2 + 4 + 1 + 4] == struct.pack(">i", -1)


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def test_flexible_v1_with_tagged_fields_decodes() -> None:
    """Kafka 4's version 1: compact arrays and strings, per-element tagged fields, and
    tagged previous/next producer id and client transaction version (plus an unknown tag,
    skipped)."""
    data = (
        struct.pack(">hqhib", 1, 9, 4, 30000, 2)
        + _uvarint(2)  # one topic
        + _uvarint(3)
        + b"t1"
        + _uvarint(3)
        + struct.pack(">ii", 0, 5)
        + _uvarint(0)  # the topic's tagged fields
        + struct.pack(">qq", 22, 20)
        + _uvarint(4)
        + _uvarint(0)
        + _uvarint(8)
        + struct.pack(">q", 8)
        + _uvarint(1)
        + _uvarint(8)
        + struct.pack(">q", 10)
        + _uvarint(2)
        + _uvarint(2)
        + struct.pack(">h", 2)
        + _uvarint(9)
        + _uvarint(1)
        + b"\x00"
    )
    value = decode_value(data)
    assert value == TxnValue(
        9, 4, 30000, TxnState.PREPARE_COMMIT, (("t1", 0), ("t1", 5)), 22, 20, 8, 10, 2
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        struct.pack(">h", 5),
        struct.pack(">hqhib", 0, 1, 0, 1, 42) + struct.pack(">iqq", -1, 0, 0),
        struct.pack(">hqhib", 0, 1, 0, 1, 1) + struct.pack(">i", 1_000_000),
        encode_value(TxnValue(1, 0, 1, TxnState.EMPTY, (), 0, 0)) + b"x",
        encode_value(TxnValue(1, 0, 1, TxnState.EMPTY, (), 0, 0))[:-1],
    ],
)
def test_damaged_values_raise_record_error(data: bytes) -> None:
    """Truncated, overlong, unknown version or status, huge counts: TxnRecordError."""
    with pytest.raises(TxnRecordError):
        decode_value(data)


@given(st.binary(max_size=64))
def test_random_bytes_never_crash(data: bytes) -> None:
    """Arbitrary bytes either decode or raise TxnRecordError."""
    for decode in (decode_key, decode_value):
        with contextlib.suppress(TxnRecordError):
            decode(data)
