"""TLS for SSL and SASL_SSL listeners with Python's ssl module, from Kafka's PEM
properties (`ssl.keystore.type=PEM`):

- `ssl.keystore.location`: a PEM file with the private key and the certificate chain
  (the key encrypted with `ssl.key.password`, if at all), or the same inline in
  `ssl.keystore.key` and `ssl.keystore.certificate.chain`;
- `ssl.truststore.location` (PEM CA certificates) or `ssl.truststore.certificates`:
  whom client certificates must be signed by;
- `ssl.client.auth`: none, requested (a certificate is checked when given) or required;
- `ssl.enabled.protocols`: TLSv1.2 and/or TLSv1.3.

`TlsListener.reload_if_changed()` loads a changed keystore into the same context (new
handshakes use it, open connections keep theirs) and adds the CAs of a changed
truststore; the broker calls it every few seconds. The principal of a connection with a
client certificate comes from its subject through `ssl.principal.mapping.rules`.
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
from dataclasses import dataclass, field

from odradek.config import BrokerConfig, ConfigError
from odradek.security.listeners import listener_property
from odradek.security.principal_mapping import PrincipalMapper

log = logging.getLogger("odradek.tls")

_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_CLIENT_AUTH = {
    "none": ssl.CERT_NONE,
    "requested": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}


@dataclass(slots=True)
class TlsSettings:
    keystore_location: str | None
    keystore_inline: tuple[str, str] | None  # (certificate chain, key) PEM text
    key_password: str | None
    truststore_location: str | None
    truststore_inline: str | None
    client_auth: str
    versions: list[ssl.TLSVersion]
    mapping_rules: str
    # Modification times of the files last loaded, for reload_if_changed.
    mtimes: dict[str, float] = field(default_factory=dict)


def _settings(config: BrokerConfig, listener: str) -> TlsSettings:
    def prop(name: str) -> str | None:
        value = listener_property(config, listener, name)
        return value if value else None

    for kind in ("keystore", "truststore"):
        store_type = (prop(f"ssl.{kind}.type") or "PEM").upper()
        given = prop(f"ssl.{kind}.location") or prop(
            "ssl.keystore.key" if kind == "keystore" else "ssl.truststore.certificates"
        )
        if given and store_type != "PEM":
            raise ConfigError(
                f"listener {listener}: ssl.{kind}.type={store_type} is not supported; "
                f"odradek reads PEM stores (ssl.{kind}.type=PEM)"
            )
    chain, key = prop("ssl.keystore.certificate.chain"), prop("ssl.keystore.key")
    if prop("ssl.keystore.location") is None and (chain is None or key is None):
        raise ConfigError(
            f"listener {listener}: TLS needs ssl.keystore.location (PEM key and certificate "
            "chain) or ssl.keystore.key with ssl.keystore.certificate.chain"
        )
    client_auth = (prop("ssl.client.auth") or "none").lower()
    if client_auth not in _CLIENT_AUTH:
        raise ConfigError(f"ssl.client.auth must be none, requested or required: {client_auth}")
    versions = []
    for name in (prop("ssl.enabled.protocols") or "TLSv1.2,TLSv1.3").split(","):
        version = _VERSIONS.get(name.strip())
        if version is None:
            raise ConfigError(f"ssl.enabled.protocols: {name.strip()} (TLSv1.2, TLSv1.3)")
        versions.append(version)
    return TlsSettings(
        keystore_location=prop("ssl.keystore.location"),
        keystore_inline=(chain, key) if chain and key else None,
        key_password=prop("ssl.key.password") or prop("ssl.keystore.password"),
        truststore_location=prop("ssl.truststore.location"),
        truststore_inline=prop("ssl.truststore.certificates"),
        client_auth=client_auth,
        versions=versions,
        mapping_rules=prop("ssl.principal.mapping.rules") or "DEFAULT",
    )


class TlsListener:
    """The TLS side of one listener: its context and the principal of a certificate."""

    def __init__(self, config: BrokerConfig, listener: str) -> None:
        self.listener = listener
        self.settings = _settings(config, listener)
        self.mapper = PrincipalMapper(self.settings.mapping_rules)
        try:
            # Connections take the context at their handshake: a reload swaps in a new
            # one, so a CA removed from the truststore is no longer trusted by new
            # connections (loading into the old context could only add CAs).
            self.context = self._new_context()
        except (OSError, ssl.SSLError, ValueError) as exc:
            message = f"listener {listener}: cannot load TLS keystore/truststore: {exc}"
            raise ConfigError(message) from None
        if self.context.verify_mode != ssl.CERT_NONE and not self._has_truststore():
            raise ConfigError(
                f"listener {listener}: ssl.client.auth={self.settings.client_auth} needs "
                "ssl.truststore.location or ssl.truststore.certificates"
            )

    def _new_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = min(self.settings.versions)
        context.maximum_version = max(self.settings.versions)
        context.verify_mode = _CLIENT_AUTH[self.settings.client_auth]
        self._load_keystore(context)
        self._load_truststore(context)
        return context

    def _has_truststore(self) -> bool:
        return bool(self.settings.truststore_location or self.settings.truststore_inline)

    def _load_keystore(self, context: ssl.SSLContext) -> None:
        s = self.settings
        if s.keystore_location is not None:
            context.load_cert_chain(s.keystore_location, password=s.key_password)
            s.mtimes[s.keystore_location] = os.stat(s.keystore_location).st_mtime
            return
        assert s.keystore_inline is not None
        chain, key = s.keystore_inline
        # ssl loads certificates and keys from files only: a private temporary file,
        # removed at once.
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as pem:
            os.chmod(pem.name, 0o600)
            pem.write(key.strip() + "\n" + chain.strip() + "\n")
            pem.flush()
            context.load_cert_chain(pem.name, password=s.key_password)

    def _load_truststore(self, context: ssl.SSLContext) -> None:
        s = self.settings
        if s.truststore_location is not None:
            context.load_verify_locations(cafile=s.truststore_location)
            s.mtimes[s.truststore_location] = os.stat(s.truststore_location).st_mtime
        if s.truststore_inline is not None:
            context.load_verify_locations(cadata=s.truststore_inline)

    def reload_if_changed(self) -> bool:
        """Reloads the keystore and truststore files when one changed since it was
        loaded; a file that fails to load leaves the current ones in use (logged)."""
        s = self.settings
        changed = False
        for path, loaded in list(s.mtimes.items()):
            try:
                changed = changed or os.stat(path).st_mtime != loaded
            except OSError:
                continue  # being replaced: try again next time
        if not changed:
            return False
        try:
            context = self._new_context()
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.error("listener %s: TLS files changed but do not load: %s", self.listener, exc)
            return False
        self.context = context
        log.info("listener %s: TLS keystore/truststore reloaded", self.listener)
        return True

    def principal(self, certificate_der: bytes | None) -> str | None:
        """`User:<mapped subject>` for a client certificate; None without one."""
        if not certificate_der:
            return None
        from cryptography import x509  # only listeners with client certificates need it

        subject = x509.load_der_x509_certificate(certificate_der).subject.rfc4514_string()
        return f"User:{self.mapper.map(subject)}"
