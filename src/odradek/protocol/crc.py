"""CRC-32C (Castagnoli), the checksum of record batches and producer snapshots.

The `crc32c` package's C function does the work. The package is imported on first use,
not at start: its `__init__` reads its own version through `importlib.metadata`, which
pulls in zipfile, email and pathlib and cost ~35-50 ms of the broker's start-up. After the
first call `crc32c` is a plain module attribute, so the hot path pays nothing for this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:

    def crc32c(data: bytes | bytearray | memoryview, /) -> int:
        """CRC-32C of `data`."""


def __getattr__(name: str) -> Any:
    if name == "crc32c":
        from crc32c import crc32c as implementation

        globals()["crc32c"] = implementation
        return implementation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
