"""Migration 15 on both backends: APN devices stored with a CLI whose country code began
with zeros, ``(0045)12345678``, had another key than the same SIM written ``(+45)12345678``
(acsd.simkeys now drops those zeros), so one SIM could be registered twice. Their keys (and
MSISDNs, which a router's report is matched against) are made what the API computes now.

Two live devices of one API account that would then be one SIM are not merged: which one
is the SIM's is the operator's call. The step is refused, naming them, and runs again once
all but one are removed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from acsd.simkeys import parse_cli
from acsd.store.base import SchemaError

#: a live device that holds a key already (the other side of a collision)
HOLDER_SQL = "SELECT id, account, network, cli, cli_key FROM apn_devices WHERE end_date IS NULL"

#: the devices whose key may change: an MSISDN whose country code began with 0
CANDIDATES_SQL = (
    "SELECT id, account, network, cli, cli_key, end_date FROM apn_devices"
    " WHERE cli_key LIKE 'msisdn:0%'"
)


@dataclass(frozen=True, slots=True)
class Rekey:
    id: str
    account: str
    network: str
    cli: str
    live: bool
    key: str
    msisdn: str | None


def rekeys(rows: Iterable[Sequence[Any]]) -> list[Rekey]:
    """The devices among ``rows`` (:data:`CANDIDATES_SQL`) whose key is not the one their
    CLI has now."""
    out = []
    for device_id, account, network, cli, cli_key, end_date in rows:
        parsed = parse_cli(cli)
        if parsed is None or parsed[0] == cli_key:
            continue
        key, _, msisdn = parsed
        out.append(Rekey(device_id, account, network, cli, end_date is None, key, msisdn))
    return out


def refuse_collisions(changes: list[Rekey], holders: Iterable[Sequence[Any]]) -> None:
    """SchemaError naming the live devices that would share an account's key. ``holders``:
    the live devices (id, account, network, cli, cli_key) that hold a new key already."""
    changed = {c.id for c in changes}
    groups: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
    for c in changes:
        if c.live:
            groups.setdefault((c.account, c.key), {})[c.id] = (c.network, c.cli)
    for device_id, account, network, cli, cli_key in holders:
        if device_id not in changed and (account, cli_key) in groups:
            groups[(account, cli_key)][device_id] = (network, cli)
    clashes = [
        f"API account {account!r}: "
        + ", ".join(f"{i!r} (CLI {cli!r}, network {net!r})" for i, (net, cli) in sorted(g.items()))
        for (account, _), g in sorted(groups.items())
        if len(g) > 1
    ]
    if clashes:
        raise SchemaError(
            "APN devices that are one SIM once a country code's leading zeros are dropped "
            "((0045)12345678 is (+45)12345678); remove all but one of each with the acsd "
            "version that wrote them (DELETE .../devices/apns/{id}), then upgrade again: "
            + "; ".join(clashes)
        )
