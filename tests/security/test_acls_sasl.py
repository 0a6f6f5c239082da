"""ACLs with authenticated principals: a broker with SASL/PLAIN users admin (a super
user), alice and bob. ACLs are managed with `odradek acl` logged in as admin; alice, allowed
her prefixed topics and her group, cannot see, produce to, consume from, commit for or
describe the configs of bob's topic, nor change ACLs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from kio.schema.errors import ErrorCode

from helpers import unique_topic
from odradek.testing import Broker
from tests.cli.conftest import Result, run_cli
from tests.server.wire import WireClient, build, request_module

TIMEOUT_S = 15
USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
SASL = "SASL_PLAINTEXT"


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    config = {
        "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
        "super.users": "User:admin",
    }
    with Broker(config=config, sasl_users=USERS) as running:
        yield running


def client(broker: Broker, user: str, **extra: Any) -> dict[str, Any]:
    return {**broker.client_config(SASL, user), **extra}


def acl_cli(broker: Broker, *args: str, user: str = "admin") -> Result:
    """`odradek acl ...` logged in as `user`, JSON output."""
    login = client(broker, user)
    options = [f"-X{key}={value}" for key, value in login.items() if key != "bootstrap.servers"]
    return run_cli(
        "acl",
        *args,
        "--bootstrap-server",
        login["bootstrap.servers"],
        *options,
        "--output",
        "json",
        "--timeout",
        "10",
    )


@pytest.fixture(scope="module")
def names(broker: Broker) -> dict[str, str]:
    """alice may do anything on topics `<base>-alice-*` and READ group `<base>-alice-g`;
    bob anything on `<base>-bob`."""
    base = unique_topic("sasl")
    found = {
        "alice": f"{base}-alice-t",
        "alice_prefix": f"{base}-alice-",
        "bob": f"{base}-bob",
        "alice_group": f"{base}-alice-g",
    }
    admin = AdminClient(client(broker, "admin"))
    futures = admin.create_topics(
        [NewTopic(found["alice"], 1, 1), NewTopic(found["bob"], 1, 1)], request_timeout=TIMEOUT_S
    )
    for future in futures.values():
        future.result(TIMEOUT_S)
    prefix = found["alice_prefix"]
    for args in (
        ["--topic", prefix, "--prefixed", "--principal", "User:alice", "--operation", "ALL"],
        ["--topic", found["bob"], "--principal", "User:bob", "--operation", "ALL"],
        ["--group", found["alice_group"], "--principal", "User:alice", "--operation", "READ"],
    ):
        result = acl_cli(broker, "add", "--allow", *args)
        assert result.code == 0, result.err
    return found


def produce_error(config: dict[str, Any], topic: str) -> int | None:
    producer = Producer({**config, "message.timeout.ms": 10000})
    outcome: list[KafkaError | None] = []
    try:
        producer.produce(topic, b"v", on_delivery=lambda err, _msg: outcome.append(err))
    except KafkaException as exc:
        return int(exc.args[0].code())
    producer.flush(TIMEOUT_S)
    assert outcome, "no delivery report"
    return None if outcome[0] is None else outcome[0].code()


def commit_error(consumer: Consumer, topic: str) -> int | None:
    """The error code of committing offset 1 of the topic's partition 0, or None."""
    try:
        result = consumer.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    except KafkaException as exc:
        return int(exc.args[0].code())
    error = result[0].error if result else None
    return None if error is None else int(error.code())


def test_odradek_acl_lists_what_it_added(broker: Broker, names: dict[str, str]) -> None:
    """`odradek acl list --topic T --match` shows the prefixed ACL that covers alice's
    topic; `list` without a resource shows all three."""
    matched = acl_cli(broker, "list", "--topic", names["alice"], "--match")
    assert matched.code == 0, matched.err
    assert json.loads(matched.out) == [
        {
            "resource": "TOPIC",
            "name": names["alice_prefix"],
            "pattern": "PREFIXED",
            "principal": "User:alice",
            "host": "*",
            "operation": "ALL",
            "permission": "ALLOW",
        }
    ]
    everything = json.loads(acl_cli(broker, "list").out)
    assert {(d["resource"], d["name"]) for d in everything} >= {
        ("TOPIC", names["alice_prefix"]),
        ("TOPIC", names["bob"]),
        ("GROUP", names["alice_group"]),
    }


def test_alice_sees_and_writes_only_her_topics(broker: Broker, names: dict[str, str]) -> None:
    """Metadata shows alice her topic, not bob's; she produces to hers and is refused
    bob's with TOPIC_AUTHORIZATION_FAILED; bob produces to his."""
    alice = client(broker, "alice")
    topics = AdminClient(alice).list_topics(timeout=TIMEOUT_S).topics
    assert names["alice"] in topics and names["bob"] not in topics
    assert produce_error(alice, names["alice"]) is None
    assert produce_error(alice, names["bob"]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce_error(client(broker, "bob"), names["bob"]) is None


def test_alice_cannot_consume_commit_or_describe_bobs_topic(
    broker: Broker, names: dict[str, str]
) -> None:
    """alice's consumer in her group reads and commits her topic; committing bob's topic
    is TOPIC_AUTHORIZATION_FAILED; bob's topic's configs are refused her."""
    assert produce_error(client(broker, "alice"), names["alice"]) is None
    consumer = Consumer(
        client(
            broker,
            "alice",
            **{"group.id": names["alice_group"], "auto.offset.reset": "earliest"},
        )
    )
    try:
        consumer.assign([TopicPartition(names["alice"], 0, 0)])
        message = consumer.poll(TIMEOUT_S)
        assert message is not None and message.error() is None
        assert commit_error(consumer, names["alice"]) is None
        assert commit_error(consumer, names["bob"]) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    finally:
        consumer.close()
    resource = ConfigResource("topic", names["bob"])
    admin = AdminClient(client(broker, "alice"))  # kept alive until the answer
    future = admin.describe_configs([resource], request_timeout=TIMEOUT_S)[resource]
    with pytest.raises(KafkaException) as raised:
        future.result(TIMEOUT_S)
    assert raised.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_only_the_super_user_manages_acls(broker: Broker, names: dict[str, str]) -> None:
    """alice's `odradek acl add` fails (CLUSTER_AUTHORIZATION_FAILED, exit 1); admin's
    `odradek acl remove` takes bob's ACL away and bob is refused at once."""
    refused = acl_cli(
        broker,
        "add",
        "--allow",
        "--topic",
        names["bob"],
        "--principal",
        "User:alice",
        "--operation",
        "READ",
        user="alice",
    )
    assert refused.code == 1 and "authorization" in refused.err.lower(), refused.err
    removed = acl_cli(broker, "remove", "--topic", names["bob"], "--principal", "User:bob")
    assert removed.code == 0, removed.err
    assert [d["principal"] for d in json.loads(removed.out)] == ["User:bob"]
    assert produce_error(client(broker, "bob"), names["bob"]) == (
        KafkaError.TOPIC_AUTHORIZATION_FAILED
    )


def test_authorized_operations_are_the_principals(broker: Broker, names: dict[str, str]) -> None:
    """confluent-kafka's describe_topics, describe_consumer_groups and describe_cluster
    with include_authorized_operations report what alice may do: everything on her topic,
    READ and DESCRIBE on her group, nothing on the cluster; the super user everything."""
    from confluent_kafka import TopicCollection

    alice = AdminClient(client(broker, "alice"))
    topic = alice.describe_topics(
        TopicCollection([names["alice"]]),
        include_authorized_operations=True,
        request_timeout=TIMEOUT_S,
    )[names["alice"]].result(TIMEOUT_S)
    assert {op.name for op in topic.authorized_operations} == {
        "READ",
        "WRITE",
        "CREATE",
        "DESCRIBE",
        "DELETE",
        "ALTER",
        "DESCRIBE_CONFIGS",
        "ALTER_CONFIGS",
    }
    group = alice.describe_consumer_groups(
        [names["alice_group"]], include_authorized_operations=True, request_timeout=TIMEOUT_S
    )[names["alice_group"]].result(TIMEOUT_S)
    assert {op.name for op in group.authorized_operations} == {"READ", "DESCRIBE"}
    mine = alice.describe_cluster(include_authorized_operations=True, request_timeout=TIMEOUT_S)
    assert not mine.result(TIMEOUT_S).authorized_operations
    admin = AdminClient(client(broker, "admin"))
    everything = admin.describe_cluster(
        include_authorized_operations=True, request_timeout=TIMEOUT_S
    ).result(TIMEOUT_S)
    assert {op.name for op in everything.authorized_operations} >= {"ALTER", "CLUSTER_ACTION"}


def test_transactions_need_write_on_the_transactional_id(
    broker: Broker, names: dict[str, str]
) -> None:
    """alice's transactional producer is refused a transactional id she has no ACL for
    (TRANSACTIONAL_ID_AUTHORIZATION_FAILED from init_transactions); once admin allows her
    WRITE on it with `odradek acl`, she commits a transaction to her topic."""
    txn_id = f"{names['alice']}-txn"

    def producer() -> Producer:
        return Producer(
            client(broker, "alice", **{"transactional.id": txn_id, "transaction.timeout.ms": 10000})
        )

    with pytest.raises(KafkaException) as raised:
        producer().init_transactions(TIMEOUT_S)
    assert raised.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    added = acl_cli(
        broker,
        "add",
        "--allow",
        "--transactional-id",
        txn_id,
        "--principal",
        "User:alice",
        "--operation",
        "WRITE",
    )
    assert added.code == 0, added.err
    allowed = producer()
    allowed.init_transactions(TIMEOUT_S)
    allowed.begin_transaction()
    allowed.produce(names["alice"], b"in-txn")
    allowed.commit_transaction(TIMEOUT_S)


def test_listing_acls_needs_describe_on_the_cluster(broker: Broker, names: dict[str, str]) -> None:
    """bob's `odradek acl list` is refused (exit 1) until admin grants him DESCRIBE on
    the cluster with `odradek acl add --cluster`; the grant is listed as the CLUSTER
    resource."""
    refused = acl_cli(broker, "list", user="bob")
    assert refused.code == 1 and "DESCRIBE on the cluster" in refused.err, refused
    added = acl_cli(
        broker, "add", "--allow", "--cluster", "--principal", "User:bob", "--operation", "DESCRIBE"
    )
    assert added.code == 0, added.err
    listed = acl_cli(broker, "list", "--cluster", user="bob")
    assert listed.code == 0, listed.err
    assert [(d["resource"], d["name"], d["principal"]) for d in json.loads(listed.out)] == [
        ("CLUSTER", "kafka-cluster", "User:bob")
    ]


def test_scram_credentials_need_the_cluster(broker: Broker, names: dict[str, str]) -> None:
    """alice may not change the super user's SCRAM password (ALTER on the cluster):
    CLUSTER_AUTHORIZATION_FAILED. Listing the users needs DESCRIBE on the cluster: the
    anonymous principal of the PLAINTEXT listener gets Kafka's top-level
    CLUSTER_AUTHORIZATION_FAILED and no users (asked on the wire: librdkafka 2.16 crashes
    on that answer); admin lists them."""
    from confluent_kafka.admin import (
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    alice = AdminClient(client(broker, "alice"))
    upsert = UserScramCredentialUpsertion(
        "admin", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), b"taken-over"
    )
    futures = alice.alter_user_scram_credentials([upsert], request_timeout=TIMEOUT_S)
    with pytest.raises(KafkaException) as altered:
        futures["admin"].result(TIMEOUT_S)
    assert altered.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    m = request_module(50, 0)
    with WireClient(broker.port) as wire:
        described = wire.call(50, 0, build(m.DescribeUserScramCredentialsRequest, users=None))
    assert described.error_code == ErrorCode.cluster_authorization_failed
    assert described.results == ()
    admin = AdminClient(client(broker, "admin"))
    found = admin.describe_user_scram_credentials(["admin"], request_timeout=TIMEOUT_S)
    assert found["admin"].result(TIMEOUT_S).scram_credential_infos
