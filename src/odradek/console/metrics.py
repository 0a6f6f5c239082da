"""`/metrics`: the broker's state and counters in Prometheus' text format.

Nothing here runs per request: the connection code, the handlers and the partitions count
in plain ints (server/stats.py, replication/partition.py, storage/log.py), and a scrape
reads them. Names are those the Prometheus JMX exporter gives Kafka's MBeans with its
usual Kafka rules (docs/monitoring.md lists the mapping): `kafka.server:type=
BrokerTopicMetrics,name=BytesInPerSec,topic=T` becomes
`kafka_server_brokertopicmetrics_bytesin_total{topic="T"}`, and so on. A scrape makes one
pass over the partitions in chunks (bulk.py), then renders the broker-wide families with
prometheus-client and appends the per-partition text.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from kio.schema.errors import ErrorCode
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
    UnknownMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from odradek.console import bulk
from odradek.handlers.registry import API_TABLE
from odradek.server.broker import Broker
from odradek.server.partition_offsets import PartitionOffsets
from odradek.server.stats import BUCKET_BOUNDS_MS, ApiStats

if TYPE_CHECKING:
    from odradek.metadata.zk_store import ZkMetadataStore

# Prometheus' text format 0.0.4, which generate_latest and bulk.py write.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The `le` label of each bucket, Prometheus' float notation.
_BUCKET_LABELS = [*(repr(bound) for bound in BUCKET_BOUNDS_MS), "+Inf"]


def routes(broker: Broker, offsets: PartitionOffsets) -> Iterable[web.RouteDef]:
    """GET /metrics; `offsets` gives the high watermarks of partitions led elsewhere."""

    async def scrape(request: web.Request) -> web.Response:
        body = await render(broker, offsets)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return [web.get("/metrics", scrape)]


async def render(broker: Broker, offsets: PartitionOffsets | None = None) -> bytes:
    """The whole text exposition of a started broker (empty before it started). Without
    `offsets`, consumer lag covers only the partitions this broker leads."""
    if not broker.started:
        return b""
    services = broker.services
    found = await bulk.survey(list(services.replicas.partitions.values()))
    head = generate_latest(BrokerCollector(broker, found))
    groups = ""
    if services.groups is not None:
        end_of = bulk.local_end_of(services.replicas)
        if offsets is not None:
            if services.cluster is not None:  # only a cluster has partitions led elsewhere
                await offsets.high_watermarks(bulk.committed_partitions(services.groups))
            end_of = offsets.known
        groups = await bulk.group_families(services.groups, end_of)
    return head + found.log_text.encode() + groups.encode()


def request_name(api_key: int) -> str:
    """Kafka's name of an API in RequestMetrics' `request` tag: produce -> Produce."""
    entry = API_TABLE.get(api_key)
    if entry is None:
        return str(api_key)
    return "".join(part.capitalize() for part in entry[0].split("_"))


class BrokerCollector(Collector):
    """The broker-wide families of one scrape, from the broker and the pass's sums."""

    def __init__(self, broker: Broker, found: bulk.Survey) -> None:
        self.broker = broker
        self.found = found

    def collect(self) -> Iterator[Metric]:
        yield from topic_metrics(self.found)
        yield from request_metrics(self.broker.request_stats.apis)
        yield from error_metrics(self.broker.services.errors)
        yield from socket_metrics(self.broker)
        yield from replica_manager_metrics(self.found)
        yield from controller_metrics(self.broker)
        yield from log_manager_metrics(self.broker, self.found)
        yield from group_coordinator_metrics(self.broker)


def topic_metrics(found: bulk.Survey) -> Iterator[Metric]:
    """BrokerTopicMetrics per topic."""
    for column, (name, doc) in enumerate(bulk.TOPIC_COUNTERS):
        family = CounterMetricFamily(
            f"kafka_server_brokertopicmetrics_{name}", doc, labels=["topic"]
        )
        for topic, row in found.topics.items():
            family.add_metric([topic], row[column])
        yield family


def request_metrics(apis: dict[int, ApiStats]) -> Iterator[Metric]:
    """RequestMetrics: requests per API and version, and each phase's time histogram."""
    requests = CounterMetricFamily(
        "kafka_network_requestmetrics_requests", "Requests answered.", labels=["request", "version"]
    )
    for api_key, stats in sorted(apis.items()):
        name = request_name(api_key)
        for version, count in enumerate(stats.by_version):
            if count:
                requests.add_metric([name, str(version)], count)
    yield requests
    docs = {
        "requestqueuetimems": "Milliseconds a whole request waited to be dispatched.",
        "totaltimems": "Milliseconds from arrival until the response went to the socket.",
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
        for phase, (counts, sum_ns) in stats.phases().items():
            buckets = list(zip(_BUCKET_LABELS, _cumulative(counts), strict=True))
            families[phase].add_metric([name], buckets, sum_ns / 1e6)
    yield from families.values()


def error_metrics(errors: dict[tuple[int, int], int]) -> Iterator[Metric]:
    """ErrorsPerSec per API and error: top-level codes of every response, and the
    per-partition codes of Produce and Fetch (Kafka also counts NONE; odradek only errors)."""
    family = CounterMetricFamily(
        "kafka_network_requestmetrics_errors",
        "Errors answered, per API and error code.",
        labels=["request", "error"],
    )
    for (api_key, code), count in sorted(errors.items()):
        family.add_metric([request_name(api_key), _error_name(code)], count)
    yield family


def _error_name(code: int) -> str:
    """Kafka's name of an error code: NOT_LEADER_OR_FOLLOWER."""
    try:
        return ErrorCode(code).name.upper()
    except ValueError:
        return str(code)


def _cumulative(counts: list[int]) -> list[int]:
    """Prometheus buckets count everything at or below their bound."""
    result = []
    running = 0
    for count in counts:
        running += count
        result.append(running)
    return result


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


def replica_manager_metrics(found: bulk.Survey) -> Iterator[Metric]:
    """ReplicaManager gauges and ISR meters."""
    gauges: list[tuple[str, str, float]] = [
        ("partitioncount", "Partitions hosted.", found.partitions),
        ("leadercount", "Partitions led.", found.leaders),
        ("underreplicatedpartitions", "Led, ISR below replicas.", found.under_replicated),
        ("underminisrpartitioncount", "Led, ISR below min.insync.", found.under_min_isr),
        ("offlinereplicacount", "Hosted replicas whose log is offline.", found.offline),
    ]
    for name, doc, value in gauges:
        yield GaugeMetricFamily(f"kafka_server_replicamanager_{name}", doc, value=value)
    yield CounterMetricFamily(
        "kafka_server_replicamanager_isrshrinks",
        "ISR shrinks of led partitions.",
        value=found.isr_shrinks,
    )
    yield CounterMetricFamily(
        "kafka_server_replicamanager_isrexpands",
        "ISR expansions of led partitions.",
        value=found.isr_expands,
    )


def controller_metrics(broker: Broker) -> Iterator[Metric]:
    """ActiveControllerCount (1 on the controller; a single node is its own) and, on the
    active controller, OfflinePartitionsCount (partitions with no leader)."""
    active = 1
    offline = 0
    if broker.cluster_node is not None:
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
    return sum(1 for state in store.states.values() if state.leader < 0)


def log_dir_space(broker: Broker) -> Iterator[Metric]:
    """Free and total bytes of each log dir's file system (one statvfs each), for the
    disk-filling alert; a log dir that cannot be read is left out."""
    free = GaugeMetricFamily(
        "odradek_log_dir_free_bytes", "Bytes free for the log dir.", labels=["log_dir"]
    )
    total = GaugeMetricFamily(
        "odradek_log_dir_size_bytes", "Size of the log dir's file system.", labels=["log_dir"]
    )
    for log_dir in broker.config.log_dirs:
        try:
            space = os.statvfs(log_dir)
        except OSError:
            continue
        free.add_metric([log_dir], space.f_bavail * space.f_frsize)
        total.add_metric([log_dir], space.f_blocks * space.f_frsize)
    yield free
    yield total


def group_coordinator_metrics(broker: Broker) -> Iterator[Metric]:
    """Kafka's group-coordinator-metrics (untyped, as the JMX exporter shows them): classic
    rebalances begun and completed, KIP-848 group epoch bumps, classic groups by state;
    and odradek's own rebalance time (PreparingRebalance until the new generation)."""
    groups = broker.services.groups
    if groups is None:
        return
    prefix = "kafka_server_group_coordinator_metrics_"
    counts = [
        ("group_rebalance_count", "Classic group rebalances begun.", groups.rebalances),
        (
            "group_completed_rebalance_count",
            "Classic group rebalances completed (a new generation).",
            groups.completed_rebalances,
        ),
        (
            "consumer_group_rebalance_count",
            "Consumer group (KIP-848) epoch bumps.",
            groups.consumer_rebalances,
        ),
    ]
    for name, doc, value in counts:
        yield UnknownMetricFamily(prefix + name, doc, value=value)
    states = GaugeMetricFamily(
        prefix + "classic_group_count", "Classic groups by state.", labels=["state"]
    )
    by_state: dict[str, int] = {}
    for group in groups.groups.values():
        if group.group_id in groups.consumer_groups:
            continue  # a KIP-848 group's offsets holder, not a classic group
        name = group.state.name.replace("_", "").lower()
        by_state[name] = by_state.get(name, 0) + 1
    for state, count in sorted(by_state.items()):
        states.add_metric([state], count)
    yield states
    yield SummaryMetricFamily(
        "odradek_group_rebalance_seconds",
        "Classic rebalances completed and their seconds from PreparingRebalance.",
        count_value=groups.completed_rebalances,
        sum_value=groups.rebalance_seconds,
    )


def log_manager_metrics(broker: Broker, found: bulk.Survey) -> Iterator[Metric]:
    """Log flushes (Kafka's LogFlushRateAndTimeMs timer, as count and sum) and how long
    opening the logs took at start (odradek's own: Kafka has no such bean)."""
    flushes = SummaryMetricFamily(
        "kafka_log_logflushstats_logflushrateandtimems",
        "Log flushes (fsync) of hosted partitions and their milliseconds.",
        count_value=found.flushes,
        sum_value=found.flush_ms,
    )
    yield flushes
    yield from log_dir_space(broker)
    yield GaugeMetricFamily(
        "odradek_log_load_seconds",
        "Seconds opening the logs took at start, recovery after a crash included.",
        value=broker.log_load_seconds,
    )
