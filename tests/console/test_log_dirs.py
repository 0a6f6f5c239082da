"""Asking other brokers for their log dirs is bounded: a broker that refuses the
connection, or accepts it and never answers, is unknown (None) within the timeout, and
the answers of those that do answer are kept."""

from __future__ import annotations

import asyncio
import os
import socket
import time

from odradek.console.log_dirs import BrokerDirs, LogDirs
from odradek.testing import Broker


def test_silent_and_refusing_brokers_are_unknown_within_the_timeout() -> None:
    """Three brokers asked at once: one answers (a real broker, its data dir listed with
    its partition), one refuses the connection, one accepts and stays silent; the call
    returns after about the 0.5 s timeout with None for the last two."""
    with Broker() as answering:
        answering.create_topic("asked", 1)
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        refusing = socket.socket()
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections refused
        try:
            nodes = [
                (2, "127.0.0.1", answering.port),
                (3, "127.0.0.1", refusing.getsockname()[1]),
                (4, "127.0.0.1", silent.getsockname()[1]),
            ]

            async def ask() -> tuple[BrokerDirs, float]:
                dirs = LogDirs(timeout_s=0.5)
                started = time.monotonic()
                try:
                    return await dirs.ask(nodes), time.monotonic() - started
                finally:
                    await dirs.close()

            found, took = asyncio.run(ask())
        finally:
            silent.close()
            refusing.close()
    assert found[3] is None and found[4] is None
    assert 0.4 < took < 5.0
    listed = found[2]
    assert listed is not None
    [answered] = listed
    assert (answered.path, answered.partitions) == (os.path.abspath(answering.data_dir), 1)
    assert answered.size == 0 and answered.total is not None and answered.free is not None
