"""The console's writes on a real broker: creating a topic, setting and removing a
topic config and deleting a topic through the pages' forms with their CSRF token;
forged POSTs (no token, a wrong one, no cookie) refused with 403; Kafka's checks giving
a 400 page; and `console.read.only=true` hiding the forms and refusing every POST."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from odradek.testing import Broker
from tests.console.formclient import Browser


@pytest.fixture(scope="module")
def console_broker() -> Iterator[Broker]:
    """A broker with its HTTP listener on a free loopback port."""
    with Broker(config={"console.listeners": "http://127.0.0.1:0"}) as broker:
        yield broker


def test_create_configure_and_delete_through_the_forms(console_broker: Broker) -> None:
    """Create `made` with 3 partitions from the topics page, set retention.ms on its
    page (shown as the topic's own), put it back to the default, then delete it."""
    assert console_broker.console_url is not None
    browser = Browser(console_broker.console_url)
    token = browser.token("/topics")
    status, body, where = browser.request(
        "/topics", {"csrf": token, "name": "made", "partitions": "3"}
    )
    assert (status, where) == (200, "/topics/made")
    assert console_broker.topics()["made"] == 3
    form = {"csrf": token, "name": "retention.ms", "value": "5000", "action": "set"}
    status, body, _ = browser.request("/topics/made/configs", form)
    assert status == 200
    assert "<tr><td>retention.ms</td><td>5000</td><td>DYNAMIC_TOPIC_CONFIG</td>" in body
    form["action"] = "delete"
    status, body, _ = browser.request("/topics/made/configs", form)
    assert "<tr><td>retention.ms</td><td>604800000</td><td>DEFAULT_CONFIG</td>" in body
    status, body, where = browser.request("/topics/made/delete", {"csrf": token})
    assert (status, where) == (200, "/topics")
    assert "made" not in console_broker.topics()


def test_kafka_checks_give_a_400_page(console_broker: Broker) -> None:
    """A name Kafka refuses (shown escaped), an existing topic, a bad config value and
    a bad partition count are 400 pages with Kafka's message; an unknown topic in the
    URL is a 404 page; nothing is changed."""
    assert console_broker.console_url is not None
    browser = Browser(console_broker.console_url)
    token = browser.token("/topics")
    status, body, _ = browser.request("/topics", {"csrf": token, "name": "<b>x</b>"})
    assert status == 400 and "&lt;b&gt;x&lt;/b&gt;" in body and "<b>" not in body
    console_broker.create_topic("kept", 1)
    status, body, _ = browser.request("/topics", {"csrf": token, "name": "kept"})
    assert status == 400 and "already exists" in body
    status, _, _ = browser.request("/topics", {"csrf": token, "name": "z", "partitions": "x"})
    assert status == 400
    form = {"csrf": token, "name": "retention.ms", "value": "soon", "action": "set"}
    status, body, _ = browser.request("/topics/kept/configs", form)
    assert status == 400 and "retention.ms" in body
    assert browser.request("/topics/gone/delete", {"csrf": token})[0] == 404
    assert "z" not in console_broker.topics() and "kept" in console_broker.topics()


def test_forged_posts_are_refused(console_broker: Broker) -> None:
    """A POST without a token, with a wrong token, with another browser's token, or
    without the cookie gets 403 and changes nothing."""
    assert console_broker.console_url is not None
    console_broker.create_topic("target", 1)
    browser = Browser(console_broker.console_url)
    token = browser.token("/topics")
    other = Browser(console_broker.console_url)
    other_token = other.token("/topics")
    assert other_token != token
    assert browser.request("/topics/target/delete", {})[0] == 403
    assert browser.request("/topics/target/delete", {"csrf": "0" * 64})[0] == 403
    assert browser.request("/topics/target/delete", {"csrf": other_token})[0] == 403
    cookieless = Browser(console_broker.console_url)
    assert cookieless.request("/topics/target/delete", {"csrf": token})[0] == 403
    assert browser.request("/topics", {"name": "forged"})[0] == 403
    assert "target" in console_broker.topics() and "forged" not in console_broker.topics()


def test_read_only_hides_forms_and_refuses_posts() -> None:
    """With console.read.only=true no page has a form that writes, and every POST
    (topic, config, produce, partitions, group reset and delete) is a 403 page,
    whatever it carries."""
    config = {"console.listeners": "http://127.0.0.1:0", "console.read.only": "true"}
    with Broker(config=config) as broker:
        broker.create_topic("fixed", 1)
        assert broker.console_url is not None
        browser = Browser(broker.console_url)
        for path in ("/topics", "/topics/fixed"):
            status, body, _ = browser.request(path)
            assert status == 200 and 'method="post"' not in body
        status, body, _ = browser.request("/topics/fixed/delete", {"csrf": "x"})
        assert status == 403 and "read-only" in body
        assert browser.request("/topics", {"name": "new"})[0] == 403
        for path in ("/topics/fixed/produce", "/topics/fixed/partitions"):
            assert browser.request(path, {"csrf": "x", "value": "v", "count": "2"})[0] == 403
        for path in ("/groups/any/reset", "/groups/any/delete"):
            assert browser.request(path, {"csrf": "x", "confirm": "yes"})[0] == 403
        assert broker.topics()["fixed"] == 1
        assert set(broker.topics()) >= {"fixed"} and "new" not in broker.topics()
