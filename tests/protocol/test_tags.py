"""Unknown tagged fields (KIP-482) are skipped, not a broken request: hand-built flexible
requests carry unknown tags in the header and in the body at several nesting levels (and
inside a known tagged struct), and decode to what the same request without them gives;
known tags survive; truncated tag sections are still refused."""

from __future__ import annotations

import struct
import uuid

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v15.request import FetchRequest
from kio.schema.metadata.v12.request import MetadataRequest
from kio.schema.produce.v9.request import ProduceRequest
from tests.server.wire import WireClient

from odradek.protocol.codec import RequestDecodeError, decode_request
from odradek.protocol.tags import strip_unknown_tags
from odradek.testing import Broker

TOPIC_ID = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")


def uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tags(*fields: tuple[int, bytes]) -> bytes:
    """A tagged-field section holding `fields` (tag, value) in order."""
    return uvarint(len(fields)) + b"".join(uvarint(t) + uvarint(len(v)) + v for t, v in fields)


def compact_string(text: str) -> bytes:
    data = text.encode()
    return uvarint(len(data) + 1) + data


def header(api_key: int, version: int, header_tags: bytes = tags()) -> bytes:
    """Request header v2 with client id "c" and the given tagged section."""
    return struct.pack(">hhih", api_key, version, 7, 1) + b"c" + header_tags


def metadata_v12(
    header_tags: bytes, topic_tags: bytes, body_tags: bytes, name: str = "rides"
) -> bytes:
    """Metadata v12 for one topic by name, without auto-creation."""
    topic = uuid.UUID(int=0).bytes + compact_string(name) + topic_tags
    body = uvarint(2) + topic + b"\x00\x00" + body_tags
    return header(3, 12, header_tags) + body


UNKNOWN = (1000, b"\xde\xad\xbe\xef")  # a tag no version of any schema declares
BIG_UNKNOWN = (70_000, bytes(300))  # multi-byte varints for the tag and the size


def test_unknown_tags_at_every_level_of_metadata_are_skipped() -> None:
    """Unknown tags in the header, in a topic entry and at the top level decode to the
    same request and header as the frame without them."""
    plain = decode_request(metadata_v12(tags(), tags(), tags()), MetadataRequest)
    tagged = metadata_v12(tags(UNKNOWN), tags(UNKNOWN, BIG_UNKNOWN), tags(BIG_UNKNOWN))
    assert decode_request(tagged, MetadataRequest) == plain
    assert plain[1].topics[0].name == "rides"


def fetch_v15(
    partition_tags: bytes, replica_state: bytes | None, body_tags: list[tuple[int, bytes]]
) -> bytes:
    partition = struct.pack(">iiqiqi", 0, 5, 42, -1, -1, 1 << 20) + partition_tags
    topic = TOPIC_ID.bytes + uvarint(2) + partition + tags()
    body = struct.pack(">iiibii", 500, 1, 1 << 20, 1, 0, -1)
    body += uvarint(2) + topic + uvarint(1) + compact_string("rack-a")
    known = [(0, compact_string("cluster-x"))]
    if replica_state is not None:
        known.append((1, replica_state))
    return header(1, 15) + body + tags(*sorted([*known, *body_tags]))


def test_unknown_tags_in_fetch_partitions_and_inside_a_known_tagged_struct() -> None:
    """Fetch v15: an unknown tag three levels down (a partition), one inside the known
    tagged replica_state struct and one beside the known tags at the top are skipped; the
    known tagged values (cluster_id, replica_state) are kept."""
    replica = struct.pack(">iq", 3, 9)
    plain = decode_request(fetch_v15(tags(), replica + tags(), []), FetchRequest)
    tagged = fetch_v15(tags(UNKNOWN), replica + tags(BIG_UNKNOWN), [(5, b"x")])
    header_, body = decode_request(tagged, FetchRequest)
    assert (header_, body) == plain
    assert body.cluster_id == "cluster-x"
    assert (body.replica_state.replica_id, body.replica_state.replica_epoch) == (3, 9)
    assert body.topics[0].partitions[0].fetch_offset == 42
    assert body.rack_id == "rack-a"


def produce_v9(partition_tags: bytes, body_tags: bytes) -> bytes:
    records = b"\x00" * 61  # opaque here: only the handler looks inside
    partition = struct.pack(">i", 0) + uvarint(len(records) + 1) + records + partition_tags
    topic = compact_string("rides") + uvarint(2) + partition + tags()
    body = uvarint(0) + struct.pack(">hi", -1, 1000) + uvarint(2) + topic + body_tags
    return header(0, 9, tags(UNKNOWN)) + body


def test_unknown_tags_in_produce_are_skipped_and_records_kept_byte_for_byte() -> None:
    """Produce v9 with unknown tags in the header, a partition and the body decodes with
    its records untouched."""
    plain = decode_request(produce_v9(tags(), tags()), ProduceRequest)
    assert decode_request(produce_v9(tags(BIG_UNKNOWN), tags(UNKNOWN)), ProduceRequest) == (
        plain[0],
        plain[1],
    )
    assert bytes(plain[1].topic_data[0].partition_data[0].records) == b"\x00" * 61


def test_stripping_keeps_a_frame_without_unknown_tags_unchanged() -> None:
    """The walk copies a frame that has only known tags byte for byte."""
    frame = fetch_v15(tags(), struct.pack(">iq", 3, 9) + tags(), [])
    assert strip_unknown_tags(frame, FetchRequest) == frame


@pytest.mark.parametrize("cut", [1, 3, 6])
def test_a_truncated_unknown_tag_is_still_a_bad_frame(cut: int) -> None:
    """An unknown tag whose value runs past the frame is refused, not skipped."""
    frame = metadata_v12(tags(), tags(), tags(UNKNOWN))
    with pytest.raises(RequestDecodeError):
        decode_request(frame[:-cut], MetadataRequest)


def test_a_tag_size_beyond_the_frame_is_refused() -> None:
    """A tag claiming more bytes than the frame has cannot make the walk read past it."""
    frame = metadata_v12(tags(), tags(), uvarint(1) + uvarint(1000) + uvarint(1 << 20) + b"x")
    with pytest.raises(RequestDecodeError):
        decode_request(frame, MetadataRequest)


def test_broker_answers_a_request_with_unknown_tags(kafka_broker: Broker) -> None:
    """On a real socket, a Metadata v12 request carrying unknown tags in its header, a
    topic and its body is answered (the topic does not exist) and the connection stays
    open for the next request."""
    name = f"no-such-topic-{uuid.uuid4().hex}"
    frame = metadata_v12(tags(UNKNOWN), tags(BIG_UNKNOWN), tags(UNKNOWN), name)
    with WireClient(kafka_broker.port) as client:
        for _ in range(2):
            client.sock.sendall(struct.pack(">i", len(frame)) + frame)
            correlation_id, response = client.receive(3, 12)
            assert correlation_id == 7
            assert response.topics[0].name == name
            assert response.topics[0].error_code == ErrorCode.unknown_topic_or_partition
