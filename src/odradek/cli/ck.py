"""confluent-kafka's admin types in one place.

`confluent_kafka.admin` imports these without re-exporting them explicitly, which strict
mypy (no implicit re-export) refuses; the public import path is kept and the check is
silenced here only. OffsetSpec's factory methods are untyped, so typed wrappers follow."""

from __future__ import annotations

from typing import Any

from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AlterConfigOpType,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ConsumerGroupDescription,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
    TopicMetadata,
)

__all__ = [
    "AlterConfigOpType",
    "ClusterMetadata",
    "ConfigEntry",
    "ConfigResource",
    "ConfigSource",
    "ConsumerGroupDescription",
    "NewPartitions",
    "NewTopic",
    "ResourceType",
    "TopicMetadata",
    "spec_earliest",
    "spec_for_timestamp",
    "spec_latest",
]


def spec_earliest() -> Any:
    """OffsetSpec.earliest()."""
    return OffsetSpec.earliest()  # type: ignore[no-untyped-call]


def spec_latest() -> Any:
    """OffsetSpec.latest()."""
    return OffsetSpec.latest()  # type: ignore[no-untyped-call]


def spec_for_timestamp(timestamp_ms: int) -> Any:
    """OffsetSpec.for_timestamp(ms)."""
    return OffsetSpec.for_timestamp(timestamp_ms)
