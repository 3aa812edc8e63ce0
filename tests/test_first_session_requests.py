"""What a router's first session costs: requests per profile, with the operator's wifi and
DHCP settings on its record before it ever Informs (the usual order: the record is made at
the order, the router is plugged in later). Each lacking name the read must find costs
requests of every first session of a kind, so a search that grows shows up here."""

from __future__ import annotations

from pathlib import Path

import pytest

from acsd.sim.runner import Simulation
from api_world import seed_body

#: requests of the first session (reading, AddObject, SetParameterValues), at most; 35 for
#: tr181-mobile and 19 for tr181-generic when a search by halves found what they lack
FIRST_SESSION = {
    "tr181-generic": 11,
    "tr181-wifi6e": 5,
    "tr181-mobile": 17,
    "tplink-tr181": 5,
    "tr098-dsl": 3,
    "tr098-ont": 3,
    "tplink-tr098": 8,
    "huawei-hg8245": 8,
    "zte-f670l": 8,
    "zyxel-vmg8825": 4,
    "nokia-g240w": 8,
}
TREES = sorted(p.stem for p in (Path(__file__).parent.parent / "src/acsd/sim/trees").glob("*.json"))
LAN = {
    "Device.": "Device.IP.Interface.1.IPv4Address.1.IPAddress",
    "InternetGatewayDevice.": "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement."
    "IPInterface.1.IPInterfaceIPAddress",
}


def test_every_simulated_tree_has_a_bound():
    assert sorted(FIRST_SESSION) == TREES


@pytest.mark.parametrize("tree", TREES)
async def test_a_first_session_is_provisioned_within_its_requests(module_daemon, tree: str):
    # One daemon for all trees: each is a kind of its own (see test_absent_names.py), so
    # none is read with what another kind lacked.
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, [tree], 1, serial_prefix="FS" + tree.replace("-", "")[:9])
    router = sim.routers[0]
    lan = next(router.tree.values[p] for p in LAN.values() if p in router.tree.values)
    daemon.apply(seed_body(router.serial, lan.rsplit(".", 1)[0]))
    assert (await sim.run_once()).ok == 1
    device = daemon.device_json(router.serial)
    assert (device["state"], device["job"]["state"]) == ("ACTIVE", "DONE"), device["job"]
    requests = router.stats.rpcs[0]
    assert len(requests) <= FIRST_SESSION[tree], requests
    # and the next session is a steady one: what it lacks was found once
    assert (await sim.run_once()).ok == 1
    assert router.stats.rpcs[1] == ["GetParameterValues"]
