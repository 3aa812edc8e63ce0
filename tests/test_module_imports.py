"""Every acsd module imports on its own: a circular import that only the daemon's or the
tests' import order happens to avoid breaks a plugin, a script or a REPL that imports the
module first (acsd.audit and the store's internet module imported each other once)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

# One interpreter for all modules (one per module would cost ~0.3 s each): acsd's modules
# are dropped from sys.modules before each import, so each one starts from nothing of
# acsd's, while the third-party libraries stay loaded.
_SCRIPT = """
import importlib, pkgutil, sys
import acsd
names = sorted(m.name for m in pkgutil.walk_packages(acsd.__path__, "acsd.")
               if not m.name.endswith(".__main__"))  # (runs the CLI)
failed = []
for name in names:
    for loaded in [m for m in sys.modules if m == "acsd" or m.startswith("acsd.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print(len(names))
print("\\n".join(failed))
"""


def test_every_module_imports_first() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    count, _, failed = done.stdout.partition("\n")
    assert int(count) > 50  # the walk found the package's modules
    assert failed.strip() == ""
