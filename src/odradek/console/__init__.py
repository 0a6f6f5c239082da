"""The broker's HTTP listener (`console.listeners`): /metrics now, console pages later.

It runs on the broker's own event loop, next to the Kafka listeners. aiohttp and
prometheus-client are imported only when a listener is configured, so a broker without
one starts as it did before (tests/console/test_listener.py checks the import list).
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
