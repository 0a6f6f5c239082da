"""The client side of the inter-broker listener (`inter.broker.listener.name`): how this
broker connects to the others for replication, transaction markers and the like.

- TLS (SSL, SASL_SSL): the peer's certificate is checked against the listener's
  truststore (and its host name, unless `ssl.endpoint.identification.algorithm` is
  empty); the listener's keystore is presented as the client certificate (mTLS).
- SASL (SASL_PLAINTEXT, SASL_SSL): `sasl.mechanism.inter.broker.protocol` (PLAIN,
  SCRAM-SHA-256 or SCRAM-SHA-512) with the `username` and `password` options of the
  listener's JAAS entry for that mechanism, as Kafka's brokers log in.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import ssl

from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

from odradek.config import BrokerConfig, ConfigError
from odradek.replication.client import BrokerClient, BrokerClientError, ClientTransport
from odradek.security.jaas import parse_jaas
from odradek.security.listeners import listener_property, listener_specs
from odradek.security.mechanisms import jaas_config
from odradek.security.scram_store import MECHANISMS as SCRAM_MECHANISMS
from odradek.security.scram_store import hash_name


def _client_ssl(config: BrokerConfig, listener: str) -> ssl.SSLContext:
    def prop(name: str) -> str | None:
        return listener_property(config, listener, name) or None

    context = ssl.create_default_context(
        cafile=prop("ssl.truststore.location"), cadata=prop("ssl.truststore.certificates")
    )
    algorithm = listener_property(config, listener, "ssl.endpoint.identification.algorithm")
    context.check_hostname = (algorithm if algorithm is not None else "https").lower() == "https"
    keystore = prop("ssl.keystore.location")
    if keystore is not None:
        password = prop("ssl.key.password") or prop("ssl.keystore.password")
        context.load_cert_chain(keystore, password=password)
    return context


async def _authenticate(client: BrokerClient, mechanism: str, username: str, password: str) -> None:
    handshake = await client.request(SaslHandshakeRequest(mechanism=mechanism), 1)
    if handshake.error_code:
        raise BrokerClientError(f"SaslHandshake for {mechanism}: {handshake.error_code.name}")
    if mechanism == "PLAIN":
        await _token(client, f"\0{username}\0{password}".encode())
        return
    digest = hash_name(mechanism)
    nonce = base64.b64encode(os.urandom(24)).decode()
    name = username.replace("=", "=3D").replace(",", "=2C")
    first_bare = f"n={name},r={nonce}"
    server_first = (await _token(client, f"n,,{first_bare}".encode())).decode()
    fields = dict(part.split("=", 1) for part in server_first.split(","))
    if not fields.get("r", "").startswith(nonce):
        raise BrokerClientError("SCRAM: the server's nonce does not extend ours")
    salted = hashlib.pbkdf2_hmac(
        digest, password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = hmac.new(salted, b"Client Key", digest).digest()
    without_proof = f"c=biws,r={fields['r']}"
    auth = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(hashlib.new(digest, client_key).digest(), auth, digest).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    final = f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
    server_final = (await _token(client, final)).decode()
    server_key = hmac.new(salted, b"Server Key", digest).digest()
    expected = base64.b64encode(hmac.new(server_key, auth, digest).digest()).decode()
    if not hmac.compare_digest(server_final, f"v={expected}"):
        raise BrokerClientError("SCRAM: the server's signature does not verify")


async def _token(client: BrokerClient, token: bytes) -> bytes:
    response = await client.request(SaslAuthenticateRequest(auth_bytes=token), 2)
    if response.error_code:
        raise BrokerClientError(f"SASL login refused: {response.error_message}")
    return bytes(response.auth_bytes)


def inter_broker_transport(config: BrokerConfig) -> ClientTransport:
    """How this broker reaches the others; plain TCP on a PLAINTEXT listener."""
    name = (config.inter_broker_listener_name or "").upper()
    specs = {spec.name: spec for spec in listener_specs(config)}
    # Unset: Kafka's security.inter.broker.protocol default, the PLAINTEXT listener (or,
    # as the other brokers are reached at their first endpoint then, the first one).
    spec = specs.get(name) if name else specs.get("PLAINTEXT", next(iter(specs.values()), None))
    if spec is None:
        raise ConfigError(f"inter.broker.listener.name {name} is not one of listeners")
    context = _client_ssl(config, spec.name) if spec.uses_ssl else None
    if not spec.uses_sasl:
        return ClientTransport(context)
    mechanism = (config.sasl_mechanism_inter_broker_protocol or "").upper()
    if mechanism not in ("PLAIN", *SCRAM_MECHANISMS):
        raise ConfigError(
            f"inter-broker listener {spec.name} uses SASL: set "
            "sasl.mechanism.inter.broker.protocol to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
        )
    jaas = jaas_config(config, spec.name, mechanism)
    options = parse_jaas(jaas).options if jaas else {}
    if "username" not in options or "password" not in options:
        raise ConfigError(
            f"inter-broker listener {spec.name}: the {mechanism} sasl.jaas.config needs "
            'username="..." password="..." (the login of this broker)'
        )
    username, password = options["username"], options["password"]
    login = functools.partial(
        _authenticate, mechanism=mechanism, username=username, password=password
    )
    return ClientTransport(context, login)
