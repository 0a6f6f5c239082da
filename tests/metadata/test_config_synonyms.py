"""DescribeConfigs' synonyms and sources as Kafka lists them, and the topic config names
Kafka 4 describes, checked on the config view itself."""

from __future__ import annotations

import pytest

from odradek.config import build_config
from odradek.metadata.configs import (
    DEFAULT_CONFIG,
    DYNAMIC_BROKER_CONFIG,
    DYNAMIC_DEFAULT_BROKER_CONFIG,
    STATIC_BROKER_CONFIG,
    ConfigApiError,
    ConfigEntry,
    ConfigView,
    check_topic_configs,
)
from odradek.metadata.store import MetadataStore, TopicInfo
from odradek.metadata.topic_config import TOPIC_CONFIGS, effective_topic_config, produce_policy
from odradek.protocol.records import GZIP, ZSTD
from odradek.storage.memory_fs import MemoryFileSystem

# Kafka 4.0's topic configs (LogConfig without its internal ones).
KAFKA_4_TOPIC_CONFIGS = {
    "cleanup.policy",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.type",
    "compression.zstd.level",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
}


def _view(
    static: list[tuple[str, str]], dynamic: dict[str, dict[str, str]] | None = None
) -> tuple[ConfigView, TopicInfo]:
    store = MetadataStore(MemoryFileSystem(), "/data")
    for resource, configs in (dynamic or {}).items():
        store.set_broker_configs(resource, configs)
    topic = store.create_topic("t", 1, {})
    return ConfigView(build_config([("node.id", "1"), *static]), store), topic


def _entry(view: ConfigView, topic: TopicInfo, name: str) -> ConfigEntry:
    (entry,) = [e for e in view.topic_entries(topic) if e.name == name]
    return entry


def test_topic_config_names_are_kafka_4s() -> None:
    """A topic is described with exactly Kafka 4's topic config names, the throttled
    replica lists among them (empty by default)."""
    view, topic = _view([])
    entries = {e.name: e for e in view.topic_entries(topic)}
    assert set(entries) == KAFKA_4_TOPIC_CONFIGS
    assert entries["leader.replication.throttled.replicas"].value == ""
    assert entries["follower.replication.throttled.replicas"].config_type == 7  # LIST
    assert entries["local.retention.ms"].value == "-2"
    assert entries["compression.zstd.level"].synonyms == (
        ("compression.zstd.level", "3", DEFAULT_CONFIG),
    )


def test_retention_ms_lists_nothing_when_only_hours_are_set() -> None:
    """Kafka lists retention.ms's synonyms from log.retention.ms on: with only
    log.retention.hours set (or its default) there are none and the source is
    DEFAULT_CONFIG, though the value follows the hours."""
    view, topic = _view([("log.retention.hours", "24")])
    entry = _entry(view, topic, "retention.ms")
    assert (entry.value, entry.source, entry.synonyms) == ("86400000", DEFAULT_CONFIG, ())
    plain_view, plain_topic = _view([])
    assert _entry(plain_view, plain_topic, "retention.ms").synonyms == ()


def test_retention_ms_lists_the_levels_from_log_retention_ms_on() -> None:
    """With log.retention.ms given at startup, the synonyms are it, then the group's
    properties at the lower levels (log.retention.hours' default); minutes, unset,
    never appear."""
    view, topic = _view([("log.retention.ms", "5000")])
    entry = _entry(view, topic, "retention.ms")
    assert entry.value == "5000"
    assert entry.source == STATIC_BROKER_CONFIG
    assert entry.synonyms == (
        ("log.retention.ms", "5000", STATIC_BROKER_CONFIG),
        ("log.retention.hours", "168", DEFAULT_CONFIG),
    )


def test_synonyms_go_level_by_level() -> None:
    """Every property of the group at the per-broker dynamic level comes before any at
    the cluster-wide level, then static, then default (not property by property)."""
    dynamic = {
        "1": {"log.retention.ms": "1000", "log.retention.hours": "3"},
        "": {"log.retention.minutes": "7"},
    }
    view, topic = _view([("log.retention.hours", "24")], dynamic)
    assert _entry(view, topic, "retention.ms").synonyms == (
        ("log.retention.ms", "1000", DYNAMIC_BROKER_CONFIG),
        ("log.retention.hours", "3", DYNAMIC_BROKER_CONFIG),
        ("log.retention.minutes", "7", DYNAMIC_DEFAULT_BROKER_CONFIG),
        ("log.retention.hours", "24", STATIC_BROKER_CONFIG),
        ("log.retention.hours", "168", DEFAULT_CONFIG),
    )


def test_broker_entries_start_at_their_own_name() -> None:
    """A broker property lists its group from its own first entry: log.retention.hours
    skips a dynamic log.retention.ms before it; the cluster-wide defaults resource keeps
    only entries of its own level."""
    dynamic = {"1": {"log.retention.ms": "1000"}, "": {"log.retention.hours": "5"}}
    view, _topic = _view([], dynamic)
    (hours,) = [e for e in view.broker_entries("1") if e.name == "log.retention.hours"]
    assert hours.synonyms == (
        ("log.retention.hours", "5", DYNAMIC_DEFAULT_BROKER_CONFIG),
        ("log.retention.hours", "168", DEFAULT_CONFIG),
    )
    (shared,) = view.broker_entries("")
    assert shared.synonyms == (("log.retention.hours", "5", DYNAMIC_DEFAULT_BROKER_CONFIG),)


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("leader.replication.throttled.replicas", "0:1,1:2", True),
        ("leader.replication.throttled.replicas", "*", True),
        ("follower.replication.throttled.replicas", "", True),
        ("follower.replication.throttled.replicas", "0-1", False),
        ("follower.replication.throttled.replicas", "a:1", False),
        ("compression.gzip.level", "-1", True),
        ("compression.gzip.level", "0", False),
        ("compression.gzip.level", "10", False),
        ("compression.lz4.level", "17", True),
        ("compression.lz4.level", "18", False),
        ("compression.zstd.level", "-131072", True),
        ("compression.zstd.level", "23", False),
        ("local.retention.ms", "-2", True),
        ("local.retention.ms", "-3", False),
        ("remote.storage.enable", "false", True),
        ("remote.storage.enable", "true", False),
    ],
)
def test_new_topic_configs_validate_as_kafka(name: str, value: str, valid: bool) -> None:
    """Kafka's validators for the added names: throttled replica lists, compression
    levels' ranges, local retention down to -2, and remote storage refused as on a
    broker without tiered storage (INVALID_CONFIG)."""
    if valid:
        check_topic_configs({name: value})
    else:
        with pytest.raises(ConfigApiError):
            check_topic_configs({name: value})


def test_compression_level_reaches_the_produce_policy() -> None:
    """The level of the topic's codec is what produce re-compresses with."""
    broker = build_config([])
    gzip = produce_policy(effective_topic_config({"compression.type": "gzip"}, broker))
    assert (gzip.compression, gzip.compression_level) == (GZIP, -1)
    zstd = produce_policy(
        effective_topic_config({"compression.type": "zstd", "compression.zstd.level": "19"}, broker)
    )
    assert (zstd.compression, zstd.compression_level) == (ZSTD, 19)
    assert produce_policy(effective_topic_config({}, broker)).is_default
    assert "leader.replication.throttled.replicas" in TOPIC_CONFIGS


def test_compress_honours_the_level() -> None:
    """A zstd and a gzip payload compressed at two levels differ and both decompress to
    the same bytes (the level is used, and the result stays readable)."""
    from odradek.protocol.records import compress, decompress

    data = b"".join(str(i).encode() * 7 for i in range(20_000))
    for codec, low, high in ((ZSTD, 1, 19), (GZIP, 1, 9)):
        fast, small = compress(codec, data, low), compress(codec, data, high)
        assert fast != small
        assert decompress(codec, fast, len(data)) == decompress(codec, small, len(data)) == data
