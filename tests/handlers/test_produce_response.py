"""The produce handler writes its response bytes itself (handlers/produce.py
`write_response`); these tests prove they are kio's bytes for every Produce version."""

from __future__ import annotations

import datetime
import io
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode
from kio.serial import entity_writer

from odradek.handlers.produce import PartitionResult, TopicResult, write_response
from odradek.handlers.registry import make, response_module
from odradek.protocol.codec import encode_response
from odradek.protocol.frame import finish_response, start_response

VERSIONS = range(3, 14)
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
# Log append times as a broker produces them: -1 (CreateTime) or wall-clock ms.
APPEND_TIME = st.one_of(st.just(-1), st.integers(0, 2**42))

CODE = st.sampled_from(list(ErrorCode)).map(int)
RECORD_ERRORS = st.lists(st.tuples(INT32, st.text(max_size=30)), max_size=3).map(tuple)
# A plain result, or one refused record by record (KIP-467: record errors and a message).
PARTITION: st.SearchStrategy[PartitionResult] = st.one_of(
    st.tuples(INT32, CODE, INT64, APPEND_TIME, INT64),
    st.tuples(INT32, CODE, INT64, APPEND_TIME, INT64, RECORD_ERRORS, st.text(max_size=40)),
)
TOPIC = st.builds(
    TopicResult,
    name=st.text(max_size=20),
    topic_id=st.one_of(st.none(), st.uuids()),
    partitions=st.lists(PARTITION, max_size=4),
)


def kio_response(version: int, topics: list[TopicResult]) -> Any:
    """The kio object the handler built before it wrote bytes itself, the same way."""
    module = response_module(0, version)

    def partition(result: PartitionResult) -> Any:
        index, error, base_offset, append_time, start_offset = result[:5]
        # Record errors exist from v8 (kio's older versions have no class for them).
        record_errors: Any = result[5] if len(result) > 5 and version >= 8 else ()
        message = result[6] if len(result) > 5 else None
        when = None
        if append_time >= 0:
            when = datetime.datetime.fromtimestamp(append_time / 1000, tz=datetime.UTC)
        return make(
            module.PartitionProduceResponse,
            index=index,
            error_code=ErrorCode(error),
            base_offset=base_offset,
            log_append_time=when,
            log_start_offset=start_offset,
            record_errors=tuple(
                make(module.BatchIndexAndErrorMessage, batch_index=i, batch_index_error_message=m)
                for i, m in record_errors
            ),
            error_message=message,
        )

    return make(
        module.ProduceResponse,
        responses=tuple(
            make(
                module.TopicProduceResponse,
                name=topic.name,
                topic_id=topic.topic_id,
                partition_responses=tuple(map(partition, topic.partitions)),
            )
            for topic in topics
        ),
        throttle_time=datetime.timedelta(0),
    )


@settings(max_examples=400, deadline=None)
@given(version=st.sampled_from(VERSIONS), topics=st.lists(TOPIC, max_size=3))
def test_body_is_kios_bytes(version: int, topics: list[TopicResult]) -> None:
    """For any topics and partition results (with or without record errors), write_response
    gives exactly the bytes of kio's writer for the equivalent ProduceResponse of that
    version (which drops record errors before v8)."""
    expected = io.BytesIO()
    response = kio_response(version, topics)
    entity_writer(type(response))(expected, response)
    out = bytearray()
    write_response(out, version, topics)
    assert bytes(out) == expected.getvalue()


@settings(max_examples=100, deadline=None)
@given(
    version=st.sampled_from(VERSIONS),
    topics=st.lists(TOPIC, max_size=2),
    correlation_id=INT32,
)
def test_frame_is_encode_responses_frame(
    version: int, topics: list[TopicResult], correlation_id: int
) -> None:
    """The whole frame (size, correlation id, response header, body) equals what
    codec.encode_response makes of the kio response, for every version."""
    response = kio_response(version, topics)
    flexible = bool(type(response).__flexible__)
    out = start_response(flexible)
    write_response(out, version, topics)
    frame = finish_response(out, correlation_id).frame
    assert bytes(frame) == bytes(encode_response(0, correlation_id, response))


def test_every_version_is_covered() -> None:
    """The handler serves versions 3-13, and each has a kio response class."""
    from odradek.handlers.registry import API_TABLE

    assert API_TABLE[0][1:3] == (VERSIONS.start, VERSIONS.stop - 1)
    for version in VERSIONS:
        assert response_module(0, version).ProduceResponse is not None


def test_missing_topic_id_is_written_as_zeros() -> None:
    """v13 identifies topics by id; an unknown (None) id is written as the zero UUID, as
    kio writes it."""
    topics = [TopicResult(None, None, [(0, int(ErrorCode.unknown_topic_id), -1, -1, -1)])]
    out = bytearray()
    write_response(out, 13, topics)
    assert out[1:17] == uuid.UUID(int=0).bytes
    expected = io.BytesIO()
    response = kio_response(13, topics)
    entity_writer(type(response))(expected, response)
    assert bytes(out) == expected.getvalue()
