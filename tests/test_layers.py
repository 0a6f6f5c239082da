"""Imports go one way: each layer of the package may import only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "odradek"
# Lowest first. Top-level modules (clock, config) form the base layer.
LAYERS = [
    "base",
    "protocol",
    "storage",
    "metadata",
    "replication",
    "coordinator",
    "security",
    "handlers",
    "server",
    "console",
    "cli",
]
# The only imports of odradek.testing allowed in the package: `odradek cluster up` runs
# ZooKeeper and brokers with the process runners the cluster tests use, so they are
# part of the product (docs/architecture.md, "Layers").
TESTING_IMPORTS_ALLOWED = {
    "odradek.cli.cluster_up": {"odradek.testing.cluster", "odradek.testing.zookeeper"},
}


def _layer(module: str) -> str | None:
    """The layer of `odradek.x.y`, or None for `testing` (which may import anything)."""
    parts = module.split(".")
    if parts[0] != "odradek":
        return "external"
    if len(parts) == 1 or parts[1] in ("clock", "config"):
        return "base"
    if parts[1] == "testing":
        return None
    if parts[1] == "__main__":
        return "cli"
    return parts[1]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_imports_only_go_downwards() -> None:
    """No module imports a layer above its own, and nothing imports odradek.testing
    except the process runners `odradek cluster` is built on."""
    problems = []
    for path in SRC.rglob("*.py"):
        module = "odradek." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        own = _layer(module)
        for imported in _imports(path):
            target = _layer(imported)
            if target == "external" or own is None:
                continue
            if target is None and imported in TESTING_IMPORTS_ALLOWED.get(module, ()):
                continue
            if target is None:
                problems.append(f"{module} imports odradek.testing")
            elif LAYERS.index(target) > LAYERS.index(own):
                problems.append(f"{module} ({own}) imports {imported} ({target})")
    assert problems == []
