"""Partitions: the log plus leader epoch, high watermark and the fetches waiting on it."""
