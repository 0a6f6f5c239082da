"""The CRC-32C helper: right values, and the crc32c package stays unloaded until used."""

from __future__ import annotations

from tests.helpers import run_python

from odradek.protocol import crc


def test_known_vectors() -> None:
    """The standard check value of CRC-32C and one of RFC 3720's vectors."""
    assert crc.crc32c(b"123456789") == 0xE3069283
    assert crc.crc32c(bytes(32)) == 0x8A9136AA
    assert crc.crc32c(memoryview(bytearray(b"123456789"))[0:9]) == 0xE3069283


def test_package_is_imported_on_first_use_only() -> None:
    """Importing the helper leaves crc32c unloaded; the first call loads it (in a child
    process, as this one may have loaded it already)."""
    code = (
        "import sys\n"
        "from odradek.protocol import crc\n"
        "before = 'crc32c' in sys.modules\n"
        "crc.crc32c(b'x')\n"
        "print(before, 'crc32c' in sys.modules)\n"
    )
    assert run_python(code).split() == ["False", "True"]
