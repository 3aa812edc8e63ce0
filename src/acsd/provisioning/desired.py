"""Device record -> desired abstract settings (``wifi.2g.ssid``, ``dhcp.lease_time``, ...).

Only what the operator stated becomes desired: a ``null`` or missing field leaves that
setting as the router has it. Profiles then map abstract settings onto vendor paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from acsd.models import is_raw_wpa_key

#: seed-000 wifi field names per band
_BANDS = {
    "2g": ("enabled", "ssid", "password"),
    "5g": ("enabled5G", "ssid5G", "password5G"),
    "6g": ("enabled6G", "ssid6G", "password6G"),
}
#: 6 GHz allows no WPA2-only security: WPA3-SAE is what every 6 GHz radio needs.
_SECURITY = {"2g": "wpa2-psk", "5g": "wpa2-psk", "6g": "wpa3-sae"}


@dataclass(slots=True)
class Desired:
    settings: dict[str, Any] = field(default_factory=dict)
    #: table key -> desired rows (abstract fields), or absent when the table is not managed
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: facts the operator should see on the job (e.g. band steering emulated)
    notes: list[str] = field(default_factory=list)
    #: settings whose wanted value alone holds them, not the profile's `also` values: a
    #: band given a raw 64-hex-digit key is WPA2 only, since WPA3 (SAE) takes no raw key
    #: and a router left in WPA2/WPA3 transition mode kept its old SAE password working
    strict: set[str] = field(default_factory=set)
    #: settings only band steering asks for, on a band the operator said nothing of: on a
    #: router without that band they are nothing to report, not "unsupported"
    implied: frozenset[str] = frozenset()  # (one for every Desired: see Fetch.emptied)
    #: the IMEI the SIM of ``apn.name`` is locked to: the APN goes only to that modem,
    #: checked against the IMEI the session reads (the Inform seldom carries it)
    apn_imei: str | None = None
    #: the SIM numbers (imsi, iccid, msisdn) ``apn.name`` was looked up for: the router's
    #: SIM as last known, checked against the one the session reads (see apn_for_another_sim)
    apn_sim: dict[str, str | None] | None = None
    #: ``apn.name`` is the profile's fallback in place of this name, one acsd set from the
    #: network of a device removed since: sent only while the router holds that name (the
    #: session's read may show the customer set another one meanwhile)
    apn_withdrawn: str | None = None

    @property
    def empty(self) -> bool:
        return not self.settings and not self.tables

    @property
    def names(self) -> list[str]:
        """The settings and tables acsd manages on the CPE (what `written_with` globs
        match: a reservation is a DHCP value as much as the pool is)."""
        return [*self.settings, *self.tables]

    def without(self, prefix: str) -> Desired:
        """A copy without the settings and tables whose key starts with ``prefix``."""
        return replace(
            self,
            settings={k: v for k, v in self.settings.items() if not k.startswith(prefix)},
            tables={k: v for k, v in self.tables.items() if not k.startswith(prefix)},
        )


def desired_state(wifi: dict[str, Any] | None, dhcp: dict[str, Any] | None) -> Desired:
    out = Desired()
    if wifi:
        _wifi(wifi, out)
    if dhcp:
        _dhcp(dhcp, out)
    return out


def _wifi(wifi: dict[str, Any], out: Desired) -> None:
    steering = wifi.get("bandsteering")
    for band, (enabled_key, ssid_key, password_key) in _BANDS.items():
        enabled = wifi.get(enabled_key)
        ssid = wifi.get(ssid_key)
        password = wifi.get(password_key)
        if steering and band != "2g" and enabled is False:
            # A band switched off under band steering carries no network: its own name
            # and password wait until steering is off (written now, they contradicted the
            # steered network firmware may insist on, and every switch off and on again
            # rewrote both).
            ssid = password = None
        elif steering and band != "2g":
            # Band steering means one network on every band (seed 000): the 2.4 GHz SSID
            # and password are the ones clients see, whatever else the bands say.
            ssid = wifi.get("ssid") or ssid
            password = wifi.get("password") if wifi.get("password") is not None else password
        prefix = f"wifi.{band}."
        if band == "6g" and password and is_raw_wpa_key(password):
            # 6 GHz is WPA3 (SAE) alone, which takes a passphrase, never the raw key that
            # band steering hands it (the API refuses one given for 6 GHz itself): left
            # on, it kept its old password working. Switched off; quiet on a router
            # without 6 GHz.
            out.settings[prefix + "enable"] = False
            out.implied |= {prefix + "enable"}
            continue
        unstated = all(wifi.get(k) is None for k in (enabled_key, ssid_key, password_key))
        if steering and unstated:
            out.implied |= {prefix + name for name in ("ssid", "password", "security")}
        if enabled is not None:
            out.settings[prefix + "enable"] = bool(enabled)
        if ssid is not None:
            out.settings[prefix + "ssid"] = ssid
        if password is not None:
            # An empty password is an explicit open network; a password means WPA. An
            # open network's passphrase is left as it is: TR-181 refuses an empty one
            # (KeyPassphrase is 8 to 63 characters), and the mode alone opens it.
            if password:
                out.settings[prefix + "password"] = password
                if is_raw_wpa_key(password):
                    out.strict.add(prefix + "security")
            out.settings[prefix + "security"] = _SECURITY[band] if password else "open"
    if steering is not None:
        out.settings["wifi.bandsteering"] = bool(steering)


def _dhcp(dhcp: dict[str, Any], out: Desired) -> None:
    simple = {
        "enable": "dhcp.enable",
        "ipPoolStart": "dhcp.pool_start",
        "ipPoolEnd": "dhcp.pool_end",
        "leaseTime": "dhcp.lease_time",
        "primaryDnsServer": "dhcp.dns",
    }
    for field_name, key in simple.items():
        value = dhcp.get(field_name)
        if value is not None:
            out.settings[key] = value
    clients = dhcp.get("reservedClients")
    if clients is not None:
        out.tables["dhcp.reservations"] = [
            {"mac": c["mac"], "ip": c["ip"], "enable": bool(c.get("enable", True))} for c in clients
        ]
