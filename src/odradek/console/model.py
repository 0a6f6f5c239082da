"""What the console pages show, read from a started broker's state: plain dataclasses
built by functions that neither render nor do I/O, so the pages stay thin and the rules
(which broker is alive, where a config's value comes from) are tested through them.

Everything is read on the broker's event loop between two requests; nothing here waits.
A topic list or a partition list is built whole (a pass over at most a few tens of
thousands of partitions costs a few ms) and the page shows one slice of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from odradek.console.groups import group_ids
from odradek.metadata.store import TopicInfo
from odradek.metadata.topic_config import TOPIC_CONFIGS, topic_default
from odradek.server.broker import Broker


@dataclass(slots=True)
class BrokerRow:
    node_id: int
    host: str
    port: int
    rack: str | None
    alive: bool
    controller: bool
    leaders: int = 0
    replicas: int = 0


@dataclass(slots=True)
class TopicRow:
    name: str
    partitions: int
    replication: int
    internal: bool
    # Sums over the partitions hosted on this broker (the others are on other brokers).
    size: int = 0
    records: int = 0
    bytes_in: int = 0
    messages_in: int = 0
    # Appended here per second between looks at the list (rates.py); None until known.
    records_rate: float | None = None
    bytes_rate: float | None = None


@dataclass(slots=True)
class PartitionRow:
    index: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    # None when this broker hosts no replica of the partition.
    start_offset: int | None = None
    end_offset: int | None = None
    size: int | None = None


@dataclass(slots=True)
class ConfigRow:
    name: str
    value: str
    source: str  # Kafka's DescribeConfigs names: DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG, ...
    doc: str


@dataclass(slots=True)
class Totals:
    topics: int = 0
    partitions: int = 0
    hosted: int = 0
    size: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    messages_in: int = 0
    groups: int = 0


@dataclass(slots=True)
class Overview:
    cluster_id: str
    node_id: int
    controller: int
    brokers: list[BrokerRow]
    totals: Totals = field(default_factory=Totals)


def brokers(broker: Broker) -> list[BrokerRow]:
    """This broker alone, or every broker of the cluster: the live ones as ZooKeeper
    lists them and, not alive, those that replicas are still assigned to."""
    services = broker.services
    config = services.config
    if services.cluster is None:
        hosted = list(services.replicas.partitions.values())
        return [
            BrokerRow(
                config.node_id,
                services.advertised_host,
                services.advertised_port,
                config.broker_rack,
                alive=True,
                controller=True,
                leaders=sum(1 for p in hosted if p.is_leader),
                replicas=len(hosted),
            )
        ]
    store = services.cluster.store
    rows = {
        b.node_id: BrokerRow(
            b.node_id, b.host, b.port, b.rack, True, b.node_id == store.controller_id
        )
        for b in store.brokers.values()
    }
    for assignment in store.assignments.values():
        for replicas in assignment.partitions.values():
            for node in replicas:
                row = rows.get(node)
                if row is None:
                    row = rows[node] = BrokerRow(node, "", -1, None, False, False)
                row.replicas += 1
    for state in store.states.values():
        if state.leader in rows:
            rows[state.leader].leaders += 1
    return [rows[node] for node in sorted(rows)]


def controller_id(broker: Broker) -> int:
    """The active controller (-1 while none is elected); a single node is its own."""
    services = broker.services
    if services.cluster is None:
        return services.config.node_id
    return services.cluster.store.controller_id


def topic_rows(broker: Broker) -> list[TopicRow]:
    """Every topic with the sums of the partitions this broker hosts, by name."""
    services = broker.services
    rows = {
        name: TopicRow(name, info.partitions, _replication(broker, info), info.internal)
        for name, info in services.metadata.topics.items()
    }
    for partition in services.replicas.partitions.values():
        row = rows.get(partition.topic)
        if row is None:
            continue
        log = partition.log
        row.size += log.size_in_bytes
        row.records += max(log.log_end_offset - log.log_start_offset, 0)
        row.bytes_in += partition.bytes_in
        row.messages_in += partition.messages_in
    return [rows[name] for name in sorted(rows)]


def _replication(broker: Broker, info: TopicInfo) -> int:
    cluster = broker.services.cluster
    if cluster is None:
        return 1
    assignment = cluster.store.assignments.get(info.name)
    if assignment is None or not assignment.partitions:
        return 0
    return len(next(iter(assignment.partitions.values())))


def partition_rows(broker: Broker, info: TopicInfo, first: int, count: int) -> list[PartitionRow]:
    """Partitions `first` .. `first + count - 1` of a topic."""
    services = broker.services
    rows = []
    for index in range(first, min(first + count, info.partitions)):
        if services.cluster is not None:
            store = services.cluster.store
            state = store.partition_state(info.name, index)
            row = PartitionRow(
                index,
                state.leader if state is not None else -1,
                tuple(store.replicas_of(info.name, index)),
                state.isr if state is not None else (),
            )
        else:
            node = services.config.node_id
            row = PartitionRow(index, node, (node,), (node,))
        hosted = services.replicas.get(info.name, index)
        if hosted is not None:
            row.start_offset = hosted.log_start_offset
            row.end_offset = hosted.log_end_offset
            row.size = hosted.log.size_in_bytes
        rows.append(row)
    return rows


def config_rows(broker: Broker, info: TopicInfo) -> list[ConfigRow]:
    """Every topic config with its value and where the value comes from, as
    DescribeConfigs reports them: the topic's override, a broker property set through
    the configs APIs, one from the broker's properties file, or the default."""
    services = broker.services
    dynamic = services.metadata.dynamic_broker_configs(services.config.node_id)
    rows = []
    for name, definition in sorted(TOPIC_CONFIGS.items()):
        if name in info.configs:
            value, source = info.configs[name], "DYNAMIC_TOPIC_CONFIG"
        else:
            value, synonym = topic_default(definition, services.config, dynamic)
            if synonym is None:
                source = "DEFAULT_CONFIG"
            elif synonym in dynamic:
                source = "DYNAMIC_BROKER_CONFIG"
            else:
                source = "STATIC_BROKER_CONFIG"
        rows.append(ConfigRow(name, value, source, definition.doc))
    return rows


def overview(
    broker: Broker,
    topics: Callable[[str], bool] | None = None,
    groups: Callable[[str], bool] | None = None,
) -> Overview:
    """The cluster at a glance, with totals over what this broker hosts: of the
    `topics` and `groups` the viewer may describe (None: all)."""
    services = broker.services
    result = Overview(
        services.metadata.cluster_id,
        services.config.node_id,
        controller_id(broker),
        brokers(broker),
    )
    totals = result.totals
    shown = [t for t in services.metadata.topics.values() if topics is None or topics(t.name)]
    totals.topics = len(shown)
    totals.partitions = sum(t.partitions for t in shown)
    for partition in services.replicas.partitions.values():
        if topics is not None and not topics(partition.topic):
            continue
        totals.hosted += 1
        totals.size += partition.log.size_in_bytes
        totals.bytes_in += partition.bytes_in
        totals.bytes_out += partition.bytes_out
        totals.messages_in += partition.messages_in
    totals.groups = len([g for g in group_ids(broker) if groups is None or groups(g)])
    return result
