"""Names a CPE lacks: a 9005 on a read with many names is narrowed down by halves, and what
CPEs of one kind lacked is asked for apart when the next of that kind is read, so a boot
storm of one model does not pay the search on every router."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from acsd.cwmp import rpc
from acsd.cwmp.session import CwmpSession
from acsd.provisioning.absent import MAX_NAMES, AbsentHints, kind_of
from acsd.provisioning.driver import ProvisioningDriver
from acsd.provisioning.profiles import load_profiles
from acsd.sim.cpe import Cpe
from acsd.sim.runner import Simulation
from acsd.store.base import CpeIdentity
from api_world import SEED_BODY, seed_body
from cpe_steps import answer_until_done
from wire import Wire, envelope, inform_body

PROFILES = load_profiles()
IDENTITY = CpeIdentity(oui="00D09E", product_class="Box", serial_number="ABS000001")
CELLULAR = "Device.Cellular.Interface."
PPP = "Device.PPP.Interface."
#: (a leaf: the simulated TP-Link has no DHCPv6 client either)
DHCPV6 = "Device.DHCPv6.Client.1.Interface"


# --- end to end ------------------------------------------------------------------------------


async def test_the_second_router_of_a_kind_is_asked_apart_for_what_the_first_lacked(
    daemon, tmp_path: Path
):
    # A fixed-line TP-Link has neither a cellular modem nor PPP (nor, simulated, a DHCPv6
    # client): three of the names read.
    sim = Simulation(daemon.cwmp_url, ["tplink-tr181"], 3, serial_prefix="AH", concurrency=1)
    for router in sim.routers:
        daemon.apply({**SEED_BODY, "serialNumber": router.serial})
    assert (await sim.run_once()).ok == 3
    first, second, third = sim.routers

    calls = first.stats.session_gpvs(0)
    asked = calls[0]
    assert CELLULAR in asked and PPP in asked and DHCPV6 in asked
    # The listing of Device.'s top-level objects names neither Cellular nor PPP nor DHCPv6:
    # all are lacking, and the rest is read in one more call, not searched for by halves.
    read = first.stats.rpcs[0][:3]
    assert read == ["GetParameterValues", "GetParameterNames", "GetParameterValues"]
    assert calls[1:] == [[n for n in asked if n not in (CELLULAR, PPP, DHCPV6)]]

    # The next routers of the kind: the rest is read in one call, and one listing of
    # Device. confirms that this one lacks both objects too (not a call for each).
    rest = [n for n in asked if n not in (CELLULAR, PPP, DHCPV6)]
    for router in (second, third):
        assert router.stats.rpcs[0][:2] == ["GetParameterValues", "GetParameterNames"]
        assert router.stats.session_gpvs(0) == [rest]

    # and they end as the first did: provisioned, with the status read in full.
    statuses = [daemon.device_json(r.serial) for r in sim.routers]
    assert {d["state"] for d in statuses} == {"ACTIVE"}
    assert all(d["status"]["provisioned"] for d in statuses)
    fields = {k for k, v in statuses[0]["status"].items() if v not in (None, "")}
    assert fields and all(
        {k for k, v in d["status"].items() if v not in (None, "")} == fields for d in statuses
    )


async def test_after_a_restart_a_known_router_teaches_its_kind_before_the_next_bootstrap(
    daemon_factory, tmp_path: Path
):
    first = daemon_factory()
    known = Simulation(first.cwmp_url, ["tplink-tr181"], 1, serial_prefix="AR")
    first.apply({**SEED_BODY, "serialNumber": known.routers[0].serial})
    assert (await known.run_once()).ok == 1
    first.stop()

    # A new process knows nothing of the kind until a known router of it Informs (here
    # periodically): its record says what it lacks.
    second = daemon_factory()
    known.acs_url = second.cwmp_url
    assert (await known.run_once()).ok == 1
    assert "0 BOOTSTRAP" not in known.routers[0].stats.events[-1]
    searched = [names for names in known.routers[0].stats.session_gpvs(1) if len(names) == 1]
    assert searched == []  # it knew what it lacks: nothing was searched for
    new = Simulation(second.cwmp_url, ["tplink-tr181"], 1, serial_prefix="AN")
    second.apply({**SEED_BODY, "serialNumber": new.routers[0].serial})
    assert (await new.run_once()).ok == 1
    # The rest in one call; one listing of Device. confirms both for the new router.
    calls = new.routers[0].stats.session_gpvs(0)
    assert new.routers[0].stats.rpcs[0][:2] == ["GetParameterValues", "GetParameterNames"]
    assert len(calls) == 1 and CELLULAR not in calls[0] and PPP not in calls[0]


def refusing_session(url: str, inform: rpc.Inform) -> list[list[str]]:
    """One session of a CPE of ``inform``'s kind that answers 9005 to every
    GetParameterValues (as some do while their data model loads after a boot); the names
    of each read it was asked."""
    dev = inform.device_id
    params = {p.name: p.value for p in inform.parameters}
    body = inform_body(
        dev.serial_number,
        events=("0 BOOTSTRAP", "1 BOOT"),
        params=params,
        oui=dev.oui,
        product_class=dev.product_class,
        manufacturer=dev.manufacturer,
    )
    wire = Wire(url)
    try:
        assert wire.post(envelope(body)).status == 200
        asked = answer_until_done(wire, lambda _: rpc.cpe_fault(9005, "Invalid parameter name"))
    finally:
        wire.close()
    # the reads, and the listings of the search: the top-level objects after the first
    # fault, objects whose leaves fault; each once
    listings = [r for r in asked if isinstance(r, rpc.GetParameterNames)]
    assert listings[0] == rpc.GetParameterNames(path="Device.", next_level=True), asked
    assert all(r.next_level for r in listings)
    assert len({r.path for r in listings}) == len(listings)
    assert all(isinstance(r, rpc.GetParameterValues) for r in asked if r not in listings)
    return [request.names for request in asked if request not in listings]


async def test_a_router_that_refuses_every_name_teaches_its_kind_nothing(daemon):
    """A router that answers 9005 to every name lacks nothing its kind can learn from: the
    next, healthy routers of the kind are read in one call, as if it had not been there,
    and the refusing router itself is read again in full at its next session."""
    kind_of_router = Simulation("http://127.0.0.1:9/", ["tplink-tr181"], 1, serial_prefix="RF")
    inform = kind_of_router.routers[0].begin_session(["0 BOOTSTRAP"])
    serial = inform.device_id.serial_number
    daemon.apply({**SEED_BODY, "serialNumber": serial})
    first = refusing_session(daemon.cwmp_url, inform)
    assert len(first) > 10 and [CELLULAR] in first  # searched by halves, every name refused
    device = daemon.device_json(serial)
    # Nothing was read, so nothing was applied: the job waits, no setting is "unsupported".
    assert device["state"] == "PROVISIONING" and not device["status"].get("provisioned")
    assert not device["job"]["unsupported"] and device["job"]["state"] == "PENDING"
    # and the job says why (not the log alone)
    [note] = device["job"]["notes"]
    assert re.fullmatch(
        r"not applied: the router's values could not be read \(it refused every name asked "
        r"for \(\d+\)\); the next session reads again",
        note,
    ), note
    assert daemon.events("session.read_refused")
    # Its record keeps no list of lacked names: the next session asks for everything.
    again = refusing_session(daemon.cwmp_url, inform)
    assert sorted(again[0]) == sorted(first[0])

    sim = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="OK")
    healthy = sim.routers[0]
    daemon.apply({**SEED_BODY, "serialNumber": healthy.serial})
    assert (await sim.run_once()).ok == 1
    calls = healthy.stats.session_gpvs(0)
    # The whole read first; a search by halves for the two names it lacks (as for the
    # first router of a kind), not a call per name the refusing router was asked for.
    assert sorted(calls[0]) == sorted(first[0])
    assert len(calls) < len(first[0]) / 2 + 1
    assert daemon.device_json(healthy.serial)["state"] == "ACTIVE"


async def test_new_firmware_is_asked_again_for_what_the_router_lacked(daemon):
    # What a router lacked is remembered across sessions, but not across a firmware
    # upgrade: the new firmware may well have it (cwmp-reference §8.0).
    sim = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="FW", concurrency=1)
    router = sim.routers[0]
    daemon.apply({**SEED_BODY, "serialNumber": router.serial})
    assert (await sim.run_once()).ok == 1  # BOOTSTRAP: it lacks CELLULAR and PPP
    assert (await sim.run_once()).ok == 1  # same firmware: nothing searched for
    assert [n for n in router.stats.session_gpvs(1) if len(n) == 1] == []
    assert router.stats.rpcs[1] == ["GetParameterValues"]  # nor anything listed

    version = "Device.DeviceInfo.SoftwareVersion"
    router.set_local(version, router.tree.get(version) + " upgraded")
    assert (await sim.run_once()).ok == 1
    # asked again: the rest, and one listing of Device. shows the new firmware lacks both
    calls = router.stats.session_gpvs(2)
    assert router.stats.rpcs[2][:2] == ["GetParameterValues", "GetParameterNames"]
    assert len(calls) == 1 and CELLULAR not in calls[0] and PPP not in calls[0]
    assert daemon.device_json(router.serial)["cpe"]["softwareVersion"].endswith(" upgraded")
    # Still lacking both: remembered again, so the next session searches nothing.
    assert (await sim.run_once()).ok == 1
    assert [n for n in router.stats.session_gpvs(3) if len(n) == 1] == []


@pytest.mark.parametrize("quirk", ["unknown-9003", "unknown-9002"])
async def test_a_name_faulted_with_another_code_is_narrowed_down_and_the_rest_applied(
    daemon, quirk: str
):
    """Firmware that faults a name it lacks with 9003 or 9002 instead of 9005 (GPON ONTs
    asked for DSL leaves, say) is searched by halves like 9005, the router provisioned, and
    the next session reads in one call."""
    sim = Simulation(
        daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="Q" + quirk[-4:], quirks={quirk}
    )
    router = sim.routers[0]
    daemon.apply({**SEED_BODY, "serialNumber": router.serial})
    assert (await sim.run_once()).ok == 1
    calls = router.stats.session_gpvs(0)
    if quirk == "unknown-9003":  # taken as 9005: the listing of Device. shows both lacking
        assert "GetParameterNames" in router.stats.rpcs[0]
        assert len(calls) == 2 and CELLULAR not in calls[1] and PPP not in calls[1]
    else:  # 9002 may as well mean "too large": by halves
        assert [CELLULAR] in calls and [PPP] in calls
    faults = {(e["code"], e.get("name")) for e in daemon.events("session.gpv_fault")}
    if quirk == "unknown-9002":  # a fault that may pass: each named in the log
        assert faults == {(9002, CELLULAR), (9002, PPP), (9002, DHCPV6)}
    else:
        assert faults == set()
    device = daemon.device_json(router.serial)
    assert device["state"] == "ACTIVE" and device["status"]["provisioned"] is True
    assert router.tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"
    assert device["status"]["lanIp"]

    # The next session reads the leaves status comes from, which the router has, in one call.
    assert (await sim.run_once()).ok == 1
    assert len(router.stats.session_gpvs(1)) == 1
    assert router.stats.faults[-1].session == 1  # all in the first session


TREES = sorted(p.stem for p in (Path(__file__).parent.parent / "src/acsd/sim/trees").glob("*.json"))


async def test_routers_that_fault_9002_for_each_name_they_lack_are_provisioned_at_once(daemon):
    """tr181-generic and tr181-mobile lack the 6 GHz leaves the tr181 profile reads (and
    more) and fault 9002, not 9005, for each: a name faulting alone is checked against its
    object's listing, and one not listed is lacking as after a 9005. The first session
    applies everything (before, each session failed its read on one more such name, and
    then the 6 GHz band test waited on an unread Radio.3 for good: PROVISIONING for ever)."""
    routers = []
    for tree in ("tr181-generic", "tr181-mobile"):
        sim = Simulation(
            daemon.cwmp_url, [tree], 1, serial_prefix="Q2" + tree[-4:], quirks={"unknown-9002"}
        )
        router = sim.routers[0]
        lan = router.tree.get("Device.IP.Interface.1.IPv4Address.1.IPAddress").rsplit(".", 1)[0]
        daemon.apply(seed_body(router.serial, lan))
        assert (await sim.run_once()).ok == 1  # its first session, 0 BOOTSTRAP
        routers.append((sim, router))
    for sim, router in routers:
        device = daemon.device_json(router.serial)
        assert (device["state"], device["job"]["state"]) == ("ACTIVE", "DONE"), device["job"]
        assert device["status"]["provisioned"] is True
        assert router.tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"
        faulted = {e.get("name") for e in daemon.events("session.gpv_fault")}
        # (one name of each object it lacks: the listing finds the rest)
        assert any(name.startswith("Device.WiFi.Radio.3.") for name in faulted)
        # What it lacks is remembered: the next session reads in one call.
        assert (await sim.run_once()).ok == 1
        assert router.stats.rpcs[1] == ["GetParameterValues"]
        assert daemon.device_json(router.serial)["state"] == "ACTIVE"


@pytest.mark.parametrize("tree", TREES)
async def test_every_kind_of_router_is_provisioned_when_it_faults_unknown_names_9003(
    module_daemon, tree: str
):
    # One daemon for all trees: each is a kind of its own (profile, maker, model and
    # firmware differ), so none is read with what another kind lacked; and the other tests
    # of the module, which teach it what tplink-tr181 lacks, keep daemons of their own.
    daemon = module_daemon
    sim = Simulation(
        daemon.cwmp_url, [tree], 1, serial_prefix=f"U9003-{tree}", quirks={"unknown-9003"}
    )
    router = sim.routers[0]
    assert (await sim.run_once()).ok == 1  # registered: its LAN is known
    lan = daemon.device_json(router.serial)["status"]["lanIp"].rsplit(".", 1)[0]
    daemon.apply({**seed_body(router.serial, lan), "serialNumber": router.serial})
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    device = daemon.device_json(router.serial)
    assert device["state"] == "ACTIVE" and device["job"]["state"] == "DONE", device["job"]


def test_the_simulated_trees_are_kinds_of_their_own():
    """What the test above shares its daemon on: no tree is read with what another
    tree's router lacked (a kind is a profile, maker, model and firmware)."""
    identities = set()
    for tree in TREES:
        router = Simulation("http://127.0.0.1:9/", [tree], 1).routers[0]
        inform = router.begin_session(["2 PERIODIC"])
        version = next(
            p.value for p in inform.parameters if p.name.endswith("DeviceInfo.SoftwareVersion")
        )
        identities.add((inform.device_id.oui, inform.device_id.product_class, version))
    assert len(identities) == len(TREES)


# --- the driver on its own -------------------------------------------------------------------


def driver_for(hints: AbsentHints) -> tuple[ProvisioningDriver, CwmpSession]:
    driver = ProvisioningDriver(store=None, profiles=PROFILES, hints=hints)  # type: ignore[arg-type]
    driver.profile = PROFILES.get("tr181")
    driver.identity = IDENTITY
    return driver, CwmpSession(driver=driver, remote_ip="127.0.0.1")


def values_for(names: list[str]) -> rpc.GetParameterValuesResponse:
    leaves = [n + "1.Status" if n.endswith(".") else n for n in names]
    return rpc.GetParameterValuesResponse(
        parameters=[rpc.ParameterValue(n, "1", "xsd:string") for n in leaves]
    )


NO_SUCH_NAME = rpc.Fault(code=9005, string="Invalid parameter name")


def object_of(name: str) -> str:
    return name if name.endswith(".") else name[: name.rindex(".") + 1]


def assert_halves_by_object(first: list[str], second: list[str], names: list[str]) -> None:
    """``first`` and ``second`` are ``names`` in halves (of the objects the names are in, as
    near as they go) that keep the leaves of each object together."""
    assert sorted(first + second) == sorted(names)
    objects = {object_of(n) for n in names}
    assert {object_of(n) for n in first}.isdisjoint(object_of(n) for n in second)
    assert len({object_of(n) for n in first}) == len(objects) // 2


async def test_a_9005_without_hints_lists_the_top_objects_and_then_splits_the_read_in_halves():
    driver, session = driver_for(AbsentHints())
    whole = await driver.next_request(session)
    assert isinstance(whole, rpc.GetParameterValues) and CELLULAR in whole.names
    await driver.response(session, whole, NO_SUCH_NAME)
    listing = await driver.next_request(session)
    assert listing == rpc.GetParameterNames(path="Device.", next_level=True)
    # a CPE that cannot list them: by halves
    await driver.response(session, listing, rpc.Fault(code=9002, string="Internal error"))
    first = (await driver.next_request(session)).names
    assert_halves_by_object(first, driver.fetch.queue[1], whole.names)


def top_objects(*names: str) -> rpc.GetParameterNamesResponse:
    return rpc.GetParameterNamesResponse(parameters=[rpc.ParameterInfo(n, False) for n in names])


async def test_objects_the_top_level_listing_lacks_are_taken_out_and_the_rest_read_at_once():
    driver, session = driver_for(AbsentHints())
    whole = await driver.next_request(session)
    await driver.response(session, whole, NO_SUCH_NAME)
    listing = await driver.next_request(session)
    tops = {n[: n.index(".", len("Device.")) + 1] for n in whole.names}
    there = [*sorted(tops - {"Device.Cellular.", "Device.PPP."}), "Device.RootDataModelVersion"]
    await driver.response(session, listing, top_objects(*there))
    rest = await driver.next_request(session)
    assert rest.names == [n for n in whole.names if n not in (CELLULAR, PPP)]
    await driver.response(session, rest, values_for(rest.names))
    assert driver.fetch.absent == {CELLULAR, PPP} and driver.fetch.queue == []
    assert not driver.fetch.failed
    # taught to the kind like names found by halves: the next router asks them apart
    assert driver.hints.get(kind_of("tr181", IDENTITY)) == {CELLULAR, PPP}


async def test_the_top_level_listing_is_asked_once_a_session_and_judged_by_its_objects():
    driver, session = driver_for(AbsentHints())
    whole = await driver.next_request(session)
    await driver.response(session, whole, NO_SUCH_NAME)
    listing = await driver.next_request(session)
    # firmware that ignores NextLevel lists deeper names: their top objects count
    tops = {n[: n.index(".", len("Device.")) + 1] for n in whole.names}
    deep = [t + "X.1.Status" for t in sorted(tops - {"Device.Cellular."})]
    await driver.response(session, listing, top_objects(*deep))
    rest = await driver.next_request(session)
    assert rest.names == [n for n in whole.names if n != CELLULAR]
    # the rest faults too (a name under an object that is there): by halves, not listed again
    await driver.response(session, rest, NO_SUCH_NAME)
    first = (await driver.next_request(session)).names
    assert_halves_by_object(first, driver.fetch.queue[1], rest.names)


async def test_a_top_level_listing_that_shows_none_of_the_read_is_not_believed():
    driver, session = driver_for(AbsentHints())
    whole = await driver.next_request(session)
    await driver.response(session, whole, NO_SUCH_NAME)
    listing = await driver.next_request(session)
    await driver.response(session, listing, top_objects())  # an empty answer
    first = (await driver.next_request(session)).names
    assert_halves_by_object(first, driver.fetch.queue[1], whole.names)
    assert driver.fetch.absent == set()


async def test_a_name_another_router_of_the_kind_lacked_meanwhile_goes_apart_after_a_9005():
    hints = AbsentHints()
    driver, session = driver_for(hints)
    whole = await driver.next_request(session)
    # Another session of the same kind finds out while this one's read is on its way.
    hints.absent(kind_of("tr181", IDENTITY), [CELLULAR])
    await driver.response(session, whole, NO_SUCH_NAME)
    rest = await driver.next_request(session)
    assert rest.names == [n for n in whole.names if n != CELLULAR]
    await driver.response(session, rest, values_for(rest.names))
    alone = await driver.next_request(session)
    assert alone.names == [CELLULAR]
    await driver.response(session, alone, NO_SUCH_NAME)
    assert driver.fetch.absent == {CELLULAR} and driver.fetch.queue == []


async def test_a_router_that_has_a_name_its_kind_lacked_is_read_in_full_and_the_hint_goes():
    hints = AbsentHints()
    kind = kind_of("tr181", IDENTITY)
    hints.absent(kind, [CELLULAR])
    driver, session = driver_for(hints)
    rest = await driver.next_request(session)
    assert CELLULAR not in rest.names
    await driver.response(session, rest, values_for(rest.names))
    alone = await driver.next_request(session)
    assert alone.names == [CELLULAR]
    await driver.response(session, alone, values_for([CELLULAR]))
    assert driver.values[CELLULAR + "1.Status"][0] == "1"
    assert driver.fetch.absent == set()
    assert hints.get(kind) == frozenset()  # the next router of the kind is read in one call


async def test_a_router_whose_kind_lacked_top_level_objects_lists_the_root_once_first():
    hints = AbsentHints()
    kind = kind_of("tr181", IDENTITY)
    first, session = driver_for(hints)
    whole = await first.next_request(session)
    await first.response(session, whole, NO_SUCH_NAME)
    tops = {n[: n.index(".", len("Device.")) + 1] for n in whole.names}
    there = sorted(tops - {"Device.Cellular.", "Device.PPP."})
    await first.response(session, await first.next_request(session), top_objects(*there))
    rest = await first.next_request(session)
    await first.response(session, rest, values_for(rest.names))
    assert hints.tops_lacking(kind) == {"Device.Cellular.", "Device.PPP."}

    # The next router of the kind: the rest in one call, then one listing of the root.
    driver, session = driver_for(hints)
    read = await driver.next_request(session)
    assert read.names == rest.names
    await driver.response(session, read, values_for(read.names))
    listing = await driver.next_request(session)
    assert listing == rpc.GetParameterNames(path="Device.", next_level=True)
    await driver.response(session, listing, top_objects(*there))
    assert driver.fetch.absent == {CELLULAR, PPP} and driver.fetch.queue == []
    assert driver.fetch.probe is None and not driver.fetch.failed

    # One that has a modem after all: the listing shows it, and Cellular is read too.
    modem, session = driver_for(hints)
    rest_read = await modem.next_request(session)
    assert rest_read.names == rest.names
    await modem.response(session, rest_read, values_for(rest_read.names))
    listing = await modem.next_request(session)
    await modem.response(session, listing, top_objects(*there, "Device.Cellular."))
    read = await modem.next_request(session)
    assert read.names == [CELLULAR]
    await modem.response(session, read, values_for(read.names))
    assert modem.fetch.absent == {PPP} and modem.fetch.queue == []
    assert modem.values[CELLULAR + "1.Status"][0] == "1"
    # the kind learns that its routers may have a modem: the next asks Cellular apart
    assert hints.tops_lacking(kind) == {"Device.PPP."}


async def test_a_listing_first_that_fails_leaves_the_suspects_to_be_asked_apart():
    hints = AbsentHints()
    kind = kind_of("tr181", IDENTITY)
    hints.absent(kind, [CELLULAR, PPP])  # learned from records: lacked, but not how
    driver, session = driver_for(hints)
    rest = await driver.next_request(session)
    assert CELLULAR not in rest.names and PPP not in rest.names
    await driver.response(session, rest, values_for(rest.names))
    listing = await driver.next_request(session)
    assert listing == rpc.GetParameterNames(path="Device.", next_level=True)
    await driver.response(session, listing, rpc.Fault(code=9002, string="Internal error"))
    calls = [(await driver.next_request(session)).names, *driver.fetch.queue[1:]]
    assert sorted(calls) == sorted([[CELLULAR], [PPP]])


async def test_a_rest_that_faults_too_is_judged_by_the_same_one_listing_of_the_root():
    hints = AbsentHints()
    kind = kind_of("tr181", IDENTITY)
    hints.absent(kind, [CELLULAR, PPP])
    driver, session = driver_for(hints)
    rest = await driver.next_request(session)
    await driver.response(session, rest, NO_SUCH_NAME)  # it lacks another object as well
    listing = await driver.next_request(session)
    assert listing == rpc.GetParameterNames(path="Device.", next_level=True)
    tops = {n[: n.index(".", len("Device.")) + 1] for n in rest.names}
    there = sorted(tops - {"Device.Routing."})
    await driver.response(session, listing, top_objects(*there))
    again = await driver.next_request(session)
    assert again.names == [n for n in rest.names if not n.startswith("Device.Routing.")]
    await driver.response(session, again, values_for(again.names))
    assert driver.fetch.queue == [] and driver.fetch.probe is None
    assert {CELLULAR, PPP} <= driver.fetch.absent
    assert any(n.startswith("Device.Routing.") for n in driver.fetch.absent)
    assert driver.fetch.probed == ("Device.",)  # listed once


async def test_a_bootstrap_asks_apart_for_what_the_router_itself_lacked_before():
    driver, session = driver_for(AbsentHints())
    driver.bootstrap = True
    driver.record = type("R", (), {"absent_paths": [PPP]})()  # type: ignore[assignment]
    rest = await driver.next_request(session)
    assert PPP not in rest.names
    assert driver.fetch.queue[1:] == [[PPP]]


def test_hints_are_per_kind_and_bounded():
    hints = AbsentHints(max_kinds=2)
    a = kind_of("tr181", IDENTITY)
    b = kind_of("tr181", CpeIdentity("00D09E", "Box", "X", software_version="2.0"))
    c = kind_of("tr098", IDENTITY)
    hints.absent(a, [CELLULAR])
    hints.absent(a, [PPP])
    hints.absent(b, [PPP])
    assert hints.get(a) == {CELLULAR, PPP} and hints.get(b) == {PPP}
    hints.get(a)  # a is the most recently used: c pushes b out
    hints.absent(c, [CELLULAR])
    assert len(hints) == 2 and hints.get(b) == frozenset() and hints.get(a)
    hints.present(a, [CELLULAR, "Device.Not.Hinted"])
    assert hints.get(a) == {PPP}


def test_a_kind_whose_routers_fault_ever_new_names_keeps_a_bounded_set():
    """Read plan leaves carry the router's own instance numbers: one that faults a new
    one alone at every session (or many such routers of one kind) must not grow the
    kind's hints for as long as the daemon runs."""
    hints = AbsentHints()
    kind = kind_of("tr181", IDENTITY)
    for n in range(1, 5001):
        hints.absent(kind, [f"Device.IP.Interface.{n}.IPv4Address.1.IPAddress"])
    assert 0 < len(hints.get(kind)) <= MAX_NAMES
    # still a hint of what was faulted last
    assert "Device.IP.Interface.5000.IPv4Address.1.IPAddress" in hints.get(kind)


def test_a_kind_key_stays_small_whatever_version_a_cpe_reports():
    huge = CpeIdentity("00D09E", "Box", "X", software_version="1.0." + "9" * 100_000)
    kind = kind_of("tr181", huge)
    assert len(kind[3]) == 64 and kind[3].startswith("1.0.")


#: requests that read (GetParameterValues, GetParameterNames) in the first session of the
#: first router of each simulated kind, provisioned as the seed asks: at most this many
#: (before objects were listed: tplink-tr181 13, tr181-generic 33, tr181-mobile 45,
#: tr181-wifi6e 13, the TR-098 ONTs and tplink-tr098 17, the others 1)
FIRST_READS = {
    "tplink-tr181": 3,
    "tr181-generic": 17,
    "tr181-mobile": 33,
    "tr181-wifi6e": 3,
    "tplink-tr098": 11,
    "huawei-hg8245": 11,
    "nokia-g240w": 11,
    "zte-f670l": 11,
    "tr098-dsl": 1,
    "tr098-ont": 1,
    "zyxel-vmg8825": 1,
}


async def test_the_first_session_of_each_kind_finds_what_it_lacks_in_few_requests(daemon):
    assert sorted(FIRST_READS) == TREES
    taken = {}
    for tree in TREES:
        sim = Simulation(daemon.cwmp_url, [tree], 2, serial_prefix=f"FR-{tree}", concurrency=1)
        for router in sim.routers:
            daemon.apply({**SEED_BODY, "serialNumber": router.serial})
        assert (await sim.run_once()).ok == 2
        assert (await sim.run_once()).ok == 2
        first, second = sim.routers
        rpcs, next_rpcs = first.stats.rpcs[0], second.stats.rpcs[0]
        taken[tree] = rpcs.count("GetParameterValues") + rpcs.count("GetParameterNames")
        assert daemon.device_json(first.serial)["state"] == "ACTIVE", tree
        # what the first found is a hint for the next of its kind: at most one listing (of
        # the root, confirming objects the first lacked), and no more reads than it took
        assert next_rpcs.count("GetParameterNames") <= 1, tree
        reads = next_rpcs.count("GetParameterValues") + next_rpcs.count("GetParameterNames")
        assert reads <= min(taken[tree], 1 + len(second.stats.session_gpvs(0))), tree
        # and the periodic sessions after read in one request, listing nothing
        assert first.stats.rpcs[1].count("GetParameterValues") == 1, tree
        assert "GetParameterNames" not in first.stats.rpcs[1], tree
    assert {t: n for t, n in taken.items() if n > FIRST_READS[t]} == {}, taken


OBJECT = "Device.ManagementServer."


async def leaves_of_one_object_fault(driver, session) -> list[str]:
    """Past the listing of the top-level objects (all there), down to a call with the leaves
    of ``OBJECT`` alone that faults; its names."""
    whole = await driver.next_request(session)
    await driver.response(session, whole, NO_SUCH_NAME)
    listing = await driver.next_request(session)
    tops = {n[: n.index(".", len("Device.")) + 1] for n in whole.names}
    await driver.response(session, listing, top_objects(*sorted(tops)))
    leaves = [n for n in whole.names if n.startswith(OBJECT)]
    assert len(leaves) == 2
    while (request := await driver.next_request(session)).names != leaves:
        fine = [n for n in request.names if not n.startswith(OBJECT)]
        await driver.response(
            session, request, values_for(fine) if fine == request.names else NO_SUCH_NAME
        )
    await driver.response(session, request, NO_SUCH_NAME)
    return leaves


async def test_leaves_of_one_object_that_fault_are_told_apart_by_listing_the_object():
    driver, session = driver_for(AbsentHints())
    leaves = await leaves_of_one_object_fault(driver, session)
    listing = await driver.next_request(session)
    assert listing == rpc.GetParameterNames(path=OBJECT, next_level=True)
    lacking = OBJECT + "UDPConnectionRequestAddress"
    assert lacking in leaves
    await driver.response(session, listing, top_objects(*(n for n in leaves if n != lacking)))
    # one leaf lacking does not cost its siblings: they are read in one call
    siblings = await driver.next_request(session)
    assert siblings.names == [n for n in leaves if n != lacking]
    await driver.response(session, siblings, values_for(siblings.names))
    assert driver.fetch.absent == {lacking}
    assert not [n for call in driver.fetch.queue for n in call if n.startswith(OBJECT)]


async def test_an_object_that_is_not_there_takes_its_leaves_with_it():
    driver, session = driver_for(AbsentHints())
    leaves = await leaves_of_one_object_fault(driver, session)
    listing = await driver.next_request(session)
    await driver.response(session, listing, NO_SUCH_NAME)
    assert driver.fetch.absent == set(leaves) and driver.fetch.probe is None
    assert not [n for call in driver.fetch.queue for n in call if n.startswith(OBJECT)]


async def test_an_object_listing_that_fails_or_shows_nothing_leaves_its_leaves_to_halves():
    for answer in (rpc.Fault(code=9003, string="Invalid arguments"), top_objects()):
        driver, session = driver_for(AbsentHints())
        leaves = await leaves_of_one_object_fault(driver, session)
        listing = await driver.next_request(session)
        await driver.response(session, listing, answer)
        half = len(leaves) // 2
        assert (await driver.next_request(session)).names == leaves[:half]
        assert driver.fetch.queue[1] == leaves[half:] and driver.fetch.absent == set()
        # the halves fault too: halved again, the object not listed a second time
        await driver.response(session, await driver.next_request(session), NO_SUCH_NAME)
        assert isinstance(await driver.next_request(session), rpc.GetParameterValues)


async def test_an_object_asked_whole_beside_its_leaves_is_there_when_it_is_listed():
    driver, session = driver_for(AbsentHints())
    names = [OBJECT, OBJECT + "PeriodicInformInterval", OBJECT + "NoSuchLeaf"]
    driver.fetch.started = True
    driver.fetch.probed = ("Device.",)  # past the top-level listing
    driver.fetch.queue = [names]
    await driver.response(session, await driver.next_request(session), NO_SUCH_NAME)
    listing = await driver.next_request(session)
    assert listing == rpc.GetParameterNames(path=OBJECT, next_level=True)
    await driver.response(session, listing, top_objects(OBJECT + "PeriodicInformInterval"))
    assert driver.fetch.absent == {OBJECT + "NoSuchLeaf"}
    assert (await driver.next_request(session)).names == names[:2]


async def test_a_name_the_fault_text_names_is_checked_by_listing_its_object():
    """A 9005 whose text names one of the names asked ("Invalid parameter name: X", as
    many stacks write): X's object is listed and the rest asked again. The text is a
    hint: a name the listing shows is asked alone, not taken as lacking."""
    pool = "Device.DHCPv4.Server.Pool.1."
    for named, listing_answer in (
        ("Device.PPP.Interface.", NO_SUCH_NAME),  # the object is not there
        (pool + "Interface", top_objects(pool + "Enable", pool + "Interface")),  # misled
    ):
        driver, session = driver_for(AbsentHints())
        driver.fetch.probed = ("Device.",)  # past the top-level listing
        whole = await driver.next_request(session)
        assert named in whole.names
        fault = rpc.Fault(code=9005, string=f"Invalid parameter name: {named}")
        await driver.response(session, whole, fault)
        listing = await driver.next_request(session)
        parent = named.rstrip(".").rsplit(".", 1)[0] + "."
        assert listing == rpc.GetParameterNames(path=parent, next_level=True)
        await driver.response(session, listing, listing_answer)
        calls = []
        while isinstance(call := await driver.next_request(session), rpc.GetParameterValues):
            calls.append(call.names)
            await driver.response(session, call, values_for(call.names))
        rest = [n for n in whole.names if n != named]
        if listing_answer is NO_SUCH_NAME:
            assert calls == [rest] and driver.fetch.absent == {named}
        else:
            assert calls == [[named], rest] and driver.fetch.absent == set()


def hide_the_modem(router: Cpe) -> Callable[[rpc.Message], rpc.Message]:
    """Make ``router`` firmware that hides its modem (9005 for Device.Cellular.); returns
    its own handler, to put back."""
    handle = router.handle

    def hiding(request: rpc.Message) -> rpc.Message:
        if isinstance(request, rpc.GetParameterValues) and CELLULAR in request.names:
            return rpc.cpe_fault(9005, CELLULAR)
        if isinstance(request, rpc.GetParameterNames) and request.path.startswith(
            "Device.Cellular."
        ):
            return rpc.cpe_fault(9005, request.path)
        return handle(request)

    router.handle = hiding  # type: ignore[method-assign]
    return handle


async def lacked_the_modem(daemon_factory, recheck: float, prefix: str) -> tuple:
    """A daemon re-checking lacked names every ``recheck`` s, and a tr181-mobile router
    whose first session hid its modem and which answers for it from then on; the
    (monotonic) time that session ended."""
    import time

    daemon = daemon_factory(
        provisioning={"absent_recheck_interval": recheck}, cwmp={"full_read_interval": 0}
    )
    sim = Simulation(daemon.cwmp_url, ["tr181-mobile"], 1, serial_prefix=prefix)
    router = sim.routers[0]
    handle = hide_the_modem(router)
    assert (await sim.run_once()).ok == 1
    found = time.monotonic()
    router.handle = handle  # type: ignore[method-assign]  # fixed: it answers now
    return daemon, sim, found


async def test_what_a_router_lacked_is_asked_for_again_after_the_recheck_interval(daemon_factory):
    """A name a router lacked (a 9005, or a listing that left it out) is not asked for
    again until its next BOOTSTRAP or new firmware, nor once [provisioning]
    absent_recheck_interval has passed: a buggy firmware (or a modem plugged in later)
    hides it that long at most."""
    import time

    # (6 s: the session "within the interval" must start within it on a loaded machine too)
    daemon, sim, found = await lacked_the_modem(daemon_factory, 6, "RECHK")
    router = sim.routers[0]
    assert daemon.device_json(router.serial)["status"].get("networkType") is None

    # within the interval: what it lacked is not asked for
    assert (await sim.run_once()).ok == 1
    assert not [call for call in router.stats.session_gpvs(1) if CELLULAR in call]
    time.sleep(max(0.0, found + 6.2 - time.monotonic()))
    # past it: asked for again, apart from the rest, and read
    assert (await sim.run_once()).ok == 1
    assert [CELLULAR] in router.stats.session_gpvs(2)
    assert daemon.device_json(router.serial)["status"].get("networkType") is not None
    # and no longer lacking: the next read asks for it with the rest, in one call
    assert (await sim.run_once()).ok == 1
    [call] = router.stats.session_gpvs(3)
    assert CELLULAR in call


async def test_a_shorter_recheck_interval_takes_effect_on_sighup(daemon_factory):
    """An operator who shortens absent_recheck_interval and reloads (systemctl reload)
    gets it for the next sessions; it was named in reload.restart_needed and ignored."""
    import signal
    import time

    from conftest import wait_for

    daemon, sim, found = await lacked_the_modem(daemon_factory, 3600, "RLDCHK")
    router = sim.routers[0]

    text = daemon.config.read_text()
    assert "absent_recheck_interval = 3600\n" in text
    daemon.config.write_text(
        text.replace("absent_recheck_interval = 3600", "absent_recheck_interval = 1")
    )
    daemon.proc.send_signal(signal.SIGHUP)
    [done] = wait_for(lambda: daemon.events("reload.done"), timeout=20)
    assert "restart_needed" not in done, done
    time.sleep(max(0.0, found + 1.2 - time.monotonic()))
    assert (await sim.run_once()).ok == 1
    assert [CELLULAR] in router.stats.session_gpvs(1)
    assert daemon.device_json(router.serial)["status"].get("networkType") is not None
