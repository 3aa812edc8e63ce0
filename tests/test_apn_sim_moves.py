"""A SIM that moves between routers, and an APN device ended and created again: what the
APN device shows (seed 003: NetworkStatus, IMEI lock) follows the SIM, not the router."""

from __future__ import annotations

import pytest

from apiclient import Api
from apn_client import ApnApi, apns_path, network_path
from conftest import BACKENDS
from test_apn_api import token
from test_apn_end_to_end import CELL, HINTS, bind, mobile_router

APN = "Device.Cellular.AccessPoint.1.APN"


@pytest.fixture(scope="module", params=BACKENDS)
def daemon(request, module_daemon_factory):
    """A daemon on each store backend: what these tests check is written by the store
    (the router a SIM was last seen in, NetworkStatus, Version), in its SQL. One per
    backend for the module: each test has routers (serial prefix), SIMs and API accounts
    of its own, and reads only its own APN devices and router records."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_cluster").new_database()
        return module_daemon_factory(store={"url": url})
    return module_daemon_factory()


def register(api: ApnApi, account: str, card: dict[str, str], *, iccid: bool = False) -> str:
    """The API path of a new APN device of ``account`` for ``card``'s SIM (by its IMSI,
    and its ICCID when ``iccid``)."""
    body = {"CLI": card["imsi"], "Hints": HINTS}
    if iccid:
        body["SIMNumber"] = card["iccid"]
    created = api.post(apns_path(account, "fleet"), body)
    assert created.status == 202, created.wrapper
    return apns_path(account, "fleet", created.wrapper["Meta"]["Id"])


def move_sim(card: dict[str, str], to, away) -> None:
    """``card``'s SIM goes into router ``to``; ``away`` gets a SIM no APN device has."""
    for leaf, key in (("USIM.IMSI", "imsi"), ("USIM.ICCID", "iccid"), ("USIM.MSISDN", "msisdn")):
        to.set_local(CELL + leaf, card[key])
    away.set_local(CELL + "USIM.IMSI", "001019999999999")
    away.set_local(CELL + "USIM.ICCID", "8900199999999999999")
    away.set_local(CELL + "USIM.MSISDN", "4599999999")


async def test_a_sim_moved_to_another_router_takes_its_apn_device_along(daemon):
    api = ApnApi(Api(daemon.api_url, token(daemon, "ADMIN")), "json")
    sim_a, card_a = mobile_router(daemon, "MOVEA")
    sim_b, card_b = mobile_router(daemon, "MOVEB")
    bind(daemon, card_a, "OPERATOR-M")
    bind(daemon, card_b, "OPERATOR-M")
    one = register(api, "OPERATOR-M", card_a, iccid=True)
    assert api.put(network_path("OPERATOR-M", "fleet"), {"APN": "m.example"}).status == 200
    for _ in range(2):
        assert (await sim_a.run_once()).ok == 1
        assert (await sim_b.run_once()).ok == 1
    a, b = sim_a.routers[0], sim_b.routers[0]
    assert a.tree.get(APN) == "m.example" and b.tree.get(APN) == "internet"
    a_id = daemon.device_json(card_a["serial"])["_id"]
    b_id = daemon.device_json(card_b["serial"])["_id"]
    assert api.get(one).wrapper["Meta"]["Router"] == a_id

    move_sim(card_a, to=b, away=a)
    for _ in range(2):
        assert (await sim_b.run_once()).ok == 1
        assert (await sim_a.run_once()).ok == 1
    got = api.get(one)
    assert got.wrapper["Meta"]["Router"] == b_id
    assert got.data["NetworkStatus"] == 1
    assert b.tree.get(APN) == "m.example"


async def test_an_ended_device_created_again_locks_anew(daemon):
    api = ApnApi(Api(daemon.api_url, token(daemon, "ADMIN")), "json")
    sim_a, card_a = mobile_router(daemon, "LOCKA")
    sim_b, card_b = mobile_router(daemon, "LOCKB")
    bind(daemon, card_a, "OPERATOR-R")
    bind(daemon, card_b, "OPERATOR-R")
    path = apns_path("OPERATOR-R", "fleet")
    body = {"CLI": card_a["imsi"], "LockIMEI": True, "Hints": HINTS}
    first = api.post(path, body).wrapper["Meta"]["Id"]
    assert api.put(network_path("OPERATOR-R", "fleet"), {"APN": "r.example"}).status == 200
    assert (await sim_a.run_once()).ok == 1
    assert api.get(apns_path("OPERATOR-R", "fleet", first)).data["IMEI"] == card_a["imei"]
    assert api.delete(apns_path("OPERATOR-R", "fleet", first)).status == 202
    # The SIM goes to router B and its device is made again: locked to B's modem now.
    move_sim(card_a, to=sim_b.routers[0], away=sim_a.routers[0])
    again = api.post(path, body)
    assert again.status == 202, again.wrapper
    second = again.wrapper["Meta"]["Id"]
    assert second != first
    for _ in range(2):
        assert (await sim_b.run_once()).ok == 1
    by_cli = api.get(apns_path("OPERATOR-R", "fleet", card_a["imsi"]))
    assert by_cli.wrapper["Meta"]["Id"] == second
    assert by_cli.data["IMEI"] == card_b["imei"] and by_cli.data["Status"] == 1
    assert sim_b.routers[0].tree.get(APN) == "r.example"
    ended = api.get(apns_path("OPERATOR-R", "fleet", first)).data
    assert ended["IMEI"] == card_a["imei"] and ended["EndDate"] is not None
    listed = api.get(path).data
    assert [d["CLI"] for d in listed] == [card_a["imsi"]]
    everything = api.get(path, query={"IncludeEnded": "true"}).data
    assert len(everything) == 2


async def test_a_sim_taken_out_of_its_router_is_no_longer_shown_connected(daemon):
    """Seed 003: NetworkStatus is the device's connection status. Its router now reports
    another SIM: the device is not connected through it any more (LastConnected_End stays
    the last session that saw it)."""
    api = ApnApi(Api(daemon.api_url, token(daemon, "ADMIN")), "json")
    sim_a, card_a = mobile_router(daemon, "GONEA")
    sim_b, _ = mobile_router(daemon, "GONEB")
    bind(daemon, card_a, "OPERATOR-G")
    one = register(api, "OPERATOR-G", card_a)
    for _ in range(2):
        assert (await sim_a.run_once()).ok == 1
    before = api.get(one).data
    assert before["NetworkStatus"] == 1
    # into a router of no account's (or one acsd does not manage): nobody reports it
    move_sim(card_a, to=sim_b.routers[0], away=sim_a.routers[0])
    assert (await sim_a.run_once()).ok == 1
    after = api.get(one).data
    assert after["NetworkStatus"] == 0, after
    assert after["LastConnected_End"] == before["LastConnected_End"]
    assert (await sim_a.run_once()).ok == 1
    assert api.get(one).data["NetworkStatus"] == 0


async def test_a_deleted_router_is_no_longer_named_as_the_sims_router(daemon):
    # DELETE of the router's record: its next session releases it and the record goes.
    # The APN device went on naming the gone record's id in Meta.Router.
    api = ApnApi(Api(daemon.api_url, token(daemon, "ADMIN")), "json")
    sim_a, card_a = mobile_router(daemon, "GONED")
    bind(daemon, card_a, "OPERATOR-D")
    one = register(api, "OPERATOR-D", card_a, iccid=True)
    assert (await sim_a.run_once()).ok == 1
    router_id = daemon.device_json(card_a["serial"])["_id"]
    assert api.get(one).wrapper["Meta"]["Router"] == router_id
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    assert admin.delete(f"/network/device/{router_id}").status == 202
    assert (await sim_a.run_once()).ok == 1  # the release
    assert admin.get(f"/network/device/{router_id}").status == 404
    got = api.get(one)
    assert "Router" not in got.wrapper["Meta"]
    # released: no router acsd knows reports it any more (it showed connected for ever)
    assert got.data["NetworkStatus"] == 0


@pytest.mark.parametrize("how", ["sim taken out", "numbers kept", "modem unplugged"])
async def test_a_router_that_reports_no_sim_shows_its_device_disconnected(daemon, how):
    """The SIM taken out (its numbers read empty, or kept by the firmware under a USIM
    Status of None: "no card available") or the modem unplugged (its object is gone,
    9005): the router reports no SIM. The device it was last seen in is not connected
    through it any more, as when another SIM is reported (the session said nothing)."""
    api = ApnApi(Api(daemon.api_url, token(daemon, "ADMIN")), "json")
    # a router (and SIM) and an account of each case's own: they share the daemon
    mark = {"sim taken out": "T", "numbers kept": "K", "modem unplugged": "U"}[how]
    sim_a, card_a = mobile_router(daemon, "NOSIM" + mark)
    bind(daemon, card_a, "OPERATOR-N" + mark)
    one = register(api, "OPERATOR-N" + mark, card_a, iccid=True)
    for _ in range(2):
        assert (await sim_a.run_once()).ok == 1
    before = api.get(one).data
    assert before["NetworkStatus"] == 1
    router = sim_a.routers[0]
    if how == "modem unplugged":
        router.tree._remove(CELL)  # (no CWMP call removes it: the hardware went)
    elif how == "numbers kept":
        router.set_local(CELL + "USIM.Status", "None")
    else:
        for leaf in ("USIM.IMSI", "USIM.ICCID", "USIM.MSISDN"):
            router.set_local(CELL + leaf, "")
    assert (await sim_a.run_once()).ok == 1
    after = api.get(one).data
    assert after["NetworkStatus"] == 0, after
    assert after["LastConnected_End"] == before["LastConnected_End"]
    assert (await sim_a.run_once()).ok == 1
    assert api.get(one).data["NetworkStatus"] == 0


async def test_a_router_given_another_sim_keeps_the_apn_it_took_for_it(daemon):
    """A SIM of another carrier put into the router, which takes that carrier's APN (by
    itself, or its user sets it): the session that first reports the new SIM must not put
    back the APN of the SIM that was in it before (the router would lose its uplink)."""
    api = ApnApi(Api(daemon.api_url, token(daemon, "ADMIN")), "json")
    sim_a, card_a = mobile_router(daemon, "SWAPA")
    bind(daemon, card_a, "OPERATOR-S")
    created = api.post(apns_path("OPERATOR-S", "fleet"), {"CLI": card_a["imsi"], "Hints": HINTS})
    assert created.status == 202, created.wrapper
    assert api.put(network_path("OPERATOR-S", "fleet"), {"APN": "s.example"}).status == 200
    for _ in range(2):
        assert (await sim_a.run_once()).ok == 1
    router = sim_a.routers[0]
    assert router.tree.get(APN) == "s.example"
    other = {"imsi": "001019999999998", "iccid": "8900199999999999998", "msisdn": "4599999998"}
    for leaf, key in (("USIM.IMSI", "imsi"), ("USIM.ICCID", "iccid"), ("USIM.MSISDN", "msisdn")):
        router.set_local(CELL + leaf, other[key])
    router.set_local(APN, "other-carrier.example")
    for _ in range(2):
        assert (await sim_a.run_once()).ok == 1
        assert router.tree.get(APN) == "other-carrier.example"


async def test_a_replaced_router_no_longer_shows_its_sim_connected(daemon):
    """The record's router swapped (PATCH serialNumber) for one that called in before: the
    record is the new router's from then on. The APN device of the old router's SIM went
    on showing connected, in the new router (Meta.Router), which reports another SIM."""
    api = ApnApi(Api(daemon.api_url, token(daemon, "ADMIN")), "json")
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    sim_old, card_old = mobile_router(daemon, "SWOLD")
    sim_new, _ = mobile_router(daemon, "SWNEW")
    bind(daemon, card_old, "OPERATOR-W")
    one = register(api, "OPERATOR-W", card_old)
    assert (await sim_old.run_once()).ok == 1
    assert (await sim_new.run_once()).ok == 1  # called in: an unclaimed record
    record = daemon.device_json(card_old["serial"])["_id"]
    assert api.get(one).data["NetworkStatus"] == 1
    swap = admin.patch(f"/network/device/{record}", {"serialNumber": sim_new.routers[0].serial})
    assert swap.status == 200, swap.body
    for _ in range(2):
        assert (await sim_new.run_once()).ok == 1
    got = api.get(one)
    assert got.data["NetworkStatus"] == 0, got.data
    assert "Router" not in got.wrapper["Meta"]


async def test_a_router_linked_to_another_account_no_longer_reports_to_the_first(daemon):
    """The router's record names another API account (mvnoAccount) or none: the first
    account's device of its SIM gets no more reports from it (seed 000: the MVNO account
    it is linked to), and showed connected through it for ever."""
    api = ApnApi(Api(daemon.api_url, token(daemon, "ADMIN")), "json")
    sim_a, card_a = mobile_router(daemon, "UNLINK")
    bind(daemon, card_a, "OPERATOR-U")
    one = register(api, "OPERATOR-U", card_a)
    assert (await sim_a.run_once()).ok == 1
    connected = api.get(one).data
    assert connected["NetworkStatus"] == 1
    bind(daemon, card_a, "OPERATOR-V")
    got = api.get(one)
    # (the unlinking itself: a client polling Version sees the change)
    assert got.data["Version"] == connected["Version"] + 1, got.data
    assert (await sim_a.run_once()).ok == 1
    got = api.get(one)
    assert got.data["NetworkStatus"] == 0, got.data
    assert "Router" not in got.wrapper["Meta"]
    # linked back: reported again
    bind(daemon, card_a, "OPERATOR-U")
    assert (await sim_a.run_once()).ok == 1
    assert api.get(one).data["NetworkStatus"] == 1


async def test_version_moves_when_a_router_changes_what_the_device_shows(daemon):
    """Seed 003: every change to the device increments its Version. A client that polls
    Version saw the SIM go offline (NetworkStatus) or come back without Version moving;
    and sessions that change nothing a client reads leave it as it is."""
    api = ApnApi(Api(daemon.api_url, token(daemon, "ADMIN")), "json")
    sim_a, card_a = mobile_router(daemon, "VERS")
    bind(daemon, card_a, "OPERATOR-VER")
    created = api.post(apns_path("OPERATOR-VER", "fleet"), {"CLI": card_a["imsi"],
                                                            "Hints": HINTS})  # fmt: skip
    assert created.status == 202, created.wrapper
    assert created.data["Version"] == 1
    one = apns_path("OPERATOR-VER", "fleet", created.wrapper["Meta"]["Id"])
    assert (await sim_a.run_once()).ok == 1
    seen = api.get(one).data
    assert (seen["Status"], seen["NetworkStatus"], seen["Version"]) == (1, 1, 2)
    assert (await sim_a.run_once()).ok == 1
    again = api.get(one).data
    assert again["LastSync"] > seen["LastSync"] and again["Version"] == 2

    router = sim_a.routers[0]
    for leaf in ("USIM.IMSI", "USIM.ICCID", "USIM.MSISDN"):
        router.set_local(CELL + leaf, "")
    assert (await sim_a.run_once()).ok == 1
    gone = api.get(one).data
    assert (gone["NetworkStatus"], gone["Version"]) == (0, 3)

    for leaf, key in (("USIM.IMSI", "imsi"), ("USIM.ICCID", "iccid"), ("USIM.MSISDN", "msisdn")):
        router.set_local(CELL + leaf, card_a[key])
    assert (await sim_a.run_once()).ok == 1
    back = api.get(one).data
    assert (back["NetworkStatus"], back["Version"]) == (1, 4)
