"""Kafka's ZooKeeper documents (metadata/zk_layout.py): what we write reads back, and
documents as Kafka writes them read as Kafka means them."""

from __future__ import annotations

import json
import uuid

from odradek.metadata import zk_layout as zl


def test_partition_state_round_trip_and_kafka_fields() -> None:
    """A partition state keeps leader, epoch, ISR and controller epoch, in Kafka's keys."""
    state = zl.PartitionState(2, 7, (2, 3, 1), 4)
    data = zl.encode_partition_state(state)
    assert json.loads(data) == {
        "controller_epoch": 4,
        "leader": 2,
        "version": 1,
        "leader_epoch": 7,
        "isr": [2, 3, 1],
    }
    assert zl.decode_partition_state(data, 9) == zl.PartitionState(2, 7, (2, 3, 1), 4, 9)


def test_topic_assignment_round_trip() -> None:
    """A topic znode keeps its id (Kafka's base64 form) and replicas per partition."""
    topic = zl.TopicAssignment("rides", uuid.uuid4(), {0: (1, 2), 1: (2, 3)}, {1: (3,)})
    back = zl.decode_topic("rides", zl.encode_topic(topic))
    assert back == topic


def test_kafka_broker_registration_is_read() -> None:
    """A /brokers/ids/N document as Kafka 3.x writes it gives host, port, rack and the
    endpoint of a named listener."""
    data = json.dumps(
        {
            "features": {},
            "listener_security_protocol_map": {"PLAINTEXT": "PLAINTEXT", "REPL": "PLAINTEXT"},
            "endpoints": ["PLAINTEXT://10.0.0.5:9092", "REPL://10.0.0.5:9093"],
            "jmx_port": -1,
            "port": 9092,
            "host": "10.0.0.5",
            "version": 5,
            "timestamp": "1700000000000",
            "rack": "r1",
        }
    ).encode()
    broker = zl.decode_broker(3, data, czxid=77)
    assert (broker.host, broker.port, broker.rack, broker.epoch) == ("10.0.0.5", 9092, "r1", 77)
    assert zl.endpoint_for(broker, "REPL") == ("10.0.0.5", 9093)
    assert zl.endpoint_for(broker, None) == ("10.0.0.5", 9092)


def test_old_topic_without_id_gets_a_stable_one() -> None:
    """A topic znode from before topic ids (Kafka < 2.8) gets the same id every time."""
    data = b'{"version":1,"partitions":{"0":[1]}}'
    assert zl.decode_topic("t", data).topic_id == zl.decode_topic("t", data).topic_id


def test_producer_id_block() -> None:
    """The block document uses Kafka's string-typed offsets; none written means -1."""
    data = zl.encode_producer_id_block(1, 1000, 1999)
    assert json.loads(data)["block_end"] == "1999"
    assert zl.decode_producer_id_block_end(data) == 1999
    assert zl.decode_producer_id_block_end(b"") == -1
