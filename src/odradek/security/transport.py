"""What a connection needs to know about its listener's security: its name and protocol,
the SASL mechanisms it offers (None without SASL), and its TLS side (None without TLS).
Built once per listener at start-up; connections share it."""

from __future__ import annotations

from dataclasses import dataclass

from odradek.config import BrokerConfig, ConfigError
from odradek.security.listeners import ListenerSpec, listener_property, listener_specs
from odradek.security.mechanisms import mechanism_factories
from odradek.security.sasl import MechanismFactory
from odradek.security.scram_store import ScramCredentials
from odradek.security.tls import TlsListener

ANONYMOUS = "User:ANONYMOUS"


@dataclass(slots=True)
class ListenerSecurity:
    spec: ListenerSpec
    # Mechanism name -> its server side's maker; None on a listener without SASL.
    mechanisms: dict[str, MechanismFactory] | None = None
    tls: TlsListener | None = None
    # connections.max.reauth.ms of this listener (`listener.name.<l>.` prefix honoured).
    max_reauth_ms: int = 0

    @property
    def name(self) -> str:
        return self.spec.name


PLAINTEXT = ListenerSecurity(ListenerSpec("PLAINTEXT", "", 0, "PLAINTEXT"))


def build_listeners(
    config: BrokerConfig, scram: ScramCredentials | None = None
) -> list[ListenerSecurity]:
    """The security of every listener, in `listeners` order; ConfigError when a
    listener's settings cannot work (checked before anything listens). SCRAM
    mechanisms authenticate against `scram`."""
    result = []
    scram = scram if scram is not None else ScramCredentials()
    for spec in listener_specs(config):
        mechanisms = mechanism_factories(config, spec.name, scram) if spec.uses_sasl else None
        tls = TlsListener(config, spec.name) if spec.uses_ssl else None
        reauth = listener_property(config, spec.name, "connections.max.reauth.ms") or "0"
        try:
            max_reauth_ms = int(reauth)
        except ValueError:
            raise ConfigError(
                f"listener {spec.name}: connections.max.reauth.ms {reauth!r}"
            ) from None
        result.append(ListenerSecurity(spec, mechanisms, tls, max_reauth_ms))
    return result
