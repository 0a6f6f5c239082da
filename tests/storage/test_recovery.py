"""Opening a log after a crash: torn tails, corruption, garbage, damaged indexes, stray
files, and proof that a clean shutdown scans nothing."""

from __future__ import annotations

import os
import random

import pytest
from storage_helpers import LOG_DIR, append, open_log, read_all

import odradek.storage.segment as segment_module
from odradek.protocol.batch import BatchHeader, read_header
from odradek.storage.checkpoint import LEADER_EPOCH_CHECKPOINT
from odradek.storage.fs import FileSystem, OsFileSystem
from odradek.storage.index import OffsetIndex, TimeIndex
from odradek.storage.log import Log
from odradek.storage.log_config import LogConfig
from odradek.storage.memory_fs import MemoryFileSystem
from odradek.storage.segment import LogSegment

CONFIG = LogConfig(segment_bytes=3_000, index_interval_bytes=200)


def _filled(fs: FileSystem, path: str = LOG_DIR, batches: int = 80) -> Log:
    log = open_log(fs, path, CONFIG)
    for i in range(batches):
        append(log, count=1 + i % 3, value_size=30, tag=i, epoch=i // 30)
    log.flush()
    log.close()
    return log


def _last_batch(fs: MemoryFileSystem, segment: LogSegment) -> tuple[int, BatchHeader]:
    *_, last = segment.batches()
    return last


def test_torn_tail_recovers_the_longest_valid_prefix() -> None:
    """Cutting the last segment at every byte inside its last batch leaves exactly the
    batches before it, with the torn bytes removed and the indexes rebuilt."""
    fs = MemoryFileSystem()
    before = _filled(fs)
    last_segment = before.segments[-1]
    content = fs.read_file(last_segment.log_path)
    position, header = _last_batch(fs, last_segment)
    expected = read_all(open_log(fs, config=CONFIG, recovery_point=before.recovery_point))[:-1]
    for cut in range(position + 1, position + header.size):
        fs.write_file(last_segment.log_path, content[:cut])
        log = open_log(fs, config=CONFIG, recovery_point=0, clean_shutdown=False)
        assert log.truncated_on_open == cut - position
        assert log.log_end_offset == header.base_offset
        assert read_all(log) == expected
        log.close()


def test_bit_flip_truncates_from_the_corrupt_batch(any_fs: tuple[FileSystem, str]) -> None:
    """A flipped bit in a batch of the unflushed tail fails its CRC: the log ends just
    before that batch."""
    fs, path = any_fs
    before = _filled(fs, path)
    active = before.segments[-1]
    batches = list(active.batches())
    position, header = batches[len(batches) // 2]
    content = bytearray(fs.read_file(active.log_path))
    content[position + header.size - 3] ^= 0x10
    _overwrite(fs, active.log_path, bytes(content))
    log = open_log(fs, path, CONFIG, recovery_point=active.base_offset, clean_shutdown=False)
    assert log.log_end_offset == header.base_offset
    assert [b for b, _ in read_all(log)][-1] == batches[len(batches) // 2 - 1][1].base_offset


def _overwrite(fs: FileSystem, path: str, data: bytes) -> None:
    if isinstance(fs, MemoryFileSystem):
        fs.write_file(path, data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def test_garbage_after_the_last_batch_is_cut(any_fs: tuple[FileSystem, str]) -> None:
    """Random bytes after the last batch are removed; every batch survives."""
    fs, path = any_fs
    before = _filled(fs, path)
    active = before.segments[-1]
    good = fs.read_file(active.log_path)
    garbage = random.Random(7).randbytes(777)
    _overwrite(fs, active.log_path, good + garbage)
    log = open_log(fs, path, CONFIG, recovery_point=before.recovery_point, clean_shutdown=False)
    assert log.truncated_on_open == 777
    assert log.log_end_offset == before.log_end_offset
    assert fs.read_file(active.log_path) == good


@pytest.mark.parametrize("damage", ["missing", "zeroed", "truncated", "oversized", "torn"])
@pytest.mark.parametrize("which", ["first", "active"])
def test_damaged_index_is_rebuilt_to_equal_a_full_scan(damage: str, which: str) -> None:
    """After a clean shutdown, a missing, zeroed, truncated, oversized or torn .index or
    .timeindex is rebuilt and equals what appends wrote, in memory and (at once, with
    no flush) in its file."""
    fs = MemoryFileSystem()
    before = _filled(fs)
    segment = before.segments[0 if which == "first" else -1]
    reference = open_log(fs, config=CONFIG, recovery_point=before.recovery_point)
    ref_segment = reference.segments[0 if which == "first" else -1]
    offsets, times = ref_segment.offset_index.entries(), ref_segment.time_index.entries()
    assert len(offsets) > 3
    reference.close()
    for path in (segment.offset_index.path, segment.time_index.path):
        data = fs.read_file(path)
        damaged = {
            "missing": None,
            "zeroed": bytes(len(data)),
            "truncated": data[: len(data) // 2 - 3],
            "oversized": data + bytes(10 << 20),
            "torn": data + b"\x01\x02\x03",
        }[damage]
        if damaged is None:
            fs.remove(path)
        else:
            fs.write_file(path, damaged)
    log = open_log(fs, config=CONFIG, recovery_point=before.recovery_point)
    got = log.segments[0 if which == "first" else -1]
    got.translate_offset(got.base_offset)  # loads (and checks) the indexes
    assert got.offset_index.entries() == offsets
    assert got.time_index.entries() == times
    assert OffsetIndex(fs, got.offset_index.path, got.base_offset, 1 << 20).entries() == offsets
    assert TimeIndex(fs, got.time_index.path, got.base_offset, 1 << 20).entries() == times
    assert len(read_all(log)) == 80
    assert log.log_end_offset == before.log_end_offset


def test_clean_shutdown_scans_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a clean shutdown no segment is recovered and no CRC is computed."""
    fs = MemoryFileSystem()
    before = _filled(fs, batches=200)
    calls = {"recover": 0, "crc": 0}
    original_recover, original_crc = LogSegment.recover, segment_module.crc_ok

    def counting_recover(self: LogSegment, **kwargs: bool) -> int:
        calls["recover"] += 1
        return original_recover(self, **kwargs)

    def counting_crc(*args: object) -> bool:
        calls["crc"] += 1
        return original_crc(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(LogSegment, "recover", counting_recover)
    monkeypatch.setattr(segment_module, "crc_ok", counting_crc)
    log = open_log(fs, config=CONFIG, recovery_point=before.recovery_point)
    assert log.log_end_offset == before.log_end_offset
    assert calls == {"recover": 0, "crc": 0}
    assert len(log.segments) >= 10


def test_unclean_shutdown_recovers_only_from_the_recovery_point() -> None:
    """Only the segment holding the recovery point and later ones are scanned; a corrupt
    batch in an older segment is not touched (later good data stays)."""
    fs = MemoryFileSystem()
    before = _filled(fs, batches=200)
    first = before.segments[0]
    content = bytearray(fs.read_file(first.log_path))
    content[100] ^= 0xFF
    fs.write_file(first.log_path, bytes(content))
    recovery_point = before.segments[-3].base_offset + 1
    log = open_log(fs, config=CONFIG, recovery_point=recovery_point, clean_shutdown=False)
    assert log.recovered_segments == 3
    assert log.log_end_offset == before.log_end_offset
    assert log.recovery_point == recovery_point


def test_missing_leader_epoch_checkpoint_is_rebuilt() -> None:
    """Without leader-epoch-checkpoint the epochs are rebuilt from the batch headers."""
    fs = MemoryFileSystem()
    before = _filled(fs, batches=80)
    expected = before.leader_epoch_cache.entries
    assert len(expected) == 3
    fs.remove(os.path.join(LOG_DIR, LEADER_EPOCH_CHECKPOINT))
    log = open_log(fs, config=CONFIG, recovery_point=before.recovery_point)
    assert log.leader_epoch_cache.entries == expected
    assert fs.exists(os.path.join(LOG_DIR, LEADER_EPOCH_CHECKPOINT))


def test_stray_files_are_cleaned_and_swaps_completed() -> None:
    """.cleaned/.deleted/.tmp files and orphan indexes go; a .log.swap replaces its
    segment and the segments it covered."""
    fs = MemoryFileSystem()
    before = _filled(fs)
    second = before.segments[1]
    for name in ("00000000000000000000.log.deleted", "x.cleaned", "y.tmp", f"{99:020d}.index"):
        fs.write_file(os.path.join(LOG_DIR, name), b"junk")
    # A compaction result standing for segments 0 and 1, its rename interrupted.
    merged = fs.read_file(before.segments[0].log_path) + fs.read_file(second.log_path)
    fs.write_file(os.path.join(LOG_DIR, "00000000000000000000.log.swap"), merged)
    log = open_log(fs, config=CONFIG, recovery_point=before.recovery_point)
    names = fs.listdir(LOG_DIR)
    assert not [n for n in names if n.endswith((".deleted", ".cleaned", ".tmp", ".swap"))]
    assert f"{99:020d}.index" not in names
    assert os.path.basename(second.log_path) not in names
    assert log.log_end_offset == before.log_end_offset
    assert len(read_all(log)) == 80


@pytest.mark.parametrize("seed", range(40))
def test_power_loss_with_flush_messages_1_loses_nothing(seed: int) -> None:
    """flush.messages=1: after a crash at a random moment (random unsynced prefixes kept),
    every acknowledged batch is read back at its offset, byte for byte."""
    rng = random.Random(seed)
    fs = MemoryFileSystem()
    config = LogConfig(segment_bytes=2_000, index_interval_bytes=150, flush_messages=1)
    log = open_log(fs, config=config)
    acked = []
    for i in range(rng.randint(1, 60)):
        info = append(log, count=rng.randint(1, 4), value_size=rng.randint(1, 80), tag=i)
        acked.append(info.base_offset)
    expected = read_all(log)
    fs.crash(rng)
    after = open_log(fs, config=config, recovery_point=0, clean_shutdown=False)
    assert read_all(after) == expected
    assert [b for b, _ in expected] == acked


@pytest.mark.parametrize("seed", range(40))
def test_power_loss_with_default_policy_leaves_a_valid_prefix(seed: int) -> None:
    """Without fsyncs a crash may lose the tail, but the log that opens is a prefix of
    what was appended, and new appends continue from its end."""
    rng = random.Random(seed)
    fs = MemoryFileSystem()
    log = open_log(fs, config=CONFIG)
    for i in range(rng.randint(1, 80)):
        append(log, count=rng.randint(1, 4), value_size=rng.randint(1, 80), tag=i)
        if rng.random() < 0.05:
            log.flush()
    full = read_all(log)
    fs.crash(rng)
    after = open_log(fs, config=CONFIG, recovery_point=0, clean_shutdown=False)
    survived = read_all(after)
    assert survived == full[: len(survived)]
    end = after.log_end_offset
    assert end == (read_header(survived[-1][1]).next_offset if survived else 0)
    assert append(after, tag=999).base_offset == end


def test_recovery_on_real_files_after_torn_write(tmp_path: os.PathLike[str]) -> None:
    """On real files too: a half-written last batch is cut on the next open."""
    fs = OsFileSystem()
    path = os.path.join(str(tmp_path), "orders-0")
    before = _filled(fs, path, batches=20)
    active = before.segments[-1]
    with open(active.log_path, "r+b") as f:
        f.truncate(os.path.getsize(active.log_path) - 5)
    log = open_log(fs, path, CONFIG, recovery_point=0, clean_shutdown=False)
    assert log.truncated_on_open > 0
    assert len(read_all(log)) == 19
