"""JSON Web Tokens (RFC 7519) as OAUTHBEARER carries them: a signed JWS in compact form
(`header.payload.signature`, base64url), checked against public keys from a JWKS file
(RFC 7517) or a PEM file, with `cryptography`. RS256/384/512, PS256/384/512 and
ES256/384/512 are accepted; `none` only where the caller allows unsecured tokens.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class TokenError(Exception):
    """The token is not acceptable; the text says why (sent to the client)."""


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("malformed base64url in token") from None


def _int(text: str) -> int:
    return int.from_bytes(b64url_decode(text), "big")


def _jwk_key(jwk: dict[str, Any]) -> PublicKey:
    if jwk.get("kty") == "RSA":
        return rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
    if jwk.get("kty") == "EC":
        curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
        curve = curves[jwk["crv"]]
        return ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]), curve).public_key()
    raise ValueError(f"unsupported key type {jwk.get('kty')!r}")


@dataclass(slots=True)
class KeySet:
    """Public keys by key id ("" for a key without one)."""

    keys: dict[str, PublicKey]

    @classmethod
    def from_jwks(cls, text: str) -> KeySet:
        document = json.loads(text)
        keys = {}
        for jwk in document.get("keys", []):
            if jwk.get("use", "sig") != "sig":
                continue
            keys[str(jwk.get("kid", ""))] = _jwk_key(jwk)
        if not keys:
            raise ValueError("the JWKS has no signing keys")
        return cls(keys)

    @classmethod
    def from_pem(cls, data: bytes) -> KeySet:
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise ValueError("the PEM key is neither RSA nor EC")
        return cls({"": key})

    def find(self, kid: str | None) -> PublicKey:
        if kid is not None and kid in self.keys:
            return self.keys[kid]
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        raise TokenError(f"no key with id {kid!r} to check the token's signature")


def _verify(key: PublicKey, alg: str, signed: bytes, signature: bytes) -> None:
    family, bits = alg[:2], alg[2:]
    digest = _HASHES.get(bits)
    if digest is None:
        raise TokenError(f"unsupported JWT algorithm {alg!r}")
    try:
        if family == "RS" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), digest())
        elif family == "PS" and isinstance(key, rsa.RSAPublicKey):
            pss = padding.PSS(mgf=padding.MGF1(digest()), salt_length=digest().digest_size)
            key.verify(signature, signed, pss, digest())
        elif family == "ES" and isinstance(key, ec.EllipticCurvePublicKey):
            half = len(signature) // 2
            der = encode_dss_signature(
                int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
            )
            key.verify(der, signed, ec.ECDSA(digest()))
        else:
            raise TokenError(f"JWT algorithm {alg!r} does not fit the key")
    except InvalidSignature:
        raise TokenError("the token's signature does not verify") from None


def decode(token: str, keys: KeySet | None, allow_unsecured: bool) -> dict[str, Any]:
    """The claims of a token whose signature verifies (`keys`), or of an unsigned one
    (`alg: none`) when `allow_unsecured`; TokenError otherwise. Times are the caller's."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("the token is not a compact JWS (header.payload.signature)")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except ValueError:
        raise TokenError("the token's header or payload is not JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("the token's header and payload must be JSON objects")
    alg = str(header.get("alg", ""))
    if alg == "none":
        if not allow_unsecured:
            raise TokenError("unsecured (alg none) tokens are not accepted")
        return claims
    if keys is None:
        raise TokenError("no keys are configured to check signed tokens")
    kid = header.get("kid")
    key = keys.find(None if kid is None else str(kid))
    signed = f"{parts[0]}.{parts[1]}".encode()
    _verify(key, alg, signed, b64url_decode(parts[2]))
    return claims
