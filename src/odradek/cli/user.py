"""`odradek user set | describe | delete`: SCRAM users through the Kafka admin API
(AlterUserScramCredentials, DescribeUserScramCredentials), as Kafka's kafka-configs
tool manages them. The password goes to the client library, which sends only a salted
form of it; the broker keeps neither (docs/security.md)."""

from __future__ import annotations

import argparse
import getpass
import os
from typing import Any

# confluent_kafka.admin imports these without re-exporting them (see cli/ck.py).
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from odradek.cli.common import EXIT_OK, EXIT_USAGE, CliError, Connection, add_common_options
from odradek.cli.common import wait as wait_future
from odradek.cli.output import emit, message

MECHANISMS = {
    "SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256,
    "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512,
}
MIN_ITERATIONS = 4096
COLUMNS = ("user", "mechanism", "iterations")
PASSWORD_ENV = "ODRADEK_USER_PASSWORD"


def configure(user: argparse.ArgumentParser) -> None:
    """The subcommands of `odradek user`."""
    actions = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    setting = actions.add_parser("set", help="create a user or change its password")
    setting.set_defaults(handler=set_user)
    setting.add_argument("name")
    setting.add_argument(
        "--password",
        help=f"the password (default: ${PASSWORD_ENV}, else asked for on the terminal)",
    )
    setting.add_argument("--iterations", type=int, default=MIN_ITERATIONS, help="4096-16384")
    describe = actions.add_parser("describe", help="users' SCRAM mechanisms (all users by default)")
    describe.set_defaults(handler=describe_users)
    describe.add_argument("names", nargs="*", metavar="NAME")
    delete = actions.add_parser("delete", help="delete a user's SCRAM credentials")
    delete.set_defaults(handler=delete_user)
    delete.add_argument("name")
    for parser in (setting, delete):
        parser.add_argument(
            "--mechanism",
            action="append",
            type=str.upper,
            choices=list(MECHANISMS),
            help="SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable; default: both)",
        )
    for parser in (setting, describe, delete):
        add_common_options(parser)


def _mechanisms(args: argparse.Namespace) -> list[ScramMechanism]:
    return [MECHANISMS[name] for name in (args.mechanism or list(MECHANISMS))]


def _password(args: argparse.Namespace) -> str:
    password = args.password or os.environ.get(PASSWORD_ENV)
    if password is None:
        password = getpass.getpass(f"password for {args.name}: ")
    if not password:
        raise CliError("the password must not be empty", EXIT_USAGE)
    return str(password)


def _alter(args: argparse.Namespace, changes: list[Any], doing: str) -> None:
    conn = Connection.from_args(args)
    admin = conn.admin()
    futures = admin.alter_user_scram_credentials(changes, request_timeout=conn.timeout)
    for future in futures.values():
        wait_future(future, conn, doing)


def set_user(args: argparse.Namespace) -> int:
    """Sets the user's password for each mechanism."""
    password = _password(args).encode()
    changes = [
        UserScramCredentialUpsertion(
            args.name, ScramCredentialInfo(mechanism, args.iterations), password, os.urandom(32)
        )
        for mechanism in _mechanisms(args)
    ]
    _alter(args, changes, f"setting {args.name}")
    message(f"set {args.name}: {', '.join(m.name for m in _mechanisms(args))}")
    return EXIT_OK


def delete_user(args: argparse.Namespace) -> int:
    """Deletes the user's credentials of each mechanism."""
    changes = [UserScramCredentialDeletion(args.name, m) for m in _mechanisms(args)]
    _alter(args, changes, f"deleting {args.name}")
    message(f"deleted {args.name}: {', '.join(m.name for m in _mechanisms(args))}")
    return EXIT_OK


def describe_users(args: argparse.Namespace) -> int:
    """Each user's mechanisms and iteration counts (never salts or keys)."""
    conn = Connection.from_args(args)
    admin = conn.admin()
    names = list(dict.fromkeys(args.names)) or None
    # One future for all users, or one per user named (the library's two forms).
    result: Any = admin.describe_user_scram_credentials(names, request_timeout=conn.timeout)
    if names is None:
        described = wait_future(result, conn, "describing users")
    else:
        described = {name: wait_future(result[name], conn, f"describing {name}") for name in names}
    document = [
        {
            "user": name,
            "mechanism": info.mechanism.name.replace("_", "-"),
            "iterations": info.iterations,
        }
        for name, description in sorted(described.items())
        for info in description.scram_credential_infos
    ]
    emit(args.output, document, COLUMNS, [[d[c] for c in COLUMNS] for d in document])
    return EXIT_OK
