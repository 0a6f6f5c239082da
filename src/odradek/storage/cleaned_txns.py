"""What the log cleaner knows of transactions while it walks batches in offset order
(Kafka's CleanedTransactionMetadata): which batches belong to aborted transactions (their
records go), and which markers may go once no batch of their transaction is left.

It starts from the aborted transactions the `.txnindex` files list for the range walked.
An aborted transaction becomes "ongoing" for its producer once the walk reaches its
first offset; the producer's transactional batches until its ABORT marker are then
discardable. The marker stays, with its index entry copied to the cleaned segment's
index, while batches of its transaction were seen in this walk (one may survive as a
producer's last, emptied batch); otherwise it may go (after its delete horizon). A
COMMIT marker may go when no batch of its transaction was seen: they were all
compacted away before.
"""

from __future__ import annotations

from collections import deque

from odradek.protocol.batch import BatchHeader
from odradek.protocol.control import TxnMarker
from odradek.storage.txn_index import AbortedTxn, TransactionIndex


class CleanedTransactions:
    """The transaction state of one cleaner walk over batches in offset order."""

    def __init__(self, aborted: list[AbortedTxn], index: TransactionIndex | None = None) -> None:
        self._pending = deque(sorted(aborted, key=lambda txn: txn.first_offset))
        self._index = index  # the cleaned segment's: kept markers' entries go there
        # producer id -> (its aborted transaction, whether a batch of it was seen)
        self._aborted: dict[int, tuple[AbortedTxn, bool]] = {}
        self._committed: set[int] = set()  # producers with a batch seen in an open commit

    def _reach(self, offset: int) -> None:
        while self._pending and self._pending[0].first_offset <= offset:
            txn = self._pending.popleft()
            self._aborted.setdefault(txn.producer_id, (txn, False))

    def on_batch(self, header: BatchHeader) -> bool:
        """A data batch: True when it belongs to an aborted transaction (its records go)."""
        self._reach(header.last_offset)
        if not header.is_transactional:
            return False
        aborted = self._aborted.get(header.producer_id)
        if aborted is None:
            self._committed.add(header.producer_id)
            return False
        self._aborted[header.producer_id] = (aborted[0], True)
        return True

    def on_control(self, header: BatchHeader, marker: TxnMarker | None) -> bool:
        """A control batch: True when it may be removed (once its delete horizon passed)."""
        self._reach(header.last_offset)
        if header.records_count == 0:
            return True  # emptied by an earlier cleaning: its transaction is gone
        if marker is None:
            return False  # another control record type: kept
        pid = header.producer_id
        if marker.commit:
            seen = pid in self._committed
            self._committed.discard(pid)
            return not seen
        txn, seen = self._aborted.pop(pid, (None, False))
        if txn is not None and seen:
            if self._index is not None:
                self._index.append(txn)
            return False
        return True
