"""In-tree CPE simulator: many virtual routers speaking CWMP over real HTTP.

Public surface: :class:`Simulation` (run N routers), :class:`Summary`, :class:`Cpe` (one
router, with its :class:`RouterStats`), :func:`load_template` / :func:`list_templates` (the
profiles in ``sim/trees``).

Names are imported on first use: the ``acsd`` command imports :mod:`acsd.sim.args` for its
parser on every call, and must not pay for the HTTP client and the trees then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "Cpe": "cpe",
    "FaultRecord": "cpe",
    "RouterStats": "cpe",
    "Simulation": "runner",
    "Summary": "runner",
    "QUIRKS": "quirks",
    "parse_quirks": "quirks",
    "SessionResult": "session",
    "run_session": "session",
    "list_templates": "template",
    "load_template": "template",
    "CwmpFault": "tree",
    "Tree": "tree",
}

__all__ = [
    "QUIRKS",
    "Cpe",
    "CwmpFault",
    "FaultRecord",
    "RouterStats",
    "SessionResult",
    "Simulation",
    "Summary",
    "Tree",
    "list_templates",
    "load_template",
    "parse_quirks",
    "run_session",
]

if TYPE_CHECKING:
    from acsd.sim.cpe import Cpe, FaultRecord, RouterStats
    from acsd.sim.quirks import QUIRKS, parse_quirks
    from acsd.sim.runner import Simulation, Summary
    from acsd.sim.session import SessionResult, run_session
    from acsd.sim.template import list_templates, load_template
    from acsd.sim.tree import CwmpFault, Tree


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'acsd.sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"acsd.sim.{module}"), name)
    globals()[name] = value  # once: later lookups do not come back here
    return value
