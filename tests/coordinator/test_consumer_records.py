"""The KIP-848 records' codec: Kafka's byte layout for keys (int16 version, int16-length
strings) and flexible values (compact fields, tagged-field sections), round trips of every
value, and the tolerance of tagged fields written by newer Kafka versions."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odradek.coordinator import consumer_records as cr
from odradek.coordinator.records import (
    RecordFormatError,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
)

TOPIC = uuid.UUID("12345678-1234-5678-1234-567812345678")
texts = st.text(max_size=6)
opt_texts = st.none() | texts
epochs = st.integers(-(2**31), 2**31 - 1)
assignments = st.lists(
    st.tuples(st.uuids(), st.lists(st.integers(0, 2**31 - 1), max_size=4).map(tuple)),
    max_size=3,
).map(tuple)
values = st.one_of(
    st.builds(cr.GroupEpochValue, epochs),
    st.builds(cr.AssignmentEpochValue, epochs),
    st.builds(
        cr.PartitionMetadataValue,
        epochs,
        st.lists(
            st.builds(
                cr.TopicMetadata,
                st.uuids(),
                texts,
                epochs,
                st.lists(st.tuples(epochs, st.lists(texts, max_size=2).map(tuple)), max_size=2).map(
                    tuple
                ),
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(
        cr.MemberMetadataValue,
        opt_texts,
        opt_texts,
        texts,
        texts,
        st.lists(texts, max_size=3).map(tuple),
        opt_texts,
        epochs,
        opt_texts,
    ),
    st.builds(cr.TargetMemberValue, assignments),
    st.builds(
        cr.CurrentAssignmentValue, epochs, epochs, st.integers(0, 2), assignments, assignments
    ),
)


@given(values, texts, texts)
def test_values_and_keys_round_trip(value: cr.ConsumerValue, group: str, member: str) -> None:
    """Every record decodes to what was encoded, through the shared records.py codec."""
    kind = cr.kind_of(value)
    has_member = kind in (cr.MEMBER_METADATA, cr.TARGET_MEMBER, cr.CURRENT_ASSIGNMENT)
    key = cr.ConsumerGroupKey(kind, group, member if has_member else "")
    decoded_key = decode_key(encode_key(key))
    assert decoded_key == key
    assert decode_value(decoded_key, encode_value(value)) == value


def test_kafka_byte_layout() -> None:
    """Keys and values are laid out as Kafka's generated serializers write them."""
    key = cr.ConsumerGroupKey(cr.CURRENT_ASSIGNMENT, "g", "m")
    assert encode_key(key) == b"\x00\x08\x00\x01g\x00\x01m"
    assert encode_key(cr.ConsumerGroupKey(cr.METADATA, "g")) == b"\x00\x03\x00\x01g"
    assert encode_value(cr.GroupEpochValue(5)) == b"\x00\x00\x00\x00\x00\x05\x00"
    target = cr.TargetMemberValue(((TOPIC, (0, 2)),))
    # version, array of 1 (+1), uuid, array of 2 (+1), two int32, topic tags, value tags
    assert encode_value(target) == (
        b"\x00\x00\x02" + TOPIC.bytes + b"\x03\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00"
    )


def test_tagged_fields_of_newer_kafka_are_skipped() -> None:
    """Kafka 4.1 adds a tagged metadata hash to ConsumerGroupMetadataValue: it is read
    past, not rejected."""
    key = cr.ConsumerGroupKey(cr.METADATA, "g")
    raw = b"\x00\x00\x00\x00\x00\x07" + b"\x01\x00\x08" + b"\x00" * 8
    assert decode_value(key, raw) == cr.GroupEpochValue(7)


def test_malformed_values_are_format_errors() -> None:
    """A truncated or unknown-version value is a RecordFormatError (load skips it)."""
    key = cr.ConsumerGroupKey(cr.TARGET_MEMBER, "g", "m")
    with pytest.raises(RecordFormatError):
        decode_value(key, b"\x00\x00\x05")
    with pytest.raises(RecordFormatError):
        decode_value(key, b"\x00\x01\x01\x00")
    with pytest.raises(RecordFormatError):
        decode_key(b"\x00\x05\x00\x01g")
