"""A configuration the router lost without saying so, told by its ParameterKey.

acsd writes the record's revision as the ParameterKey of every SetParameterValues,
AddObject and DeleteObject, and TR-069 has the CPE set it with the values they carry
and report it in every Inform. A router that reported the key acsd last wrote once,
and now reports another (its factory default, usually ""), has lost what acsd wrote: a
factory reset whose BOOTSTRAP session acsd could not save (the database was down), a
reset the firmware does not announce with BOOTSTRAP, a configuration backup restored.
Its session is then provisioned as a BOOTSTRAP's is: everything written again, the
secrets acsd believed held among it.

Only a router that has echoed a written key is judged so: firmware that never updates
its ParameterKey, or reports it only after a reboot, would otherwise be "reset" at
every session. Memory entry ``parameterKey``: ``{"written": KEY | None, "echoed": bool}``,
absent until acsd writes.
"""

from __future__ import annotations

from typing import Any

MEMORY_KEY = "parameterKey"


def stored(memory: dict[str, Any] | None) -> dict[str, Any] | None:
    """The entry of a stored memory, None when absent or of another shape."""
    entry = (memory or {}).get(MEMORY_KEY)
    if type(entry) is not dict:
        return None
    written = entry.get("written")
    if written is not None and type(written) is not str:
        return None
    return {"written": written, "echoed": entry.get("echoed") is True}


def lost_writes(memory: dict[str, Any] | None, reported: str | None) -> bool:
    """Whether the router, reporting ParameterKey ``reported`` (None: not in its Inform),
    has lost what acsd wrote, by the stored memory."""
    entry = stored(memory)
    if entry is None or reported is None or entry["written"] is None:
        return False
    return entry["echoed"] and reported != entry["written"]


def echoed(memory: dict[str, Any], reported: str | None) -> None:
    """The Inform reported ``reported``: remember that this router echoes acsd's key."""
    entry = memory.get(MEMORY_KEY)
    if entry is not None and entry["written"] is not None and reported == entry["written"]:
        entry["echoed"] = True


def written(memory: dict[str, Any], key: str | None) -> None:
    """The router applied a write that carried ``key`` (None: whether it did is unknown,
    a write it got but never answered, or applies only after a reboot)."""
    if key is None and MEMORY_KEY not in memory:
        return
    entry = memory.setdefault(MEMORY_KEY, {"written": None, "echoed": False})
    entry["written"] = key
