"""Operator writes to device records: create or update from a seed-000 body.

Used by ``acsd device apply`` and, later, by the REST API, so both bump revisions and
start provisioning the same way.
"""

from __future__ import annotations

import copy
from typing import Any

from acsd.models import DeviceInput
from acsd.provisioning.plan import mac_key
from acsd.store.base import DeviceRecord, Store


def _desired_part(wifi: dict[str, Any] | None, dhcp: dict[str, Any] | None) -> Any:
    """What the router must hold; reservation ids are the router's, not the operator's."""
    dhcp = copy.deepcopy(dhcp)
    for client in (dhcp or {}).get("reservedClients") or []:
        client.pop("id", None)
    return wifi, dhcp


def desired_changed(
    wifi: dict[str, Any] | None,
    dhcp: dict[str, Any] | None,
    old_wifi: dict[str, Any] | None,
    old_dhcp: dict[str, Any] | None,
) -> bool:
    """Whether the router must be told something new (a new revision)."""
    return _desired_part(wifi, dhcp) != _desired_part(old_wifi, old_dhcp)


def keep_reservation_ids(new: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
    if not new or not old:
        return
    known = {
        mac_key(c["mac"]): c.get("id") for c in old.get("reservedClients") or [] if c.get("id")
    }
    for client in new.get("reservedClients") or []:
        if not client.get("id") and mac_key(client["mac"]) in known:
            client["id"] = known[mac_key(client["mac"])]


async def apply_device(store: Store, body: DeviceInput) -> DeviceRecord:
    """Create the record, or update the one with the same serial number. A change to what
    the router should hold bumps the revision and puts the device in PROVISIONING."""
    data = body.model_dump(exclude_none=True)
    wifi = data.get("wifi")
    dhcp = data.get("dhcp")
    record = await store.find_device_for_cpe(body.serialNumber)
    if record is None:
        record = DeviceRecord(id="", serial_number=body.serialNumber)
        changed = bool(wifi or dhcp)
    else:
        keep_reservation_ids(dhcp, record.dhcp)
        changed = desired_changed(wifi, dhcp, record.wifi, record.dhcp)
    record.name = body.name
    record.model = body.model
    record.customer = body.customer
    record.mac_address = body.macAddress or record.mac_address
    record.mvno_account = body.mvnoAccount
    record.notes = body.notes
    record.wifi = wifi
    record.dhcp = dhcp
    if body.driftCheck is not None:
        record.drift_check = body.driftCheck
    if changed:
        record.revision += 1
        record.state = "PROVISIONING"
        record.jobs = 1
    return await store.upsert_device(record)
