"""One partition's log: a directory `<topic>-<partition>` of segments, the leader epoch
cache, and the offsets Kafka tracks (log_start_offset, log_end_offset, recovery_point).

Appends write bytes as produced (after rewriting base offset and leader epoch); reads
return stored bytes. The only disk-failure policy: a failed write is undone and reported,
a failed fsync takes the log offline for good (its page cache state is unknowable).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import time
from collections.abc import Callable

from odradek.clock import Clock
from odradek.protocol.batch import (
    CONTROL_BIT,
    LOG_OVERHEAD,
    BatchHeader,
    assign_offset,
    assigned_prefix,
    iter_fetched_batches,
    read_header,
)
from odradek.protocol.control import TxnMarker, build_marker, parse_marker
from odradek.storage.errors import (
    KafkaStorageError,
    OffsetMismatchError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
)
from odradek.storage.fs import Bytes, FileSystem
from odradek.storage.leader_epoch import LeaderEpochCache
from odradek.storage.log_config import INT_MAX, AppendInfo, FetchDataInfo, LogConfig
from odradek.storage.log_loader import LoadedLog, load_log, load_producer_state, load_state
from odradek.storage.producer_state import ProducerStateManager
from odradek.storage.segment import LogSegment
from odradek.storage.timestamps import fetch_offset_by_timestamp, find_max_timestamp
from odradek.storage.txn_index import AbortedTxn

# A partition directory on its way out: a move's or a deletion's, removed at the next start.
DELETE_SUFFIX = "-delete"
FUTURE_SUFFIX = "-future"


def parse_topic_partition(dir_name: str) -> tuple[str, int]:
    """`my.topic-name-3` -> ("my.topic-name", 3): the partition follows the LAST '-'.
    A future log's directory (`my.topic-name-3.<32 hex>-future`, Kafka's name for a
    partition being moved to another log dir) names the same partition."""
    if dir_name.endswith(FUTURE_SUFFIX):
        base, dot, unique = dir_name.removesuffix(FUTURE_SUFFIX).rpartition(".")
        if dot and len(unique) == 32 and all(c in "0123456789abcdef" for c in unique):
            dir_name = base
    topic, sep, partition = dir_name.rpartition("-")
    if not sep or not topic or not partition.isdigit():
        raise ValueError(f"{dir_name!r} is not a <topic>-<partition> directory name")
    return topic, int(partition)


class Log:
    """The segments of one partition; not thread-safe (one owner task per partition)."""

    def __init__(
        self, fs: FileSystem, path: str, config: LogConfig, clock: Clock, loaded: LoadedLog
    ) -> None:
        self._fs = fs
        self.path = path
        self.topic, self.partition = parse_topic_partition(os.path.basename(path))
        self.config = config  # the setter also derives what every append reads
        self._clock = clock
        self._segments = loaded.segments
        self._log_start_offset = loaded.log_start_offset
        self._recovery_point = loaded.recovery_point
        # None until first used when opened after a clean shutdown (see _load_state).
        self._epochs: LeaderEpochCache | None = loaded.epochs
        self._producers: ProducerStateManager | None = loaded.producers
        self._newest_snapshot = loaded.newest_snapshot  # offset of the newest one on disk
        self._truncated = False  # a truncation not fsynced yet: the next flush does it
        self._offline = False
        self._unflushed_messages = 0
        self.last_flush_ms = clock.time_ms()
        # Flushes that wrote something, and their wall time (Kafka's LogFlushRateAndTimeMs,
        # read by the metrics listener).
        self.flush_count = 0
        self.flush_ms = 0.0
        # (due wall-clock ms, segment) of `.deleted` segments waiting for file.delete.delay.ms
        self.files_to_delete: list[tuple[int, LogSegment]] = []
        self.truncated_on_open = loaded.truncated_bytes  # bytes cut by recovery when opened
        self.recovered_segments = loaded.recovered_segments  # segments scanned when opened
        # Called after every append: the manager keeps its set of logs to flush with it.
        self.on_append: Callable[[Log], None] | None = None
        # segment.ms counts from the first append, or from now for a reopened segment.
        active = self._segments[-1]
        active.rolling_base_ms = self.last_flush_ms if active.size else None

    @classmethod
    def open(
        cls,
        fs: FileSystem,
        path: str,
        config: LogConfig,
        clock: Clock,
        recovery_point: int,
        *,
        clean_shutdown: bool,
        log_start_offset: int = 0,
    ) -> Log:
        """Loads the directory (created when absent); after an unclean shutdown, recovers
        the segments from the one holding the recovery point on."""
        loaded = load_log(
            fs, path, config, recovery_point, log_start_offset, clean_shutdown=clean_shutdown
        )
        return cls(fs, path, config, clock, loaded)

    def _load_state(self) -> tuple[LeaderEpochCache, ProducerStateManager]:
        start, end = self._log_start_offset, self.log_end_offset
        epochs, producers = load_state(self._fs, self.path, self._segments, start, end)
        self._epochs = self._epochs or epochs
        self._producers = self._producers or producers
        return self._epochs, self._producers

    @property
    def config(self) -> LogConfig:
        return self._config

    @config.setter
    def config(self, config: LogConfig) -> None:
        """A topic config change replaces the whole LogConfig (replica_manager.py and
        manager.py assign it), so the values appends read are worked out here, once per
        change, instead of through properties on every append."""
        self._config = config
        self.compact = config.compact  # cleanup.policy has `compact`
        self.max_message_bytes = config.max_message_bytes
        self._max_batch_bytes = min(config.max_message_bytes, config.segment_bytes)
        self._segment_bytes = config.segment_bytes
        # Kafka rolls compacted logs by max.compaction.lag.ms too, so they become cleanable.
        roll_ms = config.segment_ms
        if config.compact:
            roll_ms = min(roll_ms, config.max_compaction_lag_ms)
        self._roll_ms = roll_ms
        self._log_append_time = config.message_timestamp_type == "LogAppendTime"
        self._flush_messages = config.flush_messages
        self._flush_ms = config.flush_ms

    @property
    def leader_epoch_cache(self) -> LeaderEpochCache:
        return self._epochs or self._load_state()[0]

    @property
    def producer_state(self) -> ProducerStateManager:
        return self._producers or self._load_state()[1]

    # -- offsets ---------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        """The offset the next appended record gets."""
        return self._segments[-1].next_offset

    @property
    def first_unstable_offset(self) -> int | None:
        """The first offset of the earliest transaction not known to be complete on every
        in-sync replica (see ProducerStateManager); None when there is none."""
        return (self._producers or self.producer_state).first_unstable_offset

    def replicated_up_to(self, high_watermark: int) -> None:
        """The partition's high watermark moved (markers below it are replicated)."""
        if self._producers is not None:  # not loaded: nothing was appended since opening
            self._producers.replicated_up_to(high_watermark)

    @property
    def recovery_point(self) -> int:
        """Every offset below it is fsynced."""
        return self._recovery_point

    @property
    def size_in_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    @property
    def latest_epoch(self) -> int:
        return self.leader_epoch_cache.latest_epoch

    @property
    def segments(self) -> list[LogSegment]:
        return list(self._segments)

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    @property
    def offline(self) -> bool:
        return self._offline

    @property
    def unflushed_messages(self) -> int:
        return self._unflushed_messages

    def _check_online(self) -> None:
        if self._offline:
            raise KafkaStorageError(f"log {self.path} is offline after a disk failure")

    def _go_offline(self, error: OSError) -> KafkaStorageError:
        self._offline = True
        return KafkaStorageError(f"log {self.path} is offline: {error}")

    def take_offline(self, error: OSError) -> KafkaStorageError:
        """For the cleaner: a failure halfway through a segment swap leaves the files in a
        state only recovery at the next start sorts out."""
        return self._go_offline(error)

    # -- appending -------------------------------------------------------------------

    def append_as_leader(self, batch: bytes, header: BatchHeader, leader_epoch: int) -> AppendInfo:
        """Gives the batch (whose header, as read_header parses it, is `header`) the next
        offsets and appends it; fsyncs when flush.messages or flush.ms say so. Raises
        KafkaStorageError on a disk failure (nothing is appended) and RecordTooLargeError
        over max.message.bytes or segment.bytes."""
        self._check_online()
        size = header.batch_length + LOG_OVERHEAD
        if size > self._max_batch_bytes:
            raise RecordTooLargeError(f"batch of {size} bytes is too large")
        # Loaded (if it was not) before anything changes: loading replays the log.
        producers = self._producers or self.producer_state
        if header.producer_id >= 0:
            retried = producers.check(header)
            if retried is not None:  # a retry of a batch already written: same offsets
                return AppendInfo(
                    retried.first_offset, retried.last_offset, -1, self._log_start_offset
                )
        now = self._clock.time_ms()
        data, prefix, final = self._assign(batch, header, leader_epoch, now)
        self._append_batch(data, final, producers, now, prefix)
        self._appended(now)
        return AppendInfo(
            final.base_offset,
            final.base_offset + final.last_offset_delta,
            now if self._log_append_time else -1,
            self._log_start_offset,
        )

    def append_txn_marker(
        self, producer_id: int, producer_epoch: int, marker: TxnMarker, leader_epoch: int
    ) -> int:
        """Appends a transaction marker (a control batch) for the producer and returns its
        offset; it ends the producer's ongoing transaction here, and an abort adds an
        entry to the aborted-transaction index. Raises InvalidProducerEpochError or
        TransactionCoordinatorFencedError (nothing appended), KafkaStorageError."""
        self._check_online()
        producers = self._producers or self.producer_state
        producers.check_marker(producer_id, producer_epoch, marker.coordinator_epoch)
        now = self._clock.time_ms()
        data = build_marker(
            producer_id,
            producer_epoch,
            marker,
            now,
            base_offset=self.log_end_offset,
            partition_leader_epoch=leader_epoch,
        )
        header = read_header(data)
        self._append_batch(data, header, producers, now)
        self._appended(now)
        return header.base_offset

    def append_as_follower(self, records: bytes | memoryview) -> int:
        """Appends what a leader's Fetch response returned for this partition: whole v2
        batches back to back, stored byte for byte as the leader has them (its offsets,
        partition leader epochs and timestamps; nothing is re-stamped). A partial batch at
        the end is ignored, as Kafka does (a fetch's byte limit may cut one). Returns the
        new log end offset.

        Every batch is checked before anything is written: framing, magic and CRC
        (CorruptBatchError), and offsets (OffsetMismatchError): the first batch may not
        start below log_end_offset, and each must start after the one before. As in Kafka
        a batch may start above log_end_offset: a compacted leader log has gaps. The
        leader epoch cache takes each batch's epoch at its base offset (when newer), the
        producer state follows every batch unchecked (the follower mirrors the leader,
        it does not deduplicate), segments roll and the flush policy applies as for the
        leader's appends. KafkaStorageError on a disk failure: the batches before the
        failing one stay appended."""
        self._check_online()
        batches = self._follower_batches(records)
        if not batches:
            return self.log_end_offset
        producers = self._producers or self.producer_state
        now = self._clock.time_ms()
        appended = False
        with memoryview(records) as view:
            try:
                for position, header in batches:
                    self._append_batch(
                        view[position : position + header.size], header, producers, now
                    )
                    appended = True
            except KafkaStorageError:
                if appended and self.on_append is not None:
                    self.on_append(self)  # the manager must still flush what was written
                raise
        self._appended(now)
        return self.log_end_offset

    def _follower_batches(self, records: bytes | memoryview) -> list[tuple[int, BatchHeader]]:
        """(position, header) of every whole batch of `records`, all checked."""
        batches = list(iter_fetched_batches(records))
        expected = self.log_end_offset  # the lowest base offset the next batch may have
        for _, header in batches:
            if header.base_offset < expected:
                raise OffsetMismatchError(
                    f"{self.path}: a batch at offset {header.base_offset} cannot follow "
                    f"offset {expected - 1} (log end offset {self.log_end_offset})",
                    first_offset=batches[0][1].base_offset,
                    last_offset=batches[-1][1].last_offset,
                    log_end_offset=self.log_end_offset,
                )
            expected = header.next_offset
        return batches

    def _assign(
        self, batch: bytes, header: BatchHeader, leader_epoch: int, now: int
    ) -> tuple[Bytes, bytes, BatchHeader]:
        """The batch as stored (next offsets, leader epoch) and its header: either a
        rewritten copy and no prefix, or (the usual case) the batch untouched and the
        prefix to write in place of its first bytes."""
        base_offset = self._segments[-1].next_offset  # log_end_offset
        if self._log_append_time:  # new timestamp and CRC: parse the result
            data = assign_offset(batch, base_offset, leader_epoch, now)
            return data, b"", read_header(data)
        prefix, final = assigned_prefix(header, base_offset, leader_epoch)
        return batch, prefix, final

    def _append_batch(
        self,
        data: Bytes,
        header: BatchHeader,
        producers: ProducerStateManager,
        now: int,
        prefix: bytes = b"",
    ) -> None:
        """Writes one batch whose header holds its final offsets (rolling first if due),
        then records its producer and its leader epoch; both append paths use it. A
        `prefix` replaces the first bytes of `data` (see LogSegment.append)."""
        segment, position = self._maybe_roll(header, now)
        self._write(segment, position, data, header, now, prefix)
        self._unflushed_messages += header.records_count
        try:
            if header.producer_id >= 0:
                if header.attributes & CONTROL_BIT:
                    stored = prefix + memoryview(data)[len(prefix) :] if prefix else data
                    self._apply_marker(segment, stored, header, producers)
                else:
                    producers.update(header)
            (self._epochs or self.leader_epoch_cache).assign(
                header.partition_leader_epoch, header.base_offset, deferred=True
            )
        except OSError as e:
            raise self._go_offline(e) from e

    @staticmethod
    def _apply_marker(
        segment: LogSegment, data: Bytes, header: BatchHeader, producers: ProducerStateManager
    ) -> None:
        """A control batch just written: a transaction marker ends its producer's
        transaction; an abort is indexed in the segment holding the marker (Kafka's rule,
        so a fetch finds it from the fetch offset's segment on)."""
        marker = parse_marker(bytes(data), header)
        if marker is None:
            return
        completed = producers.complete_txn(header, marker.commit, marker.coordinator_epoch)
        if completed is not None and completed.aborted:
            segment.txn_index.append(completed.index_entry())

    def _appended(self, now: int) -> None:
        """After an append: tell the manager, and fsync if flush.messages or flush.ms say so."""
        if self.on_append is not None:
            self.on_append(self)
        if (
            self._unflushed_messages >= self._flush_messages
            or now - self.last_flush_ms >= self._flush_ms
        ):
            self.flush()

    def _write(
        self,
        segment: LogSegment,
        size_before: int,
        data: Bytes,
        header: BatchHeader,
        now: int,
        prefix: bytes,
    ) -> None:
        try:
            segment.append(data, header, now, prefix)
        except OSError as e:
            if segment.size != size_before:  # could not even undo: state unknown
                raise self._go_offline(e) from e
            raise KafkaStorageError(f"append to {self.path} failed: {e}") from e

    def _maybe_roll(self, header: BatchHeader, now: int) -> tuple[LogSegment, int]:
        """The segment to append `header`'s batch to (a new one if the active one must
        roll first), and its size."""
        active = self._segments[-1]
        position = active.size
        offsets_overflow = (
            header.base_offset + header.last_offset_delta - active.base_offset > INT_MAX
        )
        if position == 0 and not offsets_overflow:
            return active, 0
        too_big = position + header.batch_length + LOG_OVERHEAD > self._segment_bytes
        base = active.rolling_base_ms
        too_old = base is not None and now - base >= self._roll_ms
        if too_big or too_old or offsets_overflow or active.indexes_full():
            return self.roll(header.base_offset), 0
        return active, position

    def roll(self, next_offset: int | None = None) -> LogSegment:
        """Closes the active segment (final time index entry, fsync) and starts a new one
        at log_end_offset, or at `next_offset` when the next batch starts past it (a
        follower's batch after a gap in a compacted leader log: Kafka names the segment
        after its first batch, so the batch's offsets fit the index). The recovery point
        moves up, as the old segment is durable."""
        self._check_online()
        base_offset = max(self.log_end_offset, next_offset or 0)
        active = self._segments[-1]
        if active.size == 0 and active.base_offset == base_offset:
            return active
        replaced = active.size == 0  # empty, and too far below the next batch
        try:
            if replaced:
                active.delete()
            else:
                active.on_become_inactive()
            segment = LogSegment.create(
                self._fs,
                self.path,
                base_offset,
                index_interval_bytes=self.config.index_interval_bytes,
                max_index_size=self.config.segment_index_bytes,
            )
            self._fs.fsync_dir(self.path)
            self.leader_epoch_cache.flush_if_dirty()  # before the recovery point moves
            # Kafka's rule: a producer snapshot at every roll bounds replay after a crash.
            self.producer_state.take_snapshot(segment.base_offset)
        except OSError as e:
            raise self._go_offline(e) from e
        if replaced:
            self._segments[-1] = segment
        else:
            self._segments.append(segment)
        self._recovery_point = max(self._recovery_point, segment.base_offset)
        return segment

    def flush_if_due(self, now_ms: int) -> bool:
        """The periodic flush.ms check; True if it flushed."""
        due = now_ms - self.last_flush_ms >= self._flush_ms
        if due and not self._offline and self._recovery_point < self.log_end_offset:
            self.flush()
            return True
        return False

    def flush(self) -> None:
        """fsyncs everything up to log_end_offset and moves the recovery point there. A
        failed fsync takes the log offline: retrying could report lost data as durable."""
        self._check_online()
        dirty = self._truncated or (self._epochs is not None and self._epochs.dirty)
        if self._recovery_point >= self.log_end_offset and not dirty:
            self.last_flush_ms = self._clock.time_ms()  # all of it is durable already
            return
        started = time.perf_counter()
        try:
            for segment in self._segments[self._first_unflushed() :]:
                segment.flush()
            if self._epochs is not None:
                self._epochs.flush_if_dirty()
        except OSError as e:
            raise self._go_offline(e) from e
        self._recovery_point = self.log_end_offset
        self._truncated = False
        self._unflushed_messages = 0
        self.last_flush_ms = self._clock.time_ms()
        self.flush_count += 1
        self.flush_ms += (time.perf_counter() - started) * 1000.0

    def _first_unflushed(self) -> int:
        return self._segment_index(self._recovery_point)

    # -- reading ---------------------------------------------------------------------

    def read(
        self, fetch_offset: int, max_bytes: int, max_offset: int, min_one_message: bool
    ) -> FetchDataInfo:
        """Whole batches from the one containing fetch_offset, below max_offset (the high
        watermark, exclusive). b"" at the end. OffsetOutOfRangeError outside the log."""
        self._check_online()
        end = self.log_end_offset
        if fetch_offset < self._log_start_offset or fetch_offset > end:
            raise OffsetOutOfRangeError(
                f"offset {fetch_offset} outside [{self._log_start_offset}, {end}] of {self.path}"
            )
        if fetch_offset >= min(end, max_offset):
            return FetchDataInfo(b"", fetch_offset)
        i = self._segment_index(fetch_offset)
        for segment in self._segments[i:]:
            data = segment.read(fetch_offset, max_bytes, max_offset, min_one_message)
            if data is not None:
                return FetchDataInfo(data, fetch_offset)
        return FetchDataInfo(b"", fetch_offset)

    def collect_aborted(self, fetch_start: int, upper_bound: int) -> list[AbortedTxn]:
        """Kafka's collectAbortedTxns: the aborted transactions overlapping
        [fetch_start, upper_bound), from the index of fetch_start's segment on, until
        an entry shows no later one can start below upper_bound."""
        found: list[AbortedTxn] = []
        for segment in self._segments[self._segment_index(fetch_start) :]:
            txns, complete = segment.txn_index.collect(fetch_start, upper_bound)
            found += txns
            if complete:
                break
        return found

    def segment_index(self, offset: int) -> int:
        """The position in `segments` of the segment holding `offset`."""
        return self._segment_index(offset)

    def _segment_index(self, offset: int) -> int:
        segments = self._segments
        if offset >= segments[-1].base_offset:  # the usual case: reading the active segment
            return len(segments) - 1
        return max(0, bisect.bisect_right(segments, offset, key=_base_offset) - 1)

    def fetch_offset_by_timestamp(self, timestamp: int) -> tuple[int, int, int] | None:
        """(offset, timestamp, leader_epoch) of the first record whose timestamp >= the
        target; -2 earliest, -1 latest, -3 the record with the largest timestamp."""
        self._check_online()
        return fetch_offset_by_timestamp(self, timestamp)

    def max_timestamp_offset(self) -> tuple[int, int, int] | None:
        """(offset, timestamp, leader_epoch) of the first record with the largest
        timestamp (ListOffsets MAX_TIMESTAMP); None when the log is empty."""
        self._check_online()
        return find_max_timestamp(self)

    # -- retention and compaction ----------------------------------------------------

    def maybe_increment_log_start_offset(self, offset: int) -> bool:
        """Moves log_start_offset up to `offset` (DeleteRecords, retention); never past the
        high watermark, which is log_end_offset with one replica. True if it moved."""
        self._check_online()
        if offset > self.log_end_offset:
            raise OffsetOutOfRangeError(f"{offset} is above the high watermark of {self.path}")
        if offset <= self._log_start_offset:
            return False
        self._log_start_offset = offset
        try:
            self.leader_epoch_cache.truncate_from_start(offset)
        except OSError as e:
            raise self._go_offline(e) from e
        return True

    def replace_segment_list(self, segments: list[LogSegment]) -> None:
        """Installs a changed segment list (retention.py and cleaner.py work it out)."""
        self._segments = segments

    # -- truncation and lifecycle ----------------------------------------------------

    def truncate_to(self, offset: int) -> bool:
        """Removes every batch from the one containing `offset` onwards (replication: a
        follower drops what the leader does not have); True if anything was removed.
        As Kafka's truncateTo: leader epochs from the new end on are forgotten, the log
        start offset comes down to the new end if it was above it, and the producer state
        is rebuilt without the removed batches (snapshots above the new end deleted).

        The caller must write the recovery-point checkpoint before appending again, as
        Kafka's LogManager.truncateTo does: recovery after a crash trusts the batches below
        the checkpointed point without checking their CRCs, and this lowers the point.
        Nothing is fsynced here (LogManager.truncate_to does that too)."""
        self._check_online()
        if offset >= self.log_end_offset:
            return False
        if offset <= self._segments[0].base_offset:
            self.truncate_fully_and_start_at(offset)
            return True
        try:
            while self._segments[-1].base_offset >= offset:
                self._segments.pop().delete()
            self._segments[-1].truncate_to(offset)
            end = self.log_end_offset
            self.leader_epoch_cache.truncate_from_end(end)
            self._log_start_offset = min(self._log_start_offset, end)
            self._reload_producer_state()
        except OSError as e:
            raise self._go_offline(e) from e
        self._recovery_point = min(self._recovery_point, self.log_end_offset)
        self._truncated = True
        return True

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Deletes every segment and starts empty at `offset`, with no leader epochs and
        no producer state (every snapshot deleted)."""
        self._check_online()
        try:
            for segment in self._segments:
                segment.delete()
            self._segments = [
                LogSegment.create(
                    self._fs,
                    self.path,
                    offset,
                    index_interval_bytes=self.config.index_interval_bytes,
                    max_index_size=self.config.segment_index_bytes,
                )
            ]
            self.leader_epoch_cache.clear()
            self._log_start_offset = offset
            self._reload_producer_state(fully=True)
        except OSError as e:
            raise self._go_offline(e) from e
        self._recovery_point = offset
        self._truncated = True

    def _reload_producer_state(self, *, fully: bool = False) -> None:
        """After a truncation (Kafka's rebuildProducerState): the state is rebuilt from
        the newest snapshot at or below the new end plus the batches after it; loading
        deletes the snapshots above the end, so a later crash cannot bring back the state
        of removed batches. `fully`: every snapshot goes first (one at the new start
        offset would describe the old log)."""
        if fully:
            ProducerStateManager(self._fs, self.path).delete_snapshots_above(-1)
        end = self.log_end_offset
        self._producers = load_producer_state(
            self._fs, self.path, self._segments, self._log_start_offset, end
        )
        left = self._producers.snapshot_offsets()
        self._newest_snapshot = left[-1] if left else None

    def close(self) -> None:
        """Releases files after a producer snapshot at the log end (so a clean restart
        replays nothing); does not flush (the manager flushes first on a clean stop)."""
        if not self._offline:
            # On failure the next start replays from an older snapshot instead.
            with contextlib.suppress(OSError):
                if self._epochs is not None:
                    self._epochs.flush_if_dirty()
            # Unused since a clean open and a snapshot at the end already: nothing to write.
            unchanged = self._producers is None and self._newest_snapshot == self.log_end_offset
            with contextlib.suppress(OSError):
                if not unchanged:
                    self.producer_state.take_snapshot(self.log_end_offset)
        for segment in self._segments:
            segment.close()

    def delete(self) -> None:
        """Removes the whole partition directory."""
        self.close()
        self._fs.rmtree(self.path)


def _base_offset(segment: LogSegment) -> int:
    return segment.base_offset
