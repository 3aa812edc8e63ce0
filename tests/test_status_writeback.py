"""Simulated routers of three kinds run their sessions against the daemon; what
`acsd device show --json` reports is what their parameter trees hold."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli


def scaled(dbm: int, low: int, high: int) -> int:
    """Signal strength 0-100, linear over the range the profile documents."""
    return max(0, min(100, round((dbm - low) * 100 / (high - low))))


def expected_mobile(t: dict) -> dict:
    cell = "Device.Cellular.Interface.1."
    nr = t[cell + "CurrentAccessTechnology"] == "NR"
    signal = scaled(int(t[cell + "RSRP"]), -140, -44)
    status = {
        "lanIp": t["Device.IP.Interface.1.IPv4Address.1.IPAddress"],
        "subnetMask": t["Device.IP.Interface.1.IPv4Address.1.SubnetMask"],
        "wanIp": t["Device.IP.Interface.2.IPv4Address.1.IPAddress"],
        "gateway": t["Device.Routing.Router.1.IPv4Forwarding.1.GatewayIPAddress"],
        "dns": t["Device.DNS.Client.Server.1.DNSServer"],
        "dns2": t["Device.DNS.Client.Server.2.DNSServer"],
        "ipv6": t["Device.IP.Interface.2.IPv6Address.1.IPAddress"],
        "ipv6Dns": t["Device.DNS.Client.Server.3.DNSServer"],
        "ipv6Dns2": t["Device.DNS.Client.Server.4.DNSServer"],
        "simStatus": "1",
        "networkType": "32" if nr else "8",
        "uplinkRate": int(t[cell + "UpstreamMaxBitRate"]),
        "downlinkRate": int(t[cell + "DownstreamMaxBitRate"]),
    }
    status["ssSingnalStrength" if nr else "signalStrength"] = signal
    return status


def expected_dsl(t: dict) -> dict:
    lan = "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement.IPInterface.1."
    ppp = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1."
    dsl = "InternetGatewayDevice.WANDevice.1.WANDSLInterfaceConfig."
    dns, dns2 = t[ppp + "DNSServers"].split(",")
    return {
        "lanIp": t[lan + "IPInterfaceIPAddress"],
        "subnetMask": t[lan + "IPInterfaceSubnetMask"],
        "wanIp": t[ppp + "ExternalIPAddress"],
        "gateway": t[ppp + "RemoteIPAddress"],
        "dns": dns.strip(),
        "dns2": dns2.strip(),
        "uplinkRate": int(t[dsl + "UpstreamCurrRate"]),
        "downlinkRate": int(t[dsl + "DownstreamCurrRate"]),
    }


def expected_tplink(t: dict) -> dict:
    return {
        "lanIp": t["Device.IP.Interface.1.IPv4Address.1.IPAddress"],
        "subnetMask": t["Device.IP.Interface.1.IPv4Address.1.SubnetMask"],
        "wanIp": t["Device.DHCPv4.Client.1.IPAddress"],
        "gateway": t["Device.DHCPv4.Client.1.IPRouters"].split(",")[0],
        "dns": t["Device.DNS.Client.Server.1.DNSServer"],
        "dns2": t["Device.DNS.Client.Server.2.DNSServer"],
    }


# Fields acsd derives itself, and upTime/connectionTime which tick between read and dump.
DERIVED = {
    "lastComm",
    "online",
    "provisioned",
    "publicIp",
    "upTime",
    "connectionTime",
    "uplinkRate",
    "downlinkRate",
}


def test_three_kinds_of_router_end_with_the_status_their_trees_hold(daemon, tmp_path: Path):
    dump = tmp_path / "dump"
    proc = run_cli(
        "sim",
        "--acs",
        daemon.cwmp_url,
        "--count",
        "3",
        "--once",
        "--profile",
        "tr181-mobile,tr098-dsl,tplink-tr181",
        "--dump",
        str(dump),
        bounded=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("sim: 3 routers, 3 sessions ok, 0 failed")

    listing = json.loads(daemon.cli("device", "list", "--json").stdout)
    assert sorted(d["serialNumber"] for d in listing) == [
        "SIMDSL000002",
        "SIMMOB000001",
        "SIMTPL000003",
    ]
    table = daemon.cli("device", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "SERIAL", "MODEL", "ONLINE", "LAST", "COMM", "WAN", "IP"]
    assert len(table) == 4 and all(" yes " in row for row in table[1:])

    cases = {
        "SIMMOB000001": (expected_mobile, "Device."),
        "SIMDSL000002": (expected_dsl, "InternetGatewayDevice."),
        "SIMTPL000003": (expected_tplink, "Device."),
    }
    for serial, (expected_of, root) in cases.items():
        tree = json.loads((dump / f"{serial}.json").read_text())
        device = daemon.device_json(serial)
        status = device["status"]
        expected = expected_of(tree)
        for key, value in expected.items():
            assert status.get(key) == value, (serial, key, status.get(key), value)
        # Nothing invented: only what the tree holds, plus what acsd derives.
        assert set(status) - DERIVED <= set(expected), (serial, set(status) - set(expected))
        assert status["online"] is True
        assert status["publicIp"] == "127.0.0.1"
        assert status["lastComm"].endswith("Z")
        assert abs(status["upTime"] - int(tree[root + "DeviceInfo.UpTime"])) <= 5
        assert device["serialNumber"] == serial
        assert device["state"] == "ACTIVE" and device["jobs"] == 0
        assert device["cpe"]["modelName"] == tree[root + "DeviceInfo.ModelName"]
        assert device["cpe"]["oui"] == tree[root + "DeviceInfo.ManufacturerOUI"]
        # `device show` finds the same record by its _id as by its serial number.
        by_id = daemon.device_json(device["_id"])
        assert by_id["serialNumber"] == serial
    mobile = daemon.device_json("SIMMOB000001")["status"]
    assert mobile["uplinkRate"] > 0 and mobile["connectionTime"] >= 0


def test_second_run_is_the_same_routers_rebooting(daemon, tmp_path: Path):
    state = tmp_path / "state"
    args = [
        "sim",
        "--acs",
        daemon.cwmp_url,
        "--count",
        "2",
        "--once",
        "--profile",
        "tplink-tr181",
        "--state",
        str(state),
    ]
    assert run_cli(*args, bounded=True).returncode == 0
    first = {
        d["serialNumber"]: d["_id"]
        for d in json.loads(daemon.cli("device", "list", "--json").stdout)
    }
    assert run_cli(*args, bounded=True).returncode == 0
    second = {
        d["serialNumber"]: d["_id"]
        for d in json.loads(daemon.cli("device", "list", "--json").stdout)
    }
    assert first == second and len(first) == 2
    informs = daemon.events("session.inform")
    assert [e["events"] for e in informs[-2:]] == [["1 BOOT"], ["1 BOOT"]]
    assert all("0 BOOTSTRAP" in e["events"] for e in informs[:2])
    # `device show` takes an id in any case, as the API does (the seeds print ids in upper case)
    serial, device_id = next(iter(second.items()))
    shown = json.loads(daemon.cli("device", "show", device_id.upper(), "--json").stdout)
    assert shown["_id"] == device_id and shown["serialNumber"] == serial


def test_unknown_device_is_reported_not_invented(daemon):
    proc = daemon.cli("device", "show", "NOSUCH", check=False)
    assert proc.returncode == 1 and "NOSUCH" in proc.stderr
    assert daemon.cli("device", "list").stdout.strip().endswith("first Inform)")


def test_device_show_and_list_print_control_characters_escaped(daemon):
    import sqlite3

    from api_world import seed_body

    body = seed_body("SHOWESC01")
    body["notes"] = "line one\n\tline two"
    daemon.apply(body)
    shown = daemon.cli("device", "show", "SHOWESC01").stdout
    assert "notes: line one\\n\\tline two" in shown
    # A record written before names were checked (or a router's C1 control in its model
    # name): a terminal never gets the raw escape sequence.
    with sqlite3.connect(daemon.db) as db:
        db.execute(
            "UPDATE devices SET name = ?, model_name = ? WHERE serial_number = 'SHOWESC01'",
            ("evil\x1b]0;pwned\x07", "X\x9b2J\u202eftp.exe"),
        )
    for args in (("device", "show", "SHOWESC01"), ("device", "list")):
        out = daemon.cli(*args).stdout
        assert not {"\x1b", "\x9b", "\x07", "\u202e"} & set(out)
    assert "evil\\x1b]0;pwned\\x07" in daemon.cli("device", "show", "SHOWESC01").stdout
    # a bidirectional override would show the rest of the line reversed
    assert "X\\x9b2J\\u202eftp.exe" in daemon.cli("device", "list").stdout
