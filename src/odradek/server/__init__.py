"""Sockets, connections, request ordering, limits and the broker's lifecycle."""
