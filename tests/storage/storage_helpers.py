"""Shared helpers for the storage tests: batches, logs on either file system."""

from __future__ import annotations

from odradek.clock import FakeClock
from odradek.protocol.batch import BatchHeader, read_header
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.storage.fs import FileSystem
from odradek.storage.log import Log
from odradek.storage.log_config import AppendInfo, LogConfig

LOG_DIR = "/data/orders-0"


def make_batch(
    count: int = 1, value_size: int = 10, timestamp: int = 1_000, tag: int = 0, compression: int = 0
) -> tuple[bytes, BatchHeader]:
    """A producer-style batch (base offset 0) of `count` records with distinct values."""
    records = [
        SimpleRecord(
            value=f"{tag}:{i}:".encode().ljust(value_size, b"x"),
            key=f"k{i}".encode(),
            timestamp=timestamp + i,
        )
        for i in range(count)
    ]
    batch = build_batch(records, compression=compression)
    return batch, read_header(batch)


def append(
    log: Log,
    count: int = 1,
    value_size: int = 10,
    timestamp: int = 1_000,
    epoch: int = 0,
    tag: int = 0,
) -> AppendInfo:
    batch, header = make_batch(count, value_size, timestamp, tag)
    return log.append_as_leader(batch, header, epoch)


def open_log(
    fs: FileSystem,
    path: str = LOG_DIR,
    config: LogConfig | None = None,
    clock: FakeClock | None = None,
    recovery_point: int = 0,
    clean_shutdown: bool = True,
) -> Log:
    return Log.open(
        fs,
        path,
        config or LogConfig(),
        clock or FakeClock(),
        recovery_point,
        clean_shutdown=clean_shutdown,
    )


def read_all(log: Log, start: int = 0) -> list[tuple[int, bytes]]:
    """(base_offset, batch bytes) of every batch from `start` to the end, via Log.read."""
    from odradek.protocol.batch import iter_batches

    out: list[tuple[int, bytes]] = []
    offset = start
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20, log.log_end_offset, True).records
        assert data, f"no data at {offset}"
        for pos, header in iter_batches(data):
            out.append((header.base_offset, data[pos : pos + header.size]))
            offset = header.next_offset
    return out
