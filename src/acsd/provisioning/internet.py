"""Internet account (seed 002) -> the router's WAN settings, once the line is live.

A confirmed account whose start date has come asks the router it names for a static IPv4
WAN (address, mask, default gateway, and DNS servers: ``[provisioning] static_wan_dns``,
else the ones the router reported while on DHCP; none at all holds the line back from a
router that reaches acsd by host name), a second LAN address in the additional
range when one was assigned (the router takes the range's first host address), and mobile
failover with the backup SIM's number. Profiles map these abstract settings (``wan.static.*``,
``lan.extra.*``, ``wan.failover.*``) onto each vendor's parameters; a profile that lacks one
lists it on the device's job as unsupported.

Before the start date the account asks nothing of the router: the provider's line is not
there yet, and a static address on a line still served by DHCP would cut the router off.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from acsd.devices import reported_lan
from acsd.hostaddr import is_host_address
from acsd.provisioning.desired import Desired
from acsd.store.base import InternetAccountRecord, Store
from acsd.store.records import warn_damaged

#: what a router's WAN needs of the confirm body's ``net``
_LINE_ADDRESSES = ("ipAddress", "subnet", "gateway")


def internet_settings(confirm: dict[str, Any], dns: list[str] | None = None) -> dict[str, Any]:
    """Abstract settings for the confirm body's ``net`` object (validated by the API);
    ``dns``: the line's DNS servers (seed 002 names none). ValueError when the stored body
    holds no line (a row edited by hand, an older release's)."""
    net = confirm.get("net")
    if not isinstance(net, dict) or not all(type(net.get(k)) is str for k in _LINE_ADDRESSES):
        raise ValueError("the confirm holds no line's addresses")
    out: dict[str, Any] = {
        "wan.static.enable": True,
        "wan.static.ip": net["ipAddress"],
        "wan.static.mask": net["subnet"],
        "wan.static.gateway": net["gateway"],
    }
    if dns:
        out["wan.static.dns"] = ",".join(dns)
    if net.get("lanNet") and net.get("lanSubnet"):
        lan = ipaddress.IPv4Network(f"{net['lanNet']}/{net['lanSubnet']}", strict=False)
        out["lan.extra.enable"] = True
        out["lan.extra.ip"] = str(lan.network_address + 1)
        out["lan.extra.mask"] = str(lan.netmask)
    else:
        # A line without a range turns off the one an earlier line left on: that range is
        # free for other lines once this one supersedes it (as failover, no failure on a
        # router that has no second LAN address at all).
        out["lan.extra.enable"] = False
    # Failover "off" is said too: it turns off a backup left on from an earlier line (and is
    # no failure on a router that has no failover at all).
    failover = bool(net.get("failover"))
    out["wan.failover.enable"] = failover
    if failover and net.get("failoverNumber"):
        out["wan.failover.number"] = net["failoverNumber"]
    return out


async def add_internet_settings(
    store: Store, device_id: str, desired: Desired, now: float, *, dns: list[str] | None = None
) -> InternetAccountRecord | None:
    """Add the WAN settings of the device's effective account to ``desired``; returns the
    account (None: no account has taken effect for this router; one whose stored body
    holds no line is still the router's, and adds nothing)."""
    account = await store.internet_account_for_device(device_id, now)
    if account is None:
        return None
    if not account.confirm:
        return account
    try:
        settings = internet_settings(account.confirm, dns)
    except ValueError as exc:
        # the router keeps the line it holds rather than every session failing on it; a
        # new confirm of the account replaces the body
        warn_damaged("internet_accounts", account.id, "confirm", str(exc))
        return account
    desired.settings.update(settings)
    return account


def needs_line_dns(desired: Desired) -> bool:
    """A static line is asked for and no DNS servers are configured for it."""
    settings = desired.settings
    return settings.get("wan.static.enable") is True and "wan.static.dns" not in settings


def with_line_dns(
    desired: Desired, memory: dict[str, Any], status: dict[str, Any] | None
) -> Desired:
    """``desired`` with the line's DNS servers when none are configured: those the router
    reported when the line was first pushed, kept in its provisioning ``memory``. A TR-181
    router loses them with the DHCP client the line turns off, so a later session could not
    find them again if that push failed."""
    dns = memory.get("lineDns") or reported_dns(status)
    if not dns:
        return desired
    memory["lineDns"] = list(dns)
    return replace(desired, settings={**desired.settings, "wan.static.dns": ",".join(dns)})


#: the parts of a line that take an address range on the router, each sent whole or not at
#: all: (group prefix, its address and mask settings, what the job calls it)
_LINE_RANGES = (
    ("wan.static.", "wan.static.ip", "wan.static.mask", "the static line"),
    ("lan.extra.", "lan.extra.ip", "lan.extra.mask", "the additional range"),
)


def on_router_lan(settings: dict[str, Any], status: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(group prefix, setting, message) for each part of the line in ``settings`` whose
    network overlaps the LAN the router reports in ``status``: the confirm refuses such a
    line when the router has reported its LAN, but a line is mostly confirmed before its
    router first calls in (or the LAN changes since). Sent, the router would hold one
    network on its WAN and LAN sides (or its LAN address twice) and lose its way out, and
    acsd with it. Nothing when the router reports no LAN: nothing to hold it against."""
    router, lan = reported_lan(status)
    if router is None or lan is None:
        return []
    out = []
    for prefix, ip_key, mask_key, what in _LINE_RANGES:
        if settings.get(prefix + "enable") is not True:
            continue
        try:
            network = ipaddress.IPv4Network(
                f"{settings[ip_key]}/{settings[mask_key]}", strict=False
            )
        except (KeyError, ValueError):
            continue
        if prefix == "lan.extra." and network == lan and str(router) == settings[ip_key]:
            continue  # the range acsd gave it, reported as its LAN (its first address entry)
        if network.overlaps(lan):
            message = (
                f"{network} overlaps the router's LAN {lan}: {what} is not sent (order a "
                "line with other addresses, or renumber the router's LAN)"
            )
            out.append((prefix, ip_key, message))
    return out


def acs_host_name(url: str | None) -> str | None:
    """The host name in the ACS URL a router reports (``ManagementServer.URL``), which it
    needs a DNS server to reach; None for an IP literal, and for a URL that was not read or
    names no host (no evidence either way: the line goes, as it did before acsd read it)."""
    try:
        host = urlsplit((url or "").strip()).hostname or ""
    except ValueError:  # a bracketed host that is no IPv6 address
        return None
    if not host:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


def reported_dns(status: dict[str, Any] | None) -> list[str]:
    """The IPv4 DNS servers a router reports (``dns``, ``dns2``): what a static line keeps
    when the configuration names none. A TR-181 router loses them with the DHCP client the
    line turns off; given back as static entries, they are what it reports from then on,
    so the list stays put."""
    status = status or {}
    out: list[str] = []
    for key in ("dns", "dns2"):
        try:
            address = ipaddress.IPv4Address(str(status.get(key)))
        except ValueError:
            continue
        if (
            not is_host_address(address)
            or str(address) == status.get("lanIp")  # its own DNS proxy, for its LAN
            or str(address) in out
        ):
            continue
        out.append(str(address))
    return out
