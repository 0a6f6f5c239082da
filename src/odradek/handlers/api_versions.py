"""ApiVersions (key 18), versions 0-4.

Answers with the handler table, so what is advertised is what is served. A request newer
than v4 is answered by the server with a v0 response carrying UNSUPPORTED_VERSION and the
table, as Kafka does, so clients retry with a version both sides know.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.context import RequestContext
from odradek.handlers.registry import HANDLERS, api, make, response_module

API_KEY = 18
MIN_VERSION = 0
MAX_VERSION = 4


def build_response(api_version: int, error_code: ErrorCode = ErrorCode.none) -> Any:
    module = response_module(API_KEY, api_version)
    keys = tuple(
        make(
            module.ApiVersion,
            api_key=spec.api_key,
            min_version=spec.min_version,
            max_version=spec.max_version,
        )
        for spec in sorted(HANDLERS.values(), key=lambda s: s.api_key)
    )
    return make(
        module.ApiVersionsResponse,
        error_code=error_code,
        api_keys=keys,
        throttle_time=datetime.timedelta(0),
    )


@api(API_KEY, MIN_VERSION, MAX_VERSION)
def handle(ctx: RequestContext, request: Any) -> Any:
    return build_response(ctx.api_version)
