"""A CPE that refuses one parameter: the others are applied, the job shows the fault, and
acsd retries with back-off instead of in a loop."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from acsd.cwmp import rpc
from acsd.cwmp.session import CwmpSession
from acsd.cwmp.soap import Envelope, render_envelope
from acsd.provisioning.driver import ProvisioningDriver
from acsd.provisioning.jobs import new_memory
from acsd.provisioning.plan import Plan, RowAdd
from acsd.provisioning.profiles import load_profiles
from acsd.provisioning.session_state import Apply
from acsd.sim.runner import Simulation
from acsd.sim.session import SMALL_GPV
from api_world import SEED_BODY, SEED_REQUEST, build_world, device_body, seed_body
from conftest import drop_first, wait_for
from cpe_steps import answer_request, answer_until_done
from wire import Wire, envelope, inform_body

SSID5 = "Device.WiFi.SSID.2.SSID"
# the LAN of the tr181-generic simulated router (192.168.1.1/24)
LAN = "192.168.1"

# Most tests share one daemon (module_daemon): each has routers (a serial prefix) of its own
# and reads only their events from the log.


def errors(daemon, serial: str) -> list[dict]:
    return [e for e in daemon.events("cwmp.session_error") if e.get("serial") == serial]


def gpv_faults(daemon, serial: str) -> list[dict]:
    return [e for e in daemon.events("session.gpv_fault") if e.get("serial") == serial]


async def test_one_refused_parameter_leaves_the_others_applied(module_daemon):
    daemon = module_daemon
    sim = Simulation(
        daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PF", faults={SSID5: 9007}
    )
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, LAN))
    assert (await sim.run_once()).ok == 1
    router = sim.router(serial)
    # One SetParameterValues refused as a whole (9003 naming SSID.2), one without it.
    spv = [r for r in router.stats.rpcs[-1] if r == "SetParameterValues"]
    assert len(spv) == 2
    assert router.tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"
    assert router.tree.get("Device.DHCPv4.Server.Pool.1.MinAddress") == f"{LAN}.100"
    assert router.tree.get(SSID5) != "Need4Speed"

    device = daemon.device_json(serial)
    assert device["state"] == "PROVISIONING" and device["jobs"] == 1
    assert device["status"]["provisioned"] is False
    job = device["job"]
    assert job["state"] == "PENDING"
    [fault] = job["faults"]
    assert fault["setting"] == "wifi.5g.ssid" and fault["parameter"] == SSID5
    assert fault["code"] == 9007 and fault["message"]
    assert fault["attempts"] == 1 and fault["nextRetry"]
    # and the log names it, for an operator looking for why the router is PROVISIONING
    [line] = [e for e in daemon.events("session.settings_refused") if e["serial"] == serial]
    assert line["faults"] == [{"setting": "wifi.5g.ssid", "parameter": SSID5, "code": 9007}]

    # Within the back-off (300 s by default) later sessions do not ask again.
    for _ in range(3):
        assert (await sim.run_once()).ok == 1
        assert "SetParameterValues" not in router.stats.rpcs[-1]
    assert router.stats.sessions == 4


async def _refusing_router_applied(daemon, prefix: str, quirk: str):
    """A router that refuses the 5 GHz SSID (9007) the way ``quirk`` says, after one
    session with the seed's settings: the rest of them applied. (serial, router)"""
    sim = Simulation(
        daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix=prefix, faults={SSID5: 9007},
        quirks={quirk},
    )  # fmt: skip
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, LAN))
    assert (await sim.run_once()).ok == 1
    router = sim.router(serial)
    assert router.tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"
    assert router.tree.get("Device.DHCPv4.Server.Pool.1.MinAddress") == f"{LAN}.100"
    return serial, router


async def test_a_refusal_that_names_no_parameter_is_narrowed_down(module_daemon):
    # Many stacks refuse a whole SetParameterValues for one bad value with a bare 9003
    # (no SetParameterValuesFault): acsd halves the batch, by blocks of settings that go
    # together, until the refused block is alone, and everything else is applied.
    daemon = module_daemon
    serial, router = await _refusing_router_applied(daemon, "PN", "bare-faults")
    # acsd's own management values too: without them Connection Requests cannot work
    assert router.tree.get("Device.ManagementServer.ConnectionRequestUsername") != ""
    assert router.tree.get(SSID5) != "Need4Speed"
    spv = [r for r in router.stats.rpcs[-1] if r == "SetParameterValues"]
    assert 2 < len(spv) <= 10, router.stats.rpcs[-1]

    job = daemon.device_json(serial)["job"]
    assert job["state"] == "PENDING"
    settings = {f["setting"] for f in job["faults"]}
    # only the refused band's block waits for the retry, with the code the CPE gave
    assert "wifi.5g.ssid" in settings and all(s.startswith("wifi.5g.") for s in settings)
    assert {f["code"] for f in job["faults"]} == {9003}


KEY5 = "Device.WiFi.AccessPoint.2.Security.KeyPassphrase"


@pytest.mark.parametrize("quirks", [{"echo-values"}, {"echo-values", "bare-faults"}])
async def test_a_refused_secret_is_not_repeated_on_the_job(module_daemon, quirks):
    # Firmware that quotes the refused value in its FaultString (per parameter, or in the
    # fault of the whole batch) must not put the wifi key on the job every token of the
    # customer reads, nor in the log.
    daemon = module_daemon
    prefix = "PE" + str(len(quirks))
    sim = Simulation(
        daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix=prefix, faults={KEY5: 9007},
        quirks=quirks,
    )  # fmt: skip
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, LAN))
    assert (await sim.run_once()).ok == 1
    key = SEED_BODY["wifi"]["password5G"]
    faults = daemon.device_json(serial)["job"]["faults"]
    refused = [f for f in faults if f["setting"] == "wifi.5g.password"]
    # the message is kept, with the value masked
    assert refused and all(
        "='***'" in f["message"] or "value '***'" in f["message"] for f in refused
    ), faults
    assert key not in json.dumps(faults)
    assert key not in daemon.log_text()


def split_router(daemon, prefix: str) -> Simulation:
    return Simulation(
        daemon.cwmp_url,
        ["tr181-generic"],
        1,
        serial_prefix=prefix,
        faults={SSID5: 9007},
        quirks={"bare-faults"},
    )


@pytest.mark.parametrize("sent", [1, 2])
async def test_a_session_cut_short_after_a_split_leaves_the_job_pending(daemon_factory, sent):
    # The request limit ends the session while parts of a split batch are still unsent:
    # they were not applied, so the job is not done (it used to say DONE).
    # Where the split starts depends on what the profile reads and writes: an unlimited
    # session says, and the limit lets through only the first ``sent`` of its batches.
    whole = split_router(first := daemon_factory(), "PW")
    first.apply(seed_body(whole.routers[0].serial, LAN))
    await whole.run_once()
    rpcs = whole.routers[0].stats.rpcs[-1]
    assert rpcs.count("SetParameterValues") > 2, rpcs
    limit = rpcs.index("SetParameterValues") + sent
    assert first.stop() == 0  # (one service per SQLite file)
    daemon = daemon_factory(cwmp={"max_requests_per_session": limit})
    sim = split_router(daemon, f"PL{limit}")
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, LAN))
    await sim.run_once()
    device = daemon.device_json(serial)
    assert device["state"] == "PROVISIONING" and device["status"]["provisioned"] is False
    job = device["job"]
    assert job["state"] == "PENDING", job
    assert any("not sent" in f["message"] for f in job["faults"]), job["faults"]


async def test_a_job_is_done_only_when_the_router_holds_everything(daemon_factory):
    # Whatever request the session's limit cuts it at (reads, the AddObject of the
    # reservation, the SetParameterValues), the job says DONE only if all went out.
    for limit in range(1, 8):
        daemon = daemon_factory(cwmp={"max_requests_per_session": limit})
        sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix=f"PC{limit}")
        serial = sim.routers[0].serial
        daemon.apply(seed_body(serial, LAN))
        await sim.run_once()
        tree = sim.router(serial).tree.flat()
        holds = tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet" and any(
            k.endswith(".Yiaddr") and v == f"{LAN}.10" for k, v in tree.items()
        )
        job = daemon.device_json(serial).get("job") or {}
        assert holds or job.get("state") != "DONE", (limit, job)
        assert daemon.stop() == 0  # (one service per SQLite file: the next limit's)


async def test_a_batch_applied_but_never_answered_is_read_again_not_held_back(
    daemon_factory, monkeypatch
):
    # The router applies the SetParameterValues and drops the connection before its
    # answer: the session ends at its timeout. The changes are not "not sent" with a
    # back-off: the job stays pending and the next session reads what the router holds.
    daemon = daemon_factory(cwmp={"session_timeout": 1.0})
    dropped = drop_first(monkeypatch, rpc.SetParameterValuesResponse)
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PU")
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, LAN))
    await sim.run_once()
    assert dropped and sim.router(serial).tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"

    def job() -> dict:
        return daemon.device_json(serial).get("job") or {}

    wait_for(lambda: job().get("state") == "PENDING", timeout=15)
    assert not [f for f in job()["faults"] if "not sent" in f["message"]], job()
    assert (await sim.run_once()).ok == 1
    assert job()["state"] == "DONE", job()


async def test_an_empty_post_for_an_answer_is_not_taken_for_a_refusal_to_split(
    module_daemon, monkeypatch
):
    # A CPE that answers a SetParameterValues with an empty POST: no refusal to narrow
    # down, nor one to back off from (taken for a refusal of every setting sent, the job
    # failed after retry_max_attempts such sessions though the router may well have
    # applied them): the job stays pending (it used to say DONE with nothing applied), as
    # for an answer lost with its connection, and the next session reads and sends again.
    daemon = module_daemon
    from acsd.sim import session as sim_session

    post = sim_session.Session._post

    async def silent(self, message, echo_id=None):
        if isinstance(message, rpc.Fault) and message.spv_faults:
            message = None
        return await post(self, message, echo_id)

    monkeypatch.setattr(sim_session.Session, "_post", silent)
    sim = Simulation(
        daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PE", faults={SSID5: 9007}
    )
    serial = sim.routers[0].serial
    daemon.apply({**seed_body(serial, LAN), "driftCheck": False})
    await sim.run_once()
    device = daemon.device_json(serial)
    assert device["state"] == "PROVISIONING", device.get("job")
    assert device["job"]["state"] == "PENDING"
    assert not device["job"].get("faults"), device["job"]
    router = sim.router(serial)
    sent = sum(SSID5 in dict(spv) for spv in router.stats.spv)
    await sim.run_once()  # no back-off: sent again at once
    assert sum(SSID5 in dict(spv) for spv in router.stats.spv) == sent + 1


async def test_a_router_that_cannot_answer_a_large_read_is_read_in_halves(module_daemon):
    # Weak CPEs fail a GetParameterValues of many names as a whole (9004 resources
    # exceeded, or 9002): acsd asks in halves instead of giving up on the router. A 9004
    # to a read of leaves is the firmware's limit on names per call: later sessions ask
    # for at most half as many in each call, rather than have their read fail first and
    # go through in halves every time (15 calls, 7 of them faults, in every session).
    daemon = module_daemon
    sim = Simulation(
        daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PS", quirks={"small-gpv"}
    )
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, LAN))
    router = sim.router(serial)
    for _ in range(4):  # the first read (whole objects), then the read plan's leaves
        assert (await sim.run_once()).ok == 1
        device = daemon.device_json(serial)
        status = device["status"]
        assert status["lanIp"] == f"{LAN}.1" and status["wanIp"], status
        assert device["state"] == "ACTIVE", device.get("job")
    assert router.tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"
    assert router.tree.get("Device.DHCPv4.Server.Pool.1.MinAddress") == f"{LAN}.100"
    refused = [
        f.session for f in router.stats.faults if (f.method, f.code) == ("GetParameterValues", 9004)
    ]
    # the first session's read of whole objects, and the first read of the plan's leaves
    assert refused and max(refused) <= 2, router.stats.rpcs
    reads = [rpcs.count("GetParameterValues") for rpcs in router.stats.rpcs]
    assert reads[0] > 2 and reads[2] == reads[3] < reads[1], reads
    # what the last session asked for: the plan's leaves, at most SMALL_GPV names a call
    assert all(len(names) <= SMALL_GPV for names in router.stats.gpv[-reads[3] :])
    # New firmware may take more at once: asked in larger calls again (and refused again)
    version = "Device.DeviceInfo.SoftwareVersion"
    router.set_local(version, router.tree.get(version) + " upgraded")
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    assert [f.session for f in router.stats.faults if f.code == 9004][-1] >= 5
    device = daemon.device_json(serial)
    assert device["state"] == "ACTIVE" and device["status"]["lanIp"] == f"{LAN}.1", device
    assert device["status"]["wanIp"], device["status"]


async def test_retries_back_off_and_stop(daemon_factory):
    daemon = daemon_factory(provisioning={"retry_base": 0.3, "retry_max_attempts": 3})
    sim = Simulation(
        daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PB", faults={SSID5: 9007}
    )
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, LAN))
    router = sim.router(serial)
    tried = []
    for _ in range(12):
        assert (await sim.run_once()).ok == 1
        tried.append(
            any(SSID5 in dict(spv) for spv in router.stats.spv[-3:])
            and "SetParameterValues" in router.stats.rpcs[-1]
        )
        await asyncio.sleep(0.35)
    attempts = [i for i, t in enumerate(tried) if t]
    # Three attempts with growing gaps (0.3 s, 0.6 s ...), then never again.
    assert len(attempts) == 3, tried
    assert attempts[0] == 0 and attempts[2] - attempts[1] >= attempts[1] - attempts[0]
    device = daemon.device_json(serial)
    assert device["job"]["state"] == "FAILED"
    assert device["state"] == "ACTIVE" and device["jobs"] == 0
    assert device["status"]["provisioned"] is False
    assert device["job"]["faults"][0]["attempts"] == 3
    # given up: no retry is announced that will not come
    assert "nextRetry" not in device["job"]["faults"][0]

    # The operator fixes the value: acsd tries it at once, whatever the back-off said.
    router.faults.clear()
    body = seed_body(serial, LAN)
    body["wifi"]["ssid5G"] = "Need4Speed2"
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(SSID5) == "Need4Speed2"
    device = daemon.device_json(serial)
    assert device["state"] == "ACTIVE" and device["status"]["provisioned"] is True


async def test_a_failed_job_is_tried_again_on_request_or_new_firmware(daemon_factory):
    # A job gives up on a value its router refused; the same value sent again is no change.
    # Once the router is fixed, the operator asks for another try (POST .../retry), or the
    # router's new firmware gets one: the router kept the old SSID while the record said
    # the new one, and nothing short of changing the value and back re-armed it.
    daemon = daemon_factory(provisioning={"retry_base": 0.05, "retry_max_attempts": 2})
    sim = Simulation(
        daemon.cwmp_url, ["tr181-generic"], 2, serial_prefix="PR", faults={SSID5: 9007}
    )
    world = build_world(daemon)
    routers = []
    for cpe in sim.routers:
        router = sim.router(cpe.serial)
        routers.append(router)
        body = {**device_body(world, "own", cpe.serial), "wifi": {"ssid5G": "Fixed5"}}
        body.pop("dhcp", None)  # (the seed's pool is outside this router's LAN)
        assert world.api.post("/network/device", body).status == 201
    for _ in range(4):
        assert (await sim.run_once()).ok == 2
        await asyncio.sleep(0.1)
    ids = {}
    for router in routers:
        device = daemon.device_json(router.serial)
        assert device["job"]["state"] == "FAILED", device["job"]
        ids[router.serial] = device["_id"]
        router.faults.clear()  # fixed on the router
    asked, upgraded = routers
    # a device whose job did not fail has nothing to retry
    other = world.api.post("/network/device", device_body(world, "own", "PRNOJOB01")).body
    assert world.api.post(f"/network/device/{other['_id']}/retry").status == 409
    # it takes no body: one would be ignored (a schedule, say)
    refused = world.api.post(f"/network/device/{ids[asked.serial]}/retry", {"at": "later"})
    assert (refused.status, refused.body["message"]) == (400, "at")
    reply = world.api.post(f"/network/device/{ids[asked.serial]}/retry")
    assert reply.status == 200, reply.body
    # the retry is a job of its own, pending from the moment it is asked for
    assert reply.body["state"] == "PROVISIONING", reply.body
    shown = daemon.device_json(asked.serial)["job"]
    assert reply.body["job"]["state"] == "PENDING" and reply.body["job"]["revision"] > 1
    assert shown == reply.body["job"]  # (acsd device show too)
    waiting = world.api.get("/network/device", query={"job": "PENDING"}).body["items"]
    assert [d["_id"] for d in waiting if d["_id"] in ids.values()] == [ids[asked.serial]]
    upgraded.tree.set_local("Device.DeviceInfo.SoftwareVersion", "2.0-fixed")
    assert (await sim.run_once()).ok == 2
    for router in routers:
        assert router.tree.get(SSID5) == "Fixed5", router.serial
        device = daemon.device_json(router.serial)
        assert device["state"] == "ACTIVE" and device["status"]["provisioned"], device["job"]
    entries = world.api.get("/audit?limit=1000").body["items"]
    assert [e["resourceId"] for e in entries if e["action"] == "device.retry"] == [
        ids[asked.serial]
    ]


async def test_a_denied_parameter_is_tried_once_more_then_failed(module_daemon_factory):
    # 9001 (request denied) is a locked parameter or a busy router: acsd tries once more
    # after the back-off, and a second denial fails the job (cwmp-reference's fault
    # table), where other faults go on to retry_max_attempts.
    daemon = module_daemon_factory(provisioning={"retry_base": 0.3})
    sim = Simulation(
        daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PD", faults={SSID5: 9001}
    )
    serial = sim.routers[0].serial
    router = sim.router(serial)
    daemon.apply(seed_body(serial, LAN))

    def sent() -> int:
        return sum(SSID5 in dict(spv) for spv in router.stats.spv)

    assert (await sim.run_once()).ok == 1
    job = daemon.device_json(serial)["job"]
    assert job["state"] == "PENDING", job
    [fault] = job["faults"]
    assert fault["code"] == 9001 and fault["attempts"] == 1, fault

    await asyncio.sleep(0.5)  # past the back-off
    assert (await sim.run_once()).ok == 1
    assert sent() == 2
    device = daemon.device_json(serial)
    job = device["job"]
    assert job["state"] == "FAILED", job
    assert device["state"] == "ACTIVE" and device["jobs"] == 0
    assert device["status"]["provisioned"] is False
    [fault] = job["faults"]
    assert fault["setting"] == "wifi.5g.ssid" and fault["parameter"] == SSID5
    assert fault["code"] == 9001 and fault["attempts"] == 2, fault

    await asyncio.sleep(1.0)  # past the back-off the second denial would have had
    assert (await sim.run_once()).ok == 1
    assert sent() == 2  # given up
    assert daemon.device_json(serial)["job"]["state"] == "FAILED"


async def test_a_job_given_up_is_logged_once(module_daemon_factory):
    # A FAILED job leaves the device ACTIVE with no job counted, like a done one: the log
    # is where an operator finds the routers acsd gave up on, once per revision.
    daemon = module_daemon_factory(provisioning={"retry_base": 0.3})
    sim = Simulation(
        daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PJ", faults={SSID5: 9001}
    )
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, LAN))

    def failed() -> list[dict]:
        return [e for e in daemon.events("session.job_failed") if e.get("serial") == serial]

    assert (await sim.run_once()).ok == 1
    assert failed() == []  # pending: a retry is coming
    await asyncio.sleep(0.5)  # past the back-off
    assert (await sim.run_once()).ok == 1
    device = daemon.device_json(serial)
    assert device["job"]["state"] == "FAILED"
    [line] = wait_for(failed)
    assert line["level"] == "warning"
    assert line["device"] == device["_id"] and line["revision"] == device["job"]["revision"]
    assert line["faults"] == [{"setting": "wifi.5g.ssid", "code": 9001}]
    assert "Need4Speed" not in json.dumps(line)

    assert (await sim.run_once()).ok == 1  # still FAILED: not logged again
    assert len(failed()) == 1


def jobs_failed(daemon) -> dict[str, float]:
    """acsd_jobs_failed_total by profile, scraped."""
    with urllib.request.urlopen(daemon.api_url + "metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        s.labels["profile"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "acsd_jobs_failed_total"
    }


async def test_devices_whose_job_failed_are_listed_and_counted(module_daemon):
    """A job given up leaves the device ACTIVE with jobs 0, like a done one: the list filter
    ``job=FAILED`` (API and CLI) finds it among the rest, and a counter an alert can watch
    moves once per revision."""
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 3, serial_prefix="JF")
    failing, done, bare = (r.serial for r in sim.routers)
    daemon.apply(seed_body(failing))  # its pool is outside the router's LAN: FAILED at once
    daemon.apply(seed_body(done, LAN))
    before = jobs_failed(daemon)  # (other tests of this module's daemon fail jobs too)
    # every profile's series is there from the start, at 0 where no job failed yet: an
    # alert on increase() sees the first one
    assert {"tr181", "tr098", "huawei", "tplink-tr181"} <= set(before)
    assert before.get("tplink-tr181") == 0
    assert (await sim.run_once()).ok == 3
    shown = {serial: daemon.device_json(serial) for serial in (failing, done, bare)}
    assert [(d["state"], d["jobs"], d.get("job", {}).get("state")) for d in shown.values()] == [
        ("ACTIVE", 0, "FAILED"), ("ACTIVE", 0, "DONE"), ("ACTIVE", 0, None)
    ]  # fmt: skip
    profile = shown[failing]["cpe"]["profile"]
    expected = {**before, profile: before.get(profile, 0) + 1}
    wait_for(lambda: jobs_failed(daemon) == expected)

    api = build_world(daemon).api
    for state, serials in (("FAILED", [failing]), ("DONE", [done]), ("PENDING", [])):
        reply = api.get(f"/network/device?job={state}&q=JF")
        assert reply.status == 200, reply.body
        assert [d["serialNumber"] for d in reply.body["items"]] == serials
        assert reply.body["total"] == len(serials)
    refused = api.get("/network/device?job=failed")
    assert refused.status == 409 and refused.body["message"] == "job", refused.body

    listed = daemon.cli("device", "list", "--job", "FAILED").stdout
    assert shown[failing]["_id"] in listed and failing in listed
    assert done not in listed and bare not in listed

    # once per revision: later sessions leave the job, and the counter, as they are
    assert (await sim.run_once()).ok == 3
    assert daemon.device_json(failing)["job"] == shown[failing]["job"]
    assert jobs_failed(daemon) == expected


def stored_behind_the_api(daemon, prefix: str, column: str, path: str, value: str):
    """A router whose record holds ``value`` at ``path`` of ``column`` (wifi, dhcp), as a
    record written before the API refused such values would: (simulation, serial)."""
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix=prefix)
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, LAN))
    with sqlite3.connect(daemon.db) as db:
        db.execute(
            f"UPDATE devices SET {column} = json_set({column}, ?, ?) WHERE serial_number = ?",
            (path, value, serial),
        )
    return sim, serial


async def test_a_stored_value_xml_cannot_carry_fails_alone(module_daemon):
    # A record from before the API refused such an SSID: the session must not fail on it
    # (it did, with HTTP 500, every time); the rest is applied and the job shows the value.
    daemon = module_daemon
    sim, serial = stored_behind_the_api(daemon, "PX", "wifi", "$.ssid", "Sky\x00Net")
    assert (await sim.run_once()).ok == 1
    router = sim.router(serial)
    assert router.tree.get("Device.DHCPv4.Server.Pool.1.MinAddress") == f"{LAN}.100"
    assert router.tree.get(SSID5) == "Need4Speed"
    assert router.tree.get("Device.WiFi.SSID.1.SSID") != "Sky\x00Net"
    assert errors(daemon, serial) == []
    device = daemon.device_json(serial)
    assert device["status"]["provisioned"] is False
    [fault] = device["job"]["faults"]
    assert fault["setting"] == "wifi.2g.ssid" and fault["code"] == 9007


def test_device_apply_rejects_bad_bodies_and_stores_nothing(daemon, tmp_path: Path):
    seed_text = json.dumps({**SEED_BODY, "serialNumber": "BAD0001"}, indent=2)
    # The seed's own example misses a comma before "bandsteering".
    broken = seed_text.replace('"password6G": null,', '"password6G": null')
    cases = {
        broken: "invalid JSON: line",
        seed_text.replace('"notes"', '"nots"'): "nots: unknown field",
        seed_text.replace('"JohnConner"', '"short"'): "wifi.password",
        seed_text.replace('"123456789013"', '"12345678901Z"'): "dhcp.reservedClients.0.mac",
        seed_text.replace('"192.168.0.200"', '"192.168.0.50"'): "192.168.0.100 is after ipPoolEnd",
        # XML 1.0 cannot carry it: every SetParameterValues of the router would fail
        seed_text.replace('"SkyNet"', '"Sky\\u0001Net"'): "SSID must not contain control",
    }
    for text, message in cases.items():
        path = tmp_path / "bad.json"
        path.write_text(text)
        proc = daemon.cli("device", "apply", str(path), check=False)
        assert proc.returncode == 1 and message in proc.stderr, (message, proc.stderr)
    assert json.loads(daemon.cli("device", "list", "--json").stdout) == []


async def test_device_apply_refuses_what_the_api_refuses(module_daemon, tmp_path: Path):
    """``acsd device apply`` writes the same records as the API: it refuses references to
    records that do not exist, a MAC another device has, and a pool outside the LAN the
    router reported (it pushed such a pool before), and leaves the record as it was."""
    daemon = module_daemon

    def refused(body: dict, message: str) -> None:
        path = tmp_path / "refused.json"
        path.write_text(json.dumps(body))
        proc = daemon.cli("device", "apply", str(path), check=False)
        assert proc.returncode == 1, proc.stdout
        assert proc.stderr.strip() == f"acsd: {path}: {message}"

    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PA")
    serial = sim.routers[0].serial
    assert (await sim.run_once()).ok == 1  # the router reports its LAN, 192.168.1.1/24
    before = daemon.device_json(serial)
    assert before["status"]["lanIp"] == "192.168.1.1"

    refused(
        {**SEED_REQUEST, "serialNumber": serial},
        "customer: no customer 12345678901234567890cccc",
    )
    body = {**seed_body(serial, LAN), "model": "12345678901234567890AAAA"}
    refused(body, "model: no network device model 12345678901234567890aaaa")
    refused(
        seed_body(serial),
        "dhcp.ipPoolStart: 192.168.0.100 is not in the router's LAN 192.168.1.0/24",
    )
    body = seed_body(serial, LAN)
    body["dhcp"]["reservedClients"][0]["ip"] = f"{LAN}.1"
    refused(body, f"dhcp.reservedClients.0.ip: {LAN}.1 is the router's own address")
    other = daemon.apply({"serialNumber": "PA-OTHER", "macAddress": "02:00:5E:00:00:01"})
    refused(
        {**seed_body(serial, LAN), "macAddress": "02005e000001"},
        f"macAddress: 02005e000001 already belongs to device {other['_id']}",
    )
    assert daemon.device_json(serial) == before

    # With the customer and model made through the API, the seed's body as it is, its
    # pool moved into the router's LAN, is taken.
    world = build_world(daemon)
    body = {
        **seed_body(serial, LAN),
        "customer": world.customers["own"],
        "model": world.model,
        "macAddress": "02:00:5E:00:00:02",
    }
    applied = daemon.apply(body)
    assert applied["state"] == "PROVISIONING"
    assert (applied["customer"], applied["model"]) == (world.customers["own"], world.model)
    assert (await sim.run_once()).ok == 1
    assert sim.router(serial).tree.get("Device.DHCPv4.Server.Pool.1.MinAddress") == f"{LAN}.100"


def test_device_apply_does_not_take_a_customers_device_away(module_daemon, tmp_path: Path):
    """A customer's device, made through the API: a body that leaves its customer out (or
    names another) would detach it, as the replace is whole. Refused, nothing changed."""
    daemon = module_daemon
    world = build_world(daemon)
    own = world.customers["own"]
    reply = world.api.post("/network/device", device_body(world, "own", "CUSTDEV01"))
    assert reply.status == 201, reply.body
    device = reply.body
    before = daemon.device_json("CUSTDEV01")
    path = tmp_path / "device.json"
    for customer in (None, world.customers["other"]):
        body = {"serialNumber": "CUSTDEV01", "name": "taken over"}
        if customer:
            body["customer"] = customer
        path.write_text(json.dumps(body))
        proc = daemon.cli("device", "apply", str(path), check=False)
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr.strip() == (
            f"acsd: {path}: customer: device CUSTDEV01 ({device['_id']}) belongs to customer "
            f"{own}; name that customer in the body, or change the device through the API"
        )
        assert daemon.device_json("CUSTDEV01") == before
    # Naming its customer, the operator's body replaces the record as before.
    applied = daemon.apply({"serialNumber": "CUSTDEV01", "customer": own.upper(), "name": "kept"})
    assert (applied["_id"], applied["customer"], applied["name"]) == (device["_id"], own, "kept")


async def test_a_pool_outside_the_lan_the_router_reports_is_not_sent(module_daemon):
    """Created before the router ever reported (only the pool's own /16 to check then),
    the seed's 192.168.0.x pool meets a router whose LAN is 192.168.1.1/24: acsd sends
    the wifi, no DHCP setting, and the job says why, until the operator mends the pool."""
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PL")
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial))
    assert (await sim.run_once()).ok == 1
    router = sim.router(serial)
    assert router.tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"
    pool = "Device.DHCPv4.Server.Pool.1."
    assert router.tree.get(pool + "MinAddress") == f"{LAN}.100"  # the factory pool
    assert not [p for p in router.tree.flat() if p.startswith(pool + "StaticAddress.")]
    sent = {path for spv in router.stats.spv for path, _value in spv}
    assert not [p for p in sent if p.startswith("Device.DHCPv4.")]

    device = daemon.device_json(serial)
    assert device["state"] == "ACTIVE" and device["jobs"] == 0
    assert device["status"]["provisioned"] is False
    assert device["job"]["state"] == "FAILED"
    [fault] = device["job"]["faults"]
    assert fault["setting"] == "dhcp.ipPoolStart"
    assert fault["message"] == (
        "192.168.0.100 is not in the router's LAN 192.168.1.0/24: no DHCP setting sent"
    )
    # Not retried: later sessions send nothing and leave the job as it is.
    assert (await sim.run_once()).ok == 1
    assert router.stats.rpcs[-1] == ["GetParameterValues"]
    assert daemon.device_json(serial)["job"] == device["job"]

    mended = seed_body(serial, LAN)
    mended["dhcp"]["ipPoolStart"] = f"{LAN}.120"
    daemon.apply(mended)
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(pool + "MinAddress") == f"{LAN}.120"
    device = daemon.device_json(serial)
    assert device["job"]["state"] == "DONE" and device["status"]["provisioned"] is True


async def test_a_stored_pool_that_is_no_address_does_not_fail_the_session(module_daemon):
    # A record from before the API checked addresses: the LAN check of the plan must not
    # turn it into a failed session every time.
    daemon = module_daemon
    sim, serial = stored_behind_the_api(daemon, "PQ", "dhcp", "$.ipPoolStart", "nowhere")
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    assert sim.router(serial).tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"
    assert errors(daemon, serial) == []


def test_drift_check_off_leaves_hand_made_changes(module_daemon):
    daemon = module_daemon

    async def run() -> None:
        sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PD")
        serial = sim.routers[0].serial
        daemon.apply({**seed_body(serial, LAN), "driftCheck": False})
        assert (await sim.run_once()).ok == 1
        router = sim.router(serial)
        router.set_local("Device.WiFi.SSID.1.SSID", "Mine now")
        assert (await sim.run_once()).ok == 1
        assert router.tree.get("Device.WiFi.SSID.1.SSID") == "Mine now"
        assert daemon.device_json(serial)["driftCheck"] is False

    asyncio.run(run())


async def test_an_addobject_answer_with_a_used_or_impossible_instance_fails_the_row():
    # Found by fuzzing: 0, -1, a huge number or the same number twice were all taken, so
    # two reservations were written to one row and the job still said DONE.
    driver, session = bare_driver()
    table = "Device.DHCPv4.Server.Pool.1.StaticAddress."
    driver.values[table + "1.Chaddr"] = ["02:00:00:00:00:01", "xsd:string"]
    numbers = [5, 5, 0, -1, 2**32, 1, 6]  # only the first 5 and the 6 are new rows
    rows = [
        RowAdd("dhcp.reservations", table, f"02:00:00:00:01:0{n}", {"mac": f"m{n}", "ip": "x"})
        for n in range(len(numbers))
    ]
    driver.apply = Apply(plan=Plan(), adds=list(rows), changes=[], deletes=[])
    for row, number in zip(rows, numbers, strict=True):
        request = rpc.AddObject(object_name=row.object, parameter_key="1")
        await driver.response(session, request, rpc.AddObjectResponse(instance_number=number))
    assert driver.apply.plan.rows["dhcp.reservations"] == {rows[0].key: 5, rows[6].key: 6}
    faulted = driver.apply.outcome.faulted
    assert [code for _, code, _ in faulted] == [9002] * 5
    assert "instance 0" in faulted[1][2]


def bare_driver() -> tuple[ProvisioningDriver, CwmpSession]:
    """A driver on the tr181 profile and a session of its, without store or daemon: for
    feeding it CPE answers directly."""
    profiles = load_profiles()
    driver = ProvisioningDriver(store=None, profiles=profiles)  # type: ignore[arg-type]
    driver.profile = profiles.get("tr181")
    return driver, CwmpSession(driver=driver, remote_ip="127.0.0.1")


async def test_a_read_of_objects_refused_with_9004_sets_no_limit_on_names():
    # How many values objects hold says nothing of how many names the CPE takes in one
    # call: only a refused read of leaves makes the limit (half its names, rounded up).
    driver, session = bare_driver()
    driver.memory = new_memory(None, bootstrap=False)
    fault = rpc.cpe_fault(9004, "Resources exceeded")
    names = ["Device.WiFi.", "Device.DHCPv4.", "Device.IP.Interface.1.Status"]
    driver.fetch.queue = [list(names)]
    await driver.response(session, rpc.GetParameterValues(names=names), fault)
    assert "gpvLimit" not in driver.memory and driver.fetch.queue  # asked in halves
    leaves = [f"Device.X.{n}" for n in range(9)]
    driver.fetch.queue = [list(leaves)]
    await driver.response(session, rpc.GetParameterValues(names=leaves), fault)
    assert driver.memory["gpvLimit"] == 5
    assert driver._chunked([[f"Device.Y.{n}" for n in range(12)]]) == [
        [f"Device.Y.{n}" for n in range(i, min(12, i + 5))] for i in (0, 5, 10)
    ]
    # never raised by a refusal of fewer names than that
    driver.fetch.queue = [leaves[:4]]
    await driver.response(session, rpc.GetParameterValues(names=leaves[:4]), fault)
    assert driver.memory["gpvLimit"] == 2
    driver.fetch.queue = [list(leaves)]
    await driver.response(session, rpc.GetParameterValues(names=leaves), fault)
    assert driver.memory["gpvLimit"] == 2
    # 9004 for one name alone is about that name (firmware's code for a name it cannot
    # read): the halving that found it taught no limit
    driver.fetch.queue = [leaves[:1]]
    await driver.response(session, rpc.GetParameterValues(names=leaves[:1]), fault)
    assert "gpvLimit" not in driver.memory


async def test_a_name_that_faulted_alone_and_is_then_read_whole_is_known_again():
    # The plan's leaf faulted alone (its setting waits), then the session fell back to
    # reading whole objects, which answered it: the setting need not wait after all.
    driver, session = bare_driver()
    table = "Device.DHCPv4.Server.Pool.1.StaticAddress."
    driver.fetch.skipped = [SSID5, table, "Device.Cellular.Interface.1.IMEI"]
    driver.fetch.unreadable = {SSID5: "fault 9002", table: "fault 9002 on " + table}
    names = ["Device.WiFi.", "Device.DHCPv4."]
    driver.fetch.queue = [names]
    answer = rpc.GetParameterValuesResponse(
        parameters=[
            rpc.ParameterValue(SSID5, "Need4Speed"),
            rpc.ParameterValue("Device.DHCPv4.Server.Pool.1.MinAddress", "192.168.1.100"),
        ]
    )
    await driver.response(session, rpc.GetParameterValues(names=names), answer)
    assert driver.fetch.skipped == ["Device.Cellular.Interface.1.IMEI"]
    assert driver.fetch.unreadable == {}


async def test_a_name_that_faulted_alone_leaves_the_routers_list_once_settled():
    # Asked alone, a name the router faulted on before either answers (it reads again)
    # or turns out to be one it lacks (9005: never asked again): either way it is no
    # longer kept among the names this router faults on.
    driver, session = bare_driver()
    lacked = "Device.WiFi.SSID.3.SSID"
    driver.memory = {"faultedAlone": [SSID5, lacked]}
    driver.fetch.queue = [[SSID5], [lacked]]
    answer = rpc.GetParameterValuesResponse(parameters=[rpc.ParameterValue(SSID5, "x")])
    await driver.response(session, rpc.GetParameterValues(names=[SSID5]), answer)
    assert driver.memory["faultedAlone"] == [lacked]
    await driver.response(session, rpc.GetParameterValues(names=[lacked]), rpc.Fault(9005))
    assert driver.memory["faultedAlone"] == [] and lacked in driver.fetch.absent


async def test_a_table_the_router_cannot_read_is_not_taken_for_empty(module_daemon):
    """A router that faults a table object with 9002 (internal error, a weak CPE's answer
    too large even alone): its rows are unknown, not absent, so nothing is planned that
    session (no row added again, no half of a group sent) and the job stays as it was."""
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="UNREAD")
    router = sim.routers[0]
    daemon.apply(seed_body(router.serial, LAN))
    assert (await sim.run_once()).ok == 1
    table = "Device.DHCPv4.Server.Pool.1.StaticAddress."

    def rows() -> list[str]:
        return sorted(
            {p[len(table) :].split(".")[0] for p in router.tree.flat() if p.startswith(table)}
        )

    assert rows() == ["1"]
    done = daemon.device_json(router.serial)["job"]
    assert done["state"] == "DONE"
    handle = router.handle

    def failing(request: rpc.Message) -> rpc.Message:
        if isinstance(request, rpc.GetParameterValues) and table in request.names:
            return rpc.cpe_fault(9002, "internal error")
        return handle(request)

    router.handle = failing  # type: ignore[method-assign]
    for n in range(2):
        assert (await sim.run_once()).ok == 1
        assert rows() == ["1"]
        # reads only; the first time the table's object is listed, which shows it there
        listed = {"GetParameterNames"} if n == 0 else set()
        assert set(router.stats.rpcs[-1]) == {"GetParameterValues"} | listed
        assert daemon.device_json(router.serial)["job"] == done
        assert [e.get("name") for e in gpv_faults(daemon, router.serial)][-1] == table
    router.handle = handle  # type: ignore[method-assign]
    assert (await sim.run_once()).ok == 1
    assert rows() == ["1"]
    device = daemon.device_json(router.serial)
    assert device["state"] == "ACTIVE" and device["job"]["state"] == "DONE", device["job"]


def faulting_empty_table(router, table: str, *, lacking: bool) -> list[str]:
    """Firmware that faults 9005 on a read of ``table`` while it has no rows (TR-069 says
    an empty list); ``lacking``: one that has no such table at all (AddObject 9005 too).
    Returns the list the refused AddObjects go to."""
    handle = router.handle
    refused: list[str] = []

    def answer(request: rpc.Message) -> rpc.Message:
        empty = lacking or not router.tree.instances(table)
        if isinstance(request, rpc.GetParameterValues) and table in request.names and empty:
            return rpc.cpe_fault(9005, "Invalid parameter name")
        if lacking and isinstance(request, rpc.AddObject) and request.object_name == table:
            refused.append(request.object_name)
            return rpc.cpe_fault(9005, "Invalid parameter name")
        return handle(request)

    router.handle = answer
    return refused


async def test_a_reservation_table_that_faults_9005_while_empty_gets_its_rows(module_daemon):
    """Firmware that faults 9005 on its empty reservation table got the reservations
    listed as not on this CPE, remembered until a BOOTSTRAP. A table the profile maps is
    taken as empty instead: the reservation is added, and the job is done."""
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="EMPTY")
    router = sim.routers[0]
    table = "Device.DHCPv4.Server.Pool.1.StaticAddress."
    faulting_empty_table(router, table, lacking=False)
    daemon.apply(seed_body(router.serial, LAN))
    assert (await sim.run_once()).ok == 1
    assert len(router.tree.instances(table)) == 1
    assert router.tree.get(f"{table}{router.tree.instances(table)[0]}.Yiaddr") == f"{LAN}.10"
    device = daemon.device_json(router.serial)
    assert device["job"]["state"] == "DONE" and device["job"]["unsupported"] == [], device["job"]
    assert (await sim.run_once()).ok == 1
    assert set(router.stats.rpcs[-1]) == {"GetParameterValues"}  # the row holds
    assert len(router.tree.instances(table)) == 1


async def test_an_empty_table_that_faults_9005_costs_a_periodic_session_one_call(
    module_daemon,
):
    """No reservations wanted on such firmware: the table, not remembered as lacking (a
    reservation asked for later must go on), is asked apart in each session: one more
    call, not a search by halves nor a read of everything for a 'gone' read plan leaf."""
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="EMPTYP")
    router = sim.routers[0]
    table = "Device.DHCPv4.Server.Pool.1.StaticAddress."
    faulting_empty_table(router, table, lacking=False)
    answer = router.handle
    reads: list[list[str]] = []

    def counted(request: rpc.Message) -> rpc.Message:
        if isinstance(request, rpc.GetParameterValues):
            reads.append(request.names)
        return answer(request)

    router.handle = counted
    body = seed_body(router.serial, LAN)
    body["dhcp"]["reservedClients"] = []
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    job = daemon.device_json(router.serial)["job"]
    assert job["state"] == "DONE" and job["unsupported"] == [], job
    reads.clear()
    assert (await sim.run_once()).ok == 1
    assert len(reads) == 2 and reads[1] == [table], reads
    assert daemon.device_json(router.serial)["job"] == job


async def test_a_reservation_table_that_is_really_missing_is_listed_so(module_daemon):
    """The same 9005 from firmware without the table: the AddObject faults 9005 too. The
    reservations are then not on this CPE, as before, and not tried again."""
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="NOTAB")
    router = sim.routers[0]
    table = "Device.DHCPv4.Server.Pool.1.StaticAddress."
    refused = faulting_empty_table(router, table, lacking=True)
    daemon.apply(seed_body(router.serial, LAN))
    assert (await sim.run_once()).ok == 1
    assert refused == [table]
    job = daemon.device_json(router.serial)["job"]
    assert job["state"] == "DONE" and job["faults"] == [], job
    assert job["unsupported"] == [
        {"setting": "dhcp.reservations", "reason": f"{table} is not on this CPE"}
    ]
    assert (await sim.run_once()).ok == 1
    assert refused == [table]  # not tried again
    assert daemon.device_json(router.serial)["job"] == job


async def test_dhcp_waits_while_a_fault_hides_the_lan_address(module_daemon):
    """A router whose LAN moved to 10.9.8.0/24 and that faults 9002 on its LAN address:
    without the address, the pool (in the LAN the record was checked against) cannot be
    held against the LAN, so nothing of the DHCP settings is sent and the job says why;
    the wifi is applied. Once the router answers again, the pool meets the LAN check."""
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PH")
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, LAN))
    assert (await sim.run_once()).ok == 1  # provisioned, LAN 192.168.1.1/24 stored
    router = sim.router(serial)
    address = "Device.IP.Interface.1.IPv4Address.1.IPAddress"
    router.set_local(address, "10.9.8.1")
    router.read_faults = {address: 9002, "Device.IP.Interface.": 9002}
    # A drift check that cannot read the LAN leaves the job as it is.
    done = daemon.device_json(serial)
    assert done["job"]["state"] == "DONE"
    assert (await sim.run_once()).ok == 1
    assert daemon.device_json(serial)["job"] == done["job"]

    changed = seed_body(serial, LAN)
    changed["dhcp"]["ipPoolStart"] = f"{LAN}.110"
    changed["wifi"]["ssid"] = "SkyNet2"
    daemon.apply(changed)
    assert (await sim.run_once()).ok == 1
    pool = "Device.DHCPv4.Server.Pool.1."
    assert router.tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet2"
    assert router.tree.get(pool + "MinAddress") == f"{LAN}.100"  # not sent
    faulted = {e.get("name") for e in gpv_faults(daemon, serial)}
    assert address in faulted or "Device.IP.Interface." in faulted
    device = daemon.device_json(serial)
    assert device["status"]["provisioned"] is False
    [fault] = device["job"]["faults"]
    assert fault["setting"] == "dhcp"
    assert fault["message"].startswith("the router's LAN address could not be read")
    assert fault["message"].endswith(": no DHCP setting sent")

    router.read_faults = {}
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(pool + "MinAddress") == f"{LAN}.100"
    [fault] = daemon.device_json(serial)["job"]["faults"]
    assert fault["message"] == (
        f"{LAN}.110 is not in the router's LAN 10.9.8.0/24: no DHCP setting sent"
    )


async def test_a_setting_the_router_cannot_read_waits_and_the_rest_is_applied(module_daemon):
    """Firmware that faults 9002 (not 9005) reading a setting's leaf: the first time the
    read fails as a whole (a one-off fault must not change what is sent); when the leaf
    faults alone again, the rest is applied, the setting waits and the job says why; once
    the router reads it, it is applied too."""
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PU")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    router.read_faults = {SSID5: 9002}
    daemon.apply(seed_body(serial, LAN))
    assert (await sim.run_once()).ok == 1
    assert router.tree.get("Device.WiFi.SSID.1.SSID") != "SkyNet"  # nothing sent yet

    assert (await sim.run_once()).ok == 1
    assert router.tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"
    assert router.tree.get("Device.DHCPv4.Server.Pool.1.MinAddress") == f"{LAN}.100"
    assert router.tree.get(SSID5) != "Need4Speed"
    device = daemon.device_json(serial)
    assert device["status"]["provisioned"] is False
    [fault] = device["job"]["faults"]
    assert (fault["setting"], fault["message"]) == (
        "wifi.5g.ssid",
        f"{SSID5} could not be read (fault 9002)",
    )
    assert device["job"]["unsupported"] == []

    router.read_faults = {}
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(SSID5) == "Need4Speed"
    device = daemon.device_json(serial)
    assert device["job"]["state"] == "DONE" and device["status"]["provisioned"] is True


async def test_an_unreadable_setting_keeps_the_job_pending_not_failed(module_daemon):
    """A setting the router could not read is not refused: the next session asks again,
    so the job is PENDING and the device still PROVISIONING, however often that is."""
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PJ")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    router.read_faults = {SSID5: 9002}
    daemon.apply(seed_body(serial, LAN))
    for _ in range(4):
        assert (await sim.run_once()).ok == 1
    assert router.tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"
    device = daemon.device_json(serial)
    assert device["job"]["state"] == "PENDING"
    assert (device["state"], device["jobs"]) == ("PROVISIONING", 1)
    [fault] = device["job"]["faults"]
    assert fault["message"] == f"{SSID5} could not be read (fault 9002)"


async def test_a_sibling_that_reads_a_name_does_not_stop_one_that_cannot(module_daemon):
    """Two routers of one kind: one faults 9002 reading the 5 GHz SSID, the other reads
    it. What the healthy one answers must not make the other fail its read again: the
    faulting router remembers the name itself and is provisioned but for that setting."""
    daemon = module_daemon
    bad = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="RK")
    good = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="RG")
    bad_serial, good_serial = bad.routers[0].serial, good.routers[0].serial
    router = bad.router(bad_serial)
    router.read_faults = {SSID5: 9002}
    daemon.apply(seed_body(bad_serial, LAN))
    daemon.apply(seed_body(good_serial, LAN))
    for _ in range(4):
        assert (await bad.run_once()).ok == 1
        assert (await good.run_once()).ok == 1
    assert router.tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"
    assert router.tree.get("Device.DHCPv4.Server.Pool.1.MinAddress") == f"{LAN}.100"
    assert good.router(good_serial).tree.get(SSID5) == "Need4Speed"
    [fault] = daemon.device_json(bad_serial)["job"]["faults"]
    assert fault["setting"] == "wifi.5g.ssid"

    router.read_faults = {}
    assert (await bad.run_once()).ok == 1
    assert router.tree.get(SSID5) == "Need4Speed"
    assert daemon.device_json(bad_serial)["job"]["state"] == "DONE"


async def test_reservations_all_removed_wait_for_a_table_the_router_can_read(module_daemon):
    """The operator removes every reservation while the router faults reading the table:
    the rows still on it cannot be found, so the job is not done until they are gone."""
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PV")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    body = seed_body(serial, LAN)
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    table = "Device.DHCPv4.Server.Pool.1.StaticAddress."
    assert router.tree.instances(table)
    assert daemon.device_json(serial)["job"]["state"] == "DONE"

    body["dhcp"]["reservedClients"] = []
    daemon.apply(body)
    router.read_faults = {table: 9002}
    for _ in range(3):
        assert (await sim.run_once()).ok == 1
    device = daemon.device_json(serial)
    assert device["job"]["state"] == "PENDING" and device["status"]["provisioned"] is False
    assert [f["setting"] for f in device["job"]["faults"]] == ["dhcp.reservations"]

    router.read_faults = {}
    assert (await sim.run_once()).ok == 1
    assert router.tree.instances(table) == []
    assert daemon.device_json(serial)["job"]["state"] == "DONE"


async def test_an_unreadable_object_that_holds_the_lan_holds_the_dhcp_settings_back(module_daemon):
    """The IP interfaces faulting alone twice: the static-line paths under them wait, and
    the LAN address read there is unknown, so the DHCP settings wait too; wifi goes."""
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="PI")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    router.read_faults = {"Device.IP.Interface.": 9002}
    daemon.apply(seed_body(serial, LAN))
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    assert router.tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"
    sent = {path for spv in router.stats.spv for path, _value in spv}
    assert not [p for p in sent if p.startswith("Device.DHCPv4.")]
    [fault] = daemon.device_json(serial)["job"]["faults"]
    assert fault["setting"] == "dhcp"
    assert fault["message"] == (
        "the router's LAN address could not be read (it faulted on Device.IP.Interface.): "
        "no DHCP setting sent"
    )


async def test_a_read_answer_over_max_body_is_asked_for_in_halves_from_then_on(daemon_factory):
    # A router whose answer to the session's one read is over cwmp.max_body: that session
    # ends (413), and instead of the same refusal at every session after it (its status
    # never updated again), the next asks for the names in calls of half as many.

    first = daemon_factory()
    sim = Simulation(first.cwmp_url, ["tr181-generic"], 1, serial_prefix="PBIG")
    router = sim.routers[0]
    first.apply(seed_body(router.serial, LAN))
    assert (await sim.run_once()).ok == 1  # the bootstrap, settings applied
    assert (await sim.run_once()).ok == 1  # a periodic session: one read of its leaves
    assert router.stats.rpcs[-1] == ["GetParameterValues"]
    names = router.stats.gpv[-1]
    first.stop()

    def answer_bytes(some: list[str]) -> int:
        answer = router.cpe.handle(rpc.GetParameterValues(names=some))
        return len(render_envelope(Envelope(answer, id="acsd-00000000-1")))

    half = (len(names) + 1) // 2  # rounded up: an odd count is two calls too
    whole, parts = answer_bytes(names), max(answer_bytes(names[:half]), answer_bytes(names[half:]))
    assert parts < whole - 200, (parts, whole)
    limit = (parts + whole) // 2
    daemon = daemon_factory(cwmp={"max_body": limit})
    sim.acs_url = daemon.cwmp_url  # the same router (not a factory-new one), new port
    before = daemon.device_json(router.serial)["status"]["lastComm"]
    assert (await sim.run_once()).ok == 0  # refused: 413
    [split] = wait_for(lambda: daemon.events("session.read_split"))
    assert split["serial"] == router.serial and split["per_call"] == half
    assert (await sim.run_once()).ok == 1
    assert router.stats.rpcs[-1] == ["GetParameterValues", "GetParameterValues"]
    assert [len(n) for n in router.stats.session_gpvs(router.stats.sessions - 1)] == [
        half,
        len(names) - half,
    ]
    device = daemon.device_json(router.serial)
    assert device["status"]["lastComm"] != before and device["status"]["online"] is True
    assert (await sim.run_once()).ok == 1  # and so on: no refusal comes back
    assert len(daemon.events("session.read_split")) == 1
    # Once the answers are far below max_body (a larger one here; a table that shrank in
    # the field), the split grows back: one call again, not two for good.
    daemon.stop()
    roomy = daemon_factory()
    sim.acs_url = roomy.cwmp_url
    assert (await sim.run_once()).ok == 1
    assert router.stats.rpcs[-1] == ["GetParameterValues", "GetParameterValues"]
    [grown] = wait_for(lambda: roomy.events("session.read_grown"))
    assert grown["serial"] == router.serial and grown["per_call"] is None
    assert (await sim.run_once()).ok == 1
    assert router.stats.session_gpvs(router.stats.sessions - 1) == [names]


async def test_a_refusal_that_names_the_object_refuses_only_what_was_sent_there(module_daemon):
    # Firmware that names the refused parameter's object (Device.WiFi.SSID.2.) instead of
    # the parameter: what was sent in that object waits for its retry, and everything else
    # is applied (it used to fail the whole batch, every setting, until the job FAILED).
    daemon = module_daemon
    serial, router = await _refusing_router_applied(daemon, "PO", "object-faults")
    assert router.tree.get(SSID5) != "Need4Speed"
    job = daemon.device_json(serial)["job"]
    assert job["state"] == "PENDING"
    # the object's parameters sent in that batch (its Enable too): which one it was, the
    # router did not say
    faults = {(f["setting"], f["code"]) for f in job["faults"]}
    assert faults == {("wifi.5g.ssid", 9007), ("wifi.5g.enable", 9007)}


def wifi_tree() -> dict[str, tuple[str, str]]:
    """A dual-band TR-181 router's wifi and management parameters, as firmware reports them."""
    tree = {
        "Device.DeviceInfo.SoftwareVersion": ("1.0.0", "xsd:string"),
        "Device.DeviceInfo.HardwareVersion": ("HW1", "xsd:string"),
        "Device.ManagementServer.ConnectionRequestURL": ("http://127.0.0.1:9/cr", "xsd:string"),
        "Device.ManagementServer.ParameterKey": ("", "xsd:string"),
        "Device.ManagementServer.ConnectionRequestUsername": ("", "xsd:string"),
        "Device.ManagementServer.ConnectionRequestPassword": ("", "xsd:string"),
        "Device.ManagementServer.PeriodicInformEnable": ("1", "xsd:boolean"),
        "Device.ManagementServer.PeriodicInformInterval": ("3600", "xsd:unsignedInt"),
    }
    for i, band in ((1, "2.4GHz"), (2, "5GHz")):
        radio, ssid, ap = (
            f"Device.WiFi.Radio.{i}.",
            f"Device.WiFi.SSID.{i}.",
            f"Device.WiFi.AccessPoint.{i}.",
        )
        tree |= {
            radio + "Enable": ("1", "xsd:boolean"),
            radio + "OperatingFrequencyBand": (band, "xsd:string"),
            ssid + "Enable": ("1", "xsd:boolean"),
            ssid + "SSID": (f"Router-{i}", "xsd:string"),
            ssid + "LowerLayers": (radio, "xsd:string"),
            ap + "Enable": ("1", "xsd:boolean"),
            ap + "Security.ModeEnabled": ("WPA2-Personal", "xsd:string"),
            ap + "Security.KeyPassphrase": ("", "xsd:string"),
            ap + "Security.PreSharedKey": ("", "xsd:hexBinary"),
            ap + "Security.MFPConfig": ("Optional", "xsd:string"),
        }  # fmt: skip
    return tree


def session_naming_every_parameter(url: str, serial: str, tree: dict, refused: str) -> list[int]:
    """One session of a router that refuses a SetParameterValues holding ``refused`` by
    listing every parameter of it in SetParameterValuesFault (9007), as some stacks do,
    and applies none of them; the number of parameters of each SetParameterValues."""
    params = {name: tree[name][0] for name in list(tree)[:4]}
    wire = Wire(url)
    sizes: list[int] = []

    def reply(request: rpc.Message) -> rpc.Message:
        names = []
        if isinstance(request, rpc.SetParameterValues):
            names = [p.name for p in request.parameters]
            sizes.append(len(names))
        if refused in names:
            faults = [rpc.SetParameterValuesFault(n, 9007, "Invalid value") for n in names]
            return rpc.cpe_fault(9003, spv_faults=faults)
        return answer_request(request, tree)

    try:
        assert wire.post(envelope(inform_body(serial, params=params))).status == 200
        answer_until_done(wire, reply)
    finally:
        wire.close()
    return sizes


async def test_a_refusal_that_names_every_parameter_is_narrowed_down(module_daemon):
    """Firmware that lists every parameter of a refused SetParameterValues, the bad one
    among them, says no more than a bare 9003: the batch is halved by blocks until the
    refused block is alone, and everything else is applied (it used to put every setting
    on the job until it FAILED, the good ones never sent again)."""
    daemon = module_daemon
    serial, tree = "PALL000001", wifi_tree()
    body = {
        "serialNumber": serial,
        "wifi": {"enabled": True, "ssid": "SkyNet", "password": "JohnConner",
                 "enabled5G": True, "ssid5G": "Need4Speed", "password5G": "SarahConner"},
    }  # fmt: skip
    daemon.apply(body)
    sizes = session_naming_every_parameter(daemon.cwmp_url, serial, tree, "Device.WiFi.SSID.2.SSID")
    assert tree["Device.WiFi.SSID.1.SSID"][0] == "SkyNet"
    assert tree["Device.ManagementServer.ConnectionRequestUsername"][0] == serial
    assert tree["Device.WiFi.SSID.2.SSID"][0] == "Router-2"
    assert len(sizes) <= 6, sizes
    job = daemon.device_json(serial)["job"]
    assert job["state"] == "PENDING"
    faults = {(f["setting"], f["code"]) for f in job["faults"]}
    # the 5 GHz band's block, which the router refused alone
    assert ("wifi.5g.ssid", 9007) in faults and all(s.startswith("wifi.5g.") for s, _ in faults)


def test_fault_names_stand_for_what_was_sent():
    from acsd.provisioning.apply_phase import _named_faults
    from acsd.provisioning.plan import Change

    sent = [
        Change("wifi.2g.ssid", "Device.WiFi.SSID.1.SSID", "a", "xsd:string"),
        Change("wifi.2g.password", "Device.WiFi.AccessPoint.1.Security.KeyPassphrase", "b" * 8,
               "xsd:string", secret=True),
        Change("wifi.2g.security", "Device.WiFi.AccessPoint.1.Security.ModeEnabled", "WPA2",
               "xsd:string"),
    ]  # fmt: skip
    fault = rpc.SetParameterValuesFault
    # the object: both of its parameters; another case: the one parameter
    named = _named_faults(sent, [fault("Device.WiFi.AccessPoint.1.Security.", 9007)])
    assert set(named) == {sent[1].path, sent[2].path}
    named = _named_faults(sent, [fault("device.wifi.ssid.1.ssid", 9007)])
    assert set(named) == {sent[0].path}
    # nothing sent there, or no name: no name at all (the batch is split instead)
    for name in ("Device.WiFi.SSID.9.SSID", "", ".", "Device.Hosts."):
        assert _named_faults(sent, [fault(name, 9007)]) == {}


def test_a_router_acsd_has_never_seen_keeps_what_it_learned_about_reading_it():
    # A first contact that is no BOOTSTRAP (a router moved from another ACS) has no record
    # yet: its answer over max_body taught acsd to ask in halves, and a name that faulted
    # alone is one to ask apart, but both were dropped, so its next session was refused
    # (or failed) the same way again.
    from acsd.store.base import CpeIdentity, SessionResult

    driver, session = bare_driver()
    driver.events = ["1 BOOT"]
    driver.memory = new_memory(None, bootstrap=False)
    driver.answer_too_large(
        session, rpc.GetParameterValues(names=[f"Device.X.{n}" for n in range(10)])
    )
    driver.memory["faultedAlone"].append("Device.Hosts.")
    result = SessionResult(identity=CpeIdentity("0A5E14", "P", "S1"), at=0.0)
    driver._settle(result)
    assert result.provisioning is not None
    assert result.provisioning["readChunk"] == 5
    assert result.provisioning["faultedAlone"] == ["Device.Hosts."]


def test_a_read_split_grows_back_only_while_answers_stay_far_below_max_body():
    driver, _session = bare_driver()
    driver.memory = new_memory({"readChunk": 5}, bootstrap=False)
    driver.fetch.started, driver.fetch.widest = True, 40
    # a quarter of max_body (1 MiB) or more: doubled, the calls could reach it again
    driver.fetch.largest = 300_000
    driver._grow_read_chunk()
    assert driver.memory["readChunk"] == 5
    driver.fetch.largest = 200_000
    driver._grow_read_chunk()
    assert driver.memory["readChunk"] == 10
    # no call would need a split any more: none
    driver.fetch.widest = 20
    driver._grow_read_chunk()
    assert driver.memory["readChunk"] is None
    # a session that did not read everything it meant to proves nothing
    driver.memory["readChunk"], driver.fetch.queue = 5, [["Device.X."]]
    driver._grow_read_chunk()
    assert driver.memory["readChunk"] == 5


def test_a_split_of_whole_objects_does_not_grow_back_on_the_read_plans_small_answers():
    # The leaves read between full reads answer far less than the whole objects whose
    # answer was too large: growing on them split, grew, and lost a session at every
    # full read (a BOOT, full_read_interval) to the same 413 again.
    driver, _session = bare_driver()
    driver.memory = new_memory({"readChunk": 5, "readChunkWhole": True}, bootstrap=False)
    driver.fetch.started, driver.fetch.widest, driver.fetch.largest = True, 40, 1000
    driver.plan = object()  # type: ignore[assignment]  (a session reading its read plan)
    driver._grow_read_chunk()
    assert driver.memory["readChunk"] == 5
    driver.plan = None  # a full read that answered small: that one says
    driver._grow_read_chunk()
    assert driver.memory["readChunk"] == 10


async def test_a_refusal_without_a_cwmp_fault_code_is_the_routers_internal_error(
    module_daemon,
):
    # gSOAP-style stacks answer an internal error with faultcode and faultstring alone:
    # no CWMP FaultCode. Stored as code 0 (TR-069's "no fault") on every setting sent,
    # it skipped the halving; it is the router's internal error (9002), narrowed down as
    # any refusal that names no parameter.
    daemon = module_daemon
    serial, router = await _refusing_router_applied(daemon, "PS", "soap-faults")
    assert router.tree.get("Device.ManagementServer.ConnectionRequestUsername") != ""
    job = daemon.device_json(serial)["job"]
    assert job["state"] == "PENDING"
    assert {f["code"] for f in job["faults"]} == {9002}
    assert all(f["message"] == "Internal Error" for f in job["faults"])
    assert all(f["setting"].startswith("wifi.5g.") for f in job["faults"]), job["faults"]


def _stepped(daemon, prefix: str, answering):
    """A tr181-generic router given the seed's settings, answering each request as
    ``answering(answer, request)`` says (``answer``: the simulator's own answer to it),
    driven a session at a time: (its Cpe, its SteppedCpe)."""
    from cpe_steps import SteppedCpe

    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix=prefix)
    cpe = sim.routers[0]
    daemon.apply(seed_body(cpe.serial, LAN))
    answer = cpe.handle
    cpe.handle = lambda request, fault=None: answering(lambda: answer(request, fault), request)
    return cpe, SteppedCpe(daemon.cwmp_url, cpe)


async def test_an_answer_that_leaves_a_name_out_is_named_in_the_log(module_daemon):
    # TR-069 wants a value for each name asked; firmware that leaves one out said nothing
    # (no fault), and the only trace was the job's fault sessions later.
    from acsd.cwmp import rpc

    daemon = module_daemon

    def leaving_out(answer, request):
        reply = answer()
        if isinstance(reply, rpc.GetParameterValuesResponse):
            reply.parameters = [p for p in reply.parameters if p.name != SSID5]
        return reply

    cpe, router = _stepped(daemon, "LEFTOUT", leaving_out)
    try:
        for _ in range(2):  # said once, not at every session
            await asyncio.to_thread(router.session)
    finally:
        router.close()
    [line] = [e for e in daemon.events("session.gpv_incomplete") if e["serial"] == cpe.serial]
    assert line["missing"] == [SSID5] and line["count"] == 1


async def test_values_a_router_applies_after_a_reboot_wait_for_it(module_daemon):
    # SetParameterValues answered with status 1 (applied after a reboot), by a router that
    # reads the values before back until then: checked again at each session, they were
    # written again and again and the job failed as values the router refuses.
    from acsd.cwmp import rpc

    daemon = module_daemon
    writes: list[rpc.SetParameterValues] = []
    rebooted = False

    def later(answer, request):
        if isinstance(request, rpc.SetParameterValues):
            writes.append(request)
            if not rebooted:
                return rpc.SetParameterValuesResponse(status=1)  # kept for the reboot
        return answer()

    cpe, router = _stepped(daemon, "STATUS1", later)
    try:
        await asyncio.to_thread(router.session)
        assert writes and cpe.tree.get("Device.WiFi.SSID.1.SSID") != "SkyNet"
        job = daemon.device_json(cpe.serial)["job"]
        assert job["state"] == "DONE"
        assert job["notes"] == ["the CPE applies some values after its next reboot"]
        sent = len(writes)
        for _ in range(3):
            await asyncio.to_thread(router.session)
        assert len(writes) == sent  # waiting for the reboot, not written again
        assert daemon.device_json(cpe.serial)["job"]["state"] == "DONE"
        # it rebooted, and still holds the values before: they go again (and hold now)
        rebooted = True
        await asyncio.to_thread(router.session, ["1 BOOT"])
        assert len(writes) > sent
        assert cpe.tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"
    finally:
        router.close()


async def test_a_device_made_between_a_release_and_its_unclaimed_record_is_asked_in(
    tmp_path: Path,
):
    # The release deletes the record and then keeps the router as an unclaimed one: a
    # POST of its serial in between made a record that had no address to reach the router
    # at (its Connection Request went nowhere), which the kept save then gave it. Nothing
    # asked the router in: the new customer's settings waited for its periodic Inform.
    from acsd import clock
    from acsd.store.base import ABSENT, CpeIdentity, DeviceRecord, SessionResult
    from acsd.store.sqlite.store import SqliteStore

    store = SqliteStore(tmp_path / "race.db")
    await store.open()
    try:
        serial = "RELRACE1"
        ident = CpeIdentity("0A5E14", "P", serial)
        first = await store.save_session(SessionResult(identity=ident, at=clock.now() - 60))
        released = await store.get_device(first)
        assert released is not None
        released.state, released.cr_username, released.cr_password = "DELETING", serial, "pw"
        await store.delete_device(first)  # the release's delete
        made = DeviceRecord(id="", serial_number=serial, wifi={"ssid": "Second"})
        made.state, made.revision = "PROVISIONING", 1  # the POST in between
        made = await store.write_device(made, expect=ABSENT)
        driver, session = bare_driver()
        driver.store, driver.record, woken = store, released, []
        driver.wake = woken.append
        url = "http://192.0.2.7:7547/cr"
        result = SessionResult(identity=ident, at=clock.now(), connection_request_url=url)
        await driver._keep_unclaimed(session, result)
        stored = await store.get_device(made.id)
        assert stored is not None and stored.connection_request_url == url
        assert [record.id for record in woken] == [made.id]
    finally:
        await store.close()
