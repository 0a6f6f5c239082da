"""`odradek acl list | add | remove`: a broker's ACLs through the Kafka admin API
(DescribeAcls, CreateAcls, DeleteAcls), with the options of Kafka's kafka-acls tool."""

from __future__ import annotations

import argparse
from typing import Any

# confluent_kafka.admin imports these without re-exporting them (see cli/ck.py).
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from odradek.cli.common import EXIT_OK, EXIT_USAGE, CliError, Connection, add_common_options
from odradek.cli.common import wait as wait_future
from odradek.cli.output import emit, message

CLUSTER_NAME = "kafka-cluster"
OPERATIONS = [op.name for op in AclOperation if op not in (AclOperation.UNKNOWN, AclOperation.ANY)]
COLUMNS = ("resource", "name", "pattern", "principal", "host", "operation", "permission")


def configure(acl: argparse.ArgumentParser) -> None:
    """The subcommands of `odradek acl`."""
    actions = acl.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list ACLs (all, or of one resource)")
    listing.set_defaults(handler=list_acls)
    add = actions.add_parser("add", help="add ACLs: each principal x each operation")
    add.set_defaults(handler=add_acls)
    remove = actions.add_parser("remove", help="remove the ACLs of a resource matching the filter")
    remove.set_defaults(handler=remove_acls)
    for parser in (listing, add, remove):
        _resource_options(parser, required=parser is not listing)
        _entry_options(parser, adding=parser is add)
        add_common_options(parser)
    listing.add_argument(
        "--match",
        action="store_true",
        help="with a resource name: every ACL that applies to it (literal, '*', prefixes)",
    )


def _resource_options(parser: argparse.ArgumentParser, required: bool) -> None:
    group = parser.add_argument_group("resource")
    which = group.add_mutually_exclusive_group(required=required)
    which.add_argument("--topic", metavar="NAME")
    which.add_argument("--group", metavar="NAME")
    which.add_argument("--transactional-id", metavar="NAME")
    which.add_argument("--cluster", action="store_true", help="the cluster (kafka-cluster)")
    group.add_argument(
        "--prefixed",
        action="store_true",
        help="the name is a prefix (PREFIXED pattern); LITERAL otherwise",
    )


def _entry_options(parser: argparse.ArgumentParser, adding: bool) -> None:
    group = parser.add_argument_group("entry")
    group.add_argument(
        "--principal",
        action="append",
        default=[],
        metavar="TYPE:NAME",
        required=adding,
        help="e.g. User:alice, User:* for everyone (repeatable)",
    )
    group.add_argument(
        "--host", default="*" if adding else None, help="client IP address (default *)"
    )
    group.add_argument(
        "--operation",
        action="append",
        default=[],
        type=str.upper,
        choices=OPERATIONS,
        required=adding,
        metavar="OPERATION",
        help=f"one of {', '.join(OPERATIONS)} (repeatable)",
    )
    permission = group.add_mutually_exclusive_group(required=adding)
    permission.add_argument("--allow", action="store_true")
    permission.add_argument("--deny", action="store_true")


def _resource(args: argparse.Namespace) -> tuple[ResourceType, str | None]:
    """The resource type and name the options select (ANY, None without one)."""
    if args.topic is not None:
        return ResourceType.TOPIC, args.topic
    if args.group is not None:
        return ResourceType.GROUP, args.group
    if args.transactional_id is not None:
        return ResourceType.TRANSACTIONAL_ID, args.transactional_id
    if args.cluster:
        # Kafka's admin clients call the cluster resource BROKER (code 4).
        return ResourceType.BROKER, CLUSTER_NAME
    return ResourceType.ANY, None


def _permission(args: argparse.Namespace) -> AclPermissionType:
    if args.allow:
        return AclPermissionType.ALLOW
    if args.deny:
        return AclPermissionType.DENY
    return AclPermissionType.ANY


def _pattern(args: argparse.Namespace, name: str | None) -> ResourcePatternType:
    """PREFIXED with --prefixed; `list` matches any pattern type on the name (MATCH with
    --match: every ACL that applies to it); `add` and `remove` mean LITERAL."""
    if args.prefixed:
        return ResourcePatternType.PREFIXED
    if not hasattr(args, "match"):
        return ResourcePatternType.LITERAL
    if args.match and name is not None:
        return ResourcePatternType.MATCH
    return ResourcePatternType.ANY


def _filters(args: argparse.Namespace) -> list[AclBindingFilter]:
    """One filter per principal and operation asked for (any, when none is given)."""
    kind, name = _resource(args)
    pattern = _pattern(args, name)
    # None matches any name or principal (the library's annotations say str only).
    principals: list[Any] = list(args.principal) or [None]
    operations = [AclOperation[o] for o in args.operation] or [AclOperation.ANY]
    any_name: Any = name
    return [
        AclBindingFilter(kind, any_name, pattern, p, args.host, op, _permission(args))
        for p in principals
        for op in operations
    ]


def _document(binding: Any) -> dict[str, str]:
    kind = "CLUSTER" if binding.restype == ResourceType.BROKER else binding.restype.name
    return {
        "resource": kind,
        "name": binding.name,
        "pattern": binding.resource_pattern_type.name,
        "principal": binding.principal,
        "host": binding.host,
        "operation": binding.operation.name,
        "permission": binding.permission_type.name,
    }


def _emit(args: argparse.Namespace, bindings: list[Any]) -> None:
    document = sorted((_document(b) for b in bindings), key=lambda d: tuple(d.values()))
    rows = [[d[c] for c in COLUMNS] for d in document]
    emit(args.output, document, COLUMNS, rows)


def list_acls(args: argparse.Namespace) -> int:
    """The ACLs matching the resource and entry options."""
    conn = Connection.from_args(args)
    admin = conn.admin()
    _check_may_describe(admin, conn)
    found: list[Any] = []
    for acl_filter in _filters(args):
        found.extend(
            wait_future(admin.describe_acls(acl_filter, request_timeout=conn.timeout), conn)
        )
    _emit(args, list(dict.fromkeys(found)))
    return EXIT_OK


def _check_may_describe(admin: Any, conn: Connection) -> None:
    """Fails unless the principal may DESCRIBE the cluster. librdkafka's describe_acls
    drops DescribeAcls' top-level error and returns no ACLs, so a refusal would print as
    an empty list; the cluster's authorized operations (none: librdkafka gives None)
    tell them apart."""
    future = admin.describe_cluster(
        include_authorized_operations=True, request_timeout=conn.timeout
    )
    operations = wait_future(future, conn).authorized_operations
    if not operations or AclOperation.DESCRIBE not in operations:
        raise CliError("not authorized to list ACLs (needs DESCRIBE on the cluster)")


def add_acls(args: argparse.Namespace) -> int:
    """An ACL for each principal and operation given."""
    if args.prefixed and args.cluster:
        raise CliError("the cluster resource has no prefixes", EXIT_USAGE)
    kind, name = _resource(args)
    assert name is not None
    pattern = ResourcePatternType.PREFIXED if args.prefixed else ResourcePatternType.LITERAL
    bindings = [
        AclBinding(kind, name, pattern, p, args.host, AclOperation[o], _permission(args))
        for p in args.principal
        for o in args.operation
    ]
    conn = Connection.from_args(args)
    admin = conn.admin()
    futures = admin.create_acls(bindings, request_timeout=conn.timeout)
    for binding in bindings:
        wait_future(futures[binding], conn, "adding ACLs")
    message(f"added {len(bindings)} ACL(s)")
    _emit(args, bindings)
    return EXIT_OK


def remove_acls(args: argparse.Namespace) -> int:
    """Removes the ACLs of the resource that match the entry options; lists them."""
    conn = Connection.from_args(args)
    admin = conn.admin()
    filters = _filters(args)
    futures = admin.delete_acls(filters, request_timeout=conn.timeout)
    removed: list[Any] = []
    for acl_filter in filters:
        removed.extend(wait_future(futures[acl_filter], conn, "removing ACLs"))
    message(f"removed {len(set(removed))} ACL(s)")
    _emit(args, list(dict.fromkeys(removed)))
    return EXIT_OK
