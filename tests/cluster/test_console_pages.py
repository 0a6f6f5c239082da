"""The console's brokers and topic pages in a cluster: every live broker with its rack,
the controller marked, a killed broker shown as not alive, and a partition's replicas
and ISR as ZooKeeper has them."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

from odradek.testing.cluster import Cluster, wait_until
from odradek.testing.zookeeper import ZooKeeper

TIMEOUT_S = 60.0


def _rows(url: str, table: str) -> list[list[str]]:
    """The cells' text of each data row of a page's table `id=table`."""
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
    match = re.search(rf'<table id="{table}"[^>]*>(.*?)</table>', body, re.S)
    assert match is not None
    result = []
    for row in re.findall(r"<tr>(.*?)</tr>", match.group(1), re.S)[1:]:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        result.append([re.sub(r"<[^>]+>", "", cell).strip() for cell in cells])
    return result


def test_brokers_page_shows_racks_controller_and_a_dead_broker(zookeeper: ZooKeeper) -> None:
    """Two brokers in racks a and b: broker 1's pages list both alive with their racks
    and exactly one controller, and the topic's partition with replicas 1, 2 in the ISR;
    after broker 2 is killed it is listed as not alive (it still holds replicas) and the
    ISR shrinks to broker 1."""
    with Cluster(brokers=2, zookeeper=zookeeper, console=True, racks={1: "a", 2: "b"}) as cluster:
        cluster.create_topic("shared", partitions=1, replication_factor=2)
        cluster.leader_of("shared", 0)
        url = cluster.console_url(1)

        def both_listed() -> list[list[str]] | None:
            rows = _rows(url + "/brokers", "brokers")
            alive = [row for row in rows if row[3] == "yes"]
            controllers = [row for row in rows if row[4] == "yes"]
            return rows if len(alive) == 2 and len(controllers) == 1 else None

        rows = wait_until(both_listed, TIMEOUT_S, "both brokers alive and one controller")
        assert [(row[0], row[2]) for row in rows] == [("1", "a"), ("2", "b")]
        assert rows[1][1] == f"127.0.0.1:{cluster.brokers[2].port}"

        def in_sync() -> bool:
            [partition] = _rows(url + "/topics/shared", "partitions")
            replicas, isr = partition[2].split(", "), partition[3].split(", ")
            return sorted(replicas) == sorted(isr) == ["1", "2"]

        wait_until(in_sync, TIMEOUT_S, "both replicas in the ISR")
        cluster.kill(2)

        def two_is_dead() -> bool:
            rows = _rows(url + "/brokers", "brokers")
            return [row[0] for row in rows] == ["1", "2"] and rows[1][3] == "no"

        wait_until(two_is_dead, TIMEOUT_S, "broker 2 shown as not alive")
        dead = _rows(url + "/brokers", "brokers")[1]
        assert dead[1] == "unknown" and dead[6] == "1"

        def shrunk() -> bool:
            [partition] = _rows(url + "/topics/shared", "partitions")
            return partition[1] == "1" and partition[3] == "1"

        wait_until(shrunk, TIMEOUT_S, "the ISR to shrink to broker 1")


def test_create_and_delete_a_topic_from_the_console(zookeeper: ZooKeeper) -> None:
    """In a cluster the console's create form places a replicated topic through
    ZooKeeper (every replica gets a leader and the ISR) and its delete form removes it
    from every broker's view."""
    with Cluster(brokers=2, zookeeper=zookeeper, console=True) as cluster:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        url = cluster.console_url(1)
        with opener.open(url + "/topics", timeout=10) as response:
            body = response.read().decode()
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', body)
        assert match is not None
        token = match.group(1)
        form = {"csrf": token, "name": "formed", "partitions": "2", "replication_factor": "2"}
        with opener.open(url + "/topics", urllib.parse.urlencode(form).encode(), 10) as reply:
            assert reply.status == 200
        for index in range(2):
            cluster.leader_of("formed", index)

        def replicated() -> bool:
            rows = _rows(url + "/topics/formed", "partitions")
            return len(rows) == 2 and all(
                sorted(row[2].split(", ")) == sorted(row[3].split(", ")) == ["1", "2"]
                for row in rows
            )

        wait_until(replicated, TIMEOUT_S, "both partitions on both brokers, in sync")
        delete = urllib.parse.urlencode({"csrf": token}).encode()
        with opener.open(url + "/topics/formed/delete", delete, 10) as reply:
            assert reply.status == 200

        def gone(node: int) -> bool:
            try:
                urllib.request.urlopen(cluster.console_url(node) + "/topics/formed", timeout=10)
            except urllib.error.HTTPError as error:
                return error.code == 404
            return False

        for node in (1, 2):
            wait_until(lambda node=node: gone(node), TIMEOUT_S, f"broker {node} to drop it")
