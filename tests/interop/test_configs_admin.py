"""Topic and broker configs through real admin clients (confluent-kafka's AdminClient,
kafka-python's KafkaAdminClient): round trips, refused values, persistence across a
restart, and the produce-time effect of max.message.bytes, compression.type and the
CreateTime bounds."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
)
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType, KafkaAdminClient

from helpers import ck_admin, ck_consume_all, ck_produce, ck_producer_conf
from odradek.protocol.batch import read_header
from odradek.protocol.records import GZIP
from tests.handlers.kafka_wire import fetch_request
from tests.server.wire import WireClient

TIMEOUT_S = 15


def _create(bootstrap: str, name: str, configs: dict[str, str] | None = None) -> None:
    futures = ck_admin(bootstrap).create_topics(
        [NewTopic(name, num_partitions=1, replication_factor=1, config=configs or {})]
    )
    futures[name].result(timeout=TIMEOUT_S)


def _describe(bootstrap: str, name: str, resource_type: str = "topic") -> dict[str, Any]:
    resource = ConfigResource(resource_type, name)
    futures = ck_admin(bootstrap).describe_configs([resource], request_timeout=TIMEOUT_S)
    return dict(futures[resource].result(timeout=TIMEOUT_S))


def _incremental(bootstrap: str, name: str, entries: list[ConfigEntry], kind: str = "topic") -> Any:
    resource = ConfigResource(kind, name, incremental_configs=entries)
    futures = ck_admin(bootstrap).incremental_alter_configs([resource])
    return futures[resource].result(timeout=TIMEOUT_S)


def _set(name: str, value: str) -> ConfigEntry:
    return ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)


def test_confluent_round_trip(broker: Any, topic: str) -> None:
    """incremental_alter_configs and alter_configs change what describe_configs shows,
    with Kafka's sources; a bad value is refused with INVALID_CONFIG and leaves the old
    value; the broker resource lists dynamic and read-only properties."""
    bootstrap = broker.bootstrap_servers
    _create(bootstrap, topic)
    _incremental(bootstrap, topic, [_set("retention.ms", "3600000")])
    found = _describe(bootstrap, topic)
    assert found["retention.ms"].value == "3600000"
    assert found["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert found["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value
    with pytest.raises(KafkaException) as refused:
        _incremental(bootstrap, topic, [_set("retention.ms", "soon")])
    assert refused.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert _describe(bootstrap, topic)["retention.ms"].value == "3600000"
    legacy = ConfigResource("topic", topic, set_config={"segment.ms": "600000"})
    ck_admin(bootstrap).alter_configs([legacy])[legacy].result(timeout=TIMEOUT_S)
    found = _describe(bootstrap, topic)
    assert found["segment.ms"].value == "600000"
    assert found["retention.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    node = _describe(bootstrap, "1", "broker")
    assert node["num.partitions"].is_read_only
    assert not node["log.retention.ms"].is_read_only


def test_kafka_python_round_trip(broker: Any, topic: str) -> None:
    """kafka-python's describe_configs and alter_configs (incremental and legacy) see and
    change a topic's configs; a bad value is reported and changes nothing; with its
    default 'modified' filter only overridden configs come back."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=15000)
    try:
        _create(broker.bootstrap_servers, topic)
        changed = admin.alter_configs(
            [KpConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": "7200000"})]
        )
        assert changed["topic"][topic] == "OK"
        legacy = admin.alter_configs(
            [KpConfigResource(ConfigResourceType.TOPIC, topic, {"segment.ms": "900000"})],
            incremental=False,
        )
        assert legacy["topic"][topic] == "OK"
        bad = admin.alter_configs(
            [KpConfigResource(ConfigResourceType.TOPIC, topic, {"segment.ms": "never"})]
        )
        assert "InvalidConfig" in bad["topic"][topic]
        described = admin.describe_configs(
            [KpConfigResource(ConfigResourceType.TOPIC, topic)], include_synonyms=True
        )
        configs = described["topic"][topic]
        assert set(configs) == {"retention.ms", "segment.ms"}
        assert configs["segment.ms"]["value"] == "900000"
        # kafka-python's legacy alter re-sends the other modified keys it described first
        assert configs["retention.ms"]["value"] == "7200000"
        assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    finally:
        admin.close()


def test_changes_survive_restart(fresh_broker: Any, topic: str) -> None:
    """A topic override and a dynamic broker property (librdkafka cannot name the ""
    cluster-default resource) are still in force after a restart."""
    bootstrap = fresh_broker.bootstrap_servers
    _create(bootstrap, topic)
    _incremental(bootstrap, topic, [_set("max.message.bytes", "5000")])
    _incremental(bootstrap, "1", [_set("log.retention.ms", "123456")], kind="broker")
    fresh_broker.restart()
    found = _describe(bootstrap, topic)
    assert found["max.message.bytes"].value == "5000"
    assert found["retention.ms"].value == "123456"
    assert found["retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value


def _deliver_one(bootstrap: str, topic: str, value: bytes, timestamp: int | None = None) -> Any:
    """The delivery error of one produced message (None when delivered)."""
    producer = Producer(ck_producer_conf(bootstrap, retries=0))
    errors: list[Any] = []
    kwargs: dict[str, Any] = {"timestamp": timestamp} if timestamp is not None else {}
    producer.produce(topic, value=value, on_delivery=lambda e, _m: errors.append(e), **kwargs)
    assert producer.flush(TIMEOUT_S) == 0
    return errors[0]


def test_max_message_bytes_takes_effect(broker: Any, topic: str) -> None:
    """A lowered max.message.bytes refuses the next bigger message, without a restart."""
    bootstrap = broker.bootstrap_servers
    _create(bootstrap, topic)
    assert _deliver_one(bootstrap, topic, b"x" * 3000) is None
    _incremental(bootstrap, topic, [_set("max.message.bytes", "1000")])
    error = _deliver_one(bootstrap, topic, b"x" * 3000)
    assert error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_compression_type_gzip(broker: Any, topic: str) -> None:
    """compression.type=gzip stores an uncompressed producer's batches as gzip (the raw
    fetched batch says so), and consumers read the same records back."""
    bootstrap = broker.bootstrap_servers
    _create(bootstrap, topic, {"compression.type": "gzip"})
    producer = Producer(ck_producer_conf(bootstrap, **{"compression.type": "none"}))
    sent = ck_produce(producer, topic, [{"key": b"k%d" % i, "value": b"v" * 50} for i in range(5)])
    with WireClient(broker.port) as client:
        data = bytes(
            client.call(1, 12, fetch_request([(topic, 0, 0)])).responses[0].partitions[0].records
        )
    assert read_header(data, 0).compression == GZIP
    got = ck_consume_all(bootstrap, topic, [0])
    assert [(r.key, r.value) for r in got] == [(r.key, r.value) for r in sent]


def test_timestamp_bounds_refuse_old_record(broker: Any, topic: str) -> None:
    """With message.timestamp.before.max.ms, a record with an old CreateTime is refused
    with INVALID_TIMESTAMP; a current one is accepted."""
    bootstrap = broker.bootstrap_servers
    _create(bootstrap, topic, {"message.timestamp.before.max.ms": "60000"})
    now_ms = int(time.time() * 1000)
    error = _deliver_one(bootstrap, topic, b"old", timestamp=now_ms - 3_600_000)
    assert error is not None and error.code() == KafkaError.INVALID_TIMESTAMP
    assert _deliver_one(bootstrap, topic, b"new", timestamp=now_ms) is None
