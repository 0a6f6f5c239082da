"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs at the wire level: values,
sources, synonyms, types, documentation, errors, atomicity, persistence and live effect."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.metadata.configs import (
    DEFAULT_CONFIG,
    DYNAMIC_BROKER_CONFIG,
    DYNAMIC_DEFAULT_BROKER_CONFIG,
    DYNAMIC_TOPIC_CONFIG,
)
from odradek.protocol.batch import read_header
from odradek.protocol.records import GZIP, NONE, SimpleRecord
from odradek.testing import Broker
from tests.handlers.kafka_wire import (
    create_topic,
    fetch_request,
    produce,
    produce_request,
    records_of,
)
from tests.server.wire import WireClient, build, request_module

TOPIC, BROKER = 2, 4
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


@pytest.fixture
def broker() -> Iterator[Broker]:
    with Broker(config={"log.retention.hours": "24", "node.id": "1"}) as running:
        yield running


def describe(
    client: WireClient,
    resource_type: int,
    name: str,
    keys: tuple[str, ...] | None = None,
    version: int = 4,
) -> Any:
    """The one result of a DescribeConfigs request for one resource."""
    m = request_module(32, version)
    resource = build(
        m.DescribeConfigsResource,
        resource_type=resource_type,
        resource_name=name,
        configuration_keys=keys,
    )
    body = build(
        m.DescribeConfigsRequest,
        resources=(resource,),
        include_synonyms=True,
        include_documentation=True,
    )
    return client.call(32, version, body).results[0]


def values(result: Any) -> dict[str, Any]:
    return {c.name: c for c in result.configs}


def incremental(
    client: WireClient,
    resource_type: int,
    name: str,
    ops: list[tuple[str, int, str | None]],
    validate_only: bool = False,
) -> Any:
    """The one resource response of an IncrementalAlterConfigs request (v1)."""
    m = request_module(44, 1)
    configs = tuple(
        build(m.AlterableConfig, name=n, config_operation=op, value=v) for n, op, v in ops
    )
    resource = build(
        m.AlterConfigsResource, resource_type=resource_type, resource_name=name, configs=configs
    )
    body = build(
        m.IncrementalAlterConfigsRequest, resources=(resource,), validate_only=validate_only
    )
    return client.call(44, 1, body).responses[0]


def alter(
    client: WireClient,
    resource_type: int,
    name: str,
    configs: dict[str, str | None],
    validate_only: bool = False,
    version: int = 2,
) -> Any:
    """The one resource response of a legacy AlterConfigs request."""
    m = request_module(33, version)
    entries = tuple(build(m.AlterableConfig, name=k, value=v) for k, v in configs.items())
    resource = build(
        m.AlterConfigsResource, resource_type=resource_type, resource_name=name, configs=entries
    )
    body = build(m.AlterConfigsRequest, resources=(resource,), validate_only=validate_only)
    return client.call(33, version, body).responses[0]


def test_describe_topic_sources_synonyms_types(broker: Broker) -> None:
    """A topic's configs carry Kafka's sources: the override is DYNAMIC_TOPIC_CONFIG, the
    rest DEFAULT_CONFIG; retention.ms follows the startup log.retention.hours in value
    but, as in Kafka, lists no synonym and says DEFAULT_CONFIG, since Kafka lists a
    topic config's synonyms from log.retention.ms on and that one is unset; v3+ has
    types and documentation."""
    with WireClient(broker.port) as client:
        create_topic(client, "described", configs={"segment.bytes": "1048576"})
        found = values(describe(client, TOPIC, "described"))
    assert found["segment.bytes"].value == "1048576"
    assert found["segment.bytes"].config_source == DYNAMIC_TOPIC_CONFIG
    assert found["segment.bytes"].config_type == 3  # INT
    assert [s.name for s in found["segment.bytes"].synonyms] == [
        "segment.bytes",
        "log.segment.bytes",
    ]
    retention = found["retention.ms"]
    assert (retention.value, retention.config_source) == ("86400000", DEFAULT_CONFIG)
    assert retention.synonyms == ()
    assert retention.config_type == 5  # LONG
    assert found["cleanup.policy"].config_source == DEFAULT_CONFIG
    assert found["cleanup.policy"].config_type == 7  # LIST
    assert found["compression.type"].documentation
    assert not any(c.read_only or c.is_sensitive for c in found.values())


def test_describe_keys_versions_and_errors(broker: Broker) -> None:
    """configuration_keys narrows the answer; v1 has no types; unknown topics, other
    brokers and unsupported resource types get Kafka's error codes."""
    with WireClient(broker.port) as client:
        create_topic(client, "narrow")
        narrow = describe(client, TOPIC, "narrow", keys=("retention.ms", "nope"))
        assert [c.name for c in narrow.configs] == ["retention.ms"]
        v1 = describe(client, TOPIC, "narrow", keys=("retention.ms",), version=1)
        assert v1.error_code == ErrorCode.none and v1.configs[0].value == "86400000"
        missing = describe(client, TOPIC, "missing")
        assert missing.error_code == ErrorCode.unknown_topic_or_partition
        assert describe(client, BROKER, "7").error_code == ErrorCode.invalid_request
        assert describe(client, BROKER, "one").error_code == ErrorCode.invalid_request
        assert describe(client, 8, "1").error_code == ErrorCode.invalid_request


def test_incremental_set_delete_append_subtract(broker: Broker) -> None:
    """SET, DELETE, APPEND and SUBTRACT change the topic's overrides as Kafka does."""
    with WireClient(broker.port) as client:
        create_topic(client, "ops")
        ok = incremental(
            client,
            TOPIC,
            "ops",
            [("retention.ms", SET, "1000"), ("cleanup.policy", APPEND, "compact")],
        )
        assert ok.error_code == ErrorCode.none
        found = values(describe(client, TOPIC, "ops"))
        assert found["retention.ms"].value == "1000"
        assert found["cleanup.policy"].value == "delete,compact"
        incremental(
            client,
            TOPIC,
            "ops",
            [("retention.ms", DELETE, None), ("cleanup.policy", SUBTRACT, "delete")],
        )
        found = values(describe(client, TOPIC, "ops"))
        assert found["retention.ms"].value == "86400000"
        assert found["cleanup.policy"].value == "compact"
        not_list = incremental(client, TOPIC, "ops", [("retention.ms", APPEND, "1")])
        assert not_list.error_code == ErrorCode.invalid_config
        bad_op = incremental(client, TOPIC, "ops", [("retention.ms", 9, "1")])
        assert bad_op.error_code == ErrorCode.invalid_request


def test_bad_change_is_atomic(broker: Broker) -> None:
    """An unknown name or a bad value gives INVALID_CONFIG and leaves every config of the
    resource as it was, also the valid ones in the same request."""
    with WireClient(broker.port) as client:
        create_topic(client, "atomic", configs={"retention.ms": "5000"})
        bad = incremental(
            client,
            TOPIC,
            "atomic",
            [("retention.ms", SET, "6000"), ("segment.bytes", SET, "tiny")],
        )
        assert bad.error_code == ErrorCode.invalid_config
        unknown = alter(client, TOPIC, "atomic", {"retention.ms": "7000", "no.such": "1"})
        assert unknown.error_code == ErrorCode.invalid_config
        twice = incremental(
            client, TOPIC, "atomic", [("retention.ms", SET, "1"), ("retention.ms", SET, "2")]
        )
        assert twice.error_code == ErrorCode.invalid_request
        assert values(describe(client, TOPIC, "atomic"))["retention.ms"].value == "5000"
        missing = alter(client, TOPIC, "missing", {"retention.ms": "1"})
        assert missing.error_code == ErrorCode.unknown_topic_or_partition


def test_validate_only_and_legacy_replace(broker: Broker) -> None:
    """validate_only changes nothing; legacy AlterConfigs replaces the whole override set."""
    with WireClient(broker.port) as client:
        create_topic(client, "legacy", configs={"retention.ms": "5000"})
        checked = alter(client, TOPIC, "legacy", {"segment.ms": "1000"}, validate_only=True)
        assert checked.error_code == ErrorCode.none
        found = values(describe(client, TOPIC, "legacy"))
        assert found["retention.ms"].value == "5000"
        assert found["segment.ms"].config_source == DEFAULT_CONFIG
        assert alter(client, TOPIC, "legacy", {"segment.ms": "1000"}, version=0).error_code == 0
        found = values(describe(client, TOPIC, "legacy"))
        assert found["segment.ms"].value == "1000"
        assert found["retention.ms"].config_source == DEFAULT_CONFIG


def test_broker_configs_dynamic_and_read_only(broker: Broker) -> None:
    """Dynamic broker properties per broker and cluster-wide: sources, precedence, the
    topic defaults they feed; read-only ones and bad broker values get INVALID_REQUEST."""
    with WireClient(broker.port) as client:
        create_topic(client, "follows")
        assert incremental(client, BROKER, "", [("log.retention.ms", SET, "5000")]).error_code == 0
        assert incremental(client, BROKER, "1", [("log.retention.ms", SET, "6000")]).error_code == 0
        own = values(describe(client, BROKER, "1"))["log.retention.ms"]
        assert (own.value, own.config_source, own.read_only) == (
            "6000",
            DYNAMIC_BROKER_CONFIG,
            False,
        )
        sources = [s.source for s in own.synonyms]
        assert sources[:2] == [DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG]
        default = describe(client, BROKER, "")
        assert [(c.name, c.value) for c in default.configs] == [("log.retention.ms", "5000")]
        topic = values(describe(client, TOPIC, "follows"))["retention.ms"]
        assert (topic.value, topic.config_source) == ("6000", DYNAMIC_BROKER_CONFIG)
        assert values(describe(client, BROKER, "1"))["num.partitions"].read_only
        fixed = incremental(client, BROKER, "1", [("num.partitions", SET, "3")])
        assert fixed.error_code == ErrorCode.invalid_request
        bad = incremental(client, BROKER, "1", [("log.segment.bytes", SET, "x")])
        assert bad.error_code == ErrorCode.invalid_request
        unknown = incremental(client, BROKER, "1", [("no.such.property", SET, "x")])
        assert unknown.error_code == ErrorCode.invalid_config
        other = incremental(client, BROKER, "2", [("log.retention.ms", SET, "1")])
        assert other.error_code == ErrorCode.invalid_request


def test_changes_survive_restart(broker: Broker) -> None:
    """Topic overrides and dynamic broker properties are in the cluster image: a restart
    keeps them, and the restarted logs use them."""
    with WireClient(broker.port) as client:
        create_topic(client, "kept")
        incremental(client, TOPIC, "kept", [("max.message.bytes", SET, "2000")])
        incremental(client, BROKER, "", [("log.segment.bytes", SET, "4096")])
    broker.restart()
    with WireClient(broker.port) as client:
        found = values(describe(client, TOPIC, "kept"))
        assert found["max.message.bytes"].value == "2000"
        assert found["segment.bytes"].value == "4096"
        assert found["segment.bytes"].config_source == DYNAMIC_DEFAULT_BROKER_CONFIG
    assert broker.broker is not None
    log = broker.broker.services.replicas.partitions[("kept", 0)].log
    assert (log.config.max_message_bytes, log.config.segment_bytes) == (2000, 4096)


def test_max_message_bytes_applies_to_next_produce(broker: Broker) -> None:
    """A lowered max.message.bytes refuses the next bigger batch with MESSAGE_TOO_LARGE,
    without a restart; raising it again lets the batch in."""
    big = [SimpleRecord(b"x" * 3000, timestamp=1)]
    with WireClient(broker.port) as client:
        create_topic(client, "sized")
        assert produce(client, "sized", big).error_code == ErrorCode.none
        incremental(client, TOPIC, "sized", [("max.message.bytes", SET, "1000")])
        assert produce(client, "sized", big).error_code == ErrorCode.message_too_large
        incremental(client, TOPIC, "sized", [("max.message.bytes", DELETE, None)])
        assert produce(client, "sized", big).error_code == ErrorCode.none


def _stored_batches(client: WireClient, name: str) -> tuple[list[int], bytes]:
    """The codecs of the stored batches of partition 0, and the raw bytes."""
    response = client.call(1, 12, fetch_request([(name, 0, 0)]))
    data = bytes(response.responses[0].partitions[0].records or b"")
    codecs, pos = [], 0
    while pos < len(data):
        header = read_header(data, pos)
        codecs.append(header.compression)
        pos += header.size
    return codecs, data


def test_compression_type_recompresses(broker: Broker) -> None:
    """compression.type=gzip stores an uncompressed batch as gzip, uncompressed stores a
    gzip batch uncompressed; keys, values, headers and timestamps are kept."""
    records = [
        SimpleRecord(b"v1", key=b"k1", headers=(("h", b"1"),), timestamp=1_700_000_000_000),
        SimpleRecord(b"v2", key=None, timestamp=1_700_000_000_005),
    ]
    with WireClient(broker.port) as client:
        create_topic(client, "zipped", configs={"compression.type": "gzip"})
        assert produce(client, "zipped", records).error_code == ErrorCode.none
        create_topic(client, "plain", configs={"compression.type": "uncompressed"})
        assert produce(client, "plain", records, compression=GZIP).error_code == ErrorCode.none
        zipped, zipped_data = _stored_batches(client, "zipped")
        plain, plain_data = _stored_batches(client, "plain")
    assert zipped == [GZIP] and plain == [NONE]
    for data in (zipped_data, plain_data):
        got = [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in records_of(data)]
        assert got == [
            (0, 1_700_000_000_000, b"k1", b"v1", (("h", b"1"),)),
            (1, 1_700_000_000_005, None, b"v2", ()),
        ]


def test_timestamp_bounds(broker: Broker) -> None:
    """message.timestamp.before.max.ms refuses an old CreateTime batch with
    INVALID_TIMESTAMP, after.max.ms one from the future; a current one is accepted."""
    assert broker.broker is not None
    now = broker.broker.clock.time_ms()
    with WireClient(broker.port) as client:
        create_topic(
            client,
            "bounded",
            configs={
                "message.timestamp.before.max.ms": "3600000",
                "message.timestamp.after.max.ms": "3600000",
            },
        )
        old = produce(client, "bounded", [SimpleRecord(b"v", timestamp=now - 7_200_000)])
        assert old.error_code == ErrorCode.invalid_timestamp
        future = produce(client, "bounded", [SimpleRecord(b"v", timestamp=now + 7_200_000)])
        assert future.error_code == ErrorCode.invalid_timestamp
        fine = produce(client, "bounded", [SimpleRecord(b"v", timestamp=now)])
        assert fine.error_code == ErrorCode.none


def test_min_insync_replicas_applies_live(broker: Broker) -> None:
    """Raising min.insync.replicas above 1 makes the next acks=all produce fail with
    NOT_ENOUGH_REPLICAS (one broker); deleting the override lets it through again."""
    record = [SimpleRecord(b"v", timestamp=1)]
    with WireClient(broker.port) as client:
        create_topic(client, "isr")
        incremental(client, TOPIC, "isr", [("min.insync.replicas", SET, "2")])
        assert produce(client, "isr", record, acks=-1).error_code == ErrorCode.not_enough_replicas
        assert produce(client, "isr", record, acks=1).error_code == ErrorCode.none
        incremental(client, TOPIC, "isr", [("min.insync.replicas", DELETE, None)])
        assert produce(client, "isr", record, acks=-1).error_code == ErrorCode.none


def test_synonym_precedence_follows_kafka() -> None:
    """A topic default comes from the first broker synonym that has a value at any level:
    a startup log.retention.ms beats a dynamic log.retention.hours, as in Kafka; hours are
    scaled to milliseconds and a negative value means no limit."""
    from odradek.config import build_config
    from odradek.metadata.topic_config import TOPIC_CONFIGS, topic_default

    retention = TOPIC_CONFIGS["retention.ms"]
    static_ms = build_config([("log.retention.ms", "1000")])
    assert topic_default(retention, static_ms, {"log.retention.hours": "2"}) == (
        "1000",
        "log.retention.ms",
    )
    plain = build_config([])
    assert topic_default(retention, plain, {"log.retention.hours": "2"})[0] == "7200000"
    assert topic_default(retention, plain, {"log.retention.hours": "-1"})[0] == "-1"
    assert topic_default(retention, plain) == ("604800000", None)


def test_recompression_keeps_idempotence(broker: Broker) -> None:
    """A re-compressed idempotent batch keeps its producer id, epoch and base sequence, so
    a retry of it is still recognised and acknowledged with the first offsets."""
    from odradek.protocol.records import build_batch

    batch = build_batch(
        [SimpleRecord(b"a", timestamp=5), SimpleRecord(b"b", timestamp=6)],
        producer_id=7,
        producer_epoch=2,
        base_sequence=0,
    )
    body = produce_request("idem-gzip", batch, version=11)
    with WireClient(broker.port) as client:
        create_topic(client, "idem-gzip", configs={"compression.type": "gzip"})
        first = client.call(0, 11, body).responses[0].partition_responses[0]
        retry = client.call(0, 11, body).responses[0].partition_responses[0]
        codecs, stored = _stored_batches(client, "idem-gzip")
    assert (first.error_code, first.base_offset) == (ErrorCode.none, 0)
    assert (retry.error_code, retry.base_offset) == (ErrorCode.none, 0)
    header = read_header(stored, 0)
    assert codecs == [GZIP]
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 2, 0)
