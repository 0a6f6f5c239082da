"""One module per Kafka API: each computes a response from a request, with no socket or file
code. Importing this package registers every handler."""

from odradek.handlers import (
    api_versions,
    create_partitions,
    create_topics,
    delete_topics,
    fetch,
    init_producer_id,
    list_offsets,
    metadata,
    produce,
)

__all__ = [
    "api_versions",
    "create_partitions",
    "create_topics",
    "delete_topics",
    "fetch",
    "init_producer_id",
    "list_offsets",
    "metadata",
    "produce",
]
