"""The console in a real browser (headless Chromium, one session for the module)
against a real broker: the overview, a topic, the message browser with a JSON, a binary
and a `<script>` value (shown as text, never run), the brokers page's log dir, a group
with lag whose table htmx refreshes without reloading the page, an offset reset through
its confirmation page, and a record produced from the form. Each page's screenshot is kept under
test-artifacts/console/ and checked for size."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from odradek.testing import Broker
from tests.console.chromium import screenshot, start_chromium

TIMEOUT_S = 30.0
SCRIPT_VALUE = b"<script>window.injected = 1</script>"
JSON_VALUE = b'{"rider": "oslo", "trip": 1}'
BINARY_VALUE = b"\x00\xff\x10\x80"


@pytest.fixture(scope="module")
def console_broker() -> Iterator[Broker]:
    """A broker with its listener; topic `rides` holds a JSON, a binary and a
    `<script>` value, and group `dashboards` committed offset 1 (lag 2)."""
    with Broker(config={"console.listeners": "http://127.0.0.1:0"}) as broker:
        broker.create_topic("rides", 1)
        produce(broker, [JSON_VALUE, BINARY_VALUE, SCRIPT_VALUE])
        client = group_client(broker)
        try:
            client.commit(offsets=[TopicPartition("rides", 0, 1)], asynchronous=False)
        finally:
            client.close()
        yield broker


@pytest.fixture(scope="module")
def chromium() -> Iterator[webdriver.Chrome]:
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


def produce(broker: Broker, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for value in values:
        producer.produce("rides", key=b"k", value=value, partition=0)
    assert producer.flush(TIMEOUT_S) == 0


def group_client(broker: Broker) -> Consumer:
    return Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "dashboards"})


def open_page(driver: webdriver.Chrome, broker: Broker, path: str) -> None:
    assert broker.console_url is not None
    driver.get(broker.console_url + path)


def cell_texts(driver: webdriver.Chrome, table: str) -> list[list[str]]:
    """The shown text of each data row's cells, read in one script call: htmx may
    replace the table at any moment, which would make element handles stale."""
    rows: list[list[str]] = driver.execute_script(
        "const t = document.getElementById(arguments[0]);"
        "return t ? Array.from(t.rows).slice(1).map("
        "r => Array.from(r.cells).map(c => c.innerText.trim())) : [];",
        table,
    )
    return rows


def test_overview_and_topic(chromium: webdriver.Chrome, console_broker: Broker) -> None:
    """The overview names the cluster and links to the topics; the topic page lists
    partition 0 with end offset 3 and offers the produce form."""
    open_page(chromium, console_broker, "/")
    assert "odradek" in chromium.title
    assert chromium.find_element(By.LINK_TEXT, "Topics").is_displayed()
    screenshot(chromium, "overview")
    open_page(chromium, console_broker, "/topics/rides")
    assert chromium.find_element(By.TAG_NAME, "h1").text == "Topic rides"
    assert cell_texts(chromium, "partitions")[0][0] == "0"
    assert "3" in cell_texts(chromium, "partitions")[0]
    assert chromium.find_element(By.ID, "produce-form").is_displayed()
    screenshot(chromium, "topic")


def test_brokers_page_shows_the_log_dir(chromium: webdriver.Chrome, console_broker: Broker) -> None:
    """The brokers page lists this broker's log dir with the partitions in it and its
    file system's size and free space."""
    open_page(chromium, console_broker, "/brokers")
    [row] = cell_texts(chromium, "log-dirs")
    hosted = sum(console_broker.topics().values())  # rides and __consumer_offsets
    assert row[:3] == ["1", os.path.abspath(console_broker.data_dir), str(hosted)]
    assert row[4].endswith("B") and row[5].endswith("B")
    screenshot(chromium, "brokers")


def test_message_browser_shows_values_as_text(
    chromium: webdriver.Chrome, console_broker: Broker
) -> None:
    """With format=json the JSON value is pretty-printed, the binary one shown as hex,
    and the `<script>` value is text on the page: the browser never ran it."""
    open_page(chromium, console_broker, "/topics/rides/messages?format=json&from=offset&offset=0")
    values = [row[3] for row in cell_texts(chromium, "records")]
    assert values[0].startswith("{\n") and '"rider": "oslo"' in values[0]
    assert values[1].startswith("00 ff 10 80")
    assert values[2] == SCRIPT_VALUE.decode()
    assert chromium.execute_script("return window.injected === undefined") is True
    screenshot(chromium, "messages")


def test_group_lag_refreshes_without_reload(
    chromium: webdriver.Chrome, console_broker: Broker
) -> None:
    """The group page shows lag 2; after 2 more records htmx replaces the offsets table
    with lag 4 while the page itself stays (a marker set on it survives)."""
    open_page(chromium, console_broker, "/groups/dashboards")
    assert cell_texts(chromium, "offsets")[0][:5] == ["rides", "0", "1", "3", "2"]
    chromium.execute_script("window.notReloaded = true")
    produce(console_broker, [b"a", b"b"])
    WebDriverWait(chromium, TIMEOUT_S).until(
        lambda d: cell_texts(d, "offsets")[0][3:5] == ["5", "4"]
    )
    assert chromium.execute_script("return window.notReloaded") is True
    screenshot(chromium, "group")


def test_reset_offsets_through_the_confirmation(
    chromium: webdriver.Chrome, console_broker: Broker
) -> None:
    """Choosing "the earliest offset" shows the plan (1 -> 0) without changing the
    offset; confirming commits 0, which a Kafka client reads back."""
    open_page(chromium, console_broker, "/groups/dashboards")
    form = chromium.find_element(By.ID, "reset-form")
    Select(form.find_element(By.NAME, "mode")).select_by_value("earliest")
    form.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(chromium, TIMEOUT_S).until(lambda d: d.find_elements(By.ID, "reset-plan"))
    assert cell_texts(chromium, "reset-plan") == [["rides", "0", "1", "0"]]
    assert committed(console_broker) == 1
    screenshot(chromium, "reset-confirm")
    chromium.find_element(By.CSS_SELECTOR, "#confirm button[name=confirm]").click()
    WebDriverWait(chromium, TIMEOUT_S).until(lambda d: d.current_url.endswith("/groups/dashboards"))
    assert committed(console_broker) == 0
    assert cell_texts(chromium, "offsets")[0][2] == "0"


def test_produce_from_the_form(chromium: webdriver.Chrome, console_broker: Broker) -> None:
    """Typing a value into the topic page's form and producing lands on the message
    browser at the new record's offset, showing it."""
    open_page(chromium, console_broker, "/topics/rides")
    form = chromium.find_element(By.ID, "produce-form")
    Select(form.find_element(By.NAME, "partition")).select_by_value("0")
    form.find_element(By.NAME, "value").send_keys("typed in a browser")
    form.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(chromium, TIMEOUT_S).until(lambda d: "/messages" in d.current_url)
    rows = cell_texts(chromium, "records")
    assert rows[0][0] == "5" and rows[0][3] == "typed in a browser"


def committed(broker: Broker) -> int:
    client = group_client(broker)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            found = client.committed([TopicPartition("rides", 0)], timeout=TIMEOUT_S)
            if found[0].error is None or time.monotonic() > deadline:
                return int(found[0].offset)
            time.sleep(0.1)
    finally:
        client.close()
