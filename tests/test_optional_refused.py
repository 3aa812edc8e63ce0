"""Firmware that refuses writes to an optional parameter (a radio's switch under the SSID's
`enabled`) for good: the setting is applied without it, the job is done and says why, and
the parameter is not sent to that router again."""

from __future__ import annotations

import pytest

from acsd.provisioning.jobs import new_memory
from acsd.sim.runner import Simulation
from api_world import seed_body

W = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1."
CASES = [
    # (simulated router, its LAN, the 2.4 GHz SSID, the radio's switch, the refusal)
    ("tr098-dsl", "192.168.1", W + "SSID", W + "RadioEnabled", 9008),
    ("tr181-generic", "192.168.1", "Device.WiFi.SSID.1.SSID", "Device.WiFi.Radio.1.Enable", 9001),
]


def spv_faults(router) -> list[list[tuple[str, int]]]:
    """The parameters named in each SetParameterValues the router refused."""
    return [f.parameters for f in router.stats.faults if f.method == "SetParameterValues"]


@pytest.mark.parametrize(("tree", "lan", "ssid", "radio", "code"), CASES, ids=["9008", "9001"])
async def test_a_refused_radio_switch_is_dropped_and_the_rest_applied(
    module_daemon, tree: str, lan: str, ssid: str, radio: str, code: int
):
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, [tree], 1, serial_prefix=f"OR{code}", faults={radio: code})
    serial = sim.routers[0].serial
    router = sim.router(serial)
    router.set_local(radio, "false")  # shipped off: "enabled" would turn it on
    daemon.apply(seed_body(serial, lan))
    assert (await sim.run_once()).ok == 1
    # refused as a whole (9003 naming the radio's switch), then sent again without it
    assert len(router.stats.spv) == 2
    assert spv_faults(router) == [[(radio, code)]]
    assert router.tree.get(ssid) == "SkyNet"
    assert router.tree.get(radio) in ("false", "0")

    device = daemon.device_json(serial)
    job = device["job"]
    assert device["state"] == "ACTIVE" and device["status"]["provisioned"] is True, job
    assert job["state"] == "DONE" and job["faults"] == [], job
    [entry] = [u for u in job["unsupported"] if u["setting"] == "wifi.2g.enable"]
    assert radio in entry["reason"] and str(code) in entry["reason"], entry

    # Remembered for this router: later sessions do not send it again, and say why.
    assert (await sim.run_once()).ok == 1
    assert len(router.stats.spv) == 2
    assert len(spv_faults(router)) == 1
    later = daemon.device_json(serial)["job"]
    assert later["state"] == "DONE" and later["unsupported"] == job["unsupported"], later


def test_a_factory_reset_forgets_the_refusals():
    # A reset may bring back firmware defaults that take the parameter: tried again.
    refused = {W + "RadioEnabled": {"setting": "wifi.2g.enable", "code": 9008, "message": ""}}
    stored = {"refusedOptional": refused}
    assert new_memory(stored, bootstrap=False)["refusedOptional"] == refused
    assert new_memory(stored, bootstrap=True)["refusedOptional"] == {}
    # a hand-edited entry of another shape is dropped, not a failure of every session
    assert new_memory({"refusedOptional": {"x": 1}}, bootstrap=False)["refusedOptional"] == {}
