"""Operator writes to device records: create or update from a seed-000 body.

Used by ``acsd device apply`` and the REST API, so both bump revisions and start
provisioning the same way, and both refuse what a router would refuse (:func:`check_lan`).
"""

from __future__ import annotations

import copy
import functools
import ipaddress
from typing import Any

from acsd import audit
from acsd.macs import mac_digits
from acsd.models import DeviceInput
from acsd.store.base import ABSENT, DeviceRecord, Store


class DeviceInputError(ValueError):
    """A device body with addresses the router would refuse: ``field`` is the dotted
    path, as the API reports it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def reported_lan(
    status: dict[str, Any],
) -> tuple[ipaddress.IPv4Address | None, ipaddress.IPv4Network | None]:
    """The router's LAN address and network as it reported them, or (None, None) when it
    has not, or reported something that is no address ("N/A", "0.0.0.0/garbage"): what a
    CPE reports is not checked before it is stored."""
    try:
        router = ipaddress.IPv4Address(str(status.get("lanIp") or "").strip())
        network = ipaddress.IPv4Network(f"{router}/{status.get('subnetMask')}", strict=False)
    except ValueError:
        return None, None
    return router, network


def check_lan(status: dict[str, Any], dhcp: dict[str, Any] | None) -> None:
    """Addresses a router would refuse: the pool and reservations must lie in its LAN, and
    no DNS server handed out is the LAN's network or broadcast address.

    The LAN is the one the router reported (status lanIp/subnetMask). Before the router has
    reported, the pool's own /16 stands in for it (without a pool, the first
    reservation's): wide enough for every common home or office LAN, narrow enough to
    catch a pool that straddles networks."""
    if not dhcp:
        return
    reserved = dhcp.get("reservedClients") or []
    key = (
        status.get("lanIp"),
        status.get("subnetMask"),
        dhcp.get("ipPoolStart"),
        dhcp.get("ipPoolEnd"),
        tuple(client["ip"] for client in reserved),
        dhcp.get("primaryDnsServer"),
    )
    try:
        hash(key)
    except TypeError:  # no values an API write or an extraction makes: checked as they are
        refused = _lan_refusal.__wrapped__(*key)
    else:
        # Every session that applies DHCP settings checks them against the LAN it read,
        # and most routers of a fleet have one LAN and one pool: ~15 us of ipaddress
        # objects each time, a fiftieth of a boot storm's CPU.
        refused = _lan_refusal(*key)
    if refused is not None:
        raise DeviceInputError(*refused)


@functools.lru_cache(maxsize=1024)
def _lan_refusal(
    lan_ip: Any, mask: Any, start: Any, end: Any, reserved: tuple[Any, ...], dns: Any = None
) -> tuple[str, str] | None:
    """(field, message) of what check_lan refuses, or None; ValueError for an address
    that is none (not cached: lru_cache keeps no exceptions)."""
    router, network = reported_lan({"lanIp": lan_ip, "subnetMask": mask})
    # (without a pool, the first reservation's: reservations in networks no LAN holds
    # together failed the router's first session instead of the request)
    anchor = start or end or (reserved[0] if reserved else None)
    if network is None and anchor:
        network = ipaddress.IPv4Network(f"{anchor}/16", strict=False)
    if network is None:
        return None
    if router:
        where = f"the router's LAN {network}"
    elif anchor in (start, end):
        where = f"{network}, the pool's network"
    else:
        where = f"{network}, the first reservation's network"
    # With the LAN known, its network and broadcast addresses and the router's own are
    # no client's either (a /31 or /32 has neither: nothing to refuse there).
    taken: dict[ipaddress.IPv4Address, str] = {}
    if router is not None:
        taken[router] = "the router's own address"
        if network.prefixlen < 31:
            taken[network.network_address] = f"the network address of {network}"
            taken[network.broadcast_address] = f"the broadcast address of {network}"
    for key, value in (("ipPoolStart", start), ("ipPoolEnd", end)):
        if value and ipaddress.IPv4Address(value) not in network:
            return f"dhcp.{key}", f"{value} is not in {where}"
    if start and end:
        low, high = ipaddress.IPv4Address(start), ipaddress.IPv4Address(end)
        for address, what in taken.items():
            if low <= address <= high:
                key = "ipPoolEnd" if address == high else "ipPoolStart"
                return f"dhcp.{key}", f"the pool {low}-{high} holds {what}"
    for n, ip_text in enumerate(reserved):
        ip = ipaddress.IPv4Address(ip_text)
        if ip not in network:
            return f"dhcp.reservedClients.{n}.ip", f"{ip} is not in {where}"
        if ip in taken:
            return f"dhcp.reservedClients.{n}.ip", f"{ip} is {taken[ip]}"
    if dns and router is not None:
        # The router's own address is what most routers hand out as the DNS server, and
        # one outside the LAN (a resolver of the ISP's) is as usual: only the LAN's
        # network and broadcast addresses are no server at all.
        server = ipaddress.IPv4Address(dns)
        if server != router and taken.get(server):
            return "dhcp.primaryDnsServer", f"{server} is {taken[server]}, no DNS server"
    return None


def _desired_part(wifi: dict[str, Any] | None, dhcp: dict[str, Any] | None) -> Any:
    """What the router must hold; reservation ids are the router's, not the operator's,
    and a reservation is the same in any MAC notation and at any place in the list (a
    client re-sending what it read made a job with nothing to do)."""
    dhcp = copy.deepcopy(dhcp)
    clients = (dhcp or {}).get("reservedClients")
    if clients:
        for client in clients:
            client.pop("id", None)
            client["mac"] = mac_digits(str(client.get("mac", "")))
        clients.sort(key=lambda client: client["mac"])
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
        mac_digits(c["mac"]): c.get("id") for c in old.get("reservedClients") or [] if c.get("id")
    }
    for client in new.get("reservedClients") or []:
        if not client.get("id") and mac_digits(client["mac"]) in known:
            client["id"] = known[mac_digits(client["mac"])]


async def mac_owner(
    store: Store, mac: str | None, record: DeviceRecord | None
) -> DeviceRecord | None:
    """The other device that already has ``mac`` (not ``record`` itself), or None. A
    router's own record that only reported it (DeviceRecord.mac_is_routers_own) owns
    nothing: the write takes the MAC from it."""
    if not mac:
        return None
    other = await store.find_device_by_mac(mac)
    if other is None or other.mac_is_routers_own:
        return None
    return other if record is None or other.id != record.id else None


def ask_to_provision(record: DeviceRecord) -> None:
    """The record has something new for its router: a revision of its own (the router's
    next session applies it, and one under way does not write its state over it) and the
    device PROVISIONING with one job."""
    record.revision += 1
    record.state, record.jobs = "PROVISIONING", 1


async def apply_device(store: Store, body: DeviceInput) -> DeviceRecord:
    """``acsd device apply``: create the record, or update the one with the same serial
    number. A change to what the router should hold bumps the revision and puts the device
    in PROVISIONING. The write is audited with the local user as its author.

    Raises :class:`DeviceInputError` for what the API refuses too: a customer or model
    that does not exist, a MAC address another device has, a DHCP pool or reservation
    outside the LAN the router reported; for a body that does not name the customer
    the stored device belongs to; and for a device being deleted."""
    data = body.model_dump(exclude_none=True)
    wifi = data.get("wifi")
    dhcp = data.get("dhcp")
    if body.customer and await store.get_customer(body.customer) is None:
        raise DeviceInputError("customer", f"no customer {body.customer}")
    if body.model and await store.get_model(body.model) is None:
        raise DeviceInputError("model", f"no network device model {body.model}")
    record = await store.find_device_for_cpe(body.serialNumber)
    if record is not None and record.state == "DELETING":
        # The API refuses changes to it too (422 state): a write here would turn the
        # DELETING back into PROVISIONING and the delete would be lost.
        raise DeviceInputError(
            "state",
            f"device {record.serial_number} ({record.id}) is being deleted: its router's "
            "next session releases it; apply again once it is gone",
        )
    if record is not None and record.customer and body.customer != record.customer:
        # The replace is whole: a body without the customer would detach a customer's
        # router (and one naming another customer move it) without a word; the API
        # refuses to take such a device over too.
        raise DeviceInputError(
            "customer",
            f"device {record.serial_number} ({record.id}) belongs to customer "
            f"{record.customer}; name that customer in the body, or change the device "
            "through the API",
        )
    before = audit.device_view(record) if record is not None and record.id else None
    if (other := await mac_owner(store, body.macAddress, record)) is not None:
        raise DeviceInputError(
            "macAddress", f"{body.macAddress} already belongs to device {other.id}"
        )
    check_lan(record.status if record else {}, dhcp)
    # The write must find the record as read here: a DELETE (or another write) between
    # the checks above and the write would otherwise be undone (ChangedError instead).
    expect: DeviceRecord | str = copy.deepcopy(record) if record is not None else ABSENT
    if record is None:
        record = DeviceRecord(id="", serial_number=body.serialNumber)
        changed = bool(wifi or dhcp)
    else:
        keep_reservation_ids(dhcp, record.dhcp)
        changed = desired_changed(wifi, dhcp, record.wifi, record.dhcp)
    record.name = body.name
    record.model = body.model
    record.customer = body.customer
    if body.macAddress:
        record.mac_address, record.mac_from_router = body.macAddress, False
    record.mvno_account = body.mvnoAccount
    record.notes = body.notes
    record.wifi = wifi
    record.dhcp = dhcp
    if body.driftCheck is not None:
        record.drift_check = body.driftCheck
    if changed:
        ask_to_provision(record)
    entry = audit.cli_record(
        "device.update" if before else "device.create", "device", record.id or None,
        customer=record.customer, before=before,
    )  # fmt: skip
    return await store.write_device(
        record,
        audit=entry,
        audit_after=audit.device_view,
        mac="set" if body.macAddress else "keep",
        expect=expect,
    )
