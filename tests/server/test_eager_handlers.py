"""Async handlers run their first step at once (connection.py `_start`): one that finishes
there answers inside data_received, one that waits goes on in a task from where it
stopped, with results, exceptions and cancellation passed through (`_resume`)."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any

import pytest

from odradek.config import BrokerConfig
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.server.broker import Broker
from odradek.server.connection import TASK_NAME_PREFIX, Connection, _resume
from odradek.testing.transport import RecordingTransport
from tests.handlers.kafka_wire import (
    FETCH_V,
    PRODUCE_V,
    TIMEOUT,
    create_topics_request,
    fetch_request,
)
from tests.server.wire import build, encode_request, request_module


def produce_frame(topic: str, correlation_id: int) -> bytes:
    m = request_module(0, PRODUCE_V)
    data = build(m.PartitionProduceData, index=0, records=build_batch([SimpleRecord(b"v")]))
    body = build(
        m.ProduceRequest,
        acks=-1,
        timeout=TIMEOUT,
        topic_data=(build(m.TopicProduceData, name=topic, partition_data=(data,)),),
        transactional_id=None,
    )
    return encode_request(0, PRODUCE_V, correlation_id, body)


def create_topic_frame(topic: str) -> bytes:
    return encode_request(19, 7, 1, create_topics_request(topic))


def correlation_ids(transport: RecordingTransport) -> list[int]:
    return [int.from_bytes(frame[4:8], "big") for frame in transport.written]


async def test_a_fetch_with_data_answers_without_a_task(tmp_path: Path) -> None:
    """A fetch whose data is there is answered within data_received, like a sync
    handler; a long poll is parked in a named task and answered by the next append."""
    config = BrokerConfig(log_dirs=(str(tmp_path),), listeners=("PLAINTEXT://127.0.0.1:0",))
    broker = Broker(config)
    await broker.start()
    try:
        transport = RecordingTransport()
        connection = Connection(broker)
        connection.connection_made(transport)  # type: ignore[arg-type]
        connection.data_received(create_topic_frame("eager"))
        connection.data_received(produce_frame("eager", 2))
        fetch = fetch_request([("eager", 0, 0)], max_wait_ms=5_000, min_bytes=1)
        connection.data_received(encode_request(1, FETCH_V, 3, fetch))
        assert correlation_ids(transport) == [1, 2, 3]  # no await in between

        poll = fetch_request([("eager", 0, 1)], max_wait_ms=5_000, min_bytes=1)
        connection.data_received(encode_request(1, FETCH_V, 4, poll))
        await asyncio.sleep(0)
        assert correlation_ids(transport) == [1, 2, 3]
        names = {task.get_name() for task in asyncio.all_tasks()}
        assert f"{TASK_NAME_PREFIX}1" in names
        connection.data_received(produce_frame("eager", 5))
        for _ in range(100):
            if len(transport.written) == 5:
                break
            await asyncio.sleep(0.01)
        assert correlation_ids(transport) == [1, 2, 3, 4, 5]
        assert not transport.aborted
    finally:
        await broker.stop()


async def first_step(coro: Any) -> asyncio.Future[Any]:
    """What Connection._start does: one step now, the rest in a task."""
    yielded = coro.send(None)
    return asyncio.ensure_future(_resume(coro, yielded))


async def test_resume_passes_results_through() -> None:
    """Values of the awaited futures reach the coroutine; its result is the task's."""
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()

    async def handler() -> int:
        a = await first
        await asyncio.sleep(0)
        b = await second
        return int(a + b)

    task = await first_step(handler())
    first.set_result(2)
    await asyncio.sleep(0)
    second.set_result(40)
    assert await task == 42


async def test_resume_passes_exceptions_through() -> None:
    """An exception raised after the first step fails the task with it."""
    loop = asyncio.get_running_loop()
    waiting = loop.create_future()

    async def handler() -> None:
        await waiting
        raise ValueError("broken")

    task = await first_step(handler())
    waiting.set_result(None)
    with pytest.raises(ValueError, match="broken"):
        await task


async def test_cancelling_the_task_cancels_the_handler() -> None:
    """task.cancel() (a closed connection) reaches the handler: its cleanup runs, and the
    task ends cancelled."""
    loop = asyncio.get_running_loop()
    cleaned = []

    async def handler() -> None:
        try:
            await asyncio.wait([loop.create_future()], timeout=datetime.timedelta(hours=1).seconds)
        finally:
            cleaned.append(True)

    task = await first_step(handler())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]
