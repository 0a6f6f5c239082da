"""/metrics in a cluster: every broker serves its own, one of them is the active
controller, and a dead follower shows as an under-replicated partition and an ISR
shrink on the leader."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from odradek.testing.cluster import Cluster, wait_until
from odradek.testing.zookeeper import ZooKeeper

TIMEOUT_S = 60.0


def _scrape(url: str) -> dict[str, float]:
    """The label-less samples of a broker's /metrics by name, summed over labels."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name] = samples.get(sample.name, 0.0) + sample.value
    return samples


def test_every_broker_serves_metrics_and_a_dead_follower_shows(zookeeper: ZooKeeper) -> None:
    """Three brokers with console listeners: each answers /metrics, exactly one reports
    itself the active controller, the partition's leader counts it as led; after a
    follower is killed the leader reports it under-replicated and an ISR shrink, and the
    controller counts the single-replica partitions the dead broker held as offline."""
    with Cluster(brokers=3, zookeeper=zookeeper, console=True) as cluster:
        cluster.create_topic("metered", partitions=1, replication_factor=3)
        cluster.create_topic("lonely", partitions=3, replication_factor=1)
        lonely = [cluster.leader_of("lonely", p) for p in range(3)]
        urls = {node: cluster.console_url(node) for node in cluster.brokers}

        def one_controller() -> bool:
            name = "kafka_controller_kafkacontroller_activecontrollercount"
            return sum(_scrape(url)[name] for url in urls.values()) == 1

        wait_until(one_controller, TIMEOUT_S, "one active controller")
        leader = cluster.leader_of("metered", 0)
        wait_until(
            lambda: _scrape(urls[leader])["kafka_server_replicamanager_leadercount"] >= 1,
            TIMEOUT_S,
            "the leader to count its partition",
        )
        assert _scrape(urls[leader])["kafka_server_replicamanager_underreplicatedpartitions"] == 0
        follower = next(n for n in cluster.brokers if n != leader and n in lonely)
        cluster.kill(follower)
        live = [url for node, url in urls.items() if node != follower]

        def offline_reported() -> bool:
            name = "kafka_controller_kafkacontroller_offlinepartitionscount"
            return sum(_scrape(url)[name] for url in live) == lonely.count(follower)

        wait_until(offline_reported, TIMEOUT_S, "the controller to count offline partitions")
        wait_until(
            lambda: (
                _scrape(urls[leader])["kafka_server_replicamanager_underreplicatedpartitions"] == 1
            ),
            TIMEOUT_S,
            "the leader to report the partition under-replicated",
        )
        assert _scrape(urls[leader])["kafka_server_replicamanager_isrshrinks_total"] >= 1


def _lag_samples(url: str, group: str) -> dict[tuple[str, int], float]:
    """kafka_consumergroup_lag of `group` on one broker, by (topic, partition)."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    lags: dict[tuple[str, int], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "kafka_consumergroup_lag" and sample.labels["consumergroup"] == group:
                lags[(sample.labels["topic"], int(sample.labels["partition"]))] = sample.value
    return lags


def test_lag_covers_partitions_led_by_other_brokers(zookeeper: ZooKeeper) -> None:
    """The group's coordinator exports the lag of every partition the group committed
    to, also those another broker leads (their high watermarks asked of that leader):
    10 records in each of 4 partitions spread over 2 brokers, offset 3 committed in
    each, lag 7 everywhere; more records raise it on the next scrape after the cache."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    with Cluster(brokers=2, zookeeper=zookeeper, console=True) as cluster:
        cluster.create_topic("lagging", partitions=4, replication_factor=1)
        leaders = {cluster.leader_of("lagging", p) for p in range(4)}
        assert leaders == {1, 2}  # partitions led by both brokers
        producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
        for p in range(4):
            for i in range(10):
                producer.produce("lagging", value=b"%d" % i, partition=p)
        assert producer.flush(30) == 0
        consumer = Consumer(
            {"bootstrap.servers": cluster.bootstrap_servers, "group.id": "laggards"}
        )
        try:
            consumer.commit(
                offsets=[TopicPartition("lagging", p, 3) for p in range(4)], asynchronous=False
            )
        finally:
            consumer.close()
        urls = [cluster.console_url(node) for node in cluster.brokers]
        want = {("lagging", p): 7.0 for p in range(4)}

        def some_broker_reports(expected: dict[tuple[str, int], float]) -> bool:
            return any(_lag_samples(url, "laggards") == expected for url in urls)

        wait_until(lambda: some_broker_reports(want), TIMEOUT_S, "lag of all 4 partitions")
        for p in range(4):
            producer.produce("lagging", value=b"more", partition=p)
        assert producer.flush(30) == 0
        more = {key: 8.0 for key in want}
        wait_until(lambda: some_broker_reports(more), TIMEOUT_S, "lag to follow new records")


def _errors(url: str, request: str, error: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "kafka_network_requestmetrics_errors_total" and (
                labels.get("request"),
                labels.get("error"),
            ) == (request, error):
                total += sample.value
    return total


def test_acks_all_timeouts_are_counted(zookeeper: ZooKeeper) -> None:
    """A paused follower still in the ISR holds acks=all produce past the request's
    timeout: the leader answers REQUEST_TIMED_OUT and counts it in ErrorsPerSec."""
    from confluent_kafka import Producer

    config = {"replica.lag.time.max.ms": "30000"}
    with Cluster(brokers=2, zookeeper=zookeeper, console=True, config=config) as cluster:
        cluster.create_topic("held", partitions=1, replication_factor=2)
        leader = cluster.leader_of("held", 0)
        follower = next(node for node in cluster.brokers if node != leader)
        url = cluster.console_url(leader)
        assert _errors(url, "Produce", "REQUEST_TIMED_OUT") == 0
        producer = Producer(
            {
                "bootstrap.servers": cluster.bootstrap_servers,
                "acks": "all",
                "request.timeout.ms": 300,
                "message.timeout.ms": 3000,
            }
        )
        cluster.pause(follower)
        try:
            producer.produce("held", value=b"waits")
            producer.flush(10)
            wait_until(
                lambda: _errors(url, "Produce", "REQUEST_TIMED_OUT") >= 1,
                TIMEOUT_S,
                "a counted acks=all timeout",
            )
        finally:
            cluster.resume(follower)
