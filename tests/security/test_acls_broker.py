"""ACLs enforced by one broker with `authorizer.class.name` set, through real clients
(confluent-kafka, kafka-python, aiokafka) connecting as User:ANONYMOUS.

The broker starts with an ACL file that lets the anonymous principal manage ACLs and
create topics (ALTER, DESCRIBE and CREATE on the cluster); each test then adds the topic
and group ACLs it needs through the admin API and checks what is allowed and refused."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from helpers import unique_topic, wait_until
from odradek.security.acl import AccessControlEntry as Entry
from odradek.security.acl import AclBinding as Binding
from odradek.security.acl import AclOperation as Op
from odradek.security.acl import AclPermission, PatternType, ResourcePattern
from odradek.security.acl import ResourceType as Kind
from odradek.security.acl_store import ACL_FILE, encode_file
from odradek.testing import Broker

TIMEOUT_S = 15
ANON = "User:ANONYMOUS"
AUTHORIZER = "kafka.security.authorizer.AclAuthorizer"


def seed_acls(directory: str, *bindings: Binding) -> None:
    """Writes the broker's ACL file before it starts."""
    with open(os.path.join(directory, ACL_FILE), "wb") as f:
        f.write(encode_file(sorted(bindings)))


def cluster_grant(op: Op) -> Binding:
    return Binding(
        ResourcePattern(Kind.CLUSTER, "kafka-cluster", PatternType.LITERAL),
        Entry(ANON, "*", op, AclPermission.ALLOW),
    )


ADMIN_GRANTS = (cluster_grant(Op.ALTER), cluster_grant(Op.DESCRIBE), cluster_grant(Op.CREATE))


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    directory = tempfile.mkdtemp(prefix="odradek-acl-")
    seed_acls(directory, *ADMIN_GRANTS)
    with Broker(directory, {"authorizer.class.name": AUTHORIZER}) as running:
        yield running


@pytest.fixture(scope="module")
def admin(broker: Broker) -> object:
    return AdminClient({"bootstrap.servers": broker.bootstrap_servers})


def acl(
    kind: ResourceType,
    name: str,
    op: AclOperation,
    permission: AclPermissionType = AclPermissionType.ALLOW,
    pattern: ResourcePatternType = ResourcePatternType.LITERAL,
) -> AclBinding:
    return AclBinding(kind, name, pattern, ANON, "*", op, permission)


def create_acls(admin: object, *bindings: AclBinding) -> None:
    for future in admin.create_acls(list(bindings), request_timeout=TIMEOUT_S).values():  # type: ignore[attr-defined]
        future.result(TIMEOUT_S)


def delete_acls(admin: object, *filters: AclBindingFilter) -> list[AclBinding]:
    futures = admin.delete_acls(list(filters), request_timeout=TIMEOUT_S)  # type: ignore[attr-defined]
    return [b for f in futures.values() for b in f.result(TIMEOUT_S)]


def create_topics(admin: object, *names: str) -> None:
    futures = admin.create_topics([NewTopic(n, 1, 1) for n in names], request_timeout=TIMEOUT_S)  # type: ignore[attr-defined]
    for future in futures.values():
        future.result(TIMEOUT_S)


def produce_error(broker: Broker, topic: str, producer: Producer | None = None) -> int | None:
    """Produces one record; the delivery error code, or None when it was written."""
    producer = producer or Producer(
        {"bootstrap.servers": broker.bootstrap_servers, "message.timeout.ms": 10000}
    )
    outcome: list[KafkaError | None] = []
    producer.produce(topic, b"v", on_delivery=lambda err, _msg: outcome.append(err))
    producer.flush(TIMEOUT_S)
    assert outcome, "no delivery report"
    return None if outcome[0] is None else outcome[0].code()


@pytest.fixture(scope="module")
def layout(broker: Broker, admin: object) -> dict[str, str]:
    """Topics: `open` (ALL allowed), `secret` (nothing allowed), `team-x` and
    `team-denied` under an ALLOW ALL on the prefix `team-<id>-`, with a DENY of WRITE on
    `team-denied`; `described` (DESCRIBE only); a group `group` allowed READ."""
    base = unique_topic("acl")
    names = {
        "open": f"{base}-open",
        "secret": f"{base}-secret",
        "team": f"{base}-team-x",
        "denied": f"{base}-team-denied",
        "described": f"{base}-described",
        "group": f"{base}-group",
        "prefix": f"{base}-team-",
    }
    create_topics(
        admin, names["open"], names["secret"], names["team"], names["denied"], names["described"]
    )
    create_acls(
        admin,
        acl(ResourceType.TOPIC, names["open"], AclOperation.ALL),
        acl(
            ResourceType.TOPIC,
            names["prefix"],
            AclOperation.ALL,
            pattern=ResourcePatternType.PREFIXED,
        ),
        acl(ResourceType.TOPIC, names["denied"], AclOperation.WRITE, AclPermissionType.DENY),
        acl(ResourceType.GROUP, names["group"], AclOperation.READ),
        acl(ResourceType.TOPIC, names["described"], AclOperation.DESCRIBE),
    )
    return names


def test_metadata_lists_only_describable_topics(
    broker: Broker, admin: object, layout: dict[str, str]
) -> None:
    """confluent-kafka's list_topics shows the allowed topics (a DENY of WRITE leaves
    DESCRIBE) and never the secret one; asked by name it is TOPIC_AUTHORIZATION_FAILED."""
    listed = admin.list_topics(timeout=TIMEOUT_S).topics  # type: ignore[attr-defined]
    assert {layout["open"], layout["team"], layout["denied"]} <= set(listed)
    assert layout["secret"] not in listed
    asked = admin.list_topics(topic=layout["secret"], timeout=TIMEOUT_S).topics  # type: ignore[attr-defined]
    assert asked[layout["secret"]].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_produce_needs_write_and_deny_beats_prefixed_allow(
    broker: Broker, layout: dict[str, str]
) -> None:
    """confluent-kafka writes to the literal and the prefixed topic; the secret topic and
    the prefixed one with a DENY of WRITE refuse with TOPIC_AUTHORIZATION_FAILED."""
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap_servers, "message.timeout.ms": 10000}
    )
    assert produce_error(broker, layout["open"], producer) is None
    assert produce_error(broker, layout["team"], producer) is None
    assert (
        produce_error(broker, layout["secret"], producer) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    )
    assert (
        produce_error(broker, layout["denied"], producer) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    )


def test_kafka_python_sees_and_reads_only_allowed_topics(
    broker: Broker, layout: dict[str, str]
) -> None:
    """kafka-python's topic list leaves the secret topic out, and it reads the open one."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpPartition

    assert produce_error(broker, layout["open"]) is None
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
    try:
        topics = consumer.topics()
        assert layout["open"] in topics and layout["secret"] not in topics
        consumer.assign([KpPartition(layout["open"], 0)])
        consumer.seek_to_beginning()
        polled: dict[object, list[object]] = {}
        for _ in range(50):
            polled = consumer.poll(timeout_ms=200, max_records=1)
            if polled:
                break
        assert sum(len(v) for v in polled.values()) == 1
    finally:
        consumer.close()


def test_aiokafka_fetch_needs_read(broker: Broker, layout: dict[str, str]) -> None:
    """aiokafka's consumer reads the prefixed topic; fetching a topic it may only
    DESCRIBE fails with TopicAuthorizationFailedError (Fetch's per-partition error)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as AioPartition
    from aiokafka.errors import TopicAuthorizationFailedError

    assert produce_error(broker, layout["team"]) is None

    async def run() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
        await consumer.start()
        try:
            consumer.assign([AioPartition(layout["team"], 0)])
            await consumer.seek_to_beginning()
            record = await asyncio.wait_for(consumer.getone(), TIMEOUT_S)
            assert record.value == b"v"
            consumer.assign([AioPartition(layout["described"], 0)])
            consumer.seek(AioPartition(layout["described"], 0), 0)
            with pytest.raises(TopicAuthorizationFailedError):
                await asyncio.wait_for(consumer.getone(), TIMEOUT_S)
        finally:
            await consumer.stop()

    asyncio.run(run())


def test_commit_needs_read_on_group_and_topic(broker: Broker, layout: dict[str, str]) -> None:
    """confluent-kafka commits offsets of the open topic for the allowed group; the
    secret topic is TOPIC_AUTHORIZATION_FAILED, another group GROUP_AUTHORIZATION_FAILED."""

    def commit(group: str, topic: str) -> int | None:
        consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": group})
        try:
            result = consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
            error = result[0].error if result else None
            return None if error is None else error.code()
        except KafkaException as exc:
            return int(exc.args[0].code())
        finally:
            consumer.close()

    assert commit(layout["group"], layout["open"]) is None
    assert commit(layout["group"], layout["secret"]) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_kafka_python_commit_for_another_group_is_refused(
    broker: Broker, layout: dict[str, str]
) -> None:
    """kafka-python committing for a group it may not READ fails with
    GroupAuthorizationFailedError (FindCoordinator answers GROUP_AUTHORIZATION_FAILED)."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpPartition
    from kafka.errors import GroupAuthorizationFailedError
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=f"{layout['group']}-other",
        enable_auto_commit=False,
    )
    try:
        partition = KpPartition(layout["open"], 0)
        consumer.assign([partition])
        with pytest.raises(GroupAuthorizationFailedError):
            consumer.commit({partition: OffsetAndMetadata(0, "", -1)})
    finally:
        consumer.close()


def test_describe_configs_needs_describe_configs(
    broker: Broker, admin: object, layout: dict[str, str]
) -> None:
    """describe_configs answers for the open topic and refuses the secret one."""
    ok, refused = ConfigResource("topic", layout["open"]), ConfigResource("topic", layout["secret"])
    futures = admin.describe_configs([ok, refused], request_timeout=TIMEOUT_S)  # type: ignore[attr-defined]
    assert "retention.ms" in futures[ok].result(TIMEOUT_S)
    with pytest.raises(KafkaException) as raised:
        futures[refused].result(TIMEOUT_S)
    assert raised.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_acl_changes_apply_to_open_connections(
    broker: Broker, admin: object, layout: dict[str, str]
) -> None:
    """A producer already connected is refused as soon as a DENY is created and allowed
    again once it is deleted; DeleteAcls reports what it removed."""
    # A short metadata refresh: librdkafka keeps a topic's authorization error until
    # its next metadata request.
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "message.timeout.ms": 10000,
            "topic.metadata.refresh.interval.ms": 200,
        }
    )
    assert produce_error(broker, layout["team"], producer) is None
    deny = acl(ResourceType.TOPIC, layout["team"], AclOperation.WRITE, AclPermissionType.DENY)
    create_acls(admin, deny)
    assert produce_error(broker, layout["team"], producer) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    removed = delete_acls(
        admin,
        AclBindingFilter(
            ResourceType.TOPIC,
            layout["team"],
            ResourcePatternType.LITERAL,
            None,
            None,
            AclOperation.ANY,
            AclPermissionType.DENY,
        ),
    )
    assert removed == [deny]

    def written() -> bool:
        try:
            return produce_error(broker, layout["team"], producer) is None
        except KafkaException:
            return False

    wait_until(written, TIMEOUT_S, interval=0.2, what="produce allowed again")


def test_kafka_python_describe_acls_with_match_filter(
    broker: Broker, layout: dict[str, str]
) -> None:
    """kafka-python's describe_acls with a MATCH filter on a topic name returns the
    literal and the prefixed ACLs that apply to it."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        KafkaAdminClient,
        ResourcePatternFilter,
    )
    from kafka.admin import ResourceType as KpResourceType

    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        found, error = client.describe_acls(
            ACLFilter(
                principal=None,
                host=None,
                operation=ACLOperation.ANY,
                permission_type=ACLPermissionType.ANY,
                resource_pattern=ResourcePatternFilter(
                    KpResourceType.TOPIC, layout["denied"], ACLResourcePatternType.MATCH
                ),
            )
        )
    finally:
        client.close()
    assert error.errno == 0
    seen = {
        (
            a.resource_pattern.resource_name,
            a.resource_pattern.pattern_type.name,
            a.permission_type.name,
        )
        for a in found
    }
    assert seen == {
        (layout["prefix"], "PREFIXED", "ALLOW"),
        (layout["denied"], "LITERAL", "DENY"),
    }


def test_create_acls_refuses_a_cluster_not_named_kafka_cluster(admin: object) -> None:
    """A CLUSTER binding not named kafka-cluster is INVALID_REQUEST."""
    bad = acl(ResourceType.BROKER, "not-the-cluster", AclOperation.ALTER)
    with pytest.raises(KafkaException) as raised:
        create_acls(admin, bad)
    assert raised.value.args[0].code() == KafkaError.INVALID_REQUEST


def test_super_user_bypasses_deny() -> None:
    """With super.users naming the anonymous principal, a DENY ALL on every topic does not
    stop it; without, the same ACL refuses; ACLs survive a restart."""
    directory = tempfile.mkdtemp(prefix="odradek-acl-")
    deny_all = Binding(
        ResourcePattern(Kind.TOPIC, "*", PatternType.LITERAL),
        Entry("User:*", "*", Op.ALL, AclPermission.DENY),
    )
    seed_acls(directory, deny_all, *ADMIN_GRANTS)
    config = {"authorizer.class.name": AUTHORIZER, "super.users": f"User:admin;{ANON}"}
    with Broker(directory, config) as running:
        assert produce_error(running, unique_topic("su")) is None
    with Broker(directory, {"authorizer.class.name": AUTHORIZER}) as running:
        name = unique_topic("su")
        create_topics(AdminClient({"bootstrap.servers": running.bootstrap_servers}), name)
        assert produce_error(running, name) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_deny_for_another_host_does_not_apply(
    broker: Broker, admin: object, layout: dict[str, str]
) -> None:
    """A DENY naming another host leaves clients on 127.0.0.1 allowed; one naming
    127.0.0.1 refuses them."""
    elsewhere = AclBinding(
        ResourceType.TOPIC,
        layout["open"],
        ResourcePatternType.LITERAL,
        ANON,
        "10.0.0.1",
        AclOperation.DESCRIBE,
        AclPermissionType.DENY,
    )
    here = AclBinding(
        ResourceType.TOPIC,
        layout["open"],
        ResourcePatternType.LITERAL,
        ANON,
        "127.0.0.1",
        AclOperation.DESCRIBE,
        AclPermissionType.DENY,
    )

    def describable() -> bool:
        topics = admin.list_topics(topic=layout["open"], timeout=TIMEOUT_S).topics  # type: ignore[attr-defined]
        return topics[layout["open"]].error is None

    create_acls(admin, elsewhere)
    assert describable()
    create_acls(admin, here)
    assert not describable()
    delete_acls(
        admin,
        AclBindingFilter(
            ResourceType.TOPIC,
            layout["open"],
            ResourcePatternType.LITERAL,
            None,
            None,
            AclOperation.DESCRIBE,
            AclPermissionType.DENY,
        ),
    )
    assert describable()


def test_acls_created_through_the_api_survive_a_restart() -> None:
    """An ACL created with create_acls is in the broker's ACL file and applies again
    after a restart."""
    directory = tempfile.mkdtemp(prefix="odradek-acl-")
    seed_acls(directory, *ADMIN_GRANTS)
    with Broker(directory, {"authorizer.class.name": AUTHORIZER}) as running:
        client = AdminClient({"bootstrap.servers": running.bootstrap_servers})
        name = unique_topic("persist")
        create_topics(client, name)
        binding = acl(ResourceType.TOPIC, name, AclOperation.WRITE)
        create_acls(client, binding)
        assert produce_error(running, name) is None
        running.restart()
        client = AdminClient({"bootstrap.servers": running.bootstrap_servers})
        any_acl = AclBindingFilter(
            ResourceType.TOPIC,
            name,
            ResourcePatternType.ANY,
            None,
            None,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        assert client.describe_acls(any_acl, request_timeout=TIMEOUT_S).result(TIMEOUT_S) == [
            binding
        ]
        assert produce_error(running, name) is None
