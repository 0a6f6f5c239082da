"""Regenerates the console screenshots in docs/console/ shown by docs/console.md.

Starts a broker in-process on free loopback ports with some demo data (topics, JSON and
binary records, a consumer group whose lag moves, sampled every second so its chart has
a line), opens the main pages in headless Chromium (Debian's chromium and
chromium-driver, `make system-deps`) at a fixed window size and writes one PNG a page.
Run from the repository root with the dev extras installed:

    python scripts/console_screenshots.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from odradek.console import lag
from odradek.testing import Broker

OUT = Path(__file__).resolve().parents[1] / "docs" / "console"
WIDTH, HEIGHT = 1200, 760
MAX_BYTES = 150_000
GROUP = "billing"
# Samples of the demo group's lag: one a second, while the demo data moves.
SAMPLE_S = 1.0
ROUNDS = 24


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={WIDTH},{HEIGHT}",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def demo_topics(broker: Broker) -> None:
    broker.create_topic("rides", 3)
    broker.create_topic("payments", 2, {"retention.ms": 86_400_000})
    broker.create_topic("audit-log", 1, {"cleanup.policy": "compact"})


def demo_data(broker: Broker) -> None:
    """Records in the topics, and group `billing` consuming `rides` behind the producer
    so that its lag rises and falls while it is sampled."""
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for n in range(39):
        ride = {"ride": n, "city": ["oslo", "lima", "pune"][n % 3], "km": round(1.7 * n, 1)}
        producer.produce("rides", key=f"rider-{n % 7}", value=json.dumps(ride), partition=n % 3)
        producer.produce("payments", key=f"p{n}", value=bytes([n, 0xFF, 0x00, n * 3 % 256]))
        producer.produce("audit-log", key=f"user-{n % 5}", value=f"login #{n}")
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": GROUP})
    ends = dict.fromkeys(range(3), 13)  # the 39 rides above, 13 a partition
    done = dict.fromkeys(ends, 0)
    try:
        for round_ in range(ROUNDS):
            rising = round_ < ROUNDS // 2
            for n in range(9 if rising else 3):
                producer.produce("rides", value=json.dumps({"ride": 100 + n}), partition=n % 3)
                ends[n % 3] += 1
            assert producer.flush(30) == 0
            for p in done:  # behind while the rides pour in, then catching up
                done[p] = min(ends[p], done[p] + (1 if rising else 6))
            consumer.commit(
                offsets=[TopicPartition("rides", p, o) for p, o in done.items()],
                asynchronous=False,
            )
            time.sleep(SAMPLE_S)
    finally:
        consumer.close()


def shoot(driver: webdriver.Chrome, base: str, path: str, name: str) -> None:
    driver.get(base + path)
    save(driver, name)


def save(driver: webdriver.Chrome, name: str) -> None:
    target = OUT / f"{name}.png"
    driver.save_screenshot(str(target))
    size = target.stat().st_size
    print(f"{target.relative_to(OUT.parents[1])}: {size // 1024} KiB")
    if size > MAX_BYTES:
        sys.exit(f"{target} is over {MAX_BYTES} bytes: make the window smaller")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    lag.SAMPLE_S = SAMPLE_S  # read by the sampling task at each round
    with Broker(config={"console.listeners": "http://127.0.0.1:0"}) as broker:
        assert broker.console_url is not None
        base = broker.console_url
        driver = chromium()
        try:
            demo_topics(broker)
            # The overview's and the topics' rates are measured between two looks.
            driver.get(base + "/")
            driver.get(base + "/topics")
            demo_data(broker)
            shoot(driver, base, "/", "overview")
            shoot(driver, base, "/topics", "topics")
            shoot(driver, base, "/topics/rides", "topic")
            shoot(driver, base, "/topics/rides/messages?format=json&limit=8", "messages")
            shoot(driver, base, "/groups", "groups")
            shoot(driver, base, f"/groups/{GROUP}", "group")
            form = driver.find_element(By.ID, "reset-form")
            Select(form.find_element(By.NAME, "mode")).select_by_value("latest")
            form.find_element(By.TAG_NAME, "button").click()
            driver.find_element(By.ID, "reset-plan")
            save(driver, "reset-confirm")
            shoot(driver, base, "/brokers", "brokers")
        finally:
            driver.quit()


if __name__ == "__main__":
    main()
