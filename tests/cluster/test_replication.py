"""Replication across three real brokers on a real ZooKeeper, driven by real clients."""

from __future__ import annotations

import filecmp
import os

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from odradek.testing.cluster import Cluster, wait_until

MESSAGES = 300


def _produce(bootstrap: str, topic: str, count: int, **extra: object) -> dict[int, list[int]]:
    """Sends `count` records with acks=all and idempotence; partition -> acked offsets."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            **extra,
        }
    )
    acked: dict[int, list[int]] = {}
    errors: list[object] = []

    def delivered(err: object, msg: object) -> None:
        if err is not None:
            errors.append(err)
        else:
            acked.setdefault(msg.partition(), []).append(msg.offset())  # type: ignore[attr-defined]

    for i in range(count):
        producer.produce(
            topic, key=str(i).encode(), value=f"ride-{i}".encode(), on_delivery=delivered
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not errors, errors
    return acked


def _consume_all(bootstrap: str, topic: str, expected: int, partitions: int = 1) -> list[bytes]:
    """Reads from the beginning of every partition (assigned, no group) until `expected`
    records have come."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{topic}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    values: list[bytes] = []
    try:
        wait_until(lambda: _poll_into(consumer, values) >= expected, 60, f"{expected} records", 0)
    finally:
        consumer.close()
    return values


def _poll_into(consumer: Consumer, values: list[bytes]) -> int:
    msg = consumer.poll(0.2)
    if msg is not None and msg.error() is None:
        values.append(msg.value())
    return len(values)


def test_three_replicas_hold_identical_segments(cluster: Cluster) -> None:
    """With replication factor 3 and min.insync.replicas=2, acks=all produce succeeds, a
    consumer reads every record, and every broker's segment files of the partition are
    byte-identical to the leader's."""
    cluster.create_topic(
        "rides", partitions=1, replication_factor=3, config={"min.insync.replicas": "2"}
    )
    acked = _produce(cluster.bootstrap_servers, "rides", MESSAGES)
    assert sorted(acked[0]) == list(range(MESSAGES))
    values = _consume_all(cluster.bootstrap_servers, "rides", MESSAGES)
    assert sorted(values) == sorted(f"ride-{i}".encode() for i in range(MESSAGES))
    leader = cluster.leader_of("rides", 0)
    leader_dir = cluster.brokers[leader].data_dir / "rides-0"
    segment = "00000000000000000000.log"

    def same_everywhere() -> bool:
        return all(
            filecmp.cmp(leader_dir / segment, b.data_dir / "rides-0" / segment, shallow=False)
            for b in cluster.brokers.values()
            if os.path.exists(b.data_dir / "rides-0" / segment)
        ) and all(
            os.path.exists(b.data_dir / "rides-0" / segment) for b in cluster.brokers.values()
        )

    wait_until(same_everywhere, 10, "identical segments on every broker")


def test_kafka_python_and_aiokafka_across_three_leaders(cluster: Cluster) -> None:
    """kafka-python and aiokafka producers (acks=all) and consumers work against a topic
    whose three partitions are led by different brokers: each client finds every
    partition's leader itself, and reads back exactly what it wrote."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KpTopicPartition

    cluster.create_topic("trips", partitions=3, replication_factor=3)
    assert {cluster.leader_of("trips", p) for p in range(3)} == {1, 2, 3}
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, acks="all")
    for i in range(60):
        producer.send("trips", value=f"kp-{i}".encode(), partition=i % 3)
    producer.flush(30)
    producer.close()

    async def aio_round_trip() -> list[bytes]:
        aio_producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap_servers, acks="all")
        await aio_producer.start()
        try:
            for i in range(60):
                await aio_producer.send_and_wait("trips", f"aio-{i}".encode(), partition=i % 3)
        finally:
            await aio_producer.stop()
        consumer = AIOKafkaConsumer(
            "trips", bootstrap_servers=cluster.bootstrap_servers, auto_offset_reset="earliest"
        )
        await consumer.start()
        seen: list[bytes] = []
        try:
            async with asyncio.timeout(60):
                while len(seen) < 120:
                    batch = await consumer.getmany(timeout_ms=500)
                    seen.extend(r.value for records in batch.values() for r in records)
        finally:
            await consumer.stop()
        return seen

    aio_seen = asyncio.run(aio_round_trip())
    expected = {f"kp-{i}".encode() for i in range(60)} | {f"aio-{i}".encode() for i in range(60)}
    assert set(aio_seen) == expected and len(aio_seen) == 120
    consumer = KafkaConsumer(
        bootstrap_servers=cluster.bootstrap_servers, group_id=None, consumer_timeout_ms=10_000
    )
    consumer.assign([KpTopicPartition("trips", p) for p in range(3)])
    consumer.seek_to_beginning()
    kp_seen = [record.value for _, record in zip(range(120), consumer, strict=False)]
    consumer.close()
    assert set(kp_seen) == expected and len(kp_seen) == 120


def test_refusals_name_the_leader(cluster: Cluster) -> None:
    """KIP-951: a Produce (v12) or Fetch (v16) sent to a broker that does not lead the
    partition is refused with NOT_LEADER_OR_FOLLOWER and names the current leader, its
    epoch and its endpoint; a ListOffsets there is refused too, and one naming an old
    leader epoch at the leader gets FENCED_LEADER_EPOCH."""
    import asyncio
    import datetime
    from typing import Any

    from kio.schema.errors import ErrorCode
    from kio.schema.fetch.v16 import request as fetch
    from kio.schema.list_offsets.v7 import request as offsets
    from kio.schema.produce.v12 import request as produce

    from odradek.protocol.records import SimpleRecord, build_batch
    from odradek.replication.client import BrokerClient

    cluster.create_topic("rides", partitions=1, replication_factor=3)
    leader = cluster.leader_of("rides", 0)
    epoch = cluster.partition_state("rides", 0)["leader_epoch"]  # type: ignore[index]
    follower = next(n for n in cluster.brokers if n != leader)
    topic_id = cluster.topic_id("rides")
    k: Any = fetch  # kio's NewType'd fields, built from plain values
    p: Any = produce
    o: Any = offsets

    def list_offsets(epoch: int) -> Any:
        partition = o.ListOffsetsPartition(
            partition_index=0, current_leader_epoch=epoch, timestamp=-1
        )
        return o.ListOffsetsRequest(
            replica_id=-1,
            isolation_level=0,
            topics=(o.ListOffsetsTopic(name="rides", partitions=(partition,)),),
        )

    async def ask_leader() -> Any:
        client = BrokerClient("127.0.0.1", cluster.brokers[leader].port)
        await client.connect(10)
        try:
            return await client.request(list_offsets(epoch - 1 if epoch > 0 else -2))
        finally:
            await client.close()

    async def ask() -> tuple[Any, Any]:
        client = BrokerClient("127.0.0.1", cluster.brokers[follower].port)
        await client.connect(10)
        try:
            batch = build_batch([SimpleRecord(b"ride")])
            produced = await client.request(
                p.ProduceRequest(
                    transactional_id=None,
                    acks=-1,
                    timeout=datetime.timedelta(seconds=5),
                    topic_data=(
                        p.TopicProduceData(
                            name="rides",
                            partition_data=(p.PartitionProduceData(index=0, records=batch),),
                        ),
                    ),
                )
            )
            fetched = await client.request(
                k.FetchRequest(
                    cluster_id=None,
                    replica_state=k.ReplicaState(replica_id=-1, replica_epoch=-1),
                    max_wait=datetime.timedelta(0),
                    min_bytes=1,
                    max_bytes=1 << 20,
                    isolation_level=0,
                    session_id=0,
                    session_epoch=-1,
                    topics=(
                        k.FetchTopic(
                            topic_id=topic_id,
                            partitions=(
                                k.FetchPartition(
                                    partition=0,
                                    current_leader_epoch=-1,
                                    fetch_offset=0,
                                    last_fetched_epoch=-1,
                                    log_start_offset=-1,
                                    partition_max_bytes=1 << 20,
                                ),
                            ),
                        ),
                    ),
                    forgotten_topics_data=(),
                    rack_id="",
                )
            )
            listed = await client.request(list_offsets(-1))
        finally:
            await client.close()
        assert listed.topics[0].partitions[0].error_code == ErrorCode.not_leader_or_follower
        return produced, fetched

    produced, fetched = asyncio.run(ask())
    answer = produced.responses[0].partition_responses[0]
    assert answer.error_code == ErrorCode.not_leader_or_follower
    assert (answer.current_leader.leader_id, answer.current_leader.leader_epoch) == (leader, epoch)
    assert [e.node_id for e in produced.node_endpoints] == [leader]
    assert produced.node_endpoints[0].port == cluster.brokers[leader].port
    data = fetched.responses[0].partitions[0]
    assert data.error_code == ErrorCode.not_leader_or_follower
    assert (data.current_leader.leader_id, data.current_leader.leader_epoch) == (leader, epoch)
    assert [e.node_id for e in fetched.node_endpoints] == [leader]

    cluster.kill(leader)
    new_leader = cluster.wait_new_leader("rides", 0, leader)
    leader, epoch = new_leader, cluster.partition_state("rides", 0)["leader_epoch"]  # type: ignore[index]
    fenced = asyncio.run(ask_leader()).topics[0].partitions[0]
    assert fenced.error_code == ErrorCode.fenced_leader_epoch
