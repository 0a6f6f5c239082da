"""Transaction marker batches: the bytes Kafka writes, and parsing them back."""

from __future__ import annotations

import io

import pytest
from kio.schema.control_record_type_schema.v0.data import ControlRecordTypeSchema
from kio.schema.end_txn_marker.v0.data import EndTxnMarker
from kio.serial import entity_writer
from kio.static.primitive import i16, i32

from odradek.protocol.batch import read_header
from odradek.protocol.control import TxnMarker, build_marker, parse_marker
from odradek.protocol.records import SimpleRecord, build_batch, decode_batch


def _kio(entity: object) -> bytes:
    out = io.BytesIO()
    entity_writer(type(entity))(out, entity)
    return out.getvalue()


@pytest.mark.parametrize("commit", [False, True])
def test_marker_record_is_kafkas_key_and_value(commit: bool) -> None:
    """Key: version 0 + ControlRecordTypeSchema (0 abort, 1 commit); value: version 0 +
    EndTxnMarker; the batch is control + transactional with sequence -1."""
    batch = build_marker(42, 3, TxnMarker(commit, 17), 1_234, base_offset=9)
    header, records = decode_batch(batch)
    assert header.is_control and header.is_transactional
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (42, 3, -1)
    assert (header.base_offset, header.records_count, header.max_timestamp) == (9, 1, 1_234)
    (record,) = records
    assert record.key == b"\x00\x00" + _kio(ControlRecordTypeSchema(type_=i16(int(commit))))
    assert record.value == b"\x00\x00" + _kio(EndTxnMarker(coordinator_epoch=i32(17)))
    assert parse_marker(batch, header) == TxnMarker(commit, 17)


def test_other_control_records_are_not_markers() -> None:
    """A control record of another type (KRaft's LEADER_CHANGE is 2), a short key or a
    data batch parse as no marker, never as an error."""
    for key, control in (
        (b"\x00\x00\x00\x02", True),
        (b"\x00", True),
        (b"\x00\x00\x00\x01", False),
    ):
        batch = build_batch(
            [SimpleRecord(b"\x00\x00\x00\x00\x00\x01", key=key)],
            producer_id=1,
            producer_epoch=0,
            is_transactional=True,
            is_control=control,
        )
        assert parse_marker(batch, read_header(batch)) is None
