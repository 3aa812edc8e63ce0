"""The house rules of architecture.md §1 that a grep can hold: `cwmp/` does not import
`store/` or `api/` (the session engine gets what it needs through a small interface), and
`provisioning/` does not import aiohttp. A new import that breaks one fails here, naming
the file and line, before it becomes the next engineer's coupling."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "acsd"

RULES = {
    "cwmp": ("acsd.store", "acsd.api"),
    "provisioning": ("aiohttp",),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``, lazy ones inside functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("folder", sorted(RULES))
def test_a_package_imports_nothing_its_rule_forbids(folder: str) -> None:
    forbidden = RULES[folder]
    broken = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {module}"
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for line, module in _imports(path)
        if module in forbidden or module.startswith(tuple(f"{f}." for f in forbidden))
    ]
    assert not broken, f"{folder}/ must not import {', '.join(forbidden)}: {broken}"
