"""RequestMemory's admission rules without sockets: under the limit anyone may commit;
over it only the one holding everything, or the oldest frame still arriving (so growing
grants cannot deadlock), and the next oldest is woken when that frame ends."""

from __future__ import annotations

from odradek.server.limits import RequestMemory


def test_over_the_limit_only_the_oldest_frame_grows() -> None:
    """Two connections with frames arriving fill the pool: the older one is still
    admitted (it will finish and release), the younger one is not."""
    memory = RequestMemory(100)
    memory.set_held(1, 60)
    memory.frame_begun(1)
    memory.set_held(2, 60)
    memory.frame_begun(2)
    assert memory.committed == 120
    assert memory.admits(1)
    assert not memory.admits(2)
    assert not memory.admits(3)  # a new frame waits too


def test_the_end_of_the_oldest_frame_wakes_the_next_oldest() -> None:
    """When the oldest frame has arrived, the connection of the next oldest, parked for
    memory, is retried even though the pool is still full (its request is still held)."""
    memory = RequestMemory(100)
    for owner in (1, 2):
        memory.set_held(owner, 60)
        memory.frame_begun(owner)
    woken: list[int] = []
    memory.park(2, lambda: woken.append(2))
    memory.frame_ended(1)
    assert woken == [2]
    assert memory.admits(2)


def test_the_sole_holder_is_admitted_and_forget_releases_everything() -> None:
    """A connection holding all committed memory may go over the limit (a frame larger
    than the budget still gets through); forgetting it returns every byte and wakes the
    parked."""
    memory = RequestMemory(100)
    memory.set_held(1, 150)
    assert memory.admits(1)
    woken: list[int] = []
    memory.park(2, lambda: woken.append(2))
    memory.forget(1)
    assert (memory.used, memory.committed, woken) == (0, 0, [2])


def test_stray_bytes_count_as_used_but_not_against_admission() -> None:
    """Bytes read past a grant are in `used`, not in `committed`."""
    memory = RequestMemory(100)
    memory.set_held(1, 50, stray=70)
    assert (memory.used, memory.committed) == (120, 50)
    assert memory.admits(2)
