"""Durable partition logs in Kafka's own on-disk format (see docs/storage-format.md)."""
