"""The broker's HTTP listener (`console.listeners`): /metrics and the console's
read-only pages (docs/console.md).

It runs on the broker's own event loop, next to the Kafka listeners. aiohttp,
prometheus-client and Jinja2 are imported only when a listener is configured, so a broker
without one starts as it did before (tests/handlers/test_registry.py checks the import
list).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from odradek.console.listener import ConsoleListener
    from odradek.server.broker import Broker


async def serve_console(broker: Broker) -> ConsoleListener | None:
    """Starts the HTTP listeners of a started broker when `console.listeners` names any;
    the broker closes them first when it stops. None when none is configured."""
    if not broker.config.console_listeners:
        return None
    from odradek.console.listener import ConsoleListener

    listener = ConsoleListener(broker)
    await listener.start()
    broker.attach(listener.close)
    return listener
