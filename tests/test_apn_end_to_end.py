"""APN devices (seed 003) and real CWMP sessions: a simulated 4G/5G router whose SIM is an
APN device's shows that device connected, with its network's MCC/MNC, gets the network's
APN name, and the IMEI lock records its modem, then refuses a swapped one."""

from __future__ import annotations

import json
import sqlite3

import pytest

from acsd.sim.runner import Simulation
from apiclient import Api
from apn_client import ApnApi, apns_path, network_path
from conftest import wait_for
from test_apn_api import DATE, token

CELL = "Device.Cellular.Interface.1."
HINTS = {"BillingCycleDay": 14, "EmailContact": "noc@example.com", "TenantId": "t-1"}


def mobile_router(daemon, prefix: str) -> tuple[Simulation, dict[str, str]]:
    sim = Simulation(daemon.cwmp_url, ["tr181-mobile"], 1, serial_prefix=prefix)
    tree = sim.routers[0].tree
    sim_card = {
        "serial": sim.routers[0].serial,
        "imei": tree.get(CELL + "IMEI"),
        "imsi": tree.get(CELL + "USIM.IMSI"),
        "iccid": tree.get(CELL + "USIM.ICCID"),
        "msisdn": tree.get(CELL + "USIM.MSISDN"),
    }
    return sim, sim_card


@pytest.fixture(scope="module")
def daemon(module_daemon):
    """One daemon for the module's tests: each has routers (serial prefix), SIMs and API
    accounts of its own, and reads the log for its own router's serial only."""
    return module_daemon


def events_of(daemon, name: str, serial: str) -> list[dict]:
    """The daemon's ``name`` events about the router ``serial`` (other tests share it)."""
    return [e for e in daemon.events(name) if e.get("serial") == serial]


def logged(daemon, serial: str, sessions: int) -> None:
    """The daemon's log has caught up with router ``serial``'s first ``sessions`` sessions:
    its lines come through a pipe, and an event read right after a session may not be
    there yet."""
    wait_for(lambda: len(events_of(daemon, "session.end", serial)) >= sessions)


def bind(daemon, card: dict[str, str], account: str) -> None:
    """The router's record names ``account`` as its mvnoAccount: its devices steer it."""
    daemon.apply({"serialNumber": card["serial"], "mvnoAccount": account})


async def test_a_router_with_the_devices_sim_shows_it_connected_with_mcc_mnc(daemon):
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    api, xml = ApnApi(admin, "json"), ApnApi(admin, "xml")
    sim, card = mobile_router(daemon, "APNA")
    # The SIM's IMSI as the CLI and its ICCID as the SIMNumber; a second account claims
    # the same SIM by its number only (MSISDN form of the CLI).
    by_imsi = apns_path("OPERATOR-A", "fleet")
    created = api.post(by_imsi, {"CLI": card["imsi"], "SIMNumber": card["iccid"], "Hints": HINTS})
    assert created.status == 202, created.wrapper
    device_id = created.wrapper["Meta"]["Id"]
    msisdn_cli = f"(+{card['msisdn'][:1]}){card['msisdn'][1:]}"
    by_msisdn = apns_path("OPERATOR-B", "m2m")
    assert api.post(by_msisdn, {"CLI": msisdn_cli, "Hints": HINTS}).status == 202
    put = api.put(network_path("OPERATOR-A", "fleet"), {"APN": "iot.acsd-test.example"})
    assert put.status == 200, put.wrapper
    put = api.put(network_path("OPERATOR-B", "m2m"), {"APN": "other.acsd-test.example"})
    assert put.status == 200, put.wrapper

    # A router whose record names no account is no account's, whatever SIM numbers they
    # register: one account must not set the APN of another's router, nor read its IMEI.
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    assert sim.routers[0].tree.get("Device.Cellular.AccessPoint.1.APN") == "internet"
    for device in (
        api.get(apns_path("OPERATOR-A", "fleet", device_id)).data,
        api.get(apns_path("OPERATOR-B", "m2m", msisdn_cli)).data,
    ):
        assert device["NetworkStatus"] == 0 and "LastSync" not in device
        assert device["IMEI"] is None and device["Status"] == 0
    logged(daemon, card["serial"], 2)
    said = events_of(daemon, "apn.router_not_bound", card["serial"])
    assert said and said[-1]["accounts"] == ["OPERATOR-A", "OPERATOR-B"]
    assert said[-1]["serial"] == card["serial"] and said[-1]["mvno_account"] is None

    # Bound to the first account (its mvnoAccount), the router is that account's.
    bind(daemon, card, "OPERATOR-A")
    assert (await sim.run_once()).ok == 1
    router_id = daemon.device_json(card["serial"])["_id"]
    got = api.get(apns_path("OPERATOR-A", "fleet", device_id))
    data = got.data
    assert data["NetworkStatus"] == 1 and data["Status"] == 1
    assert (data["LastConnected_MCC"], data["LastConnected_MNC"]) == ("001", "01")
    for key in ("LastSync", "LastConnected_Start", "LastConnected_End"):
        assert DATE.fullmatch(data[key]), key
    assert data["LastConnected_Start"] <= data["LastConnected_End"] == data["LastSync"]
    assert data["IMEI"] is None  # not locked: the IMEI is not recorded
    assert got.wrapper["Meta"] == {"Id": device_id, "Router": router_id}
    as_xml = xml.get(apns_path("OPERATOR-A", "fleet", device_id)).data
    assert as_xml["NetworkStatus"] == "connected" and as_xml["Status"] == "active"
    assert as_xml["LastConnected_MCC"] == "001" and as_xml["LastConnected_MNC"] == "01"
    # The other account's device is not matched to the router.
    other = api.get(apns_path("OPERATOR-B", "m2m", msisdn_cli))
    assert "LastSync" not in other.data and "Router" not in other.wrapper["Meta"]
    # This session put the network's APN on the router (its SIM was known from before).
    assert sim.routers[0].tree.get("Device.Cellular.AccessPoint.1.APN") == "iot.acsd-test.example"


async def test_one_sim_registered_twice_in_an_account_is_told_once(daemon):
    # By its IMSI in one network, by its number and card in another: the API cannot tell the
    # two are one SIM; the router's session can, and the operator is told (once, not at
    # every session), the APN being the better match's (the IMSI's).
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    api = ApnApi(admin, "json")
    sim, card = mobile_router(daemon, "APNT")
    by_cli = api.post(apns_path("OPERATOR-T", "fleet"), {"CLI": card["imsi"], "Hints": HINTS})
    assert by_cli.status == 202, by_cli.wrapper
    msisdn_cli = f"(+{card['msisdn'][:1]}){card['msisdn'][1:]}"
    by_card = api.post(
        apns_path("OPERATOR-T", "spare"), {"CLI": msisdn_cli, "SIMNumber": card["iccid"]}
    )
    assert by_card.status == 202, by_card.wrapper
    assert api.put(network_path("OPERATOR-T", "fleet"), {"APN": "fleet.example"}).status == 200
    assert api.put(network_path("OPERATOR-T", "spare"), {"APN": "spare.example"}).status == 200
    bind(daemon, card, "OPERATOR-T")
    for _ in range(3):
        assert (await sim.run_once()).ok == 1
    logged(daemon, card["serial"], 3)
    said = events_of(daemon, "apn.sim_claimed_twice", card["serial"])
    assert len(said) == 1, said
    assert said[0]["level"] == "warning"
    assert said[0]["apn_devices"] == [
        {"id": by_cli.wrapper["Meta"]["Id"], "network": "fleet", "by": ["imsi"]},
        {"id": by_card.wrapper["Meta"]["Id"], "network": "spare", "by": ["iccid", "msisdn"]},
    ]
    assert sim.routers[0].tree.get("Device.Cellular.AccessPoint.1.APN") == "fleet.example"


async def test_a_locked_sim_in_a_modem_that_says_no_imei_is_refused_until_one_does(daemon):
    # LockIMEI with no IMEI recorded yet: a modem that reports none was let on (active,
    # connected, the private APN sent), and the lock then took the next modem's IMEI.
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    api = ApnApi(admin, "json")
    sim, card = mobile_router(daemon, "APNNOIMEI")
    router = sim.routers[0]
    router.set_local(CELL + "IMEI", "")
    bind(daemon, card, "OPERATOR-N")
    body = {"CLI": card["imsi"], "LockIMEI": True, "Hints": HINTS}
    device_id = api.post(apns_path("OPERATOR-N", "locked"), body).wrapper["Meta"]["Id"]
    one = apns_path("OPERATOR-N", "locked", device_id)
    assert (
        api.put(network_path("OPERATOR-N", "locked"), {"APN": "n.acsd-test.example"}).status == 200
    )
    apn = "Device.Cellular.AccessPoint.1.APN"
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    got = api.get(one)
    assert got.data["Status"] == 2 and got.data["NetworkStatus"] == 0, got.data
    assert got.data["IMEI"] is None and got.wrapper["Meta"]["RefusedIMEI"] == "none reported"
    assert router.tree.get(apn) != "n.acsd-test.example"
    # a modem that says its IMEI takes the lock, and the name
    router.set_local(CELL + "IMEI", card["imei"])
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    got = api.get(one)
    assert got.data["IMEI"] == card["imei"] and got.data["Status"] == 1, got.data
    assert "RefusedIMEI" not in got.wrapper["Meta"]
    assert router.tree.get(apn) == "n.acsd-test.example"


async def test_a_lock_no_modem_has_taken_yet_lets_the_first_that_says_its_imei_on_at_once(
    daemon,
):
    # The router's SIM known from an earlier session, a LockIMEI device made for it since:
    # the Inform carries no IMEI, and the SIM was taken for refused at it. The session
    # recorded the IMEI (the lock) but sent no APN, and nothing asked for another: the
    # router waited for its next periodic Inform, while the API said connected.
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    api = ApnApi(admin, "json")
    sim, card = mobile_router(daemon, "APNFIRST")
    bind(daemon, card, "OPERATOR-F")
    assert (await sim.run_once()).ok == 1  # the record learns the SIM
    body = {"CLI": card["imsi"], "LockIMEI": True, "Hints": HINTS}
    device_id = api.post(apns_path("OPERATOR-F", "locked"), body).wrapper["Meta"]["Id"]
    put = api.put(network_path("OPERATOR-F", "locked"), {"APN": "first.acsd-test.example"})
    assert put.status == 200, put.wrapper
    assert (await sim.run_once()).ok == 1
    assert sim.routers[0].tree.get("Device.Cellular.AccessPoint.1.APN") == "first.acsd-test.example"
    data = api.get(apns_path("OPERATOR-F", "locked", device_id)).data
    assert data["IMEI"] == card["imei"] and data["Status"] == 1 and data["NetworkStatus"] == 1


async def test_the_imei_lock_records_the_modem_then_refuses_a_swapped_one(daemon):
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    api, xml = ApnApi(admin, "json"), ApnApi(admin, "xml")
    sim, card = mobile_router(daemon, "APNL")
    bind(daemon, card, "OPERATOR-L")
    path = apns_path("OPERATOR-L", "locked")
    body = {"CLI": card["imsi"], "SIMNumber": card["iccid"], "LockIMEI": True, "Hints": HINTS}
    device_id = api.post(path, body).wrapper["Meta"]["Id"]
    one = apns_path("OPERATOR-L", "locked", device_id)
    put = api.put(network_path("OPERATOR-L", "locked"), {"APN": "lock.acsd-test.example"})
    assert put.status == 200, put.wrapper
    apn = "Device.Cellular.AccessPoint.1.APN"

    def audit(action: str) -> list[dict]:
        items = admin.get("/audit").body["items"]
        return [e for e in items if e["action"] == action and e["resourceId"] == device_id]

    # First session: the modem's IMEI is recorded.
    assert (await sim.run_once()).ok == 1
    data = api.get(one).data
    assert data["IMEI"] == card["imei"] and data["LockIMEI"] is True
    assert data["NetworkStatus"] == 1 and data["Version"] == 2
    [locked] = audit("apn.device.imei_locked")
    assert locked["after"] == {"router": card["serial"], "IMEI": card["imei"]}

    # The SIM moves to another modem: refused, and the recorded IMEI stays.
    swapped = "359999000099991"
    sim.routers[0].set_local(CELL + "IMEI", swapped)
    assert (await sim.run_once()).ok == 1
    got = api.get(one)
    data = got.data
    assert data["IMEI"] == card["imei"]
    assert data["NetworkStatus"] == 0 and data["Status"] == 2
    assert got.wrapper["Meta"]["RefusedIMEI"] == swapped
    as_xml = xml.get(one).data
    assert (as_xml["NetworkStatus"], as_xml["Status"]) == ("disconnected", "refused")
    assert as_xml["IMEI"] == card["imei"]
    [refused] = audit("apn.device.refused")
    assert refused["after"]["RefusedIMEI"] == swapped
    assert refused["after"]["IMEI"] == card["imei"]
    assert refused["after"]["router"] == card["serial"]
    assert refused["tokenName"] == "cwmp session"
    wait_for(lambda: events_of(daemon, "apn.imei_refused", card["serial"]))

    # The refused modem gets nothing from acsd: not the network's APN.
    assert sim.routers[0].tree.get(apn) == "internet"

    # Still the wrong modem: still refused, said once.
    assert (await sim.run_once()).ok == 1
    assert api.get(one).data["NetworkStatus"] == 0
    assert len(audit("apn.device.refused")) == 1

    # A modem that reports no IMEI cannot show it is the locked one: refused as well.
    sim.routers[0].set_local(CELL + "IMEI", "")
    assert (await sim.run_once()).ok == 1
    got = api.get(one)
    assert got.data["Status"] == 2 and got.wrapper["Meta"]["RefusedIMEI"] == "none reported"
    assert sim.routers[0].tree.get(apn) == "internet"

    # The right modem again: connected, nothing refused any more.
    sim.routers[0].set_local(CELL + "IMEI", card["imei"])
    assert (await sim.run_once()).ok == 1
    got = api.get(one)
    assert got.data["NetworkStatus"] == 1 and got.data["Status"] == 1
    assert got.data["IMEI"] == card["imei"]
    assert "RefusedIMEI" not in got.wrapper["Meta"]
    assert sim.routers[0].tree.get(apn) == "lock.acsd-test.example"


async def test_a_record_from_before_sim_numbers_were_kept_still_gets_its_apn(daemon):
    api = ApnApi(Api(daemon.api_url, token(daemon, "ADMIN")), "json")
    sim, card = mobile_router(daemon, "APNO")
    bind(daemon, card, "OPERATOR-O")
    created = api.post(apns_path("OPERATOR-O", "legacy"), {"CLI": card["imsi"], "Hints": HINTS})
    assert created.status == 202, created.wrapper
    assert (
        api.put(network_path("OPERATOR-O", "legacy"), {"APN": "old.acsd-test.example"}).status
        == 200
    )
    assert (await sim.run_once()).ok == 1  # reports the SIM

    def sim_column() -> dict | None:
        with sqlite3.connect(daemon.db) as db:
            (text,) = db.execute(
                "SELECT sim FROM devices WHERE serial_key = ?", (card["serial"].lower(),)
            ).fetchone()
        return None if text is None else json.loads(text)

    assert sim_column() == {k: card[k] for k in ("imsi", "iccid", "msisdn")}
    # As a record written before acsd kept SIM numbers: they are only in its tree.
    with sqlite3.connect(daemon.db) as db:
        db.execute("UPDATE devices SET sim = NULL WHERE serial_key = ?", (card["serial"].lower(),))
    assert (await sim.run_once()).ok == 1
    assert sim.routers[0].tree.get("Device.Cellular.AccessPoint.1.APN") == "old.acsd-test.example"
    assert sim_column() == {k: card[k] for k in ("imsi", "iccid", "msisdn")}


async def test_without_drift_checks_a_stored_apn_that_differs_is_set_and_then_left(
    daemon_factory,
):
    # Drift checks off: a session reads the settings only when something says they differ.
    # For the APN that is the router's stored APN against its SIM's network's.
    daemon = daemon_factory(provisioning={"drift_check": False})
    api = ApnApi(Api(daemon.api_url, token(daemon, "ADMIN")), "json")
    sim, card = mobile_router(daemon, "APND")
    router = sim.routers[0]
    bind(daemon, card, "OPERATOR-D")
    created = api.post(apns_path("OPERATOR-D", "nodrift"), {"CLI": card["imsi"], "Hints": HINTS})
    assert created.status == 202, created.wrapper
    put = api.put(network_path("OPERATOR-D", "nodrift"), {"APN": "nodrift.acsd-test.example"})
    assert put.status == 200
    assert (await sim.run_once()).ok == 1  # BOOTSTRAP: reports the SIM
    assert (await sim.run_once()).ok == 1
    assert router.tree.get("Device.Cellular.AccessPoint.1.APN") == "nodrift.acsd-test.example"
    assert "SetParameterValues" in router.stats.rpcs[1]
    # The stored tree now holds the APN that was set: the next session leaves it alone.
    assert (await sim.run_once()).ok == 1
    assert "SetParameterValues" not in router.stats.rpcs[2]


async def test_a_disabled_apn_device_gets_no_apn(daemon):
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    api = ApnApi(admin, "json")
    sim, card = mobile_router(daemon, "APND")
    bind(daemon, card, "OPERATOR-D")
    path = apns_path("OPERATOR-D", "off")
    body = {"CLI": card["imsi"], "Enabled": False, "Hints": HINTS}
    device_id = api.post(path, body).wrapper["Meta"]["Id"]
    put = api.put(network_path("OPERATOR-D", "off"), {"APN": "off.acsd-test.example"})
    assert put.status == 200, put.wrapper
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    assert sim.routers[0].tree.get("Device.Cellular.AccessPoint.1.APN") == "internet"
    data = api.get(apns_path("OPERATOR-D", "off", device_id)).data
    assert data["Enabled"] is False
    # not on the private network through this router (it read connected and active)
    assert (data["NetworkStatus"], data["Status"]) == (0, 0), data


async def test_a_router_bound_to_an_account_takes_only_that_accounts_devices(daemon):
    """A router whose record names an API account as its mvnoAccount (seed 000: the MVNO
    account it is linked to) is steered by that account alone: another account that
    registers its SIM's numbers can neither set its APN nor read its IMEI."""
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    api = ApnApi(admin, "json")
    sim, card = mobile_router(daemon, "APNB")
    assert (await sim.run_once()).ok == 1  # registered, unclaimed
    bind(daemon, card, "OWNER-A")

    # Only the other account knows the SIM: nothing is pushed or recorded.
    intruder = apns_path("INTRUDER", "spy")
    body = {"CLI": card["imsi"], "SIMNumber": card["iccid"], "LockIMEI": True, "Hints": HINTS}
    created = api.post(intruder, body)
    assert created.status == 202, created.wrapper
    spy_id = created.wrapper["Meta"]["Id"]
    assert api.put(network_path("INTRUDER", "spy"), {"APN": "spy.example"}).status == 200
    assert api.post(apns_path("OWNER-A", "none"), {"CLI": "(+45)11111111", "Hints": HINTS})
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    apn = "Device.Cellular.AccessPoint.1.APN"
    assert sim.routers[0].tree.get(apn) == "internet"
    spied = api.get(apns_path("INTRUDER", "spy", spy_id))
    assert spied.data["IMEI"] is None and "LastSync" not in spied.data
    assert "Router" not in spied.wrapper["Meta"]

    # Its own account's device steers it.
    logged(daemon, card["serial"], 3)
    before = len(events_of(daemon, "apn.router_not_bound", card["serial"]))
    owned = apns_path("OWNER-A", "fleet")
    created = api.post(owned, {"CLI": card["imsi"], "LockIMEI": True, "Hints": HINTS})
    assert created.status == 202, created.wrapper
    assert api.put(network_path("OWNER-A", "fleet"), {"APN": "own.example"}).status == 200
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    assert sim.routers[0].tree.get(apn) == "own.example"
    mine = api.get(apns_path("OWNER-A", "fleet", created.wrapper["Meta"]["Id"])).data
    assert mine["IMEI"] == card["imei"] and mine["NetworkStatus"] == 1
    assert api.get(apns_path("INTRUDER", "spy", spy_id)).data["IMEI"] is None
    logged(daemon, card["serial"], 5)
    said = events_of(daemon, "apn.router_not_bound", card["serial"])
    assert said[-1]["accounts"] == ["INTRUDER"] and said[-1]["mvno_account"] == "OWNER-A"
    assert len(said) == before  # steered by its own account: nothing to say
