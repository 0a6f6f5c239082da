"""`Broker`: a real odradek broker on 127.0.0.1 with a free port and a temporary data
directory, for tests. As a context manager it runs in a thread of its own (`with`), so
blocking clients can use it, or in the caller's event loop (`async with`)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from types import TracebackType
from typing import Any

from odradek.config import build_config
from odradek.server.broker import Broker as _Broker
from odradek.storage.fs import FileSystem

START_TIMEOUT_S = 30.0


class Broker:
    def __init__(
        self,
        data_dir: str | None = None,
        config: Mapping[str, Any] | None = None,
        fs: FileSystem | None = None,
    ) -> None:
        self.fs = fs
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="odradek-")
        properties = {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": self.data_dir}
        properties.update({k: str(v) for k, v in (config or {}).items()})
        self._properties = properties
        self.config = build_config(properties.items())
        self.broker: _Broker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def bootstrap_servers(self) -> str:
        assert self.broker is not None, "broker not started"
        return self.broker.bootstrap_servers

    @property
    def port(self) -> int:
        assert self.broker is not None, "broker not started"
        return self.broker.port

    # -- in a thread -------------------------------------------------------------------
    def start(self) -> Broker:
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.result(timeout=START_TIMEOUT_S)
        return self

    def _run(self, ready: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self.broker = _Broker(self.config, fs=self.fs)
            loop.run_until_complete(self.broker.start())
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        loop.run_forever()
        loop.run_until_complete(self.broker.stop())
        loop.close()

    def stop(self) -> None:
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=START_TIMEOUT_S)
            self._thread = None
        self._cleanup()

    def restart(self) -> None:
        """Stops cleanly and starts again on the same data directory and port."""
        port = self.port
        own, self._own_dir = self._own_dir, False
        self.stop()
        self._own_dir = own
        self._properties["listeners"] = f"PLAINTEXT://127.0.0.1:{port}"
        self.config = build_config(self._properties.items())
        self.start()

    def _cleanup(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- in the caller's loop ----------------------------------------------------------
    async def __aenter__(self) -> Broker:
        self.broker = _Broker(self.config, fs=self.fs)
        await self.broker.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.broker is not None:
            await self.broker.stop()
        self._cleanup()
