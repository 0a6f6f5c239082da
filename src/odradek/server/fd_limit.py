"""Raises the broker process's open-file limit to what the system allows.

Every partition with data keeps its active segment file open, so 10,000 partitions need
about 10,000 descriptors, more than the common default soft limit of 1,024. Kafka's
documentation asks operators to raise the limit by hand; the broker raises its own soft
limit up to the hard limit instead (as the Go runtime does for every program), so a
laptop default does not break a broker with a few thousand partitions.
"""

from __future__ import annotations

import logging

log = logging.getLogger("odradek.fd_limit")

try:
    import resource
except ImportError:  # not a POSIX system
    resource = None  # type: ignore[assignment]


def raise_open_file_limit() -> int | None:
    """Sets the soft RLIMIT_NOFILE to the hard one; returns the soft limit now in force,
    or None where the platform has no such limit."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
        return soft
    return target
