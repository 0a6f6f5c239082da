"""`Broker`: a real odradek broker on 127.0.0.1 with a free port and a temporary data
directory, for tests. As a context manager it runs in a thread of its own (`with`), so
blocking clients can use it, or in the caller's event loop (`async with`).

```python
with Broker(config={"num.partitions": 3}) as broker:
    broker.create_topic("rides", partitions=6)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
```

With `sasl_users={"alice": "alice-secret"}` the broker also listens on a SASL_PLAINTEXT
listener offering PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for those users; with
`tls=True` on an SSL listener, its certificate from a throwaway CA (`broker.ca`,
testing/tls.py), client certificates requested (`ssl_client_auth`); with both also on
SASL_SSL. `client_config("SASL_SSL",
"alice")` is a confluent-kafka configuration that connects there (docs/security.md).

`create_topic` / `delete_topic` change the broker directly (the same checks and steps as
the CreateTopics / DeleteTopics APIs), without a client round trip. In the thread mode
they may be called from any thread; in the `async with` mode from the loop's thread.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from odradek.config import build_config
from odradek.console import serve_console
from odradek.handlers.topics import TopicError, check_new_topic, create_topic, delete_topic
from odradek.security.scram_store import MECHANISMS as SCRAM_MECHANISMS
from odradek.security.scram_store import Changes, credential_from_password
from odradek.server.broker import Broker as _Broker
from odradek.storage.fs import FileSystem
from odradek.testing.tls import Issued, TestCA

START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 30.0

T = TypeVar("T")

__all__ = ["Broker", "TopicError"]


class Broker:
    """One single-node broker for a test. Not started until `start()`, `with` or
    `async with`; `stop()` removes the data directory unless one was given."""

    def __init__(
        self,
        data_dir: str | None = None,
        config: Mapping[str, Any] | None = None,
        fs: FileSystem | None = None,
        sasl_users: Mapping[str, str] | None = None,
        tls: bool = False,
        ssl_client_auth: str = "requested",
    ) -> None:
        self.fs = fs
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="odradek-")
        self.sasl_users = dict(sasl_users or {})
        properties = {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": self.data_dir}
        self.ca: TestCA | None = None
        self._tls_dir: str | None = None
        self._restarting = False
        listeners = ["PLAINTEXT://127.0.0.1:0"]
        if self.sasl_users:
            listeners.append("SASL_PLAINTEXT://127.0.0.1:0")
            properties.update(_sasl_properties(self.sasl_users))
        if tls:
            self._tls_dir = tempfile.mkdtemp(prefix="odradek-tls-")
            self.ca = TestCA(self._tls_dir)
            listeners.append("SSL://127.0.0.1:0")
            if self.sasl_users:
                listeners.append("SASL_SSL://127.0.0.1:0")
            properties.update(_tls_properties(self.ca, ssl_client_auth))
        properties["listeners"] = ",".join(listeners)
        properties.update({k: str(v) for k, v in (config or {}).items()})
        self._properties = properties
        self.config = build_config(properties.items())
        self.broker: _Broker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.start_seconds: float | None = None
        """How long the last start took, from `start()` to accepting connections."""
        self.console_url: str | None = None
        """`http://127.0.0.1:PORT` of the first `console.listeners` entry (off unless the
        config names one, e.g. `{"console.listeners": "http://127.0.0.1:0"}`)."""

    @property
    def bootstrap_servers(self) -> str:
        assert self.broker is not None, "broker not started"
        return self.broker.bootstrap_servers

    @property
    def port(self) -> int:
        assert self.broker is not None, "broker not started"
        return self.broker.port

    def listener_address(self, name: str) -> str:
        """`host:port` of the listener called `name` (e.g. "SASL_PLAINTEXT")."""
        assert self.broker is not None, "broker not started"
        host, port = self.broker.bound_by_listener[name.upper()]
        return f"{host}:{port}"

    def client_config(
        self,
        listener: str = "PLAINTEXT",
        user: str | None = None,
        mechanism: str = "PLAIN",
        certificate: Issued | None = None,
    ) -> dict[str, str]:
        """A confluent-kafka (librdkafka) configuration for `listener`: logged in as
        `user` (one of `sasl_users`) on a SASL listener; on a TLS listener trusting
        `ca`, and presenting `certificate` (from `ca.issue(...)`) when given."""
        name = listener.upper()
        assert self.broker is not None, "broker not started"
        protocol = next(item.spec.protocol for item in self.broker.listeners if item.name == name)
        config = {"bootstrap.servers": self.listener_address(name), "security.protocol": protocol}
        if protocol in ("SSL", "SASL_SSL"):
            assert self.ca is not None, "a broker made with tls=True"
            config["ssl.ca.location"] = self.ca.certificate
            if certificate is not None:
                config["ssl.certificate.location"] = certificate.certificate
                config["ssl.key.location"] = certificate.key
        if user is not None:
            config.update(
                {
                    "sasl.mechanism": mechanism,
                    "sasl.username": user,
                    "sasl.password": self.sasl_users[user],
                }
            )
        return config

    def __repr__(self) -> str:
        where = "not started"
        if self.broker is not None and self.broker.bound:
            where = self.bootstrap_servers
        return f"<odradek.testing.Broker {where} data={self.data_dir}>"

    # -- in a thread -------------------------------------------------------------------
    def start(self) -> Broker:
        """Starts the broker in a daemon thread; returns once it accepts connections."""
        started = time.perf_counter()
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="odradek-broker", daemon=True
        )
        self._thread.start()
        try:
            ready.result(timeout=START_TIMEOUT_S)
        except BaseException:
            self._thread.join(timeout=START_TIMEOUT_S)
            self._thread = None
            self._cleanup()
            raise
        self.start_seconds = time.perf_counter() - started
        return self

    def _run(self, ready: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self.broker = _Broker(self.config, fs=self.fs)
            loop.run_until_complete(self._start_broker(self.broker))
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        loop.run_forever()
        loop.run_until_complete(self.broker.stop())
        loop.close()

    async def _start_broker(self, broker: _Broker) -> None:
        await broker.start()
        if self.sasl_users:
            await broker.scram_credentials.apply(_scram_users(self.sasl_users))
        try:
            console = await serve_console(broker)
        except BaseException:
            await broker.stop()
            raise
        self.console_url = console.urls[0] if console is not None else None

    def stop(self) -> None:
        """Stops cleanly (flushes and closes every log); idempotent."""
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=START_TIMEOUT_S)
            self._thread = None
        self._cleanup()

    def restart(self) -> None:
        """Stops cleanly and starts again on the same data directory and port."""
        assert self.broker is not None, "broker not started"
        bound = dict(self.broker.bound_by_listener)
        own, self._own_dir = self._own_dir, False
        self._restarting = True
        try:
            self.stop()
        finally:
            self._own_dir, self._restarting = own, False
        self._properties["listeners"] = ",".join(
            f"{name}://{host}:{port}" for name, (host, port) in bound.items()
        )
        self.config = build_config(self._properties.items())
        self.start()

    def _cleanup(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if self._tls_dir is not None and not self._restarting:
            shutil.rmtree(self._tls_dir, ignore_errors=True)

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
        started = time.perf_counter()
        self.broker = _Broker(self.config, fs=self.fs)
        await self._start_broker(self.broker)
        self.start_seconds = time.perf_counter() - started
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

    # -- topics, changed in-process ------------------------------------------------------
    def create_topic(
        self,
        name: str,
        partitions: int = -1,
        config: Mapping[str, Any] | None = None,
    ) -> str:
        """Creates topic `name` (-1 partitions: the broker's `num.partitions`) with the
        given topic configs, checked as CreateTopics checks them; raises `TopicError`
        (with the Kafka `.code`) when refused, e.g. when the topic exists."""
        configs = {k: str(v) for k, v in (config or {}).items()}

        def create() -> str:
            services = self._services()
            count = check_new_topic(services, name, partitions, -1, configs)
            create_topic(services, name, count, configs)
            return name

        return self._call(create)

    def delete_topic(self, name: str) -> None:
        """Deletes topic `name` and its partition logs (as DeleteTopics does)."""

        def delete() -> None:
            services = self._services()
            topic = services.metadata.topics.get(name)
            if topic is None:
                raise KeyError(name)
            delete_topic(services, topic)

        self._call(delete)

    def topics(self) -> dict[str, int]:
        """Every topic (internal ones too) and its partition count."""
        return self._call(
            lambda: {n: t.partitions for n, t in self._services().metadata.topics.items()}
        )

    def _services(self) -> Any:
        assert self.broker is not None, "broker not started"
        return self.broker.services

    def _call(self, fn: Callable[[], T]) -> T:
        """Runs `fn` on the broker's event loop (the only thread that may change broker
        state) and returns its result."""
        loop = self._loop
        if self._thread is None or loop is None or threading.current_thread() is self._thread:
            return fn()  # `async with`: the caller is on the loop
        done: Future[T] = Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(timeout=CALL_TIMEOUT_S)


def _sasl_properties(users: Mapping[str, str]) -> dict[str, str]:
    """PLAIN and SCRAM for `users` on the SASL listeners."""
    options = " ".join(f'user_{name}="{password}"' for name, password in users.items())
    return {
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "sasl.jaas.config": (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {options};"
        ),
    }


def _scram_users(users: Mapping[str, str]) -> Changes:
    """Both SCRAM mechanisms' credentials of `users` (Kafka's minimum iterations)."""
    return {
        name: {m: credential_from_password(m, password) for m in SCRAM_MECHANISMS}
        for name, password in users.items()
    }


def _tls_properties(ca: TestCA, client_auth: str) -> dict[str, str]:
    """The TLS listeners' keystore (a broker certificate from `ca`) and truststore."""
    issued = ca.issue("broker", server=True)
    return {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": issued.keystore,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": ca.certificate,
        "ssl.client.auth": client_auth,
    }
