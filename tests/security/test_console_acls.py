"""The console obeys the ACLs: one broker with SASL/PLAIN users admin (a super user),
alice and bob, the ACL authorizer and the console. alice may do anything on topics
`a-*` (prefixed) and group `ga`, bob on topic `b-ledger` and group `gb`, may DESCRIBE
the cluster and DESCRIBE (only) group `gc`. Logged in to the console, each sees and
changes only what the Kafka APIs would let them; refusals are 403 pages naming Kafka's
error, and change nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from odradek.testing import Broker
from tests.console.formclient import Browser

TIMEOUT_S = 15
USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
SASL = "SASL_PLAINTEXT"
ALICE_TOPIC, BOB_TOPIC = "a-orders", "b-ledger"
ALICE_GROUP, BOB_GROUP, SEEN_GROUP = "ga", "gb", "gc"


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    config = {
        "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
        "super.users": "User:admin",
        "console.listeners": "http://127.0.0.1:0",
        "connection.failed.authentication.delay.ms": 0,
    }
    with Broker(config=config, sasl_users=USERS) as running:
        _setup(running)
        yield running


def _setup(broker: Broker) -> None:
    """The topics, the ACLs, and the groups with committed offsets (ga on both topics,
    gb and gc on bob's), made as admin through the Kafka APIs."""
    admin = AdminClient(broker.client_config(SASL, "admin"))
    topics = [NewTopic(ALICE_TOPIC, 1, 1), NewTopic(BOB_TOPIC, 1, 1)]
    for future in admin.create_topics(topics, request_timeout=TIMEOUT_S).values():
        future.result(TIMEOUT_S)
    allow = AclPermissionType.ALLOW
    bindings = [
        AclBinding(
            ResourceType.TOPIC, "a-", ResourcePatternType.PREFIXED, "User:alice", "*",
            AclOperation.ALL, allow,
        ),
        AclBinding(
            ResourceType.GROUP, ALICE_GROUP, ResourcePatternType.LITERAL, "User:alice", "*",
            AclOperation.ALL, allow,
        ),
        AclBinding(
            ResourceType.TOPIC, BOB_TOPIC, ResourcePatternType.LITERAL, "User:bob", "*",
            AclOperation.ALL, allow,
        ),
        AclBinding(
            ResourceType.GROUP, BOB_GROUP, ResourcePatternType.LITERAL, "User:bob", "*",
            AclOperation.ALL, allow,
        ),
        AclBinding(
            ResourceType.GROUP, SEEN_GROUP, ResourcePatternType.LITERAL, "User:bob", "*",
            AclOperation.DESCRIBE, allow,
        ),
        AclBinding(
            ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:bob", "*",
            AclOperation.DESCRIBE, allow,
        ),
    ]  # fmt: skip
    for future in admin.create_acls(bindings, request_timeout=TIMEOUT_S).values():
        future.result(TIMEOUT_S)
    for group, names in (
        (ALICE_GROUP, (ALICE_TOPIC, BOB_TOPIC)),
        (BOB_GROUP, (BOB_TOPIC,)),
        (SEEN_GROUP, (BOB_TOPIC,)),
    ):
        consumer = Consumer({**broker.client_config(SASL, "admin"), "group.id": group})
        try:
            offsets = [TopicPartition(name, 0, 0) for name in names]
            consumer.commit(offsets=offsets, asynchronous=False)
        finally:
            consumer.close()


def browser(broker: Broker, user: str) -> Browser:
    assert broker.console_url is not None
    return Browser(broker.console_url, (user, USERS[user]))


def topic_exists(broker: Broker, name: str) -> bool:
    admin = AdminClient(broker.client_config(SASL, "admin"))
    return name in admin.list_topics(timeout=TIMEOUT_S).topics


def test_topics_list_shows_only_describable_topics(broker: Broker) -> None:
    """alice's topic list and its live fragment hold her topic and not bob's; the
    overview counts her one topic; admin lists both."""
    alice = browser(broker, "alice")
    for path in ("/topics", "/fragments/topics"):
        status, body, _ = alice.request(path)
        assert status == 200
        assert ALICE_TOPIC in body and BOB_TOPIC not in body
    status, body, _ = alice.request("/")
    assert status == 200
    assert re.search(r"<th>Topics</th><td class=\"num\">1</td>", body)
    status, body, _ = browser(broker, "admin").request("/topics")
    assert status == 200
    assert ALICE_TOPIC in body and BOB_TOPIC in body


def test_bobs_topic_is_refused_to_alice(broker: Broker) -> None:
    """alice gets 403 TOPIC_AUTHORIZATION_FAILED on bob's topic page, its partitions
    fragment, its records, and on producing to, growing, configuring or deleting it
    (and on an unknown topic, as Kafka hides names it does not show); nothing changes."""
    alice = browser(broker, "alice")
    for path in (
        f"/topics/{BOB_TOPIC}",
        f"/topics/{BOB_TOPIC}/fragments/partitions",
        f"/topics/{BOB_TOPIC}/messages",
        "/topics/no-such-topic",
    ):
        status, body, _ = alice.request(path)
        assert status == 403, path
        assert "TOPIC_AUTHORIZATION_FAILED" in body
    token = alice.token("/topics")
    for action, form in (
        ("produce", {"value": "forged"}),
        ("partitions", {"count": "3"}),
        ("configs", {"name": "retention.ms", "value": "1", "action": "set"}),
        ("delete", {}),
    ):
        status, body, _ = alice.request(f"/topics/{BOB_TOPIC}/{action}", {"csrf": token, **form})
        assert status == 403, action
        assert "TOPIC_AUTHORIZATION_FAILED" in body
    status, body, _ = alice.request("/topics", {"csrf": token, "name": "b-mine"})
    assert status == 403 and "TOPIC_AUTHORIZATION_FAILED" in body
    assert topic_exists(broker, BOB_TOPIC) and not topic_exists(broker, "b-mine")
    status, body, _ = browser(broker, "admin").request(f"/topics/{BOB_TOPIC}")
    assert status == 200
    assert "retention.ms</td><td>604800000" in body
    assert "1 partition" in body


def test_alice_produces_to_and_browses_her_topic(broker: Broker) -> None:
    """alice's topic page offers her every form; her produced record shows in the
    message browser."""
    alice = browser(broker, "alice")
    status, body, _ = alice.request(f"/topics/{ALICE_TOPIC}")
    assert status == 200
    for form in ('id="produce-form"', 'id="add-partitions"', 'id="edit-config"', 'id="delete"'):
        assert form in body
    assert 'id="configs-hidden"' not in body
    token = alice.token(f"/topics/{ALICE_TOPIC}")
    form = {"csrf": token, "key": "k", "value": "alice-was-here", "partition": "0"}
    status, body, path = alice.request(f"/topics/{ALICE_TOPIC}/produce", form)
    assert status == 200
    assert path == f"/topics/{ALICE_TOPIC}/messages"
    assert "alice-was-here" in body


def test_alice_creates_and_deletes_her_topics_only(broker: Broker) -> None:
    """CREATE on the `a-` prefix lets alice create `a-new` (and delete it) from the
    console."""
    alice = browser(broker, "alice")
    token = alice.token("/topics")
    status, _, path = alice.request("/topics", {"csrf": token, "name": "a-new"})
    assert status == 200 and path == "/topics/a-new"
    status, _, path = alice.request("/topics/a-new/delete", {"csrf": token})
    assert status == 200 and path == "/topics"
    assert not topic_exists(broker, "a-new")


def test_groups_follow_the_group_acls(broker: Broker) -> None:
    """alice lists and opens her group only, seeing its offsets of her topic but not
    of bob's; bob's group page is 403 GROUP_AUTHORIZATION_FAILED."""
    alice = browser(broker, "alice")
    for path in ("/groups", "/fragments/groups"):
        status, body, _ = alice.request(path)
        assert status == 200
        assert f"/groups/{ALICE_GROUP}" in body and f"/groups/{BOB_GROUP}" not in body
    status, body, _ = alice.request(f"/groups/{ALICE_GROUP}")
    assert status == 200
    assert 'id="reset-form"' in body and 'id="delete-group"' in body
    offsets = body.split('id="offsets"', 1)[1]
    assert ALICE_TOPIC in offsets and BOB_TOPIC not in offsets
    for path in (f"/groups/{BOB_GROUP}", f"/groups/{BOB_GROUP}/fragments/offsets"):
        status, body, _ = alice.request(path)
        assert status == 403, path
        assert "GROUP_AUTHORIZATION_FAILED" in body


def test_alice_cannot_reset_what_she_may_not_read(broker: Broker) -> None:
    """Resetting bob's group is GROUP_AUTHORIZATION_FAILED, deleting it too; resetting
    her own group over bob's topic is TOPIC_AUTHORIZATION_FAILED (OffsetCommit's rule);
    over her own topic it works. bob's group keeps its offsets."""
    alice = browser(broker, "alice")
    token = alice.token("/topics")
    reset = {"csrf": token, "mode": "latest", "confirm": "yes"}
    for action in ("reset", "delete"):
        status, body, _ = alice.request(f"/groups/{BOB_GROUP}/{action}", reset)
        assert status == 403, action
        assert "GROUP_AUTHORIZATION_FAILED" in body
    for form in ({**reset, "topic": BOB_TOPIC}, reset):
        status, body, _ = alice.request(f"/groups/{ALICE_GROUP}/reset", form)
        assert status == 403
        assert "TOPIC_AUTHORIZATION_FAILED" in body
    status, _, path = alice.request(f"/groups/{ALICE_GROUP}/reset", {**reset, "topic": ALICE_TOPIC})
    assert status == 200 and path == f"/groups/{ALICE_GROUP}"
    status, body, _ = browser(broker, "admin").request(f"/groups/{BOB_GROUP}")
    assert status == 200 and BOB_TOPIC in body.split('id="offsets"', 1)[1]


def test_brokers_page_hides_log_dirs_without_cluster_describe(broker: Broker) -> None:
    """alice (no DESCRIBE on the cluster) gets the brokers page without the log dirs,
    naming CLUSTER_AUTHORIZATION_FAILED; admin gets them."""
    status, body, _ = browser(broker, "alice").request("/brokers")
    assert status == 200
    assert 'id="log-dirs-hidden"' in body and "CLUSTER_AUTHORIZATION_FAILED" in body
    assert 'id="log-dirs"' not in body
    status, body, _ = browser(broker, "admin").request("/brokers")
    assert status == 200
    assert 'id="log-dirs"' in body and 'id="log-dirs-hidden"' not in body


def test_cluster_describe_lists_every_group(broker: Broker) -> None:
    """bob, who may DESCRIBE the cluster, lists both groups (as ListGroups answers) and
    sees the log dirs, but alice's group page is still GROUP_AUTHORIZATION_FAILED."""
    bob = browser(broker, "bob")
    status, body, _ = bob.request("/groups")
    assert status == 200
    assert f"/groups/{ALICE_GROUP}" in body and f"/groups/{BOB_GROUP}" in body
    status, body, _ = bob.request(f"/groups/{ALICE_GROUP}")
    assert status == 403 and "GROUP_AUTHORIZATION_FAILED" in body
    status, body, _ = bob.request("/brokers")
    assert status == 200 and 'id="log-dirs"' in body


def test_describe_only_shows_a_group_without_its_forms(broker: Broker) -> None:
    """bob may only DESCRIBE group gc: its page shows its offsets without the reset and
    delete forms, and a reset or delete posted anyway is GROUP_AUTHORIZATION_FAILED."""
    bob = browser(broker, "bob")
    status, body, _ = bob.request(f"/groups/{SEEN_GROUP}")
    assert status == 200
    assert BOB_TOPIC in body.split('id="offsets"', 1)[1]
    assert 'id="reset-form"' not in body and 'id="delete-group"' not in body
    token = bob.token("/topics")
    for action in ("reset", "delete"):
        form = {"csrf": token, "mode": "earliest", "confirm": "yes"}
        status, body, _ = bob.request(f"/groups/{SEEN_GROUP}/{action}", form)
        assert status == 403 and "GROUP_AUTHORIZATION_FAILED" in body
    status, body, _ = browser(broker, "admin").request("/groups")
    assert f"/groups/{SEEN_GROUP}" in body


def test_admin_can_do_everything(broker: Broker) -> None:
    """The super user opens bob's topic, its records and group, resets bob's group and
    deletes bob's topic."""
    admin = browser(broker, "admin")
    for path in (f"/topics/{BOB_TOPIC}/messages", f"/groups/{BOB_GROUP}"):
        status, _, _ = admin.request(path)
        assert status == 200, path
    token = admin.token("/topics")
    reset = {"csrf": token, "mode": "earliest", "confirm": "yes"}
    status, _, path = admin.request(f"/groups/{BOB_GROUP}/reset", reset)
    assert status == 200 and path == f"/groups/{BOB_GROUP}"
    status, _, path = admin.request(f"/topics/{BOB_TOPIC}/delete", {"csrf": token})
    assert status == 200 and path == "/topics"
    assert not topic_exists(broker, BOB_TOPIC)
