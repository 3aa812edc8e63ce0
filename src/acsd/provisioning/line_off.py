"""A static line acsd put on a router, taken off again once the router has no line.

A line leaves its router when the router's record is deleted and the line taken over by
the customer's replacement router (or ended), and when the router's record is made again
for another customer: the router still holds the line's address, which is another
router's now (or the provider's to hand out again). acsd takes off only a line it put on
the router itself, which its provisioning memory records (``staticLine``: the account,
the address, gateway and DNS servers it set, kept across the release of the router and
the claim of its unclaimed record); a static WAN the customer or the ISP set is never
touched. Going off, the router gets its DHCP client back (TR-181) or its WAN connection
back on DHCP (TR-098), and the line's own entries (its static address, default route and
DNS servers) go once DHCP is on; the additional range and failover go off as they would
for a line without them (only where acsd turned them on). A part the router refuses keeps
the memory, and the next session tries again: the entries go only after DHCP is on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from acsd.provisioning.plan import (
    LINE_SWITCH,
    STATIC_LINE,
    Change,
    Plan,
    group_of,
    line_rows,
    own_row_keys,
)
from acsd.provisioning.profiles import Profile
from acsd.store.base import Store

#: what a router whose line left it is asked for (the last two only where a line of
#: acsd's turned them on: ProvisioningDriver._leave_theirs_on)
LINE_OFF: dict[str, Any] = {
    LINE_SWITCH: False,
    "lan.extra.enable": False,
    "wan.failover.enable": False,
}
#: the line's key in STATIC_LINE once a session began taking it off and did not finish:
#: the rest goes even though its address is gone already
GOING = "going"
#: the job's note while a router's line is being taken off
NOTE = "the static line acsd set is taken off: no line of this device is in effect"
_GROUP = "wan.static."
#: the table of the line's address (TR-181: an entry of the WAN interface's)
_ADDRESS = "wan.static.address"


def stored(memory: Mapping[str, Any]) -> dict[str, Any] | None:
    """The memory's STATIC_LINE as sessions use it, or None (absent, or of another shape:
    a hand-edited row takes nothing off)."""
    line = memory.get(STATIC_LINE)
    if not isinstance(line, dict) or type(line.get("ip")) is not str:
        return None
    dns = line.get("dns")
    out = {
        "account": line.get("account") if type(line.get("account")) is str else None,
        "ip": line["ip"],
        "gateway": line.get("gateway") if type(line.get("gateway")) is str else None,
        "dns": [d for d in dns if type(d) is str] if type(dns) is list else [],
    }
    if line.get(GOING) is True:
        out[GOING] = True
    return out


def carried(memory: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a released router's unclaimed record keeps of its memory: that acsd's line is
    on it (and the switches acsd turned on with it), so that the line can still be taken
    off once it leaves the router, whoever claims the router then. None: nothing to keep."""
    line = stored(memory)
    if line is None:
        return None
    out: dict[str, Any] = {STATIC_LINE: line}
    if type(on := memory.get("switchedOn")) is list:
        out["switchedOn"] = list(on)
    return out


def remember(
    memory: dict[str, Any],
    settings: Mapping[str, Any],
    account: str | None,
    applied: Iterable[Change],
) -> None:
    """A session that asked for the static line: acsd's line is on the router once it set
    any of it (or it was acsd's already: its values follow the line's upgrades)."""
    if settings.get(LINE_SWITCH) is not True or type(settings.get("wan.static.ip")) is not str:
        return
    if STATIC_LINE not in memory and not any(group_of(c.setting) == _GROUP for c in applied):
        return  # (the router held it before: not known to be acsd's doing)
    # (the servers the router reported on DHCP, when none are configured: lineDns)
    dns = str(settings.get("wan.static.dns") or ",".join(memory.get("lineDns") or ()))
    memory[STATIC_LINE] = {
        "account": account,
        "ip": settings["wan.static.ip"],
        "gateway": settings.get("wan.static.gateway"),
        "dns": [d.strip() for d in dns.split(",") if d.strip()],
    }


async def waits_for_router(store: Store, line: Mapping[str, Any], customer: str | None) -> bool:
    """Whether the line ``line`` stays on the router though the router's record has none:
    the line names no router any more (its record was deleted) and no other router has
    taken it over yet, and the router is no other customer's (unclaimed, or the line's
    customer's again). Its customer is still on it until the replacement comes."""
    if not line.get("account"):
        return False
    account = await store.get_internet_account(line["account"])
    return (
        account is not None
        and account.state != "ENDED"
        and account.device is None
        and customer in (None, account.customer)
    )


def holds_line(profile: Profile, values: Mapping[str, str], line: Mapping[str, Any]) -> bool:
    """Whether the router still holds the line acsd set: its address (the static address
    entry, or the address of the WAN connection), or what is left of it after a session
    that began taking it off. A router that does not hold it any more had it taken off or
    replaced by hand, and what is there now is not acsd's to change."""
    if line.get(GOING):
        return True
    spec = profile.tables.get(_ADDRESS)
    if spec is not None and own_row_keys(spec, values) & line_rows(line)[_ADDRESS]:
        return True
    for target in profile.settings.get("wan.static.ip", ()):
        if values.get(target.path, "").strip() == line["ip"]:
            return True
    return False


def taken_off(plan: Plan, outcome_faulted: Iterable[Change], *, finished: bool) -> bool:
    """Whether a session that took the line off got all of it done: nothing of it refused,
    waiting for its back-off or left unsent (then the memory keeps the line, and the next
    session tries again)."""
    if not finished:
        return False
    entries = [*plan.waiting, *plan.failed, *plan.refused, *plan.unread, *plan.pending]
    settings = [e.get("setting", "") for e in entries] + [c.setting for c in outcome_faulted]
    return not any(group_of(s) == _GROUP for s in settings)
