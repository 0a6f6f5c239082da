"""Output: rich tables on a terminal or in a pipe, plain JSON for scripts, and the small
text conversions both need."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

# Width used when stdout is not a terminal, so that pipes get whole cells, not wraps.
PIPE_WIDTH = 240


def stdout_console() -> Console:
    """A console on stdout, wide when piped."""
    width = None if sys.stdout.isatty() else PIPE_WIDTH
    return Console(file=sys.stdout, width=width, highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    """A console on stderr, for summaries and progress."""
    return Console(file=sys.stderr, highlight=False)


def print_json(value: Any) -> None:
    """One JSON document on one line."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None
) -> None:
    """A rich table; None cells show as "-"."""
    table = Table(title=title, title_justify="left")
    for name in columns:
        table.add_column(name, no_wrap=True, overflow="fold")
    for row in rows:
        table.add_row(*("-" if cell is None else str(cell) for cell in row))
    stdout_console().print(table)


def emit(
    output: str,
    document: Any,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str | None = None,
) -> None:
    """`document` as JSON, or `rows` as a table, per `--output`."""
    if output == "json":
        print_json(document)
    else:
        print_table(columns, rows, title)


def message(text: str) -> None:
    """A status line for people (stderr, so stdout stays data)."""
    print(text, file=sys.stderr, flush=True)


def text(data: bytes | None) -> str | None:
    """Bytes as text for JSON and tables (invalid UTF-8 replaced)."""
    return None if data is None else data.decode("utf-8", errors="replace")
