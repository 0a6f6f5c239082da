"""Properties of the transaction coordinator over random operation sequences: the
state rebuilt by replaying the written records equals the live state, every written
transition is one Kafka allows, and a transactional id keeps its producer id until it
expires."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.coordinator.test_txn_state_machine import assert_valid_transitions
from tests.coordinator.txn_helpers import TxnHarness

IDS = ["a", "b"]
PARTS = [("t", 0), ("t", 1), ("u", 0)]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("init"), st.sampled_from(IDS), st.sampled_from([1000, 5000])),
        st.tuples(st.just("add"), st.sampled_from(IDS), st.sampled_from(PARTS)),
        st.tuples(st.just("end"), st.sampled_from(IDS), st.booleans()),
        st.tuples(st.just("stale"), st.sampled_from(IDS), st.booleans()),
        st.tuples(st.just("wait"), st.sampled_from(IDS), st.sampled_from([500, 3000, 20_000])),
    ),
    max_size=30,
)


def snapshot(h: TxnHarness) -> dict[str, tuple[Any, ...]]:
    return {
        t: (
            m.producer_id,
            m.producer_epoch,
            m.timeout_ms,
            m.state,
            m.update_ms,
            m.start_ms,
            frozenset(m.partitions),
            m.previous_producer_id,
        )
        for t, m in h.coordinator.txns.items()
    }


async def run(sequence: list[tuple[str, str, Any]]) -> None:
    h = TxnHarness(
        transaction_abort_timed_out_transaction_cleanup_interval_ms=1000,
        transactional_id_expiration_ms=15_000,
        transaction_remove_expired_transaction_cleanup_interval_ms=1000,
    )
    c = h.coordinator
    first_pid: dict[str, int] = {}
    for op, txn, arg in sequence:
        meta = c.txns.get(txn)
        pid, epoch = (meta.producer_id, meta.producer_epoch) if meta else (1, 0)
        if op == "init":
            await c.init_producer_id(txn, arg, None)
        elif op == "add":
            await c.add_partitions(txn, pid, epoch, [arg])
        elif op == "end":
            await c.end_txn(txn, pid, epoch, arg)
        elif op == "stale":
            await c.end_txn(txn, pid, epoch - 1, arg)
        else:
            h.advance(arg)
        await c.wait_completions()
        for txn_id in IDS:  # an expired id starts over with a new producer id
            meta = c.txns.get(txn_id)
            if meta is None:
                first_pid.pop(txn_id, None)
            else:
                assert first_pid.setdefault(txn_id, meta.producer_id) == meta.producer_id
    live = snapshot(h)
    assert_valid_transitions(h)
    h.coordinator = h.new_coordinator()
    h.coordinator.load()
    assert snapshot(h) == live


@given(ops)
@settings(max_examples=150, deadline=None)
def test_replay_equals_live_state(sequence: list[tuple[str, str, Any]]) -> None:
    """Whatever the operations, a coordinator loaded from the log has the same ids,
    producer ids, epochs, states, timestamps and partitions as the live one."""
    asyncio.run(run(sequence))
