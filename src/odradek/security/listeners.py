"""Listeners: their names, security protocols (`listener.security.protocol.map`) and
per-listener properties (`listener.name.<name>.<property>`, Kafka's override syntax).

A listener is `NAME://host:port`; its name maps to one of Kafka's four security
protocols. With Kafka's default map a listener named after a protocol uses it, so
`SASL_SSL://:9094` needs no map entry; any other name (`INTERNAL://...`) must be mapped.
"""

from __future__ import annotations

from dataclasses import dataclass

from odradek.config import (
    BrokerConfig,
    ConfigError,
    default_property_value,
    parse_listener,
    property_value,
)

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


@dataclass(frozen=True, slots=True)
class ListenerSpec:
    """One entry of `listeners`, with its security protocol."""

    name: str
    host: str
    port: int
    protocol: str

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def uses_ssl(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")


def protocol_map(config: BrokerConfig) -> dict[str, str]:
    """`listener.security.protocol.map` as listener name -> protocol."""
    result: dict[str, str] = {}
    for entry in config.listener_security_protocol_map.split(","):
        if not entry.strip():
            continue
        name, colon, protocol = entry.partition(":")
        name, protocol = name.strip().upper(), protocol.strip().upper()
        if not colon or not name or protocol not in PROTOCOLS:
            raise ConfigError(
                f"invalid listener.security.protocol.map entry {entry.strip()!r}: "
                f"expected NAME:PROTOCOL with PROTOCOL one of {', '.join(PROTOCOLS)}"
            )
        result[name] = protocol
    return result


def listener_specs(config: BrokerConfig) -> list[ListenerSpec]:
    """The broker's listeners in the order of `listeners`; names are unique."""
    protocols = protocol_map(config)
    specs: list[ListenerSpec] = []
    for listener in config.listeners:
        name, host, port = parse_listener(listener)
        name = name.upper()
        protocol = protocols.get(name)
        if protocol is None:
            raise ConfigError(
                f"listener {name} has no entry in listener.security.protocol.map "
                f"({config.listener_security_protocol_map})"
            )
        if any(spec.name == name for spec in specs):
            raise ConfigError(f"listener name {name} is used twice in listeners")
        specs.append(ListenerSpec(name, host, port, protocol))
    return specs


# Untyped properties the security modules read (beside `listener.name.<l>.` ones).
_UNTYPED_PREFIXES = ("listener.name.", "sasl.oauthbearer.", "ssl.endpoint.identification.")


def is_security_property(name: str) -> bool:
    """Whether the security modules read `name` although config.py does not type it."""
    return name.startswith(_UNTYPED_PREFIXES)


def listener_property(config: BrokerConfig, listener: str, name: str) -> str | None:
    """The value of `name` for `listener`: `listener.name.<listener>.<name>` when given,
    else the broker-wide property (its default when not set)."""
    override = config.unknown.get(f"listener.name.{listener.lower()}.{name}")
    if override is not None:
        return override
    value = property_value(config, name)
    return value if value is not None else default_property_value(name)


def advertised_endpoints(
    config: BrokerConfig, bound: dict[str, tuple[str, int]]
) -> dict[str, tuple[str, int]]:
    """Listener name -> the (host, port) clients are told, in `listeners` order.

    `bound` is where each listener listens. `advertised.listeners` entries replace a
    listener's address; a port 0 there, or an empty host, means the bound one."""
    result = dict(bound)
    for entry in config.advertised_listeners:
        name, host, port = parse_listener(entry)
        name = name.upper()
        if name not in bound:
            raise ConfigError(f"advertised listener {name} is not one of listeners")
        bound_host, bound_port = bound[name]
        result[name] = (host or bound_host, port or bound_port)
    return result
