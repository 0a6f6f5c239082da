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
