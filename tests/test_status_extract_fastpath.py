"""The memoised extraction gives what resolving every rule afresh gave: selectors shared by
rules with different filters, the same value tested for different families, plain paths with
`where`, the IPv4 shortcut of the family test, and the combined status + identity call."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from acsd.provisioning import status
from acsd.provisioning.profiles import load_profiles, parse_profile
from acsd.provisioning.status import (
    Extraction,
    _family_ok,
    extract_identity,
    extract_status,
    extract_status_and_identity,
)
from acsd.sim.runner import Simulation

TREES = sorted(
    p.stem for p in (Path(__file__).resolve().parents[1] / "src/acsd/sim/trees").iterdir()
)


def profile(fields: str, refs: str = ""):
    text = f'name = "t"\nroot = "Device."\n[match]\nmodelName = "T"\n{refs}\n{fields}'
    return parse_profile(text, "t.toml")


def _reference_family_ok(value: str, family: str) -> bool:
    """The family test before the IPv4 shortcut, kept as the specification."""
    try:
        ip = ipaddress.ip_address(value.partition("/")[0])
    except ValueError:
        return False
    if family == "ipv4":
        return ip.version == 4
    if ip.version != 6:
        return False
    if family == "ipv6-global":
        return not (ip.is_link_local or ip.is_loopback or ip.is_unspecified or ip.is_multicast)
    return True


ADDRESSES = [
    "0.0.0.0", "1.2.3.4", "255.255.255.255", "192.168.1.1/24", "10.0.0.1/", "256.1.1.1",
    "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "00.0.0.0", "1.2.3.4 ", " 1.2.3.4",
    "1.2.3.4\n", "\u0661.2.3.4", "1.2.3.-4", "+1.2.3.4", "1..2.3", "", "/", "abc",
    "::", "::1", "fe80::1", "FE80::1%eth0", "febf::1", "ff02::1", "2001:db8::1",
    "2001:db8::1/64", "::ffff:1.2.3.4", "2001:db8::zz", "1.2.3.4:80", ":", "1:2:3:4:5:6:7:8:9",
]  # fmt: skip


@pytest.mark.parametrize("family", ["ipv4", "ipv6", "ipv6-global"])
def test_family_shortcut_agrees_with_ipaddress(family: str) -> None:
    for value in ADDRESSES:
        assert _family_ok(value, family) == _reference_family_ok(value, family), value


def test_one_selector_filtered_differently_by_two_rules() -> None:
    # both fields resolve the same wildcard once; each still applies its own `where`
    p = profile(
        '[status.fields.dns]\npaths = ["Device.DNS.Client.Server.*.DNSServer"]\n'
        'where = { Type = "DHCPv4" }\n'
        '[status.fields.ipv6Dns]\npaths = ["Device.DNS.Client.Server.*.DNSServer"]\n'
        'where = { Type = "DHCPv6" }\n'
    )
    s = "Device.DNS.Client.Server."
    values = {
        s + "1.DNSServer": "2001:db8::53",
        s + "1.Type": "DHCPv6",
        s + "2.DNSServer": "192.0.2.53",
        s + "2.Type": "DHCPv4",
    }
    assert extract_status(p, values) == {"dns": "192.0.2.53", "ipv6Dns": "2001:db8::53"}


def test_one_value_tested_for_two_families() -> None:
    p = profile(
        '[status.fields.dns]\npaths = ["Device.A.1.S"]\nfamily = "ipv4"\n'
        '[status.fields.ipv6Dns]\npaths = ["Device.A.1.S"]\nfamily = "ipv6"\n'
        '[status.fields.ipv6]\npaths = ["Device.A.1.S"]\nfamily = "ipv6-global"\n'
    )
    assert extract_status(p, {"Device.A.1.S": "fe80::1"}) == {"ipv6Dns": "fe80::1"}
    assert extract_status(p, {"Device.A.1.S": "192.0.2.1"}) == {"dns": "192.0.2.1"}


def test_when_and_paths_naming_the_same_parameter() -> None:
    p = profile(
        '[[status.fields.networkType]]\npaths = ["Device.A.1.Tech"]\n'
        'when = { "Device.A.1.Tech" = "LTE" }\nmap = { LTE = "8" }\n'
        '[[status.fields.networkType]]\npaths = ["Device.A.1.Tech"]\nmap = { NR = "32" }\n'
    )
    assert extract_status(p, {"Device.A.1.Tech": "lte"}) == {"networkType": "8"}
    assert extract_status(p, {"Device.A.1.Tech": "NR"}) == {"networkType": "32"}


def test_plain_path_with_where_reads_its_own_object() -> None:
    p = profile(
        '[status.fields.wanIp]\npaths = ["Device.IP.Interface.2.IPv4Address.1.IPAddress"]\n'
        'where = { Status = "Enabled" }\n'
    )
    a = "Device.IP.Interface.2.IPv4Address.1."
    assert extract_status(p, {a + "IPAddress": "192.0.2.9", a + "Status": "Enabled"}) == {
        "wanIp": "192.0.2.9"
    }
    assert extract_status(p, {a + "IPAddress": "192.0.2.9", a + "Status": "Disabled"}) == {}
    assert extract_status(p, {a + "IPAddress": "192.0.2.9"}) == {}


@pytest.fixture(scope="module")
def tree_values() -> dict[str, dict[str, str]]:
    out = {}
    for tree in TREES:
        sim = Simulation("http://127.0.0.1:9/", [tree], 1, serial_prefix="X")
        out[tree] = dict(sim.routers[0].tree.flat())
    return out


def test_combined_call_equals_the_two_calls(tree_values: dict[str, dict[str, str]]) -> None:
    for prof in load_profiles():
        for tree, values in tree_values.items():
            both = extract_status_and_identity(prof, values)
            assert both == (extract_status(prof, values), extract_identity(prof, values)), (
                prof.name,
                tree,
            )


_FLIP = {"Up": "Down", "Down": "Up", "true": "false", "false": "true", "1": "0", "0": "1",
         "Enabled": "Disabled", "Disabled": "Enabled"}  # fmt: skip


def _variants(values: dict[str, str]) -> list[dict[str, str]]:
    """The same names with other values: states flipped, and every value that names an
    object of the tree (a ref) pointed at the next such object."""
    flipped = {k: _FLIP.get(v, v) for k, v in values.items()}
    objects = sorted({k.rsplit(".", 1)[0] for k in values if re.search(r"\.[0-9]+\.[^.]+$", k)})
    moved = dict(values)
    for key, value in values.items():
        if value.rstrip(".") in objects:
            at = objects.index(value.rstrip("."))
            moved[key] = objects[(at + 1) % len(objects)] + ("." if value.endswith(".") else "")
    return [values, flipped, moved, values]


def test_names_worked_out_once_give_what_a_fresh_extraction_gives(
    tree_values: dict[str, dict[str, str]],
) -> None:
    # The paths a selector resolves to are kept per set of names (on the profile) and
    # shared by every extraction over those names, whatever their values.
    for prof in load_profiles():
        for tree, values in tree_values.items():
            variants = _variants(values)
            prof.shapes.clear()
            warm = [Extraction(prof, v, shared=True).status_and_identity() for v in variants]
            assert len(prof.shapes) == 1
            fresh = []
            for v in variants:
                prof.shapes.clear()
                fresh.append(Extraction(prof, v, shared=True).status_and_identity())
            assert warm == fresh, (prof.name, tree)
            assert warm[1] != warm[0] or warm[2] != warm[0] or not warm[0][0], (prof.name, tree)


def test_the_names_kept_per_profile_are_bounded() -> None:
    p = profile('[status.fields.lanIp]\npaths = ["Device.LAN.IP"]\n')
    for n in range(status.MAX_SHAPES + 10):
        values = {"Device.LAN.IP": "192.0.2.1", f"Device.X.{n}": ""}
        status_, _ = Extraction(p, values, shared=True).status_and_identity()
        assert status_ == {"lanIp": "192.0.2.1"}
    assert 0 < len(p.shapes) <= status.MAX_SHAPES


def test_the_names_kept_per_profile_are_bounded_in_number_too() -> None:
    # A read plan has a leaf per row the profile reads: routers with thousands of rows,
    # with new instance numbers each time, make shapes of thousands of names.
    p = profile('[status.fields.lanIp]\npaths = ["Device.LAN.IP"]\n')
    for n in range(60):
        values = {"Device.LAN.IP": "192.0.2.1"}
        values |= {f"Device.X.{n}{i:04d}.Name": "" for i in range(3000)}
        status_, _ = Extraction(p, values, shared=True).status_and_identity()
        assert status_ == {"lanIp": "192.0.2.1"}
    assert 0 < sum(len(shape.names) for shape in p.shapes.values()) <= status.MAX_SHAPE_NAMES


def test_a_whole_tree_is_not_kept_on_the_profile(tree_values: dict[str, dict[str, str]]) -> None:
    # Whole trees differ from CPE to CPE (hosts, rows): only read-plan leaves are kept.
    for prof in load_profiles():
        prof.shapes.clear()
        for values in tree_values.values():
            extract_status_and_identity(prof, values)
            Extraction(prof, values).status_and_identity()
        assert prof.shapes == {}
