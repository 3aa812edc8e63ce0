"""The PostgreSQL backend stands on the shared store modules, not on the SQLite backend: a
change to SQLite's statements or writer must not reach PostgreSQL by an import."""

from __future__ import annotations

import ast
from pathlib import Path

import acsd.store.postgres

_POSTGRES = Path(acsd.store.postgres.__file__).parent


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_postgres_backend_imports_nothing_of_the_sqlite_backend() -> None:
    offending = {
        path.name: sorted(name for name in _imported(path) if name.startswith("acsd.store.sqlite"))
        for path in sorted(_POSTGRES.glob("*.py"))
    }
    assert {name: found for name, found in offending.items() if found} == {}
