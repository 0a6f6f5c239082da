"""DescribeCluster, DescribeLogDirs, ElectLeaders, AlterPartitionReassignments,
ListPartitionReassignments and DescribeProducers at the wire level, every version."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode

from odradek.protocol.records import SimpleRecord, build_batch
from odradek.testing import Broker
from tests.handlers.kafka_wire import TIMEOUT, create_topic, produce, produce_request
from tests.server.wire import WireClient, build, request_module

NODE = 1


@pytest.fixture
def broker() -> Iterator[Broker]:
    with Broker(config={"node.id": NODE}) as running:
        yield running


@pytest.mark.parametrize("version", [0, 1, 2])
def test_describe_cluster(broker: Broker, version: int) -> None:
    """The cluster id, this broker (host, port) and itself as controller; asked for
    authorized operations, every cluster operation."""
    m = request_module(60, version)
    body = build(
        m.DescribeClusterRequest,
        include_cluster_authorized_operations=True,
        endpoint_type=1,
        include_fenced_brokers=False,
    )
    with WireClient(broker.port) as client:
        response = client.call(60, version, body)
    assert broker.broker is not None
    assert response.error_code == ErrorCode.none
    assert response.cluster_id == broker.broker.services.metadata.cluster_id
    assert response.controller_id == NODE
    assert [(b.broker_id, b.port) for b in response.brokers] == [(NODE, broker.port)]
    assert response.cluster_authorized_operations & (1 << 10)  # DESCRIBE_CONFIGS


@pytest.mark.parametrize(("endpoint_type", "code"), [(2, 114), (7, 115)])
def test_describe_cluster_endpoint_types(broker: Broker, endpoint_type: int, code: int) -> None:
    """Asking a broker for controllers gives MISMATCHED_ENDPOINT_TYPE; an unknown endpoint
    type UNSUPPORTED_ENDPOINT_TYPE; no brokers are listed then."""
    m = request_module(60, 1)
    body = build(
        m.DescribeClusterRequest,
        include_cluster_authorized_operations=False,
        endpoint_type=endpoint_type,
    )
    with WireClient(broker.port) as client:
        response = client.call(60, 1, body)
    assert response.error_code == code
    assert response.brokers == ()


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_describe_log_dirs(broker: Broker, version: int) -> None:
    """Each partition's size in its log dir; a named partition not hosted is left out;
    v4 has the volume's total and usable bytes."""
    m = request_module(35, version)
    with WireClient(broker.port) as client:
        create_topic(client, "dirs", partitions=2)
        produce(client, "dirs", [SimpleRecord(b"x" * 100, timestamp=1)])
        everything = client.call(35, version, build(m.DescribeLogDirsRequest, topics=None))
        named = build(m.DescribableLogDirTopic, topic="dirs", partitions=(1, 9))
        narrow = client.call(35, version, build(m.DescribeLogDirsRequest, topics=(named,)))
    (result,) = everything.results
    assert result.log_dir == os.path.abspath(broker.data_dir)
    sizes = {
        (t.name, p.partition_index): p.partition_size for t in result.topics for p in t.partitions
    }
    assert sizes[("dirs", 0)] == len(build_batch([SimpleRecord(b"x" * 100, timestamp=1)]))
    assert sizes[("dirs", 1)] == 0
    assert [
        (t.name, [p.partition_index for p in t.partitions]) for t in narrow.results[0].topics
    ] == [("dirs", [1])]
    if version >= 4:
        assert result.total_bytes >= result.usable_bytes > 0


@pytest.mark.parametrize("version", [0, 1, 2])
def test_elect_leaders(broker: Broker, version: int) -> None:
    """A hosted partition needs no election (ELECTION_NOT_NEEDED), an unknown one is
    UNKNOWN_TOPIC_OR_PARTITION; electing everywhere lists nothing."""
    m = request_module(43, version)
    with WireClient(broker.port) as client:
        create_topic(client, "elect")
        wanted = (
            build(m.TopicPartitions, topic="elect", partitions=(0, 5)),
            build(m.TopicPartitions, topic="nope", partitions=(0,)),
        )
        body = build(
            m.ElectLeadersRequest, election_type=0, topic_partitions=wanted, timeout=TIMEOUT
        )
        named = client.call(43, version, body)
        every = build(
            m.ElectLeadersRequest, election_type=1, topic_partitions=None, timeout=TIMEOUT
        )
        everything = client.call(43, version, every)
    codes = {
        (r.topic, p.partition_id): p.error_code
        for r in named.replica_election_results
        for p in r.partition_result
    }
    assert codes == {
        ("elect", 0): ErrorCode.election_not_needed,
        ("elect", 5): ErrorCode.unknown_topic_or_partition,
        ("nope", 0): ErrorCode.unknown_topic_or_partition,
    }
    assert everything.replica_election_results == ()


def test_elect_leaders_bad_election_type(broker: Broker) -> None:
    """An election type other than preferred (0) or unclean (1) is INVALID_REQUEST."""
    m = request_module(43, 2)
    body = build(m.ElectLeadersRequest, election_type=5, topic_partitions=None, timeout=TIMEOUT)
    with WireClient(broker.port) as client:
        assert client.call(43, 2, body).error_code == ErrorCode.invalid_request


@pytest.mark.parametrize("version", [0, 1])
def test_alter_partition_reassignments(broker: Broker, version: int) -> None:
    """Moving a partition to this broker is a no-op success; a cancellation finds nothing
    in progress; other, repeated or no brokers are INVALID_REPLICA_ASSIGNMENT."""
    m = request_module(45, version)
    cases = {
        0: ((NODE,), ErrorCode.none),
        1: (None, ErrorCode.no_reassignment_in_progress),
        2: ((NODE, 2), ErrorCode.invalid_replica_assignment),
        3: ((NODE, NODE), ErrorCode.invalid_replica_assignment),
        4: ((), ErrorCode.invalid_replica_assignment),
        9: ((NODE,), ErrorCode.unknown_topic_or_partition),
    }
    partitions = tuple(
        build(m.ReassignablePartition, partition_index=i, replicas=r) for i, (r, _) in cases.items()
    )
    body = build(
        m.AlterPartitionReassignmentsRequest,
        timeout=TIMEOUT,
        allow_replication_factor_change=True,
        topics=(build(m.ReassignableTopic, name="moved", partitions=partitions),),
    )
    with WireClient(broker.port) as client:
        create_topic(client, "moved", partitions=5)
        response = client.call(45, version, body)
    assert response.error_code == ErrorCode.none
    got = {p.partition_index: p.error_code for p in response.responses[0].partitions}
    assert got == {i: code for i, (_, code) in cases.items()}


def test_list_partition_reassignments_is_empty(broker: Broker) -> None:
    """Nothing is ever being reassigned, named or not."""
    m = request_module(46, 0)
    named = build(m.ListPartitionReassignmentsTopics, name="x", partition_indexes=(0,))
    with WireClient(broker.port) as client:
        for topics in (None, (named,)):
            body = build(m.ListPartitionReassignmentsRequest, timeout=TIMEOUT, topics=topics)
            response = client.call(46, 0, body)
            assert (response.error_code, response.topics) == (ErrorCode.none, ())


def test_describe_producers(broker: Broker) -> None:
    """An idempotent producer's id, epoch, last sequence and timestamp, from the log's
    producer state; coordinator epoch and transaction start -1; unknown partitions
    UNKNOWN_TOPIC_OR_PARTITION."""
    batch = build_batch(
        [SimpleRecord(b"a", timestamp=1_000), SimpleRecord(b"b", timestamp=2_000)],
        producer_id=42,
        producer_epoch=3,
        base_sequence=0,
    )
    produce_body = produce_request("idem", batch, version=11)
    m = request_module(61, 0)
    asked = build(m.TopicRequest, name="idem", partition_indexes=(0, 3))
    with WireClient(broker.port) as client:
        create_topic(client, "idem")
        client.call(0, 11, produce_body)
        response = client.call(61, 0, build(m.DescribeProducersRequest, topics=(asked,)))
    first, missing = response.topics[0].partitions
    assert first.error_code == ErrorCode.none
    (state,) = first.active_producers
    assert (state.producer_id, state.producer_epoch, state.last_sequence) == (42, 3, 1)
    assert state.last_timestamp == 2_000
    assert (state.coordinator_epoch, state.current_txn_start_offset) == (-1, -1)
    assert missing.error_code == ErrorCode.unknown_topic_or_partition


def test_admin_apis_are_advertised(broker: Broker) -> None:
    """The admin APIs are advertised, AlterReplicaLogDirs and the ACL APIs among them
    (answered SECURITY_DISABLED, tests/handlers/test_acls.py)."""
    m = request_module(18, 3)
    body = build(m.ApiVersionsRequest, client_software_name="t", client_software_version="1")
    with WireClient(broker.port) as client:
        keys = {k.api_key for k in client.call(18, 3, body).api_keys}
    assert {29, 30, 31, 32, 33, 34, 35, 43, 44, 45, 46, 60, 61} <= keys
