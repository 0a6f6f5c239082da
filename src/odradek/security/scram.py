"""SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server side, as Kafka runs
it: two round trips, no channel binding, the user's stored credential from
`ScramCredentials` (scram_store.py).

    client-first   n,,n=alice,r=<client nonce>
    server-first   r=<client nonce><server nonce>,s=<salt>,i=<iterations>
    client-final   c=biws,r=<both nonces>,p=<proof>
    server-final   v=<server signature>

The proof is checked against the stored key alone; a wrong proof, a nonce that is not
this exchange's (a replayed final message) or an unknown user all get Kafka's one
message, so the answer tells a guesser nothing. An unknown user is even answered a
server-first message (a salt derived from the name with a secret of this process, so
it is the same each time) and refused only at the end: unlike Kafka, which refuses at
the first message, the exchange does not reveal which names exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from odradek.security.sasl import SaslFailure
from odradek.security.scram_store import ScramCredential, ScramCredentials, hash_name

_DECOY_SECRET = secrets.token_bytes(32)


def _decoy(user: str) -> ScramCredential:
    """A credential no password matches, with a salt stable for `user`."""
    salt = hmac.new(_DECOY_SECRET, user.encode(), "sha256").digest()
    return ScramCredential(salt, secrets.token_bytes(32), secrets.token_bytes(32), 4096)


def _attributes(message: str) -> list[tuple[str, str]]:
    result = []
    for part in message.split(","):
        key, equals, value = part.partition("=")
        if not equals or len(key) != 1:
            raise ValueError(f"bad attribute {part!r}")
        result.append((key, value))
    return result


def _sasl_name(value: str) -> str:
    """RFC 5802's saslname: `=2C` is a comma, `=3D` an equals sign, no other `=`."""
    decoded = value.replace("=2C", ",").replace("=3D", "=")
    if "=" in value.replace("=2C", "").replace("=3D", ""):
        raise ValueError("bad saslname")
    return decoded


class ScramServer:
    """One SCRAM exchange."""

    def __init__(self, mechanism: str, credentials: ScramCredentials) -> None:
        self.mechanism = mechanism
        self._digest = hash_name(mechanism)
        self._credentials = credentials
        self._user: str | None = None
        self._credential: ScramCredential | None = None
        self._gs2_header = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""
        self._complete = False

    @property
    def complete(self) -> bool:
        return self._complete

    @property
    def authorization_id(self) -> str:
        assert self._user is not None
        return self._user

    @property
    def lifetime_ms(self) -> int | None:
        return None

    def _refuse(self) -> SaslFailure:
        return SaslFailure(
            "Authentication failed during authentication due to invalid credentials "
            f"with SASL mechanism {self.mechanism}"
        )

    def evaluate(self, token: bytes) -> bytes:
        try:
            message = token.decode()
        except UnicodeDecodeError:
            raise self._refuse() from None
        if self._complete:
            raise SaslFailure("Authentication failed: SCRAM exchange already complete")
        try:
            if self._credential is None:
                return self._client_first(message).encode()
            return self._client_final(message).encode()
        except (ValueError, KeyError, binascii.Error):
            raise self._refuse() from None

    def _client_first(self, message: str) -> str:
        flag, _, rest = message.partition(",")
        authzid, _, bare = rest.partition(",")
        if flag not in ("n", "y") or (authzid and not authzid.startswith("a=")):
            raise ValueError("channel binding is not supported")
        attributes = _attributes(bare)
        if len(attributes) < 2 or attributes[0][0] != "n" or attributes[1][0] != "r":
            raise ValueError("client-first needs n= and r=")
        user, client_nonce = _sasl_name(attributes[0][1]), attributes[1][1]
        if any(key == "t" for key, _ in attributes[2:]) or "tokenauth=true" in bare:
            raise ValueError("delegation tokens are not supported")
        if authzid and _sasl_name(authzid[2:]) != user:
            raise ValueError("authorization id differs from the user name")
        if not user or not client_nonce:
            raise ValueError("empty user or nonce")
        credential = self._credentials.get(user, self.mechanism)
        if credential is None:
            credential = _decoy(user)  # refused at the final message, as a wrong password
        self._user, self._credential = user, credential
        self._gs2_header = f"{flag},{authzid},"
        self._client_first_bare = bare
        self._nonce = client_nonce + secrets.token_urlsafe(24)
        salt = base64.b64encode(credential.salt).decode()
        self._server_first = f"r={self._nonce},s={salt},i={credential.iterations}"
        return self._server_first

    def _client_final(self, message: str) -> str:
        credential = self._credential
        assert credential is not None
        without_proof, separator, proof_text = message.rpartition(",p=")
        if not separator:
            raise ValueError("client-final without a proof")
        attributes = dict(_attributes(without_proof))
        if base64.b64decode(attributes["c"], validate=True) != self._gs2_header.encode():
            raise ValueError("channel binding differs from the client-first header")
        # Kafka accepts a final nonce that ends with this exchange's (older librdkafka
        # sends its own nonce once more in front of it); the server's part is still
        # required, so a final message from another exchange never passes.
        if not attributes["r"].endswith(self._nonce):
            raise ValueError("not this exchange's nonce")
        proof = base64.b64decode(proof_text, validate=True)
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        signature = hmac.new(credential.stored_key, auth_message, self._digest).digest()
        if len(proof) != len(signature):
            raise ValueError("proof of the wrong length")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(
            hashlib.new(self._digest, client_key).digest(), credential.stored_key
        ):
            raise ValueError("wrong proof")
        server_signature = hmac.new(credential.server_key, auth_message, self._digest).digest()
        self._complete = True
        return "v=" + base64.b64encode(server_signature).decode()
