"""The security properties (docs/security.md) as the configs APIs describe them:
listeners' protocols, TLS, SASL, the authorizer and connection limits, with Kafka's
types and defaults. All are read-only: odradek reads them at start-up only.

Kafka's PASSWORD properties are `sensitive`: DescribeConfigs says so and never returns
their values, nor those of their per-listener overrides or synonyms.
"""

from __future__ import annotations

from odradek.metadata.broker_config_def import BrokerConfigDef

# Kafka's per-listener override syntax: `listener.name.<listener>.<property>`.
LISTENER_PREFIX = "listener.name."

# Properties Kafka also takes per listener *and* mechanism:
# `listener.name.<listener>.<mechanism>.<property>`.
MECHANISM_CONFIGS = ("sasl.jaas.config", "connections.max.reauth.ms")


def _r(name: str, kind: str, doc: str, default: str | None = None) -> BrokerConfigDef:
    return BrokerConfigDef(name, kind, doc, default_value=default)


def _secret(name: str, doc: str) -> BrokerConfigDef:
    return BrokerConfigDef(name, "password", doc, sensitive=True)


SECURITY_CONFIGS = [
    # Listeners and connections.
    _r(
        "listener.security.protocol.map",
        "string",
        "Each listener name's security protocol, as NAME:PROTOCOL pairs.",
    ),
    _r(
        "max.connections.per.ip.overrides",
        "string",
        "Per-address limits (host:count,...) replacing max.connections.per.ip.",
    ),
    _r(
        "connection.failed.authentication.delay.ms",
        "int",
        "How long a connection whose authentication failed waits before it is closed.",
    ),
    _r(
        "connections.max.reauth.ms",
        "long",
        "Longest a SASL session lasts before the client must re-authenticate (0: forever).",
    ),
    # SASL.
    _r("sasl.enabled.mechanisms", "list", "SASL mechanisms the SASL listeners accept."),
    _secret(
        "sasl.jaas.config",
        "JAAS login configuration (for PLAIN, the users and their passwords).",
    ),
    _r(
        "sasl.server.max.receive.size",
        "int",
        "Largest frame a SASL listener reads before authentication completes.",
    ),
    _r(
        "sasl.mechanism.inter.broker.protocol",
        "string",
        "The SASL mechanism brokers log in to each other with.",
    ),
    _r(
        "sasl.plain.users.file",
        "string",
        "A file of name=password lines adding PLAIN users (an odradek property).",
    ),
    _r(
        "sasl.oauthbearer.jwks.endpoint.url",
        "string",
        "The identity provider's public keys (a JWKS file) OAUTHBEARER tokens are checked with.",
    ),
    _r(
        "sasl.oauthbearer.public.key.location",
        "string",
        "A PEM public key OAUTHBEARER tokens are checked with, instead of a JWKS "
        "(an odradek property).",
    ),
    _r(
        "sasl.oauthbearer.expected.audience",
        "list",
        "Audiences a token must name one of (checked when set).",
    ),
    _r("sasl.oauthbearer.expected.issuer", "string", "Issuer a token must name (when set)."),
    _r(
        "sasl.oauthbearer.sub.claim.name",
        "string",
        "The token claim naming the principal.",
        "sub",
    ),
    _r(
        "sasl.oauthbearer.clock.skew.seconds",
        "int",
        "Clock difference tolerated when checking a token's times.",
        "30",
    ),
    _r(
        "sasl.oauthbearer.unsecured.jwt.allowed",
        "bool",
        "Accept unsigned tokens, for development only (an odradek property).",
        "false",
    ),
    # TLS.
    _r("ssl.keystore.type", "string", "Format of the keystore (odradek reads PEM)."),
    _r("ssl.keystore.location", "string", "File holding the broker's key and certificate chain."),
    _secret("ssl.keystore.password", "Password of the keystore file."),
    _secret("ssl.key.password", "Password of the private key in the keystore."),
    _secret("ssl.keystore.key", "The broker's private key in PEM, inline."),
    _secret("ssl.keystore.certificate.chain", "The broker's certificate chain in PEM, inline."),
    _r("ssl.truststore.type", "string", "Format of the truststore (odradek reads PEM)."),
    _r("ssl.truststore.location", "string", "File of the CA certificates trusted."),
    _secret(
        "ssl.truststore.password",
        "Password of the truststore file (unused: PEM truststores have none).",
    ),
    _secret("ssl.truststore.certificates", "The trusted CA certificates in PEM, inline."),
    _r(
        "ssl.client.auth",
        "string",
        "Whether TLS listeners ask clients for certificates (none, requested, required).",
    ),
    _r("ssl.enabled.protocols", "list", "TLS versions the listeners accept."),
    _r(
        "ssl.endpoint.identification.algorithm",
        "string",
        "Check the host name of a broker connected to (https) or not (empty).",
        "https",
    ),
    _r(
        "ssl.principal.mapping.rules",
        "string",
        "Rules mapping a client certificate's subject to a principal name.",
    ),
    # Authorization.
    _r(
        "authorizer.class.name",
        "string",
        "The authorizer; Kafka's standard ones turn on ACL checks (empty: none).",
    ),
    _r("super.users", "string", "Principals allowed everything (User:a;User:b)."),
    _r(
        "allow.everyone.if.no.acl.found",
        "bool",
        "Allow a resource with no ACL to everyone.",
    ),
]
