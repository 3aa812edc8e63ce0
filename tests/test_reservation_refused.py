"""A DHCP reservation the router refuses (9007 on the new row's Yiaddr, say an address its
firmware keeps for itself) is a fault like any other: it waits for its back-off and is
given up after retry_max_attempts, instead of an AddObject, a refused SetParameterValues
and a DeleteObject in every session with the job PENDING (and the device PROVISIONING)
for ever. The row's instance number is new each time, so the fault must not be keyed by
it."""

from __future__ import annotations

import pytest

from acsd.sim.runner import Simulation
from api_world import seed_body

CASES = [
    # Huawei hands out 3, 5, 7, ... and never reuses a number
    ("huawei-hg8245", "192.168.100", "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement."),
    ("tr181-generic", "192.168.1", "Device.DHCPv4.Server.Pool.1."),
]


@pytest.mark.parametrize(("tree", "lan", "base"), CASES, ids=[c[0] for c in CASES])
async def test_a_refused_reservation_is_given_up_after_its_attempts(
    daemon_factory, tree, lan, base
):
    daemon = daemon_factory(provisioning={"retry_base": 0.001, "retry_max_attempts": 3})
    table = base + ("DHCPStaticAddress." if tree.startswith("huawei") else "StaticAddress.")
    sim = Simulation(
        daemon.cwmp_url, [tree], 1, serial_prefix="RR", faults={table + "*.Yiaddr": 9007}
    )
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, lan))
    router = sim.router(serial)
    for _ in range(3):
        assert (await sim.run_once()).ok == 1
    device = daemon.device_json(serial)
    job = device["job"]
    assert job["state"] == "FAILED", job
    assert device["state"] == "ACTIVE" and device["jobs"] == 0
    [fault] = job["faults"]
    assert fault["setting"] == "dhcp.reservations[123456789013]"
    assert fault["code"] == 9007 and fault["attempts"] == 3
    assert fault["parameter"].startswith(table) and fault["parameter"].endswith(".Yiaddr")

    # Given up: later sessions leave the table alone (no AddObject/DeleteObject churn).
    assert (await sim.run_once()).ok == 1
    assert router.stats.rpcs[-1] == ["GetParameterValues"]
    # and the memory does not grow a fault per instance number tried
    assert (await sim.run_once()).ok == 1
    assert daemon.device_json(serial)["job"] == job

    # A new address for the reservation is tried at once, and taken.
    sim.router(serial).faults.clear()
    body = seed_body(serial, lan)
    body["dhcp"]["reservedClients"][0]["ip"] = f"{lan}.11"
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    device = daemon.device_json(serial)
    assert device["job"]["state"] == "DONE" and device["job"]["faults"] == []
    rows = {
        k: v for k, v in router.tree.flat().items() if k.startswith(table) and k.endswith("Yiaddr")
    }
    assert list(rows.values()) == [f"{lan}.11"]


async def test_a_refused_reservation_waits_for_its_back_off(daemon):
    # default back-off (300 s): the next session does not add and delete the row again
    sim = Simulation(
        daemon.cwmp_url,
        ["tr181-generic"],
        1,
        serial_prefix="RB",
        faults={"Device.DHCPv4.Server.Pool.1.StaticAddress.*.Yiaddr": 9007},
    )
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, "192.168.1"))
    assert (await sim.run_once()).ok == 1
    first = daemon.device_json(serial)["job"]
    assert first["state"] == "PENDING" and first["faults"][0]["code"] == 9007
    assert (await sim.run_once()).ok == 1
    router = sim.router(serial)
    assert "AddObject" not in router.stats.rpcs[-1], router.stats.rpcs[-1]
    job = daemon.device_json(serial)["job"]
    assert job["state"] == "PENDING"
    assert [f["attempts"] for f in job["faults"]] == [1]


async def test_a_refused_delete_waits_for_its_back_off_and_is_given_up(daemon_factory, monkeypatch):
    # A router that refuses to delete a reservation (9001) got a DeleteObject in every
    # session, whatever the job said of the next retry, and after the job had FAILED.
    from acsd.cwmp import rpc
    from acsd.sim import cpe as sim_cpe
    from acsd.sim.tree import CwmpFault

    daemon = daemon_factory(provisioning={"retry_base": 3600, "retry_max_attempts": 2})
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="RD")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    body = seed_body(serial, "192.168.1")
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1

    def refuse(self, request):
        raise CwmpFault(9001, "Request denied")

    monkeypatch.setitem(sim_cpe._HANDLERS, rpc.DeleteObject, refuse)
    body["dhcp"]["reservedClients"] = []
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    assert "DeleteObject" in router.stats.rpcs[-1]
    job = daemon.device_json(serial)["job"]
    assert job["state"] == "PENDING" and job["faults"][0]["code"] == 9001
    # The job names the reservation by its MAC as the router holds it (the row is gone
    # from the record), as other row faults are named, not "delete" and a row number.
    [fault] = job["faults"]
    assert fault["setting"] == "dhcp.reservations[12:34:56:78:90:13]", fault
    assert fault["parameter"].startswith("Device.DHCPv4.Server.Pool.1.StaticAddress.")
    # the retry is an hour away: the next sessions leave the row alone
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
        assert router.stats.rpcs[-1] == ["GetParameterValues"]
    [waiting] = daemon.device_json(serial)["job"]["faults"]
    assert waiting["attempts"] == 1
    assert (waiting["setting"], waiting["parameter"]) == (fault["setting"], fault["parameter"])
