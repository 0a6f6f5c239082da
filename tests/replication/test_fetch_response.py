"""The fetcher's fast Fetch v11 reader against kio's decoding of the same frames (random
responses, errors, aborted transactions, damaged frames)."""

from __future__ import annotations

import datetime
import random
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.fetch.v11 import response as m

from odradek.protocol.codec import decode_response, encode_response
from odradek.replication.fetch_response import parse_fetch_v11

_Response: Any = m.FetchResponse
_Topic: Any = m.FetchableTopicResponse
_Partition: Any = m.PartitionData
_Aborted: Any = m.AbortedTransaction


def _partition(rng: random.Random, index: int, error: ErrorCode = ErrorCode.none) -> Any:
    size = rng.choice([-1, 0, 1, 61, rng.randrange(2, 70_000)])
    return _Partition(
        partition_index=index,
        error_code=error,
        high_watermark=rng.randrange(-1, 2**62),
        last_stable_offset=rng.randrange(-1, 2**62),
        log_start_offset=rng.randrange(-1, 2**62),
        aborted_transactions=rng.choice([None, ()]),
        preferred_read_replica=rng.randrange(-1, 5),
        records=None if size < 0 else rng.randbytes(size),
    )


def _response(rng: random.Random) -> Any:
    topics = tuple(
        _Topic(
            topic=rng.choice(["t", "topic-é", "x" * 200, ""]) + str(t),
            partitions=tuple(_partition(rng, p) for p in range(rng.randrange(0, 4))),
        )
        for t in range(rng.randrange(0, 4))
    )
    return _Response(
        throttle_time=datetime.timedelta(milliseconds=rng.choice([0, 0, 7])),
        error_code=ErrorCode.none,
        session_id=rng.randrange(0, 2**31),
        responses=topics,
    )


def _frame(response: Any) -> bytes:
    """The frame as the client dispatches it: without its size prefix."""
    return bytes(encode_response(1, 1234, response)[4:])


def _comparable(response: Any) -> Any:
    """The response with its records as bytes (the fast reader's are views)."""
    topics = []
    for topic in response.responses:
        parts = []
        for p in topic.partitions:
            records = None if p.records is None else bytes(p.records)
            parts.append((p.partition_index, p.error_code, p.high_watermark,
                          p.last_stable_offset, p.log_start_offset, p.aborted_transactions,
                          p.preferred_read_replica, records))  # fmt: skip
        topics.append((str(topic.topic), tuple(parts)))
    return (response.throttle_time, response.error_code, response.session_id, tuple(topics))


def test_random_responses_read_as_kio_reads_them() -> None:
    """For error-free responses the fast reader returns what kio decodes, field for
    field, with the records as views of the frame."""
    rng = random.Random(11)
    for _ in range(300):
        frame = _frame(_response(rng))
        fast = parse_fetch_v11(frame)
        _, slow = decode_response(frame, 1, 11)
        assert fast is not None
        assert _comparable(fast) == _comparable(slow)
        for topic in fast.responses:
            for p in topic.partitions:
                assert p.records is None or isinstance(p.records, memoryview)


def test_errors_and_aborted_transactions_are_left_to_kio() -> None:
    """A top-level error, a partition error or aborted transactions make it step aside."""
    rng = random.Random(5)
    base = _response(rng)
    failed = _Response(
        throttle_time=datetime.timedelta(0),
        error_code=ErrorCode.unknown_server_error,
        session_id=0,
        responses=(),
    )
    refused = _Response(
        throttle_time=datetime.timedelta(0),
        error_code=ErrorCode.none,
        session_id=0,
        responses=(
            _Topic(topic="t", partitions=(_partition(rng, 0, ErrorCode.fenced_leader_epoch),)),
        ),
    )
    aborted_partition = _Partition(
        partition_index=0,
        error_code=ErrorCode.none,
        high_watermark=5,
        last_stable_offset=3,
        log_start_offset=0,
        aborted_transactions=(_Aborted(producer_id=7, first_offset=1),),
        preferred_read_replica=-1,
        records=b"",
    )
    aborted = _Response(
        throttle_time=datetime.timedelta(0),
        error_code=ErrorCode.none,
        session_id=0,
        responses=(_Topic(topic="t", partitions=(aborted_partition,)),),
    )
    assert parse_fetch_v11(_frame(base)) is not None
    for response in (failed, refused, aborted):
        assert parse_fetch_v11(_frame(response)) is None


def test_damaged_frames_are_left_to_kio() -> None:
    """Truncated frames, trailing bytes and impossible lengths give None, never an
    exception or a response with made-up fields."""
    rng = random.Random(3)
    for _ in range(50):
        frame = _frame(_response(rng))
        for cut in {0, 3, len(frame) // 2, len(frame) - 1}:
            if cut < len(frame):
                assert parse_fetch_v11(frame[:cut]) is None
        assert parse_fetch_v11(frame + b"\x00") is None
    # one topic, one partition claiming 1 GiB of records
    frame = bytearray(_frame(_Response(
        throttle_time=datetime.timedelta(0), error_code=ErrorCode.none, session_id=0,
        responses=(_Topic(topic="t", partitions=(_Partition(
            partition_index=0, error_code=ErrorCode.none, high_watermark=0,
            last_stable_offset=0, log_start_offset=0, aborted_transactions=(),
            preferred_read_replica=-1, records=b"abcd"),)),),
    )))  # fmt: skip
    frame[-8:-4] = (1 << 30).to_bytes(4, "big")
    assert parse_fetch_v11(bytes(frame)) is None
    frame[-8:-4] = (-2).to_bytes(4, "big", signed=True)
    assert parse_fetch_v11(bytes(frame)) is None
