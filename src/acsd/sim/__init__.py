"""In-tree CPE simulator: many virtual routers speaking CWMP over real HTTP.

Public surface: :class:`Simulation` (run N routers), :class:`Summary`, :class:`Cpe` (one
router, with its :class:`RouterStats`), :func:`load_template` / :func:`list_templates` (the
profiles in ``sim/trees``).
"""

from acsd.sim.cpe import Cpe, FaultRecord, RouterStats
from acsd.sim.runner import Simulation, Summary
from acsd.sim.session import QUIRKS, SessionResult, parse_quirks, run_session
from acsd.sim.template import list_templates, load_template
from acsd.sim.tree import CwmpFault, Tree

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
