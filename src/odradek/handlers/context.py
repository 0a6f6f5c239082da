"""What a handler may use: the broker's services and the header of the request at hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from odradek.clock import Clock
from odradek.config import BrokerConfig
from odradek.metadata.store import MetadataStore
from odradek.replication.replica_manager import ReplicaManager

if TYPE_CHECKING:
    from odradek.coordinator.coordinator import GroupCoordinator
    from odradek.handlers.fetch_session import FetchSessionCache


@dataclass(slots=True)
class BrokerServices:
    """The broker-wide state handlers read and change; owned by the event loop thread."""

    config: BrokerConfig
    metadata: MetadataStore
    replicas: ReplicaManager
    clock: Clock
    fetch_sessions: FetchSessionCache
    advertised_host: str
    advertised_port: int
    # The group coordinator; None until the broker has loaded it.
    groups: GroupCoordinator | None = None


@dataclass(slots=True)
class RequestContext:
    services: BrokerServices
    api_version: int
    correlation_id: int
    client_id: str | None
