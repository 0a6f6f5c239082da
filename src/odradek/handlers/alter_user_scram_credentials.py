"""AlterUserScramCredentials (key 51), version 0: set or delete users' SCRAM credentials.

The client sends the salted password (never the password); the broker keeps only the
stored key and server key derived from it (security/scram_store.py), in its data dir on
a single node or in ZooKeeper's `/config/users` in a cluster. Checks and messages are
Kafka's: an empty name or a count of iterations outside 4096-16384 is
UNACCEPTABLE_CREDENTIAL, an unknown mechanism UNSUPPORTED_SASL_MECHANISM, the same
user and mechanism twice DUPLICATE_RESOURCE, deleting what does not exist
RESOURCE_NOT_FOUND. A user with any error keeps its credentials unchanged. With an
authorizer ALTER on the cluster is needed: CLUSTER_AUTHORIZATION_FAILED for every user
otherwise, nothing changed.
"""

from __future__ import annotations

import datetime
import logging
from collections import Counter
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import REFUSAL_MESSAGES, cluster_allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation
from odradek.security.scram_store import (
    MAX_ITERATIONS,
    MECHANISM_NAMES,
    MIN_ITERATIONS,
    ScramCredential,
    credential_from_salted,
)

API_KEY = 51

log = logging.getLogger("odradek.scram")

Error = tuple[ErrorCode, str]


def _check_common(name: str, mechanism: int) -> Error | None:
    if not name:
        return ErrorCode.unacceptable_credential, "Username must not be empty"
    if mechanism not in MECHANISM_NAMES:
        return ErrorCode.unsupported_sasl_mechanism, "Unknown SCRAM mechanism"
    return None


def _check_upsertion(entry: Any) -> Error | None:
    error = _check_common(entry.name, entry.mechanism)
    if error is not None:
        return error
    if entry.iterations < MIN_ITERATIONS:
        return ErrorCode.unacceptable_credential, "Too few iterations"
    if entry.iterations > MAX_ITERATIONS:
        return ErrorCode.unacceptable_credential, "Too many iterations"
    if not entry.salt or not entry.salted_password:
        return ErrorCode.unacceptable_credential, "Salt and salted password must not be empty"
    return None


def _validate(request: Any, existing: dict[str, dict[str, ScramCredential]]) -> dict[str, Error]:
    """The first error of each user that has one."""
    errors: dict[str, Error] = {}
    pairs = Counter(
        (entry.name, entry.mechanism) for entry in (*request.deletions, *request.upsertions)
    )
    for entry in request.deletions:
        error = _check_common(entry.name, entry.mechanism)
        if (
            error is None
            and entry.mechanism
            and (MECHANISM_NAMES[entry.mechanism] not in existing.get(entry.name, {}))
        ):
            error = (
                ErrorCode.resource_not_found,
                "Attempt to delete a user credential that does not exist",
            )
        if error is not None:
            errors.setdefault(entry.name, error)
    for entry in request.upsertions:
        error = _check_upsertion(entry)
        if error is not None:
            errors.setdefault(entry.name, error)
    for (name, _mechanism), count in pairs.items():
        if count > 1:
            errors.setdefault(
                name,
                (
                    ErrorCode.duplicate_resource,
                    "A user credential cannot be altered twice in the same request",
                ),
            )
    return errors


@api(API_KEY, 0, 0, is_async=True)
async def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    store = ctx.services.scram
    existing = store.users() if store is not None else {}
    if cluster_allowed(ctx, AclOperation.ALTER):
        errors = _validate(request, existing)
    else:
        refused = ErrorCode.cluster_authorization_failed
        errors = {
            e.name: (refused, REFUSAL_MESSAGES[refused])
            for e in (*request.deletions, *request.upsertions)
        }
    changes: dict[str, dict[str, ScramCredential | None]] = {}
    for entry in request.deletions:
        if entry.name not in errors:
            changes.setdefault(entry.name, {})[MECHANISM_NAMES[entry.mechanism]] = None
    for entry in request.upsertions:
        if entry.name not in errors:
            mechanism = MECHANISM_NAMES[entry.mechanism]
            credential = credential_from_salted(
                mechanism, entry.salted_password, entry.salt, entry.iterations
            )
            changes.setdefault(entry.name, {})[mechanism] = credential
    if changes:
        try:
            if store is None:
                raise RuntimeError("no SCRAM credential store")
            await store.apply(changes)
        except Exception as exc:
            log.exception("storing SCRAM credentials failed")
            for name in changes:
                errors[name] = (ErrorCode.unknown_server_error, f"storing failed: {exc}")
    names = dict.fromkeys(e.name for e in (*request.deletions, *request.upsertions))
    results = tuple(
        make(
            module.AlterUserScramCredentialsResult,
            user=name,
            error_code=errors.get(name, (ErrorCode.none, None))[0],
            error_message=errors.get(name, (ErrorCode.none, None))[1],
        )
        for name in names
    )
    return make(
        module.AlterUserScramCredentialsResponse,
        throttle_time=datetime.timedelta(0),
        results=results,
    )
