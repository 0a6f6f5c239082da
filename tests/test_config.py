"""Tests of broker configuration: Kafka property names, files, overrides and bad values."""

from __future__ import annotations

import pytest

from odradek.cli.main import load_config
from odradek.config import ConfigError, build_config, parse_listener, parse_properties


def test_defaults_match_the_readme() -> None:
    """With no settings the broker listens on 127.0.0.1:9092 with data in ./data."""
    config = build_config([])
    assert config.listeners == ("PLAINTEXT://127.0.0.1:9092",)
    assert config.log_dirs == ("./data",)
    assert config.num_partitions == 1
    assert config.auto_create_topics_enable is True
    assert config.message_max_bytes == 1048588
    assert config.socket_request_max_bytes == 100 * 1024 * 1024


def test_properties_file_and_overrides(tmp_path: object) -> None:
    """A properties file is read and --set overrides it."""
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "server.properties"
    path.write_text("# comment\nnum.partitions=4\nlog.dirs: /tmp/a,/tmp/b\n! other\n")
    config = load_config(str(path), ["num.partitions=6", "auto.create.topics.enable=false"])
    assert config.num_partitions == 6
    assert config.log_dirs == ("/tmp/a", "/tmp/b")
    assert config.auto_create_topics_enable is False


@pytest.mark.parametrize(
    "pair",
    [
        ("num.partitions", "zero"),
        ("num.partitions", "0"),
        ("auto.create.topics.enable", "yes"),
        ("log.message.timestamp.type", "WallClock"),
        ("console.listeners", "https://127.0.0.1:9095"),
        ("console.listeners", "http://127.0.0.1"),
        ("console.listeners", "http://127.0.0.1:port"),
    ],
)
def test_bad_values_are_refused(pair: tuple[str, str]) -> None:
    """A value of the wrong type or range is a ConfigError naming the property."""
    with pytest.raises(ConfigError, match=pair[0].replace(".", r"\.")):
        build_config([pair])


def test_unknown_names_are_kept_aside() -> None:
    """Unknown property names do not fail (Kafka ignores them too) but are reported."""
    assert build_config([("no.such.thing", "1")]).unknown == {"no.such.thing": "1"}


def test_properties_syntax_errors() -> None:
    """A line with no separator is an error with its line number."""
    with pytest.raises(ConfigError, match="line 2"):
        parse_properties("a=1\njunk\n")


def test_listener_parsing() -> None:
    """NAME://host:port splits into its parts; IPv6 brackets are removed."""
    assert parse_listener("PLAINTEXT://127.0.0.1:9092") == ("PLAINTEXT", "127.0.0.1", 9092)
    assert parse_listener("PLAINTEXT://[::1]:0") == ("PLAINTEXT", "::1", 0)
    with pytest.raises(ConfigError):
        parse_listener("127.0.0.1:9092")
