"""Keeps the C allocator from handing large buffers back to the kernel after every request.

A produce request or fetch response is up to a few MiB, and each passes through a few
Python `bytes` objects. glibc serves such sizes with fresh `mmap` pages (or gives heap tops
back with `madvise`/`brk` once more than the trim threshold is free), so every request
page-faults and zeroes its buffers anew: measured on confluent-kafka 1 KiB produce, the
broker spent ~3.5 s of kernel time per 500 MB, against ~0.7 s with the thresholds below,
and the produce rate went from ~150 k to ~270 k msg/s.

Fixed thresholds (which also switch off glibc's dynamic adjustment) keep up to
`TRIM_THRESHOLD` bytes of freed memory in the process for reuse. Only the broker process
calls this (`odradek broker`); an embedding program keeps its own allocator settings.
Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("odradek.malloc")

# glibc's mallopt parameter numbers (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

# Requests are at most socket.request.max.bytes (100 MiB) but nearly all are under 32 MiB
# (librdkafka's batch.size is 1 MiB, its fetch.max.bytes 50 MiB across partitions).
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 64 * 1024 * 1024


def tune_for_large_buffers() -> bool:
    """Sets glibc's mmap and trim thresholds; False when the C library is not glibc."""
    try:
        # The running program's own symbols, libc's among them (no library search).
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018  (absent outside glibc)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok: bool = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    if not ok:
        log.warning("mallopt refused the allocator thresholds; keeping glibc's defaults")
    return ok
