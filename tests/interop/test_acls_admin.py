"""The ACL APIs through real admin clients on a broker without an authorizer: Kafka's
SECURITY_DISABLED reaches confluent-kafka's create_acls and delete_acls and
kafka-python's describe_acls as their "security disabled" errors, with the broker's
message, and the clients keep working."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)
from kafka.admin import (
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePatternFilter,
)
from kafka.admin import ResourceType as KpResourceType
from kafka.errors import SecurityDisabledError

from helpers import ck_admin
from odradek.testing import Broker

TIMEOUT_S = 15
MESSAGE = "No Authorizer is configured on the broker"


def test_confluent_create_and_delete_acls_are_security_disabled(kafka_broker: Broker) -> None:
    """create_acls and delete_acls fail with SECURITY_DISABLED and the broker's message;
    the same client then lists topics."""
    admin = ck_admin(kafka_broker.bootstrap_servers)
    binding = AclBinding(
        ResourceType.TOPIC,
        "t",
        ResourcePatternType.LITERAL,
        "User:alice",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    any_filter = AclBindingFilter(
        ResourceType.ANY,
        None,
        ResourcePatternType.ANY,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    with pytest.raises(KafkaException) as created:
        admin.create_acls([binding], request_timeout=TIMEOUT_S)[binding].result(TIMEOUT_S)
    with pytest.raises(KafkaException) as deleted:
        admin.delete_acls([any_filter], request_timeout=TIMEOUT_S)[any_filter].result(TIMEOUT_S)
    for raised in (created.value, deleted.value):
        error = raised.args[0]
        assert (error.code(), error.str()) == (KafkaError.SECURITY_DISABLED, MESSAGE)
    assert admin.list_topics(timeout=TIMEOUT_S).brokers


def test_kafka_python_describe_acls_is_security_disabled(kafka_broker: Broker) -> None:
    """kafka-python's describe_acls raises SecurityDisabledError with the broker's
    message; the client then lists topics."""
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap_servers)
    try:
        acl_filter = ACLFilter(
            principal=None,
            host="*",
            operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(
                KpResourceType.ANY, None, ACLResourcePatternType.ANY
            ),
        )
        with pytest.raises(SecurityDisabledError, match=MESSAGE):
            admin.describe_acls(acl_filter)
        assert isinstance(admin.list_topics(), list)
    finally:
        admin.close()
