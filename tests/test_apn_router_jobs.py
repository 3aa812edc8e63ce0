"""APN devices (seed 003) and their routers' jobs: what an operator reads of a router, or of
an APN device, while a change of the APN API is on its way to the router and once it is
there, as for a wifi or DHCP change of the router's own record.

The tests share one daemon (module_daemon): each has routers (serial prefixes) and API
accounts of its own. The routers answer Connection Requests (sim.crserver)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator

import pytest

from acsd.sim.cpe import Cpe
from acsd.sim.crserver import ConnectionRequestServer
from apiclient import Api
from apn_client import ApnApi, apns_path, network_path
from test_apn_api import token
from test_apn_end_to_end import HINTS, mobile_router

APN = "Device.Cellular.AccessPoint.1.APN"


@pytest.fixture(scope="module")
def daemon(module_daemon_factory):
    """The module's daemon: a router asked to connect is asked again a second later (not
    ten), as the tests ask one router more than once within seconds."""
    return module_daemon_factory(cwmp={"connection_request_interval": 1})


@pytest.fixture
async def cr_server() -> AsyncIterator[ConnectionRequestServer]:
    """A Connection Request server for the test's routers (``listen(cpe)``)."""
    server = ConnectionRequestServer({})
    await server.start()
    yield server
    await server.stop()


def listen(server: ConnectionRequestServer, cpe: Cpe) -> None:
    server.routers[cpe.serial] = cpe
    cpe.set_connection_request_url(server.url_for(cpe.serial))


def revision(daemon, serial: str) -> int:
    """The router record's revision (a job is a new one; the API shows it on a job that a
    session has taken up only)."""
    with sqlite3.connect(daemon.db) as db:
        (found,) = db.execute(
            "SELECT revision FROM devices WHERE serial_key = ?", (serial.lower(),)
        ).fetchone()
    return found


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_new_apn_name_is_a_job_of_the_router_until_the_router_holds_it(daemon, cr_server):
    """PUT of a network's APN name: the routers of its SIMs read PROVISIONING (a new
    revision, the job pending) and are asked to connect; the session that sets the name
    makes them ACTIVE again, as a wifi change does."""
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    api = ApnApi(admin, "json")
    sim, card = mobile_router(daemon, "APNJOB")
    cpe = sim.routers[0]
    listen(cr_server, cpe)
    daemon.apply({"serialNumber": card["serial"], "mvnoAccount": "JOBS"})
    created = api.post(apns_path("JOBS", "fleet"), {"CLI": card["imsi"], "Hints": HINTS})
    assert created.status == 202, created.wrapper
    assert api.put(network_path("JOBS", "fleet"), {"APN": "one.acsd-test.example"}).status == 200
    for _ in range(2):  # the SIM reported, then the APN set
        assert (await sim.run_once()).ok == 1
    assert cpe.tree.get(APN) == "one.acsd-test.example"
    path = f"/network/device/{daemon.device_json(card['serial'])['_id']}"
    before = admin.get(path).body
    assert before["state"] == "ACTIVE", before
    cpe.cr_requested = False

    put = api.put(network_path("JOBS", "fleet"), {"APN": "two.acsd-test.example"})
    assert put.status == 200, put.wrapper
    pending = admin.get(path).body
    assert pending["state"] == "PROVISIONING" and pending["jobs"] == 1, pending
    assert pending["status"]["provisioned"] is False
    await until(lambda: cpe.cr_requested)
    assert (await sim.run_once()).ok == 1
    assert cpe.tree.get(APN) == "two.acsd-test.example"
    done = admin.get(path).body
    assert done["state"] == "ACTIVE" and done["jobs"] == 0, done
    assert done["status"]["provisioned"] is True

    # The same name again changes nothing on the router: no new job.
    assert api.put(network_path("JOBS", "fleet"), {"APN": "two.acsd-test.example"}).status == 200
    assert admin.get(path).body["state"] == "ACTIVE"


async def test_a_sim_moved_into_another_router_is_a_job_of_that_router(daemon, cr_server):
    """The account's SIM is taken from one of its routers and put in another: the session
    that finds it there learned of it too late to set its network's APN name (it looked
    the name up for the SIM it knew at its Inform). That router reads PROVISIONING, not
    ACTIVE, and is asked to connect: the next session sets the name."""
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    api = ApnApi(admin, "json")
    first, first_card = mobile_router(daemon, "APNMOVA")
    second, second_card = mobile_router(daemon, "APNMOVB")
    old, new = first.routers[0], second.routers[0]
    listen(cr_server, new)
    for card in (first_card, second_card):
        daemon.apply({"serialNumber": card["serial"], "mvnoAccount": "MOVES"})
    created = api.post(apns_path("MOVES", "fleet"), {"CLI": first_card["imsi"], "Hints": HINTS})
    assert created.status == 202, created.wrapper
    one = apns_path("MOVES", "fleet", created.wrapper["Meta"]["Id"])
    assert api.put(network_path("MOVES", "fleet"), {"APN": "moves.acsd-test.example"}).status == 200
    for _ in range(2):
        assert (await first.run_once()).ok == 1
        assert (await second.run_once()).ok == 1
    assert old.tree.get(APN) == "moves.acsd-test.example" and new.tree.get(APN) == "internet"
    path = f"/network/device/{daemon.device_json(second_card['serial'])['_id']}"
    assert admin.get(path).body["state"] == "ACTIVE"
    new.cr_requested = False

    cell = "Device.Cellular.Interface.1.USIM."
    for name in ("IMSI", "ICCID", "MSISDN"):
        new.set_local(cell + name, old.tree.get(cell + name))
        old.set_local(cell + name, "")
    assert (await second.run_once()).ok == 1
    got = api.get(one)
    assert got.data["NetworkStatus"] == 1 and got.wrapper["Meta"]["Router"] == path.split("/")[-1]
    assert new.tree.get(APN) == "internet"  # not yet on the router ...
    pending = admin.get(path).body
    assert pending["state"] == "PROVISIONING" and pending["jobs"] == 1, pending  # ... nor read so
    await until(lambda: new.cr_requested)
    assert (await second.run_once()).ok == 1
    assert new.tree.get(APN) == "moves.acsd-test.example"
    assert admin.get(path).body["state"] == "ACTIVE"


async def test_a_device_made_again_enabled_is_a_job_of_the_router_with_its_sim(daemon, cr_server):
    """Enabled false, then true: the device is removed and made again (the API has no
    other way), while its SIM stays in the router. The router, which got no APN name
    while the device was off, reads PROVISIONING and is asked to connect; the session
    that follows sets the name."""
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    api = ApnApi(admin, "json")
    sim, card = mobile_router(daemon, "APNOFFON")
    cpe = sim.routers[0]
    listen(cr_server, cpe)
    daemon.apply({"serialNumber": card["serial"], "mvnoAccount": "OFFON"})
    devices = apns_path("OFFON", "fleet")
    body = {"CLI": card["imsi"], "Enabled": False, "Hints": HINTS}
    off = api.post(devices, body)
    assert off.status == 202, off.wrapper
    assert api.put(network_path("OFFON", "fleet"), {"APN": "on.acsd-test.example"}).status == 200
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    assert cpe.tree.get(APN) == "internet"
    path = f"/network/device/{daemon.device_json(card['serial'])['_id']}"
    assert admin.get(path).body["state"] == "ACTIVE"
    assert api.delete(apns_path("OFFON", "fleet", off.wrapper["Meta"]["Id"])).status == 202
    cpe.cr_requested = False

    on = api.post(devices, {**body, "Enabled": True})
    assert on.status == 202, on.wrapper
    pending = admin.get(path).body
    assert pending["state"] == "PROVISIONING" and pending["jobs"] == 1, pending
    await until(lambda: cpe.cr_requested)
    assert (await sim.run_once()).ok == 1
    assert cpe.tree.get(APN) == "on.acsd-test.example"
    assert admin.get(path).body["state"] == "ACTIVE"
    # made again while the router holds the name already: nothing for it to do. (The
    # DELETE itself is a job of the router, its name to be taken back: see
    # test_a_removed_device_takes_its_private_apn_back_from_the_router.)
    assert api.delete(apns_path("OFFON", "fleet", on.wrapper["Meta"]["Id"])).status == 202
    removed = revision(daemon, card["serial"])
    assert api.post(devices, {**body, "Enabled": True}).status == 202
    assert revision(daemon, card["serial"]) == removed  # no job of its own
    assert (await sim.run_once()).ok == 1
    assert "SetParameterValues" not in cpe.stats.rpcs[-1]
    assert cpe.tree.get(APN) == "on.acsd-test.example"
    assert admin.get(path).body["state"] == "ACTIVE"


async def test_a_router_that_refuses_the_apn_name_is_not_asked_again_at_each_new_sim(
    daemon, cr_server
):
    """The job of a name the router refused retries it on its back-off: a session that
    finds the SIM numbers changed (a modem that reports its MSISDN one session in two)
    gives it no new job, nor a Connection Request, every time."""
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    api = ApnApi(admin, "json")
    sim, card = mobile_router(daemon, "APNREFUSE")
    cpe = sim.routers[0]
    cpe.faults[APN] = 9007
    listen(cr_server, cpe)
    daemon.apply({"serialNumber": card["serial"], "mvnoAccount": "REFUSES"})
    created = api.post(apns_path("REFUSES", "fleet"), {"CLI": card["imsi"], "Hints": HINTS})
    assert created.status == 202, created.wrapper
    assert api.put(network_path("REFUSES", "fleet"), {"APN": "no.acsd-test.example"}).status == 200
    assert (await sim.run_once()).ok == 1  # the SIM reported: a job, and asked to connect
    await until(lambda: cpe.cr_requested)
    assert (await sim.run_once()).ok == 1  # the name refused
    path = f"/network/device/{daemon.device_json(card['serial'])['_id']}"
    refused = admin.get(path).body
    assert [f["code"] for f in refused["job"]["faults"]] == [9007], refused["job"]
    msisdn = "Device.Cellular.Interface.1.USIM.MSISDN"
    number = cpe.tree.get(msisdn)
    for value in ("", number):
        cpe.set_local(msisdn, value)
        assert (await sim.run_once()).ok == 1
        await asyncio.sleep(1.2)  # past the Connection Request interval
        assert not cpe.cr_requested
        assert admin.get(path).body["job"]["revision"] == refused["job"]["revision"]


async def test_a_new_apn_name_is_no_job_of_a_router_refused_or_without_the_sim(daemon, cr_server):
    """A router whose modem the IMEI lock refuses, and one whose SIM was taken out, cannot
    take a network's new name: neither reads PROVISIONING nor is asked to connect for it
    (the device shows why: Status refused, NetworkStatus disconnected). Each takes the
    name once it can: the right modem at its next session, the SIM put back as a job."""
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    api = ApnApi(admin, "json")
    locked, locked_card = mobile_router(daemon, "APNNOJOBL")
    emptied, emptied_card = mobile_router(daemon, "APNNOJOBE")
    cpes = {"locked": locked.routers[0], "emptied": emptied.routers[0]}
    for card in (locked_card, emptied_card):
        daemon.apply({"serialNumber": card["serial"], "mvnoAccount": "NOJOBS"})
    ids = {}
    for name, card in (("locked", locked_card), ("emptied", emptied_card)):
        body = {"CLI": card["imsi"], "LockIMEI": True, "Hints": HINTS}
        created = api.post(apns_path("NOJOBS", "fleet"), body)
        assert created.status == 202, created.wrapper
        ids[name] = created.wrapper["Meta"]["Id"]
        listen(cr_server, cpes[name])
    assert api.put(network_path("NOJOBS", "fleet"), {"APN": "a.acsd-test.example"}).status == 200
    for _ in range(2):
        assert (await locked.run_once()).ok == 1
        assert (await emptied.run_once()).ok == 1
    assert {cpe.tree.get(APN) for cpe in cpes.values()} == {"a.acsd-test.example"}
    imei = cpes["locked"].tree.get("Device.Cellular.Interface.1.IMEI")
    cpes["locked"].set_local("Device.Cellular.Interface.1.IMEI", "359999000099991")
    cpes["emptied"].set_local("Device.Cellular.Interface.1.USIM.Status", "None")
    assert (await locked.run_once()).ok == 1
    assert (await emptied.run_once()).ok == 1
    paths = {
        name: f"/network/device/{daemon.device_json(card['serial'])['_id']}"
        for name, card in (("locked", locked_card), ("emptied", emptied_card))
    }
    assert api.get(apns_path("NOJOBS", "fleet", ids["locked"])).data["Status"] == 2
    assert api.get(apns_path("NOJOBS", "fleet", ids["emptied"])).data["NetworkStatus"] == 0
    before = {name: admin.get(path).body for name, path in paths.items()}
    await asyncio.sleep(1.2)  # past the Connection Request interval of earlier jobs
    for cpe in cpes.values():
        cpe.cr_requested = False

    assert api.put(network_path("NOJOBS", "fleet"), {"APN": "b.acsd-test.example"}).status == 200
    for name, path in paths.items():
        now = admin.get(path).body
        assert now["state"] == "ACTIVE" and now["jobs"] == 0, (name, now)
        assert now["job"]["revision"] == before[name]["job"]["revision"], name
    await asyncio.sleep(1.2)  # a Connection Request would have gone by now
    assert not any(cpe.cr_requested for cpe in cpes.values())

    # The right modem again: its next session sets the name. The SIM put back: a job.
    cpes["locked"].set_local("Device.Cellular.Interface.1.IMEI", imei)
    assert (await locked.run_once()).ok == 1
    assert cpes["locked"].tree.get(APN) == "b.acsd-test.example"
    cpes["emptied"].set_local("Device.Cellular.Interface.1.USIM.Status", "Valid")
    assert (await emptied.run_once()).ok == 1
    assert admin.get(paths["emptied"]).body["state"] == "PROVISIONING"
    await until(lambda: cpes["emptied"].cr_requested)
    assert (await emptied.run_once()).ok == 1
    assert cpes["emptied"].tree.get(APN) == "b.acsd-test.example"


async def test_a_removed_device_takes_its_private_apn_back_from_the_router(daemon, cr_server):
    """DELETE of the device: its SIM is off the network, and a router left dialing the
    network's private APN would be cut off. The router reads PROVISIONING, is asked to
    connect, and its session sets the profile's fallback (tr181: "", the mobile network's
    default APN). Only acsd's own name is taken back: a router whose customer has set
    another APN by the time of its session keeps that one."""
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    api = ApnApi(admin, "json")
    sim, card = mobile_router(daemon, "APNGONE")
    own, own_card = mobile_router(daemon, "APNOWNAPN")
    cpe, own_cpe = sim.routers[0], own.routers[0]
    ids = {}
    for router, c in ((cpe, card), (own_cpe, own_card)):
        listen(cr_server, router)
        daemon.apply({"serialNumber": c["serial"], "mvnoAccount": "GONE"})
        created = api.post(apns_path("GONE", "fleet"), {"CLI": c["imsi"], "Hints": HINTS})
        assert created.status == 202, created.wrapper
        ids[c["serial"]] = created.wrapper["Meta"]["Id"]
    assert api.put(network_path("GONE", "fleet"), {"APN": "gone.acsd-test.example"}).status == 200
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
        assert (await own.run_once()).ok == 1
    assert {cpe.tree.get(APN), own_cpe.tree.get(APN)} == {"gone.acsd-test.example"}
    path = f"/network/device/{daemon.device_json(card['serial'])['_id']}"
    own_path = f"/network/device/{daemon.device_json(own_card['serial'])['_id']}"
    await asyncio.sleep(1.2)  # past the Connection Request interval of earlier jobs
    cpe.cr_requested = False

    for serial in (card["serial"], own_card["serial"]):
        assert api.delete(apns_path("GONE", "fleet", ids[serial])).status == 202
    pending = admin.get(path).body
    assert pending["state"] == "PROVISIONING" and pending["jobs"] == 1, pending
    await until(lambda: cpe.cr_requested)
    assert (await sim.run_once()).ok == 1
    assert cpe.tree.get(APN) == ""
    done = admin.get(path).body
    assert done["state"] == "ACTIVE" and done["status"]["provisioned"] is True, done
    assert (await sim.run_once()).ok == 1  # set once: nothing more to do
    assert "SetParameterValues" not in cpe.stats.rpcs[-1]
    # the customer's own APN, set through the router's web UI meanwhile, stays
    own_cpe.set_local(APN, "customer.example")
    for _ in range(2):
        assert (await own.run_once()).ok == 1
    assert own_cpe.tree.get(APN) == "customer.example"
    assert admin.get(own_path).body["state"] == "ACTIVE"

    # Made again: the private name goes back to the router.
    again = api.post(apns_path("GONE", "fleet"), {"CLI": card["imsi"]})
    assert again.status == 202, again.wrapper
    assert admin.get(path).body["state"] == "PROVISIONING"
    assert (await sim.run_once()).ok == 1
    assert cpe.tree.get(APN) == "gone.acsd-test.example"


@pytest.mark.parametrize("then", ["renamed", "cleared"])
async def test_a_removed_device_takes_back_the_name_acsd_set_though_its_network_changed(
    daemon, then
):
    # The network renamed (or its name cleared) before the router's next session, then
    # the device removed: the router kept dialing the old private name, which only the
    # network's current name was compared with. acsd remembers the name it wrote.
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    api = ApnApi(admin, "json")
    account = f"MOVED{then.upper()}"
    sim, card = mobile_router(daemon, f"APNMV{then[0].upper()}")
    cpe = sim.routers[0]
    daemon.apply({"serialNumber": card["serial"], "mvnoAccount": account})
    created = api.post(apns_path(account, "fleet"), {"CLI": card["imsi"], "Hints": HINTS})
    assert created.status == 202, created.wrapper
    assert api.put(network_path(account, "fleet"), {"APN": "old.acsd-test.example"}).status == 200
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    assert cpe.tree.get(APN) == "old.acsd-test.example"
    renamed = "new.acsd-test.example" if then == "renamed" else None
    assert api.put(network_path(account, "fleet"), {"APN": renamed}).status == 200
    device = created.wrapper["Meta"]["Id"]
    assert api.delete(apns_path(account, "fleet", device)).status == 202
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    assert cpe.tree.get(APN) == ""
    # the customer's own name, set afterwards, stays
    cpe.set_local(APN, "customer.example")
    assert (await sim.run_once()).ok == 1
    assert cpe.tree.get(APN) == "customer.example"
