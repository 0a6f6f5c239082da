"""What the three ACL APIs share while odradek has no authorizer: Kafka's answer for a
broker without one (SECURITY_DISABLED with its message), so admin tools report that
security is off instead of losing their connection."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

NO_AUTHORIZER = ErrorCode.security_disabled
NO_AUTHORIZER_MESSAGE = "No Authorizer is configured on the broker"
