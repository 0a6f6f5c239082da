"""Reading records for the message browser: a bounded scan of one partition's log on
this broker, decoded and made displayable (text, JSON or hex), with an optional
substring filter on key or value.

Batches are read straight from the log up to the high watermark, as a consumer with
read_uncommitted sees them (records of aborted transactions are shown, marked as
transactional; control batches are skipped). A page reads at most `MAX_SCAN_BYTES` of
the log, so a filter that matches nothing cannot make one request read a whole log: the
page says how far it got and links on. Nothing here renders HTML: values become plain
strings that the templates escape.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from odradek.protocol.batch import CorruptBatchError, iter_batches
from odradek.protocol.records import Record, decode_batch
from odradek.replication.partition import Partition
from odradek.storage.errors import StorageError

# Bytes of log one page may read (whole batches, so a larger first batch is read whole).
MAX_SCAN_BYTES = 4 * 1024 * 1024
# Bytes asked of the log at a time; the scan yields to the event loop after each
# (decoding 64 KiB of small records takes ~15 ms), so Kafka requests are not held up.
READ_BYTES = 64 * 1024
# Offsets stepped back per window when looking for the newest matching records.
NEWEST_WINDOW = 1000
# Characters of a value shown (a longer one is cut and says how long it was).
MAX_SHOWN_CHARS = 4096
FORMATS = ("text", "json", "hex")


@dataclass(slots=True)
class Shown:
    """A key, value or header value made displayable."""

    kind: str  # "null", "text", "json" or "hex"
    text: str
    size: int  # bytes of the original
    cut: bool = False


@dataclass(slots=True)
class ShownRecord:
    offset: int
    timestamp: str
    key: Shown
    value: Shown
    headers: list[tuple[str, Shown]]
    transactional: bool


@dataclass(slots=True)
class Page:
    """The records found and the offsets the scan covered, `scanned_from` up to
    `next_offset` (exclusive), where the next page starts."""

    records: list[ShownRecord] = field(default_factory=list)
    scanned_from: int = 0
    next_offset: int = 0
    error: str | None = None
    bytes_read: int = 0


def show(data: bytes | None, form: str) -> Shown:
    """`data` as text (hex when it is not printable UTF-8), pretty JSON when it parses
    (else as text), or hex; cut at MAX_SHOWN_CHARS."""
    if data is None:
        return Shown("null", "null", 0)
    if form != "hex":
        text = _printable(data)
        if text is not None:
            if form == "json":
                pretty = _json(text)
                if pretty is not None:
                    return _cut("json", pretty, len(data))
            return _cut("text", text, len(data))
    return _cut("hex", data[: MAX_SHOWN_CHARS // 3 + 1].hex(" "), len(data))


def _printable(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any((ord(c) < 32 and c not in "\t\n\r") or c == "\x7f" for c in text):
        return None
    return text


def _json(text: str) -> str | None:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return None


def _cut(kind: str, text: str, size: int) -> Shown:
    if len(text) <= MAX_SHOWN_CHARS:
        return Shown(kind, text, size)
    return Shown(kind, text[:MAX_SHOWN_CHARS], size, cut=True)


def timestamp_text(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC; -1 (no timestamp) as itself."""
    if ms < 0:
        return str(ms)
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError):
        return str(ms)


def parse_time(text: str) -> int:
    """Milliseconds since the epoch from digits (already ms) or ISO 8601 (UTC unless it
    names a zone); ValueError otherwise."""
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _matches(record: Record, needle: bytes) -> bool:
    return (record.key is not None and needle in record.key) or (
        record.value is not None and needle in record.value
    )


def _shown(record: Record, form: str, transactional: bool) -> ShownRecord:
    return ShownRecord(
        record.offset,
        timestamp_text(record.timestamp),
        show(record.key, form),
        show(record.value, form),
        [(name, show(value, form)) for name, value in record.headers],
        transactional,
    )


async def scan(
    partition: Partition,
    start: int,
    end: int,
    limit: int,
    needle: bytes,
    form: str,
    budget: int = MAX_SCAN_BYTES,
) -> Page:
    """Up to `limit` records from offset `start` (below `end`) that contain `needle` in
    key or value (every record when it is empty), reading at most about `budget` bytes."""
    log = partition.log
    offset = max(start, log.log_start_offset)
    page = Page(scanned_from=offset, next_offset=offset)
    try:
        while offset < end and len(page.records) < limit and page.bytes_read < budget:
            data = log.read(offset, READ_BYTES, end, True).records
            if not data:  # nothing more below `end` (the rest may be a compacted gap)
                offset = end
                break
            page.bytes_read += len(data)
            offset = _take(page, bytes(data), offset, end, limit, needle, form)
            await asyncio.sleep(0)
    except (StorageError, CorruptBatchError) as error:
        page.error = f"The log could not be read: {error}"
    page.next_offset = offset
    return page


def _take(
    page: Page, data: bytes, offset: int, end: int, limit: int, needle: bytes, form: str
) -> int:
    """Adds the matching records of `data` at or after `offset`; the offset after the
    last record looked at."""
    for position, header in iter_batches(data):
        if header.base_offset >= end:
            return end
        batch = data[position : position + header.size]
        if len(batch) < header.size:
            break
        if not header.is_control:
            for record in decode_batch(batch)[1]:
                if record.offset < offset or record.offset >= end:
                    continue
                if len(page.records) >= limit:
                    return record.offset
                if not needle or _matches(record, needle):
                    page.records.append(_shown(record, form, header.is_transactional))
        offset = max(offset, header.next_offset)
    return offset


async def newest(partition: Partition, limit: int, needle: bytes, form: str) -> Page:
    """The newest `limit` records below the high watermark that match `needle`,
    looking back a window at a time within the scan budget; oldest first."""
    end = partition.high_watermark
    start_of_log = partition.log_start_offset
    if not needle:
        return await scan(partition, max(start_of_log, end - limit), end, limit, needle, form)
    found: list[ShownRecord] = []
    budget = MAX_SCAN_BYTES
    window_end = end
    while window_end > start_of_log and len(found) < limit and budget > 0:
        window_start = max(start_of_log, window_end - NEWEST_WINDOW)
        part = await scan(partition, window_start, window_end, NEWEST_WINDOW, needle, form, budget)
        if part.error is not None:
            return Page(found, window_end, end, part.error)
        if part.next_offset < window_end:
            break  # the budget ran out inside the window: only whole windows are shown
        found = part.records + found
        budget -= part.bytes_read
        window_end = window_start
    return Page(found[-limit:], window_end, end)
