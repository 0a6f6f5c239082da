"""Bytes to messages and back, with no I/O at all (sans-IO)."""
