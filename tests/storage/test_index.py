"""Offset and time index files: Kafka's entry layout, lookups, truncation, damage."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from odradek.storage.index import OffsetIndex, TimeIndex
from odradek.storage.memory_fs import MemoryFileSystem


def _fs() -> MemoryFileSystem:
    fs = MemoryFileSystem()
    fs.mkdir("/p")
    return fs


def test_offset_index_entry_format_and_lookup() -> None:
    """Entries are 4-byte relative offset + 4-byte position, big-endian; lookup returns the
    largest entry <= target, or (base_offset, 0) below the first."""
    fs = _fs()
    index = OffsetIndex(fs, "/p/x.index", 100, 1024)
    index.append(110, 4100)
    index.append(125, 8300)
    index.append(140, 12500)
    index.flush()
    assert fs.read_file("/p/x.index") == struct.pack(">iiiiii", 10, 4100, 25, 8300, 40, 12500)
    assert index.lookup(99) == (100, 0)
    assert index.lookup(109) == (100, 0)
    assert index.lookup(110) == (110, 4100)
    assert index.lookup(139) == (125, 8300)
    assert index.lookup(10**6) == (140, 12500)


def test_offset_index_reloads_and_truncates() -> None:
    """A reopened index reads the same entries; truncate_to drops offsets >= target."""
    fs = _fs()
    index = OffsetIndex(fs, "/p/x.index", 0, 1024)
    for i in range(1, 20):
        index.append(i * 10, i * 1000)
    index.close()
    again = OffsetIndex(fs, "/p/x.index", 0, 1024)
    assert again.is_sane()
    assert again.lookup(55) == (50, 5000)
    again.truncate_to(50)
    assert again.last_entry() == (40, 4000)
    assert fs.file_size("/p/x.index") == 4 * 8


def test_trailing_zero_entries_are_dropped() -> None:
    """A preallocated (zero-padded) index reads as its real entries; it is flagged for a
    rebuild because only an unclean writer leaves padding behind."""
    fs = _fs()
    fs.write_file("/p/x.index", struct.pack(">iiii", 5, 4200, 9, 8400) + bytes(8 * 100))
    index = OffsetIndex(fs, "/p/x.index", 1000, 10 << 20)
    assert index.entries() == [(1005, 4200), (1009, 8400)]
    assert not index.is_sane()
    assert index.lookup(2000) == (1009, 8400)


def test_torn_or_disordered_index_is_not_sane() -> None:
    """A partial entry or out-of-order entries make the index not sane."""
    fs = _fs()
    fs.write_file("/p/a.index", struct.pack(">ii", 5, 4200) + b"\x00\x01")
    assert not OffsetIndex(fs, "/p/a.index", 0, 1024).is_sane()
    fs.write_file("/p/b.index", struct.pack(">iiii", 9, 4200, 5, 8400))
    assert not OffsetIndex(fs, "/p/b.index", 0, 1024).is_sane()
    assert OffsetIndex(fs, "/p/b.index", 0, 1024).entries() == [(9, 4200)]


def test_index_is_full_at_segment_index_bytes() -> None:
    """is_full once segment.index.bytes worth of entries are written."""
    index = OffsetIndex(_fs(), "/p/x.index", 0, 8 * 3)
    for i in range(1, 4):
        assert not index.is_full()
        index.append(i, i * 100)
    assert index.is_full()


def test_time_index_appends_only_growing_timestamps() -> None:
    """Kafka's rule: an entry only when the timestamp grows; lookups find the largest
    entry <= target timestamp."""
    fs = _fs()
    index = TimeIndex(fs, "/p/x.timeindex", 50, 1024)
    index.maybe_append(1000, 60)
    index.maybe_append(1000, 70)  # same timestamp: skipped
    index.maybe_append(900, 80)  # older: skipped
    index.maybe_append(2000, 90)
    assert index.entries() == [(1000, 60), (2000, 90)]
    index.flush()
    assert fs.read_file("/p/x.timeindex") == struct.pack(">qiqi", 1000, 10, 2000, 40)
    assert index.lookup(999) == (-1, 50)
    assert index.lookup(1500) == (1000, 60)
    assert index.lookup(2000) == (2000, 90)
    index.truncate_to(90)
    assert index.entries() == [(1000, 60)]


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(1, 4)),
            st.tuples(st.just("truncate"), st.integers(0, 60)),
            st.tuples(st.sampled_from(["flush", "close"]), st.just(0)),
        ),
        max_size=30,
    )
)
def test_pending_entries_reach_the_file_as_they_are_on_flush_or_close(
    steps: list[tuple[str, int]],
) -> None:
    """Entries are written in bulk, not per append: whatever mix of appends, truncations
    (through written and unwritten entries), flushes and closes came before, a flush or a
    close leaves the file holding exactly the entries, and a reopened index reads them
    back; before that, the file always holds a valid prefix of them."""
    fs = _fs()
    index = OffsetIndex(fs, "/p/x.index", 0, 1 << 20)
    offset = 0
    for action, n in steps:
        if action == "append":
            for _ in range(n):
                offset += 1
                index.append(offset, offset * 100)
        elif action == "truncate":
            index.truncate_to(n)
            offset = min(offset, max(n - 1, index.last_entry()[0]))
        else:
            expected = index.entries()
            index.flush() if action == "flush" else index.close()
            stored = OffsetIndex(fs, "/p/x.index", 0, 1 << 20)
            assert stored.is_sane()
            assert stored.entries() == expected
            continue
        on_disk = OffsetIndex(fs, "/p/x.index", 0, 1 << 20)
        assert on_disk.is_sane()
        assert index.entries()[: len(on_disk)] == on_disk.entries()
