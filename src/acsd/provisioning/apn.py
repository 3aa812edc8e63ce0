"""APN devices (seed 003) meet CWMP sessions.

A mobile router reports its modem and SIM (IMEI, IMSI, ICCID, MSISDN) through its
profile's ``identity`` paths. The APN device with that SIM (matched on IMSI, ICCID or
MSISDN; the API's CLI is an MSISDN or an IMSI, its SIMNumber the ICCID) learns from every
session of that router:

- NetworkStatus connected while the modem is attached (disconnected when it is not, or
  when the router it was last seen in reports another SIM),
  LastConnected_Start (when the modem attached), LastConnected_End (the last session that
  saw it attached), LastConnected_MCC/MNC and LastSync;
- with LockIMEI and no IMEI yet, the modem's IMEI is recorded. A later session that
  reports the same SIM in another modem is refused: NetworkStatus disconnected, Status
  refused, the refused IMEI kept beside the recorded one (never over it), and one audit
  entry per refused modem.

And the other way: a network with an APN name (an acsd extension of the API) has it pushed
to every router whose SIM belongs to one of its devices (abstract setting ``apn.name``).

The session engine calls :func:`add_apn_name` while it works out the desired settings and
:func:`record_apn_session` after it has committed the session; the latter is a second,
small write (one per matched APN device), so a session that crashes between the two
loses only the APN device's status, which the next session brings back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from acsd.ids import new_id
from acsd.log import Once, get_logger
from acsd.provisioning.desired import Desired
from acsd.provisioning.jobs import APN_SET
from acsd.provisioning.profiles import Profile, ProfileSet
from acsd.provisioning.status import extract_identity, untyped
from acsd.simkeys import digits, msisdn_key, sim_keys
from acsd.store.base import (
    ApnDeviceRecord,
    AuditRecord,
    DeviceRecord,
    Store,
    log_store_failure,
)

log = get_logger("acsd.apn")

# StatusValues (acsd's; the seed names only "pending" = 0)
PENDING, ACTIVE, REFUSED, DELETED = 0, 1, 2, 3
STATUS_VALUES = {"pending": PENDING, "active": ACTIVE, "refused": REFUSED, "deleted": DELETED}
# NetworkStatusValues and ActorStatusValues (seed 003)
DISCONNECTED, CONNECTED, ACTIVATION = 0, 1, 10
NETWORK_STATUS_VALUES = {"disconnected": 0, "connected": 1, "activation": 10}
ACTOR_STATUS_VALUES = {"stable": 0, "pending": 1, "stalled": 10}

# Mobile country codes whose networks have three-digit MNCs (ITU-T E.212 assignments:
# North America and the Caribbean, Mexico, India's 405 series, parts of Latin America).
# Elsewhere the MNC has two digits.
_MNC3 = frozenset(
    {"302", "310", "311", "312", "313", "314", "315", "316", "334", "338", "342", "344",
     "346", "348", "350", "352", "354", "356", "358", "360", "365", "366", "376", "405",
     "708", "710", "722", "732"}
)  # fmt: skip
#: networkType codes (seed 000) that mean the modem is attached to a network
_ATTACHED = frozenset({2, 4, 8, 16, 32})


def plmn(imsi: str | None) -> tuple[str | None, str | None]:
    """(MCC, MNC) of the SIM's home network, from its IMSI."""
    if not imsi or len(imsi) < 6:
        return None, None
    mcc = imsi[:3]
    return mcc, imsi[3 : 6 if mcc in _MNC3 else 5]


@dataclass(frozen=True, slots=True)
class SimReport:
    """What one session said about the router's modem, SIM and radio."""

    at: float
    router: str
    serial: str
    imei: str | None = None
    imsi: str | None = None
    iccid: str | None = None
    msisdn: str | None = None
    mcc: str | None = None
    mnc: str | None = None
    attached: bool = False
    #: seconds since the modem attached, when it is
    connection_time: int | None = None
    #: the router record's mvnoAccount (see _whose)
    mvno_account: str | None = None
    #: the SIM is not the one the router's record held after its last session (or none
    #: was held): APN devices last seen in this router may have left it
    sim_changed: bool = True
    #: the session read where the SIM numbers come from: none among them means the router
    #: has no SIM (taken out, or the modem unplugged), not that they went unread
    sim_read: bool = False

    @property
    def keys(self) -> dict[str, str | None]:
        return {"imsi": self.imsi, "iccid": self.iccid, "msisdn": self.msisdn}


def sim_report(
    ident: Mapping[str, Any],
    status: Mapping[str, Any],
    *,
    at: float,
    router: str,
    serial: str,
    mvno_account: str | None = None,
    sim_changed: bool = True,
    sim_read: bool = False,
) -> SimReport:
    imsi = digits(ident.get("imsi"))
    home_mcc, home_mnc = plmn(imsi)
    network_type = _int(status.get("networkType"))  # seed codes, reported as text
    connection_time = _int(status.get("connectionTime"))
    return SimReport(
        at=at,
        router=router,
        serial=serial,
        imei=digits(ident.get("imei")),
        imsi=imsi,
        iccid=digits(ident.get("iccid")),
        msisdn=msisdn_key(ident.get("msisdn")),
        # the serving network where the firmware says (vendor profiles), else the home one
        mcc=digits(ident.get("mcc")) or home_mcc,
        mnc=digits(ident.get("mnc")) or home_mnc,
        attached=network_type in _ATTACHED
        or (network_type is None and connection_time is not None),
        connection_time=connection_time,
        mvno_account=mvno_account,
        sim_changed=sim_changed,
        sim_read=sim_read,
    )


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


#: Meta.RefusedIMEI of a locked SIM in a modem that reported no IMEI at all
NO_IMEI = "none reported"


def _whose(
    devices: list[ApnDeviceRecord], serial: str, mvno_account: str | None, *, say: bool = False
) -> list[ApnDeviceRecord]:
    """The live APN devices of a router's SIM that may steer it: those of the API account
    its record names as its ``mvnoAccount`` (seed 000: "MVNO account that it is linked
    to"), none for a router whose record names no API account. SIM numbers alone bind
    nothing: any account could register another tenant's IMSI or MSISDN and so set that
    router's APN and read its IMEI. ``say``: log a SIM that APN devices name on a router
    they do not steer (once a session: the operator may have forgotten the mvnoAccount)."""
    mine = [device for device in devices if mvno_account and device.account == mvno_account]
    if devices and not mine and say:
        log.info(
            "apn.router_not_bound",
            serial=serial,
            mvno_account=mvno_account,
            accounts=_names(devices),
        )
    return mine


def _names(devices: list[ApnDeviceRecord]) -> list[str]:
    return sorted({device.account for device in devices})


def locked_out(device: ApnDeviceRecord, imei: str | None) -> bool:
    """The SIM is locked to another modem than the one it is in: one of another IMEI than
    the recorded one, or one that reports none (it cannot prove it is the locked one, nor
    be recorded as the first: until a modem that says its IMEI takes the lock, none is
    let on)."""
    if not device.lock_imei:
        return False
    return imei != device.imei if device.imei else not imei


#: desired.apn_imei of a lock no modem has taken yet: the first that says its IMEI takes it
FIRST_TO_SAY = "*"


def apn_refused_here(desired: Desired, ident: Mapping[str, Any]) -> bool:
    """The APN in ``desired`` is for a SIM locked to another modem than the one whose
    identity the session read (the Inform seldom carries the IMEI, so add_apn_name cannot
    always tell), or, for a lock not taken yet, to a modem that says no IMEI: the APN
    device is refused after this session, and no APN goes there."""
    if desired.apn_imei is None:
        return False
    read = digits(ident.get("imei"))
    return not read if desired.apn_imei == FIRST_TO_SAY else read != desired.apn_imei


def apn_for_another_sim(desired: Desired, ident: Mapping[str, Any]) -> bool:
    """The APN in ``desired`` was looked up for the SIM the router held when last seen (the
    Inform seldom carries the SIM numbers), and the session read another SIM: one of
    another carrier, whose APN the router may have taken by itself. Sent anyway, the old
    SIM's APN would cut that router off; the next session looks it up for the new SIM."""
    if desired.apn_sim is None:
        return False
    now = sim_keys(ident)
    both = [key for key in SIM_KEYS if now[key] and desired.apn_sim.get(key)]
    return any(now[key] != desired.apn_sim[key] for key in both)


def apn_not_withdrawn(desired: Desired, profile: Profile, flat: Mapping[str, Any]) -> bool:
    """The fallback in ``desired`` takes back a name acsd set (``apn_withdrawn``), and the
    session read another one on the router (the customer's, set since the last read): that
    one stays."""
    if desired.apn_withdrawn is None:
        return False
    targets = profile.settings.get("apn.name", ())
    return any(t.path in flat and flat[t.path] != desired.apn_withdrawn for t in targets)


def _ranked(devices: list[ApnDeviceRecord], keys: Mapping[str, str | None]) -> list[Any]:
    """IMSI matches first (the SIM itself), then ICCID (the card), then MSISDN (a number
    that can be ported to another SIM)."""

    def rank(device: ApnDeviceRecord) -> int:
        matched = _matched_by(device, keys)
        return SIM_KEYS.index(matched[0]) if matched else len(SIM_KEYS)

    return sorted(devices, key=rank)


# --- the desired-settings step ---------------------------------------------------------------


async def add_apn_name(
    store: Store,
    profile: Profile,
    record: DeviceRecord | None,
    values: Mapping[str, list[Any]],
    desired: Desired,
    *,
    compare: bool = True,
    memory: Mapping[str, Any] | None = None,
) -> bool:
    """Add ``apn.name`` to ``desired`` when the SIM this router reported (in this Inform,
    else in its last session) belongs to a network with an APN name. True when the router's
    last known APN differs, so the session must read and set it even without drift checks.

    ``record`` comes without its parameter tree (as the store's look-ups do): the SIM
    numbers of its last session are on the record, and the stored APN is read only when
    the router's APN must be compared; ``memory``: the router's provisioning memory where
    the record has handed it over to a session (the name acsd last wrote to the router is
    in it). ``compare=False``: the session reads its settings
    anyway (drift checks), so there is nothing to compare against the stored tree. A
    router's first session has not yet reported its SIM: its APN follows in the next. A
    router whose record names no mvnoAccount takes no APN (see _whose)."""
    if record is None or record.state == "DELETING" or not record.mvno_account:
        return False
    flat = untyped(values)
    with_tree = record.sim is None
    if with_tree:
        # A record from before acsd kept SIM numbers: they are in its tree.
        flat = {**await _stored_tree(store, record), **flat}
        ident = extract_identity(profile, flat)
    else:
        ident = {**record.sim, **extract_identity(profile, flat)}
    keys = sim_keys(ident)
    if not any(keys.values()):
        return False
    name = withdrawn = None
    imei = digits(ident.get("imei"))
    targets = profile.settings.get("apn.name", ())

    async def held() -> dict[str, Any]:
        # the APN as last read: those values alone, not the router's whole tree
        unread = [t.path for t in targets if t.path not in flat]
        if with_tree or not unread:
            return flat
        return {**untyped(await store.device_values(record.id, unread)), **flat}

    try:
        found = _whose(
            await store.find_apn_devices_for_sim(**keys, include_ended=True),
            record.serial_number,
            record.mvno_account,
        )
        live = [device for device in found if device.end_date is None]
        refused = False
        for device in _ranked(live, keys):
            # (an IMEI not known at the Inform is checked once the session has read it,
            # apn_refused_here: against the recorded one, or, for a lock no modem has taken
            # yet, that the modem says one, which the session's end records as the lock)
            barred = locked_out(device, imei) and imei is not None
            if device.enabled and barred:
                refused = True
            if not device.enabled or barred:
                continue  # disabled, or refused in this modem: it gets no APN from acsd
            network = await store.get_apn_network(device.account, device.network)
            if network is not None and network.apn:
                name = network.apn
                if device.lock_imei:
                    desired.apn_imei = device.imei or FIRST_TO_SAY
                break
        # (a modem the IMEI lock refuses gets nothing from acsd, the fallback neither)
        fallback = profile.spec.apn_fallback
        if name is None and not refused and fallback is not None:
            # (a session's record has handed its memory over to the session)
            written = (memory if memory is not None else record.provisioning or {}).get(APN_SET)
            withdrawn = await _withdrawn_name(
                store, found, keys, await held(), targets,
                written=written if type(written) is str and written != fallback else None,
            )  # fmt: skip
            if withdrawn is not None:
                name = fallback
    except Exception:
        log.exception("apn.lookup_failed", serial=record.serial_number)
        return False
    if name is None:
        return False
    desired.settings["apn.name"] = name
    desired.apn_sim = keys
    desired.apn_withdrawn = withdrawn
    if not compare:
        return False
    flat = await held()
    return any(flat.get(t.path) != name for t in targets)


async def _withdrawn_name(
    store: Store,
    found: list[ApnDeviceRecord],
    keys: Mapping[str, str | None],
    held: Mapping[str, Any],
    targets: Any,
    *,
    written: str | None = None,
) -> str | None:
    """The APN name the router holds that acsd set from the network of one of the SIM's
    devices that no longer steers it (removed, or made again disabled), if it holds one:
    the SIM is off that private network, and a router left dialing its APN is cut off.
    Only acsd's own name is taken back: one the customer set stays. ``written``: the name
    acsd last wrote to the router (its memory's ``apnSet``), taken back too once no live
    device names one: the network may have been renamed, or its name cleared, since."""
    if not targets:
        return None
    current = {held.get(t.path) for t in targets}
    for device in _ranked([d for d in found if d.end_date is not None or not d.enabled], keys):
        network = await store.get_apn_network(device.account, device.network)
        if network is not None and network.apn and network.apn in current:
            return network.apn
    if written and written in current and not any(d.end_date is None and d.enabled for d in found):
        return written
    return None


async def _stored_tree(store: Store, record: DeviceRecord) -> dict[str, Any]:
    # The store's records come without their tree.
    return untyped(await store.device_params(record.id))


#: the identity fields that name a SIM, kept on the device record between sessions
SIM_KEYS = ("imsi", "iccid", "msisdn")


def sim_numbers(ident: Mapping[str, Any]) -> dict[str, str]:
    """The SIM numbers among a session's identity values ({} = the router has no SIM)."""
    return {key: str(ident[key]) for key in SIM_KEYS if ident.get(key)}


async def routers_lacking_apn(
    store: Store, profiles: ProfileSet, device: ApnDeviceRecord
) -> list[DeviceRecord]:
    """The routers of the account that hold a new (or re-created, or removed) APN device's
    SIM, as their last session reported it, and lack the APN name their SIM's devices now
    give (a removed or disabled device's network's name gives way to the profile's
    ``apn_fallback``): found among the routers that SIM was seen in by the account's
    devices before (a device removed and made again, to turn it back on or move it to
    another network), not among every router of the account. A SIM no device saw yet gets
    its name with its router's next session."""
    keys = {"imsi": device.imsi, "iccid": device.iccid, "msisdn": device.msisdn}
    if not any(keys.values()):
        return []
    seen = await store.find_apn_devices_for_sim(**keys, include_ended=True)
    routers = sorted({d.router for d in seen if d.router and d.account == device.account})
    lacking = []
    for router in routers:
        record = await store.get_device(router)
        if record is None or record.mvno_account != device.account or record.state == "DELETING":
            continue
        held = sim_keys(record.sim or {})
        if not any(value and held[key] == value for key, value in keys.items()):
            continue  # the SIM has left that router since
        if record.profile not in profiles:
            continue  # (a profile gone since its last session: its next one says so)
        if await apn_due(store, profiles.get(record.profile), record, {}):
            lacking.append(record)
    return lacking


# --- after the session -----------------------------------------------------------------------


async def apn_due(
    store: Store, profile: Profile, record: DeviceRecord, held: Mapping[str, list[Any]]
) -> bool:
    """After a session that found another SIM in the router than its record held (its
    first, a SIM moved in or swapped): whether the new SIM's network has an APN name for
    this router that the router does not hold. That session looked the APN up for the SIM
    it knew at its Inform (the Inform seldom carries the SIM numbers), so it set none, or
    held the old SIM's back (apn_for_another_sim): the router's record must not read
    ACTIVE, nor wait for the next periodic Inform, while it lacks it. ``record``: as the
    session began, with the SIM numbers it read; ``held``: the router's values as the
    session left them (what it read, what it set laid over)."""
    return await add_apn_name(store, profile, record, held, Desired(), compare=True)


async def record_apn_session(store: Store, report: SimReport) -> None:
    """Bring the APN devices with this router's SIM up to date (never fails the session)."""
    sim = any(report.keys.values())
    if not sim and not (report.sim_read and report.sim_changed):
        return
    try:
        found = await store.find_apn_devices_for_sim(**report.keys) if sim else []
        if report.sim_changed:  # (a query every session of every mobile router else)
            here = {device.id for device in found}
            for device in await store.find_apn_devices_on_router(report.router):
                if device.id not in here and device.network_status != DISCONNECTED:
                    # its SIM was in this router and is not now (another SIM reported, or
                    # none): it is not connected through this router any more
                    await store.update_apn_device(device.id, _left)
        mine = _whose(found, report.serial, report.mvno_account, say=True)
        if len(mine) > 1:
            _claimed_twice(report, mine)
        for device in mine:
            # (the account is the record's as the session began: written only while the
            # router is still that account's)
            updated = await store.update_apn_device(
                device.id, partial(apply_session, report), steers=(report.router, device.account)
            )
            if updated is not None and updated.status == REFUSED:
                log.warning(
                    "apn.imei_refused",
                    apn_device=device.id,
                    serial=report.serial,
                    imei=report.imei,
                    locked=updated.imei,
                )
    except Exception as exc:
        log_store_failure(log, "apn.session_update_failed", exc, serial=report.serial)


#: (router, APN devices) already warned about in this process
_TWICE_TOLD = Once()


def _claimed_twice(report: SimReport, devices: list[ApnDeviceRecord]) -> None:
    """One SIM, several APN devices of the account (one registered by its CLI, another by
    its SIMNumber, perhaps in two networks): the API could not tell they were one SIM. Each
    is kept up to date, and the router takes the APN of the best match (IMSI, then ICCID,
    then MSISDN); the operator is told once per process, as every session would say it."""
    ranked = _ranked(devices, report.keys)
    if not _TWICE_TOLD.first((report.router, tuple(device.id for device in ranked))):
        return
    log.warning(
        "apn.sim_claimed_twice",
        serial=report.serial,
        apn_devices=[
            {"id": device.id, "network": device.network, "by": _matched_by(device, report.keys)}
            for device in ranked
        ],
    )


def _matched_by(device: ApnDeviceRecord, keys: Mapping[str, str | None]) -> list[str]:
    """The SIM numbers (of SIM_KEYS, in its order) the device names as ``keys`` has them."""
    return [name for name in SIM_KEYS if keys.get(name) and getattr(device, name) == keys[name]]


def _left(device: ApnDeviceRecord) -> tuple[ApnDeviceRecord | None, AuditRecord | None]:
    """The device's SIM left the router it was last seen in (pure, see apply_session)."""
    if device.network_status == DISCONNECTED:
        return None, None
    return _versioned(device, replace(device, network_status=DISCONNECTED)), None


def _versioned(before: ApnDeviceRecord, after: ApnDeviceRecord) -> ApnDeviceRecord:
    """``after`` with its Version one up when a session changed what a client polls the
    device for (seed 003: "every time a change is made ... its version is incremented").
    LastSync and LastConnected_End move with every session of an attached modem, and
    LastConnected_Start by a second with the router's rounding: counting those would turn
    Version into a session counter that tells a client nothing."""
    if any(getattr(before, name) != getattr(after, name) for name in _POLLED):
        return replace(after, version=before.version + 1)
    return after


#: what a session may change that makes a new Version: Status, NetworkStatus, IMEI,
#: LastConnected_MCC/MNC, and Meta's RefusedIMEI and Router
_POLLED = (
    "status",
    "network_status",
    "imei",
    "refused_imei",
    "router",
    "last_connected_mcc",
    "last_connected_mnc",
)


def apply_session(
    report: SimReport, device: ApnDeviceRecord
) -> tuple[ApnDeviceRecord | None, AuditRecord | None]:
    """The APN device after this session, and the audit entry the change needs (pure: the
    store runs it inside its write transaction, perhaps more than once)."""
    new, audit = _after_session(report, device)
    return _versioned(device, new), audit


def _after_session(
    report: SimReport, device: ApnDeviceRecord
) -> tuple[ApnDeviceRecord, AuditRecord | None]:
    new = replace(device, last_sync=report.at, router=report.router)
    imei = report.imei
    if locked_out(device, imei):
        new.network_status = DISCONNECTED
        new.status = REFUSED
        refused = imei or NO_IMEI
        if device.refused_imei == refused:
            return new, None  # refused before: said so then
        new.refused_imei = refused
        return new, _audit(
            report,
            device,
            "apn.device.refused",
            before={"IMEI": device.imei, "NetworkStatus": device.network_status},
            after={"IMEI": device.imei, "RefusedIMEI": refused, "NetworkStatus": DISCONNECTED},
        )
    audit = None
    if device.lock_imei and not device.imei and imei:
        new.imei = imei
        audit = _audit(
            report, device, "apn.device.imei_locked", before={"IMEI": None}, after={"IMEI": imei}
        )
    new.refused_imei = None
    if not device.enabled:
        # made again disabled: acsd sends its router no APN, and the SIM is on the private
        # network through no router of acsd's (it stays pending, as made)
        new.network_status = DISCONNECTED
        return new, audit
    if device.status in (PENDING, REFUSED):
        new.status = ACTIVE
    if not report.attached:
        new.network_status = DISCONNECTED
        return new, audit
    start = device.last_connected_start if device.network_status == CONNECTED else None
    if report.connection_time is not None:
        start = report.at - report.connection_time
    new.network_status = CONNECTED
    new.last_connected_start = start if start is not None else report.at
    new.last_connected_end = report.at
    new.last_connected_mcc = report.mcc or device.last_connected_mcc
    new.last_connected_mnc = report.mnc or device.last_connected_mnc
    return new, audit


def _audit(
    report: SimReport,
    device: ApnDeviceRecord,
    action: str,
    *,
    before: dict[str, Any],
    after: dict[str, Any],
) -> AuditRecord:
    return AuditRecord(
        id=new_id(),
        at=report.at,
        action=action,
        resource="apn_device",
        resource_id=device.id,
        token_name="cwmp session",
        before={"account": device.account, "network": device.network, **before},
        after={"router": report.serial, **after},
    )
