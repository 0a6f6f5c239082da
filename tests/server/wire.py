"""A raw Kafka protocol client for tests: build any request version with kio, send it
on a plain socket, read and decode the response. Used to test exact wire behaviour that
client libraries hide (versions, error codes, ordering, hostile frames)."""

from __future__ import annotations

import io
import socket
import struct
from dataclasses import fields
from typing import Any

from kio.index import load_payload_module, load_request_schema, load_response_schema
from kio.schema.request_header.v1.header import RequestHeader as HeaderV1
from kio.schema.request_header.v2.header import RequestHeader as HeaderV2
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType
from kio.static.primitive import i16, i32

TIMEOUT_S = 10.0


def request_module(api_key: int, version: int) -> Any:
    return load_payload_module(api_key, version, EntityType.request)


def build(cls: Any, **values: Any) -> Any:
    """A kio message from the values its version has fields for."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def encode_request(api_key: int, version: int, correlation_id: int, body: Any) -> bytes:
    cls = load_request_schema(api_key, version)
    out = io.BytesIO()
    header_cls: Any = HeaderV2 if cls.__flexible__ else HeaderV1
    header = header_cls(
        request_api_key=i16(api_key),
        request_api_version=i16(version),
        correlation_id=i32(correlation_id),
        client_id="wire-test",
    )
    entity_writer(header_cls)(out, header)
    entity_writer(cls)(out, body)
    data = out.getvalue()
    return struct.pack(">i", len(data)) + data


class WireClient:
    """One connection; requests and responses by hand."""

    def __init__(self, port: int, timeout: float = TIMEOUT_S) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._correlation = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, api_key: int, version: int, body: Any) -> int:
        self._correlation += 1
        self.sock.sendall(encode_request(api_key, version, self._correlation, body))
        return self._correlation

    def read_frame(self) -> bytes:
        """One response frame; raises ConnectionError when the broker closed the socket."""
        size = struct.unpack(">i", self._read_exactly(4))[0]
        return self._read_exactly(size)

    def _read_exactly(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self.sock.recv(min(size, 1 << 20))
            if not chunk:
                raise ConnectionError("connection closed by broker")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def receive(self, api_key: int, version: int) -> tuple[int, Any]:
        """(correlation id, decoded response) of the next response frame."""
        frame = self.read_frame()
        cls: Any = load_response_schema(api_key, version)
        correlation_id = struct.unpack_from(">i", frame, 0)[0]
        offset = 5 if cls.__flexible__ and api_key != 18 else 4
        response, size = entity_reader(cls)(frame, offset)
        assert offset + size == len(frame), "trailing bytes in response"
        return correlation_id, response

    def call(self, api_key: int, version: int, body: Any) -> Any:
        correlation_id = self.send(api_key, version, body)
        received, response = self.receive(api_key, version)
        assert received == correlation_id
        return response

    def closed_by_peer(self, timeout: float = 2.0) -> bool:
        """True when the broker closes this connection within `timeout` seconds."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True
