"""MetadataStore: batched writes of the image and the index of colliding names."""

from __future__ import annotations

import random

import pytest

from odradek.metadata.store import MetadataStore
from odradek.storage.memory_fs import MemoryFileHandle, MemoryFileSystem

DATA = "/data"


class CountingFileSystem(MemoryFileSystem):
    """Counts the writes of the image (opens of its temporary file)."""

    def __init__(self) -> None:
        super().__init__()
        self.image_writes = 0

    def open(self, path: str) -> MemoryFileHandle:
        if path.endswith("odradek-metadata.json.tmp"):
            self.image_writes += 1
        return super().open(path)


def test_a_batch_writes_the_image_once_at_its_end() -> None:
    """Changes inside nested batches are written once, when the outermost ends; outside a
    batch every change is written at once. A crash after the batch keeps all of them."""
    fs = CountingFileSystem()
    store = MetadataStore(fs, DATA)
    fs.image_writes = 0
    with store.batch():
        for i in range(20):
            store.create_topic(f"t{i}", 3, {})
        with store.batch():
            store.set_topic_configs("t0", {"retention.ms": "1000"})
        store.set_partition_count("t1", 5)
        assert fs.image_writes == 0
    assert fs.image_writes == 1
    store.delete_topic("t2")
    assert fs.image_writes == 2
    with store.batch():
        pass
    assert fs.image_writes == 2  # nothing changed, nothing written
    fs.crash(random.Random(5))
    again = MetadataStore(fs, DATA)
    assert len(again.topics) == 19 and again.topics["t1"].partitions == 5
    assert again.topics["t0"].configs == {"retention.ms": "1000"}


def test_a_batch_ended_by_an_error_still_writes_what_changed() -> None:
    """The image on disk follows the one in memory even when the batch failed halfway."""
    fs = CountingFileSystem()
    store = MetadataStore(fs, DATA)
    with pytest.raises(RuntimeError), store.batch():
        store.create_topic("kept", 1, {})
        raise RuntimeError("boom")
    assert "kept" in MetadataStore(fs, DATA).topics


def test_colliding_names_are_found_by_lookup() -> None:
    """'.' and '_' collide; the topic itself is no collision; deleting the holder frees
    the name, also when an old image holds two colliding topics."""
    fs = MemoryFileSystem()
    store = MetadataStore(fs, DATA)
    store.create_topic("a.b", 1, {})
    assert store.colliding_topic("a_b") == "a.b"
    assert store.colliding_topic("a.b") is None
    assert store.colliding_topic("a-b") is None
    store.create_topic("a_b", 1, {})  # as an image from before the check might hold
    assert store.colliding_topic("a.b") == "a_b"
    store.delete_topic("a.b")
    assert store.colliding_topic("a.b") == "a_b"
    store.delete_topic("a_b")
    assert store.colliding_topic("a.b") is None
    store.create_topic("x.y", 1, {})
    assert MetadataStore(fs, DATA).colliding_topic("x_y") == "x.y"  # rebuilt on load
