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

from kio.schema.errors import ErrorCode

from odradek.coordinator.txn.remote import BrokerPool, Leader
from odradek.replication.client import BrokerClientError
from odradek.replication.partition import Partition
from odradek.server.broker import Broker
from odradek.server.partition_offsets import ask_offsets, leader_of

TopicPartition = tuple[str, int]

EARLIEST = -2
LATEST = -1


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
    name = f"partition {index} of {topic!r}"
    if broker.services.cluster is None:
        raise BoundsUnknown(f"No {name} on this broker.")
    leader = leader_of(broker.services, (topic, index))
    if leader is None:
        raise BoundsUnknown(f"The {name} has no live leader: its offsets are not known.")
    return leader


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
    try:
        answers = await ask_offsets(pool, leader, asked, timestamp)
    except BrokerClientError as error:
        raise BoundsUnknown(f"Broker {leader[0]} could not be asked for offsets: {error}") from None
    offsets: dict[TopicPartition, int] = {}
    for (topic, index), (error_code, offset) in answers.items():
        if error_code != ErrorCode.none:
            raise BoundsUnknown(
                f"Broker {leader[0]} answered {error_code.name.upper()} for partition "
                f"{index} of {topic!r}."
            )
        offsets[(topic, index)] = offset
    missing = set(asked) - set(offsets)
    if missing:
        raise BoundsUnknown(f"Broker {leader[0]} did not answer for {sorted(missing)}.")
    return offsets
