"""DescribeUserScramCredentials (key 50), version 0: each user's SCRAM mechanisms and
iteration counts (never salts or keys). No users named (null or empty) means every user;
a user named twice is DUPLICATE_RESOURCE, an unknown one RESOURCE_NOT_FOUND, Kafka's
answers and messages. With an authorizer DESCRIBE on the cluster is needed
(CLUSTER_AUTHORIZATION_FAILED)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import cluster_allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation
from odradek.security.scram_store import MECHANISM_IDS, ScramCredential

API_KEY = 50


def _result(
    module: Any,
    user: str,
    credentials: Mapping[str, ScramCredential] | None,
    error: ErrorCode = ErrorCode.none,
    message: str | None = None,
) -> Any:
    infos = tuple(
        make(module.CredentialInfo, mechanism=MECHANISM_IDS[m], iterations=c.iterations)
        for m, c in sorted((credentials or {}).items())
    )
    return make(
        module.DescribeUserScramCredentialsResult,
        user=user,
        error_code=error,
        error_message=message,
        credential_infos=infos,
    )


@api(API_KEY, 0, 0)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    if not cluster_allowed(ctx, AclOperation.DESCRIBE):
        # Kafka's answer: the top-level error alone, no message, no results.
        return make(
            module.DescribeUserScramCredentialsResponse,
            throttle_time=datetime.timedelta(0),
            error_code=ErrorCode.cluster_authorization_failed,
            error_message=None,
            results=(),
        )
    store = ctx.services.scram
    users = store.users() if store is not None else {}
    if not request.users:
        results = [_result(module, name, users[name]) for name in sorted(users)]
    else:
        names = [entry.name for entry in request.users]
        results = []
        for name in dict.fromkeys(names):
            if names.count(name) > 1:
                results.append(
                    _result(
                        module,
                        name,
                        None,
                        ErrorCode.duplicate_resource,
                        "Cannot describe SCRAM credentials for the same user twice in a "
                        "single request",
                    )
                )
            elif name not in users:
                results.append(
                    _result(
                        module,
                        name,
                        None,
                        ErrorCode.resource_not_found,
                        "Attempt to describe a user credential that does not exist",
                    )
                )
            else:
                results.append(_result(module, name, users[name]))
    return make(
        module.DescribeUserScramCredentialsResponse,
        throttle_time=datetime.timedelta(0),
        error_code=ErrorCode.none,
        error_message=None,
        results=tuple(results),
    )
