"""The rules of internet accounts' lines (seed 002), for both backends: who may have a line,
which lines a confirm finds in its way, and the confirmed line. Each backend reads and
writes the rows in its own SQL (and locks) and asks these what to do in between."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from acsd.ids import new_id
from acsd.store.addresses import address_clash
from acsd.store.base import (
    AuditRecord,
    ConflictError,
    DuplicateError,
    InternetAccountRecord,
    LaterLineError,
    StateError,
)


def check_device_takes_lines(device_id: str, state: str | None) -> None:
    """A new line's router must still be there (``state``: its record's, read in the
    write's transaction; None when it was deleted since the caller read it)."""
    if state is None or state == "DELETING":
        raise StateError(f"device {device_id} is being deleted")


def ordered(account_id: str, account: InternetAccountRecord | None) -> InternetAccountRecord:
    """The line a confirm is for: KeyError when there is none, StateError unless ORDERED."""
    if account is None:
        raise KeyError(account_id)
    if account.state != "ORDERED":
        raise StateError(f"internet account {account_id} is {account.state}, not ORDERED")
    return account


def to_end(
    account_id: str, account: InternetAccountRecord | None, now: float
) -> tuple[InternetAccountRecord, bool]:
    """The line end_internet_account is for, and whether it ends it (False: it is ENDED
    already, returned as it is, nothing written): KeyError when there is none, StateError
    when it names a router and has started (the router holds its line: a later line ends
    it). One that has not started (ORDERED, or CONFIRMED for a later date) reached no
    router yet and is withdrawn: else a wrong start date would stand in the way of every
    later line of the router (each must start after it) until the router's record went."""
    if account is None:
        raise KeyError(account_id)
    if account.state == "ENDED":
        return account, False
    if account.device is not None and account.effective_state(now) == "ACTIVE":
        raise StateError(f"internet account {account_id} is the line of router {account.device}")
    return account, True


def given_way(rows: Sequence[Sequence[Any]], ip_address: str, confirm: dict[str, Any]) -> list[str]:
    """The ids of the customer's routerless lines (``rows``: id, the address it was
    confirmed with, router, lanNet, lanSubnet) that give way to a confirmed line for a
    router: a line names its router only when ordered, so that is how a line moves to a
    replacement router. Those whose addresses the new line leaves alone are kept. The
    address is the line's own, not its claim: a line in use whose upgrade keeps the
    address handed the claim to the upgrade, and gives way with it."""
    # (its gateway aside: a line whose address is the new one's gateway is in its way, a
    # 409 of check_claims, not a line it takes over)
    net = {k: v for k, v in confirm.get("net", {}).items() if k != "gateway"}
    return [
        row[0]
        for row in rows
        if row[1] == ip_address or address_clash(ip_address, net, None, [row]) is not None
    ]


def check_address_free(ip_address: str, taken: str | None) -> None:
    """``taken``: another live line with the address, the router's own lines aside (the new
    one must start after them and ends them when it does, so an upgrade keeps its address)."""
    if taken is not None:
        raise ConflictError(f"{ip_address} is the address of internet account {taken}")


def check_claims(
    ip_address: str,
    confirm: dict[str, Any],
    device: str | None,
    others: Sequence[Sequence[Any]],
) -> None:
    """DuplicateError when the address, the gateway or the additional range clashes with
    another line's claim (``others``: every other confirmed line's id, address, router,
    range, gateway)."""
    clash = address_clash(ip_address, confirm.get("net", {}), device, others)
    if clash is not None:
        raise DuplicateError(*clash)


def check_starts_last(device: str, later: str | None) -> None:
    """The router applies the line that started last: one that starts no later than another
    of its lines (``later``) would be "active" and never reach it."""
    if later is not None:
        raise LaterLineError(
            f"device {device} already has internet account {later}, "
            "taking effect at the same time or later: a new line must start after it"
        )


def confirmed(
    account: InternetAccountRecord,
    *,
    encoded: str,
    start_date: float,
    ip_address: str,
    now: float,
    replaces: str | None = None,
) -> InternetAccountRecord:
    """The line as its confirm stores it (``encoded``: the confirm body as stored): ACTIVE
    from its start date on, CONFIRMED before; ``replaces``: the router's line it takes over
    from (see :func:`replaced_lines`)."""
    return replace(
        account,
        state="ACTIVE" if start_date <= now else "CONFIRMED",
        confirm=json.loads(encoded),
        start_date=start_date,
        ip_address=ip_address,
        updated=now,
        replaces=replaces,
    )


#: why an Internet line was ENDED, as its ``internet.end`` entry says it (``after.reason``)
LINE_END_REASONS = {
    "superseded": "a later line of the same router took effect",
    "taken_over": "the customer's line for a router took its addresses (its router's record "
    "was deleted, or it was ordered without one)",
    "ended": "ended by an operator",
}


def line_ended(
    line: Sequence[Any],
    *,
    reason: str,
    now: float,
    replaced_by: str | None = None,
    author: AuditRecord | None = None,
) -> AuditRecord:
    """The ``internet.end`` entry of a line the store ends: ``line`` is its id, customer,
    device, state, start date, and the confirmed address and additional range (None where
    it has none); ``author`` the entry of the write that ended it (whose token and request
    it names), None for acsd's own activation at a start date."""
    line_id, customer, device, state, start_date, ip_address, lan_net, lan_subnet = line
    if state == "CONFIRMED" and start_date is not None and start_date <= now:
        state = "ACTIVE"  # as the API shows it (InternetAccountRecord.effective_state)
    before = {"state": state, "device": device, "ipAddress": ip_address}
    if lan_net is not None:
        before |= {"lanNet": lan_net, "lanSubnet": lan_subnet}
    after: dict[str, Any] = {"state": "ENDED", "reason": reason,
                             "description": LINE_END_REASONS[reason]}  # fmt: skip
    if replaced_by is not None:
        after["replacedBy"] = replaced_by
    return AuditRecord(
        id=new_id(),
        at=now,
        action="internet.end",
        resource="internet_account",
        resource_id=line_id,
        token_id=author.token_id if author else None,
        token_name=author.token_name if author else "internet activation",
        role=author.role if author else None,
        customer=customer,
        before=before,
        after=after,
        request_id=author.request_id if author else None,
    )


async def replaced_lines(
    line_id: str,
    replaces: str | None,
    fetch: Callable[[str], Awaitable[Sequence[Any] | None]],
    now: float,
) -> list[tuple[Any, ...]]:
    """The lines that a line naming no router ends at its start, as an ``internet.end``
    row each (see line_ended): those it was confirmed to replace, when its
    router's record was deleted before it started (neither names the router any more, so
    its router's lines cannot be found through it). ``replaces``: the line it names as
    replaced; ``fetch(id)``: that line's ``internet.end`` row followed by the line it
    names in turn, None if there is none.

    Every line names the router's line that started last before it, so following them
    finds each line the router had before. Lines that ended already (taken over, ended by
    an operator, superseded) are passed through: the ones behind them may still be live.
    A line that names a router is that router's to end, and so is everything behind it."""
    out: list[tuple[Any, ...]] = []
    seen = {line_id}
    while replaces is not None and replaces not in seen:
        seen.add(replaces)
        row = await fetch(replaces)
        if row is None or row[2] is not None:
            break
        line = tuple(row)
        state, start_date = line[3], line[4]
        if state in ("CONFIRMED", "ACTIVE") and start_date is not None and start_date <= now:
            out.append(line[:8])
        replaces = line[8]
    return out
