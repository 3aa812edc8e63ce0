"""One simulated router's behaviour, driven with RPC dataclasses (no HTTP): events after
Reboot/FactoryReset/Download/ScheduleInform, value-change notification, InformParameter."""

from __future__ import annotations

from acsd.cwmp import rpc
from acsd.sim.cpe import Cpe
from acsd.sim.identity import luhn
from acsd.sim.template import load_template


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def router(profile: str = "tr181-mobile", clock: Clock | None = None) -> Cpe:
    return Cpe(
        load_template(profile),
        3,
        "C000003",
        acs_url="http://127.0.0.1:7547/",
        cr_url="http://127.0.0.1:9/cr/C000003",
        clock=clock or Clock(),
    )


def session(cpe: Cpe, *requests: rpc.Message, trigger: list[str] | None = None) -> tuple:
    """One successful session: (Inform, responses)."""
    inform = cpe.begin_session(trigger)
    cpe.inform_acknowledged()
    while (tc := cpe.next_transfer()) is not None:
        cpe.transfer_acknowledged(tc)
    responses = [cpe.handle(r) for r in requests]
    cpe.end_session(True)
    return inform, responses


def events(inform: rpc.Inform) -> list[tuple[str, str]]:
    return [(e.code, e.command_key) for e in inform.events]


def test_first_contact_is_bootstrap_and_boot_then_nothing_pending() -> None:
    cpe = router()
    inform, _ = session(cpe)
    assert events(inform) == [("0 BOOTSTRAP", ""), ("1 BOOT", "")]
    assert inform.device_id.serial_number == "C000003"
    assert inform.device_id.oui == "0A5E11"
    assert not cpe.poll()
    inform, _ = session(cpe, trigger=["2 PERIODIC"])
    assert events(inform) == [("2 PERIODIC", "")]


def test_reboot_gives_boot_and_m_reboot_with_the_command_key() -> None:
    clock = Clock()
    cpe = router(clock=clock)
    session(cpe)
    clock.now += 600
    _, [response] = session(cpe, rpc.Reboot(command_key="reboot-42"))
    assert isinstance(response, rpc.RebootResponse)
    assert cpe.poll()  # wants to call in at once
    clock.now += 2
    inform, _ = session(cpe)
    assert events(inform) == [("1 BOOT", ""), ("M Reboot", "reboot-42")]
    assert cpe.tree.get("Device.DeviceInfo.UpTime") == "2"


def test_reboot_waits_for_the_end_of_the_session() -> None:
    cpe = router()
    session(cpe)
    cpe.begin_session(["6 CONNECTION REQUEST"])
    cpe.inform_acknowledged()
    cpe.handle(rpc.Reboot(command_key="k"))
    assert not any(e.code == "1 BOOT" for e in cpe.events)
    cpe.end_session(True)
    assert ("M Reboot", "k") in [(e.code, e.command_key) for e in cpe.events]


def test_factory_reset_restores_the_template_and_bootstraps() -> None:
    cpe = router()
    session(cpe)
    ssid = "Device.WiFi.SSID.1.SSID"
    original = cpe.tree.get(ssid)
    session(
        cpe,
        rpc.SetParameterValues([rpc.ParameterValue(ssid, "changed")], "p1"),
        rpc.AddObject("Device.DHCPv4.Server.Pool.1.StaticAddress.", "p2"),
    )
    assert cpe.tree.get(ssid) == "changed"
    session(cpe, rpc.FactoryReset())
    inform, _ = session(cpe)
    assert events(inform) == [("0 BOOTSTRAP", ""), ("1 BOOT", "")]
    assert cpe.tree.get(ssid) == original
    assert cpe.tree.get("Device.ManagementServer.ParameterKey") == ""
    assert cpe.tree.get("Device.DHCPv4.Server.Pool.1.StaticAddressNumberOfEntries") == "0"
    params = {p.name: p.value for p in inform.parameters}
    assert params["Device.ManagementServer.ParameterKey"] == ""


def test_download_then_transfer_complete_in_a_later_session() -> None:
    clock = Clock()
    cpe = router(clock=clock)
    session(cpe)
    download = rpc.Download(
        command_key="dl-1",
        file_type="3 Vendor Configuration File",
        url="http://127.0.0.1:7567/files/config.bin",
        delay_seconds=5,
    )
    _, [response] = session(cpe, download)
    assert isinstance(response, rpc.DownloadResponse) and response.status == 1
    assert not cpe.poll()  # not done yet
    clock.now += 10
    assert cpe.poll()
    inform = cpe.begin_session()
    assert events(inform) == [("7 TRANSFER COMPLETE", ""), ("M Download", "dl-1")]
    cpe.inform_acknowledged()
    tc = cpe.next_transfer()
    assert tc is not None and tc.command_key == "dl-1" and tc.fault.code == 0
    assert tc.start_time <= tc.complete_time and tc.complete_time != rpc.UNKNOWN_TIME
    assert cpe.events  # kept until the ACS acknowledges the TransferComplete
    cpe.transfer_acknowledged(tc)
    cpe.end_session(True)
    assert cpe.next_transfer() is None and not cpe.events


def test_unacknowledged_transfer_complete_is_sent_again() -> None:
    clock = Clock()
    cpe = router(clock=clock)
    session(cpe)
    session(cpe, rpc.Upload(command_key="up", url="http://127.0.0.1:7567/upload"))
    clock.now += 5
    cpe.begin_session()
    cpe.inform_acknowledged()
    cpe.end_session(False)  # the session broke before TransferCompleteResponse
    inform = cpe.begin_session()
    assert ("M Upload", "up") in events(inform) and inform.retry_count == 1
    assert cpe.next_transfer() is not None


def test_firmware_download_also_reboots() -> None:
    clock = Clock()
    cpe = router(clock=clock)
    session(cpe)
    session(cpe, rpc.Download(command_key="fw", url="http://127.0.0.1:7567/fw.bin"))
    clock.now += 30
    inform, _ = session(cpe)
    assert events(inform) == [("1 BOOT", ""), ("7 TRANSFER COMPLETE", ""), ("M Download", "fw")]
    assert int(cpe.tree.get("Device.DeviceInfo.UpTime")) < 30


def test_schedule_inform_fires_after_delay_seconds() -> None:
    clock = Clock()
    cpe = router(clock=clock)
    session(cpe)
    _, [response] = session(cpe, rpc.ScheduleInform(delay_seconds=60, command_key="later"))
    assert isinstance(response, rpc.ScheduleInformResponse)
    clock.now += 59
    assert not cpe.poll() and cpe.next_timer() == clock.now + 1
    clock.now += 1
    assert cpe.poll()
    inform, _ = session(cpe)
    assert events(inform) == [("3 SCHEDULED", ""), ("M ScheduleInform", "later")]
    bad = cpe.handle(rpc.ScheduleInform(delay_seconds=0))
    assert isinstance(bad, rpc.Fault) and bad.code == 9003


def test_local_change_of_a_notified_parameter_is_reported() -> None:
    cpe = router()
    session(cpe)
    rssi = "Device.Cellular.Interface.1.RSSI"
    rsrp = "Device.Cellular.Interface.1.RSRP"
    session(
        cpe,
        rpc.SetParameterAttributes(
            [
                rpc.SetParameterAttributesStruct(rssi, True, 1),
                rpc.SetParameterAttributesStruct(rsrp, True, 2),
            ]
        ),
    )
    woken = []
    cpe.on_wake = lambda: woken.append(True)
    cpe.set_local(rssi, "-70")  # passive: waits for the next Inform
    assert not cpe.poll() and not woken
    cpe.set_local(rsrp, "-99")  # active: a session soon
    assert cpe.poll() and woken
    inform, _ = session(cpe)
    assert ("4 VALUE CHANGE", "") in events(inform)
    reported = {p.name: p.value for p in inform.parameters}
    assert reported[rssi] == "-70" and reported[rsrp] == "-99"
    inform, _ = session(cpe, trigger=["2 PERIODIC"])
    assert rssi not in {p.name for p in inform.parameters}  # delivered once


def test_drift_moves_signal_values_within_bounds() -> None:
    cpe = router()
    rsrp = "Device.Cellular.Interface.1.RSRP"
    seen = set()
    for _ in range(50):
        cpe.drift()
        value = int(cpe.tree.get(rsrp))
        assert -125 <= value <= -70
        seen.add(value)
    assert len(seen) > 3


def test_acs_changes_are_not_notified_back() -> None:
    cpe = router()
    session(cpe)
    ssid = "Device.WiFi.SSID.1.SSID"
    session(
        cpe,
        rpc.SetParameterAttributes([rpc.SetParameterAttributesStruct(ssid, True, 2)]),
        rpc.SetParameterValues([rpc.ParameterValue(ssid, "by-acs")], ""),
    )
    assert not cpe.poll()


def test_inform_parameter_table_adds_parameters_to_informs() -> None:
    cpe = router()
    session(cpe)
    table = "Device.ManagementServer.InformParameter."
    _, [added, _] = session(
        cpe,
        rpc.AddObject(table, "ip"),
        rpc.GetParameterValues([table]),
    )
    n = added.instance_number
    session(
        cpe,
        rpc.SetParameterValues(
            [
                rpc.ParameterValue(f"{table}{n}.Enable", "true", "xsd:boolean"),
                rpc.ParameterValue(
                    f"{table}{n}.ParameterName", "Device.IP.Interface.*.IPv4Address.1.IPAddress"
                ),
            ],
            "ip2",
        ),
    )
    inform, _ = session(cpe, trigger=["2 PERIODIC"])
    params = {p.name: p.value for p in inform.parameters}
    assert params["Device.IP.Interface.1.IPv4Address.1.IPAddress"] == "192.168.0.1"
    assert params["Device.IP.Interface.2.IPv4Address.1.IPAddress"].startswith("100.")


def test_unknown_methods_get_9000_and_rpc_methods_are_listed() -> None:
    cpe = router()
    fault = cpe.handle(rpc.UnknownMessage(name="ChangeDUState"))
    assert isinstance(fault, rpc.Fault) and fault.code == 9000
    methods = cpe.handle(rpc.GetRPCMethods())
    assert isinstance(methods, rpc.GetRPCMethodsResponse)
    wanted = {"GetParameterValues", "SetParameterValues", "AddObject", "Reboot"}
    assert wanted <= set(methods.methods)


def test_failed_session_keeps_events_and_counts_retries() -> None:
    cpe = router()
    first = cpe.begin_session()
    cpe.end_session(False)
    second = cpe.begin_session()
    assert events(second) == events(first) and second.retry_count == 1
    cpe.inform_acknowledged()
    cpe.end_session(True)
    third = cpe.begin_session(["2 PERIODIC"])
    assert events(third) == [("2 PERIODIC", "")] and third.retry_count == 0


def test_state_round_trip_makes_the_next_inform_a_boot() -> None:
    cpe = router()
    session(
        cpe, rpc.SetParameterValues([rpc.ParameterValue("Device.WiFi.SSID.1.SSID", "kept")], "s1")
    )
    again = router()
    again.load_state(cpe.save_state())
    inform = again.begin_session()
    assert events(inform) == [("1 BOOT", "")]
    assert again.tree.get("Device.WiFi.SSID.1.SSID") == "kept"
    params = {p.name: p.value for p in inform.parameters}
    assert params["Device.ManagementServer.ParameterKey"] == "s1"


def test_refused_transfer_complete_waits_for_the_next_regular_session() -> None:
    clock = Clock()
    cpe = router(clock=clock)
    session(cpe)
    session(cpe, rpc.Upload(command_key="up", url="http://127.0.0.1:7567/upload"))
    clock.now += 5
    assert cpe.poll()
    cpe.begin_session()
    cpe.inform_acknowledged()
    cpe.end_session(True)  # the ACS answered TransferComplete with 8005: not acknowledged
    assert not cpe.poll()  # no session storm over it
    inform = cpe.begin_session(["2 PERIODIC"])
    assert [e.code for e in inform.events] == ["7 TRANSFER COMPLETE", "M Upload", "2 PERIODIC"]
    assert cpe.next_transfer() is not None


def test_state_for_another_acs_url_bootstraps_again() -> None:
    cpe = router()
    session(cpe)
    moved = Cpe(load_template("tr181-mobile"), 3, "C000003", acs_url="http://127.0.0.1:9999/")
    moved.load_state(cpe.save_state())
    assert [e.code for e in moved.begin_session().events] == ["0 BOOTSTRAP", "1 BOOT"]
    assert moved.tree.get("Device.ManagementServer.URL") == "http://127.0.0.1:9999/"


def test_routers_of_another_serial_prefix_have_identities_of_their_own() -> None:
    """Two simulations of one profile side by side (`--serial-prefix A` and `B`) are
    different routers: an ACS keys devices on MAC and SIMs on IMEI/IMSI/ICCID, and shared
    ones made the second run's routers look like clones of the first's."""
    template = load_template("tr181-mobile")
    keys = ("mac_lan", "mac_wan", "imei", "imsi", "iccid", "msisdn")
    default = Cpe(template, 1, f"{template.serial_prefix}000001")
    runs = {p: [Cpe(template, i, f"{p}{i:06d}") for i in (1, 2)] for p in ("LABA", "LABB")}
    seen: dict[str, set[str]] = {key: {default.ident[key]} for key in keys}
    for cpes in runs.values():
        for cpe in cpes:
            for key in keys:
                assert cpe.ident[key] not in seen[key], (key, cpe.serial)
                seen[key].add(cpe.ident[key])
    # the default prefix keeps its vendor OUI; the others are locally administered MACs
    assert default.ident["mac_lan"].startswith(template.defaults[template.device_id["oui"]][:2])
    assert all(c.ident["mac_lan"].startswith("02:") for cs in runs.values() for c in cs)
    # valid as before: 15-digit IMEI with its Luhn digit, same one for the same router
    again = Cpe(template, 2, "LABA000002")
    assert again.ident == runs["LABA"][1].ident
    imei = again.ident["imei"]
    assert len(imei) == 15 and imei.isdigit()
    assert luhn(imei[:-1]) == imei


def test_credentials_set_by_the_acs_win_over_the_factory_ones_until_a_factory_reset() -> None:
    # acsd gives a router that came with the previous shared password the current one:
    # the simulator's --acs-password took it back at every run (--state), so the router
    # authenticated with the old password for ever.
    ms = "Device.ManagementServer."
    cpe = router()
    cpe.set_factory_credentials({"Username": "C000003", "Password": "factory-pw"})
    assert cpe.tree.get(ms + "Password") == "factory-pw"
    session(cpe, rpc.SetParameterValues([rpc.ParameterValue(ms + "Password", "acs-pw")], "r1"))
    assert cpe.tree.get(ms + "Password") == "acs-pw" and cpe.acs_credentials == {"Password"}

    again = router()
    again.load_state(cpe.save_state())
    again.set_factory_credentials({"Username": "C000003", "Password": "factory-pw"})
    assert again.tree.get(ms + "Password") == "acs-pw"
    assert again.tree.get(ms + "Username") == "C000003"  # (the ACS set no username)
    again.factory_reset()
    assert again.tree.get(ms + "Password") == "factory-pw" and not again.acs_credentials
