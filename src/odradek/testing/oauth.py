"""A throwaway OAuth token issuer for tests (made with `cryptography`): an RSA key, its
JWKS file for `sasl.oauthbearer.jwks.endpoint.url`, and signed JWTs with chosen claims.

```python
issuer = TokenIssuer(directory)
config = {"sasl.oauthbearer.jwks.endpoint.url": issuer.jwks_url,
          "sasl.oauthbearer.expected.audience": "odradek"}
token = issuer.token("alice", audience="odradek", lifetime_s=300)
```
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64int(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class TokenIssuer:
    """Signs RS256 JWTs; its public key is in `jwks_path` (kid `key_id`)."""

    def __init__(self, directory: str | os.PathLike[str], key_id: str = "test-key") -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = key_id
        numbers = self._key.public_key().public_numbers()
        jwks = {
            "keys": [
                {
                    "kty": "RSA",
                    "kid": key_id,
                    "use": "sig",
                    "alg": "RS256",
                    "n": _b64int(numbers.n),
                    "e": _b64int(numbers.e),
                }
            ]
        }
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.jwks_path = str(Path(directory) / f"{key_id}.jwks.json")
        Path(self.jwks_path).write_text(json.dumps(jwks))

    @property
    def jwks_url(self) -> str:
        return Path(self.jwks_path).resolve().as_uri()

    def token(
        self,
        subject: str,
        audience: str | None = None,
        lifetime_s: float = 300,
        issuer: str | None = None,
        **claims: Any,
    ) -> str:
        """A signed token for `subject`; a negative lifetime makes one already expired."""
        now = time.time()
        payload: dict[str, Any] = {"sub": subject, "iat": int(now), "exp": int(now + lifetime_s)}
        if audience is not None:
            payload["aud"] = audience
        if issuer is not None:
            payload["iss"] = issuer
        payload.update(claims)
        header = {"alg": "RS256", "typ": "JWT", "kid": self.key_id}
        signed = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(payload).encode())}"
        signature = self._key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signed}.{_b64url(signature)}"


def unsecured_token(subject: str, lifetime_s: float = 300) -> str:
    """An unsigned (`alg: none`) token, Kafka's development form."""
    now = time.time()
    header = _b64url(json.dumps({"alg": "none"}).encode())
    payload = _b64url(
        json.dumps({"sub": subject, "iat": int(now), "exp": int(now + lifetime_s)}).encode()
    )
    return f"{header}.{payload}."
