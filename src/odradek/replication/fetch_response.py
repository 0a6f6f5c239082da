"""A fast reader for the replica fetcher's own Fetch responses (v11), next to kio's.

kio decodes a Fetch response field by field and copies every partition's records into a
new bytes object; a follower receives nearly all of its bytes this way. This reader takes
the fixed layout of a v11 response (non-flexible: no tagged fields) with `struct` and
hands each partition's records on as a slice of the frame (a memoryview: no copy), in
kio's own response classes, so the fetcher cannot tell the two apart.

It only takes the common case: no top-level or partition error, no aborted transactions
(a follower reads uncommitted). For anything else, and for any frame whose lengths do not
add up, it returns None and the caller decodes with kio, which reports errors its way.
"""

from __future__ import annotations

import datetime
import struct
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.fetch.v11 import response as fetch_response

VERSION = 11

# kio's classes want its NewType'd ints; these are built from plain ones.
_Response: Any = fetch_response.FetchResponse
_Topic: Any = fetch_response.FetchableTopicResponse
_Partition: Any = fetch_response.PartitionData

# correlation id (response header v0), throttle_time_ms, error_code, session_id, topics
_HEAD = struct.Struct(">iihii")
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
# partition_index, error_code, high_watermark, last_stable_offset, log_start_offset,
# aborted transactions (count, -1 for null)
_PARTITION = struct.Struct(">ihqqqi")
# preferred_read_replica, records length (-1 for null)
_TAIL = struct.Struct(">ii")
_NO_ERROR = ErrorCode.none
_ZERO = datetime.timedelta(0)


class _Unusual(Exception):
    """The frame is not the common case: kio decodes it."""


def parse_fetch_v11(frame: bytes | memoryview) -> Any | None:
    """The kio FetchResponse (v11) of a response frame (without its size prefix, from the
    correlation id on), with each partition's records a memoryview of `frame`; None when
    the frame is not an error-free response without aborted transactions that ends
    exactly at the end of the frame."""
    view = memoryview(frame)
    try:
        return _parse(view)
    except (_Unusual, struct.error, UnicodeDecodeError):
        return None


def _parse(view: memoryview) -> Any:
    end = len(view)
    _, throttle_ms, error, session_id, topic_count = _HEAD.unpack_from(view, 0)
    if error != 0 or topic_count < 0:
        raise _Unusual
    pos = _HEAD.size
    topics = []
    for _ in range(topic_count):
        (name_length,) = _INT16.unpack_from(view, pos)
        pos += 2
        if name_length < 0 or pos + name_length > end:
            raise _Unusual
        name = str(view[pos : pos + name_length], "utf-8")
        pos += name_length
        partitions, pos = _parse_partitions(view, pos, end)
        topics.append(_Topic(topic=name, partitions=partitions))
    if pos != end:
        raise _Unusual
    throttle = _ZERO if throttle_ms == 0 else datetime.timedelta(milliseconds=throttle_ms)
    return _Response(
        throttle_time=throttle,
        error_code=_NO_ERROR,
        session_id=session_id,
        responses=tuple(topics),
    )


def _parse_partitions(view: memoryview, pos: int, end: int) -> tuple[tuple[Any, ...], int]:
    (count,) = _INT32.unpack_from(view, pos)
    pos += 4
    if count < 0:
        raise _Unusual
    partitions = []
    for _ in range(count):
        index, error, high_watermark, lso, log_start, aborted = _PARTITION.unpack_from(view, pos)
        if error != 0 or aborted > 0:
            raise _Unusual
        preferred, size = _TAIL.unpack_from(view, pos + _PARTITION.size)
        pos += _PARTITION.size + _TAIL.size
        if size < -1 or pos + size > end:
            raise _Unusual
        records = None if size == -1 else view[pos : pos + size]
        pos += max(size, 0)
        partitions.append(
            _Partition(
                partition_index=index,
                error_code=_NO_ERROR,
                high_watermark=high_watermark,
                last_stable_offset=lso,
                log_start_offset=log_start,
                aborted_transactions=None if aborted == -1 else (),
                preferred_read_replica=preferred,
                records=records,
            )
        )
    return tuple(partitions), pos
