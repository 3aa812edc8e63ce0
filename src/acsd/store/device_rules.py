"""The rules of an operator's write of a device record, for both backends: what the record
must still hold, which MAC it keeps, what a new router brings, which row the write lands
on and the values it writes. Each backend reads and writes the rows in its own SQL and
asks these what to do in between."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from acsd.ids import is_id, new_id
from acsd.macs import mac_key
from acsd.store.base import (
    ChangedError,
    ConflictError,
    DeviceRecord,
    DuplicateError,
    MacChange,
)
from acsd.store.records import (
    AUDIT_AFTER,
    DEVICE_FIELDS,
    INSERT_COLUMNS,
    OPERATOR,
    ROUTER_FIELDS,
    column_value,
    dumps,
    serial_key,
)


def check_unchanged(current: DeviceRecord | None, expect: DeviceRecord) -> None:
    """ChangedError unless the record (``current``, as stored now) still holds the operator
    fields ``expect`` has."""
    if current is None:
        raise ChangedError(f"device {expect.id} was just deleted")
    if any(getattr(current, name) != getattr(expect, name) for name in OPERATOR):
        raise ChangedError(f"device {expect.id} was just changed")


def routers_own_holders(
    record: DeviceRecord, others: list[DeviceRecord], *, strict: bool
) -> list[str]:
    """The ids of the records that give up ``record``'s MAC: those of routers that only
    reported it of themselves (DeviceRecord.mac_is_routers_own), for the operator's word
    wins over a router's. ``strict``: ChangedError if another record has it otherwise
    (taken since the caller checked); else such records keep it too."""
    if strict and not all(other.mac_is_routers_own for other in others):
        raise ChangedError(f"MAC address {record.mac_address} was just taken")
    return [other.id for other in others if other.mac_is_routers_own]


def settle_stored_mac(
    record: DeviceRecord,
    change: MacChange,
    stored: tuple[str | None, bool] | None,
    *,
    new_router: bool,
    incoming: DeviceRecord | None,
) -> None:
    """``record``'s MAC on a "keep" or "remove" write, from ``stored`` (the MAC and its
    mac_from_router of the row the write lands on, None without one): "keep" as the row
    holds it; "remove" the same less an operator's MAC (a router's report of itself stays:
    its next session would fill it in again). On a router swap (``new_router``) a MAC the
    old router reported goes, and one the new router reported of itself (``incoming``, its
    unclaimed record, merged by take_router_fields) comes."""
    record.mac_address, record.mac_from_router = None, False
    if stored is not None:
        mac, from_router = stored
        if (from_router and not new_router) or (not from_router and change == "keep"):
            record.mac_address, record.mac_from_router = mac, from_router
    if (
        new_router
        and record.mac_address is None
        and incoming is not None
        and incoming.mac_from_router
        and incoming.mac_address
    ):
        record.mac_address, record.mac_from_router = incoming.mac_address, True


def router_to_merge(record: DeviceRecord, found: DeviceRecord | None) -> DeviceRecord:
    """The new router's unclaimed record (``found``: the other record of ``record``'s
    serial), or an empty one when it has not called in. A record an operator made is no
    router's own report to merge: its settings would go without a trace."""
    if found is None:
        return DeviceRecord(id="", serial_number="")
    if found.made_by_operator:
        raise DuplicateError(
            "serialNumber", f"serial number {record.serial_number!r} is device {found.id}"
        )
    return found


def take_router_fields(record: DeviceRecord, found: DeviceRecord) -> list[Any]:
    """``record`` with the reports, Connection Request URL and credentials of ``found`` (the
    new router's, or none); the column values of ROUTER_FIELDS to write."""
    for name in ROUTER_FIELDS:
        setattr(record, name, getattr(found, name))
    return [column_value(record, name) for name in ROUTER_FIELDS]


def upsert_target(record: DeviceRecord, by_id: str | None, by_serial: str | None) -> str | None:
    """The id of the row an upsert of ``record`` updates (found by its id, else by its
    serial number), None for a new row; ConflictError when the two are different rows."""
    if by_id is not None and by_serial is not None and by_id != by_serial:
        raise ConflictError(
            f"serial number {record.serial_number!r} already belongs to device {by_serial}"
        )
    return by_id or by_serial


def wanted_id(record: DeviceRecord) -> str | None:
    """The id the caller gave the record, when it is one (else the record has none yet)."""
    return record.id if record.id and is_id(record.id) else None


def update_values(record: DeviceRecord, now: float) -> list[Any]:
    """The values of an update of a stored record: operator fields replace; what the CPE
    reported stays as the CPE reported it. Then serial_key, mac_key and updated."""
    values = [column_value(record, name) for name in OPERATOR]
    return [*values, serial_key(record.serial_number), mac_key(record.mac_address), now]


def new_row(record: DeviceRecord, now: float) -> tuple[str, list[Any]]:
    """The id and the INSERT_COLUMNS values of a new row for ``record``."""
    target = wanted_id(record) or new_id()
    stored = DeviceRecord(**{name: getattr(record, name) for name in DEVICE_FIELDS})
    stored.id = target
    stored.created = record.created or now
    stored.updated = now
    return target, [column_value(stored, name) for name in INSERT_COLUMNS]


def audit_with_after(
    row: list[Any] | None,
    audit_after: Callable[[DeviceRecord], dict[str, Any]] | None,
    stored: DeviceRecord,
) -> list[Any] | None:
    """The audit row, with ``after`` from the stored record when the caller asked for it."""
    if row is None or audit_after is None:
        return row
    row = list(row)  # the call may be retried: never change the prepared values
    row[AUDIT_AFTER] = dumps(audit_after(stored))
    return row
