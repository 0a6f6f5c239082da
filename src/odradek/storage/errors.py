"""Errors the storage layer raises, named after the Kafka error codes they map to."""

from __future__ import annotations

from odradek.protocol.batch import BatchTooLargeError


class StorageError(Exception):
    """Base class of storage errors."""


class KafkaStorageError(StorageError):
    """A disk write or fsync failed, or the log is offline (Kafka's KAFKA_STORAGE_ERROR)."""


class OffsetOutOfRangeError(StorageError):
    """A read below log_start_offset or above log_end_offset (OFFSET_OUT_OF_RANGE)."""


class CheckpointError(StorageError):
    """A checkpoint or properties file that does not parse."""


class InconsistentNodeIdError(StorageError):
    """meta.properties names another node.id than the one configured."""


class RecordTooLargeError(StorageError, BatchTooLargeError):
    """A batch over max.message.bytes or segment.bytes (RECORD_TOO_LARGE); a
    BatchTooLargeError too, so handlers map it like the produce-time check."""


class InconsistentClusterIdError(StorageError):
    """meta.properties names another cluster.id than the one configured."""


class OffsetMismatchError(StorageError):
    """A follower append whose batches do not continue the log: the first starts below
    log_end_offset (Kafka's UnexpectedAppendOffsetException), or a batch does not start
    after the one before it (OffsetsOutOfOrderException). Nothing was appended. The
    fetcher finds where the logs agree again (truncation) and fetches from there.

    `first_offset` and `last_offset` span the batches offered, `log_end_offset` is the
    log's: with an empty log whose start lies inside the leader's first batch (the
    leader's log start was moved into a batch by DeleteRecords), Kafka starts the log over
    at `first_offset` and appends again."""

    def __init__(
        self, message: str, *, first_offset: int, last_offset: int, log_end_offset: int
    ) -> None:
        super().__init__(message)
        self.first_offset = first_offset
        self.last_offset = last_offset
        self.log_end_offset = log_end_offset
