"""A change an operator makes shows as a PENDING job from the moment it is accepted, not
from the router's next session: ``job`` was null until then, and ``?job=PENDING`` missed
every change waiting for its router, so "nothing to do" and "waiting for the router" read
alike. The router's session then settles the job as before; a write that changes nothing
the router holds makes no job.

The tests share one daemon and API world (module_daemon, module_world); the simulated
routers take no Connection Request (none listens), so a change waits for ``run_once``."""

from __future__ import annotations

from acsd.sim.runner import Simulation
from api_world import device_body


def _listed(world, device_id: str, **query: str) -> bool:
    items = world.api.get("/network/device", query={"limit": 1000, **query}).body["items"]
    return device_id in [d["_id"] for d in items]


async def test_a_change_is_a_pending_job_until_its_router_takes_it(module_daemon, module_world):
    daemon, world = module_daemon, module_world
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="WAITJOB")
    serial = sim.routers[0].serial
    body = device_body(world, "own", serial)
    body["dhcp"] = None  # (the seed's pool is outside this router's LAN)
    created = world.api.post("/network/device", body)
    assert created.status == 201, created.body
    device_id, path = created.body["_id"], f"/network/device/{created.body['_id']}"
    # Made, never seen: its settings wait for the router's first session.
    job = created.body["job"]
    assert job["state"] == "PENDING" and job["revision"] >= 1 and job["attempts"] == 0, job
    assert created.body["state"] == "PROVISIONING" and created.body["jobs"] == 1
    assert _listed(world, device_id, job="PENDING")
    assert not _listed(world, device_id, job="DONE")
    # the router's session settles it as before
    assert (await sim.run_once()).ok == 1
    done = world.api.get(path).body
    assert done["job"]["state"] == "DONE" and done["job"]["revision"] == job["revision"]
    assert done["state"] == "ACTIVE" and done["jobs"] == 0
    assert not _listed(world, device_id, job="PENDING")
    assert _listed(world, device_id, job="DONE")

    # A PATCH of the wifi: pending at once, for the new revision, in the answer, the
    # device, the list (a customer's too) and `acsd device show` / `device list --job`.
    patched = world.api.patch(path, {"wifi": {"ssid": "SkyNet-2"}})
    assert patched.status == 200, patched.body
    waiting = patched.body["job"]
    assert waiting["state"] == "PENDING" and waiting["revision"] == job["revision"] + 1
    assert waiting["faults"] == [] and waiting["attempts"] == 0
    assert world.api.get(path).body["job"] == waiting
    assert daemon.device_json(serial)["job"] == waiting
    assert _listed(world, device_id, job="PENDING")
    assert _listed(world, device_id, job="PENDING", customer=world.customers["own"])
    assert not _listed(world, device_id, job="DONE")
    listed = daemon.cli("device", "list", "--job", "PENDING", "--limit", "1000").stdout
    assert serial in listed
    assert (await sim.run_once()).ok == 1
    assert sim.router(serial).tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet-2"
    settled = world.api.get(path).body
    assert settled["job"]["state"] == "DONE" and settled["job"]["revision"] == waiting["revision"]
    assert settled["state"] == "ACTIVE" and settled["status"]["provisioned"] is True
    assert not _listed(world, device_id, job="PENDING")

    # The same settings again, and a change of the name only: nothing for the router, so
    # no job (the revision stays, the job stays DONE).
    for change in ({"wifi": {"ssid": "SkyNet-2"}}, {"name": "renamed"}):
        again = world.api.patch(path, change)
        assert again.status == 200, again.body
        assert again.body["job"] == settled["job"], change
        assert again.body["state"] == "ACTIVE" and again.body["jobs"] == 0
        assert not _listed(world, device_id, job="PENDING")


async def test_a_change_by_device_apply_is_pending_at_once(module_daemon, module_world):
    """``acsd device apply`` writes as the API does: its change is listed as waiting."""
    daemon, world = module_daemon, module_world
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="WAITAPPLY")
    serial = sim.routers[0].serial
    assert (await sim.run_once()).ok == 1  # registered, unclaimed: nothing asked of it
    seen = daemon.device_json(serial)
    assert "job" not in seen and seen["state"] == "ACTIVE"
    assert not _listed(world, seen["_id"], job="PENDING")
    body = {"serialNumber": serial, "wifi": {"ssid": "Applied"}}
    applied = daemon.apply(body)
    assert applied["job"]["state"] == "PENDING" and applied["job"]["revision"] == 1
    assert _listed(world, applied["_id"], job="PENDING")
    assert (await sim.run_once()).ok == 1
    assert daemon.device_json(serial)["job"]["state"] == "DONE"
    # applied again as it is: no change, no job
    again = daemon.apply(body)
    assert again["job"]["state"] == "DONE" and again["job"]["revision"] == 1
    assert not _listed(world, applied["_id"], job="PENDING")
