"""The follower's Fetch v11 answer written as buffers: kio decodes the joined frame to
exactly the reads it was built from, and the records are passed on, not copied."""

from __future__ import annotations

import random

from kio.schema.errors import ErrorCode

from odradek.handlers.fetch_replica import Read, encode_replica_fetch_v11
from odradek.protocol.codec import decode_response


def _reads(rng: random.Random) -> list[Read]:
    reads: list[Read] = []
    for _ in range(rng.randrange(0, 6)):
        size = rng.choice([0, 0, 1, rng.randrange(2, 50_000)])
        data = rng.randbytes(size)
        records = rng.choice([data, bytearray(data), memoryview(data)])
        reads.append(
            (
                rng.choice(["t", "topic-é", "y" * 100]),
                rng.randrange(0, 100),
                rng.randrange(-1, 2**62),
                rng.randrange(-1, 2**62),
                rng.randrange(-1, 2**62),
                records,
            )
        )
    return reads


def test_kio_decodes_the_buffers_to_the_reads() -> None:
    """Random reads, topics interleaved: the size prefix counts every buffer, and kio's
    decoding gives each partition's fields and records, topics grouped in first-seen
    order as the kio path groups them."""
    rng = random.Random(7)
    for _ in range(300):
        reads = _reads(rng)
        encoded = encode_replica_fetch_v11(4321, reads)
        frame = bytes(encoded.frame) + b"".join(bytes(b) for b in encoded.rest)
        assert int.from_bytes(frame[:4], "big") == len(frame) - 4
        correlation_id, response = decode_response(frame[4:], 1, 11)
        assert correlation_id == 4321
        assert response.error_code == ErrorCode.none
        assert response.session_id == 0
        expected: dict[str, list[tuple[object, ...]]] = {}
        for topic, index, hw, lso, start, records in reads:
            expected.setdefault(topic, []).append((index, hw, lso, start, bytes(records)))
        got = {
            str(t.topic): [
                (p.partition_index, p.high_watermark, p.last_stable_offset,
                 p.log_start_offset, bytes(p.records))
                for p in t.partitions
                if p.error_code == ErrorCode.none and p.aborted_transactions == ()
                and p.preferred_read_replica == -1
            ]
            for t in response.responses
        }  # fmt: skip
        assert list(got) == list(expected)
        assert got == expected


def test_records_are_not_copied() -> None:
    """Each non-empty records buffer is one of the buffers handed to the transport."""
    records = [b"a" * 1000, memoryview(b"b" * 5000)]
    reads: list[Read] = [("t", 0, 9, 9, 0, records[0]), ("t", 1, 9, 9, 0, b""),
                         ("u", 0, 9, 9, 0, records[1])]  # fmt: skip
    encoded = encode_replica_fetch_v11(1, reads)
    assert [b for b in encoded.rest if b is records[0] or b is records[1]] == records
