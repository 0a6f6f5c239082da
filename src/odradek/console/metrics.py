"""`/metrics`: the broker's state and counters in Prometheus' text format.

Nothing here runs per request: the connection code, the handlers and the partitions count
in plain ints (server/stats.py, replication/partition.py), and `BrokerCollector` reads
them when scraped. Names are those the Prometheus JMX exporter gives Kafka's MBeans with
its usual Kafka rules (docs/monitoring.md lists the mapping): `kafka.server:type=
BrokerTopicMetrics,name=BytesInPerSec,topic=T` becomes
`kafka_server_brokertopicmetrics_bytesin_total{topic="T"}`, and so on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from odradek.handlers.registry import API_TABLE
from odradek.replication.partition import Partition
from odradek.server.broker import Broker
from odradek.server.stats import LATENCY_BUCKETS_MS, ApiStats

if TYPE_CHECKING:
    from odradek.metadata.zk_store import ZkMetadataStore

# The `le` label of each bucket, Prometheus' float notation.
_BUCKET_LABELS = [*(repr(bound) for bound in LATENCY_BUCKETS_MS), "+Inf"]


def routes(broker: Broker) -> Iterable[web.RouteDef]:
    """GET /metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BrokerCollector(broker))

    async def scrape(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return [web.get("/metrics", scrape)]


def request_name(api_key: int) -> str:
    """Kafka's name of an API in RequestMetrics' `request` tag: produce -> Produce."""
    entry = API_TABLE.get(api_key)
    if entry is None:
        return str(api_key)
    return "".join(part.capitalize() for part in entry[0].split("_"))


class BrokerCollector(Collector):
    """Reads the broker's counters and state into metric families at scrape time."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def collect(self) -> Iterator[Metric]:
        broker = self.broker
        if not broker.started:
            return
        partitions = list(broker.services.replicas.partitions.values())
        yield from topic_metrics(partitions)
        yield from request_metrics(broker.request_stats.apis)
        yield from socket_metrics(broker)
        yield from replica_manager_metrics(broker, partitions)
        yield from log_metrics(broker, partitions)
        yield from group_metrics(broker)


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels)


def topic_metrics(partitions: list[Partition]) -> Iterator[Metric]:
    """BrokerTopicMetrics per topic: the partitions' counters summed."""
    fields = (
        ("bytesin", "bytes_in", "Bytes appended by this broker as leader."),
        ("bytesout", "bytes_out", "Bytes sent to consumers (not to followers)."),
        ("messagesin", "messages_in", "Records appended by this broker as leader."),
        ("totalproducerequests", "produce_requests", "Produce requests, per partition."),
        ("failedproducerequests", "failed_produce_requests", "Refused produce, per partition."),
        ("totalfetchrequests", "fetch_requests", "Consumer fetches, per partition."),
    )
    sums: dict[str, list[int]] = {}
    for partition in partitions:
        row = sums.get(partition.topic)
        if row is None:
            row = sums[partition.topic] = [0] * len(fields)
        row[0] += partition.bytes_in
        row[1] += partition.bytes_out
        row[2] += partition.messages_in
        row[3] += partition.produce_requests
        row[4] += partition.failed_produce_requests
        row[5] += partition.fetch_requests
    for column, (name, _attr, doc) in enumerate(fields):
        family = _counter(f"kafka_server_brokertopicmetrics_{name}", doc, ["topic"])
        for topic, row in sums.items():
            family.add_metric([topic], row[column])
        yield family


def request_metrics(apis: dict[int, ApiStats]) -> Iterator[Metric]:
    """RequestMetrics: requests per API and version, and each phase's time histogram."""
    requests = _counter(
        "kafka_network_requestmetrics_requests", "Requests answered.", ["request", "version"]
    )
    for api_key, stats in sorted(apis.items()):
        name = request_name(api_key)
        for version, count in sorted(stats.by_version.items()):
            requests.add_metric([name, str(version)], count)
    yield requests
    docs = {
        "totaltimems": "Milliseconds from dispatch until the response went to the socket.",
        "localtimems": "Milliseconds the handler worked.",
        "remotetimems": "Milliseconds waiting in a purgatory (parked fetch, acks=all, join).",
        "responsequeuetimems": "Milliseconds answered but behind an earlier response.",
    }
    families = {
        phase: HistogramMetricFamily(
            f"kafka_network_requestmetrics_{phase}", doc, labels=["request"]
        )
        for phase, doc in docs.items()
    }
    for api_key, stats in sorted(apis.items()):
        name = request_name(api_key)
        for phase, histogram in stats.phases():
            buckets = list(zip(_BUCKET_LABELS, histogram.cumulative(), strict=True))
            families[phase].add_metric([name], buckets, histogram.total)
    yield from families.values()


def socket_metrics(broker: Broker) -> Iterator[Metric]:
    """The socket server: connections now and since start, request memory in use."""
    yield GaugeMetricFamily(
        "kafka_server_socket_server_metrics_connection_count",
        "Open client connections.",
        value=len(broker.connections),
    )
    yield CounterMetricFamily(
        "kafka_server_socket_server_metrics_connection_creation",
        "Connections accepted since start.",
        value=broker.request_stats.connections_created,
    )
    memory = broker.request_memory
    yield GaugeMetricFamily(
        "kafka_network_socketserver_memorypoolused",
        "Bytes of requests and unsent responses held (queued.max.request.bytes).",
        value=memory.used,
    )
    yield GaugeMetricFamily(
        "kafka_network_socketserver_memorypoolavailable",
        "Bytes of queued.max.request.bytes still free.",
        value=max(memory.limit - memory.used, 0),
    )


def replica_manager_metrics(broker: Broker, partitions: list[Partition]) -> Iterator[Metric]:
    """ReplicaManager and KafkaController gauges."""
    leaders = under_replicated = under_min_isr = offline = shrinks = expands = 0
    for partition in partitions:
        shrinks += partition.isr_shrinks
        expands += partition.isr_expands
        if partition.log.offline:
            offline += 1
        if not partition.is_leader:
            continue
        leaders += 1
        isr = len(partition.isr)
        if isr < len(partition.replicas):
            under_replicated += 1
        if isr < partition.min_insync_replicas:
            under_min_isr += 1
    gauges: list[tuple[str, str, float]] = [
        ("replicamanager_partitioncount", "Partitions hosted.", len(partitions)),
        ("replicamanager_leadercount", "Partitions led.", leaders),
        ("replicamanager_underreplicatedpartitions", "Led, ISR below replicas.", under_replicated),
        ("replicamanager_underminisrpartitioncount", "Led, ISR below min.insync.", under_min_isr),
        ("replicamanager_offlinereplicacount", "Hosted replicas whose log is offline.", offline),
    ]
    for name, doc, value in gauges:
        yield GaugeMetricFamily(f"kafka_server_{name}", doc, value=value)
    yield CounterMetricFamily(
        "kafka_server_replicamanager_isrshrinks", "ISR shrinks of led partitions.", value=shrinks
    )
    yield CounterMetricFamily(
        "kafka_server_replicamanager_isrexpands", "ISR expansions of led partitions.", value=expands
    )
    yield from controller_metrics(broker)


def controller_metrics(broker: Broker) -> Iterator[Metric]:
    """ActiveControllerCount (1 on the controller; a single node is its own) and, on the
    active controller, OfflinePartitionsCount (partitions with no leader)."""
    node = broker.cluster_node
    active = 1
    offline = 0
    if node is not None:
        cluster = broker.services.cluster
        active = 1 if cluster is not None and cluster.controller.active else 0
        if active and cluster is not None:
            offline = _leaderless(cluster.store)
    yield GaugeMetricFamily(
        "kafka_controller_kafkacontroller_activecontrollercount",
        "1 on the active controller.",
        value=active,
    )
    yield GaugeMetricFamily(
        "kafka_controller_kafkacontroller_offlinepartitionscount",
        "Partitions without a leader (counted by the active controller).",
        value=offline,
    )


def _leaderless(store: ZkMetadataStore) -> int:
    count = 0
    for state in store.states.values():
        if state.leader < 0:
            count += 1
    return count


def log_metrics(broker: Broker, partitions: list[Partition]) -> Iterator[Metric]:
    """Log size, segments and offsets per partition, and the time logs took to load."""
    size = GaugeMetricFamily(
        "kafka_log_log_size", "Bytes of the log.", labels=["topic", "partition"]
    )
    segments = GaugeMetricFamily(
        "kafka_log_log_numlogsegments", "Segments of the log.", labels=["topic", "partition"]
    )
    start = GaugeMetricFamily(
        "kafka_log_log_logstartoffset", "First offset of the log.", labels=["topic", "partition"]
    )
    end = GaugeMetricFamily(
        "kafka_log_log_logendoffset", "Next offset of the log.", labels=["topic", "partition"]
    )
    for partition in partitions:
        log = partition.log
        labels = [partition.topic, str(partition.index)]
        size.add_metric(labels, log.size_in_bytes)
        segments.add_metric(labels, log.segment_count)
        start.add_metric(labels, log.log_start_offset)
        end.add_metric(labels, log.log_end_offset)
    yield from (size, segments, start, end)
    yield GaugeMetricFamily(
        "odradek_log_load_seconds",
        "Seconds opening the logs took at start, recovery after a crash included.",
        value=broker.log_load_seconds,
    )


def group_metrics(broker: Broker) -> Iterator[Metric]:
    """Committed offset and lag of every group this broker coordinates, for partitions it
    leads (kafka_exporter's names: Kafka brokers export no lag)."""
    groups = broker.services.groups
    if groups is None:
        return
    replicas = broker.services.replicas
    labels = ["consumergroup", "topic", "partition"]
    current = GaugeMetricFamily(
        "kafka_consumergroup_current_offset", "Committed offset.", labels=labels
    )
    lag = GaugeMetricFamily(
        "kafka_consumergroup_lag", "High watermark minus committed offset.", labels=labels
    )
    for group_id, group in groups.groups.items():
        for (topic, index), committed in group.offsets.items():
            partition = replicas.get(topic, index)
            if partition is None or not partition.is_leader:
                continue
            key = [group_id, topic, str(index)]
            current.add_metric(key, committed.offset)
            lag.add_metric(key, max(partition.high_watermark - committed.offset, 0))
    yield current
    yield lag
