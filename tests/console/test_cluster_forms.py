"""The console's forms in a cluster of two brokers on ZooKeeper: a group's offsets reset
(partitions led elsewhere looked up on their leader) and the group deleted on its
coordinator's console (the commits and tombstones written to the replicated
__consumer_offsets); a group's lag shown for partitions led by the other broker; a
record produced on the partition leader's console with acks=all and read back, sent to
the leader from another broker's console, and refused with NOT_ENOUGH_REPLICAS once the
ISR is below min.insync.replicas; partitions added through CreatePartitions, placed and
led; every broker's log dirs on each console's brokers page."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from odradek.coordinator.coordinator import partition_for
from odradek.testing.cluster import Cluster, wait_until
from odradek.testing.zookeeper import ZooKeeper
from tests.console.formclient import Browser

TIMEOUT_S = 60.0
BASE_MS = 1_700_000_000_000
OFFSETS_PARTITIONS = 2


@pytest.fixture(scope="module")
def cluster(zookeeper: ZooKeeper) -> Iterator[Cluster]:
    """Two brokers with their consoles; __consumer_offsets replicated on both."""
    config = {
        "offsets.topic.num.partitions": OFFSETS_PARTITIONS,
        "offsets.topic.replication.factor": 2,
    }
    with Cluster(brokers=2, zookeeper=zookeeper, console=True, config=config) as running:
        yield running


def consumer(cluster: Cluster, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )


def committed(cluster: Cluster, group: str, topic: str) -> dict[int, int]:
    client = consumer(cluster, group)
    try:
        found = client.committed(
            [TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=TIMEOUT_S
        )
        return {tp.partition: int(tp.offset) for tp in found}
    finally:
        client.close()


def group_coordinated_by(cluster: Cluster, node: int) -> str:
    """A group id whose __consumer_offsets partition `node` leads."""
    for n in range(100):
        group = f"ledger-readers-{n}"
        if (
            cluster.leader_of("__consumer_offsets", partition_for(group, OFFSETS_PARTITIONS))
            == node
        ):
            return group
    raise AssertionError(f"no group id coordinated by broker {node}")


def commit(cluster: Cluster, group: str, offsets: list[TopicPartition]) -> None:
    client = consumer(cluster, group)
    try:
        client.commit(offsets=offsets, asynchronous=False)
    finally:
        client.close()


def committed_group(cluster: Cluster, coordinator: int, topic: str, offset: int) -> str:
    """A group coordinated by broker `coordinator` with `offset` committed on both
    partitions of `topic` (a first commit creates __consumer_offsets if not there)."""
    commit(cluster, f"{topic}-warm-up", [TopicPartition(topic, 0, 0)])
    group = group_coordinated_by(cluster, coordinator)
    commit(cluster, group, [TopicPartition(topic, p, offset) for p in (0, 1)])
    return group


def test_reset_and_delete_a_group_on_its_coordinator(cluster: Cluster) -> None:
    """The topic's two partitions are led by different brokers. On the group
    coordinator's console a reset to a time, then to the earliest offsets, is confirmed
    and a Kafka client reads the new committed offsets: the partition led by the other
    broker is looked up there (ListOffsets). The other broker's console does not know
    the group (404); deletion removes it from the cluster's group list."""
    cluster.create_topic("ledger", 2, 2)
    leaders = [cluster.leader_of("ledger", p) for p in (0, 1)]
    assert sorted(leaders) == [1, 2]
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
    for p in (0, 1):
        for n in range(3):
            producer.produce("ledger", value=b"e", partition=p, timestamp=BASE_MS + 1000 * n)
    assert producer.flush(TIMEOUT_S) == 0
    coordinator = leaders[0]
    group = committed_group(cluster, coordinator, "ledger", 3)
    browser = Browser(cluster.console_url(coordinator))
    token = browser.token(f"/groups/{group}")
    form = {"csrf": token, "topic": "", "mode": "time", "value": str(BASE_MS + 1500)}
    status, body, _ = browser.request(f"/groups/{group}/reset", form)
    assert status == 200 and 'id="reset-plan"' in body
    status, _, where = browser.request(f"/groups/{group}/reset", {**form, "confirm": "yes"})
    assert (status, where) == (200, f"/groups/{group}")
    assert committed(cluster, group, "ledger") == {0: 2, 1: 2}
    form.update(mode="earliest", value="", confirm="yes")
    assert browser.request(f"/groups/{group}/reset", form)[0] == 200
    assert committed(cluster, group, "ledger") == {0: 0, 1: 0}
    other = Browser(cluster.console_url(3 - coordinator))
    assert other.request(f"/groups/{group}")[0] == 404
    status, _, where = browser.request(f"/groups/{group}/delete", {"csrf": token, "confirm": "yes"})
    assert (status, where) == (200, "/groups")
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    listed = admin.list_consumer_groups().result(timeout=TIMEOUT_S)
    assert group not in {g.group_id for g in listed.valid}


def test_group_page_shows_lag_of_partitions_led_elsewhere(cluster: Cluster) -> None:
    """A group committed 1 of 4 records in each of two partitions led by different
    brokers: its coordinator's page shows the lag of both (3 each, 6 in all), the one
    led by the other broker asked of it when the page is opened; /metrics agrees."""
    cluster.create_topic("far", 2, 2)
    leaders = [cluster.leader_of("far", p) for p in (0, 1)]
    assert sorted(leaders) == [1, 2]
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
    for p in (0, 1):
        for _ in range(4):
            producer.produce("far", value=b"r", partition=p)
    assert producer.flush(TIMEOUT_S) == 0
    coordinator = leaders[0]
    group = committed_group(cluster, coordinator, "far", 1)
    browser = Browser(cluster.console_url(coordinator))
    status, body, _ = browser.request(f"/groups/{group}/fragments/offsets")
    assert status == 200
    # Each partition's row: partition, committed 1, end offset 4, lag 3.
    cell = r'\s*<td class="num">(\d*)</td>'
    rows = re.findall(r"<tr><td>far</td>" + cell * 4, body)
    assert rows == [("0", "1", "4", "3"), ("1", "1", "4", "3")], body
    status, metrics, _ = browser.request("/metrics")
    assert status == 200
    lags = [
        line
        for line in metrics.splitlines()
        if line.startswith("kafka_consumergroup_lag{") and f'consumergroup="{group}"' in line
    ]
    assert sorted(line.rsplit(" ", 1)[1] for line in lags) == ["3", "3"], lags


def test_brokers_page_shows_every_brokers_log_dirs(cluster: Cluster) -> None:
    """Each broker's console lists both brokers' log dirs: its own read locally, the
    other's asked with DescribeLogDirs over the inter-broker listener; each with the
    partitions it hosts (a replicated topic is on both) and its file system's size."""
    cluster.create_topic("dirs", 2, 2)
    for node in cluster.brokers:
        status, body, _ = Browser(cluster.console_url(node)).request("/brokers")
        assert status == 200
        table = body.split('<table id="log-dirs">', 1)[1].split("</table>", 1)[0]
        found = {}
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]:
            cells = [
                re.sub(r"<[^>]+>", "", c).strip()
                for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
            ]
            found[int(cells[0])] = cells[1:]
        assert sorted(found) == sorted(cluster.brokers), body
        for other, cells in found.items():
            path, partitions, _size, total, free = cells
            assert path == os.path.abspath(cluster.brokers[other].data_dir)
            assert int(partitions) >= 2  # both partitions of "dirs", at least
            assert total.endswith("B") and free.endswith("B")


def test_produce_add_partitions_and_min_isr(cluster: Cluster) -> None:
    """A record produced on the leader's console is acknowledged once both replicas
    have it; the follower's console sends its record to the leader (Produce, acks=all),
    and a broker not hosting the partition does too and says where it went; a consumer
    reads all three. The follower's add-partitions form grows the topic to 3 led
    partitions; with the follower killed and the ISR shrunk, the leader's form answers
    NOT_ENOUGH_REPLICAS."""
    cluster.create_topic("rides", 1, 2, {"min.insync.replicas": "2"})
    leader = cluster.leader_of("rides", 0)
    follower = 3 - leader
    on_leader = Browser(cluster.console_url(leader))
    form = {
        "csrf": on_leader.token("/topics/rides"),
        "partition": "0",
        "key": "k",
        "value": "replicated",
        "headers": "",
    }
    status, _, where = on_leader.request("/topics/rides/produce", form)
    assert (status, where) == (200, "/topics/rides/messages")
    on_follower = Browser(cluster.console_url(follower))
    token = on_follower.token("/topics/rides")
    forwarded = {**form, "csrf": token, "value": "via the follower"}
    status, _, where = on_follower.request("/topics/rides/produce", forwarded)
    assert (status, where) == (200, "/topics/rides/messages")
    cluster.create_topic("solo", 1, 1)
    elsewhere = Browser(cluster.console_url(3 - cluster.leader_of("solo", 0)))
    solo = {**form, "csrf": elsewhere.token("/topics/solo"), "value": "not hosted here"}
    status, body, where = elsewhere.request("/topics/solo/produce", solo)
    assert (status, where) == (200, "/topics/solo")
    assert 'id="produced">Produced: partition 0, offset 0' in body
    reader = consumer(cluster, "rides-reader")
    try:
        reader.assign([TopicPartition("rides", 0, 0), TopicPartition("solo", 0, 0)])
        values = set()
        while len(values) < 3:
            message = reader.poll(TIMEOUT_S)
            assert message is not None and message.error() is None
            values.add(message.value())
        assert values == {b"replicated", b"via the follower", b"not hosted here"}
    finally:
        reader.close()
    status, _, _ = on_follower.request("/topics/rides/partitions", {"csrf": token, "count": "3"})
    assert status == 200
    for index in (1, 2):
        cluster.leader_of("rides", index, TIMEOUT_S)
    cluster.kill(follower)
    cluster.wait_isr("rides", 0, {leader}, TIMEOUT_S)

    def refused() -> str | None:
        status, body, _ = on_leader.request("/topics/rides/produce", form)
        return body if status == 400 else None

    body = wait_until(refused, TIMEOUT_S, "the leader to refuse with its ISR of one")
    assert "NOT_ENOUGH_REPLICAS" in body
