"""Per-record produce errors (KIP-467): which records of a refused batch were at fault.

When Kafka's LogValidator refuses a batch because of some of its records, the Produce
response (v8+) names them: `record_errors` holds each bad record's index in the batch with
a message, and `error_message` says why the batch as a whole failed. Clients use it to
fail exactly those records: librdkafka gives them the partition's error and the others of
the batch `_INVALID_DIFFERENT_RECORD`; kafka-python gives them their own message.

Two rules decide per record, as in Kafka: a record without a key in a compacted topic
(INVALID_RECORD), and a CreateTime timestamp outside the topic's
`message.timestamp.before.max.ms`/`message.timestamp.after.max.ms` (INVALID_TIMESTAMP;
the partition's error is INVALID_TIMESTAMP as soon as one record has it). The messages
are Kafka's. This decodes the batch, so produce calls it only for compacted topics and
for batches whose header timestamps already broke the bounds.
"""

from __future__ import annotations

from typing import NamedTuple

from kio.schema.errors import ErrorCode

from odradek.config import LONG_MAX
from odradek.metadata.topic_config import ProducePolicy
from odradek.protocol.batch import NO_TIMESTAMP, CorruptBatchError
from odradek.protocol.records import Record, decode_batch

# Kafka lists every bad record but quotes at most this many in the error message.
_QUOTED = 3


class RecordRefusal(NamedTuple):
    """A batch refused because of some of its records."""

    code: ErrorCode  # INVALID_RECORD or INVALID_TIMESTAMP
    record_errors: tuple[tuple[int, str], ...]  # (index in the batch, message)
    message: str


def _java_long(value: int) -> int:
    """`value` wrapped to a signed 64-bit integer, as Java's long arithmetic does (the
    bounds printed in Kafka's message wrap when a limit is Long.MAX_VALUE)."""
    return (value + 2**63) % 2**64 - 2**63


def _record_error(
    record: Record,
    compact: bool,
    policy: ProducePolicy,
    log_append_time: bool,
    now_ms: int,
    partition: str,
) -> tuple[ErrorCode, str] | None:
    """The error of one record, the key rule first (as Kafka checks them)."""
    if compact and record.key is None:
        return (
            ErrorCode.invalid_record,
            f"Compacted topic cannot accept message without key in topic partition {partition}",
        )
    before, after = policy.timestamp_before_max_ms, policy.timestamp_after_max_ms
    if log_append_time or record.timestamp == NO_TIMESTAMP:
        return None
    late = before != LONG_MAX and now_ms - record.timestamp > before
    early = after != LONG_MAX and record.timestamp - now_ms > after
    if not (late or early):
        return None
    low, high = _java_long(now_ms - before), _java_long(now_ms + after)
    return (
        ErrorCode.invalid_timestamp,
        f"Timestamp {record.timestamp} of message with offset {record.offset} is out of "
        f"range. The timestamp should be within [{low}, {high}]",
    )


def find_record_errors(
    records: bytes,
    *,
    compact: bool,
    policy: ProducePolicy,
    now_ms: int,
    topic: str,
    partition: int,
) -> RecordRefusal | ErrorCode | None:
    """Why Kafka would refuse this batch record by record; None when no record is at
    fault, INVALID_RECORD alone when the records do not decode."""
    try:
        header, decoded = decode_batch(records)
    except CorruptBatchError:
        return ErrorCode.invalid_record
    where = f"{topic}-{partition}"
    found = [
        (index, error)
        for index, record in enumerate(decoded)
        if (
            error := _record_error(
                record, compact, policy, header.is_log_append_time, now_ms, where
            )
        )
        is not None
    ]
    if not found:
        return None
    errors = tuple((index, message) for index, (_code, message) in found)
    if any(code == ErrorCode.invalid_timestamp for _index, (code, _m) in found):
        summary = "One or more records have been rejected due to invalid timestamp"
        return RecordRefusal(ErrorCode.invalid_timestamp, errors, summary)
    quoted = ", ".join(
        f"RecordError(batchIndex={index}, message='{message}')"
        for index, message in errors[:_QUOTED]
    )
    summary = (
        f"One or more records have been rejected due to {len(errors)} record errors in "
        f"total, and only showing the first three errors at most: [{quoted}]"
    )
    return RecordRefusal(ErrorCode.invalid_record, errors, summary)
