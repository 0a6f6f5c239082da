"""One small synchronous consumer interface over confluent-kafka, kafka-python and
aiokafka, for the consumer group interop scenario. Every consumer commits what it has
processed right after each poll and again when partitions are revoked, so a record is
delivered once across rebalances. `python -m tests.coordinator.group_clients CLIENT
BOOTSTRAP GROUP TOPIC` runs one such consumer and prints each value after committing
it (the member the scenario kills with SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any

SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 300


# The same consumer settings for kafka-python and aiokafka (they share the names).
PYTHON_CLIENT_SETTINGS: dict[str, Any] = {
    "auto_offset_reset": "earliest",
    "enable_auto_commit": False,
    "session_timeout_ms": SESSION_TIMEOUT_MS,
    "heartbeat_interval_ms": HEARTBEAT_MS,
    "metadata_max_age_ms": 1000,
}


class GroupConsumer:
    """subscribe on creation; poll() -> values processed (and committed); close()."""

    def poll(self, timeout: float = 0.05) -> list[bytes]:
        raise NotImplementedError

    def assignment(self) -> set[tuple[str, int]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class ConfluentConsumer(GroupConsumer):
    def __init__(self, bootstrap: str, group: str, topic: str, **extra: Any) -> None:
        from confluent_kafka import Consumer

        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS,
            "topic.metadata.refresh.interval.ms": 1000,
        }
        conf.update(extra)
        self.consumer = Consumer(conf)
        self.consumer.subscribe([topic], on_revoke=self._on_revoke)
        self._pending: dict[tuple[str, int], int] = {}

    def _on_revoke(self, consumer: Any, partitions: Any) -> None:
        self._commit()

    def _commit(self) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        if not self._pending:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._pending.items()]
        self._pending.clear()
        # Failing means no longer a member: the next owner gets these records again.
        with contextlib.suppress(KafkaException):
            self.consumer.commit(offsets=offsets, asynchronous=False)

    def poll(self, timeout: float = 0.05) -> list[bytes]:
        values = []
        for msg in self.consumer.consume(100, timeout):
            if msg.error():
                continue
            values.append(msg.value())
            self._pending[(msg.topic(), msg.partition())] = msg.offset() + 1
        self._commit()
        return values

    def assignment(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self.consumer.assignment()}

    def close(self) -> None:
        self.consumer.close()


class KafkaPythonConsumer(GroupConsumer):
    def __init__(self, bootstrap: str, group: str, topic: str, **extra: Any) -> None:
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        outer = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                outer._commit()

            def on_partitions_assigned(self, assigned: Any) -> None:
                pass

        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            **PYTHON_CLIENT_SETTINGS,
            **extra,
        )
        self.consumer.subscribe([topic], listener=Listener())
        self._pending: dict[Any, int] = {}

    def _commit(self) -> None:
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata

        if not self._pending:
            return
        offsets = {tp: OffsetAndMetadata(o, "", -1) for tp, o in self._pending.items()}
        self._pending.clear()
        with contextlib.suppress(KafkaError):
            self.consumer.commit(offsets)

    def poll(self, timeout: float = 0.05) -> list[bytes]:
        values = []
        for tp, records in self.consumer.poll(timeout_ms=int(timeout * 1000)).items():
            for record in records:
                values.append(record.value)
                self._pending[tp] = record.offset + 1
        self._commit()
        return values

    def assignment(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self.consumer.assignment()}

    def close(self) -> None:
        self.consumer.close()


class _LoopThread:
    """One event loop in a thread for every aiokafka consumer of a test."""

    loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def run(cls, coro: Any, timeout: float = 30) -> Any:
        if cls.loop is None:
            cls.loop = asyncio.new_event_loop()
            threading.Thread(target=cls.loop.run_forever, daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coro, cls.loop).result(timeout)


class AioConsumer(GroupConsumer):
    def __init__(self, bootstrap: str, group: str, topic: str, **extra: Any) -> None:
        _LoopThread.run(self._start(bootstrap, group, topic, extra))

    async def _start(self, bootstrap: str, group: str, topic: str, extra: Any) -> None:
        from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

        outer = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await outer._commit()

            async def on_partitions_assigned(self, assigned: Any) -> None:
                pass

        self._pending: dict[Any, int] = {}
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            **PYTHON_CLIENT_SETTINGS,
            **extra,
        )
        self.consumer.subscribe([topic], listener=Listener())
        await self.consumer.start()

    async def _commit(self) -> None:
        from aiokafka.errors import KafkaError

        if not self._pending:
            return
        offsets, self._pending = dict(self._pending), {}
        with contextlib.suppress(KafkaError):
            await self.consumer.commit(offsets)

    async def _poll(self, timeout: float) -> list[bytes]:
        values = []
        batches = await self.consumer.getmany(timeout_ms=int(timeout * 1000))
        for tp, records in batches.items():
            for record in records:
                values.append(record.value)
                self._pending[tp] = record.offset + 1
        await self._commit()
        return values

    def poll(self, timeout: float = 0.05) -> list[bytes]:
        values: list[bytes] = _LoopThread.run(self._poll(timeout))
        return values

    def assignment(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self.consumer.assignment()}

    def close(self) -> None:
        _LoopThread.run(self.consumer.stop())


CLIENTS: dict[str, Callable[..., GroupConsumer]] = {
    "confluent": ConfluentConsumer,
    "kafka-python": KafkaPythonConsumer,
    "aiokafka": AioConsumer,
}


def main() -> None:
    client, bootstrap, group, topic = sys.argv[1:5]
    consumer = CLIENTS[client](bootstrap, group, topic)
    while True:
        for value in consumer.poll(0.1):
            print(value.decode(), flush=True)


if __name__ == "__main__":
    main()
