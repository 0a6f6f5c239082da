"""Clean restarts: everything acknowledged before `Broker.restart()` is there afterwards at the
same offsets, topics and partition counts persist, deletions persist, and producing after the
restart continues at the log end offset."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from helpers import (
    assert_same_records,
    ck_admin,
    ck_consume_all,
    ck_produce,
    ck_producer_conf,
    ck_watermarks,
    sample_records,
    unique_topic,
    wait_until,
)


def admin(broker: Any) -> AdminClient:
    return ck_admin(broker.bootstrap_servers)


def create_topic(broker: Any, name: str, partitions: int, config: dict[str, str] | None = None):
    futures = admin(broker).create_topics(
        [NewTopic(name, partitions, 1, config=config or {})], request_timeout=15
    )
    futures[name].result(timeout=20)


def partition_counts(broker: Any) -> dict[str, int]:
    md = admin(broker).list_topics(timeout=10)
    return {name: len(t.partitions) for name, t in md.topics.items() if t.error is None}


def test_restart_keeps_records_and_offsets(fresh_broker: Any) -> None:
    """N records on 4 partitions (two topics, one with tiny segments so its log spans many
    segment files), a clean restart, then: every record is back with its offset, key, value,
    headers and timestamp; watermarks are unchanged; new records continue at the old log end
    offsets, with the producer created before the restart as well as a new one."""
    broker = fresh_broker
    plain, rolled = unique_topic("restart"), unique_topic("restart-rolled")
    create_topic(broker, plain, 4)
    create_topic(broker, rolled, 4, {"segment.bytes": "4096"})
    base_ts = int(time.time() * 1000) - 3_600_000
    old_producer = Producer(ck_producer_conf(broker.bootstrap_servers))
    before = {
        plain: ck_produce(old_producer, plain, sample_records(4, 50, base_ts, "a")),
        rolled: ck_produce(
            Producer(ck_producer_conf(broker.bootstrap_servers, **{"compression.type": "gzip"})),
            rolled,
            sample_records(4, 50, base_ts, "b"),
        ),
    }
    marks = {t: ck_watermarks(broker.bootstrap_servers, t, range(4)) for t in before}
    assert all(m == (0, 50) for t in marks for m in marks[t].values()), marks

    broker.restart()

    assert {plain: 4, rolled: 4}.items() <= partition_counts(broker).items()
    for t, recs in before.items():
        assert ck_watermarks(broker.bootstrap_servers, t, range(4)) == marks[t]
        assert_same_records(recs, ck_consume_all(broker.bootstrap_servers, t, range(4)))

    # the producer from before the restart reconnects and appends at the log end
    after_old = ck_produce(
        old_producer, plain, [{"partition": p, "value": b"after-old"} for p in range(4)]
    )
    assert sorted((r.partition, r.offset) for r in after_old) == [(p, 50) for p in range(4)]
    new_producer = Producer(ck_producer_conf(broker.bootstrap_servers))
    for t, first in ((plain, 51), (rolled, 50)):
        after = ck_produce(
            new_producer, t, [{"partition": p, "value": b"after-new"} for p in range(4)]
        )
        assert sorted((r.partition, r.offset) for r in after) == [(p, first) for p in range(4)]
    got = ck_consume_all(broker.bootstrap_servers, plain, range(4))
    assert len(got) == 4 * 52
    for p in range(4):
        offsets = [r.offset for r in got if r.partition == p]
        assert offsets == list(range(52)), f"partition {p}: {offsets}"


def test_restart_twice_and_empty_partitions(fresh_broker: Any) -> None:
    """Two restarts in a row with nothing produced in between keep every record; a partition
    that never got a record stays at (0, 0) and takes its first record at offset 0."""
    broker = fresh_broker
    name = unique_topic("restart-twice")
    create_topic(broker, name, 3)
    producer = Producer(ck_producer_conf(broker.bootstrap_servers))
    before = ck_produce(
        producer, name, [{"partition": 0, "value": b"v%d" % i, "key": b"k"} for i in range(20)]
    )
    broker.restart()
    broker.restart()
    assert ck_watermarks(broker.bootstrap_servers, name, range(3)) == {
        0: (0, 20),
        1: (0, 0),
        2: (0, 0),
    }
    assert_same_records(before, ck_consume_all(broker.bootstrap_servers, name, range(3)))
    producer = Producer(ck_producer_conf(broker.bootstrap_servers))
    after = ck_produce(
        producer, name, [{"partition": 1, "value": b"x"}, {"partition": 0, "value": b"y"}]
    )
    assert [(r.partition, r.offset) for r in after] == [(1, 0), (0, 20)]


def test_restart_keeps_topic_changes(fresh_broker: Any) -> None:
    """Topic creation, CreatePartitions and deletion made before a restart are all still in
    effect after it: the deleted topic stays gone, the grown topic keeps its partitions."""
    broker = fresh_broker
    grown, deleted = unique_topic("grown"), unique_topic("deleted")
    create_topic(broker, grown, 2)
    create_topic(broker, deleted, 2)
    admin(broker).create_partitions([NewPartitions(grown, 6)], request_timeout=15)[grown].result(20)
    doomed = Producer(ck_producer_conf(broker.bootstrap_servers))
    ck_produce(doomed, deleted, [{"partition": 1, "value": b"doomed"}])
    del doomed  # a live producer knowing the topic could auto-create it again
    admin(broker).delete_topics([deleted], request_timeout=15)[deleted].result(20)
    wait_until(lambda: deleted not in partition_counts(broker), 10, what="deletion")
    producer = Producer(ck_producer_conf(broker.bootstrap_servers))
    grown_recs = ck_produce(producer, grown, [{"partition": 5, "value": b"in-new-partition"}])

    broker.restart()

    counts = partition_counts(broker)
    assert counts.get(grown) == 6
    assert deleted not in counts
    assert_same_records(grown_recs, ck_consume_all(broker.bootstrap_servers, grown, range(6)))
    # re-creating the deleted name starts from scratch
    create_topic(broker, deleted, 1)
    assert ck_watermarks(broker.bootstrap_servers, deleted, [0]) == {0: (0, 0)}
