"""The `odradek` command: run a broker, or talk to one as a client.

Only the chosen subcommand's module is imported, so `odradek broker` starts without
loading confluent-kafka or rich."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from odradek.cli.broker import load_config

__all__ = ["load_config", "main"]

# name -> (module with `configure(parser)`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "broker": ("odradek.cli.broker", "run a broker"),
    "topic": ("odradek.cli.topic", "list, create, describe, alter, delete topics"),
    "produce": ("odradek.cli.produce", "produce lines of stdin or a file as records"),
    "consume": ("odradek.cli.consume", "print records of a topic"),
    "group": ("odradek.cli.group", "list, describe, reset offsets of, delete consumer groups"),
    "perf": ("odradek.cli.perf", "producer and consumer performance tests"),
    "cluster": ("odradek.cli.cluster", "run a replicated cluster on this machine, kill brokers"),
    "acl": ("odradek.cli.acl", "list, add, remove ACLs (brokers with an authorizer)"),
    "user": ("odradek.cli.user", "set, describe, delete SCRAM users"),
}

EPILOG = (
    "Client commands read ODRADEK_BOOTSTRAP (default localhost:9092); "
    "exit codes: 0 ok, 1 failure, 2 bad usage."
)


def _selected(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an option)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def _parser(selected: str | None) -> argparse.ArgumentParser:
    """The parser, with the arguments of the selected subcommand only."""
    parser = argparse.ArgumentParser(
        prog="odradek", description="odradek: a Kafka-protocol broker and its tools.", epilog=EPILOG
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == selected:
            module: Any = importlib.import_module(module_name)
            module.configure(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parses `argv` (default: sys.argv), runs the subcommand, returns the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    args = _parser(_selected(words)).parse_args(words)
    if args.command == "broker":
        code: int = args.handler(args)
        return code
    from odradek.cli.run import run_client

    return run_client(args)
