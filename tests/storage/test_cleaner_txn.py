"""The log cleaner and transactions (Kafka's LogCleaner rules): aborted transactions'
records are removed and never supersede committed ones, markers stay while their
transaction has batches and go after delete.retention.ms once it has none, the
aborted-transaction index follows, and an open transaction is never cleaned."""

from __future__ import annotations

import contextlib
import dataclasses
import random

import pytest
from tests.storage.test_cleaner import COMPACT, DAY, CrashingFs, Setup, _Crash, records

from odradek.protocol.batch import BatchHeader
from odradek.protocol.control import TxnMarker, parse_marker
from odradek.protocol.records import decode_batch
from odradek.storage.compaction import DELETE_HORIZON_BIT
from odradek.storage.log import Log
from odradek.storage.memory_fs import MemoryFileSystem
from odradek.storage.txn_index import AbortedTxn

P1, P2, P3 = 61, 62, 63
CONFIG = dataclasses.replace(COMPACT, delete_retention_ms=DAY)


def _txn(setup: Setup, pid: int, seq: int, key: bytes, value: bytes) -> None:
    ids = {"producer_id": pid, "producer_epoch": 0, "base_sequence": seq}
    setup.produce([(key, value)], is_transactional=True, **ids)


def _end(setup: Setup, pid: int, commit: bool) -> int:
    offset = setup.log.append_txn_marker(pid, 0, TxnMarker(commit, 0), 0)
    setup.log.replicated_up_to(setup.log.log_end_offset)  # one replica: as Partition does
    return offset


def _fill(setup: Setup, count: int = 30) -> None:
    for i in range(count):
        setup.produce([(b"filler", b"%d" % i * 20)])
    setup.log.roll()


def _batches(log: Log) -> list[tuple[BatchHeader, bytes]]:
    return [
        (header, segment.read_batch(position, header))
        for segment in log.segments
        for position, header in segment.batches()
    ]


def _read_committed(log: Log) -> list[tuple[bytes | None, bytes | None]]:
    """What a read_committed consumer keeps from the whole log, using the aborted
    transactions the log reports, as Kafka's consumer does: an aborted transaction
    applies to its producer's transactional batches from its first offset until that
    producer's next ABORT marker."""
    pending = sorted(log.collect_aborted(0, log.log_end_offset), key=lambda t: t.first_offset)
    aborting: set[int] = set()
    kept = []
    for header, data in _batches(log):
        while pending and pending[0].first_offset <= header.last_offset:
            aborting.add(pending.pop(0).producer_id)
        if header.is_control:
            marker = parse_marker(data, header)
            if marker is not None and not marker.commit:
                aborting.discard(header.producer_id)
            continue
        if header.is_transactional and header.producer_id in aborting:
            continue
        kept += [(r.key, r.value) for r in decode_batch(data)[1]]
    return kept


def _markers(log: Log) -> dict[int, tuple[TxnMarker | None, bool]]:
    """offset -> (marker, whether its batch carries a delete horizon)"""
    return {
        h.base_offset: (parse_marker(d, h), bool(h.attributes & DELETE_HORIZON_BIT))
        for h, d in _batches(log)
        if h.is_control
    }


def test_aborted_records_go_and_never_supersede_committed_ones() -> None:
    """k=committed is kept although an aborted transaction wrote k later; the aborted
    record is gone even from a read_uncommitted view; the markers stay while their
    transactions have batches, and the abort stays indexed."""
    setup = Setup(config=CONFIG)
    setup.produce([(b"k", b"committed")])  # 0
    _txn(setup, P1, 0, b"k", b"aborted")  # 1
    _txn(setup, P2, 0, b"j", b"c2")  # 2
    assert _end(setup, P1, commit=False) == 3
    assert _end(setup, P2, commit=True) == 4
    _txn(setup, P1, 1, b"other", b"x")  # 5: P1's last data batch is no longer the aborted one
    _end(setup, P1, commit=True)  # 6
    _fill(setup)
    before = _read_committed(setup.log)
    setup.cleaner.clean_all()
    values = [(r.key, r.value) for r in records(setup.log) if r.key in (b"k", b"j")]
    assert values == [(b"k", b"committed"), (b"j", b"c2")]
    assert set(_markers(setup.log)) == {3, 4, 6}
    lso = 2  # P2's transaction, from offset 2, was still open when P1 aborted
    assert setup.log.collect_aborted(0, setup.log.log_end_offset) == [AbortedTxn(P1, 1, 3, lso)]
    after = _read_committed(setup.log)
    assert (b"k", b"aborted") not in after
    assert [kv for kv in after if kv[0] != b"filler"] == [kv for kv in before if kv[0] != b"filler"]


def test_markers_go_after_delete_retention_once_their_transaction_is_gone() -> None:
    """Next pass: the abort marker (no batch of its transaction left) gets a delete
    horizon and its index entry goes; a pass after delete.retention.ms removes it. The
    commit marker of a transaction whose record is still there stays."""
    setup = Setup(config=CONFIG)
    _txn(setup, P1, 0, b"k", b"aborted")  # 0
    _txn(setup, P2, 0, b"j", b"c2")  # 1
    _end(setup, P1, commit=False)  # 2
    _end(setup, P2, commit=True)  # 3
    _txn(setup, P1, 1, b"other", b"x")  # 4
    _end(setup, P1, commit=True)  # 5
    _fill(setup)
    setup.cleaner.clean_all()
    assert _markers(setup.log)[2] == (TxnMarker(False, 0), False)
    _fill(setup)  # new dirty data: another pass
    setup.cleaner.clean_all()
    assert _markers(setup.log)[2] == (TxnMarker(False, 0), True)
    assert setup.log.collect_aborted(0, setup.log.log_end_offset) == []
    setup.clock.advance(DAY + 1_000)
    setup.cleaner.clean_all()  # the expired horizon brings the cleaner back
    markers = _markers(setup.log)
    assert 2 not in markers
    assert markers[3] == (TxnMarker(True, 0), False)
    assert [(r.key, r.value) for r in records(setup.log) if r.key == b"j"] == [(b"j", b"c2")]


def test_an_open_transaction_is_never_cleaned() -> None:
    """The segment holding an open transaction's first offset and all later ones are
    left alone; once aborted, its record goes and the older value of its key stays."""
    setup = Setup(config=CONFIG)
    setup.produce([(b"k", b"v1")])
    _fill(setup)
    _txn(setup, P3, 0, b"k", b"open")
    open_offset = setup.log.log_end_offset - 1
    _fill(setup)
    untouched = [(h, d) for h, d in _batches(setup.log) if h.base_offset >= open_offset]
    setup.cleaner.clean_all()
    assert [(h, d) for h, d in _batches(setup.log) if h.base_offset >= open_offset] == untouched
    _end(setup, P3, commit=False)
    _fill(setup)
    setup.cleaner.clean_all()
    values = [r.value for r in records(setup.log) if r.key == b"k"]
    assert values == [b"v1"]


def _latest(view: list[tuple[bytes | None, bytes | None]]) -> dict[bytes | None, bytes | None]:
    latest: dict[bytes | None, bytes | None] = {}
    for key, value in view:
        latest[key] = value
    return latest


def _transactional_load(setup: Setup, rng: random.Random) -> None:
    """Plain records and transactions of three producers over eight keys."""
    seqs = {P1: 0, P2: 0, P3: 0}
    for n in range(40):
        pid = rng.choice(list(seqs))
        for i in range(rng.randint(1, 3)):
            key = b"k%d" % rng.randrange(8)
            _txn(setup, pid, seqs[pid], key, b"txn-%d-%d" % (n, i))  # unique values
            seqs[pid] += 1
        _end(setup, pid, commit=rng.random() < 0.5)
        setup.produce([(b"k%d" % rng.randrange(8), b"plain-%d" % n)])


@pytest.mark.parametrize("crash_at", range(0, 40, 3))
def test_crash_during_a_pass_keeps_the_committed_view(crash_at: int) -> None:
    """A power loss at the n-th directory operation of a cleaning pass over
    transactional data: after reopening (and after cleaning again) a read_committed
    reader sees the same latest value per key as before cleaning, and no aborted one."""
    memory = MemoryFileSystem()
    fs = CrashingFs(memory)
    setup = Setup(fs=fs, config=CONFIG)
    _transactional_load(setup, random.Random(crash_at))
    _fill(setup, 5)
    setup.log.flush()
    expected = _latest(_read_committed(setup.log))
    aborted = set(_aborted_values(setup.log))
    fs.countdown = crash_at
    with contextlib.suppress(_Crash):
        setup.cleaner.clean_all()
    fs.countdown = None
    memory.crash()
    again = Setup(fs=memory, config=CONFIG)
    for _ in range(2):
        view = _read_committed(again.log)
        assert _latest(view) == expected
        assert not aborted & {value for _, value in view}
        again.cleaner.clean_all()


def _aborted_values(log: Log) -> list[bytes | None]:
    """Values written by transactions that ended with an abort."""
    open_values: dict[int, list[bytes | None]] = {}
    out: list[bytes | None] = []
    for header, data in _batches(log):
        if header.is_control:
            marker = parse_marker(data, header)
            values = open_values.pop(header.producer_id, [])
            if marker is not None and not marker.commit:
                out += values
        elif header.is_transactional:
            values = [r.value for r in decode_batch(data)[1]]
            open_values.setdefault(header.producer_id, []).extend(values)
    return out
