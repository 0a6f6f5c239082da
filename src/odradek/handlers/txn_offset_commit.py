"""TxnOffsetCommit (key 28), versions 0-5: a transactional producer commits a consumer
group's offsets inside its transaction (`send_offsets_to_transaction`).

The group coordinator validates the request (INVALID_GROUP_ID for an empty group id,
NOT_COORDINATOR, and from v3 KIP-447's member fencing: ILLEGAL_GENERATION,
UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID) and writes the offsets as the producer's
transactional batch to the group's `__consumer_offsets` partition; they stay pending
until the transaction's marker (coordinator/txn_offsets.py). A fenced producer epoch is
INVALID_PRODUCER_EPOCH, a negative producer id or epoch INVALID_PRODUCER_ID_MAPPING.
Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION. In a
cluster the answer waits until the batch reached the in-sync replicas. With an
authorizer: WRITE on the transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED on every
partition), READ on the group (GROUP_AUTHORIZATION_FAILED), READ on each topic
(TOPIC_AUTHORIZATION_FAILED for its partitions).

KIP-890 part 1: the producer's transaction coordinator (this broker, or the one that
owns the transactional id, asked with AddPartitionsToTxn v4 `verify_only`) must confirm
that the current transaction includes the group's `__consumer_offsets` partition
(AddOffsetsToTxn), else nothing is written; `transaction.partition.verification.enable`
(true) turns it off, as it does for Produce. Its answers are translated as Kafka's
AddPartitionsToTxnManager and GroupMetadataManager do: TRANSACTION_ABORTABLE stays from
v4 and is INVALID_TXN_STATE before, PRODUCER_FENCED is INVALID_PRODUCER_EPOCH, a
coordinator that cannot answer now (moving, loading, a transaction completing) is
COORDINATOR_LOAD_IN_PROGRESS, which clients retry without looking the group's coordinator
up again; INVALID_PRODUCER_ID_MAPPING stays.

Not done: v5's implicit add of the partition (KIP-890 part 2), so v5 is served with v4's
meaning; there is no authorization. COORDINATOR_LOAD_IN_PROGRESS never happens (a
partition loads before it is served).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.offsets import OffsetCommit
from odradek.coordinator.record_log import OFFSETS_TOPIC, TxnProducer
from odradek.coordinator.txn_offsets import TxnOffsetCommitRequest
from odradek.handlers.acls import GROUP, TOPIC, TRANSACTIONAL_ID, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 28


def _partition_known(ctx: RequestContext, name: str, partition: int) -> bool:
    info = ctx.services.metadata.topics.get(name)
    return info is not None and 0 <= partition < info.partitions


def _refusal(ctx: RequestContext, request: Any) -> ErrorCode | None:
    """The error for every partition when the transactional id or the group is refused."""
    if not allowed(ctx, AclOperation.WRITE, TRANSACTIONAL_ID, str(request.transactional_id)):
        return ErrorCode.transactional_id_authorization_failed
    if not allowed(ctx, AclOperation.READ, GROUP, str(request.group_id)):
        return ErrorCode.group_authorization_failed
    return None


def _commits(
    ctx: RequestContext, request: Any, errors: dict[tuple[str, int], ErrorCode]
) -> list[OffsetCommit]:
    """The commits of known partitions; the others get their error in `errors`."""
    commits = []
    refusal = _refusal(ctx, request)
    for topic in request.topics:
        name = str(topic.name)
        topic_refused = refusal or (
            None
            if allowed(ctx, AclOperation.READ, TOPIC, name)
            else ErrorCode.topic_authorization_failed
        )
        for p in topic.partitions:
            index = int(p.partition_index)
            if topic_refused is not None:
                errors[(name, index)] = topic_refused
                continue
            if not _partition_known(ctx, name, index):
                errors[(name, index)] = ErrorCode.unknown_topic_or_partition
                continue
            epoch = int(getattr(p, "committed_leader_epoch", -1))
            commits.append(
                OffsetCommit(name, index, int(p.committed_offset), epoch, p.committed_metadata)
            )
    return commits


# The first TxnOffsetCommit version whose clients know TRANSACTION_ABORTABLE (KIP-890).
ABORTABLE_VERSION = 4
# Verification answers meaning "not now": the client retries.
_RETRIABLE = frozenset(
    {
        ErrorCode.concurrent_transactions,
        ErrorCode.coordinator_load_in_progress,
        ErrorCode.coordinator_not_available,
        ErrorCode.not_coordinator,
        ErrorCode.request_timed_out,
        ErrorCode.network_exception,
    }
)


def offset_commit_error(error: ErrorCode, version: int) -> ErrorCode:
    """A verification answer as the TxnOffsetCommit response carries it."""
    if error == ErrorCode.producer_fenced:
        return ErrorCode.invalid_producer_epoch
    if error == ErrorCode.transaction_abortable and version < ABORTABLE_VERSION:
        return ErrorCode.invalid_txn_state
    if error in _RETRIABLE:
        return ErrorCode.coordinator_load_in_progress
    return error


async def _verification_error(ctx: RequestContext, request: Any) -> ErrorCode:
    """Whether the producer's transaction includes the group's partition (checked only
    by the group's coordinator: any other broker answers NOT_COORDINATOR anyway)."""
    txns = ctx.services.transactions
    groups = ctx.services.groups
    group_id = str(request.group_id)
    if txns is None or groups is None or not group_id or not groups.coordinates(group_id):
        return ErrorCode.none
    if not ctx.services.config.transaction_partition_verification_enable:
        return ErrorCode.none
    partition = (OFFSETS_TOPIC, groups.partition_of(group_id))
    producer = (int(request.producer_id), int(request.producer_epoch))
    answers = await txns.verify_anywhere(str(request.transactional_id), *producer, [partition])
    return offset_commit_error(answers[partition], ctx.api_version)


@api(API_KEY, 0, 5, is_async=True)
async def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    groups = ctx.services.groups
    errors: dict[tuple[str, int], ErrorCode] = {}
    commits = _commits(ctx, request, errors)
    unverified = await _verification_error(ctx, request) if commits else ErrorCode.none
    if unverified != ErrorCode.none:
        for o in commits:
            errors[(o.topic, o.partition)] = unverified
    elif groups is None:
        for o in commits:
            errors[(o.topic, o.partition)] = ErrorCode.coordinator_not_available
    elif commits:
        txn = TxnOffsetCommitRequest(
            str(request.group_id),
            TxnProducer(int(request.producer_id), int(request.producer_epoch)),
            int(getattr(request, "generation_id", -1)),
            str(getattr(request, "member_id", "")),
            getattr(request, "group_instance_id", None),
            tuple(commits),
        )
        errors.update(await groups.commit_txn_offsets(txn))
    topics = tuple(
        make(
            module.TxnOffsetCommitResponseTopic,
            name=topic.name,
            partitions=tuple(
                make(
                    module.TxnOffsetCommitResponsePartition,
                    partition_index=p.partition_index,
                    error_code=errors[(str(topic.name), int(p.partition_index))],
                )
                for p in topic.partitions
            ),
        )
        for topic in request.topics
    )
    return make(module.TxnOffsetCommitResponse, throttle_time=datetime.timedelta(0), topics=topics)
