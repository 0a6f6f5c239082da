"""The console's group writes: reset a group's committed offsets (to the earliest or
latest offset, to the first record at or after a time, or to a given offset) and delete
a group, each after a confirmation page.

Kafka's rules, as kafka-consumer-groups applies them: only a group without members
(state Empty) may have its offsets reset or be deleted; otherwise the page says the
group's state. Both go through the group coordinator's own operations (the ones
OffsetCommit from outside the group and DeleteGroups use), so the records are written to
`__consumer_offsets` and replicated. The new offsets are worked out when the form is
confirmed (the preview shows them as they were then): earliest is the log start offset,
latest the high watermark, a time the first offset with a timestamp at or after it (the
high watermark when none), and a given offset is kept within those two as the tool does.
They come from the partitions' leaders (console/log_bounds.py).

With an authorizer, as OffsetCommit and DeleteGroups: a reset needs READ on the group
and on every topic it changes, a delete DELETE on the group (console/access.py); a
refusal is a 403 page, at the preview already, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web
from kio.schema.errors import ErrorCode

from odradek.console import access, browser, writes
from odradek.console.log_bounds import log_bounds
from odradek.coordinator.coordinator import GroupCoordinator
from odradek.coordinator.group import GroupState
from odradek.coordinator.offsets import OffsetCommit
from odradek.security.acl import AclOperation
from odradek.server.broker import Broker

MODES = ("earliest", "latest", "time", "offset")

Render = Callable[..., str]


@dataclass(slots=True, frozen=True)
class Change:
    topic: str
    partition: int
    current: int | None  # the committed offset, None when there is none
    new: int


def routes(
    broker: Broker, csrf: writes.Csrf, fail: writes.Failure, render: Render
) -> Iterable[web.RouteDef]:
    """POST /groups/{group}/reset and /groups/{group}/delete: a confirmation page, and
    with `confirm=yes` the change."""

    async def reset(request: web.Request, form: Mapping[str, str]) -> str | web.Response:
        who = access.of(broker, request)
        groups, group_id = _group(broker, request, who, AclOperation.READ)
        _require_empty(groups, group_id, "Assignments can only be reset")
        changes = await plan_reset(broker, groups, group_id, form, who)
        if form.get("confirm") != "yes":
            return _page(render, "group_reset.html", group_id, form, changes)
        commits = [OffsetCommit(c.topic, c.partition, c.new, -1, "") for c in changes]
        results = await groups.commit_offsets(group_id, -1, "", None, commits)
        failed = {tp: code for tp, code in results.items() if code != ErrorCode.none}
        if failed:
            listed = ", ".join(f"{t}-{p}: {code.name.upper()}" for (t, p), code in failed.items())
            raise ValueError(f"The reset of group {group_id!r} failed for {listed}.")
        return "/groups/" + quote(group_id, safe="")

    async def delete(request: web.Request, form: Mapping[str, str]) -> str | web.Response:
        who = access.of(broker, request)
        groups, group_id = _group(broker, request, who, AclOperation.DELETE)
        _require_empty(groups, group_id, "The group can only be deleted")
        if form.get("confirm") != "yes":
            return _page(render, "group_delete.html", group_id, form, [])
        code = groups.delete_groups([group_id])[group_id]
        if code != ErrorCode.none:
            raise ValueError(
                f"Group {group_id!r} could not be deleted due to: {code.name.upper()}."
            )
        return "/groups"

    return [
        web.post("/groups/{group}/reset", writes.guard(broker, csrf, fail, reset)),
        web.post("/groups/{group}/delete", writes.guard(broker, csrf, fail, delete)),
    ]


def _group(
    broker: Broker, request: web.Request, who: access.Access, operation: AclOperation
) -> tuple[GroupCoordinator, str]:
    """The group in the URL, once the principal may `operation` it (checked first)."""
    group_id = request.match_info["group"]
    who.group(operation, group_id)
    groups = broker.services.groups
    if groups is None or not groups.coordinates(group_id) or _state(groups, group_id) is None:
        raise writes.NotFound(f"No group {group_id!r} is coordinated by this broker.")
    return groups, group_id


def _state(groups: GroupCoordinator, group_id: str) -> str | None:
    """Kafka's name of the group's state; None for no (or a dead) group."""
    consumer = groups.consumer_groups.get(group_id)
    if consumer is not None:
        return consumer.state
    group = groups.groups.get(group_id)
    if group is None or group.is_(GroupState.DEAD):
        return None
    return group.state.value


def _require_empty(groups: GroupCoordinator, group_id: str, what: str) -> None:
    state = _state(groups, group_id)
    if state != GroupState.EMPTY.value:
        raise ValueError(
            f"{what} if the group {group_id!r} is inactive, but the current state is {state}."
        )


async def plan_reset(
    broker: Broker,
    groups: GroupCoordinator,
    group_id: str,
    form: Mapping[str, str],
    who: access.Access,
) -> list[Change]:
    """The offsets the form asks for: every partition of `topic` (empty: each partition
    the group has an offset for) with its committed offset and the new one; each topic
    must be one `who` may READ (OffsetCommit's rule)."""
    mode = form.get("mode", "")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}.")
    group = groups.groups.get(group_id)
    committed = {tp: o.offset for tp, o in group.offsets.items()} if group else {}
    topic = form.get("topic", "").strip()
    if topic:
        who.topic(AclOperation.READ, topic)
        info = broker.services.metadata.topics.get(topic)
        if info is None:
            raise ValueError(f"No topic named {topic!r}.")
        partitions = [(topic, i) for i in range(info.partitions)]
    else:
        partitions = sorted(committed)
        if not partitions:
            raise ValueError(f"Group {group_id!r} has no committed offsets: name a topic.")
        if who.checked:
            for name in sorted({t for t, _ in partitions}):
                who.topic(AclOperation.READ, name)
    raw = form.get("value", "").strip()
    moment = _time(raw) if mode == "time" else None
    wanted = _offset(raw) if mode == "offset" else 0
    bounds = await log_bounds(broker, partitions, moment)
    changes = []
    for tp in partitions:
        b = bounds[tp]
        if mode == "earliest":
            new = b.start
        elif mode == "latest":
            new = b.end
        elif mode == "offset":
            new = min(max(wanted, b.start), b.end)
        else:  # the first record at or after the time, else the end (as the tool does)
            new = b.end if b.at_time is None else b.at_time
        changes.append(Change(tp[0], tp[1], committed.get(tp), new))
    return changes


def _time(raw: str) -> int:
    try:
        return browser.parse_time(raw)
    except (ValueError, OverflowError):
        raise ValueError(
            "The time must be milliseconds since the epoch or ISO 8601 (2026-01-31T12:00:00)."
        ) from None


def _offset(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 19:
        raise ValueError("The offset must be a number of 0 or more.")
    return int(raw)


def _page(
    render: Render,
    template: str,
    group_id: str,
    form: Mapping[str, str],
    changes: list[Change],
) -> web.Response:
    fields: dict[str, Any] = {k: v for k, v in form.items() if k not in ("csrf", "confirm")}
    body = render(
        template, group_id=group_id, fields=fields, changes=changes, csrf=form.get("csrf", "")
    )
    return web.Response(text=body, content_type="text/html")
