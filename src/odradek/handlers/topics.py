"""Topic operations shared by several APIs (CreateTopics, Metadata's auto-creation,
DeleteTopics, CreatePartitions): validate, change the image, host the partitions.

Creations are durable in this order: partition directories and files, then the image
(see `topic_changes`), and a handler answers only after that.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from kio.schema.errors import ErrorCode

from odradek.handlers.context import BrokerServices
from odradek.metadata.errors import TopicExistsInZooKeeperError, ZooKeeperUnavailableError
from odradek.metadata.names import topic_name_error
from odradek.metadata.placement import PlacementError, assign_replicas
from odradek.metadata.store import TopicInfo
from odradek.metadata.topic_config import InvalidConfigError, validate_topic_config

MAX_PARTITIONS = 100_000


class TopicError(Exception):
    """A refused topic operation, with the Kafka error code to answer."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_new_topic(
    services: BrokerServices,
    name: str,
    partitions: int,
    replication_factor: int,
    configs: Mapping[str, str | None],
) -> int:
    """Validates a topic creation; returns the partition count to use."""
    problem = topic_name_error(name)
    if problem is not None:
        raise TopicError(ErrorCode.invalid_topic_exception, problem)
    if name in services.metadata.topics:
        raise TopicError(ErrorCode.topic_already_exists, f"Topic '{name}' already exists.")
    existing = services.metadata.colliding_topic(name)
    if existing is not None:
        raise TopicError(
            ErrorCode.invalid_topic_exception,
            f"Topic '{name}' collides with existing topic '{existing}'",
        )
    count = services.config.num_partitions if partitions == -1 else partitions
    if count <= 0 or count > MAX_PARTITIONS:
        raise TopicError(
            ErrorCode.invalid_partitions, "Number of partitions must be larger than 0."
        )
    factor = (
        services.config.default_replication_factor
        if replication_factor == -1
        else replication_factor
    )
    available = len(services.cluster.store.brokers) if services.cluster is not None else 1
    if factor <= 0:
        raise TopicError(
            ErrorCode.invalid_replication_factor, "Replication factor must be larger than 0."
        )
    if factor > available:
        raise TopicError(
            ErrorCode.invalid_replication_factor,
            f"Replication factor: {factor} larger than available brokers: {available}.",
        )
    for config_name, value in configs.items():
        try:
            validate_topic_config(config_name, value)
        except InvalidConfigError as exc:
            raise TopicError(ErrorCode.invalid_config, str(exc)) from None
    return count


@contextmanager
def topic_changes(services: BrokerServices) -> Iterator[None]:
    """Topics and partitions created inside become durable together when it ends: first
    every new partition directory and file (LogManager.batch_creations: their fsyncs run
    in the background while the next ones are created), then the image, written once
    (MetadataStore.batch).
    A crash before the image is written leaves partition directories the image does not
    name, which the next start deletes; after it, the topics and all their partitions are
    there. Nested uses join the outermost one."""
    with services.metadata.batch(), services.replicas.log_manager.batch_creations():
        yield


def create_topic(
    services: BrokerServices,
    name: str,
    partitions: int,
    configs: Mapping[str, str],
    replication_factor: int = -1,
    assignment: Mapping[int, tuple[int, ...]] | None = None,
    internal: bool = False,
) -> TopicInfo:
    """Records the topic in the image and opens its partition logs; durable on return,
    or at the end of the enclosing `topic_changes`. In a cluster the topic and its
    replica assignment go to ZooKeeper; the controller elects leaders and each broker
    opens the partitions assigned to it."""
    cluster = services.cluster
    if cluster is not None:
        if assignment is None:
            assignment = place_replicas(services, partitions, replication_factor)
        with zookeeper_errors():
            try:
                return cluster.store.create_topic(name, partitions, configs, internal, assignment)
            except TopicExistsInZooKeeperError:
                raise TopicError(
                    ErrorCode.topic_already_exists, f"Topic '{name}' already exists."
                ) from None
    with topic_changes(services):
        topic = services.metadata.create_topic(name, partitions, configs, internal)
        services.replicas.host_topic(topic)
    return topic


def place_replicas(
    services: BrokerServices, partitions: int, replication_factor: int, first: int = 0
) -> dict[int, tuple[int, ...]]:
    """Replicas for new partitions on the live brokers, rack-aware (metadata/placement.py)."""
    assert services.cluster is not None
    factor = (
        services.config.default_replication_factor
        if replication_factor == -1
        else replication_factor
    )
    racks = {n: b.rack for n, b in services.cluster.store.brokers.items()}
    try:
        return assign_replicas(racks, partitions, factor, first)
    except PlacementError as exc:
        raise TopicError(ErrorCode.invalid_replication_factor, str(exc)) from None


@contextmanager
def zookeeper_errors() -> Iterator[None]:
    """ZooKeeper out of reach: a retriable error for the client to try again later."""
    try:
        yield
    except ZooKeeperUnavailableError as exc:
        raise TopicError(ErrorCode.request_timed_out, f"ZooKeeper unavailable: {exc}") from None


def auto_create_topic(services: BrokerServices, name: str) -> TopicInfo | None:
    """Creates `name` with the broker defaults; None when its name is not legal."""
    try:
        count = check_new_topic(services, name, -1, -1, {})
        return create_topic(services, name, count, {})
    except TopicError:
        return None


def delete_topic(services: BrokerServices, topic: TopicInfo) -> None:
    if services.cluster is not None:
        # The controller deletes it; every broker drops its files when the topic's
        # znode goes (also a broker that is down now, when it comes back).
        with zookeeper_errors():
            services.cluster.store.delete_topic(topic.name)
        return
    services.metadata.delete_topic(topic.name)
    services.replicas.remove_topic(topic)


def add_partitions(
    services: BrokerServices,
    name: str,
    count: int,
    validate_only: bool,
    replicas: list[tuple[int, ...]] | None = None,
) -> None:
    """Grows topic `name` to `count` partitions (CreatePartitions); in a cluster with
    `replicas` for the new partitions when the request assigned them."""
    topic = services.metadata.topics.get(name)
    if topic is None:
        raise TopicError(ErrorCode.unknown_topic_or_partition, f"Topic '{name}' not found.")
    if count < topic.partitions:
        raise TopicError(
            ErrorCode.invalid_partitions,
            f"Topic currently has {topic.partitions} partitions, which is higher than the "
            f"requested {count}.",
        )
    if count == topic.partitions:
        raise TopicError(
            ErrorCode.invalid_partitions, f"Topic already has {topic.partitions} partitions."
        )
    if count > MAX_PARTITIONS:
        raise TopicError(ErrorCode.invalid_partitions, "Too many partitions.")
    if validate_only:
        return
    cluster = services.cluster
    if cluster is not None:
        factor = len(cluster.store.replicas_of(name, 0)) or 1
        if replicas is not None:
            added = {topic.partitions + i: r for i, r in enumerate(replicas)}
        else:
            added = place_replicas(services, count - topic.partitions, factor, topic.partitions)
        with zookeeper_errors():
            try:
                cluster.store.set_partition_count(name, count, added)
            except KeyError:
                raise TopicError(
                    ErrorCode.unknown_topic_or_partition, f"Topic '{name}' not found."
                ) from None
        return
    with topic_changes(services):
        services.replicas.host_topic(services.metadata.set_partition_count(name, count))
