"""DescribeConfigs lists the security properties of a broker started with TLS and SASL
users, as Kafka does: secrets sensitive with no value (nor in synonyms), the others with
their value and source; per-listener overrides with their broker-wide synonym; and
AlterConfigs/IncrementalAlterConfigs refuse them as read-only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType, KafkaAdminClient

from odradek.metadata.configs import DEFAULT_CONFIG, DYNAMIC_BROKER_CONFIG, STATIC_BROKER_CONFIG
from odradek.testing import Broker

TIMEOUT_S = 15
KEY_PASSWORD = "key-secret-4711"
USER_PASSWORD = "admin-secret-0815"
PROTOCOL_MAP = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,X:SSL"
LISTENER_JAAS = "listener.name.sasl_plaintext.plain.sasl.jaas.config"
LISTENER_LIMIT = "listener.name.sasl_ssl.max.connections"


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_admin="{USER_PASSWORD}";'
    )
    config = {
        "listener.security.protocol.map": PROTOCOL_MAP,
        # The test keystore's key is not encrypted; a password is then simply unused.
        "ssl.key.password": KEY_PASSWORD,
        LISTENER_JAAS: jaas,
        LISTENER_LIMIT: "50",
    }
    with Broker(tls=True, sasl_users={"admin": USER_PASSWORD}, config=config) as running:
        yield running


@pytest.fixture(scope="module")
def admin(broker: Broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap_servers})


def _describe(admin: AdminClient) -> dict[str, Any]:
    resource = ConfigResource("broker", "1")
    futures = admin.describe_configs([resource], request_timeout=TIMEOUT_S)
    return dict(futures[resource].result(timeout=TIMEOUT_S))


def test_secrets_are_sensitive_and_never_returned(admin: AdminClient) -> None:
    """Kafka's PASSWORD properties, set or not, and a per-listener JAAS text come back
    sensitive and read-only with a null value, their synonyms without values too; no
    value or synonym anywhere in the answer holds a password."""
    found = _describe(admin)
    for name, source in (
        ("sasl.jaas.config", STATIC_BROKER_CONFIG),
        ("ssl.key.password", STATIC_BROKER_CONFIG),
        (LISTENER_JAAS, STATIC_BROKER_CONFIG),
        ("ssl.keystore.password", DEFAULT_CONFIG),
        ("ssl.truststore.password", DEFAULT_CONFIG),
        ("ssl.keystore.key", DEFAULT_CONFIG),
        ("ssl.keystore.certificate.chain", DEFAULT_CONFIG),
        ("ssl.truststore.certificates", DEFAULT_CONFIG),
    ):
        entry = found[name]
        assert (entry.is_sensitive, entry.is_read_only, entry.value) == (True, True, None), name
        assert entry.source == source, name
        assert all(s.value is None for s in entry.synonyms.values()), name
    assert list(found[LISTENER_JAAS].synonyms) == [LISTENER_JAAS, "sasl.jaas.config"]
    shown = [e.value for e in found.values()]
    shown += [s.value for e in found.values() for s in e.synonyms.values()]
    assert not [v for v in shown if v and (KEY_PASSWORD in v or USER_PASSWORD in v)]


def test_security_properties_have_values_and_sources(broker: Broker, admin: AdminClient) -> None:
    """The non-secret security properties show the value the broker was started with
    (STATIC_BROKER_CONFIG) or Kafka's default (DEFAULT_CONFIG), read-only; a
    per-listener override lists its broker-wide property as a synonym."""
    found = _describe(admin)
    expected = {
        "listener.security.protocol.map": (PROTOCOL_MAP, STATIC_BROKER_CONFIG),
        "sasl.enabled.mechanisms": ("PLAIN,SCRAM-SHA-256,SCRAM-SHA-512", STATIC_BROKER_CONFIG),
        "ssl.keystore.type": ("PEM", STATIC_BROKER_CONFIG),
        "ssl.client.auth": ("requested", STATIC_BROKER_CONFIG),
        "ssl.endpoint.identification.algorithm": ("https", DEFAULT_CONFIG),
        "connections.max.reauth.ms": ("0", DEFAULT_CONFIG),
        "allow.everyone.if.no.acl.found": ("false", DEFAULT_CONFIG),
        "sasl.mechanism.inter.broker.protocol": ("GSSAPI", DEFAULT_CONFIG),
        LISTENER_LIMIT: ("50", STATIC_BROKER_CONFIG),
    }
    for name, (value, source) in expected.items():
        entry = found[name]
        assert (entry.value, entry.source) == (value, source), name
        assert entry.is_read_only and not entry.is_sensitive, name
    assert found["ssl.keystore.location"].value == broker.config.ssl_keystore_location
    limit = found[LISTENER_LIMIT].synonyms
    assert [(s.name, s.value, s.source) for s in limit.values()] == [
        (LISTENER_LIMIT, "50", STATIC_BROKER_CONFIG),
        ("max.connections", "10000", DEFAULT_CONFIG),
    ]


def test_kafka_python_sees_secrets_as_sensitive(broker: Broker) -> None:
    """kafka-python's describe_configs (all configs, with synonyms) gets the same
    answer: secrets sensitive with null values and a PASSWORD type, the protocol map
    with its value."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=15000)
    try:
        described = admin.describe_configs(
            [KpConfigResource(ConfigResourceType.BROKER, "1")],
            include_synonyms=True,
            config_filter="all",
        )
    finally:
        admin.close()
    found = described["broker"]["1"]
    for name in ("sasl.jaas.config", "ssl.key.password", LISTENER_JAAS):
        entry = found[name]
        assert (entry["value"], entry["is_sensitive"]) == (None, True), name
        assert entry["config_source"] == "STATIC_BROKER_CONFIG", name
        assert all(s["value"] is None for s in entry["synonyms"]), name
    assert found["ssl.key.password"]["config_type"] == "PASSWORD"
    assert found["listener.security.protocol.map"]["value"] == PROTOCOL_MAP


def _refusal(admin: AdminClient, resource: ConfigResource, incremental: bool) -> KafkaError:
    call = admin.incremental_alter_configs if incremental else admin.alter_configs
    with pytest.raises(KafkaException) as refused:
        call([resource])[resource].result(timeout=TIMEOUT_S)
    error: KafkaError = refused.value.args[0]
    return error


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")
@pytest.mark.parametrize(
    "name", ["ssl.key.password", "sasl.enabled.mechanisms", "listener.name.ssl.ssl.client.auth"]
)
def test_alter_is_refused_as_read_only(admin: AdminClient, name: str) -> None:
    """Setting a security property or a per-listener override, incrementally or not, is
    refused with Kafka's INVALID_REQUEST for a config that cannot change dynamically,
    and the refusal does not echo the value."""
    entry = ConfigEntry(name, "changed-secret", incremental_operation=AlterConfigOpType.SET)
    for incremental in (True, False):
        resource = (
            ConfigResource("broker", "1", incremental_configs=[entry])
            if incremental
            else ConfigResource("broker", "1", set_config={name: "changed-secret"})
        )
        error = _refusal(admin, resource, incremental)
        assert error.code() == KafkaError.INVALID_REQUEST
        assert "Cannot update these configs dynamically" in error.str()
        assert "changed-secret" not in error.str()
    assert not [e for e in _describe(admin).values() if e.source == DYNAMIC_BROKER_CONFIG]


def test_unknown_listener_property_is_invalid_config(admin: AdminClient) -> None:
    """A per-listener override of a property odradek does not know is INVALID_CONFIG,
    as any unknown broker property."""
    entry = ConfigEntry(
        "listener.name.ssl.no.such.property", "1", incremental_operation=AlterConfigOpType.SET
    )
    resource = ConfigResource("broker", "1", incremental_configs=[entry])
    assert _refusal(admin, resource, True).code() == KafkaError.INVALID_CONFIG
