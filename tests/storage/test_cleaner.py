"""The log cleaner: compaction checked record by record against a model, tombstones and
delete.retention.ms, min.compaction.lag.ms, the dirty ratio, compressed and idempotent
batches, bounded steps, and crashes injected at every file operation of a pass."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

import pytest
from storage_helpers import read_all

from odradek.clock import FakeClock
from odradek.protocol.batch import read_header
from odradek.protocol.records import Record, SimpleRecord, build_batch, decode_batch
from odradek.storage.cleaner import CLEANER_OFFSET_CHECKPOINT, CleanerConfig, LogCleaner
from odradek.storage.compaction import DELETE_HORIZON_BIT
from odradek.storage.log import Log
from odradek.storage.log_config import LogConfig
from odradek.storage.manager import LogManager
from odradek.storage.memory_fs import MemoryFileSystem

DAY = 86_400_000
COMPACT = LogConfig(
    segment_bytes=2_000,
    index_interval_bytes=200,
    cleanup_policy="compact",
    file_delete_delay_ms=0,
    min_cleanable_dirty_ratio=0.01,
)
Model = dict[int, Record]  # offset -> record as produced


class Setup:
    """A LogManager with one compacted log `orders-0` and a cleaner over it."""

    def __init__(self, fs: Any = None, config: LogConfig = COMPACT, step_bytes: int = 1 << 20):
        self.fs = fs or MemoryFileSystem()
        self.clock = FakeClock()
        self.config = config
        self.manager = LogManager(self.fs, ["/data"], self.clock, config, node_id=1, cluster_id="c")
        self.manager.open()
        self.log = self.manager.get_or_create_log("orders", 0, config)
        self.cleaner = self.new_cleaner(step_bytes)
        self.model: Model = {}

    def new_cleaner(self, step_bytes: int = 1 << 20) -> LogCleaner:
        return LogCleaner(self.fs, self.manager, self.clock, CleanerConfig(step_bytes=step_bytes))

    def produce(
        self, pairs: list[tuple[bytes | None, bytes | None]], compression: int = 0, **ids: int
    ) -> None:
        """Appends one batch of (key, value) records stamped with the clock."""
        now = self.clock.time_ms()
        records = [SimpleRecord(value=v, key=k, timestamp=now) for k, v in pairs]
        batch = build_batch(records, compression=compression, **ids)
        info = self.log.append_as_leader(batch, read_header(batch), 0)
        for i, (k, v) in enumerate(pairs):
            self.model[info.base_offset + i] = Record(info.base_offset + i, now, k, v)
        self.clock.advance(10)


def records(log: Log) -> list[Record]:
    out: list[Record] = []
    for _, batch in read_all(log, log.log_start_offset):
        out.extend(decode_batch(batch)[1])
    return out


def random_load(setup: Setup, rng: random.Random, batches: int, keys: int = 15) -> None:
    for _ in range(batches):
        pairs: list[tuple[bytes | None, bytes | None]] = []
        for _ in range(rng.randint(1, 6)):
            value = None if rng.random() < 0.1 else f"v{rng.random():.6f}".encode() * 3
            pairs.append((f"k{rng.randrange(keys)}".encode(), value))
        setup.produce(pairs, compression=rng.choice([0, 0, 1, 2, 3, 4]))


def check_compacted(setup: Setup, end: int) -> list[Record]:
    """Every surviving record is the produced one at its offset; below `end` only the
    latest record of each key (over the log) remains; the latest of every key is there."""
    got = records(setup.log)
    offsets = [r.offset for r in got]
    assert offsets == sorted(set(offsets)), "offsets must strictly increase"
    for r in got:
        want = setup.model[r.offset]
        assert (r.key, r.value, r.timestamp) == (want.key, want.value, want.timestamp)
    latest: dict[bytes | None, int] = {}
    for offset in sorted(setup.model):
        latest[setup.model[offset].key] = offset
    present = set(offsets)
    for offset in latest.values():
        assert offset in present, f"latest record of its key at {offset} was removed"
    below = [r.key for r in got if r.offset < end]
    assert len(below) == len(set(below)), "a key appears twice in the cleaned section"
    return got


def checkpoint(setup: Setup) -> int:
    text = setup.fs.read_file(f"/data/{CLEANER_OFFSET_CHECKPOINT}").decode().split()
    return int(text[-1])


def test_compaction_matches_a_model_over_several_rounds() -> None:
    """Rounds of random keyed batches (all codecs, some tombstones) and cleaning: each
    time the cleaned section holds exactly one record per key, the latest; every record
    left is unchanged at its offset; the log end offset never moves."""
    setup = Setup()
    rng = random.Random(11)
    for _ in range(5):
        random_load(setup, rng, 60)
        end_before = setup.log.log_end_offset
        setup.cleaner.clean_all()
        assert setup.log.log_end_offset == end_before
        got = check_compacted(setup, checkpoint(setup))
        assert len(got) < len(setup.model)
    assert setup.cleaner.stats.segments_swapped > 0 and setup.cleaner.stats.records_removed > 0


def test_exact_result_of_one_pass() -> None:
    """One pass from an empty checkpoint: below the end of the dirty section the result
    is exactly {latest offset of each key}; the active segment is untouched."""
    setup = Setup()
    random_load(setup, random.Random(3), 80)
    active_base = setup.log.segments[-1].base_offset
    setup.cleaner.clean_all()
    end = checkpoint(setup)
    assert end == active_base
    latest: dict[bytes | None, int] = {}
    for offset in sorted(o for o in setup.model if o < end):
        latest[setup.model[offset].key] = offset
    got = {r.offset for r in records(setup.log)}
    assert {o for o in got if o < end} == set(latest.values())
    assert {o for o in got if o >= end} == {o for o in setup.model if o >= end}


def test_batches_keep_base_offset_last_offset_and_producer_fields() -> None:
    """Rewritten batches keep base offset, last offset delta, leader epoch, producer id,
    epoch and base sequence and their codec; the last batch of a live idempotent
    producer stays as an empty batch when all its records are superseded."""
    setup = Setup()
    setup.produce([(b"a", b"1"), (b"b", b"1"), (b"a", b"2")], compression=3)
    setup.produce([(b"c", b"1")], producer_id=7, producer_epoch=0, base_sequence=0)
    for i in range(40):
        setup.produce([(b"a", b"x" * 50), (b"c", f"{i}".encode())])
    setup.log.roll()
    setup.produce([(b"z", b"1")])
    originals = {
        h.base_offset: h for s in setup.log.segments for _, h in s.batches()
    }  # before cleaning
    # Make the producer's batch its last one: a later batch of another producer id only.
    setup.cleaner.clean_all()
    for segment in setup.log.segments:
        for _, header in segment.batches():
            original = originals[header.base_offset]
            assert header.last_offset_delta == original.last_offset_delta
            assert header.producer_id == original.producer_id
            assert header.base_sequence == original.base_sequence
            assert header.compression == original.compression or header.records_count == 0
    first = [h for s in setup.log.segments for _, h in s.batches() if h.base_offset == 0]
    assert first and first[0].records_count == 1 and first[0].compression == 3
    kept = [h for s in setup.log.segments for _, h in s.batches() if h.producer_id == 7]
    assert len(kept) == 1 and kept[0].records_count == 0 and kept[0].base_offset == 3


def test_tombstones_go_after_delete_retention_ms() -> None:
    """A tombstone survives the first cleaning (its batch gets a delete horizon) and is
    removed by a cleaning after delete.retention.ms; a key's older values go at once."""
    config = LogConfig(**{**_fields(COMPACT), "delete_retention_ms": DAY})
    setup = Setup(config=config)
    setup.produce([(b"gone", b"v1")])
    setup.produce([(b"gone", None), (b"kept", b"v")])
    for i in range(30):
        setup.produce([(b"filler", f"{i}".encode() * 20)])
    setup.log.roll()
    setup.cleaner.clean_all()
    first = records(setup.log)
    assert [(r.key, r.value) for r in first if r.key == b"gone"] == [(b"gone", None)]
    flagged = [h for s in setup.log.segments for _, h in s.batches() if h.base_offset == 1]
    assert flagged[0].attributes & DELETE_HORIZON_BIT
    setup.clock.advance(DAY - 1_000)
    setup.cleaner.clean_all()
    assert any(r.key == b"gone" for r in records(setup.log))
    setup.clock.advance(2_000)
    setup.cleaner.clean_all()  # no new dirty data: the expired horizon triggers it
    after = records(setup.log)
    assert not any(r.key == b"gone" for r in after)
    assert [(r.offset, r.value) for r in after if r.key == b"kept"] == [(2, b"v")]


def _fields(config: LogConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


def test_min_compaction_lag_ms_protects_young_segments() -> None:
    """Segments whose newest record is younger than min.compaction.lag.ms are not
    cleaned; once old enough they are."""
    config = LogConfig(**{**_fields(COMPACT), "min_compaction_lag_ms": 60_000})
    setup = Setup(config=config)
    for i in range(60):
        setup.produce([(b"k", f"{i}".encode() * 10)])
    setup.log.roll()
    setup.cleaner.clean_all()
    assert len(records(setup.log)) == 60
    setup.clock.advance(60_001)
    setup.cleaner.clean_all()
    assert [r.offset for r in records(setup.log)] == [59]


def test_dirty_ratio_below_threshold_does_nothing() -> None:
    """A log whose dirty ratio is at or below min.cleanable.dirty.ratio is not cleaned,
    unless its oldest dirty data waited longer than max.compaction.lag.ms."""
    config = LogConfig(**{**_fields(COMPACT), "min_cleanable_dirty_ratio": 1.0})
    setup = Setup(config=config)
    for i in range(60):
        setup.produce([(b"k", f"{i}".encode() * 10)])
    setup.log.roll()
    setup.cleaner.clean_all()
    assert len(records(setup.log)) == 60
    lagged = LogConfig(**{**_fields(config), "max_compaction_lag_ms": 1_000})
    setup.log.config = lagged
    setup.clock.advance(1_001)
    setup.cleaner.clean_all()
    assert [r.offset for r in records(setup.log)] == [59]


def test_small_segments_are_merged_up_to_segment_bytes() -> None:
    """Cleaned segments are grouped (Kafka's groupSegmentsBySize): many nearly empty
    segments become few at the next pass, none larger than segment.bytes, offsets
    unchanged."""
    setup = Setup()
    for i in range(200):
        setup.produce([(f"k{i % 5}".encode(), f"{i}".encode() * 8)])
    setup.log.roll()
    before = len(setup.log.segments)
    setup.cleaner.clean_all()  # groups by the sizes before cleaning: full segments
    setup.produce([(b"k0", b"last")])
    setup.log.roll()
    setup.cleaner.clean_all()  # now the nearly empty cleaned segments merge
    assert len(setup.log.segments) < before / 3
    assert all(s.size <= COMPACT.segment_bytes for s in setup.log.segments)
    check_compacted(setup, checkpoint(setup))


def test_steps_are_bounded_and_survive_appends_and_retention() -> None:
    """With a tiny step budget a pass takes many steps; appends between steps are kept,
    and retention removing segments mid-pass makes the pass give up cleanly."""
    config = LogConfig(**{**_fields(COMPACT), "cleanup_policy": "compact,delete"})
    setup = Setup(config=config, step_bytes=300)
    random_load(setup, random.Random(5), 80)
    steps = 0
    while setup.cleaner.run_step():
        steps += 1
        setup.produce([(b"live", f"{steps}".encode())])
        assert steps < 10_000
    assert steps > 10
    check_compacted(setup, checkpoint(setup))
    random_load(setup, random.Random(6), 80)
    assert setup.cleaner.run_step()
    setup.log.maybe_increment_log_start_offset(setup.log.segments[2].base_offset)
    setup.manager.cleanup_logs(setup.clock.time_ms())
    setup.cleaner.clean_all()
    assert setup.cleaner.stats.aborted == 1
    assert not [n for n in setup.fs.listdir(setup.log.path) if n.endswith(".cleaned")]
    check_compacted_from_start(setup)


def check_compacted_from_start(setup: Setup) -> None:
    setup.model = {o: r for o, r in setup.model.items() if o >= setup.log.log_start_offset}
    check_compacted(setup, checkpoint(setup))


class CrashingFs:
    """A MemoryFileSystem whose n-th rename/remove/fsync raises _Crash (power loss
    mid-operation: the operation does not happen)."""

    def __init__(self, inner: MemoryFileSystem) -> None:
        self.inner = inner
        self.countdown: int | None = None

    def _tick(self) -> None:
        if self.countdown is not None:
            self.countdown -= 1
            if self.countdown < 0:
                raise _Crash

    def __getattr__(self, name: str) -> Callable[..., Any]:
        target = getattr(self.inner, name)
        if name in ("rename", "remove", "fsync_dir"):

            def wrapped(*args: Any) -> Any:
                self._tick()
                return target(*args)

            return wrapped
        return target  # type: ignore[no-any-return]


class _Crash(Exception):
    pass


@pytest.mark.parametrize("crash_at", range(48))
def test_crash_at_any_point_of_a_pass_leaves_a_valid_log(crash_at: int) -> None:
    """A power loss at the n-th directory operation of a cleaning pass (before, during
    or after the .cleaned -> .swap -> final renames): reopening gives a valid log with
    unchanged offsets, the latest record of every key, and nothing but produced
    records; cleaning again then completes."""
    memory = MemoryFileSystem()
    fs = CrashingFs(memory)
    setup = Setup(fs=fs)
    random_load(setup, random.Random(crash_at), 70)
    setup.log.flush()
    end = setup.log.log_end_offset
    fs.countdown = crash_at
    with contextlib.suppress(_Crash):
        setup.cleaner.clean_all()
    fs.countdown = None
    memory.crash()
    again = Setup(fs=memory)
    again.model = setup.model
    assert again.log.log_end_offset == end
    check_compacted(again, -1)
    again.cleaner.clean_all()
    check_compacted(again, checkpoint(again))
