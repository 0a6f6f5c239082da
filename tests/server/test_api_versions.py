"""Every API version the broker advertises is served: a minimal valid request of each
version gets a well-formed response of that version without an error."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.handlers.registry import HANDLERS
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.testing import Broker
from tests.handlers.kafka_wire import create_topics_request
from tests.server.wire import WireClient, build, request_module

TIMEOUT = datetime.timedelta(seconds=5)


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with Broker() as running:
        yield running


def _topic(broker: Broker, name: str) -> uuid.UUID:
    assert broker.broker is not None
    return broker.broker.services.metadata.topics[name].topic_id


def _ensure_topic(broker: Broker, client: WireClient, name: str) -> uuid.UUID:
    client.call(19, 7, create_topics_request(name))
    return _topic(broker, name)


def _produce(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    batch = build_batch([SimpleRecord(b"v", key=b"k", timestamp=1_700_000_000_000)])
    data = build(m.PartitionProduceData, index=0, records=batch)
    topic = build(m.TopicProduceData, name=name, topic_id=topic_id, partition_data=(data,))
    return build(
        m.ProduceRequest, acks=1, timeout=TIMEOUT, topic_data=(topic,), transactional_id=None
    )


def _fetch(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    part = build(m.FetchPartition, partition=0, fetch_offset=0, partition_max_bytes=1 << 20)
    topic = build(m.FetchTopic, topic=name, topic_id=topic_id, partitions=(part,))
    return build(
        m.FetchRequest,
        max_wait=datetime.timedelta(0),
        min_bytes=0,
        topics=(topic,),
        forgotten_topics_data=(),
    )


def _list_offsets(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    part = build(m.ListOffsetsPartition, partition_index=0, timestamp=-1)
    topic = build(m.ListOffsetsTopic, name=name, partitions=(part,))
    return build(
        m.ListOffsetsRequest, replica_id=-1, isolation_level=0, topics=(topic,), timeout=TIMEOUT
    )


def _metadata(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    topic = build(m.MetadataRequestTopic, name=name, topic_id=None)
    return build(
        m.MetadataRequest,
        topics=(topic,),
        allow_auto_topic_creation=False,
        include_cluster_authorized_operations=False,
        include_topic_authorized_operations=False,
    )


def _api_versions(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(m.ApiVersionsRequest, client_software_name="t", client_software_version="1")


def _create_partitions(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    topic = build(m.CreatePartitionsTopic, name=name, count=2, assignments=None)
    return build(m.CreatePartitionsRequest, topics=(topic,), timeout=TIMEOUT, validate_only=True)


def _create_topics(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    topic = build(
        m.CreatableTopic,
        name=name + "-new",
        num_partitions=1,
        replication_factor=1,
        assignments=(),
        configs=(),
    )
    return build(m.CreateTopicsRequest, topics=(topic,), timeout=TIMEOUT, validate_only=True)


def _delete_topics(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    state = (
        build(m.DeleteTopicState, name=name, topic_id=None)
        if hasattr(m, "DeleteTopicState")
        else None
    )
    return build(m.DeleteTopicsRequest, topics=(state,), topic_names=(name,), timeout=TIMEOUT)


def _init_producer_id(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(
        m.InitProducerIdRequest,
        transactional_id=None,
        transaction_timeout=datetime.timedelta(seconds=60),
    )


BUILDERS = {
    0: _produce,
    1: _fetch,
    2: _list_offsets,
    3: _metadata,
    18: _api_versions,
    19: _create_topics,
    20: _delete_topics,
    22: _init_producer_id,
    37: _create_partitions,
}


# APIs that only succeed for a member of a group: a lone request is answered with the
# error Kafka gives a stranger, which still proves the version is decoded and answered.
# tests/coordinator/test_wire.py drives every version of them through a real join.
STRANGER_ERRORS: dict[tuple[int, int | None], set[int]] = {
    (12, None): {int(ErrorCode.unknown_member_id)},  # Heartbeat
    (14, None): {int(ErrorCode.unknown_member_id)},  # SyncGroup
    (47, None): {int(ErrorCode.group_id_not_found)},  # OffsetDelete
    (11, 4): {int(ErrorCode.member_id_required)},  # JoinGroup v4 without an instance id
    (13, 0): {int(ErrorCode.unknown_member_id)},  # LeaveGroup v0-2 name one member
    (13, 1): {int(ErrorCode.unknown_member_id)},
    (13, 2): {int(ErrorCode.unknown_member_id)},
}


def _allowed_errors(api_key: int, version: int) -> set[int]:
    for_any_version = STRANGER_ERRORS.get((api_key, None), set())
    return {0} | STRANGER_ERRORS.get((api_key, version), for_any_version)


def _heartbeat(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(
        m.HeartbeatRequest,
        group_id=name,
        generation_id=1,
        member_id="stranger",
        group_instance_id=None,
    )


def _sync_group(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(
        m.SyncGroupRequest,
        group_id=name,
        generation_id=1,
        member_id="stranger",
        group_instance_id=None,
        protocol_type="consumer",
        protocol_name="range",
        assignments=(),
    )


def _offset_delete(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    part = build(m.OffsetDeleteRequestPartition, partition_index=0)
    topic = build(m.OffsetDeleteRequestTopic, name=name, partitions=(part,))
    return build(m.OffsetDeleteRequest, group_id=name, topics=(topic,))


def _find_coordinator(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(m.FindCoordinatorRequest, key=name, key_type=0, coordinator_keys=(name,))


def _join_group(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    protocol = build(m.JoinGroupRequestProtocol, name="range", metadata=b"")
    return build(
        m.JoinGroupRequest,
        group_id=name,
        session_timeout=datetime.timedelta(seconds=10),
        rebalance_timeout=datetime.timedelta(seconds=10),
        member_id="",
        group_instance_id="instance",
        protocol_type="consumer",
        protocols=(protocol,),
        reason=None,
    )


def _offset_commit(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    part = build(
        m.OffsetCommitRequestPartition,
        partition_index=0,
        committed_offset=1,
        committed_leader_epoch=-1,
        committed_metadata="",
    )
    topic = build(m.OffsetCommitRequestTopic, name=name, topic_id=topic_id, partitions=(part,))
    return build(
        m.OffsetCommitRequest,
        group_id=name,
        generation_id_or_member_epoch=-1,
        member_id="",
        group_instance_id=None,
        retention_time=datetime.timedelta(milliseconds=-1),
        topics=(topic,),
    )


def _offset_fetch(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    if hasattr(m, "OffsetFetchRequestGroup"):
        topic = build(
            m.OffsetFetchRequestTopics, name=name, topic_id=topic_id, partition_indexes=(0,)
        )
        group = build(
            m.OffsetFetchRequestGroup,
            group_id=name,
            member_id=None,
            member_epoch=-1,
            topics=(topic,),
        )
        return build(m.OffsetFetchRequest, groups=(group,), require_stable=False)
    topic = build(m.OffsetFetchRequestTopic, name=name, partition_indexes=(0,))
    return build(m.OffsetFetchRequest, group_id=name, topics=(topic,), require_stable=False)


def _leave_group(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    if not hasattr(m, "MemberIdentity"):
        return build(m.LeaveGroupRequest, group_id=name, member_id="stranger")
    return build(m.LeaveGroupRequest, group_id=name, members=())


def _list_groups(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(m.ListGroupsRequest, states_filter=(), types_filter=())


def _describe_groups(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(m.DescribeGroupsRequest, groups=(), include_authorized_operations=True)


def _delete_groups(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(m.DeleteGroupsRequest, groups_names=())


BUILDERS.update(
    {
        8: _offset_commit,
        9: _offset_fetch,
        10: _find_coordinator,
        11: _join_group,
        12: _heartbeat,
        13: _leave_group,
        14: _sync_group,
        15: _describe_groups,
        16: _list_groups,
        42: _delete_groups,
        47: _offset_delete,
    }
)


def _describe_configs(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    resource = build(
        m.DescribeConfigsResource, resource_type=2, resource_name=name, configuration_keys=None
    )
    return build(
        m.DescribeConfigsRequest,
        resources=(resource,),
        include_synonyms=True,
        include_documentation=True,
    )


def _alter_configs(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    config = build(m.AlterableConfig, name="retention.ms", value="3600000", config_operation=0)
    resource = build(m.AlterConfigsResource, resource_type=2, resource_name=name, configs=(config,))
    request = m.AlterConfigsRequest if hasattr(m, "AlterConfigsRequest") else None
    request = request or m.IncrementalAlterConfigsRequest
    return build(request, resources=(resource,), validate_only=True)


def _describe_log_dirs(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(m.DescribeLogDirsRequest, topics=None)


def _elect_leaders(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(m.ElectLeadersRequest, election_type=0, topic_partitions=None, timeout=TIMEOUT)


def _alter_partition_reassignments(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    part = build(m.ReassignablePartition, partition_index=0, replicas=(1,))
    topic = build(m.ReassignableTopic, name=name, partitions=(part,))
    return build(
        m.AlterPartitionReassignmentsRequest,
        timeout=TIMEOUT,
        allow_replication_factor_change=True,
        topics=(topic,),
    )


def _list_partition_reassignments(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(m.ListPartitionReassignmentsRequest, timeout=TIMEOUT, topics=None)


def _describe_cluster(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(
        m.DescribeClusterRequest,
        include_cluster_authorized_operations=True,
        endpoint_type=1,
        include_fenced_brokers=True,
    )


def _describe_producers(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    topic = build(m.TopicRequest, name=name, partition_indexes=(0,))
    return build(m.DescribeProducersRequest, topics=(topic,))


BUILDERS.update(
    {
        32: _describe_configs,
        33: _alter_configs,
        35: _describe_log_dirs,
        43: _elect_leaders,
        44: _alter_configs,
        45: _alter_partition_reassignments,
        46: _list_partition_reassignments,
        60: _describe_cluster,
        61: _describe_producers,
    }
)


def _delete_records(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    part = build(m.DeleteRecordsPartition, partition_index=0, offset=0)
    topic = build(m.DeleteRecordsTopic, name=name, partitions=(part,))
    return build(m.DeleteRecordsRequest, topics=(topic,), timeout=TIMEOUT)


BUILDERS[21] = _delete_records


def _offset_for_leader_epoch(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    part = build(m.OffsetForLeaderPartition, partition=0, current_leader_epoch=-1, leader_epoch=0)
    topic = build(m.OffsetForLeaderTopic, topic=name, partitions=(part,))
    return build(m.OffsetForLeaderEpochRequest, replica_id=-1, topics=(topic,))


BUILDERS[23] = _offset_for_leader_epoch


def _txn_offset_commit(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    part = build(
        m.TxnOffsetCommitRequestPartition,
        partition_index=0,
        committed_offset=1,
        committed_leader_epoch=-1,
        committed_metadata=None,
    )
    topic = build(m.TxnOffsetCommitRequestTopic, name=name, partitions=(part,))
    return build(
        m.TxnOffsetCommitRequest,
        transactional_id="versions",
        group_id=f"versions-{name}",
        producer_id=1,
        producer_epoch=0,
        topics=(topic,),
    )


BUILDERS[28] = _txn_offset_commit
STRANGER_ERRORS[(28, None)] = {int(ErrorCode.invalid_producer_id_mapping)}


def _write_txn_markers(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    topic = build(m.WritableTxnMarkerTopic, name=name, partition_indexes=(0,))
    marker = build(
        m.WritableTxnMarker,
        producer_id=1,
        producer_epoch=0,
        transaction_result=False,
        topics=(topic,),
        coordinator_epoch=0,
    )
    return build(m.WriteTxnMarkersRequest, markers=(marker,))


BUILDERS[27] = _write_txn_markers


# The transaction APIs, sent by a stranger: no such transactional id.
def _add_partitions_to_txn(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    topic = build(m.AddPartitionsToTxnTopic, name=name, partitions=(0,))
    txns: tuple[Any, ...] = ()
    if hasattr(m, "AddPartitionsToTxnTransaction"):  # the batched v4+
        txn = build(
            m.AddPartitionsToTxnTransaction,
            transactional_id="stranger",
            producer_id=1,
            producer_epoch=0,
            verify_only=True,
            topics=(topic,),
        )
        txns = (txn,)
    return build(
        m.AddPartitionsToTxnRequest,
        v3_and_below_transactional_id="stranger",
        v3_and_below_producer_id=1,
        v3_and_below_producer_epoch=0,
        v3_and_below_topics=(topic,),
        transactions=txns,
    )


def _txn_fields(m: Any, cls: str, **extra: Any) -> Any:
    fields = {"transactional_id": "stranger", "producer_id": 1, "producer_epoch": 0}
    return build(getattr(m, cls), **fields, **extra)


BUILDERS.update(
    {
        24: _add_partitions_to_txn,
        25: lambda m, name, topic_id: _txn_fields(m, "AddOffsetsToTxnRequest", group_id="g"),
        26: lambda m, name, topic_id: _txn_fields(m, "EndTxnRequest", committed=True),
        # No ids: kio's reader refuses the -1 start time of an unknown id's answer.
        65: lambda m, name, topic_id: build(m.DescribeTransactionsRequest, transactional_ids=()),
        66: lambda m, name, topic_id: build(
            m.ListTransactionsRequest, state_filters=(), producer_id_filters=(), duration_filter=-1
        ),
    }
)
for _key in (24, 25, 26):
    STRANGER_ERRORS[(_key, None)] = {int(ErrorCode.invalid_producer_id_mapping)}


CASES = [
    (spec.api_key, version)
    for spec in sorted(HANDLERS.values(), key=lambda s: s.api_key)
    for version in range(spec.min_version, spec.max_version + 1)
]


def _errors(value: Any) -> list[int]:
    """Every error_code anywhere in a response."""
    found = []
    if hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            item = getattr(value, name)
            if name == "error_code":
                found.append(int(item))
            else:
                found.extend(_errors(item))
    elif isinstance(value, tuple):
        for item in value:
            found.extend(_errors(item))
    return found


def test_every_registered_api_has_a_builder() -> None:
    """The table below covers every API the broker advertises."""
    assert set(BUILDERS) == set(HANDLERS)


@pytest.mark.parametrize(("api_key", "version"), CASES)
def test_advertised_version_is_served(broker: Broker, api_key: int, version: int) -> None:
    """A minimal valid request of this version is answered without error (or, for the
    APIs only a group member can use, with the error Kafka gives a stranger)."""
    name = f"versions-{api_key}-{version}"
    with WireClient(broker.port) as client:
        topic_id = _ensure_topic(broker, client, name)
        body = BUILDERS[api_key](request_module(api_key, version), name, topic_id)
        response = client.call(api_key, version, body)
    assert set(_errors(response)) <= _allowed_errors(api_key, version)


def test_api_versions_lists_the_handler_table(broker: Broker) -> None:
    """ApiVersions v3 lists exactly the registered APIs and their version ranges."""
    with WireClient(broker.port) as client:
        response = client.call(18, 3, _api_versions(request_module(18, 3), "", uuid.uuid4()))
    served = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert served == {s.api_key: (s.min_version, s.max_version) for s in HANDLERS.values()}


def test_too_new_api_versions_gets_v0_unsupported_version(broker: Broker) -> None:
    """ApiVersions v99 is answered as v0 with UNSUPPORTED_VERSION and the table, as Kafka does."""
    import socket
    import struct

    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as sock:
        body = struct.pack(">hhih", 18, 99, 42, -1) + b"\x00"
        sock.sendall(struct.pack(">i", len(body)) + body)
        client = WireClient.__new__(WireClient)
        client.sock = sock
        correlation_id, response = client.receive(18, 0)
    assert correlation_id == 42
    assert response.error_code == ErrorCode.unsupported_version
    assert {k.api_key for k in response.api_keys} == set(HANDLERS)


# The ACL APIs without an authorizer: SECURITY_DISABLED is the answer (tests/handlers/
# test_acls.py checks it for each version).
def _describe_acls(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    return build(
        m.DescribeAclsRequest,
        resource_type_filter=1,
        resource_name_filter=None,
        pattern_type_filter=1,
        principal_filter=None,
        host_filter=None,
        operation=1,
        permission_type=1,
    )


def _create_acls(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    creation = build(
        m.AclCreation,
        resource_type=2,
        resource_name=name,
        resource_pattern_type=3,
        principal="User:alice",
        host="*",
        operation=3,
        permission_type=3,
    )
    return build(m.CreateAclsRequest, creations=(creation,))


def _delete_acls(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    acl_filter = build(
        m.DeleteAclsFilter,
        resource_type_filter=2,
        resource_name_filter=name,
        pattern_type_filter=3,
        principal_filter=None,
        host_filter=None,
        operation=1,
        permission_type=1,
    )
    return build(m.DeleteAclsRequest, filters=(acl_filter,))


BUILDERS.update({29: _describe_acls, 30: _create_acls, 31: _delete_acls})
for _key in (29, 30, 31):
    STRANGER_ERRORS[(_key, None)] = {int(ErrorCode.security_disabled)}


# AlterReplicaLogDirs to a dir the broker does not have: LOG_DIR_NOT_FOUND, the answer
# Kafka gives (tests/handlers/test_alter_replica_log_dirs.py moves partitions for real).
def _alter_replica_log_dirs(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    topic = build(m.AlterReplicaLogDirTopic, name=name, partitions=(0,))
    log_dir = build(m.AlterReplicaLogDir, path="/no/such/log/dir", topics=(topic,))
    return build(m.AlterReplicaLogDirsRequest, dirs=(log_dir,))


BUILDERS[34] = _alter_replica_log_dirs
STRANGER_ERRORS[(34, None)] = {int(ErrorCode.log_dir_not_found)}


def _consumer_group_heartbeat(m: Any, name: str, topic_id: uuid.UUID) -> Any:
    """A KIP-848 member joining (epoch 0) a group of its own, subscribed to the topic."""
    return build(
        m.ConsumerGroupHeartbeatRequest,
        group_id=name,
        member_id=f"member-{name}",
        member_epoch=0,
        rebalance_timeout=datetime.timedelta(seconds=1),
        subscribed_topic_names=(name,),
        topic_partitions=(),
    )


BUILDERS[68] = _consumer_group_heartbeat
BUILDERS[69] = lambda m, name, topic_id: build(
    m.ConsumerGroupDescribeRequest, group_ids=(name,), include_authorized_operations=False
)
# Nobody joined that group with this version's request: no such consumer group.
STRANGER_ERRORS[(69, None)] = {int(ErrorCode.group_id_not_found)}

# SASL on this PLAINTEXT listener: Kafka answers ILLEGAL_SASL_STATE (tests/security
# covers the exchange on a SASL listener).
BUILDERS[17] = lambda m, name, topic_id: build(m.SaslHandshakeRequest, mechanism="PLAIN")
BUILDERS[36] = lambda m, name, topic_id: build(m.SaslAuthenticateRequest, auth_bytes=b"")
STRANGER_ERRORS[(17, None)] = {int(ErrorCode.illegal_sasl_state)}
STRANGER_ERRORS[(36, None)] = {int(ErrorCode.illegal_sasl_state)}
BUILDERS[50] = lambda m, name, topic_id: build(m.DescribeUserScramCredentialsRequest, users=None)
BUILDERS[51] = lambda m, name, topic_id: build(
    m.AlterUserScramCredentialsRequest, deletions=(), upsertions=()
)
