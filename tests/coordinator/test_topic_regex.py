"""KIP-848 subscription regexes are RE2: Kafka's syntax, invalid patterns refused with a
message, and matching in linear time, so a pattern that makes a backtracking engine run
for ever against a long topic name is answered at once."""

from __future__ import annotations

import re

import pytest

from odradek.coordinator import topic_regex


@pytest.mark.parametrize("pattern", ["(", "[a-", "*", "a{2,1}", "(?<name", "\\"])
def test_invalid_patterns_are_refused_with_a_message(pattern: str) -> None:
    with pytest.raises(topic_regex.InvalidRegexError) as raised:
        topic_regex.check(pattern)
    assert str(raised.value)
    assert not topic_regex.full_match(pattern, "rides")


def test_full_match_as_kafka() -> None:
    """The whole name must match (Kafka's `matcher.matches()`), not a prefix."""
    assert topic_regex.full_match("rides-.*", "rides-eu")
    assert not topic_regex.full_match("rides", "rides-eu")
    assert topic_regex.full_match("rides|trips", "trips")
    assert not topic_regex.full_match("rides-.*", "my-rides-eu")


def test_a_catastrophic_pattern_matches_in_linear_time() -> None:
    """`(t+)+x` against 200,000 t's: exponential for a backtracking engine (Python's `re`
    needs seconds already at 25 characters), immediate for RE2. Runs under the suite's
    per-test timeout, which a backtracking engine would never meet."""
    name = "t" * 200_000
    assert not topic_regex.full_match("(t+)+x", name)
    assert topic_regex.full_match("(t+)+", name)
    assert re.fullmatch("(t+)+", "t" * 10)  # the same syntax means the same thing
