"""One copy of each parameter name for the whole process, in a table of bounded size.

The same few hundred names (``Device.DeviceInfo.UpTime``, ...) arrive from every CPE, and
the sessions held open, the read plans and the dicts keyed by names then share one string
each (dict look-ups compare by identity first). Not ``sys.intern``: since Python 3.12 an
interned string is never freed, and names are CPE input, so a CPE that invents a new name
in every message would grow the daemon's memory for as long as it runs.
"""

from __future__ import annotations

#: names kept; a table that fills up (CPEs of many shapes, or a hostile one) starts over
MAX_NAMES = 65_536

_names: dict[str, str] = {}

#: ``name``'s shared copy when the table has one, else None: share() without the call, for
#: the parser's loop over every parameter (the table is cleared, never replaced)
shared_lookup = _names.get


def share(name: str) -> str:
    """The process's copy of ``name`` (``name`` itself when it is new)."""
    found = _names.get(name)
    if found is None:
        if len(_names) >= MAX_NAMES:
            _names.clear()
        found = _names[name] = name
    return found


def shared_count() -> int:
    """How many names the table holds."""
    return len(_names)
