"""A stand-in for an asyncio transport, to drive a broker `Connection` without sockets:
tests feed frames to `connection.data_received` and read the responses it wrote."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class RecordingTransport:
    """Just enough of asyncio.Transport for a Connection: keeps every written response (as
    written, without copying) and whether the connection aborted; never closes by itself."""

    def __init__(self) -> None:
        self.written: list[bytes | bytearray] = []
        self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default

    def writelines(self, data: Iterable[bytes | bytearray]) -> None:
        self.written.extend(data)

    def write(self, data: bytes | bytearray) -> None:
        self.written.append(data)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted
