"""A follower's Fetch v11 answer written as a list of buffers (the fetch handler's fast
path for the replica fetcher's own version).

Through kio every partition's records are copied into the response frame once more;
here the frame is the fixed-layout parts (header, topic and partition fields) in small
bytearrays with each partition's records between them as read from the log, and the
connection hands the list to the transport (`writelines`) without joining it. Only
error-free answers come this way (a follower reads uncommitted: no aborted
transactions); the handler builds anything else with kio.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from odradek.protocol.frame import EncodedResponse

VERSION = 11

# size, correlation id, throttle_time_ms, error_code, session_id
_HEAD = struct.Struct(">iiihi")
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
# partition_index, error_code, high_watermark, last_stable_offset, log_start_offset,
# aborted transactions (empty), preferred_read_replica (none), records length
_PARTITION = struct.Struct(">ihqqqiii")

Buffer = bytes | bytearray | memoryview
# (topic, partition, high watermark, last stable offset, log start offset, records)
Read = tuple[str, int, int, int, int, Buffer]


def encode_replica_fetch_v11(correlation_id: int, reads: Sequence[Read]) -> EncodedResponse:
    """The size-prefixed v11 response frame for error-free partition reads, topics in
    the order they first appear (as the kio path groups them), records not copied."""
    by_topic: dict[str, list[Read]] = {}
    for read in reads:
        by_topic.setdefault(read[0], []).append(read)
    head = bytearray(_HEAD.size)
    current = head
    parts: list[Buffer] = []
    current += _INT32.pack(len(by_topic))
    for topic, topic_reads in by_topic.items():
        name = topic.encode()
        current += _INT16.pack(len(name))
        current += name
        current += _INT32.pack(len(topic_reads))
        for _, index, high_watermark, lso, log_start, records in topic_reads:
            size = len(records)
            current += _PARTITION.pack(index, 0, high_watermark, lso, log_start, 0, -1, size)
            if size:
                parts.append(records)
                current = bytearray()
                parts.append(current)
    total = len(head) + sum(len(p) for p in parts)
    _HEAD.pack_into(head, 0, total - 4, correlation_id, 0, 0, 0)
    return EncodedResponse(head, tuple(p for p in parts if len(p)))
