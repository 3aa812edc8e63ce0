"""What counts as "the router already holds it": a value that differs only in how the CPE
writes it is left alone, any other difference is sent."""

from __future__ import annotations

from acsd.provisioning.plan import same_value
from acsd.sim.runner import Simulation
from api_world import seed_body

SSID = "Device.WiFi.SSID.1.SSID"


def test_values_are_equal_as_the_cpe_means_them():
    assert same_value("xsd:string", "192.0.2.53, 198.51.100.53", "192.0.2.53,198.51.100.53")
    assert same_value("xsd:string", "Device.IP.Interface.1.", "Device.IP.Interface.1")
    assert same_value("xsd:string", "", "0.0.0.0")
    assert same_value("xsd:boolean", "1", "true")
    # firmware that reads a boolean back as a word: no difference to write every session
    for word in ("Enable", "Enabled", "on", "YES"):
        assert same_value("xsd:boolean", word, "true") and not same_value(
            "xsd:boolean", word, "false"
        )
    assert same_value("xsd:unsignedInt", "0600", "600")
    # any other space is part of the value
    assert not same_value("xsd:string", "SkyNet", "Sky Net")
    assert not same_value("xsd:string", "Need4Speed", "Need 4 Speed")
    assert not same_value("xsd:string", "SkyNet ", "SkyNet")


async def test_an_ssid_that_differs_only_in_spaces_is_sent(daemon):
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="SPACE")
    router = sim.routers[0]
    assert (await sim.run_once()).ok == 1
    body = seed_body(router.serial, "192.168.1")
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(SSID) == "SkyNet"

    body["wifi"]["ssid"] = "Sky Net"
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(SSID) == "Sky Net"
    assert daemon.device_json(router.serial)["status"]["provisioned"] is True


def test_text_a_router_keeps_in_a_legacy_encoding_is_the_text_it_holds() -> None:
    # Chinese firmware sends its GBK bytes in envelopes labelled UTF-8: read (losslessly)
    # as Windows-1252, "中文网络" is "ÖÐÎÄÍøÂç", which is what a router holding it sends;
    # another SSID of as many characters is not (U+FFFD for every byte made them one).
    from acsd.charsets import mixed_utf8

    read = mixed_utf8("中文网络".encode("gbk"))
    assert same_value("xsd:string", read, "中文网络")
    assert not same_value("xsd:string", read, "你好世界")
    assert not same_value("xsd:string", mixed_utf8("Cafè".encode("latin-1")), "Café")
