"""What a handler may use: the broker's services and the header of the request at hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from odradek.clock import Clock
from odradek.config import BrokerConfig
from odradek.metadata.image import TopicImage
from odradek.replication.replica_manager import ReplicaManager

if TYPE_CHECKING:
    from odradek.coordinator.coordinator import GroupCoordinator
    from odradek.coordinator.txn.coordinator import TransactionCoordinator
    from odradek.handlers.fetch_session import FetchSessionCache
    from odradek.metadata.controller import Controller
    from odradek.metadata.zk_store import ZkMetadataStore
    from odradek.replication.cluster import ClusterReplicas
    from odradek.security.acl_store import AclWriter
    from odradek.security.authorizer import Authorizer
    from odradek.security.sasl import SaslSession
    from odradek.security.scram_store import ScramCredentials


@dataclass(slots=True)
class ClusterServices:
    """What only a broker in a ZooKeeper cluster has."""

    store: ZkMetadataStore
    replicas: ClusterReplicas
    controller: Controller


@dataclass(slots=True)
class BrokerServices:
    """The broker-wide state handlers read and change; owned by the event loop thread."""

    config: BrokerConfig
    metadata: TopicImage
    replicas: ReplicaManager
    clock: Clock
    fetch_sessions: FetchSessionCache
    advertised_host: str
    advertised_port: int
    # The group coordinator; None until the broker has loaded it.
    groups: GroupCoordinator | None = None
    # The transaction coordinator; None until the broker has loaded it.
    transactions: TransactionCoordinator | None = None
    # Set on a broker with zookeeper.connect; None on a single node.
    cluster: ClusterServices | None = None
    # Listener name -> the (host, port) advertised on it: clients are told the addresses
    # of the listener their request came in on, as Kafka does.
    advertised_listeners: dict[str, tuple[str, int]] = field(default_factory=dict)
    # Every user's SCRAM credentials (Describe/AlterUserScramCredentials); None in tests
    # that build services by hand.
    scram: ScramCredentials | None = None
    # (API key, error code) -> responses or partitions answered with that error, for the
    # metrics listener (Kafka's ErrorsPerSec); shared with the connection code, which
    # counts the responses' top-level codes, while Produce and Fetch count per partition.
    errors: dict[tuple[int, int], int] = field(default_factory=dict)
    # The ACL authorizer with `authorizer.class.name` set, and what changes its ACLs;
    # None without one: no request is checked (handlers/authz.py).
    authorizer: Authorizer | None = None
    acl_writer: AclWriter | None = None


def advertised_address(services: BrokerServices, listener: str) -> tuple[str, int]:
    """This broker's address on `listener` (the first listener's when it has none)."""
    address = services.advertised_listeners.get(listener)
    if address is None:
        return services.advertised_host, services.advertised_port
    return address


def count_error(services: BrokerServices, api_key: int, code: int) -> None:
    """One more error `code` answered for `api_key`."""
    key = (api_key, code)
    services.errors[key] = services.errors.get(key, 0) + 1


@dataclass(slots=True)
class RequestContext:
    services: BrokerServices
    api_version: int
    correlation_id: int
    client_id: str | None
    # The client's address as Kafka reports it ("/127.0.0.1"); "" when not on a socket.
    client_host: str = ""
    # Who sent the request, in Kafka's "Type:name" form: the authenticated principal of the
    # connection, or Kafka's anonymous principal on a listener without authentication.
    principal: str = "User:ANONYMOUS"
    # The name of the listener the request arrived on (Kafka's listener name).
    listener: str = "PLAINTEXT"
    # The connection's SASL exchange while it authenticates (SaslHandshake and
    # SaslAuthenticate only); None on other requests and on listeners without SASL.
    sasl: SaslSession | None = None


def fenced_code(error: ErrorCode, api_version: int, producer_fenced_since: int) -> ErrorCode:
    """PRODUCER_FENCED as a request version understands it: versions older than the one
    that introduced it (KIP-588) get INVALID_PRODUCER_EPOCH, as Kafka answers."""
    if error == ErrorCode.producer_fenced and api_version < producer_fenced_since:
        return ErrorCode.invalid_producer_epoch
    return error
