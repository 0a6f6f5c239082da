"""The config view's security properties without a broker: per-listener and
per-mechanism overrides with their synonyms, secrets hidden at every level (also a
dynamic one another tool wrote), and the read-only check of AlterConfigs."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode

from odradek.config import build_config
from odradek.metadata.broker_configs import listener_base
from odradek.metadata.configs import (
    DYNAMIC_BROKER_CONFIG,
    DYNAMIC_DEFAULT_BROKER_CONFIG,
    STATIC_BROKER_CONFIG,
    ConfigApiError,
    ConfigEntry,
    ConfigView,
    check_broker_configs,
)
from odradek.metadata.store import MetadataStore
from odradek.storage.memory_fs import MemoryFileSystem

MECHANISM_JAAS = "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"


def _entries(static: dict[str, str], dynamic: dict[str, dict[str, str]]) -> dict[str, ConfigEntry]:
    store = MetadataStore(MemoryFileSystem(), "/data")
    for resource, configs in dynamic.items():
        store.set_broker_configs(resource, configs)
    view = ConfigView(build_config([("node.id", "1"), *static.items()]), store)
    return {e.name: e for e in view.broker_entries("1")}


def test_listener_base_names_the_overridden_property() -> None:
    """`listener.name.<l>.<p>` overrides p; the SASL ones may carry a mechanism; an
    unknown property or a bare prefix overrides nothing."""
    assert listener_base("listener.name.ssl.ssl.client.auth") == "ssl.client.auth"
    assert listener_base(MECHANISM_JAAS) == "sasl.jaas.config"
    assert listener_base("listener.name.ssl.no.such.thing") is None
    assert listener_base("listener.name.ssl") is None
    assert listener_base("ssl.client.auth") is None


def test_secrets_hidden_at_every_level() -> None:
    """A per-mechanism JAAS override is sensitive with its broker-wide synonym, both
    without values; a secret stored dynamically (per broker or cluster-wide) is hidden
    as well; an override of an unknown property is sensitive with type UNKNOWN."""
    static = {MECHANISM_JAAS: "a-jaas", "sasl.jaas.config": "b-jaas", "listener.name.x.y.z": "v"}
    found = _entries(
        static,
        {"1": {"ssl.keystore.password": "p1"}, "": {"ssl.keystore.password": "p2"}},
    )
    jaas = found[MECHANISM_JAAS]
    assert (jaas.value, jaas.is_sensitive, jaas.read_only) == (None, True, True)
    assert jaas.synonyms == (
        (MECHANISM_JAAS, None, STATIC_BROKER_CONFIG),
        ("sasl.jaas.config", None, STATIC_BROKER_CONFIG),
    )
    keystore = found["ssl.keystore.password"]
    assert keystore.value is None and keystore.config_type == 9  # PASSWORD
    assert keystore.synonyms == (
        ("ssl.keystore.password", None, DYNAMIC_BROKER_CONFIG),
        ("ssl.keystore.password", None, DYNAMIC_DEFAULT_BROKER_CONFIG),
    )
    unknown = found["listener.name.x.y.z"]
    assert (unknown.value, unknown.is_sensitive, unknown.config_type) == (None, True, 0)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("ssl.keystore.location", ErrorCode.invalid_request),
        ("listener.name.ssl.ssl.keystore.location", ErrorCode.invalid_request),
        ("listener.name.ssl.log.retention.ms", ErrorCode.invalid_request),
        (MECHANISM_JAAS, ErrorCode.invalid_request),
        ("listener.name.ssl.no.such.thing", ErrorCode.invalid_config),
    ],
)
def test_alter_refuses_security_properties(name: str, code: ErrorCode) -> None:
    """Security properties and every per-listener override are read-only
    (INVALID_REQUEST, Kafka's answer for a property it cannot change dynamically);
    an override of an unknown property is INVALID_CONFIG."""
    with pytest.raises(ConfigApiError) as refused:
        check_broker_configs({name: "x"})
    assert refused.value.code == code
