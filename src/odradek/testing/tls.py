"""A throwaway certificate authority for tests (made with `cryptography`): a CA, a
broker certificate for 127.0.0.1 and localhost, and client certificates, as PEM files
in a directory of the caller's.

```python
ca = TestCA(directory)
broker_keystore = ca.issue("broker", server=True).keystore   # key + chain, one PEM file
alice = ca.issue("alice")                                     # client: cert, key files
```
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Issued:
    """PEM files of one issued certificate."""

    certificate: str  # the certificate alone
    key: str  # its private key (encrypted when issued with a password)
    keystore: str  # key and certificate chain in one file (Kafka's PEM keystore)
    subject: str  # RFC 2253 form, as ssl.principal.mapping.rules sees it


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


class TestCA:
    """A CA whose files live in `directory`: `ca.certificate` is the truststore."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: str | os.PathLike[str], name: str = "odradek test CA") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(name, "odradek tests")
        now = datetime.datetime.now(datetime.UTC)
        self._certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.certificate = str(self.directory / "ca.pem")
        self._write(self.certificate, self._pem(self._certificate))

    @staticmethod
    def _pem(certificate: x509.Certificate) -> bytes:
        return certificate.public_bytes(serialization.Encoding.PEM)

    @staticmethod
    def _write(path: str, data: bytes) -> None:
        # Written aside and renamed: a reloading broker never sees half a file.
        partial = path + ".partial"
        with open(partial, "wb") as out:
            out.write(data)
        os.chmod(partial, 0o600)
        os.replace(partial, path)

    def issue(
        self,
        common_name: str,
        *,
        server: bool = False,
        password: str | None = None,
        organization: str = "odradek tests",
        file_name: str | None = None,
        expired: bool = False,
    ) -> Issued:
        """A certificate signed by this CA: for a server (127.0.0.1 and localhost as
        subject alternative names) or a client. `expired` makes one already out of date."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        start, end = now - datetime.timedelta(minutes=5), now + VALIDITY
        if expired:
            start, end = now - 2 * VALIDITY, now - VALIDITY
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, organization))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            names: list[x509.GeneralName] = [
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self._key, hashes.SHA256())
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        base = str(self.directory / (file_name or common_name))
        cert_pem = self._pem(certificate)
        self._write(base + ".crt", cert_pem)
        self._write(base + ".key", key_pem)
        self._write(base + ".keystore.pem", key_pem + cert_pem + self._pem(self._certificate))
        return Issued(
            base + ".crt",
            base + ".key",
            base + ".keystore.pem",
            certificate.subject.rfc4514_string(),
        )
