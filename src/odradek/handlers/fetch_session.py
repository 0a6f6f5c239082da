"""Incremental fetch sessions (KIP-227).

A client that opens a session (session id 0, epoch 0) sends its partition list once; later
fetches (its session id, the next epoch) carry only partitions that changed and the ones
to forget, and the response carries only partitions with something new: records, a moved
high watermark or log start offset, or an error. Epoch -1 closes a session. The cache is
bounded by `max.incremental.fetch.session.cache.slots` (0 disables sessions); when full,
the least recently used session is evicted, and a client whose session is gone gets
FETCH_SESSION_ID_NOT_FOUND and starts over.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

INITIAL_EPOCH = 0
FINAL_EPOCH = -1

PartitionKey = tuple[str, int]


@dataclass(slots=True)
class SessionPartition:
    """What the session remembers of one partition: the client's position and limit, and
    what the last response told it (to know whether anything changed since)."""

    fetch_offset: int
    max_bytes: int
    high_watermark: int = -1
    log_start_offset: int = -1
    last_stable_offset: int = -1
    # The leader epoch the client believes in (v9+; -1: not checked), KIP-320.
    current_leader_epoch: int = -1


@dataclass(slots=True)
class FetchSession:
    session_id: int
    epoch: int  # the epoch the next incremental request must carry
    partitions: dict[PartitionKey, SessionPartition] = field(default_factory=dict)


class FetchSessionError(Exception):
    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.name)
        self.code = code


class FetchSessionCache:
    def __init__(self, max_slots: int) -> None:
        self.max_slots = max_slots
        self._sessions: OrderedDict[int, FetchSession] = OrderedDict()
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._sessions)

    def close(self, session_id: int) -> None:
        self._sessions.pop(session_id, None)

    def create(self) -> FetchSession | None:
        """A new empty session, or None when sessions are disabled."""
        if self.max_slots <= 0:
            return None
        while len(self._sessions) >= self.max_slots:
            self._sessions.popitem(last=False)
        session = FetchSession(next(self._ids) % 2**31 or next(self._ids), epoch=INITIAL_EPOCH)
        self._sessions[session.session_id] = session
        return session

    def resume(self, session_id: int, epoch: int) -> FetchSession:
        """The session an incremental request continues; raises FetchSessionError."""
        session = self._sessions.get(session_id)
        if session is None:
            raise FetchSessionError(ErrorCode.fetch_session_id_not_found)
        if epoch != session.epoch:
            raise FetchSessionError(ErrorCode.invalid_fetch_session_epoch)
        self._sessions.move_to_end(session_id)
        return session
