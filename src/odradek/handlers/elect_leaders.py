"""ElectLeaders (key 43), versions 0-2.

With one broker every partition's leader is already its preferred (and only) replica:
each named partition gets ELECTION_NOT_NEEDED, or UNKNOWN_TOPIC_OR_PARTITION when this
broker does not host it. A null partition list (elect everywhere) answers with no
partitions, as Kafka leaves out those that need no election. v1+ carries the election
type (0 preferred, 1 unclean; another value gives INVALID_REQUEST for the whole
request) and a top-level error code.

In a cluster, per partition (a null list means every partition; those needing no
election are then left out):
- preferred (0): ELECTION_NOT_NEEDED when the first replica leads, PREFERRED_LEADER_NOT_
  AVAILABLE when it is dead or out of the ISR, else the broker handling the request
  writes the partitions to /admin/preferred_replica_election as Kafka's old election
  tool did — so any broker can take the request — and the controller elects and deletes
  the request. The answer waits (up to the request's timeout) until the partitions show
  their preferred leader: NONE, or REQUEST_TIMED_OUT.
- unclean (1): only the controller elects, as in Kafka (clients send it there; another
  broker answers NOT_CONTROLLER). ELECTION_NOT_NEEDED when the leader lives, else a live
  ISR member or, failing that, any live replica leads (ELIGIBLE_LEADERS_NOT_AVAILABLE
  when no replica lives).
UNKNOWN_TOPIC_OR_PARTITION for partitions that do not exist; REQUEST_TIMED_OUT when
ZooKeeper is out of reach.
With an authorizer ALTER on the cluster is needed (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import cluster_allowed
from odradek.handlers.context import ClusterServices, RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.metadata import zk_layout as zl
from odradek.security.acl import AclOperation

API_KEY = 43
PREFERRED, UNCLEAN = 0, 1
# How often the answer to a preferred election looks whether the controller is done.
POLL_S = 0.05
# The least time given to writing the election request, whatever the request's timeout.
MIN_WRITE_S = 1.0

Key = tuple[str, int]
T = TypeVar("T")
Outcome = tuple[ErrorCode, str | None]
NONE: Outcome = (ErrorCode.none, None)
NOT_NEEDED: Outcome = (
    ErrorCode.election_not_needed,
    "Leader election not needed for topic partition.",
)
UNKNOWN: Outcome = (ErrorCode.unknown_topic_or_partition, "The partition does not exist.")
TIMED_OUT: Outcome = (ErrorCode.request_timed_out, None)


def _partition(ctx: RequestContext, module: Any, topic: str, index: int) -> Any:
    if ctx.services.replicas.get(topic, index) is None:
        code = ErrorCode.unknown_topic_or_partition
        message = "The partition does not exist."
    else:
        code = ErrorCode.election_not_needed
        message = "Leader election not needed for topic partition."
    return make(module.PartitionResult, partition_id=index, error_code=code, error_message=message)


def _results(ctx: RequestContext, module: Any, request: Any) -> tuple[Any, ...]:
    if request.topic_partitions is None:
        return ()
    return tuple(
        make(
            module.ReplicaElectionResult,
            topic=topic.topic,
            partition_result=tuple(
                _partition(ctx, module, topic.topic, index) for index in topic.partitions
            ),
        )
        for topic in request.topic_partitions
    )


# -- in a cluster ------------------------------------------------------------------------


def _asked(cluster: ClusterServices, request: Any) -> list[Key]:
    if request.topic_partitions is None:
        return sorted(
            (name, index)
            for name, assignment in cluster.store.assignments.items()
            for index in assignment.partitions
        )
    keys = (
        (topic.topic, index) for topic in request.topic_partitions for index in topic.partitions
    )
    return list(dict.fromkeys(keys))


def _preferred_check(cluster: ClusterServices, key: Key) -> Outcome | None:
    """Why the partition gets no preferred election, or None when it should get one."""
    store = cluster.store
    replicas = store.replicas_of(*key)
    if not replicas or key[0] not in store.topics:
        return UNKNOWN
    state = store.partition_state(*key)
    if state is not None and state.leader == replicas[0]:
        return NOT_NEEDED
    if state is None or replicas[0] not in store.brokers or replicas[0] not in state.isr:
        return _preferred_failed(key)
    return None


def _preferred_failed(key: Key) -> Outcome:
    return (
        ErrorCode.preferred_leader_not_available,
        f"Failed to elect leader for partition {key[0]}-{key[1]} under strategy "
        "PreferredReplicaPartitionLeaderElectionStrategy",
    )


def _unclean_check(cluster: ClusterServices, key: Key) -> Outcome | None:
    store = cluster.store
    replicas = store.replicas_of(*key)
    if not replicas or key[0] not in store.topics:
        return UNKNOWN
    state = store.partition_state(*key)
    if state is not None and state.leader in store.brokers and state.leader in replicas:
        return NOT_NEEDED
    return None


def _not_eligible(key: Key) -> Outcome:
    return (
        ErrorCode.eligible_leaders_not_available,
        f"Failed to elect leader for partition {key[0]}-{key[1]} under strategy "
        "OfflinePartitionLeaderElectionStrategy(true)",
    )


async def _write_request(cluster: ClusterServices, keys: list[Key], deadline: float) -> bool:
    """Creates /admin/preferred_replica_election; a request already there (another
    election) is waited out. False when that did not happen before the deadline."""
    zk = cluster.store.zk
    data = zl.encode_preferred_replica_election(keys)
    loop = asyncio.get_running_loop()
    while zk.connected:
        if await zk.aget(zl.PREFERRED_REPLICA_ELECTION) is None:
            try:
                await zk.acreate(zl.PREFERRED_REPLICA_ELECTION, data, makepath=True)
            except Exception:
                if not zk.connected:
                    return False
            else:
                return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL_S)
    return False


def _leads(cluster: ClusterServices, key: Key, state: zl.PartitionState | None) -> bool:
    replicas = cluster.store.replicas_of(*key)
    return state is not None and bool(replicas) and state.leader == replicas[0]


async def _await_elections(
    cluster: ClusterServices, keys: list[Key], deadline: float
) -> dict[Key, Outcome]:
    """Waits until the partitions show their preferred leaders or the controller has
    taken the request away (then ZooKeeper's states are the answer)."""
    store = cluster.store
    loop = asyncio.get_running_loop()
    pending = set(keys)
    results: dict[Key, Outcome] = {}
    while pending:
        for key in [k for k in pending if _leads(cluster, k, store.partition_state(*k))]:
            results[key] = NONE
            pending.discard(key)
        if not pending or loop.time() >= deadline:
            break
        if await store.zk.aget(zl.PREFERRED_REPLICA_ELECTION) is None:
            for key in sorted(pending):
                found = await store.zk.aget(zl.partition_state_path(*key))
                state = None
                if found is not None:
                    state = zl.decode_partition_state(found[0], found[1].version)
                results[key] = NONE if _leads(cluster, key, state) else _preferred_failed(key)
            pending.clear()
            break
        await asyncio.sleep(POLL_S)
    results.update(dict.fromkeys(pending, TIMED_OUT))
    return results


def _split(
    cluster: ClusterServices,
    keys: list[Key],
    check: Callable[[ClusterServices, Key], Outcome | None],
) -> tuple[dict[Key, Outcome], list[Key]]:
    """The partitions `check` refuses, with their answers, and those it lets through."""
    results: dict[Key, Outcome] = {}
    electable = []
    for key in keys:
        refused = check(cluster, key)
        if refused is None:
            electable.append(key)
        else:
            results[key] = refused
    return results, electable


async def _elect_preferred(
    cluster: ClusterServices, keys: list[Key], timeout_s: float
) -> dict[Key, Outcome]:
    results, electable = _split(cluster, keys, _preferred_check)
    if not electable:
        return results
    deadline = asyncio.get_running_loop().time() + timeout_s

    async def elect() -> dict[Key, Outcome]:
        if await _write_request(cluster, electable, deadline):
            return await _await_elections(cluster, electable, deadline)
        return {}

    # Even a request that will not wait gets its election written (as in Kafka);
    # ZooKeeper calls stuck on a lost connection end with the deadline.
    with contextlib.suppress(Exception):  # ZooKeeper out of reach: the client asks again
        results.update(await _bounded(elect(), max(timeout_s, MIN_WRITE_S)))
    results.update({k: TIMED_OUT for k in electable if k not in results})
    return results


async def _bounded(work: Coroutine[Any, Any, T], timeout_s: float) -> T:
    """`work`'s result, or TimeoutError after `timeout_s` (it is then cancelled). Not
    asyncio.timeout: the first step of a handler runs outside any task."""
    task = asyncio.ensure_future(work)
    done, _pending = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        raise TimeoutError
    return task.result()


async def _elect_unclean(
    cluster: ClusterServices, keys: list[Key], timeout_s: float
) -> dict[Key, Outcome]:
    if not cluster.controller.active:
        return dict.fromkeys(keys, (ErrorCode.not_controller, None))
    results, electable = _split(cluster, keys, _unclean_check)
    if not electable:
        return results
    try:
        elected = await _bounded(_wait(cluster.controller.elect_unclean(electable)), timeout_s)
    except TimeoutError:
        return {**results, **dict.fromkeys(electable, TIMED_OUT)}
    for key in electable:
        if key not in elected:
            results[key] = (ErrorCode.not_controller, None)
        elif elected[key]:
            results[key] = NONE
        else:
            results[key] = _unclean_check(cluster, key) or _not_eligible(key)
    return results


async def _wait(future: asyncio.Future[T]) -> T:
    return await future


def _grouped(module: Any, keys: Iterable[Key], results: dict[Key, Outcome]) -> tuple[Any, ...]:
    by_topic: dict[str, list[Any]] = {}
    for key in keys:
        code, message = results[key]
        by_topic.setdefault(key[0], []).append(
            make(
                module.PartitionResult, partition_id=key[1], error_code=code, error_message=message
            )
        )
    return tuple(
        make(module.ReplicaElectionResult, topic=name, partition_result=tuple(partitions))
        for name, partitions in by_topic.items()
    )


async def _cluster_results(
    cluster: ClusterServices, module: Any, request: Any, election_type: int
) -> tuple[Any, ...]:
    keys = _asked(cluster, request)
    timeout_s = max(request.timeout.total_seconds(), 0.0)
    if election_type == PREFERRED:
        results = await _elect_preferred(cluster, keys, timeout_s)
    else:
        results = await _elect_unclean(cluster, keys, timeout_s)
    if request.topic_partitions is None:
        # Electing everywhere lists only the partitions that had an election or an error.
        keys = [k for k in keys if results[k][0] != ErrorCode.election_not_needed]
    return _grouped(module, keys, results)


@api(API_KEY, 0, 2, is_async=True)
async def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    election_type = getattr(request, "election_type", PREFERRED)
    cluster = ctx.services.cluster
    if not cluster_allowed(ctx, AclOperation.ALTER):
        code, results = ErrorCode.cluster_authorization_failed, ()
    elif election_type not in (PREFERRED, UNCLEAN):
        code, results = ErrorCode.invalid_request, ()
    elif cluster is None:
        code, results = ErrorCode.none, _results(ctx, module, request)
    else:
        code = ErrorCode.none
        results = await _cluster_results(cluster, module, request, election_type)
    return make(
        module.ElectLeadersResponse,
        throttle_time=datetime.timedelta(0),
        error_code=code,
        replica_election_results=results,
    )
