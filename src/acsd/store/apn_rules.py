"""The rules of the APN API's records (seed 003), for both backends: a new device's id and
dates, the SIM that is already in a network, the operation a write records and the refusal
of a network of no account. Each backend reads and writes the rows in its own SQL (and
locks) and asks these what to do in between."""

from __future__ import annotations

from dataclasses import replace

from acsd.ids import new_id
from acsd.simkeys import sim_keys
from acsd.store.base import (
    ApnAccountRecord,
    ApnDeviceRecord,
    ApnOperationRecord,
    ConflictError,
    DeviceRecord,
    DuplicateError,
)
from acsd.store.records import dumps


def prepared_device(record: ApnDeviceRecord) -> ApnDeviceRecord:
    """A device to create, with its id; metadata that is not JSON fails here, in the caller."""
    record = replace(record, id=record.id or new_id())
    if record.metadata is not None:
        dumps(record.metadata)
    return record


def stamped_account(account: ApnAccountRecord, now: float) -> ApnAccountRecord:
    return replace(account, created=account.created or now)


def stamped_device(record: ApnDeviceRecord, now: float) -> ApnDeviceRecord:
    """The device as created: it starts, and is made, now unless the caller said when."""
    return replace(
        record,
        start_date=record.start_date or now,
        created=record.created or now,
        updated=now,
    )


def no_account(account: str) -> ConflictError:
    """A network (or a device's) of an account that does not exist."""
    return ConflictError(f"APN account {account!r} does not exist")


def check_sim_free(name: str, taken: str | None) -> None:
    """A SIM is in one network of an account at a time: in two, both devices took its
    router's reports and its APN came from whichever was created first. ``taken``: the
    network of a live device of the account with the same ``name`` (CLI, SIMNumber)."""
    if taken is not None:
        raise DuplicateError(name, f"{name} is already in use in network {taken!r}")


def recorded(operation: ApnOperationRecord, resource_id: str) -> ApnOperationRecord:
    """The operation a write records, about the device written unless it names another."""
    return replace(operation, resource_id=operation.resource_id or resource_id)


def changed_device(current: ApnDeviceRecord, new: ApnDeviceRecord, now: float) -> ApnDeviceRecord:
    """The device an update writes: the change's record, as the stored one, updated now."""
    return replace(new, id=current.id, updated=now)


def new_apn_name(before: str | None, after: str | None) -> bool:
    """A network's APN name that its routers have yet to take: a name other than the one
    they were given (None stops the push: nothing new goes to them)."""
    return after is not None and after != before


#: the routers a network's new APN name may go to, as add_apn_name finds them: those that
#: the network's live, enabled devices last saw their SIM in, whose record names the account
#: as its mvnoAccount and that are not being released (placeholders: the account, the
#: network; each backend writes them in its own form). routers_due picks among them.
ROUTERS_OF_NETWORK = (
    "state != 'DELETING' AND mvno_account = {0} AND id IN (SELECT router FROM apn_devices"
    " WHERE account = {0} AND network = {1} AND end_date IS NULL AND enabled = 1"
    " AND router IS NOT NULL)"
)
#: those devices, the SIM of each to be looked for in its router (routers_due)
DEVICES_OF_NETWORK = (
    "WHERE account = {0} AND network = {1} AND end_date IS NULL AND enabled = 1"
    " AND router IS NOT NULL"
)
#: StatusValues refused (acsd.provisioning.apn.REFUSED): the SIM is locked to another modem
_REFUSED = 2


def routers_due(routers: list[DeviceRecord], devices: list[ApnDeviceRecord]) -> list[str]:
    """The ids of the ``routers`` that a network's new APN name is a job of: those that hold
    the SIM of one of the network's ``devices`` (as their last session reported it) in a
    modem the SIM is not refused in. A router whose SIM was taken out, or whose modem the
    IMEI lock refuses, is sent no APN (add_apn_name): a job there would only be a
    Connection Request and a session that can do nothing, closed as done; it takes the
    name, if due, at the session that reports the SIM back (a job then, see
    apn_due) or in the right modem."""
    due = []
    for router in routers:
        held = sim_keys(router.sim) if router.sim is not None else None
        for device in devices:
            if device.router != router.id or device.status == _REFUSED:
                continue
            mine = {"imsi": device.imsi, "iccid": device.iccid, "msisdn": device.msisdn}
            # a record from before acsd kept SIM numbers holds them in its tree only: as
            # before, the job goes (its session looks the SIM up)
            if held is None or any(v and held[k] == v for k, v in mine.items()):
                due.append(router.id)
                break
    return due


#: a router's job of a new APN name: a new revision (a session already under way cannot mark
#: it ACTIVE on the old one), PROVISIONING until a session sets it (SET clause, both backends)
NEW_JOB = "revision = revision + 1, state = 'PROVISIONING', jobs = 1"
