"""The SASL mechanisms a listener offers (`sasl.enabled.mechanisms`) and how each one's
server side is made from the broker's configuration."""

from __future__ import annotations

import functools
import time

from odradek.config import BrokerConfig, ConfigError
from odradek.security.listeners import listener_property
from odradek.security.oauthbearer import OAuthBearerServer, oauth_settings
from odradek.security.sasl import MechanismFactory
from odradek.security.sasl_plain import PlainServer, file_users, plain_users
from odradek.security.scram import ScramServer
from odradek.security.scram_store import MECHANISMS as SCRAM_MECHANISMS
from odradek.security.scram_store import ScramCredentials

SUPPORTED = ("PLAIN", *SCRAM_MECHANISMS, "OAUTHBEARER")


def _now_ms() -> int:
    return int(time.time() * 1000)


def enabled_mechanisms(config: BrokerConfig, listener: str) -> list[str]:
    value = listener_property(config, listener, "sasl.enabled.mechanisms") or ""
    return [part.strip().upper() for part in value.split(",") if part.strip()]


def jaas_config(config: BrokerConfig, listener: str, mechanism: str) -> str | None:
    """`listener.name.<l>.<mechanism>.sasl.jaas.config`, else `sasl.jaas.config`."""
    key = f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config"
    specific = config.unknown.get(key)
    if specific is not None:
        return specific
    return listener_property(config, listener, "sasl.jaas.config")


def mechanism_factories(
    config: BrokerConfig, listener: str, scram: ScramCredentials
) -> dict[str, MechanismFactory]:
    """Mechanism name -> a maker of its server side, for a SASL listener; ConfigError
    for a mechanism odradek does not have or a configuration it cannot use. SCRAM
    exchanges read the broker's `scram` credentials."""
    enabled = enabled_mechanisms(config, listener)
    if not enabled:
        raise ConfigError(f"listener {listener}: sasl.enabled.mechanisms is empty")
    factories: dict[str, MechanismFactory] = {}
    for mechanism in enabled:
        if mechanism == "PLAIN":
            jaas = jaas_config(config, listener, mechanism)
            users_file = listener_property(config, listener, "sasl.plain.users.file")
            if jaas is None and not users_file:
                raise ConfigError(
                    f"listener {listener}: PLAIN needs users in "
                    f"listener.name.{listener.lower()}.plain.sasl.jaas.config, "
                    "sasl.jaas.config or sasl.plain.users.file"
                )
            users = plain_users(jaas) if jaas is not None else {}
            if users_file:
                users.update(file_users(users_file))
            factories[mechanism] = functools.partial(PlainServer, users)
        elif mechanism in SCRAM_MECHANISMS:
            factories[mechanism] = functools.partial(ScramServer, mechanism, scram)
        elif mechanism == "OAUTHBEARER":
            settings = oauth_settings(config, listener)
            factories[mechanism] = functools.partial(OAuthBearerServer, settings, _now_ms)
        else:
            raise ConfigError(
                f"listener {listener}: SASL mechanism {mechanism} is not supported "
                f"(supported: {', '.join(SUPPORTED)})"
            )
    return factories
