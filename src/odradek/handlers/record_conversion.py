"""The produce-time topic rules that need more than the batch header's own checks:
`message.timestamp.before.max.ms`/`message.timestamp.after.max.ms` (CreateTime topics)
and `compression.type` other than `producer`.

Only topics with such a config come here; the default path never decodes records.
Timestamps are checked on the batch header's base and max timestamp (not each record's).
A batch whose codec differs from the topic's is decoded and built again with the topic's
codec, keeping every record's key, value, headers, timestamp and offset delta, and the
batch's producer id, epoch and base sequence (so idempotence checks see the same batch).
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from odradek.config import LONG_MAX
from odradek.metadata.topic_config import ProducePolicy
from odradek.protocol.batch import NO_TIMESTAMP, BatchHeader, CorruptBatchError, read_header
from odradek.protocol.records import SimpleRecord, build_batch, decode_batch


def timestamp_error(header: BatchHeader, policy: ProducePolicy, now_ms: int) -> bool:
    """True when the batch's CreateTime timestamps lie outside the topic's bounds."""
    before, after = policy.timestamp_before_max_ms, policy.timestamp_after_max_ms
    if header.is_log_append_time:
        return False
    for timestamp in (header.base_timestamp, header.max_timestamp):
        if timestamp == NO_TIMESTAMP:
            continue
        if before != LONG_MAX and timestamp < now_ms - before:
            return True
        if after != LONG_MAX and timestamp > now_ms + after:
            return True
    return False


def recompress(records: bytes, header: BatchHeader, codec: int, level: int | None = None) -> bytes:
    """The batch built again with `codec`; CorruptBatchError when its records do not
    decode, ValueError when their offset deltas are not 0..n-1 (no producer sends that)."""
    _, decoded = decode_batch(records)
    for delta, record in enumerate(decoded):
        if record.offset - header.base_offset != delta:
            raise ValueError("record offset deltas are not consecutive")
    return build_batch(
        [SimpleRecord(r.value, r.key, r.headers, r.timestamp) for r in decoded],
        compression=codec,
        compression_level=level,
        base_offset=header.base_offset,
        partition_leader_epoch=header.partition_leader_epoch,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
        is_transactional=header.is_transactional,
        log_append_time=header.is_log_append_time,
    )


def apply_policy(
    records: bytes, header: BatchHeader, policy: ProducePolicy, now_ms: int, max_bytes: int
) -> tuple[bytes, BatchHeader] | ErrorCode:
    """The batch to append under the topic's rules, or the error code refusing it."""
    if timestamp_error(header, policy, now_ms):
        return ErrorCode.invalid_timestamp
    if policy.compression is None or policy.compression == header.compression:
        return records, header
    try:
        converted = recompress(records, header, policy.compression, policy.compression_level)
    except CorruptBatchError:
        return ErrorCode.corrupt_message
    except ValueError:
        return ErrorCode.invalid_record
    if len(converted) > max_bytes:
        return ErrorCode.message_too_large
    return converted, read_header(converted)
