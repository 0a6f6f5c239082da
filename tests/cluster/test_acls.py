"""ACLs in a ZooKeeper cluster: created through one broker, kept in ZooKeeper as Kafka
keeps them (/kafka-acl, /kafka-acl-extended, change notifications), enforced by every
broker at once, removed through another broker, and loaded again by a broker that
restarts.

The brokers run with `allow.everyone.if.no.acl.found=true`, so the ACLs the test does not
write (the cluster's, for the brokers' own replication traffic) stay open; the test's
DENY ACLs decide for the topics it names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from kio.schema.errors import ErrorCode

from helpers import wait_until
from odradek.testing.cluster import Cluster
from odradek.testing.zookeeper import ZooKeeper
from tests.server.wire import WireClient, build, request_module

TIMEOUT_S = 30
ANON = "User:ANONYMOUS"
CONFIG = {
    "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
    "allow.everyone.if.no.acl.found": "true",
}


@pytest.fixture
def cluster(zookeeper: ZooKeeper) -> Iterator[Cluster]:
    with Cluster(brokers=2, zookeeper=zookeeper, config=CONFIG) as running:
        yield running


def admin_of(cluster: Cluster, node: int) -> Any:
    return AdminClient({"bootstrap.servers": f"127.0.0.1:{cluster.brokers[node].port}"})


def topic_error(cluster: Cluster, node: int, topic: str) -> ErrorCode:
    """The error broker `node` itself answers for `topic` in a Metadata v12 request."""
    m = request_module(3, 12)
    body = build(
        m.MetadataRequest,
        topics=(build(m.MetadataRequestTopic, topic_id=None, name=topic),),
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
    with WireClient(cluster.brokers[node].port) as client:
        return ErrorCode(client.call(3, 12, body).topics[0].error_code)


def every_broker_answers(cluster: Cluster, topic: str, code: ErrorCode) -> None:
    for node in cluster.brokers:
        wait_until(
            lambda node=node: topic_error(cluster, node, topic) == code,  # type: ignore[misc]
            TIMEOUT_S,
            what=f"broker {node} answering {code.name} for {topic}",
        )


def deny_all(name: str, pattern: ResourcePatternType) -> AclBinding:
    return AclBinding(
        ResourceType.TOPIC, name, pattern, ANON, "*", AclOperation.ALL, AclPermissionType.DENY
    )


def test_acls_live_in_zookeeper_and_apply_on_every_broker(cluster: Cluster) -> None:
    """A literal and a prefixed DENY created through broker 1 are in ZooKeeper in Kafka's
    form, with change notifications; both brokers refuse the topics at once (and a
    produce to them), while other topics replicate with acks=all; the ACLs removed
    through broker 2 stop applying everywhere; a restarted broker loads them again."""
    for name in ("open", "secret", "team-a"):
        cluster.create_topic(name, partitions=1, replication_factor=2)
    every_broker_answers(cluster, "secret", ErrorCode.none)
    literal = deny_all("secret", ResourcePatternType.LITERAL)
    prefixed = deny_all("team-", ResourcePatternType.PREFIXED)
    first, second = admin_of(cluster, 1), admin_of(cluster, 2)  # alive until answered
    futures = first.create_acls([literal, prefixed], request_timeout=TIMEOUT_S)
    for future in futures.values():
        future.result(TIMEOUT_S)

    stored, _stat = cluster.zk.get("/kafka-acl/Topic/secret")
    assert json.loads(stored) == {
        "version": 1,
        "acls": [{"principal": ANON, "permissionType": "Deny", "operation": "All", "host": "*"}],
    }
    assert cluster.zk.exists("/kafka-acl-extended/prefixed/Topic/team-")
    assert cluster.zk.get_children("/kafka-acl-changes")
    assert cluster.zk.get_children("/kafka-acl-extended-changes")

    every_broker_answers(cluster, "secret", ErrorCode.topic_authorization_failed)
    every_broker_answers(cluster, "team-a", ErrorCode.topic_authorization_failed)
    every_broker_answers(cluster, "open", ErrorCode.none)
    producer = Producer(
        {"bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "message.timeout.ms": 20000}
    )
    outcomes: dict[str, Any] = {}
    for topic in ("open", "secret"):
        producer.produce(
            topic, b"v", on_delivery=lambda err, msg: outcomes.__setitem__(msg.topic(), err)
        )
    producer.flush(TIMEOUT_S)
    assert outcomes["open"] is None
    assert outcomes["secret"].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    cluster.stop_broker(1)
    cluster.restart(1)
    every_broker_answers(cluster, "secret", ErrorCode.topic_authorization_failed)

    any_topic = AclBindingFilter(
        ResourceType.TOPIC,
        None,
        ResourcePatternType.ANY,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    removed = second.delete_acls([any_topic], request_timeout=TIMEOUT_S)
    assert sorted(removed[any_topic].result(TIMEOUT_S), key=str) == sorted(
        [literal, prefixed], key=str
    )
    assert not cluster.zk.exists("/kafka-acl/Topic/secret")
    every_broker_answers(cluster, "secret", ErrorCode.none)
    every_broker_answers(cluster, "team-a", ErrorCode.none)


def test_acls_written_to_zookeeper_by_kafka_tools_apply(cluster: Cluster) -> None:
    """ACLs written straight into ZooKeeper as Kafka's tools write them (the resource's
    znode, then a change notification) apply on every broker."""
    cluster.create_topic("tooling", partitions=1, replication_factor=2)
    every_broker_answers(cluster, "tooling", ErrorCode.none)
    entry = {"principal": ANON, "permissionType": "Deny", "operation": "Describe", "host": "*"}
    document = json.dumps({"version": 1, "acls": [entry]}).encode()
    cluster.zk.create("/kafka-acl/Topic/tooling", document, makepath=True)
    cluster.zk.create("/kafka-acl-changes/acl_changes_", b"Topic:tooling", sequence=True)
    every_broker_answers(cluster, "tooling", ErrorCode.topic_authorization_failed)


def test_a_name_zookeeper_refuses_fails_alone(cluster: Cluster) -> None:
    """A topic named "." cannot be a ZooKeeper path: its ACL is answered
    UNKNOWN_SERVER_ERROR while the other ACL of the same request is created, and the
    broker keeps serving."""
    admin = admin_of(cluster, 1)
    dot = deny_all(".", ResourcePatternType.LITERAL)
    fine = deny_all("fine", ResourcePatternType.LITERAL)
    futures = admin.create_acls([dot, fine], request_timeout=TIMEOUT_S)
    futures[fine].result(TIMEOUT_S)
    with pytest.raises(KafkaException) as raised:
        futures[dot].result(TIMEOUT_S)
    assert raised.value.args[0].code() == KafkaError.UNKNOWN
    assert cluster.zk.exists("/kafka-acl/Topic/fine")
    every_broker_answers(cluster, "fine", ErrorCode.topic_authorization_failed)
