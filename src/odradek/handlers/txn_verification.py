"""KIP-890 part 1 for Produce: before a transactional batch opens a transaction on a
partition, the producer's transaction coordinator must confirm that the partition was
added to the transaction (AddPartitionsToTxn), or a late or stray batch could open a
transaction nobody ends.

`verify_transactional` runs before the appends: only transactional batches for
partitions led here are checked, and only when the partition has no transaction open for
that producer and epoch yet — once the first batch is written, the partition's own state
is the answer, so later batches of the transaction pay nothing (Kafka's verification guard
works the same way). The coordinator answers locally, or over AddPartitionsToTxn v4
`verify_only` when it is another broker. Errors are translated for the produce response as
Kafka's AddPartitionsToTxnManager and ReplicaManager do. Off with
`transaction.partition.verification.enable=false`, as in Kafka.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.context import RequestContext
from odradek.protocol.batch import CorruptBatchError, read_header
from odradek.replication.partition import Partition

# The first Produce version whose clients know TRANSACTION_ABORTABLE (KIP-890).
ABORTABLE_VERSION = 11
# Coordinator answers that mean "could not verify now": retriable for the producer.
_RETRIABLE = frozenset(
    {
        ErrorCode.concurrent_transactions,
        ErrorCode.coordinator_load_in_progress,
        ErrorCode.coordinator_not_available,
        ErrorCode.not_coordinator,
    }
)

Key = tuple[str, int]


def produce_error(error: ErrorCode, produce_version: int) -> ErrorCode:
    """A verification error as the produce response carries it."""
    if error == ErrorCode.producer_fenced:
        return ErrorCode.invalid_producer_epoch
    if error == ErrorCode.transaction_abortable and produce_version < ABORTABLE_VERSION:
        return ErrorCode.invalid_txn_state
    if error == ErrorCode.cluster_authorization_failed:
        return ErrorCode.invalid_txn_state
    if error in _RETRIABLE:
        return ErrorCode.not_enough_replicas
    return error


def _in_transaction(partition: Partition, producer_id: int, epoch: int) -> bool:
    state = partition.log.producer_state
    entry = state.producers.get(producer_id)
    return producer_id in state.ongoing and entry is not None and entry.epoch == epoch


def _needing_check(ctx: RequestContext, request: Any) -> dict[tuple[int, int], list[Key]]:
    """The partitions to verify, per (producer id, epoch)."""
    services = ctx.services
    wanted: dict[tuple[int, int], list[Key]] = {}
    for topic in request.topic_data:
        if ctx.api_version >= 13:
            info = services.metadata.by_id.get(topic.topic_id)
            name = info.name if info is not None else None
        else:
            name = str(topic.name)
        for data in topic.partition_data:
            partition = services.replicas.get(name, data.index) if name is not None else None
            if name is None or partition is None or not partition.is_leader or not data.records:
                continue
            try:
                header = read_header(data.records)
            except CorruptBatchError:
                continue  # the append refuses it
            key = (header.producer_id, header.producer_epoch)
            if header.is_transactional and not _in_transaction(partition, *key):
                wanted.setdefault(key, []).append((name, int(data.index)))
    return wanted


async def verify_transactional(ctx: RequestContext, request: Any) -> dict[Key, ErrorCode]:
    """The produce error of each (topic, partition) whose transactional batch must not be
    appended; empty when every batch may go (always for non-transactional produce)."""
    txns = ctx.services.transactions
    if request.transactional_id is None or txns is None:
        return {}
    if not ctx.services.config.transaction_partition_verification_enable:
        return {}
    refused: dict[Key, ErrorCode] = {}
    for (producer_id, epoch), keys in _needing_check(ctx, request).items():
        answers = await txns.verify_anywhere(
            str(request.transactional_id), producer_id, epoch, keys
        )
        for key, error in answers.items():
            if error != ErrorCode.none:
                refused[key] = produce_error(error, ctx.api_version)
    return refused
