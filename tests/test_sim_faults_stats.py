"""What the ACS's own tests lean on: injected SetParameterValues faults (``--fault`` /
``faults=``, atomic as on real CPEs), per-router session statistics and ``--report``, and
changing a value "by hand on the router" between sessions (``set_local``, or an edited
``--state`` file between two runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acsd.cwmp import rpc
from acsd.sim import Simulation
from acsd.sim.cpe import Cpe
from acsd.sim.template import PathRules, load_template
from test_sim_cli import SUMMARY, sim
from test_sim_http import FakeAcs

IGD = "InternetGatewayDevice."
WLAN = IGD + "LANDevice.1.WLANConfiguration."
SSID = WLAN + "1.SSID"
PASSWORD = WLAN + "1.PreSharedKey.1.KeyPassphrase"  # zte-f670l / nokia-g240w
LEASE = IGD + "LANDevice.1.LANHostConfigManagement.DHCPLeaseTime"


def router(profile: str = "zte-f670l", faults: dict[str, int] | None = None) -> Cpe:
    return Cpe(load_template(profile), 1, "F000001", acs_url="http://127.0.0.1:7547/",
               faults=faults)  # fmt: skip


def set_values(*pairs: tuple[str, str], key: str = "k") -> rpc.SetParameterValues:
    return rpc.SetParameterValues([rpc.ParameterValue(n, v) for n, v in pairs], key)


# --- injected faults -----------------------------------------------------------------------


def test_injected_fault_refuses_the_whole_spv_and_names_the_parameter() -> None:
    cpe = router(faults={SSID: 9007})
    before = dict(cpe.tree.values)
    answer = cpe.handle(set_values((SSID, "x"), (PASSWORD, "password1"), (LEASE, "3600")))
    assert isinstance(answer, rpc.Fault) and answer.code == 9003
    assert [(f.name, f.code) for f in answer.spv_faults] == [(SSID, 9007)]
    assert answer.spv_faults[0].string == "Invalid parameter value"
    assert cpe.tree.values == before  # nothing applied, ParameterKey included
    # the ACS resends the others: applied
    answer = cpe.handle(set_values((PASSWORD, "password1"), (LEASE, "3600"), key="k2"))
    assert isinstance(answer, rpc.SetParameterValuesResponse) and answer.status == 0
    assert cpe.tree.get(PASSWORD) == "password1" and cpe.tree.get(LEASE) == "3600"
    assert cpe.tree.get(IGD + "ManagementServer.ParameterKey") == "k2"
    assert cpe.tree.get(SSID) != "x"


def test_injected_faults_combine_with_real_ones_and_accept_selectors() -> None:
    cpe = router(faults={WLAN + "*.SSID": 9001, "Chaddr": 9007})
    answer = cpe.handle(
        set_values((WLAN + "5.SSID", "a"), (IGD + "DeviceInfo.SerialNumber", "b"), (LEASE, "1"))
    )
    assert isinstance(answer, rpc.Fault)
    assert [(f.name, f.code) for f in answer.spv_faults] == [
        (WLAN + "5.SSID", 9001),
        (IGD + "DeviceInfo.SerialNumber", 9008),
    ]
    cpe.faults.clear()  # per router and changeable between sessions
    answer = cpe.handle(set_values((WLAN + "5.SSID", "a")))
    assert isinstance(answer, rpc.SetParameterValuesResponse)


def test_simulation_checks_fault_codes() -> None:
    with pytest.raises(ValueError, match="9000-9899"):
        Simulation("http://127.0.0.1:7547/", ["zte-f670l"], 1, faults={SSID: 8005})
    sim_ = Simulation("http://127.0.0.1:7547/", ["zte-f670l", "nokia-g240w"], 2,
                      faults={SSID: 9007})  # fmt: skip
    assert all(r.faults == {SSID: 9007} for r in sim_.routers)


# --- statistics ------------------------------------------------------------------------------


def session(cpe: Cpe, *requests: rpc.Message, ok: bool = True) -> list[rpc.Message]:
    cpe.begin_session()
    cpe.inform_acknowledged()
    answers = [cpe.handle(r) for r in requests]
    cpe.end_session(ok)
    return answers


def test_stats_count_sessions_and_the_requests_of_each() -> None:
    cpe = router(faults={SSID: 9007})
    session(cpe, rpc.GetParameterValues([LEASE]), set_values((SSID, "x"), (LEASE, "60")))
    session(cpe, set_values((LEASE, "60")), rpc.UnknownMessage(name="ChangeDUState"))
    session(cpe, ok=False)
    stats = cpe.stats
    assert (stats.sessions, stats.ok, stats.failed) == (3, 2, 1)
    assert stats.rpcs == [
        ["GetParameterValues", "SetParameterValues"],
        ["SetParameterValues", "ChangeDUState"],
        [],
    ]
    assert stats.events[0] == ["0 BOOTSTRAP", "1 BOOT"]
    assert stats.spv == [[(SSID, "x"), (LEASE, "60")], [(LEASE, "60")]]
    assert [(f.session, f.method, f.code) for f in stats.faults] == [
        (1, "SetParameterValues", 9003),
        (2, "ChangeDUState", 9000),
    ]
    assert stats.faults[0].parameters == [(SSID, 9007)]
    assert cpe.cpe is cpe  # sim.router(serial).cpe.set_local(...) reads as documented


# --- over the wire: --fault, --report, set_local, --state edits -------------------------------


def zte_script(inform: rpc.Inform) -> list[rpc.Message]:
    """BOOTSTRAP: one SPV with a parameter that faults, then the rest again. Later: GPV."""
    if "0 BOOTSTRAP" in inform.event_codes():
        return [
            set_values((SSID, "acs-ssid"), (PASSWORD, "password1"), (LEASE, "7200"), key="a"),
            set_values((PASSWORD, "password1"), (LEASE, "7200"), key="b"),
        ]
    return [rpc.GetParameterValues([SSID, LEASE, WLAN + "1.Enable"])]


async def test_simulation_faults_stats_and_set_local_over_http() -> None:
    acs = await FakeAcs(script=zte_script).start()
    try:
        sim_ = Simulation(acs.url, ["zte-f670l"], 1, faults={SSID: 9007})
        assert (await sim_.run_once()).ok == 1
        serial = sim_.routers[0].serial
        r = sim_.router(serial)
        assert r.tree.get(LEASE) == "7200" and r.tree.get(SSID) != "acs-ssid"
        r.cpe.set_local(SSID, "typed-on-the-router")  # a user on the web UI
        r.cpe.set_local(LEASE, "600")
        assert (await sim_.run_once()).ok == 1
    finally:
        await acs.stop()
    fault, ok, gpv = acs.answers
    assert isinstance(fault, rpc.Fault) and [(f.name, f.code) for f in fault.spv_faults] == [
        (SSID, 9007)
    ]
    assert isinstance(ok, rpc.SetParameterValuesResponse)
    assert isinstance(gpv, rpc.GetParameterValuesResponse)
    assert {p.name: p.value for p in gpv.parameters} == {
        SSID: "typed-on-the-router",
        LEASE: "600",
        WLAN + "1.Enable": "1",
    }
    stats = r.stats
    assert stats.sessions == 2
    assert stats.rpcs == [["SetParameterValues", "SetParameterValues"], ["GetParameterValues"]]
    assert stats.events == [["0 BOOTSTRAP", "1 BOOT"], ["2 PERIODIC"]]  # nothing pending
    report = sim_.report()["routers"][0]
    assert report["serial"] == serial and report["profile"] == "zte-f670l"
    assert report["spv"][1] == [[PASSWORD, "password1"], [LEASE, "7200"]]
    assert report["faults"] == [
        {
            "session": 1,
            "method": "SetParameterValues",
            "code": 9003,
            "string": fault.string,
            "parameters": [{"name": SSID, "code": 9007}],
        }
    ]


async def test_cli_fault_and_report(tmp_path: Path) -> None:
    acs = await FakeAcs(script=zte_script).start()
    report, dump = tmp_path / "report.json", tmp_path / "dump"
    try:
        code, out, err = await sim(
            "--acs", acs.url, "--once", "--count", "2", "--profile", "zte-f670l,nokia-g240w",
            "--fault", f"{SSID}=9007", "--report", str(report), "--dump", str(dump),
        )  # fmt: skip
    finally:
        await acs.stop()
    assert code == 0, err
    assert SUMMARY.fullmatch(out.strip()).groups() == ("2", "2", "0")  # summary unchanged
    routers = {r["serial"]: r for r in json.loads(report.read_text())["routers"]}
    assert sorted(routers) == ["SIMNOK000002", "SIMZTE000001"]
    for serial, r in routers.items():
        assert r["sessions"] == 1 and r["ok"] == 1 and r["failed"] == 0
        assert r["rpcs"] == [["SetParameterValues", "SetParameterValues"]]
        assert r["events"] == [["0 BOOTSTRAP", "1 BOOT"]]
        assert [f["parameters"] for f in r["faults"]] == [[{"name": SSID, "code": 9007}]]
        tree = json.loads((dump / f"{serial}.json").read_text())
        assert tree[LEASE] == "7200" and tree[PASSWORD] == "password1"
        assert tree[SSID] != "acs-ssid"


async def test_cli_rejects_a_malformed_fault() -> None:
    for bad in ("no-equals-sign", f"{SSID}=abc", f"{SSID}=42", "=9007"):
        code, _, err = await sim("--acs", "http://127.0.0.1:1/", "--once", "--fault", bad)
        assert code == 2 and "fault" in err, (bad, err)


async def test_edited_state_file_is_a_change_made_on_the_router(tmp_path: Path) -> None:
    acs = await FakeAcs(script=zte_script).start()
    state = tmp_path / "state"
    common = ("--acs", acs.url, "--once", "--profile", "nokia-g240w", "--state", str(state))
    table = IGD + "LANDevice.1.LANHostConfigManagement.DHCPStaticAddress."
    try:
        assert (await sim(*common))[0] == 0
        path = state / "SIMNOK000001.json"
        saved = json.loads(path.read_text())
        assert saved["format"] == 1 and saved["profile"] == "nokia-g240w"
        values = saved["tree"]["values"]
        assert values[LEASE] == "7200" and values[PASSWORD] == "password1"  # held, in clear
        values[SSID] = "renamed-by-hand"
        values[f"{table}4.Enable"] = "true"  # a reservation added on the web UI
        values[f"{table}4.Chaddr"] = "02:00:5E:00:00:AA"
        values[f"{table}4.Yiaddr"] = "192.168.1.90"
        path.write_text(json.dumps(saved))
        assert (await sim(*common, "--dump", str(tmp_path / "dump")))[0] == 0
    finally:
        await acs.stop()
    gpv = acs.answers[-1]
    assert isinstance(gpv, rpc.GetParameterValuesResponse)
    assert {p.name: p.value for p in gpv.parameters}[SSID] == "renamed-by-hand"
    assert [e.event_codes() for e in acs.informs] == [["0 BOOTSTRAP", "1 BOOT"], ["1 BOOT"]]
    tree = json.loads((tmp_path / "dump" / "SIMNOK000001.json").read_text())
    assert tree[f"{table}4.Chaddr"] == "02:00:5e:00:00:aa"  # the firmware's form
    assert tree[table[:-1] + "NumberOfEntries"] == "1"


async def test_list_profiles_names_every_tree() -> None:
    code, out, _ = await sim("--list-profiles")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names == sorted(names)
    assert {
        "tr181-generic", "tr181-mobile", "tplink-tr181", "tr098-dsl", "tplink-tr098",
        "huawei-hg8245", "zte-f670l", "zyxel-vmg8825", "nokia-g240w",
    } <= set(names)  # fmt: skip


def test_selectors_most_specific_wins() -> None:
    rules = PathRules(
        {
            "xsd:boolean": "type",
            "Enable": "name",
            WLAN: "prefix",
            WLAN + "*.Enable": "pattern",
            WLAN + "5.Enable": "exact",
        }
    )
    assert rules.get(WLAN + "5.Enable", "boolean") == "exact"
    assert rules.get(WLAN + "1.Enable", "boolean") == "pattern"
    assert rules.get(WLAN + "1.SSID", "string") == "prefix"
    assert rules.get(IGD + "Time.Enable", "boolean") == "name"
    assert rules.get(IGD + "Time.Other", "boolean") == "type"
    assert rules.get(IGD + "Time.NTPServer1", "string") is None
    assert rules.get(WLAN + "x.Enable", "boolean") == "prefix"  # "*" is digits only
    with pytest.raises(ValueError):
        PathRules({"": 1})
