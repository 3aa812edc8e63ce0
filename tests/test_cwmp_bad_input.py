"""Hostile and broken input is answered with a clear 4xx or SOAP fault while a good CPE's
session, running at the same time, completes with its data intact."""

from __future__ import annotations

import socket
import time

from acsd.cwmp import rpc
from acsd.cwmp.soap import parse_envelope
from acsd.sim.runner import Simulation
from api_world import SEED_REQUEST
from test_cwmp_protocol import drive_to_end
from wire import Wire, envelope, inform_body

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]><lolz>&lol9;</lolz>"
)
XXE = envelope(
    "<cwmp:Inform><DeviceId><SerialNumber>&xxe;</SerialNumber></DeviceId></cwmp:Inform>"
).replace(
    b"<SOAP-ENV:Envelope",
    b'<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><SOAP-ENV:Envelope',
    1,
)


def bad_post(url: str, body: bytes, content_type: str = "text/xml") -> tuple[int, bytes]:
    wire = Wire(url)
    try:
        answer = wire.post(body, headers={"Content-Type": content_type})
        return answer.status, answer.body
    finally:
        wire.close()


def test_hostile_input_is_refused_while_a_good_session_completes(daemon):
    ns = "urn:dslforum-org:cwmp-1-2"
    good = Wire(daemon.cwmp_url)
    assert good.post(envelope(inform_body("GOOD0001"), ns=ns)).status == 200

    url = daemon.cwmp_url
    started = time.monotonic()
    status, body = bad_post(url, BILLION_LAUGHS)
    assert status == 400 and b"DOCTYPE" in body
    status, body = bad_post(url, XXE)
    assert status == 400 and b"root:" not in body
    status, _ = bad_post(url, b"<" + b"a" * (10 * 1024 * 1024))
    assert status == 413
    status, body = bad_post(url, b"\x00\xff garbage \x13\x37")
    assert status == 400
    status, body = bad_post(url, envelope(inform_body("TRUNC001"))[:300])
    assert status == 400 and b"malformed" in body
    status, _ = bad_post(url, b'{"json": true}', content_type="application/json")
    assert status == 415
    status, body = bad_post(url, envelope("<cwmp:Inform><Event/></cwmp:Inform>"))
    fault = parse_envelope(body).body
    assert status == 200 and isinstance(fault, rpc.Fault) and fault.code == 8003
    # A 10 MiB body announced but never finished must not hold the daemon either.
    with socket.create_connection((good.host, good.port), timeout=5) as raw:
        raw.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
            b"Content-Length: 10485760\r\n\r\n<soap"
        )
        assert b"413" in raw.recv(200)
    assert time.monotonic() - started < 10

    drive_to_end(good, good.post(None), ns)
    device = daemon.device_json("GOOD0001")
    assert device["status"]["upTime"] == 4242
    assert "TRUNC001" not in daemon.cli("device", "list").stdout

    log = daemon.log_text()
    for reason in ("DOCTYPE", "max_body", "malformed", "Content-Type", "DeviceId"):
        assert reason in log, reason
    assert "root:x:" not in log


async def test_a_firmware_version_longer_than_the_data_model_allows_is_kept_cut(daemon):
    # SoftwareVersion and HardwareVersion are string(64) in TR-181, but only the body limit
    # bounds what a CPE puts there. The router is still managed; the record keeps 64
    # characters, and the log says what was cut.
    sim = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="LONGV")
    router = sim.routers[0]
    version = "3.16.0 Build 20261203 Rel.1234n " + "x" * 20_000
    router.tree.set_local("Device.DeviceInfo.SoftwareVersion", version)
    router.tree.set_local("Device.DeviceInfo.HardwareVersion", "Archer AX55 v1.0 " + "y" * 500)
    daemon.apply({**SEED_REQUEST, "serialNumber": router.serial})
    assert (await sim.run_once()).ok == 1

    device = daemon.device_json(router.serial)
    assert device["state"] == "ACTIVE"
    assert device["cpe"]["softwareVersion"] == version[:64]
    assert device["cpe"]["hardwareVersion"] == ("Archer AX55 v1.0 " + "y" * 500)[:64]
    cut = {e["parameter"]: e["length"] for e in daemon.events("session.version_cut")}
    assert cut == {"DeviceInfo.SoftwareVersion": len(version), "DeviceInfo.HardwareVersion": 517}
