"""Firmware that refuses writes to an optional parameter (a radio's switch under the SSID's
`enabled`) for good: the setting is applied without it, the job is done and says why, and
the parameter is not sent to that router again. Not writable (9008) and no such parameter
(9005) are for good at once; denied (9001) may be a busy router's, and is tried once more
before it is."""

from __future__ import annotations

import asyncio

import pytest

from acsd.provisioning.jobs import new_memory
from acsd.sim.runner import Simulation
from api_world import seed_body

#: the back-off of the shared daemon: short, so a test waits for a retry briefly
RETRY_BASE = 0.3


@pytest.fixture(scope="module")
def daemon(module_daemon_factory):
    return module_daemon_factory(provisioning={"retry_base": RETRY_BASE})


W = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1."
LAN = "192.168.1"  # the LAN of both simulated routers
CASES = [
    # (simulated router, the 2.4 GHz SSID, the radio's switch)
    ("tr098-dsl", W + "SSID", W + "RadioEnabled"),
    ("tr181-generic", "Device.WiFi.SSID.1.SSID", "Device.WiFi.Radio.1.Enable"),
]
TR181_RADIO = CASES[1][2]


def spv_faults(router) -> list[list[tuple[str, int]]]:
    """The parameters named in each SetParameterValues the router refused."""
    return [f.parameters for f in router.stats.faults if f.method == "SetParameterValues"]


def sent(router, path: str) -> int:
    """In how many SetParameterValues the router was sent ``path``."""
    return sum(path in dict(spv) for spv in router.stats.spv)


def wifi_enable(job: dict) -> list[dict]:
    return [u for u in job["unsupported"] if u["setting"] == "wifi.2g.enable"]


async def refused_then_dropped(
    daemon, tree: str, ssid: str, radio: str, code: int, prefix: str
) -> tuple[Simulation, str, dict]:
    """A router of ``tree`` shipped with its radio off that refuses writes to its switch
    with ``code``, after the sessions that drop the switch: (simulation, serial, job)."""
    sim = Simulation(daemon.cwmp_url, [tree], 1, serial_prefix=prefix, faults={radio: code})
    serial = sim.routers[0].serial
    router = sim.router(serial)
    router.set_local(radio, "false")  # shipped off: "enabled" would turn it on
    daemon.apply(seed_body(serial, LAN))
    assert (await sim.run_once()).ok == 1
    # refused as a whole (9003 naming the radio's switch), then sent again without it
    assert len(router.stats.spv) == 2
    assert spv_faults(router) == [[(radio, code)]]
    assert router.tree.get(ssid) == "SkyNet"
    if code == 9001:
        # A denial may be a busy router's: a fault of the job, tried again after its
        # back-off, and dropped only when it is denied again.
        job = daemon.device_json(serial)["job"]
        assert job["state"] == "PENDING" and not wifi_enable(job), job
        [fault] = job["faults"]
        assert fault["parameter"] == radio and fault["code"] == 9001, fault
        assert fault["attempts"] == 1 and fault["nextRetry"], fault
        await asyncio.sleep(RETRY_BASE + 0.2)
        assert (await sim.run_once()).ok == 1
        assert sent(router, radio) == 2
        assert spv_faults(router) == [[(radio, code)], [(radio, code)]]
    assert router.tree.get(radio) in ("false", "0")

    device = daemon.device_json(serial)
    job = device["job"]
    assert device["state"] == "ACTIVE" and device["status"]["provisioned"] is True, job
    assert job["state"] == "DONE" and job["faults"] == [], job
    [entry] = wifi_enable(job)
    assert radio in entry["reason"] and str(code) in entry["reason"], entry
    return sim, serial, job


@pytest.mark.parametrize(("tree", "ssid", "radio"), CASES, ids=["tr098", "tr181"])
async def test_a_radio_switch_that_is_not_writable_is_dropped_at_once(
    daemon, tree: str, ssid: str, radio: str
):
    sim, serial, job = await refused_then_dropped(daemon, tree, ssid, radio, 9008, "ON" + tree[3])
    router = sim.router(serial)
    # Remembered for this router: later sessions do not send it again, and say why.
    await asyncio.sleep(RETRY_BASE + 0.2)  # past any back-off: the memory holds it back
    assert (await sim.run_once()).ok == 1
    assert sent(router, radio) == 1
    assert len(spv_faults(router)) == 1
    later = daemon.device_json(serial)["job"]
    assert later["state"] == "DONE" and later["unsupported"] == job["unsupported"], later


async def test_a_radio_switch_the_router_lacks_is_dropped_at_once(daemon):
    # Firmware without the radio's switch that leaves it out of its GetParameterValues
    # answer (no 9005 there), then refuses it by name with 9005 in the SetParameterValues:
    # the job was failed after retry_max_attempts sessions. No such parameter is for good.
    from acsd.cwmp import rpc

    _tree, ssid, radio = CASES[1]
    sim, serial, job = await refused_then_dropped(daemon, "tr181-generic", ssid, radio, 9005, "OL")
    router = sim.router(serial)
    answer = router.handle

    def leaves_it_out(request, fault=None):
        response = answer(request, fault)
        if isinstance(response, rpc.GetParameterValuesResponse):
            response.parameters = [p for p in response.parameters if p.name != radio]
        return response

    router.handle = leaves_it_out
    await asyncio.sleep(RETRY_BASE + 0.2)
    assert (await sim.run_once()).ok == 1
    assert sent(router, radio) == 1
    later = daemon.device_json(serial)["job"]
    assert later["state"] == "DONE" and later["unsupported"] == job["unsupported"], later


async def test_a_radio_switch_denied_twice_is_dropped(daemon):
    _tree, ssid, radio = CASES[1]
    sim, serial, job = await refused_then_dropped(daemon, "tr181-generic", ssid, radio, 9001, "OD")
    router = sim.router(serial)
    await asyncio.sleep(RETRY_BASE * 2 + 0.2)
    assert (await sim.run_once()).ok == 1
    assert sent(router, radio) == 2  # not a third time
    later = daemon.device_json(serial)["job"]
    assert later["state"] == "DONE" and later["unsupported"] == job["unsupported"], later


async def test_a_radio_switch_denied_while_busy_is_applied_on_the_retry(daemon):
    sim = Simulation(
        daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="OB", faults={TR181_RADIO: 9001}
    )
    serial = sim.routers[0].serial
    router = sim.router(serial)
    router.set_local(TR181_RADIO, "false")
    daemon.apply(seed_body(serial, LAN))
    assert (await sim.run_once()).ok == 1
    assert spv_faults(router) == [[(TR181_RADIO, 9001)]]
    assert daemon.device_json(serial)["job"]["state"] == "PENDING"

    router.faults.clear()  # no longer busy
    await asyncio.sleep(RETRY_BASE + 0.2)
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(TR181_RADIO) in ("true", "1")
    device = daemon.device_json(serial)
    job = device["job"]
    assert device["state"] == "ACTIVE" and device["status"]["provisioned"] is True, job
    assert job["state"] == "DONE" and job["faults"] == [] and not wifi_enable(job), job


async def test_new_firmware_is_tried_again_with_the_refused_switch(daemon):
    # New firmware may take what the old one refused: a router that reports another
    # SoftwareVersion is sent the switch again, and holds it.
    tree, ssid, radio = CASES[0]
    sim, serial, _job = await refused_then_dropped(daemon, tree, ssid, radio, 9008, "OF")
    router = sim.router(serial)
    version = "InternetGatewayDevice.DeviceInfo.SoftwareVersion"
    router.faults.clear()
    router.set_local(version, router.tree.get(version) + "-upgraded")
    assert (await sim.run_once()).ok == 1
    assert sent(router, radio) == 2
    assert router.tree.get(radio) in ("true", "1")
    device = daemon.device_json(serial)
    assert device["cpe"]["softwareVersion"].endswith("-upgraded")
    job = device["job"]
    assert device["state"] == "ACTIVE" and job["state"] == "DONE", job
    assert job["faults"] == [] and not wifi_enable(job), job


def test_a_factory_reset_forgets_the_refusals():
    # A reset may bring back firmware defaults that take the parameter: tried again.
    refused = {W + "RadioEnabled": {"setting": "wifi.2g.enable", "code": 9008, "message": ""}}
    stored = {"refusedOptional": refused}
    assert new_memory(stored, bootstrap=False)["refusedOptional"] == refused
    assert new_memory(stored, bootstrap=True)["refusedOptional"] == {}
    # a hand-edited entry of another shape is dropped, not a failure of every session
    assert new_memory({"refusedOptional": {"x": 1}}, bootstrap=False)["refusedOptional"] == {}
