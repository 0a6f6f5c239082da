"""Kafka's JAAS configuration text (`sasl.jaas.config`): one login module entry,

    org.apache.kafka.common.security.plain.PlainLoginModule required
        username="admin" password="admin-secret" user_alice="alice-secret";

parsed into the module's class name and its options. Only the syntax matters here; which
options mean what is the mechanism's business (sasl_plain.py reads `user_NAME`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from odradek.config import ConfigError

FLAGS = ("required", "requisite", "sufficient", "optional")

_TOKEN = re.compile(r'\s*(?:(?P<quoted>"(?:[^"\\]|\\.)*")|(?P<word>[^\s=;"]+)|(?P<punct>[=;]))')


@dataclass(frozen=True, slots=True)
class JaasEntry:
    login_module: str
    flag: str
    options: dict[str, str] = field(default_factory=dict)


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ConfigError(f"invalid JAAS configuration near {text[pos : pos + 20]!r}")
        pos = match.end()
        if match["quoted"] is not None:
            # A quoted value: keep the marker so `=` and `;` inside stay values.
            tokens.append("\0" + re.sub(r"\\(.)", r"\1", match["quoted"][1:-1]))
        else:
            tokens.append(match["word"] or match["punct"])
    return tokens


def parse_jaas(text: str) -> JaasEntry:
    """One `LoginModule flag key=value ...;` entry; ConfigError for anything else."""
    tokens = _tokens(text)
    if len(tokens) < 3 or tokens[-1] != ";":
        raise ConfigError("invalid JAAS configuration: expected 'LoginModule flag options;'")
    module, flag, rest = tokens[0], tokens[1].lower(), tokens[2:-1]
    if flag not in FLAGS:
        raise ConfigError(f"invalid JAAS configuration: unknown control flag {tokens[1]!r}")
    if len(rest) % 3:
        raise ConfigError("invalid JAAS configuration: options must be key=value pairs")
    options: dict[str, str] = {}
    for i in range(0, len(rest), 3):
        key, equals, value = rest[i : i + 3]
        if equals != "=" or key.startswith("\0") or key in "=;":
            raise ConfigError(f"invalid JAAS configuration: bad option near {key!r}")
        options[key] = value.removeprefix("\0")
    if ";" in options.values():
        raise ConfigError("invalid JAAS configuration: one login module entry expected")
    return JaasEntry(module, flag, options)
