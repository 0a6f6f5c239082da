"""A consume-transform-produce application with exactly-once semantics, run as a process
the tests kill with SIGKILL: it reads INPUT (read_committed) in group GROUP with a static
member id, writes `out:` + each value to OUTPUT, and commits the output records together
with the input offsets in one transaction per poll.

    python -m tests.transactions.eos_app BOOTSTRAP INPUT OUTPUT GROUP TXN_ID IDLE_EXIT_S

It exits by itself once it has seen nothing new for IDLE_EXIT_S seconds (0: never)."""

from __future__ import annotations

import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer

BATCH = 50
T = 30.0


def _commit(producer: Producer, reader: Consumer) -> None:
    producer.send_offsets_to_transaction(
        reader.position(reader.assignment()), reader.consumer_group_metadata(), T
    )
    producer.commit_transaction(T)


def run(bootstrap: str, source: str, sink: str, group: str, txn_id: str, idle_exit: float) -> None:
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.instance.id": f"{group}-member",
            "session.timeout.ms": 6000,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer(
        {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5}
    )
    producer.init_transactions(T)
    reader.subscribe([source])
    last_data = time.monotonic()
    while not idle_exit or time.monotonic() - last_data < idle_exit:
        messages = [m for m in reader.consume(BATCH, 0.2) if m.error() is None]
        if not messages:
            continue
        last_data = time.monotonic()
        producer.begin_transaction()
        for message in messages:
            producer.produce(sink, b"out:" + (message.value() or b""), key=message.key())
        try:
            _commit(producer, reader)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if not error.txn_requires_abort():
                raise
            # E.g. a rebalance fenced the offsets: drop the batch and read it again.
            producer.abort_transaction(T)
            for tp in reader.committed(reader.assignment(), T):
                if tp.offset < 0:
                    tp.offset = OFFSET_BEGINNING
                reader.seek(tp)
        print(f"committed {len(messages)}", flush=True)
    reader.close()


if __name__ == "__main__":
    bootstrap, source, sink, group, txn_id, idle_exit = sys.argv[1:7]
    run(bootstrap, source, sink, group, txn_id, float(idle_exit))
