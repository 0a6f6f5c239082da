"""What a connection needs to know about its listener's security: its name and protocol,
the SASL mechanisms it offers (None without SASL), and its TLS side (None without TLS).
Built once per listener at start-up; connections share it."""

from __future__ import annotations

from dataclasses import dataclass

from odradek.config import BrokerConfig
from odradek.security.listeners import ListenerSpec, listener_specs
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
        result.append(ListenerSecurity(spec, mechanisms, tls))
    return result
