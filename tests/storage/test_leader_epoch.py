"""LeaderEpochCache.end_offset_for answers as Kafka's LeaderEpochFileCache.endOffsetFor
(the leader's side of OffsetForLeaderEpoch, and a follower finding its divergence)."""

from __future__ import annotations

import pytest

from odradek.storage.leader_epoch import LeaderEpochCache
from odradek.storage.memory_fs import MemoryFileSystem

LOG_END = 40


def _cache(entries: list[tuple[int, int]]) -> LeaderEpochCache:
    fs = MemoryFileSystem()
    fs.mkdir("/p")
    cache = LeaderEpochCache.load(fs, "/p/leader-epoch-checkpoint")
    for epoch, start in entries:
        assert cache.assign(epoch, start)
    return cache


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (5, (5, LOG_END)),  # the latest epoch: it ends at the log end
        (4, (3, 20)),  # unknown, between two: the one before, ending where 5 starts
        (3, (3, 20)),  # known: ends where the next starts
        (2, (1, 10)),
        (1, (1, 10)),
        (0, (0, 0)),  # older than all: itself, ending where the first known starts
        (6, (-1, -1)),  # newer than all: undefined
        (-1, (-1, -1)),  # undefined asks get undefined answers
    ],
)
def test_end_offset_for_follows_kafka(requested: int, expected: tuple[int, int]) -> None:
    """Epochs 1@0, 3@10, 5@20 and log end 40: every kind of request gets Kafka's answer."""
    assert _cache([(1, 0), (3, 10), (5, 20)]).end_offset_for(requested, LOG_END) == expected


@pytest.mark.parametrize("requested", [-1, 0, 3])
def test_no_epochs_known_is_undefined(requested: int) -> None:
    """A cache with no entry (an empty log, or one written before epochs) answers
    (-1, -1) to everything."""
    assert _cache([]).end_offset_for(requested, LOG_END) == (-1, -1)


def test_single_epoch_older_request_gets_its_start() -> None:
    """With one epoch 4@7, epoch 2 (before it) ends at 7 and epoch 4 at the log end."""
    cache = _cache([(4, 7)])
    assert cache.end_offset_for(2, LOG_END) == (2, 7)
    assert cache.end_offset_for(4, LOG_END) == (4, LOG_END)
