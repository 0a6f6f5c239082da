"""The transaction coordinator (KIP-98): transactional ids, their producer ids and epochs,
and the state of each one's current transaction, kept in `__transaction_state`.

records.py is Kafka's on-disk schema of that topic, state.py a transactional id's metadata
and the allowed state transitions, coordinator.py the operations behind InitProducerId,
AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, DescribeTransactions and ListTransactions (and
the timers that abort timed-out transactions and expire idle ids), markers.py the sender of
WriteTxnMarkers requests to the partitions' leaders.
"""
