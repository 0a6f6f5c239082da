"""The offsets a group's offset reset needs of each partition: log start offset, high
watermark and, for a reset to a time, the first offset with a timestamp at or after it.

A partition this broker leads is read from its log. In a cluster the others are asked
of their leaders with ListOffsets (as kafka-consumer-groups does: timestamps -2, -1 and
the time; read_uncommitted), one request per leader and timestamp, over connections
opened for the reset and closed after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.list_offsets.v7 import request as list_offsets

from odradek.coordinator.txn.remote import BrokerPool, Leader
from odradek.metadata import zk_layout
from odradek.replication.client import BrokerClientError
from odradek.replication.partition import Partition
from odradek.server.broker import Broker

TopicPartition = tuple[str, int]

EARLIEST = -2
LATEST = -1
VERSION = 7

_Request: Any = list_offsets.ListOffsetsRequest
_Topic: Any = list_offsets.ListOffsetsTopic
_Partition: Any = list_offsets.ListOffsetsPartition


class BoundsUnknown(ValueError):
    """A partition's offsets could not be found: the reset is refused with this."""


@dataclass(slots=True, frozen=True)
class Bounds:
    start: int  # the log start offset
    end: int  # the high watermark
    at_time: int | None  # the first offset at or after the asked time; None: none or not asked


async def log_bounds(
    broker: Broker, partitions: Iterable[TopicPartition], moment: int | None
) -> dict[TopicPartition, Bounds]:
    """Each partition's bounds (and the offset at `moment` when given)."""
    found: dict[TopicPartition, Bounds] = {}
    elsewhere: dict[Leader, list[TopicPartition]] = {}
    for topic, index in partitions:
        partition = broker.services.replicas.get(topic, index)
        if partition is not None and partition.is_leader:
            found[(topic, index)] = _local(partition, moment)
        else:
            elsewhere.setdefault(leader_address(broker, topic, index), []).append((topic, index))
    if elsewhere:
        pool = BrokerPool("odradek-console")
        try:
            for leader, asked in elsewhere.items():
                found.update(await _remote(pool, leader, asked, moment))
        finally:
            await pool.close()
    return found


def _local(partition: Partition, moment: int | None) -> Bounds:
    end = partition.high_watermark
    at_time = None
    if moment is not None:
        hit = partition.log.fetch_offset_by_timestamp(moment)
        at_time = None if hit is None or hit[0] >= end else hit[0]
    return Bounds(partition.log_start_offset, end, at_time)


def leader_address(broker: Broker, topic: str, index: int) -> Leader:
    """(node id, host, port of the inter-broker listener) of the partition's leader in a
    cluster; BoundsUnknown when there is none (or no cluster)."""
    services = broker.services
    cluster = services.cluster
    name = f"partition {index} of {topic!r}"
    if cluster is None:
        raise BoundsUnknown(f"No {name} on this broker.")
    state = cluster.store.partition_state(topic, index)
    info = cluster.store.brokers.get(state.leader) if state is not None else None
    if info is None:
        raise BoundsUnknown(f"The {name} has no live leader: its offsets are not known.")
    host, port = zk_layout.endpoint_for(info, services.config.inter_broker_listener_name)
    return info.node_id, host, port


async def _remote(
    pool: BrokerPool, leader: Leader, asked: list[TopicPartition], moment: int | None
) -> dict[TopicPartition, Bounds]:
    start = await _ask(pool, leader, asked, EARLIEST)
    end = await _ask(pool, leader, asked, LATEST)
    at_time = await _ask(pool, leader, asked, moment) if moment is not None else {}
    return {
        tp: Bounds(start[tp], end[tp], at_time[tp] if at_time.get(tp, -1) >= 0 else None)
        for tp in asked
    }


async def _ask(
    pool: BrokerPool, leader: Leader, asked: list[TopicPartition], timestamp: int
) -> dict[TopicPartition, int]:
    """The leader's offset of each partition for `timestamp` (-1: none)."""
    by_topic: dict[str, list[int]] = {}
    for topic, index in asked:
        by_topic.setdefault(topic, []).append(index)
    request = _Request(
        replica_id=-1,
        isolation_level=0,
        topics=tuple(
            _Topic(
                name=topic,
                partitions=tuple(_Partition(partition_index=i, timestamp=timestamp) for i in parts),
            )
            for topic, parts in by_topic.items()
        ),
    )
    try:
        response = await pool.request(leader, request, VERSION)
    except BrokerClientError as error:
        raise BoundsUnknown(f"Broker {leader[0]} could not be asked for offsets: {error}") from None
    offsets: dict[TopicPartition, int] = {}
    for topic in response.topics:
        for p in topic.partitions:
            tp = (str(topic.name), int(p.partition_index))
            if p.error_code != ErrorCode.none:
                raise BoundsUnknown(
                    f"Broker {leader[0]} answered {p.error_code.name.upper()} for partition "
                    f"{tp[1]} of {tp[0]!r}."
                )
            offsets[tp] = int(p.offset)
    missing = set(asked) - set(offsets)
    if missing:
        raise BoundsUnknown(f"Broker {leader[0]} did not answer for {sorted(missing)}.")
    return offsets
