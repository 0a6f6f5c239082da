"""Apache Kafka's ZooKeeper layout: the paths and the JSON documents stored at them.

Pure functions, no I/O: what a broker or the controller writes to ZooKeeper and how it
reads it back. The documents are Kafka's own (the versions Kafka 2.8-3.x writes), so
anyone who ran Kafka on ZooKeeper recognises them. docs/cluster.md says who writes what.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from odradek.storage.manager import uuid_from_kafka, uuid_to_kafka

CLUSTER_ID = "/cluster/id"
BROKER_IDS = "/brokers/ids"
TOPICS = "/brokers/topics"
CONTROLLER = "/controller"
CONTROLLER_EPOCH = "/controller_epoch"
CONFIG_TOPICS = "/config/topics"
CONFIG_BROKERS = "/config/brokers"
DELETE_TOPICS = "/admin/delete_topics"
PREFERRED_REPLICA_ELECTION = "/admin/preferred_replica_election"
PRODUCER_ID_BLOCK = "/latest_producer_id_block"
# Created at start so that watches and children listings find them.
PERSISTENT_PATHS = (BROKER_IDS, TOPICS, CONFIG_TOPICS, CONFIG_BROKERS, DELETE_TOPICS, "/cluster")
DEFAULT_BROKER_CONFIG = "<default>"


def broker_path(node_id: int) -> str:
    return f"{BROKER_IDS}/{node_id}"


def topic_path(topic: str) -> str:
    return f"{TOPICS}/{topic}"


def partitions_path(topic: str) -> str:
    return f"{TOPICS}/{topic}/partitions"


def partition_state_path(topic: str, partition: int) -> str:
    return f"{TOPICS}/{topic}/partitions/{partition}/state"


def topic_config_path(topic: str) -> str:
    return f"{CONFIG_TOPICS}/{topic}"


def broker_config_path(resource: str) -> str:
    """`resource`: a node id, or "" for the cluster-wide defaults."""
    return f"{CONFIG_BROKERS}/{resource or DEFAULT_BROKER_CONFIG}"


def _dump(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _load(data: bytes) -> Any:
    return json.loads(data.decode())


def _now_ms() -> str:
    return str(int(time.time() * 1000))


# -- brokers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    """A live broker, as its ephemeral znode says; `epoch` is the znode's czxid."""

    node_id: int
    host: str
    port: int
    rack: str | None = None
    epoch: int = -1
    endpoints: tuple[str, ...] = ()


def encode_broker(
    node_id: int,
    endpoints: Mapping[str, tuple[str, int]],
    rack: str | None,
    protocols: Mapping[str, str] | None = None,
) -> bytes:
    """`endpoints`: listener name -> (host, port); the first is the default host/port.
    `protocols`: listener name -> security protocol (PLAINTEXT when not given)."""
    first_host, first_port = next(iter(endpoints.values()))
    document: dict[str, Any] = {
        "features": {},
        "listener_security_protocol_map": {
            name: (protocols or {}).get(name, "PLAINTEXT") for name in endpoints
        },
        "endpoints": [f"{name}://{host}:{port}" for name, (host, port) in endpoints.items()],
        "jmx_port": -1,
        "port": first_port,
        "host": first_host,
        "version": 5,
        "timestamp": _now_ms(),
    }
    if rack is not None:
        document["rack"] = rack
    return _dump(document)


def decode_broker(node_id: int, data: bytes, czxid: int = -1) -> BrokerInfo:
    document = _load(data)
    endpoints = tuple(document.get("endpoints", ()))
    host, port = document.get("host"), document.get("port", -1)
    if (not host or port in (None, -1)) and endpoints:
        rest = endpoints[0].partition("://")[2]
        host, _, text = rest.rpartition(":")
        port = int(text)
    return BrokerInfo(node_id, str(host), int(port), document.get("rack"), czxid, endpoints)


def endpoint_for(broker: BrokerInfo, listener: str | None) -> tuple[str, int]:
    """The host and port of `listener` on `broker` (its default when not listed);
    listener names compare case-insensitively, as Kafka normalises them."""
    if listener:
        wanted = listener.upper()
        for endpoint in broker.endpoints:
            name, _, rest = endpoint.partition("://")
            if name.upper() == wanted:
                host, _, port = rest.rpartition(":")
                return host.strip("[]"), int(port)
    return broker.host, broker.port


# -- controller ------------------------------------------------------------------------


def encode_controller(node_id: int) -> bytes:
    return _dump({"version": 1, "brokerid": node_id, "timestamp": _now_ms()})


def decode_controller(data: bytes) -> int:
    return int(_load(data)["brokerid"])


def encode_cluster_id(cluster_id: str) -> bytes:
    return _dump({"version": "1", "id": cluster_id})


def decode_cluster_id(data: bytes) -> str:
    return str(_load(data)["id"])


# -- topics and partitions -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicAssignment:
    """/brokers/topics/T: the topic id and each partition's replicas, in preference order."""

    name: str
    topic_id: uuid.UUID
    partitions: Mapping[int, tuple[int, ...]]
    adding: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    removing: Mapping[int, tuple[int, ...]] = field(default_factory=dict)


def _replica_map(raw: Mapping[str, Any]) -> dict[int, tuple[int, ...]]:
    return {int(p): tuple(int(r) for r in replicas) for p, replicas in raw.items()}


def _replica_json(replicas: Mapping[int, tuple[int, ...]]) -> dict[str, list[int]]:
    return {str(p): list(r) for p, r in sorted(replicas.items())}


def encode_topic(assignment: TopicAssignment) -> bytes:
    return _dump(
        {
            "partitions": _replica_json(assignment.partitions),
            "topic_id": uuid_to_kafka(assignment.topic_id),
            "adding_replicas": _replica_json(assignment.adding),
            "removing_replicas": _replica_json(assignment.removing),
            "version": 3,
        }
    )


def decode_topic(name: str, data: bytes) -> TopicAssignment:
    document = _load(data)
    raw_id = document.get("topic_id")
    # Topics written by old Kafka versions have no id: derive a stable one from the name.
    topic_id = uuid_from_kafka(raw_id) if raw_id else uuid.uuid5(uuid.NAMESPACE_URL, name)
    return TopicAssignment(
        name,
        topic_id,
        _replica_map(document.get("partitions", {})),
        _replica_map(document.get("adding_replicas", {})),
        _replica_map(document.get("removing_replicas", {})),
    )


@dataclass(frozen=True, slots=True)
class PartitionState:
    """/brokers/topics/T/partitions/P/state, with the znode version it was read at."""

    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    controller_epoch: int
    zk_version: int = -1


def encode_partition_state(state: PartitionState) -> bytes:
    return _dump(
        {
            "controller_epoch": state.controller_epoch,
            "leader": state.leader,
            "version": 1,
            "leader_epoch": state.leader_epoch,
            "isr": list(state.isr),
        }
    )


def decode_partition_state(data: bytes, zk_version: int) -> PartitionState:
    document = _load(data)
    return PartitionState(
        int(document["leader"]),
        int(document["leader_epoch"]),
        tuple(int(r) for r in document["isr"]),
        int(document["controller_epoch"]),
        zk_version,
    )


def encode_config(configs: Mapping[str, str]) -> bytes:
    return _dump({"version": 1, "config": dict(configs)})


def decode_config(data: bytes) -> dict[str, str]:
    if not data:
        return {}
    return {str(k): str(v) for k, v in _load(data).get("config", {}).items()}


# -- producer ids ----------------------------------------------------------------------


def encode_producer_id_block(node_id: int, start: int, end: int) -> bytes:
    return _dump(
        {"version": 1, "broker": node_id, "block_start": str(start), "block_end": str(end)}
    )


def decode_producer_id_block_end(data: bytes) -> int:
    """The last id of the newest block handed out (-1 when none was)."""
    if not data:
        return -1
    return int(_load(data)["block_end"])


# -- preferred replica election ----------------------------------------------------------


def encode_preferred_replica_election(partitions: Iterable[tuple[str, int]]) -> bytes:
    """/admin/preferred_replica_election: the partitions whose first replica should lead."""
    listed = [{"topic": topic, "partition": index} for topic, index in partitions]
    return _dump({"version": 1, "partitions": listed})


def decode_preferred_replica_election(data: bytes) -> list[tuple[str, int]]:
    if not data:
        return []
    return [(str(p["topic"]), int(p["partition"])) for p in _load(data).get("partitions", ())]
