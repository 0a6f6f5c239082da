"""Recovery after a crash walks only the headers of the batches below the recovery point
(no CRC, records unread) and fully checks the rest: proof that the result is the same as
a full scan of the segments, and that the prefix really is skipped."""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import LOG_DIR, append, open_log

import odradek.storage.log_loader as loader_module
import odradek.storage.segment as segment_module
from odradek.protocol.batch import HEADER_SIZE, BatchHeader
from odradek.storage.fs import FileSystem
from odradek.storage.log import Log
from odradek.storage.log_config import LogConfig
from odradek.storage.memory_fs import MemoryFileHandle, MemoryFileSystem
from odradek.storage.segment import LogSegment, _header_at


@contextlib.contextmanager
def _full_recovery() -> Iterator[None]:
    """Makes recovery behave as before partial recovery: every batch of the segment
    holding the recovery point is CRC-checked, every epoch of it replayed."""
    recover, assign = LogSegment.recover, loader_module._assign_epochs

    def full_recover(self: LogSegment, **kwargs: object) -> int:
        kwargs.pop("durable_before", None)
        return recover(self, **kwargs)  # type: ignore[arg-type]

    def full_assign(cache: object, segments: list[LogSegment], *_: object) -> None:
        assign(cache, segments)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LogSegment, "recover", full_recover)
        mp.setattr(loader_module, "_assign_epochs", full_assign)
        yield


def _files(fs: FileSystem) -> dict[str, bytes]:
    return {name: fs.read_file(f"{LOG_DIR}/{name}") for name in sorted(fs.listdir(LOG_DIR))}


def _outcome(log: Log, fs: FileSystem) -> tuple[object, ...]:
    states = [(s.base_offset, s._tail()) for s in log.segments]
    return (
        log.log_end_offset,
        log.truncated_on_open,
        log.recovery_point,
        states,
        log.leader_epoch_cache.entries,
        _files(fs),
    )


def _crashed_log(rng: random.Random) -> tuple[MemoryFileSystem, int, LogConfig]:
    """A log of random batches (sizes, timestamps out of order, growing epochs) over
    several segments, flushed at random points, then crashed keeping random parts of the
    unflushed tail; plus a recovery point at or below the last flush, and maybe a flipped
    byte after it. Returns (fs, recovery point, config)."""
    config = LogConfig(
        segment_bytes=rng.randint(2_500, 8_000), index_interval_bytes=rng.randint(0, 600)
    )
    fs = MemoryFileSystem()
    log = open_log(fs, LOG_DIR, config)
    epoch = 0
    for i in range(rng.randint(1, 60)):
        epoch += rng.random() < 0.1
        append(
            log,
            count=rng.randint(1, 4),
            value_size=rng.randint(1, 400),
            timestamp=rng.randint(0, 5_000),
            epoch=epoch,
            tag=i,
        )
        if rng.random() < 0.1:
            log.flush()
    flushed = log.recovery_point
    # A recovery point checkpointed before the last flush is valid too (just older).
    recovery_point = flushed if rng.random() < 0.5 else rng.randint(0, flushed)
    fs.crash(rng)
    _damage_after(fs, config, recovery_point, rng)
    return fs, recovery_point, config


def _damage_after(
    fs: MemoryFileSystem, config: LogConfig, recovery_point: int, rng: random.Random
) -> None:
    """Flips a byte (or cuts a file, or appends garbage) somewhere at or after the first
    batch not wholly below the recovery point."""
    bases = sorted(int(n[:20]) for n in fs.listdir(LOG_DIR) if n.endswith(".log"))
    eligible = [b for b in bases if b >= recovery_point] or bases[-1:]
    first = [b for b in bases if b <= recovery_point]
    if first and first[-1] not in eligible:
        eligible.insert(0, first[-1])
    base = rng.choice(eligible)
    path = f"{LOG_DIR}/{base:020d}.log"
    data = bytearray(fs.read_file(path))
    start = 0
    segment = LogSegment(
        fs,
        LOG_DIR,
        base,
        index_interval_bytes=config.index_interval_bytes,
        max_index_size=config.segment_index_bytes,
    )
    for position, header in segment_module.iter_file_batches(segment._file(), 0, len(data)):
        start = position
        if header.last_offset >= recovery_point:
            break
        start = position + header.size
    segment.close()
    kind = rng.choice(["none", "flip", "cut", "garbage"])
    if kind == "flip" and start < len(data):
        data[rng.randrange(start, len(data))] ^= 1 << rng.randrange(8)
    elif kind == "cut" and start < len(data):
        del data[rng.randint(start, len(data)) :]
    elif kind == "garbage":
        data += rng.randbytes(rng.randint(1, 100))
    fs.write_file(path, bytes(data))


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_partial_recovery_equals_full_recovery(seed: int) -> None:
    """For random logs, recovery points and torn or corrupt tails after the recovery
    point, opening after a crash yields the same segment files, index bytes, tail states,
    log end offset, bytes cut and leader epochs as a recovery that CRC-checks every batch
    of the segment holding the recovery point and replays all its epochs."""
    rng = random.Random(seed)
    fs, recovery_point, config = _crashed_log(rng)
    reference_fs = copy.deepcopy(fs)
    log = open_log(fs, LOG_DIR, config, recovery_point=recovery_point, clean_shutdown=False)
    with _full_recovery():
        reference = open_log(
            reference_fs, LOG_DIR, config, recovery_point=recovery_point, clean_shutdown=False
        )
    assert _outcome(log, fs) == _outcome(reference, reference_fs)


def _segment(fs: FileSystem, config: LogConfig) -> LogSegment:
    return LogSegment(
        fs,
        LOG_DIR,
        0,
        index_interval_bytes=config.index_interval_bytes,
        max_index_size=config.segment_index_bytes,
    )


def test_batches_below_the_recovery_point_are_neither_read_nor_crc_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With large batches, recovering the segment holding the recovery point reads only a
    small header window of each batch below it and CRC-checks only the batches after it;
    indexes and tail state still come out identical to a full scan."""
    config = LogConfig(segment_bytes=1 << 30, index_interval_bytes=4096)
    fs = MemoryFileSystem()
    log = open_log(fs, LOG_DIR, config)
    for i in range(40):
        append(log, count=2, value_size=20_000, timestamp=1_000 + (i * 7) % 40, tag=i)
    log.flush()
    recovery_point = log.recovery_point
    for i in range(3):
        append(log, count=2, value_size=20_000, timestamp=2_000 - i, tag=100 + i)
    log.close()
    reference_fs = copy.deepcopy(fs)
    size = fs.file_size(f"{LOG_DIR}/{0:020d}.log")
    read = [0]
    crc_checks = [0]
    pread, crc_ok = MemoryFileHandle.pread, segment_module.crc_ok

    def counting_pread(self: MemoryFileHandle, position: int, length: int) -> bytes:
        data = pread(self, position, length)
        if self.path.endswith(".log"):
            read[0] += len(data)
        return data

    def counting_crc(*args: object) -> bool:
        crc_checks[0] += 1
        return crc_ok(*args)  # type: ignore[arg-type]

    segment = _segment(fs, config)
    with monkeypatch.context() as mp:
        mp.setattr(MemoryFileHandle, "pread", counting_pread)
        mp.setattr(segment_module, "crc_ok", counting_crc)
        assert segment.recover(durable_before=recovery_point) == 0
    assert crc_checks[0] == 3
    tail = size - segment.translate_offset(recovery_point)[0]  # type: ignore[index]
    assert read[0] - tail < (size - tail) // 5
    reference = _segment(reference_fs, config)
    assert reference.recover() == 0
    assert segment._tail() == reference._tail()
    assert segment.next_offset == recovery_point + 6
    for name in (segment.offset_index.path, segment.time_index.path):
        assert fs.read_file(name) == reference_fs.read_file(name)
    assert len(segment.offset_index) > 5


def test_a_corrupt_batch_after_the_recovery_point_is_still_cut() -> None:
    """A flipped bit in a record of the first batch at the recovery point, in the middle
    of a segment, fails its CRC: the log ends at the recovery point."""
    config = LogConfig(segment_bytes=1 << 20, index_interval_bytes=100)
    fs = MemoryFileSystem()
    log = open_log(fs, LOG_DIR, config)
    for i in range(10):
        append(log, count=3, value_size=50, tag=i)
    log.flush()
    recovery_point = log.recovery_point
    position = log.segments[0].size
    for i in range(5):
        append(log, count=3, value_size=50, tag=20 + i)
    log.flush()
    path = f"{LOG_DIR}/{0:020d}.log"
    data = bytearray(fs.read_file(path))
    data[position + 70] ^= 0x10  # inside the records of the batch at the recovery point
    fs.write_file(path, bytes(data))
    recovered = open_log(fs, LOG_DIR, config, recovery_point=recovery_point, clean_shutdown=False)
    assert recovered.log_end_offset == recovery_point
    assert recovered.truncated_on_open == len(data) - position


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_header_walk_yields_the_same_batches_as_a_full_read(seed: int) -> None:
    """LogSegment.batches (which reads in growing chunks and skips the records of large
    batches unread) yields the same (position, header) pairs as a walk over the whole file
    held in memory, from any batch position, including on a file cut at a random byte or
    ending in garbage."""
    rng = random.Random(seed)
    config = LogConfig(segment_bytes=1 << 30, index_interval_bytes=rng.randint(0, 50_000))
    fs = MemoryFileSystem()
    log = open_log(fs, LOG_DIR, config)
    for i in range(rng.randint(0, 30)):
        size = rng.choice([10, 500, 5_000, 30_000])
        append(log, count=rng.randint(1, 3), value_size=rng.randint(1, size), tag=i)
    log.close()
    path = f"{LOG_DIR}/{0:020d}.log"
    data = fs.read_file(path)
    if data and rng.random() < 0.5:
        data = data[: rng.randint(0, len(data))]
    elif rng.random() < 0.5:
        data += rng.randbytes(rng.randint(1, 200))
    fs.write_file(path, data)
    segment = _segment(fs, config)
    full = _walk_in_memory(data, 0)
    assert list(segment.batches()) == full
    for position, _ in full:
        assert list(segment.batches(position)) == _walk_in_memory(data, position)


def _walk_in_memory(data: bytes, start: int) -> list[tuple[int, BatchHeader]]:
    """The reference: every whole batch with sane framing, read from bytes in memory."""
    out = []
    pos = start
    while len(data) - pos >= HEADER_SIZE:
        header = _header_at(data, pos)
        if header is None or pos + header.size > len(data):
            break
        out.append((pos, header))
        pos += header.size
    return out
