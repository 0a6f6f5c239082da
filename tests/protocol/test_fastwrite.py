"""The generated response writers produce exactly kio's bytes for every response class."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.index import load_response_schema
from kio.schema.index import api_key_map, schema_name_map
from kio.serial import entity_writer
from kio.static.primitive import Records

from odradek.protocol.codec import encode_response
from odradek.protocol.fastwrite import NeedsKio, writer_for

st.register_type_strategy(Records, st.binary(max_size=64).map(Records))

_CLASSES: list[Any] = [
    load_response_schema(key, version)
    for key, name in api_key_map.items()
    for version in schema_name_map[name]
]


def test_every_response_class_gets_a_writer() -> None:
    """A writer can be generated for each of kio's response classes."""
    assert len(_CLASSES) > 250
    for cls in _CLASSES:
        assert callable(writer_for(cls))


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_same_bytes_as_kio(data: st.DataObject) -> None:
    """For any message of any response class, the output equals kio's writer, or the
    writer declines (a non-default tagged field) and encode_response falls back to kio."""
    cls = data.draw(st.sampled_from(_CLASSES))
    message = data.draw(st.from_type(cls))
    expected = io.BytesIO()
    entity_writer(cls)(expected, message)
    out = bytearray()
    try:
        writer_for(cls)(out, message)
    except NeedsKio:
        frame = encode_response(int(cls.__api_key__), 7, message)
        assert frame.endswith(expected.getvalue())
        return
    assert bytes(out) == expected.getvalue()
