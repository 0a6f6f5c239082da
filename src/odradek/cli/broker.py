"""`odradek broker`: run a broker from a Kafka-style properties file and overrides."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from odradek.config import BrokerConfig, ConfigError, build_config, parse_properties
from odradek.metadata.errors import ZooKeeperUnavailableError
from odradek.security.listeners import is_security_property


def configure(broker: argparse.ArgumentParser) -> None:
    """The options of `odradek broker`."""
    broker.add_argument("--config", metavar="FILE", help="Kafka-style properties file")
    broker.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a broker property, overriding the file (repeatable)",
    )
    broker.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    broker.set_defaults(handler=run_broker)


def load_config(config_file: str | None, overrides: Sequence[str]) -> BrokerConfig:
    """The broker configuration from a properties file and `KEY=VALUE` overrides."""
    items: list[tuple[str, str]] = []
    if config_file:
        with open(config_file, encoding="utf-8") as file:
            items.extend(parse_properties(file.read()).items())
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {override!r}")
        items.append((key.strip(), value.strip()))
    return build_config(items)


async def _serve(config: BrokerConfig) -> None:
    from odradek.server.broker import Broker

    broker = Broker(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await broker.start()
    if config.console_listeners:
        from odradek.console import serve_console

        try:
            await serve_console(broker)
        except BaseException:
            await broker.stop()
            raise
    try:
        await stop.wait()
    finally:
        await broker.stop()


def _run(config: BrokerConfig) -> None:
    # kio registers hypothesis strategies at import time whenever hypothesis is installed
    # (as in development environments), which adds about 0.2 s to start-up. The broker
    # process never uses it, so the import is made to fail unless something already
    # loaded it.
    sys.modules.setdefault("hypothesis", None)  # type: ignore[arg-type]
    from odradek.server.fd_limit import raise_open_file_limit
    from odradek.server.malloc import tune_for_large_buffers

    tune_for_large_buffers()
    raise_open_file_limit()
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(config))
    else:
        uvloop.run(_serve(config))


def run_broker(args: argparse.Namespace) -> int:
    """Serves until SIGINT/SIGTERM; 2 for a bad configuration, 1 when listening fails."""
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log = logging.getLogger("odradek")
    try:
        config = load_config(args.config, args.set)
    except (ConfigError, OSError) as exc:
        print(f"odradek: {exc}", file=sys.stderr)
        return 2
    for name in config.unknown:
        if not is_security_property(name):
            log.warning("ignoring unknown broker property %s", name)
    try:
        _run(config)
    except (OSError, ZooKeeperUnavailableError) as exc:
        print(f"odradek: {exc}", file=sys.stderr)
        return 1
    return 0
