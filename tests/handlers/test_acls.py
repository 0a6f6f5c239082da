"""The ACL APIs (DescribeAcls, CreateAcls, DeleteAcls) on the wire. Without an authorizer
every version is advertised and answered SECURITY_DISABLED, as Kafka answers without one,
and the connection stays open. With one (everyone allowed while no ACL names a
resource), bad creations and filters get INVALID_REQUEST each, the valid ones are served,
and the connection stays open."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.testing import Broker
from tests.server.wire import WireClient, build, request_module

MESSAGE = "No Authorizer is configured on the broker"
# ResourceType TOPIC 2, PatternType LITERAL 3, AclOperation READ 3, AclPermissionType ALLOW 3
TOPIC, LITERAL, READ, ALLOW, ANY = 2, 3, 3, 3, 1


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with Broker() as running:
        yield running


def _metadata_works(client: WireClient) -> bool:
    """Whether the connection still answers (a Metadata v12 for no topics)."""
    m = request_module(3, 12)
    body = build(
        m.MetadataRequest,
        topics=(),
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
    return client.call(3, 12, body).brokers != ()


def test_acl_apis_are_advertised(broker: Broker) -> None:
    """ApiVersions lists DescribeAcls, CreateAcls and DeleteAcls with versions 1-3."""
    m = request_module(18, 3)
    body = build(m.ApiVersionsRequest, client_software_name="t", client_software_version="1")
    with WireClient(broker.port) as client:
        keys = {
            k.api_key: (k.min_version, k.max_version) for k in client.call(18, 3, body).api_keys
        }
    assert keys[29] == keys[30] == keys[31] == (1, 3)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_describe_acls_is_security_disabled(broker: Broker, version: int) -> None:
    """DescribeAcls: the top-level error is SECURITY_DISABLED with Kafka's message and no
    resources; the connection keeps serving."""
    m = request_module(29, version)
    body = build(
        m.DescribeAclsRequest,
        resource_type_filter=ANY,
        resource_name_filter=None,
        pattern_type_filter=ANY,
        principal_filter=None,
        host_filter=None,
        operation=ANY,
        permission_type=ANY,
    )
    with WireClient(broker.port) as client:
        response = client.call(29, version, body)
        assert _metadata_works(client)
    assert response.error_code == ErrorCode.security_disabled
    assert response.error_message == MESSAGE
    assert response.resources == ()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_create_acls_is_security_disabled(broker: Broker, version: int) -> None:
    """CreateAcls: each requested ACL gets SECURITY_DISABLED, one result per creation."""
    m = request_module(30, version)
    creations = tuple(
        build(
            m.AclCreation,
            resource_type=TOPIC,
            resource_name=name,
            resource_pattern_type=LITERAL,
            principal="User:alice",
            host="*",
            operation=READ,
            permission_type=ALLOW,
        )
        for name in ("a", "b")
    )
    with WireClient(broker.port) as client:
        response = client.call(30, version, build(m.CreateAclsRequest, creations=creations))
        assert _metadata_works(client)
    assert [(r.error_code, r.error_message) for r in response.results] == [
        (ErrorCode.security_disabled, MESSAGE)
    ] * 2


@pytest.mark.parametrize("version", [1, 2, 3])
def test_delete_acls_is_security_disabled(broker: Broker, version: int) -> None:
    """DeleteAcls: each filter gets SECURITY_DISABLED and no matching ACLs."""
    m = request_module(31, version)
    acl_filter = build(
        m.DeleteAclsFilter,
        resource_type_filter=TOPIC,
        resource_name_filter="a",
        pattern_type_filter=LITERAL,
        principal_filter=None,
        host_filter=None,
        operation=ANY,
        permission_type=ANY,
    )
    with WireClient(broker.port) as client:
        response = client.call(31, version, build(m.DeleteAclsRequest, filters=(acl_filter,)))
        assert _metadata_works(client)
    (result,) = response.filter_results
    assert (result.error_code, result.error_message) == (ErrorCode.security_disabled, MESSAGE)
    assert result.matching_acls == ()


@pytest.fixture(scope="module")
def secured() -> Iterator[Broker]:
    config = {
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "true",
    }
    with Broker(config=config) as running:
        yield running


def _creation(m: Any, **changes: Any) -> Any:
    fields = {
        "resource_type": TOPIC,
        "resource_name": "wire",
        "resource_pattern_type": LITERAL,
        "principal": "User:alice",
        "host": "*",
        "operation": READ,
        "permission_type": ALLOW,
    }
    fields.update(changes)
    return build(m.AclCreation, **fields)


def _filter(m: Any, cls: str, **changes: Any) -> Any:
    fields = {
        "resource_type_filter": TOPIC,
        "resource_name_filter": "wire",
        "pattern_type_filter": ANY,
        "principal_filter": None,
        "host_filter": None,
        "operation": ANY,
        "permission_type": ANY,
    }
    fields.update(changes)
    return build(getattr(m, cls), **fields)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_create_describe_delete_with_an_authorizer(secured: Broker, version: int) -> None:
    """CreateAcls answers per creation: the valid one is stored; UNKNOWN or ANY elements,
    a MATCH pattern, a code Kafka does not define (99), a principal without a type, and a
    cluster not named kafka-cluster are INVALID_REQUEST. DescribeAcls finds the stored
    one and refuses an UNKNOWN filter; DeleteAcls removes it, refusing an UNKNOWN filter
    in the same request."""
    create = request_module(30, version)
    bad = [
        {"resource_type": 0},
        {"resource_type": 1},
        {"resource_pattern_type": 2},
        {"operation": 99},
        {"permission_type": 1},
        {"principal": "alice"},
        {"resource_type": 4, "resource_name": "other"},
    ]
    creations = (_creation(create), *(_creation(create, **b) for b in bad))
    describe, delete = request_module(29, version), request_module(31, version)
    with WireClient(secured.port) as client:
        created = client.call(30, version, build(create.CreateAclsRequest, creations=creations))
        described = client.call(29, version, _filter(describe, "DescribeAclsRequest"))
        unknown = client.call(29, version, _filter(describe, "DescribeAclsRequest", operation=0))
        filters = (
            _filter(delete, "DeleteAclsFilter", pattern_type_filter=0),
            _filter(delete, "DeleteAclsFilter"),
        )
        deleted = client.call(31, version, build(delete.DeleteAclsRequest, filters=filters))
        after = client.call(29, version, _filter(describe, "DescribeAclsRequest"))
        assert _metadata_works(client)
    codes = [r.error_code for r in created.results]
    assert codes == [ErrorCode.none] + [ErrorCode.invalid_request] * len(bad)
    assert described.error_code == ErrorCode.none
    assert [(r.resource_name, [a.principal for a in r.acls]) for r in described.resources] == [
        ("wire", ["User:alice"])
    ]
    assert unknown.error_code == ErrorCode.invalid_request
    refused, removed = deleted.filter_results
    assert refused.error_code == ErrorCode.invalid_request
    assert removed.error_code == ErrorCode.none
    assert [(a.resource_name, a.principal) for a in removed.matching_acls] == [
        ("wire", "User:alice")
    ]
    assert after.resources == ()
