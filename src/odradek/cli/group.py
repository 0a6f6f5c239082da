"""`odradek group list | describe | reset-offsets | delete`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import ConsumerGroupState, KafkaError, KafkaException, TopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions as GroupPartitions
from confluent_kafka.admin import AdminClient

from odradek.cli import offsets
from odradek.cli.ck import ConsumerGroupDescription
from odradek.cli.common import EXIT_OK, CliError, Connection, add_common_options
from odradek.cli.common import wait as wait_future
from odradek.cli.output import emit, message, print_json, print_table

TO_OPTIONS = ("--to-earliest", "--to-latest", "--to-offset", "--to-datetime")


def configure(group: argparse.ArgumentParser) -> None:
    """The subcommands of `odradek group`."""
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list consumer groups")
    listing.set_defaults(handler=list_groups)
    describe = actions.add_parser("describe", help="members, offsets and lag")
    describe.add_argument("group", metavar="GROUP")
    describe.set_defaults(handler=describe_group)
    reset = actions.add_parser("reset-offsets", help="move committed offsets (dry run)")
    reset.add_argument("group", metavar="GROUP")
    reset.add_argument("--topic", required=True, metavar="TOPIC")
    target = reset.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-earliest", action="store_true")
    target.add_argument("--to-latest", action="store_true")
    target.add_argument("--to-offset", type=int, metavar="N")
    target.add_argument("--to-datetime", type=iso_datetime_ms, metavar="ISO8601")
    reset.add_argument("--execute", action="store_true", help="apply the plan")
    reset.set_defaults(handler=reset_offsets)
    delete = actions.add_parser("delete", help="delete an empty group")
    delete.add_argument("group", metavar="GROUP")
    delete.set_defaults(handler=delete_group)
    for parser in (listing, describe, reset, delete):
        add_common_options(parser)


def iso_datetime_ms(text: str) -> int:
    """argparse type: an ISO 8601 date-time (local time unless it names a zone) in ms."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}") from None
    return int(moment.timestamp() * 1000)


def _group_error(exc: KafkaException, group: str) -> CliError | None:
    """The group errors said in words; None for the others."""
    first = exc.args[0] if exc.args else None
    code = first.code() if isinstance(first, KafkaError) else None
    if code == KafkaError.GROUP_ID_NOT_FOUND:
        return CliError(f"unknown group {group}")
    if code == KafkaError.NON_EMPTY_GROUP:
        return CliError(f"group {group} has active members")
    return None


def wait(future: Any, conn: Connection, group: str) -> Any:
    """An admin future's result; group errors in words."""
    return wait_future(future, conn, f"group {group}", lambda exc: _group_error(exc, group))


def _state(value: Any) -> str:
    return value.name if isinstance(value, ConsumerGroupState) else str(value)


def list_groups(args: argparse.Namespace) -> int:
    """Every group with its state."""
    conn = Connection.from_args(args)
    admin = conn.admin()
    conn.metadata(admin)
    result = wait_future(admin.list_consumer_groups(request_timeout=conn.timeout), conn)
    groups = sorted(result.valid, key=lambda g: g.group_id)
    document = [
        {"group": g.group_id, "state": _state(g.state), "simple": g.is_simple_consumer_group}
        for g in groups
    ]
    rows = [(d["group"], d["state"], "yes" if d["simple"] else "no") for d in document]
    emit(args.output, document, ("group", "state", "simple"), rows)
    return EXIT_OK


@dataclass
class GroupView:
    """A group's description and committed offsets."""

    description: ConsumerGroupDescription
    committed: dict[tuple[str, int], int]

    @property
    def state(self) -> str:
        return _state(self.description.state)

    def owners(self) -> dict[tuple[str, int], Any]:
        """(topic, partition) -> the member it is assigned to."""
        out = {}
        for member in self.description.members:
            for tp in member.assignment.topic_partitions if member.assignment else []:
                out[(tp.topic, tp.partition)] = member
        return out


def _view(admin: AdminClient, conn: Connection, group: str) -> GroupView:
    futures = admin.describe_consumer_groups([group], request_timeout=conn.timeout)
    description = wait(futures[group], conn, group)
    futures = admin.list_consumer_group_offsets(
        [GroupPartitions(group)], request_timeout=conn.timeout
    )
    result = wait(futures[group], conn, group)
    committed = {
        (tp.topic, tp.partition): tp.offset
        for tp in result.topic_partitions or []
        if tp.offset >= 0 and tp.error is None
    }
    return GroupView(description, committed)


def describe_group(args: argparse.Namespace) -> int:
    """Members, and per partition the committed offset, end offset and lag."""
    conn = Connection.from_args(args)
    admin = conn.admin()
    conn.metadata(admin)
    view = _view(admin, conn, args.group)
    owners = view.owners()
    if view.state in ("DEAD", "UNKNOWN") and not view.committed and not owners:
        raise CliError(f"unknown group {args.group}")
    keys = sorted(set(view.committed) | set(owners))
    ends: dict[tuple[str, int], int] = {}
    for topic in sorted({t for t, _ in keys}):
        parts = [p for t, p in keys if t == topic]
        ends.update({(topic, p): o for p, o in offsets.latest(admin, conn, topic, parts).items()})
    partitions = [
        _partition_row(k, view.committed.get(k), ends.get(k), owners.get(k)) for k in keys
    ]
    members = [_member_doc(m) for m in view.description.members]
    if args.output == "json":
        print_json(
            {"group": args.group, "state": view.state, "members": members, "partitions": partitions}
        )
        return EXIT_OK
    title = f"group {args.group}: {view.state}, {len(members)} member(s)"
    columns = ("topic", "partition", "committed", "end", "lag", "member", "client", "host")
    rows = [
        [d[k] for k in ("topic", "partition", "committed", "end", "lag")]
        + [d[k] for k in ("member_id", "client_id", "host")]
        for d in partitions
    ]
    print_table(columns, rows, title=title)
    return EXIT_OK


def _partition_row(
    key: tuple[str, int], committed: int | None, end: int | None, member: Any
) -> dict[str, Any]:
    lag = end - committed if end is not None and committed is not None else None
    return {
        "topic": key[0],
        "partition": key[1],
        "committed": committed,
        "end": end,
        "lag": lag,
        "member_id": member.member_id if member else None,
        "client_id": member.client_id if member else None,
        "host": member.host if member else None,
    }


def _member_doc(member: Any) -> dict[str, Any]:
    tps = member.assignment.topic_partitions if member.assignment else []
    return {
        "member_id": member.member_id,
        "client_id": member.client_id,
        "host": member.host,
        "assignment": [[tp.topic, tp.partition] for tp in tps],
    }


def reset_offsets(args: argparse.Namespace) -> int:
    """Prints the new offsets of the group for one topic; writes them with --execute."""
    conn = Connection.from_args(args)
    admin = conn.admin()
    meta = conn.topic(admin, args.topic)
    parts = sorted(meta.partitions)
    view = _view(admin, conn, args.group)
    if view.description.members:
        raise CliError(
            f"group {args.group} has {len(view.description.members)} active member(s) "
            f"(state {view.state}); stop them before resetting offsets"
        )
    targets = _targets(args, admin, conn, parts)
    plan = [
        {"partition": p, "current": view.committed.get((args.topic, p)), "new": targets[p]}
        for p in parts
    ]
    if args.execute:
        request = [TopicPartition(args.topic, p, o) for p, o in targets.items()]
        futures = admin.alter_consumer_group_offsets(
            [GroupPartitions(args.group, request)], request_timeout=conn.timeout
        )
        wait(futures[args.group], conn, args.group)
    _print_plan(args, plan)
    return EXIT_OK


def _targets(
    args: argparse.Namespace, admin: AdminClient, conn: Connection, parts: list[int]
) -> dict[int, int]:
    """The new offset of every partition."""
    if args.to_datetime is not None:
        return offsets.for_timestamp(admin, conn, args.topic, parts, args.to_datetime)
    if args.to_earliest:
        return offsets.earliest(admin, conn, args.topic, parts)
    ends = offsets.latest(admin, conn, args.topic, parts)
    if args.to_latest:
        return ends
    starts = offsets.earliest(admin, conn, args.topic, parts)
    # as Kafka's tool does: an offset out of range is moved to the nearest end
    return {p: min(max(args.to_offset, starts[p]), ends[p]) for p in parts}


def _print_plan(args: argparse.Namespace, plan: list[dict[str, Any]]) -> None:
    if args.output == "json":
        document = {
            "group": args.group,
            "topic": args.topic,
            "executed": args.execute,
            "partitions": plan,
        }
        print_json(document)
    else:
        rows = [(args.topic, d["partition"], d["current"], d["new"]) for d in plan]
        title = f"group {args.group}: new offsets"
        print_table(("topic", "partition", "current", "new"), rows, title=title)
    if args.execute:
        message(f"offsets of group {args.group} on {args.topic} reset")
    else:
        message("dry run: nothing changed (add --execute to apply)")


def delete_group(args: argparse.Namespace) -> int:
    """DeleteGroups."""
    conn = Connection.from_args(args)
    admin = conn.admin()
    conn.metadata(admin)
    futures = admin.delete_consumer_groups([args.group], request_timeout=conn.timeout)
    wait(futures[args.group], conn, args.group)
    if args.output == "json":
        print_json({"deleted": args.group})
    else:
        print(f"deleted group {args.group}", flush=True)
    return EXIT_OK
