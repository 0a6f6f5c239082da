"""Runs a client subcommand: every failure becomes one line on stderr and an exit code."""

from __future__ import annotations

import argparse
import os
import sys

from confluent_kafka import KafkaException

from odradek.cli.common import EXIT_FAILURE, CliError, describe, resolve_topic

EXIT_INTERRUPTED = 130


def fail(text: str, code: int) -> int:
    """Prints `odradek: text` on stderr and returns `code`."""
    print(f"odradek: {text}", file=sys.stderr, flush=True)
    return code


def run_client(args: argparse.Namespace) -> int:
    """Calls the subcommand's handler, turning exceptions into exit codes."""
    try:
        resolve_topic(args)
        code: int = args.handler(args)
        sys.stdout.flush()
        return code
    except CliError as exc:
        return fail(exc.message, exc.code)
    except KafkaException as exc:
        return fail(describe(exc), EXIT_FAILURE)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except OSError as exc:
        return fail(str(exc), EXIT_FAILURE)
