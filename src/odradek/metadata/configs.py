"""Config resolution for the configs APIs (DescribeConfigs, AlterConfigs,
IncrementalAlterConfigs): what each topic and broker config is, where its value comes
from (Kafka's config sources and synonyms), and how a requested change is checked.

Topic overrides live in TopicInfo.configs; dynamic broker properties in
MetadataStore.broker_configs ("" = cluster-wide defaults, "<node id>" = one broker).
Precedence, as in Kafka: topic override, then for each broker synonym in order its
per-broker dynamic value, cluster-default dynamic value, startup value, default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from odradek.config import BrokerConfig, property_value
from odradek.metadata.broker_config_def import BrokerConfigDef
from odradek.metadata.broker_configs import (
    BROKER_CONFIGS,
    broker_synonyms,
    is_broker_config,
    listener_base,
)
from odradek.metadata.image import TopicImage
from odradek.metadata.security_configs import LISTENER_PREFIX
from odradek.metadata.store import TopicInfo
from odradek.metadata.topic_config import (
    TOPIC_CONFIGS,
    InvalidConfigError,
    check_value,
    topic_default,
)

# DescribeConfigs config sources
DYNAMIC_TOPIC_CONFIG = 1
DYNAMIC_BROKER_CONFIG = 2
DYNAMIC_DEFAULT_BROKER_CONFIG = 3
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5

# DescribeConfigs config types (v3+)
CONFIG_TYPES = {
    "bool": 1,
    "string": 2,
    "enum": 2,
    "int": 3,
    "long": 5,
    "double": 6,
    "list": 7,
    "password": 9,
}
UNKNOWN_CONFIG_TYPE = 0

# Resource types
TOPIC = 2
BROKER = 4

Synonym = tuple[str, str | None, int]  # name, value, source


class ConfigApiError(Exception):
    """A refused config operation on one resource, with the Kafka error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One described config, independent of the response version."""

    name: str
    value: str | None
    source: int
    read_only: bool
    synonyms: tuple[Synonym, ...]
    config_type: int
    documentation: str
    is_sensitive: bool = False


class ConfigView:
    """Reads configs the way DescribeConfigs reports them, for one broker."""

    def __init__(self, broker: BrokerConfig, store: TopicImage) -> None:
        self.broker = broker
        self.store = store
        self.node_id = broker.node_id

    def _levels(self, name: str, per_broker: bool) -> list[tuple[str | None, int]]:
        """Every value `name` has, highest precedence first, with its source."""
        return [
            (value, source)
            for source in self._sources(per_broker)
            if (value := self._value_at(name, source)) is not None
        ]

    @staticmethod
    def _sources(per_broker: bool) -> tuple[int, ...]:
        """The broker levels in precedence order; the cluster-wide defaults resource
        has no per-broker level."""
        shared = (DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG)
        return (DYNAMIC_BROKER_CONFIG, *shared) if per_broker else shared

    def _value_at(self, name: str, source: int) -> str | None:
        """The value `name` has at one level, None when it has none there (Kafka's
        static level holds only what the broker was started with; the default level
        only properties whose default is not null)."""
        if source == DYNAMIC_BROKER_CONFIG:
            return self.store.broker_configs.get(str(self.node_id), {}).get(name)
        if source == DYNAMIC_DEFAULT_BROKER_CONFIG:
            return self.store.broker_configs.get("", {}).get(name)
        if source == STATIC_BROKER_CONFIG:
            return property_value(self.broker, name)
        definition = BROKER_CONFIGS.get(name)
        return definition.default if definition is not None else None

    def _synonyms(self, name: str, group: tuple[str, ...], per_broker: bool) -> list[Synonym]:
        """The synonyms Kafka lists for broker property `name` of synonym `group`: level
        by level (each property of the group at the per-broker dynamic level, then at
        the cluster-wide one, static, default), starting at the first entry that is
        `name` itself. So `log.retention.ms` lists `log.retention.hours` only when
        `log.retention.ms` has a value at that level or a higher one, and a property
        with no value anywhere lists nothing. Describing the cluster-wide defaults
        (`per_broker` False) keeps only the entries of that level."""
        found: list[Synonym] = [
            (n, value, source)
            for source in self._sources(per_broker=True)
            for n in group
            if (value := self._value_at(n, source)) is not None
        ]
        for index, (n, _value, _source) in enumerate(found):
            if n == name:
                # The cluster-wide defaults resource keeps only its own level.
                return [s for s in found[index:] if per_broker or s[2] in self._sources(False)[:1]]
        return []

    def topic_entries(self, topic: TopicInfo) -> list[ConfigEntry]:
        """Every topic config of `topic`, sorted by name."""
        dynamic = self.store.dynamic_broker_configs(self.node_id)
        entries = []
        for name, definition in sorted(TOPIC_CONFIGS.items()):
            synonyms: list[Synonym] = []
            if name in topic.configs:
                synonyms.append((name, topic.configs[name], DYNAMIC_TOPIC_CONFIG))
            if definition.synonyms:
                # Kafka describes a topic config through its first broker synonym
                # (retention.ms: log.retention.ms) and that property's group.
                group = tuple(s for s, _factor in definition.synonyms)
                synonyms += self._synonyms(group[0], group, per_broker=True)
            value = topic.configs.get(name)
            if value is None:
                value = topic_default(definition, self.broker, dynamic)[0]
            entries.append(
                ConfigEntry(
                    name=name,
                    value=value,
                    source=synonyms[0][2] if synonyms else DEFAULT_CONFIG,
                    read_only=False,
                    synonyms=tuple(synonyms),
                    config_type=CONFIG_TYPES[definition.kind],
                    documentation=definition.doc,
                )
            )
        return entries

    def broker_entries(self, resource: str) -> list[ConfigEntry]:
        """This broker's configs (resource = node id) with the per-listener overrides
        it was started with, or the dynamic cluster-wide defaults (resource ""),
        sorted by name. A secret's value is never returned, not even as a synonym."""
        per_broker = resource != ""
        names = (
            sorted(BROKER_CONFIGS) + self._listener_overrides()
            if per_broker
            else sorted(self.store.broker_configs.get("", {}))
        )
        return sorted((self._broker_entry(name, per_broker) for name in names), key=_by_name)

    def _listener_overrides(self) -> list[str]:
        """The `listener.name.<l>.<property>` properties given at start-up."""
        return [n for n in self.broker.unknown if n.startswith(LISTENER_PREFIX)]

    def _broker_entry(self, name: str, per_broker: bool) -> ConfigEntry:
        definition = _definition(name)
        own = self._levels(name, per_broker)
        synonyms = self._synonyms(name, broker_synonyms(name), per_broker)
        # Kafka treats a property of unknown type as sensitive too.
        sensitive = definition is None or definition.sensitive
        kind = UNKNOWN_CONFIG_TYPE if definition is None else CONFIG_TYPES[definition.kind]
        if sensitive:
            synonyms = [(n, None, source) for n, _value, source in synonyms]
        return ConfigEntry(
            name=name,
            value=None if sensitive or not own else own[0][0],
            source=synonyms[0][2] if synonyms else DEFAULT_CONFIG,
            # A per-listener override is never dynamic: odradek applies none at runtime.
            read_only=name not in BROKER_CONFIGS or not BROKER_CONFIGS[name].dynamic,
            synonyms=tuple(synonyms),
            config_type=kind,
            documentation=_documentation(name, definition),
            is_sensitive=sensitive,
        )


def _by_name(entry: ConfigEntry) -> str:
    return entry.name


def _definition(name: str) -> BrokerConfigDef | None:
    """The definition of a broker property, or of the one a per-listener override
    overrides; None for an override of a property odradek does not know."""
    definition = BROKER_CONFIGS.get(name)
    if definition is not None:
        return definition
    base = listener_base(name)
    return None if base is None else BROKER_CONFIGS[base]


def _documentation(name: str, definition: BrokerConfigDef | None) -> str:
    if definition is None:
        return "A per-listener property odradek does not know."
    if definition.name != name:
        return f"Per-listener {definition.name}: {definition.doc}"
    return definition.doc


def check_topic_configs(configs: Mapping[str, str]) -> None:
    """Raises ConfigApiError (INVALID_CONFIG) unless every name and value is valid."""
    for name, value in configs.items():
        definition = TOPIC_CONFIGS.get(name)
        if definition is None:
            raise ConfigApiError(ErrorCode.invalid_config, f"Unknown topic config name: {name}")
        try:
            check_value(definition, value)
        except InvalidConfigError as exc:
            raise ConfigApiError(ErrorCode.invalid_config, str(exc)) from None


def check_broker_configs(configs: Mapping[str, str]) -> None:
    """Raises ConfigApiError unless every property may be set dynamically to its value.

    Kafka refuses a property that is not dynamic, and a bad value, with INVALID_REQUEST
    (KAFKA-13609); a name Kafka does not know it would store, odradek refuses with
    INVALID_CONFIG (it would have no effect)."""
    unknown = sorted(n for n in configs if not is_broker_config(n))
    if unknown:
        raise ConfigApiError(ErrorCode.invalid_config, f"Unknown broker configs: {unknown}")
    # Per-listener overrides are all read-only: odradek applies none while running.
    fixed = sorted(n for n in configs if n not in BROKER_CONFIGS or not BROKER_CONFIGS[n].dynamic)
    if fixed:
        raise ConfigApiError(
            ErrorCode.invalid_request, f"Cannot update these configs dynamically: {fixed}"
        )
    for name, value in configs.items():
        try:
            check_value(BROKER_CONFIGS[name], value)
        except InvalidConfigError as exc:
            raise ConfigApiError(ErrorCode.invalid_request, str(exc)) from None


def broker_resource(resource_name: str, node_id: int) -> str:
    """The store key of a broker resource: "" or this node's id; INVALID_REQUEST for
    any other name, as a Kafka broker answers for another broker's id."""
    if resource_name == "":
        return ""
    try:
        named = int(resource_name)
    except ValueError:
        raise ConfigApiError(
            ErrorCode.invalid_request, f"Broker id must be an integer, but it is: {resource_name}"
        ) from None
    if named != node_id:
        raise ConfigApiError(
            ErrorCode.invalid_request,
            f"Unexpected broker id, expected {node_id} or empty string, but received {named}",
        )
    return str(named)


def list_kind(resource_type: int, name: str) -> bool:
    """Whether APPEND/SUBTRACT may be used on this config (LIST type only)."""
    if resource_type == TOPIC:
        topic_def = TOPIC_CONFIGS.get(name)
        return topic_def is not None and topic_def.kind == "list"
    broker_def = BROKER_CONFIGS.get(name)
    return broker_def is not None and broker_def.kind == "list"


def list_default(resource_type: int, name: str) -> str:
    """The default a LIST config starts from when APPEND/SUBTRACT find it unset."""
    if resource_type == TOPIC:
        return TOPIC_CONFIGS[name].default(BrokerConfig())
    return BROKER_CONFIGS[name].default or ""
