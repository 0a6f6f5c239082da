"""Tests of the bounds check run before kio's native reader: it must pass every valid
message and stop frames whose counts would make the reader allocate without limit."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.index import api_key_map, schema_name_map
from kio.serial import entity_writer
from kio.static.primitive import Records

from odradek.protocol.codec import RequestDecodeError, decode_request, request_class
from odradek.protocol.guard import check_bounds

# kio's Records type has no strategy of its own: any bytes will do for the walk.
st.register_type_strategy(Records, st.binary(max_size=64).map(Records))

_CLASSES = [
    cls
    for key, name in api_key_map.items()
    for version in schema_name_map[name]
    if (cls := request_class(key, version)) is not None
]


def test_most_request_classes_are_covered() -> None:
    """The round-trip property below really runs over most request schemas."""
    assert len(_CLASSES) > 250


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_valid_messages_pass_the_bounds_check(data: st.DataObject) -> None:
    """Every well-formed message of every request class passes the walk, consuming it all."""
    cls = data.draw(st.sampled_from(_CLASSES))
    message = data.draw(st.from_type(cls))
    out = io.BytesIO()
    entity_writer(cls)(out, message)
    check_bounds(cls, out.getvalue(), 0)


def test_billion_element_array_in_tiny_frame_is_refused() -> None:
    """A 40-byte Metadata v10 frame claiming ~10^10 topics is an error, not an abort."""
    frame = bytes.fromhex(
        "0003000a00000001ffff008ea4de8c27fd2162239cb1bbf5543121239be2b0e01d20c6089847ff455a01"
    )
    with pytest.raises(RequestDecodeError, match="beyond"):
        decode_request(frame, request_class(3, 10))  # type: ignore[arg-type]
