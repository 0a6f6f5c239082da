"""The broker's ZooKeeper session (kazoo), made safe to use from the event loop.

kazoo runs its own I/O thread and calls back on it. Everything here hands results and
events to the broker's loop with `call_soon_threadsafe`, so broker state is still only
touched from the loop. Reads and controller writes are awaited (`aget`, `acommit`);
admin writes made inside a request handler (`write`) block the loop for one round trip
and fail at once with `ZooKeeperUnavailableError` when the session is not connected, so a
ZooKeeper outage never stalls produce and fetch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import KazooException, NodeExistsError, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.interfaces import IAsyncResult
from kazoo.protocol.states import ZnodeStat
from kazoo.retry import KazooRetry

from odradek.metadata.errors import ZooKeeperUnavailableError

log = logging.getLogger("odradek.zookeeper")

# A handler's admin write waits at most this long for ZooKeeper's answer.
WRITE_TIMEOUT_S = 5.0

__all__ = [
    "NoNodeError",
    "NodeExistsError",
    "ZkClient",
    "ZooKeeperUnavailableError",
]


def _set(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class ZkClient:
    """One kazoo session for the broker, with the chroot of `zookeeper.connect`."""

    def __init__(
        self,
        connect: str,
        session_timeout_ms: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.loop = loop
        self.kazoo = KazooClient(
            hosts=connect,
            timeout=session_timeout_ms / 1000,
            connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0),
            command_retry=KazooRetry(max_tries=3, delay=0.05, max_delay=0.5),
        )
        self._state_listeners: list[Callable[[str], None]] = []
        self.kazoo.add_listener(self._on_state)

    def _on_state(self, state: str) -> None:
        # kazoo's thread: only hand the news to the loop.
        for listener in self._state_listeners:
            self.loop.call_soon_threadsafe(listener, state)

    def add_state_listener(self, listener: Callable[[str], None]) -> None:
        """`listener(state)` on the loop for each of kazoo's LOST/SUSPENDED/CONNECTED."""
        self._state_listeners.append(listener)

    @property
    def connected(self) -> bool:
        return bool(self.kazoo.state == KazooState.CONNECTED)

    async def start(self, timeout_s: float) -> None:
        """Connects (creating the chroot if it is missing); raises
        ZooKeeperUnavailableError when no server answers within `timeout_s`."""
        try:
            await asyncio.to_thread(self.kazoo.start, timeout_s)
        except KazooTimeoutError as exc:
            self.kazoo.stop()
            raise ZooKeeperUnavailableError(
                f"ZooKeeper not reachable within {timeout_s:.1f} s"
            ) from exc
        chroot = self.kazoo.chroot
        if chroot:
            # ensure_path under a chroot creates it relative to the chroot: make the
            # chroot itself with a client without one.
            self.kazoo.chroot = ""
            try:
                await asyncio.to_thread(self.kazoo.ensure_path, chroot)
            finally:
                self.kazoo.chroot = chroot

    async def stop(self) -> None:
        await asyncio.to_thread(self._stop_blocking)

    def _stop_blocking(self) -> None:
        try:
            self.kazoo.stop()
        finally:
            self.kazoo.close()

    # -- awaited operations --------------------------------------------------------------

    def _bridge(self, result: IAsyncResult) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()

        def done(outcome: IAsyncResult) -> None:
            try:
                value = outcome.get_nowait()
            except BaseException as error:  # delivered to the awaiting coroutine
                self.loop.call_soon_threadsafe(_set, future, None, error)
            else:
                self.loop.call_soon_threadsafe(_set, future, value, None)

        result.rawlink(done)
        return future

    async def aget(self, path: str) -> tuple[bytes, ZnodeStat] | None:
        """The data and stat of `path`, or None when it does not exist."""
        try:
            data, stat = await self._bridge(self.kazoo.get_async(path))
        except NoNodeError:
            return None
        return bytes(data or b""), stat

    async def achildren(self, path: str) -> list[str]:
        try:
            return list(await self._bridge(self.kazoo.get_children_async(path)))
        except NoNodeError:
            return []

    async def acreate(
        self, path: str, data: bytes = b"", ephemeral: bool = False, makepath: bool = False
    ) -> str:
        return str(
            await self._bridge(
                self.kazoo.create_async(path, data, ephemeral=ephemeral, makepath=makepath)
            )
        )

    async def aset(self, path: str, data: bytes, version: int = -1) -> ZnodeStat:
        return await self._bridge(self.kazoo.set_async(path, data, version=version))

    async def adelete(self, path: str, recursive: bool = False) -> None:
        if recursive:
            await asyncio.to_thread(self.kazoo.delete, path, -1, True)
        else:
            await self._bridge(self.kazoo.delete_async(path))

    async def acommit(self, build: Callable[[Any], None]) -> list[Any]:
        """Runs a multi-op transaction that `build(transaction)` fills; returns kazoo's
        per-operation results (an exception instance where an operation failed)."""
        transaction = self.kazoo.transaction()
        build(transaction)
        return list(await self._bridge(transaction.commit_async()))

    # -- blocking writes for request handlers --------------------------------------------

    def write(self, call: Callable[[KazooClient], IAsyncResult]) -> Any:
        """Runs one kazoo `*_async` call and waits for it (bounded). Raises
        ZooKeeperUnavailableError when not connected or on a timeout or connection loss."""
        if not self.connected:
            raise ZooKeeperUnavailableError("not connected to ZooKeeper")
        try:
            return call(self.kazoo).get(timeout=WRITE_TIMEOUT_S)
        except (KazooTimeoutError, TimeoutError) as exc:
            raise ZooKeeperUnavailableError("ZooKeeper did not answer in time") from exc
        except (NoNodeError, NodeExistsError):
            raise
        except KazooException as exc:
            if not self.connected:
                raise ZooKeeperUnavailableError(str(exc) or type(exc).__name__) from exc
            raise
