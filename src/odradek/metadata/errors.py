"""Errors of the cluster image that handlers turn into Kafka error codes (importable
without kazoo, which only a broker with zookeeper.connect loads)."""


class ZooKeeperUnavailableError(Exception):
    """ZooKeeper cannot be reached now; the caller answers with a retriable error."""


class TopicExistsInZooKeeperError(Exception):
    """The topic's znode already exists (created by another broker meanwhile)."""
