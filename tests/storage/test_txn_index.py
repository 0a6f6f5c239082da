"""The `.txnindex` file alone: Kafka's 34-byte entries, order, truncation, torn tails."""

from __future__ import annotations

import os
import struct

import pytest

from odradek.storage.fs import FileSystem
from odradek.storage.txn_index import ENTRY_SIZE, AbortedTxn, TransactionIndex


def _index(any_fs: tuple[FileSystem, str]) -> tuple[FileSystem, TransactionIndex]:
    fs, path = any_fs
    fs.mkdir(path)
    return fs, TransactionIndex(fs, os.path.join(path, "00000000000000000000.txnindex"))


def test_entries_round_trip_in_kafkas_format(any_fs: tuple[FileSystem, str]) -> None:
    """version int16 0, producer id, first, last and last stable offset as int64s."""
    fs, index = _index(any_fs)
    assert not fs.exists(index.path)  # no file until the first entry
    index.append(AbortedTxn(5, 10, 20, 11))
    index.append(AbortedTxn(6, 11, 21, 22))
    index.close()
    assert fs.read_file(index.path) == struct.pack(">hqqqq", 0, 5, 10, 20, 11) + struct.pack(
        ">hqqqq", 0, 6, 11, 21, 22
    )
    assert TransactionIndex(fs, index.path).entries == [
        AbortedTxn(5, 10, 20, 11),
        AbortedTxn(6, 11, 21, 22),
    ]


def test_out_of_order_entry_is_refused(any_fs: tuple[FileSystem, str]) -> None:
    """Entries come in marker order; one ending at or before the last is a bug."""
    _, index = _index(any_fs)
    index.append(AbortedTxn(5, 10, 20, 21))
    with pytest.raises(ValueError):
        index.append(AbortedTxn(6, 1, 20, 21))


def test_truncate_drops_entries_from_the_offset(any_fs: tuple[FileSystem, str]) -> None:
    """Entries whose marker is at or after the cut are removed from file and memory."""
    fs, index = _index(any_fs)
    for i in range(4):
        index.append(AbortedTxn(i, 10 * i, 10 * i + 5, 10 * i + 6))
    index.truncate_to(25)
    index.close()
    assert [t.producer_id for t in TransactionIndex(fs, index.path).entries] == [0, 1]
    assert fs.file_size(index.path) == 2 * ENTRY_SIZE


def test_torn_last_entry_is_dropped(any_fs: tuple[FileSystem, str]) -> None:
    """A partial entry at the end (a crash mid-write) is cut away on load."""
    fs, index = _index(any_fs)
    index.append(AbortedTxn(1, 0, 4, 5))
    index.close()
    handle = fs.open(index.path)
    handle.append(b"\x00" * 10)
    handle.close()
    reloaded = TransactionIndex(fs, index.path)
    assert reloaded.entries == [AbortedTxn(1, 0, 4, 5)]
    reloaded.append(AbortedTxn(2, 5, 9, 10))
    reloaded.close()
    assert fs.file_size(index.path) == 2 * ENTRY_SIZE


def test_collect_stops_once_an_lso_reaches_the_bound(any_fs: tuple[FileSystem, str]) -> None:
    """Kafka's collectAbortedTxns: overlapping entries, complete when an entry's LSO is
    at or above the upper bound."""
    _, index = _index(any_fs)
    index.append(AbortedTxn(1, 0, 4, 2))
    index.append(AbortedTxn(2, 2, 8, 9))
    index.append(AbortedTxn(3, 9, 12, 13))
    assert index.collect(5, 9) == ([AbortedTxn(2, 2, 8, 9)], True)
    assert index.collect(0, 20) == (index.entries, False)
