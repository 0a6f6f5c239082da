"""Resetting a group's offsets and deleting a group from its console page on a real
broker: a confirmation page first that changes nothing, then the change as a Kafka
client sees it (earliest, latest, a time, an offset kept within the log); a group with
members refused with its state as kafka-consumer-groups says it; deletion through
DeleteGroups' rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from odradek.testing import Broker
from tests.console.formclient import Browser

TIMEOUT_S = 30.0
BASE_MS = 1_700_000_000_000


@pytest.fixture(scope="module")
def console_broker() -> Iterator[Broker]:
    """A broker with its listener and topic `events`: 2 partitions, 5 records each with
    timestamps BASE_MS + 1000 * n (n = 0..4)."""
    with Broker(config={"console.listeners": "http://127.0.0.1:0"}) as broker:
        broker.create_topic("events", 2)
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
        for partition in (0, 1):
            for n in range(5):
                producer.produce(
                    "events", value=b"e", partition=partition, timestamp=BASE_MS + 1000 * n
                )
        assert producer.flush(TIMEOUT_S) == 0
        yield broker


def consumer(broker: Broker, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )


def commit(broker: Broker, group: str, offsets: dict[int, int]) -> None:
    """Commits from outside the group (assign()), which leaves it Empty."""
    client = consumer(broker, group)
    try:
        client.commit(
            offsets=[TopicPartition("events", p, o) for p, o in offsets.items()],
            asynchronous=False,
        )
    finally:
        client.close()


def committed(broker: Broker, group: str) -> dict[int, int]:
    client = consumer(broker, group)
    try:
        found = client.committed(
            [TopicPartition("events", 0), TopicPartition("events", 1)], timeout=TIMEOUT_S
        )
        return {tp.partition: tp.offset for tp in found}
    finally:
        client.close()


def browser_for(broker: Broker) -> Browser:
    assert broker.console_url is not None
    return Browser(broker.console_url)


def test_reset_needs_confirmation_then_sets_offsets(console_broker: Broker) -> None:
    """The first POST shows the plan (committed 4 and 2 -> 0) and changes nothing; the
    confirmed one commits it and returns to the group page."""
    commit(console_broker, "resettable", {0: 4, 1: 2})
    browser = browser_for(console_broker)
    token = browser.token("/groups/resettable")
    form = {"csrf": token, "topic": "", "mode": "earliest", "value": ""}
    status, body, _ = browser.request("/groups/resettable/reset", form)
    assert status == 200 and 'id="reset-plan"' in body
    assert '<td class="num">4</td><td class="num">0</td>' in body
    assert committed(console_broker, "resettable") == {0: 4, 1: 2}
    status, _, where = browser.request("/groups/resettable/reset", {**form, "confirm": "yes"})
    assert (status, where) == (200, "/groups/resettable")
    assert committed(console_broker, "resettable") == {0: 0, 1: 0}


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("latest", "", {0: 5, 1: 5}),
        ("offset", "3", {0: 3, 1: 3}),
        ("offset", "99", {0: 5, 1: 5}),  # kept within the log, as the tool does
        ("time", str(BASE_MS + 2500), {0: 3, 1: 3}),
        ("time", "2100-01-01T00:00:00", {0: 5, 1: 5}),
    ],
)
def test_reset_modes(
    console_broker: Broker, mode: str, value: str, expected: dict[int, int]
) -> None:
    """Each mode of the form, for the topic named, gives Kafka's offsets."""
    group = f"modes-{mode}-{value}"
    commit(console_broker, group, {0: 1, 1: 1})
    browser = browser_for(console_broker)
    form = {"csrf": browser.token("/topics"), "topic": "events", "mode": mode, "value": value}
    status, _, _ = browser.request(f"/groups/{group}/reset", {**form, "confirm": "yes"})
    assert status == 200
    assert committed(console_broker, group) == expected


def test_active_group_is_refused_and_bad_input_is_400(console_broker: Broker) -> None:
    """With a member in the group, reset and delete are 400 pages naming its state and
    nothing changes; a bad mode or time is a 400, an unknown group a 404."""
    member = consumer(console_broker, "busy")
    try:
        member.subscribe(["events"])
        for _ in range(int(TIMEOUT_S * 2)):
            member.poll(0.5)
            if member.assignment():
                break
        assert member.assignment()
        browser = browser_for(console_broker)
        token = browser.token("/topics")
        form = {"csrf": token, "topic": "", "mode": "earliest", "value": "", "confirm": "yes"}
        status, body, _ = browser.request("/groups/busy/reset", form)
        assert status == 400 and "inactive, but the current state is Stable" in body
        status, body, _ = browser.request("/groups/busy/delete", {"csrf": token, "confirm": "yes"})
        assert status == 400 and "current state is Stable" in body
    finally:
        member.close()
    commit(console_broker, "checked", {0: 1})
    form = {"csrf": token, "topic": "", "mode": "sideways", "value": ""}
    assert browser.request("/groups/checked/reset", form)[0] == 400
    form.update(mode="time", value="yesterday")
    assert browser.request("/groups/checked/reset", form)[0] == 400
    form.update(mode="earliest", topic="missing")
    assert browser.request("/groups/checked/reset", form)[0] == 400
    assert browser.request("/groups/nobody/reset", {**form, "topic": ""})[0] == 404
    assert browser.request("/groups/checked/delete", {"csrf": "0" * 64})[0] == 403
    assert committed(console_broker, "checked")[0] == 1


def test_delete_after_confirmation(console_broker: Broker) -> None:
    """The first POST asks; the confirmed one deletes the group and its offsets, which a
    Kafka admin client no longer lists."""
    commit(console_broker, "doomed", {0: 2})
    browser = browser_for(console_broker)
    token = browser.token("/groups/doomed")
    status, body, _ = browser.request("/groups/doomed/delete", {"csrf": token})
    assert status == 200 and "Delete group doomed?" in body
    assert committed(console_broker, "doomed")[0] == 2
    status, _, where = browser.request("/groups/doomed/delete", {"csrf": token, "confirm": "yes"})
    assert (status, where) == (200, "/groups")
    admin = AdminClient({"bootstrap.servers": console_broker.bootstrap_servers})
    listed = admin.list_consumer_groups().result(timeout=TIMEOUT_S)
    assert "doomed" not in {g.group_id for g in listed.valid}
    assert committed(console_broker, "doomed")[0] < 0  # no committed offset left
    assert browser.request("/groups/doomed")[0] == 404
