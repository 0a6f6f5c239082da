"""`ssl.principal.mapping.rules`: Kafka's rules turning a client certificate's subject
into a principal name.

The subject is the distinguished name in RFC 2253 form (`CN=alice,OU=eng,O=acme`, most
specific first, as Java's X500Principal prints it). Rules are tried in order; the first
whose pattern matches the whole name gives the result:

    RULE:^CN=([^,]+),OU=eng.*$/$1/L, RULE:^CN=(.*?),.*$/$1/, DEFAULT

`RULE:pattern/replacement/` with an optional `L` (lower case) or `U` (upper case) after
the last slash; `DEFAULT` is the whole name unchanged. No rule matching is an error, as
in Kafka (the connection is refused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from odradek.config import ConfigError

# One rule, as Kafka's parser reads it: slashes inside a part are escaped with `\`.
_RULE = re.compile(
    r"\s*(?:(?P<default>DEFAULT)|RULE:(?P<pattern>(?:\\.|[^\\/])*)/"
    r"(?P<replacement>(?:\\.|[^\\/])*)/(?P<case>[LU]?))\s*(?:,|$)"
)


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str] | None  # None: DEFAULT
    replacement: str = ""
    case: str = ""

    def apply(self, name: str) -> str | None:
        if self.pattern is None:
            return name
        if self.pattern.fullmatch(name) is None:
            return None
        result = self.pattern.sub(self.replacement, name)
        if self.case == "L":
            return result.lower()
        if self.case == "U":
            return result.upper()
        return result


def _python_replacement(java: str) -> str:
    """Java's `$1` group references as Python's `\\g<1>`; `\\/` as `/`."""
    text = java.replace("\\/", "/").replace("\\", "\\\\")
    return re.sub(r"\$(\d+)", r"\\g<\1>", text)


class PrincipalMapper:
    """Parsed rules; `map(subject)` is the principal's name."""

    def __init__(self, rules: str) -> None:
        self._rules: list[_Rule] = []
        text = rules.strip() or "DEFAULT"
        position = 0
        while position < len(text):
            match = _RULE.match(text, position)
            if match is None or match.end() == position:
                raise ConfigError(f"invalid ssl.principal.mapping.rules near {text[position:]!r}")
            position = match.end()
            if match["default"]:
                self._rules.append(_Rule(None))
                continue
            try:
                pattern = re.compile(match["pattern"].replace("\\/", "/"))
            except re.error as exc:
                raise ConfigError(f"invalid ssl.principal.mapping.rules pattern: {exc}") from None
            replacement = _python_replacement(match["replacement"])
            self._rules.append(_Rule(pattern, replacement, match["case"]))

    def map(self, subject: str) -> str:
        for rule in self._rules:
            result = rule.apply(subject)
            if result is not None:
                return result
        raise ValueError(f"no ssl.principal.mapping.rules rule matches {subject!r}")
