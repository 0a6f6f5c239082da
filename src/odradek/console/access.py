"""The console's authorization: with an authorizer (`authorizer.class.name`) every page
and form answers as the Kafka API doing the same thing would answer the logged-in
principal (`User:name`, `User:ANONYMOUS` without a login) from the HTTP client's host.

Pages and forms build an `Access` for the request and either ask it (`may_topic`: lists
leave out what the principal may not DESCRIBE, as Metadata does) or require an operation
(`topic`, `group`, `cluster`), which raises `Refused` with Kafka's error; the pages answer
it with a 403 page naming the error, before anything is changed. Names are checked
before they are looked up, as Kafka does, so an unknown and a forbidden topic look the
same to someone who may not see it. Without an authorizer every check is one comparison.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from kio.schema.errors import ErrorCode

from odradek.console.login import PRINCIPAL
from odradek.security.acl import CLUSTER_NAME, AclOperation, ResourceType
from odradek.security.authorizer import Authorizer, client_host
from odradek.server.broker import Broker

ANONYMOUS = "User:ANONYMOUS"

TOPIC = ResourceType.TOPIC
GROUP = ResourceType.GROUP
CLUSTER = ResourceType.CLUSTER

Visible = Callable[[str], bool]


class Refused(Exception):
    """The principal may not do this: a 403 page with Kafka's error and message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def text(self) -> str:
        return f"{self.code.name.upper()}: {self.message}"


class Access:
    """What one request's principal may do; everything when there is no authorizer."""

    __slots__ = ("authorizer", "host", "principal")

    def __init__(self, authorizer: Authorizer | None, principal: str, host: str) -> None:
        self.authorizer = authorizer
        self.principal = principal
        self.host = host

    @property
    def checked(self) -> bool:
        """Whether an authorizer decides (without one, lists need no filtering)."""
        return self.authorizer is not None

    def may(self, operation: AclOperation, kind: ResourceType, name: str) -> bool:
        if self.authorizer is None:
            return True
        return self.authorizer.authorize(self.principal, self.host, operation, kind, name)

    def may_topic(self, operation: AclOperation, name: str) -> bool:
        return self.may(operation, TOPIC, name)

    def may_group(self, operation: AclOperation, group_id: str) -> bool:
        return self.may(operation, GROUP, group_id)

    def may_cluster(self, operation: AclOperation) -> bool:
        return self.may(operation, CLUSTER, CLUSTER_NAME)

    def topics(self, operation: AclOperation = AclOperation.DESCRIBE) -> Visible | None:
        """A test of the topic names the principal may `operation`; None: all of them."""
        if self.authorizer is None:
            return None
        return lambda name: self.may_topic(operation, name)

    def groups(self) -> Visible | None:
        """A test of the group ids the principal may DESCRIBE; None: all of them (also,
        as ListGroups, for a principal that may DESCRIBE the cluster)."""
        if self.authorizer is None or self.may_cluster(AclOperation.DESCRIBE):
            return None
        return lambda group_id: self.may_group(AclOperation.DESCRIBE, group_id)

    # -- requirements: Refused when not allowed -----------------------------------------

    def topic(self, operation: AclOperation, name: str) -> None:
        if not self.may_topic(operation, name):
            raise Refused(
                ErrorCode.topic_authorization_failed, f"Not authorized to access topics: [{name}]"
            )

    def group(self, operation: AclOperation, group_id: str) -> None:
        if not self.may_group(operation, group_id):
            raise Refused(
                ErrorCode.group_authorization_failed,
                f"Not authorized to access group: {group_id}",
            )

    def cluster(self, operation: AclOperation) -> None:
        if not self.may_cluster(operation):
            raise Refused(ErrorCode.cluster_authorization_failed, "Cluster authorization failed.")

    def create_topic(self, name: str) -> None:
        """CreateTopics' rule: CREATE on the cluster, or else on the topic."""
        if not self.may_cluster(AclOperation.CREATE):
            self.topic(AclOperation.CREATE, name)


def of(broker: Broker, request: web.Request) -> Access:
    """The request's principal (as the login set it) and host, and the broker's
    authorizer."""
    principal = request.get(PRINCIPAL, ANONYMOUS)
    return Access(broker.services.authorizer, principal, client_host(request.remote or ""))
