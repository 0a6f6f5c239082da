"""Regular expressions of KIP-848 subscriptions (`subscribed_topic_regex`), in RE2.

Kafka matches them with RE2/J, whose matching time is linear in the topic name. Python's
`re` backtracks: a pattern such as `(t+)+x` takes exponential time against a long topic
name, and the coordinator matches on the broker's event loop, so one hostile
subscription could stall every client. google-re2 is RE2 itself: the same syntax as
Kafka's engine and the same linear time. Patterns are compiled once and cached (a group
matches them at every heartbeat that recomputes its subscriptions).
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

# Patterns kept compiled; a group has one per distinct subscription.
CACHE_SIZE = 1024


class InvalidRegexError(ValueError):
    """The pattern is not a valid RE2 expression (INVALID_REGULAR_EXPRESSION)."""


@cache
def _re2() -> tuple[Any, Any]:
    """The module and its options, imported on first use (a broker whose groups use no
    regex never pays for the import)."""
    import re2  # type: ignore[import-untyped]

    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    return re2, options


@lru_cache(maxsize=CACHE_SIZE)
def _compiled(pattern: str) -> Any:
    re2, options = _re2()
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else "invalid"
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise InvalidRegexError(str(detail)) from None


def check(pattern: str) -> None:
    """Raises InvalidRegexError when `pattern` does not compile."""
    _compiled(pattern)


def full_match(pattern: str, name: str) -> bool:
    """Whether `pattern` matches all of `name`; False for an invalid pattern."""
    try:
        return _compiled(pattern).fullmatch(name) is not None
    except InvalidRegexError:
        return False
