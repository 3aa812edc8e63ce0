"""An SSID is one name, commas and all: a CPE's spaces after the commas of a list of DNS
servers may be ignored when comparing, but "Cafe, Bar" is another network than
"Cafe,Bar". acsd took the two for one, so an operator's rename that only added or
removed such a space never reached the router while the job said DONE."""

from __future__ import annotations

from acsd.provisioning.plan import same_value
from acsd.sim.runner import Simulation
from api_world import seed_body

SSID = "Device.WiFi.SSID.1.SSID"


def test_commas_are_list_separators_only_in_lists_of_addresses():
    assert not same_value("xsd:string", "Cafe,Bar", "Cafe, Bar")
    assert not same_value("xsd:string", "a, b,c", "a,b,c")
    # DNS server lists as firmware writes them back
    assert same_value("xsd:string", "192.0.2.53, 198.51.100.53", "192.0.2.53,198.51.100.53")
    assert same_value("xsd:string", "2001:db8::1 , 192.0.2.53", "2001:db8::1,192.0.2.53")
    assert same_value("xsd:string", ",192.0.2.53", ", 192.0.2.53")


async def test_an_ssid_that_differs_in_a_space_after_a_comma_is_sent(daemon):
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="COMMA")
    router = sim.routers[0]
    body = seed_body(router.serial, "192.168.1")
    body["wifi"]["ssid"] = "Cafe,Bar"
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(SSID) == "Cafe,Bar"

    body["wifi"]["ssid"] = "Cafe, Bar"
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(SSID) == "Cafe, Bar"
    assert daemon.device_json(router.serial)["job"]["state"] == "DONE"
