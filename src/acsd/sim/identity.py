"""Per-router values of the template placeholders, computed from the router's index.

Deterministic (the same profile and index give the same router in every run, so ``--state``
and the ACS's records line up) and distinct across a run. Addresses stay in ranges that can
never reach anybody: CGNAT 100.64.0.0/10 for WAN sides, 2001:db8::/32 for IPv6; cellular
identities use the test network MCC 001 / MNC 01.
"""

from __future__ import annotations

import ipaddress
import random
import string
import zlib

PLACEHOLDERS = frozenset(
    {
        "index", "serial", "acs_url", "cr_url",
        "mac_lan", "mac_wan", "mac_wl0", "mac_wl1", "mac_wl0g", "mac_wl1g", "mac_wl2",
        "mac_tail",
        "wan_ip", "wan_gw", "wan_ipv6",
        "imei", "imsi", "iccid", "msisdn", "rat", "rssi", "rsrp", "rsrq", "up_kbps", "down_kbps",
        "dsl_up", "dsl_down", "dsl_up_max", "dsl_down_max", "dsl_up_bps", "dsl_down_bps",
        "dsl_snr_up", "dsl_snr_down", "dsl_att",
        "wifi_key", "ppp_user", "ppp_password", "user_password", "admin_password",
    }
)  # fmt: skip

_CGNAT = int(ipaddress.IPv4Address("100.64.0.0"))
_CGNAT_BLOCKS = 1 << 20  # /30 blocks in 100.64.0.0/10
_DOC6 = int(ipaddress.IPv6Address("2001:db8::"))
_KEY_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "Il1O0o")


def luhn(digits: str) -> str:
    """``digits`` plus its Luhn check digit (IMEI and ICCID end with one)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return digits + str((10 - total % 10) % 10)


def _mac(oui: str, n: int, salt: int = 0) -> str:
    # With a salt, locally administered (02:...): 16 bits of the salt and 24 of the number,
    # so routers of another serial prefix never take the vendor-OUI MACs of the default one.
    head = f"02{salt & 0xFFFF:04X}" if salt else oui.upper()
    raw = head + f"{n & 0xFFFFFF:06X}"
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))


def prefix_salt(prefix: str) -> int:
    """A number (1..65535) that sets the identities of routers of serial prefix ``prefix``
    apart from those of other prefixes (0 is the profile's default prefix's)."""
    return zlib.crc32(prefix.encode()) % 0xFFFF + 1


def _secret(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(_KEY_ALPHABET, k=length))


def router_values(
    profile: str, oui: str, index: int, serial: str, acs_url: str, cr_url: str, salt: int = 0
) -> dict[str, str]:
    """Every placeholder's value for router ``index`` (1-based) of ``profile``; ``salt``
    (:func:`prefix_salt`) gives the routers of another serial prefix MACs and cellular
    identities of their own (runs of two prefixes side by side must not share them)."""
    rng = random.Random(f"{profile}:{index}")
    tac = f"35{salt % 10**6:06d}" if salt else "35999900"  # the IMEI's type allocation code
    # IMSI, ICCID and MSISDN: a million numbers for each prefix
    number = (salt % 10**4) * 10**6 + index % 10**6 if salt else index
    base = index * 8  # eight MACs per router: LAN, WAN, radios, guest SSIDs
    block = _CGNAT + 4 * (index % _CGNAT_BLOCKS)  # one /30 per router: .1 gateway, .2 CPE
    rat = "NR" if rng.random() < 0.6 else "LTE"
    rsrp = rng.randint(-112, -78) if rat == "NR" else rng.randint(-115, -80)
    dsl_down = rng.randrange(50000, 100001, 8)
    dsl_up = rng.randrange(10000, 40001, 8)
    values = {
        "index": str(index),
        "serial": serial,
        "acs_url": acs_url,
        "cr_url": cr_url,
        "mac_lan": _mac(oui, base, salt),
        "mac_wan": _mac(oui, base + 1, salt),
        "mac_wl0": _mac(oui, base + 2, salt),
        "mac_wl1": _mac(oui, base + 3, salt),
        "mac_wl0g": _mac(oui, base + 4, salt),
        "mac_wl1g": _mac(oui, base + 5, salt),
        "mac_wl2": _mac(oui, base + 6, salt),  # a third (6 GHz) radio
        "mac_tail": f"{base & 0xFFFF:04X}",
        "wan_gw": str(ipaddress.IPv4Address(block + 1)),
        "wan_ip": str(ipaddress.IPv4Address(block + 2)),
        "wan_ipv6": str(ipaddress.IPv6Address(_DOC6 + ((index & 0xFFFFFFFF) << 64) + 2)),
        "imei": luhn(f"{tac}{index % 1_000_000:06d}"),
        "imsi": f"00101{number % 10**10:010d}",
        "iccid": luhn(f"8900101{number % 10**11:011d}"),
        "msisdn": f"1555{number % 10**10:010d}" if salt else f"15550{index % 10**6:06d}",
        "rat": rat,
        "rsrp": str(rsrp),
        "rssi": str(max(-100, min(-51, rsrp + 27 + rng.randint(-3, 3)))),
        "rsrq": str(rng.randint(-15, -7)),
        "up_kbps": "150000" if rat == "NR" else "50000",
        "down_kbps": "1000000" if rat == "NR" else "300000",
        "dsl_up": str(dsl_up),
        "dsl_down": str(dsl_down),
        "dsl_up_max": str(dsl_up + rng.randrange(500, 4001, 8)),
        "dsl_down_max": str(dsl_down + rng.randrange(2000, 12001, 8)),
        "dsl_up_bps": str(dsl_up * 1000),
        "dsl_down_bps": str(dsl_down * 1000),
        "dsl_snr_up": str(rng.randint(60, 140)),
        "dsl_snr_down": str(rng.randint(60, 140)),
        "dsl_att": str(rng.randint(40, 220)),
        "wifi_key": _secret(rng, 12),
        "ppp_user": f"{serial.lower()}@dsl.example",
        "ppp_password": _secret(rng, 10),
        "user_password": _secret(rng, 10),
        "admin_password": _secret(rng, 10),
    }
    return values
