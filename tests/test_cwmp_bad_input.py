"""Hostile and broken input is answered with a clear 4xx or SOAP fault while a good CPE's
session, running at the same time, completes with its data intact."""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable, Iterator

import aiohttp
import pytest

from acsd.cwmp import rpc
from acsd.cwmp.connreq import connection_request
from acsd.cwmp.soap import Envelope, parse_envelope, render_envelope
from acsd.sim.runner import Simulation
from api_world import SEED_BODY
from conftest import wait_for
from test_cwmp_protocol import TREE, drive_to_end
from test_metrics import scrape, value
from wire import (
    Wire,
    envelope,
    expect_continue,
    inform_body,
    post_once,
    post_slowly,
    read_until,
)

NS = "urn:dslforum-org:cwmp-1-2"

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


# Most tests share one daemon (module_daemon): each has serial numbers of its own and reads
# only their lines from the log, or, for input refused before it names a router, the lines
# written while it ran (the tests of a module take turns on their daemon). A request without
# a cookie on a new connection is matched to the one session open from its address whose
# CPE never sent its cookie back: a test that leaves such a session open connects from an
# address of its own (LEFT_OPEN_FROM), never from the 127.0.0.1 of the others.
LEFT_OPEN_FROM = "127.0.0.2"


def bad_post(url: str, body: bytes, content_type: str = "text/xml") -> tuple[int, bytes]:
    wire = Wire(url)
    try:
        answer = wire.post(body, headers={"Content-Type": content_type})
        return answer.status, answer.body
    finally:
        wire.close()


def test_hostile_input_is_refused_while_a_good_session_completes(module_daemon):
    daemon = module_daemon
    start = len(daemon.lines)
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

    log = "\n".join(daemon.lines[start:])
    for reason in ("DOCTYPE", "max_body", "malformed", "Content-Type", "DeviceId"):
        assert reason in log, reason
    assert "root:x:" not in log


async def test_a_firmware_version_longer_than_the_data_model_allows_is_kept_cut(module_daemon):
    # SoftwareVersion and HardwareVersion are string(64) in TR-181, but only the body limit
    # bounds what a CPE puts there. The router is still managed; the record keeps 64
    # characters, and the log says what was cut.
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="LONGV")
    router = sim.routers[0]
    version = "3.16.0 Build 20261203 Rel.1234n " + "x" * 20_000
    router.tree.set_local("Device.DeviceInfo.SoftwareVersion", version)
    router.tree.set_local("Device.DeviceInfo.HardwareVersion", "Archer AX55 v1.0 " + "y" * 500)
    daemon.apply({**SEED_BODY, "serialNumber": router.serial})
    assert (await sim.run_once()).ok == 1

    device = daemon.device_json(router.serial)
    assert device["state"] == "ACTIVE"
    assert device["cpe"]["softwareVersion"] == version[:64]
    assert device["cpe"]["hardwareVersion"] == ("Archer AX55 v1.0 " + "y" * 500)[:64]
    cut = {
        e["parameter"]: e["length"]
        for e in daemon.events("session.version_cut")
        if e.get("serial") == router.serial
    }
    assert cut == {"DeviceInfo.SoftwareVersion": len(version), "DeviceInfo.HardwareVersion": 517}


async def test_a_version_indented_by_pretty_printing_firmware_is_kept_without_the_indent(
    module_daemon,
):
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="PRETTY")
    router = sim.routers[0]
    router.tree.set_local("Device.DeviceInfo.SoftwareVersion", "\n        1.2.3 Build 7\n    ")
    daemon.apply({**SEED_BODY, "serialNumber": router.serial})
    assert (await sim.run_once()).ok == 1
    assert daemon.device_json(router.serial)["cpe"]["softwareVersion"] == "1.2.3 Build 7"


# --- found by fuzzing: each of these answered HTTP 500 ------------------------------------


def session_errors(daemon, serial: str) -> list[dict]:
    return [e for e in daemon.events("cwmp.session_error") if e.get("serial") == serial]


def test_a_body_that_does_not_inflate_is_400(module_daemon):
    daemon = module_daemon
    status, body = post_once(daemon.cwmp_url, b"not gzip", {"Content-Encoding": "gzip"})
    assert status == 400 and b"could not be read" in body


def test_a_fault_code_of_thousands_of_digits_is_read_as_no_code(module_daemon):
    daemon = module_daemon
    fault = envelope(
        "<SOAP-ENV:Fault><faultcode>" + "9" * 5000 + "</faultcode>"
        "<faultstring>x</faultstring></SOAP-ENV:Fault>"
    )
    status, body = bad_post(daemon.cwmp_url, fault)
    assert status == 400 and b"send an Inform first" in body


def test_instance_numbers_that_are_not_ascii_digits_do_not_break_the_session(module_daemon):
    # "²" is a digit to str.isdigit() and not to int(); 5,000 digits are too many for int()
    daemon = module_daemon
    odd = {
        "Device.IP.Interface.\u00b2.IPv4Address.1.IPAddress": ("10.9.9.9", "xsd:string"),
        f"Device.IP.Interface.{'7' * 5000}.IPv4Address.1.IPAddress": ("10.8.8.8", "xsd:string"),
    }
    tree = {**TREE, **odd}
    wire = Wire(daemon.cwmp_url)
    ns = "urn:dslforum-org:cwmp-1-2"
    assert wire.post(envelope(inform_body("ODDINST01"), ns=ns)).status == 200
    drive_to_end(wire, wire.post(None), ns, tree=tree)
    device = daemon.device_json("ODDINST01")
    assert device["status"]["lanIp"] == "192.168.7.1"
    assert session_errors(daemon, "ODDINST01") == []


@contextlib.contextmanager
def raw_post(
    daemon,
    body: bytes,
    *,
    length: int | None = None,
    content_type: str = "text/xml",
    timeout: float = 10,
) -> Iterator[socket.socket]:
    """A connection to the daemon's CWMP port that has sent one POST of ``body``, declared
    ``length`` bytes long (its own length by default): what no HTTP client would send."""
    host, port = daemon.cwmp_url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(
            f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n".encode()
            + f"Content-Length: {len(body) if length is None else length}\r\n\r\n".encode()
            + body
        )
        yield sock


def test_a_body_that_never_comes_is_408_after_session_timeout(daemon_factory):
    daemon = daemon_factory(cwmp={"session_timeout": 1})
    with raw_post(daemon, b"<SOAP-ENV:Envelope", length=500) as sock:
        started = time.monotonic()
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert time.monotonic() - started < 8


def test_a_body_one_byte_short_of_its_length_is_408_after_body_timeout(daemon_factory):
    """A router whose Content-Length is one more than the body it sends has sent all it
    will, and waits for an answer: it hears 408 once nothing came for body_timeout, not
    after the whole session_timeout (30 s here), which its own HTTP client may not wait
    out. The log says which limit it met."""
    daemon = daemon_factory(cwmp={"body_timeout": 0.5})
    body = envelope(inform_body("SHORTBODY1"))
    with raw_post(daemon, body, length=len(body) + 1) as sock:
        started = time.monotonic()
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert time.monotonic() - started < 5
    [refused] = wait_for(lambda: daemon.events("cwmp.refused"))
    assert refused["reason"] == "request body stopped: nothing of it for 0.5 s (body_timeout)"


@pytest.mark.parametrize("keeps_cookies", [True, False], ids=["cookie", "no-cookie"])
def test_an_answer_still_arriving_when_the_session_would_time_out_is_taken(
    module_daemon_factory, keeps_cookies
):
    """A weak CPE on a slow uplink: it thinks a while, then uploads its answer slowly. The
    upload begins within session_timeout of the request it answers and ends within
    session_timeout of its start (no 408 is due), but the reaper used to end the session
    under it: the answer got 400 "no open CWMP session" and was lost, at every session.
    A CPE that keeps no cookies sends it on a new connection, found by its address."""
    daemon = module_daemon_factory(cwmp={"session_timeout": 3})
    ns = "urn:dslforum-org:cwmp-1-0"
    serial = "SLOWUP001" if keeps_cookies else "SLOWUP002"
    wire = Wire(daemon.cwmp_url, cookies=keeps_cookies)
    assert wire.post(envelope(inform_body(serial), ns=ns)).status == 200
    asked = parse_envelope(wire.post(None).body)
    assert isinstance(asked.body, rpc.GetParameterValues)
    uptime = (
        '<cwmp:GetParameterValuesResponse><ParameterList SOAP-ENC:arrayType="cwmp:'
        'ParameterValueStruct[1]"><ParameterValueStruct><Name>Device.DeviceInfo.UpTime</Name>'
        '<Value xsi:type="xsd:unsignedInt">77</Value></ParameterValueStruct></ParameterList>'
        "</cwmp:GetParameterValuesResponse>"
    )
    body = envelope(uptime, ns=ns, cwmp_id=asked.id)
    time.sleep(1.5)  # the CPE builds its answer
    # 4 s after the request it answers: past session_timeout
    cookie = wire.cookie if keeps_cookies else None
    status = post_slowly(daemon.cwmp_url, body, cookie=cookie, pause=2.5)
    assert status in (b"HTTP/1.1 200 OK", b"HTTP/1.1 204 No Content"), status
    assert not [e for e in daemon.events("cwmp.session_timeout") if e.get("serial") == serial]


async def test_a_connection_request_url_that_is_no_url_fails_without_raising():
    # What a CPE reports as its ConnectionRequestURL: a ValueError here was a background
    # task's "exception was never retrieved" at error level.
    async with aiohttp.ClientSession() as session:
        for url in ("http://[::1", "http://[::1/cr", "http://192.0.2.1:port/cr"):
            result = await connection_request(session, url, None, None)
            assert not result.ok and "not a URL" in result.reason, (url, result)


async def test_a_periodic_interval_past_64_bits_is_not_kept(module_daemon):
    # The record's INTEGER column cannot hold it: the commit failed, so every session of
    # the router failed and it was never recorded.
    daemon = module_daemon
    interval = "Device.ManagementServer.PeriodicInformInterval"
    sim = Simulation(
        daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="BIGPI", faults={interval: 9007}
    )
    router = sim.routers[0]
    router.tree.values[interval] = str(2**63)
    assert (await sim.run_once()).ok == 1
    device = daemon.device_json(router.serial)
    assert device["cpe"]["oui"] and session_errors(daemon, router.serial) == []


def test_a_client_that_leaves_mid_body_is_no_error_in_the_log(module_daemon):
    daemon = module_daemon
    host, port = daemon.cwmp_url.split("//")[1].rstrip("/").split(":")
    start = len(daemon.lines)
    for _ in range(3):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n")
        sock.sendall(b"Content-Length: 900\r\n\r\n<SOAP-ENV:Envelope")
        time.sleep(0.2)
        sock.close()  # SO_LINGER 0: a reset, as a CPE that loses power
    time.sleep(1.0)
    assert not [line for line in daemon.lines[start:] if '"level": "error"' in line]


def test_an_element_inside_a_value_is_refused_and_a_comment_is_read_around(module_daemon):
    # el.text stops at the first child: <SerialNumber>X<b/>1</SerialNumber> registered "X".
    daemon = module_daemon
    status, body = bad_post(daemon.cwmp_url, envelope(inform_body("MIX<b/>ED01")))
    fault = parse_envelope(body).body
    assert status == 200 and isinstance(fault, rpc.Fault) and fault.code == 8003
    assert "SerialNumber" in fault.string
    # A comment is XML inside a value: the text is what is around it.
    wire = Wire(daemon.cwmp_url)
    try:
        answer = wire.post(envelope(inform_body("COMM<!-- x -->ENT01")))
        assert answer.status == 200
        assert isinstance(parse_envelope(answer.body).body, rpc.InformResponse)
        drive_to_end(wire, wire.post(None), "urn:dslforum-org:cwmp-1-0")
    finally:
        wire.close()
    listed = daemon.cli("device", "list").stdout
    assert "COMMENT01" in listed and "MIX" not in listed


def test_a_malformed_answer_ends_the_session_at_once(module_daemon):
    # The fault's answer closes the connection, which ends the session for the CPE: acsd
    # ends it too and keeps what it learned, instead of holding it until session_timeout.
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-0"
    wire = Wire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body("BADANS01"), ns=ns)).status == 200
    request = parse_envelope(wire.post(None).body)
    assert isinstance(request.body, rpc.GetParameterValues)
    broken = (
        "<cwmp:GetParameterValuesResponse><ParameterList>"
        "<ParameterValueStruct><Name>Device.DeviceInfo.UpTime</Name>"
        '<Value xsi:type="xsd:unsignedInt">5<x/></Value></ParameterValueStruct>'
        "</ParameterList></cwmp:GetParameterValuesResponse>"
    )
    answer = wire.post(envelope(broken, ns=ns, cwmp_id=request.id))
    fault = parse_envelope(answer.body).body
    assert isinstance(fault, rpc.Fault) and fault.code == 8003
    assert answer.headers["Connection"] == "close"
    # (the daemon's stderr is read by a thread of the test: the line may lag the answer)
    ends = wait_for(
        lambda: [e for e in daemon.events("session.end") if e.get("serial") == "BADANS01"]
    )
    assert len(ends) == 1 and not ends[0]["complete"]
    assert "malformed" in ends[0]["reason"]
    assert daemon.device_json("BADANS01")["cpe"]["softwareVersion"] == "1.0.0"
    # The next session starts afresh and completes.
    again = Wire(daemon.cwmp_url)
    assert again.post(envelope(inform_body("BADANS01"), ns=ns)).status == 200
    drive_to_end(again, again.post(None), ns)


def _stored_params(daemon, serial: str) -> dict[str, list]:
    import json
    import sqlite3

    with sqlite3.connect(daemon.db) as db:
        row = db.execute(
            "SELECT params FROM devices WHERE serial_key = ?", (serial.lower(),)
        ).fetchone()
    return json.loads(row[0]) if row else {}


def _session_answering_reads(daemon, serial: str, params: dict[str, str]) -> None:
    """One session of a CPE whose Inform carries ``params`` and which answers every read
    with the names asked (empty values) and one name nobody asked for; returns once the
    session is saved."""

    def ends() -> int:
        return len([e for e in daemon.events("session.end") if e.get("serial") == serial])

    ended = ends()
    wire = Wire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body(serial, params=params))).status == 200
    answer = wire.post(None)
    for _ in range(20):
        if answer.status == 204:
            break
        request = parse_envelope(answer.body)
        if isinstance(request.body, rpc.SetParameterValues):  # acsd's CR credentials
            answer = wire.post(envelope(
                "<cwmp:SetParameterValuesResponse><Status>0</Status>"
                "</cwmp:SetParameterValuesResponse>", cwmp_id=request.id,
            ))  # fmt: skip
            continue
        if isinstance(request.body, rpc.GetParameterNames):
            # (the listing of Device. that checks objects its kind lacked: this CPE cannot
            # list, so the names are asked for, and it answers them all)
            fault = rpc.cpe_fault(9002, "Internal error")
            answer = wire.post(render_envelope(Envelope(body=fault, id=request.id)))
            continue
        assert isinstance(request.body, rpc.GetParameterValues), request.body
        values = {n: "" for n in request.body.names if not n.endswith(".")}
        values["Device.DeviceInfo.X_EVIL_Unasked"] = "x"
        body = "".join(
            f"<ParameterValueStruct><Name>{n}</Name><Value>{v}</Value></ParameterValueStruct>"
            for n, v in values.items()
        )
        answer = wire.post(envelope(
            f"<cwmp:GetParameterValuesResponse><ParameterList>{body}</ParameterList>"
            "</cwmp:GetParameterValuesResponse>", cwmp_id=request.id,
        ))  # fmt: skip
    assert answer.status == 204
    wire.close()
    wait_for(lambda: ends() > ended)


_INFORM_PARAMS = {
    "Device.DeviceInfo.SoftwareVersion": "1.0.0",
    "Device.DeviceInfo.HardwareVersion": "HW1",
    "Device.ManagementServer.ConnectionRequestURL": "http://127.0.0.1:9/cr",
}


def test_names_a_cpe_invents_are_not_stored_session_after_session(module_daemon):
    """An Inform may carry any names, and a GetParameterValues answer names nobody asked
    for: they serve the session, but the stored tree keeps only what the profile reads,
    or a CPE could grow its record (and the daemon's memory) without end."""
    daemon = module_daemon
    invented = {f"Device.X_EVIL.R{i}.Junk": "x" * 40 for i in range(200)}
    for session in range(2):
        params = {
            **_INFORM_PARAMS,
            **{f"{name}{session}": value for name, value in invented.items()},
        }
        _session_answering_reads(daemon, "EVIL000001", params)
    stored = _stored_params(daemon, "EVIL000001")
    assert "Device.ManagementServer.PeriodicInformInterval" in stored  # the session was saved
    assert not [name for name in stored if "X_EVIL" in name]
    # what every Inform carries stays in the tree
    assert stored["Device.DeviceInfo.SoftwareVersion"][0] == "1.0.0"


def test_a_setting_the_inform_reports_is_stored(module_daemon):
    """A value change the CPE informs of (an SSID changed on the router) is what the
    router holds now: the stored tree, which says what differs from the operator's
    settings, must take it even when the session reads no settings."""
    daemon = module_daemon
    params = {**_INFORM_PARAMS, "Device.WiFi.SSID.1.SSID": "ChangedOnTheRouter"}
    _session_answering_reads(daemon, "SSIDVC0001", params)
    stored = _stored_params(daemon, "SSIDVC0001")
    assert stored["Device.WiFi.SSID.1.SSID"][0] == "ChangedOnTheRouter"


def test_expect_100_continue_is_answered_before_the_body(module_daemon):
    """libcurl-based CPE stacks send "Expect: 100-continue" with every POST over 1 KiB and
    wait (a second, or for ever) for the interim answer before sending the body."""
    daemon = module_daemon
    body = envelope(inform_body("EXPECT01"))
    address, head = expect_continue(daemon.cwmp_url, body)
    with socket.create_connection(address, timeout=5, source_address=(LEFT_OPEN_FROM, 0)) as sock:
        sock.sendall(head)
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = read_until(sock, b"InformResponse")
        assert answer.startswith(b"HTTP/1.1 200")
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(head.replace(b"100-continue", b"something-else"))
        assert sock.recv(4096).startswith(b"HTTP/1.1 417")


def test_an_empty_expect_header_is_no_expectation(module_daemon):
    """Firmware that writes its header block from a template sends "Expect:" with nothing
    in it. An empty field names no expectation (RFC 9110 10.1.1: 417 is for a member other
    than 100-continue); it got 417 on every Inform, so the router was never managed."""
    daemon = module_daemon
    body = envelope(inform_body("EXPECT02"))
    address, head = expect_continue(daemon.cwmp_url, body)
    with socket.create_connection(address, timeout=5, source_address=(LEFT_OPEN_FROM, 0)) as sock:
        sock.sendall(head.replace(b"Expect: 100-continue", b"Expect: ") + body)
        answer = read_until(sock, b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200"), answer


def test_an_answer_that_says_connection_close_closes_the_connection(module_daemon):
    """RFC 9112 9.6: a server that sends "Connection: close" must close the connection
    after that response. acsd only wrote the header and went on serving the connection,
    and a client that ignored it had its next request answered."""
    daemon = module_daemon
    host, port = daemon.cwmp_url.split("//")[1].rstrip("/").split(":")
    no_device_id = envelope("<cwmp:Inform><MaxEnvelopes>1</MaxEnvelopes></cwmp:Inform>")
    refusals = (
        b"Content-Length: 0\r\n\r\n",  # 400: an empty POST with no session
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",  # 415
        b"Content-Length: 9\r\n\r\n<b></b>\r\n",  # 400: not SOAP
        f"Content-Length: {len(no_device_id)}\r\n\r\n".encode() + no_device_id,  # fault 8003
    )
    for refusal in refusals:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n" + refusal)
            answer = read_until(sock, b"\r\n\r\n")
            assert b"Connection: close" in answer, answer
            sock.settimeout(3)
            rest = b""
            while chunk := sock.recv(65536):  # an exception (timeout) if never closed
                rest += chunk
            assert b"HTTP/1.1" not in rest


def test_an_inform_with_thousands_of_events_is_logged_with_the_first_64(module_daemon):
    """TR-069 allows 64 EventStructs: a CPE sending thousands is served, and its log line
    names the first 64 and how many more came."""
    daemon = module_daemon
    wire = Wire(daemon.cwmp_url, source=LEFT_OPEN_FROM)
    events = ("1 BOOT", *(f"X ACME {i}" for i in range(3000)))
    assert wire.post(envelope(inform_body("EVENTS01", events=events))).status == 200
    [logged] = wait_for(
        lambda: [e for e in daemon.events("session.inform") if e.get("serial") == "EVENTS01"]
    )
    assert logged["events"] == list(events[:64]) and logged["more_events"] == len(events) - 64


def test_a_body_declared_in_punycode_is_answered_at_once(module_daemon):
    """A Content-Type's charset names one of Python's codecs, and some of those are no
    character set: punycode decodes in quadratic time, on the event loop. 600 kB declared
    so held every session and the API for half a minute; now it is read as sent (here
    malformed XML: 400) as any unknown charset is."""
    daemon = module_daemon
    n = 400_000
    body = b"<" + b"a" * n + b"-" + b"b" * (n // 2)
    with raw_post(daemon, body, content_type="text/xml; charset=punycode", timeout=120) as raw:
        started = time.monotonic()
        answer = read_until(raw, b"\r\n\r\n")
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert took < 5, f"answered after {took:.1f} s"


def test_a_cpe_sending_only_requests_of_its_own_is_ended_at_max_session_seconds(
    module_daemon_factory,
):
    """A CPE stack in a retry loop sends GetRPCMethods (or TransferComplete) again and
    again and never its empty POST: acsd never gets a turn to send, where the session's
    length was checked, and the session (and a slot of max_sessions) lasted as long as
    the loop. It ends at max_session_seconds like any other."""
    daemon = module_daemon_factory(cwmp={"max_session_seconds": 1.0})
    ns = "urn:dslforum-org:cwmp-1-2"
    # (a method acsd does not know, answered with fault 8000, likewise)
    for serial, request in (("OWNREQ01", "<cwmp:GetRPCMethods/>"), ("OWNREQ02", "<cwmp:X/>")):
        wire = Wire(daemon.cwmp_url)
        assert wire.post(envelope(inform_body(serial), ns=ns)).status == 200
        statuses = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            statuses.append(wire.post(envelope(request, ns=ns)).status)
            if statuses[-1] != 200:
                break
            time.sleep(0.2)
        assert statuses[-1] == 204, (serial, statuses)
        [end] = wait_for(
            lambda: [e for e in daemon.events("session.end") if e.get("serial") == serial]  # noqa: B023
        )
        assert end["reason"] == "session too long"


def test_a_cpe_looping_on_its_own_requests_writes_a_bounded_number_of_log_lines(
    module_daemon_factory,
):
    """A CPE repeating TransferComplete and an unknown method until max_session_seconds
    ends its session wrote a log line per request: thousands a second into the journal.
    Every request is still answered; the first few per method are logged, and one line
    at the session's end counts the rest."""
    daemon = module_daemon_factory(cwmp={"max_session_seconds": 1.0})
    ns = "urn:dslforum-org:cwmp-1-2"
    serial = "LOGLOOP01"
    complete = (
        "<cwmp:TransferComplete><CommandKey>fw-1</CommandKey>"
        "<StartTime>2026-12-06T21:59:58Z</StartTime><CompleteTime>2026-12-06T21:59:59Z"
        "</CompleteTime><FaultStruct><FaultCode>0</FaultCode><FaultString></FaultString>"
        "</FaultStruct></cwmp:TransferComplete>"
    )
    wire = Wire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body(serial), ns=ns)).status == 200
    sent = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        request = complete if sent % 2 == 0 else "<cwmp:X/>"
        answer = wire.post(envelope(request, ns=ns))
        if answer.status == 204:
            break
        assert answer.status == 200
        body = parse_envelope(answer.body).body
        if sent % 2 == 0:
            assert isinstance(body, rpc.TransferCompleteResponse)
        else:
            assert isinstance(body, rpc.Fault) and body.code == 8000
        sent += 1
    assert sent > 12, sent  # (enough to spend the budget of both methods)
    [summary] = wait_for(
        lambda: [e for e in daemon.events("cwmp.requests_not_logged") if e["serial"] == serial]
    )

    def mine(event: str) -> list[dict]:
        return [e for e in daemon.events(event) if e.get("serial") == serial]

    assert len(mine("session.transfer_complete")) == 5
    assert len(mine("cwmp.unknown_method")) == 5
    assert summary["count"] == sent - 10


def test_a_malformed_answer_in_a_session_is_logged_with_its_routers_serial(module_daemon):
    # (cwmp.bad_envelope named the address alone: behind NAT, or with many routers, no
    # one could tell whose session broke)
    wire = Wire(module_daemon.cwmp_url)
    try:
        assert wire.post(envelope(inform_body("BADANS0001"))).status == 200
        assert wire.post(None).status == 200  # acsd's first request
        assert wire.post(b"<soap:Envelope><unclosed>").status == 400
    finally:
        wire.close()
    said = wait_for(
        lambda: [e for e in module_daemon.events("cwmp.bad_envelope") if e.get("serial")]
    )
    assert any(e["serial"] == "BADANS0001" for e in said), said


def test_a_cpes_text_of_any_length_makes_no_log_line_of_that_length(module_daemon):
    # An EventCode of 100 kB (TR-069: string(64)) made a session.inform line of 100 kB at
    # every session, and a FaultString of 300 kB a warning of 300 kB.
    from test_cwmp_protocol import drive_answering_raw

    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-2"
    wire = Wire(daemon.cwmp_url)
    inform = inform_body("LONGTEXT1", events=("1 BOOT", "X" * 100_000))
    assert wire.post(envelope(inform, ns=ns)).status == 200
    fault = (
        "<SOAP-ENV:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>"
        "<detail><cwmp:Fault><FaultCode>9002</FaultCode>"
        f"<FaultString>{'y' * 300_000}</FaultString></cwmp:Fault></detail></SOAP-ENV:Fault>"
    )
    drive_answering_raw(wire, ns, {rpc.GetParameterValues: fault}, limit=400)
    [line] = [e for e in daemon.events("session.inform") if e.get("serial") == "LONGTEXT1"]
    assert line["events"][0] == "1 BOOT" and len(line["events"][1]) == 64 + 3
    faults = [e for e in daemon.events("session.gpv_fault") if e.get("serial") == "LONGTEXT1"]
    assert faults and all(len(e["fault"]) == 256 + 3 for e in faults)


def test_a_refusal_repeated_at_will_is_logged_once_a_while_and_counted_every_time(daemon_factory):
    """A router whose firmware repeats a refused request in a loop (or a scanner) gets one
    line per kind of refusal a while, not one each: journald rate-limits the whole
    service, and a flood would drop acsd's other lines. Every refusal is still counted,
    and another reason from the same source is still told at once."""
    daemon = daemon_factory()
    for _ in range(30):
        status, _body = bad_post(daemon.cwmp_url, b"{}", content_type="application/json")
        assert status == 415
    status, _body = bad_post(daemon.cwmp_url, envelope("<cwmp:GetRPCMethodsResponse/>"))
    assert status == 400
    lines = wait_for(
        lambda: len(daemon.events("cwmp.refused")) >= 2 and daemon.events("cwmp.refused")
    )
    time.sleep(0.3)  # (no later line about the same refusal)
    lines = daemon.events("cwmp.refused")
    assert [line["status"] for line in lines] == [415, 400], lines
    assert lines[0]["since_last"] == 0 and "send an Inform first" in lines[1]["reason"]
    assert value(scrape(daemon), "acsd_cwmp_bad_requests_total") == 31


def test_a_refusal_that_quotes_what_varies_is_still_one_kind(daemon_factory):
    """A scanner that varies what a refusal's reason quotes of its request (the
    Content-Type, the tag names of broken XML) is no new kind of refusal each time: it
    gets one line a while per kind, as a request repeated byte for byte does."""
    daemon = daemon_factory()
    for i in range(20):
        status, _body = bad_post(daemon.cwmp_url, b"{}", content_type=f"application/x-{i}")
        assert status == 415
        status, _body = bad_post(daemon.cwmp_url, b"<a><b%d></a>" % i)
        assert status == 400
    wait_for(lambda: daemon.events("cwmp.refused") and daemon.events("cwmp.bad_envelope"))
    time.sleep(0.3)  # (no later line about the same kind)
    refused, broken = daemon.events("cwmp.refused"), daemon.events("cwmp.bad_envelope")
    assert len(refused) == 1 and "'application/x-0'" in refused[0]["reason"], refused
    assert len(broken) == 1 and broken[0]["reason"].startswith("malformed XML"), broken
    assert value(scrape(daemon), "acsd_cwmp_bad_requests_total") == 40


def _duplicating(extra: list[rpc.ParameterValue]) -> Callable[[rpc.Message], rpc.Message]:
    """The minimal CPE of test_cwmp_protocol, but its first GetParameterValuesResponse
    lists each name twice, the first time with another value, plus ``extra``."""
    from test_cwmp_protocol import answer_request

    done = False

    def reply(request: rpc.Message) -> rpc.Message:
        nonlocal done
        answer = answer_request(request)
        if isinstance(answer, rpc.GetParameterValuesResponse) and not done:
            done = True
            first = [rpc.ParameterValue(p.name, p.value + "0", p.type) for p in answer.parameters]
            answer.parameters = first + extra + answer.parameters
        return answer

    return reply


def test_a_name_listed_twice_with_two_values_keeps_the_last_and_is_logged_once(module_daemon):
    # (the secret's values must not reach the log line, as for any secret)
    secret = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"
    extra = [rpc.ParameterValue(secret, "hunter2-first"), rpc.ParameterValue(secret, "hunter2")]
    reply = _duplicating(extra)
    wire = Wire(module_daemon.cwmp_url)
    params = {
        "Device.DeviceInfo.SoftwareVersion": "1.0.0",
        "Device.ManagementServer.ConnectionRequestURL": "http://127.0.0.1:9/cr",
        "Device.ManagementServer.ParameterKey": "",
    }
    # the same value twice in the Inform: nothing to say
    inform = inform_body("DUPNAMES01", params=params).replace(
        "</ParameterList>",
        '<ParameterValueStruct><Name>Device.DeviceInfo.SoftwareVersion</Name><Value xsi:type="'
        'xsd:string">1.0.0</Value></ParameterValueStruct></ParameterList>',
    )
    assert wire.post(envelope(inform, ns=NS)).status == 200
    answer = wire.post(None)
    while answer.status == 200:
        env = parse_envelope(answer.body)
        answer = wire.post(render_envelope(Envelope(reply(env.body), NS, id=env.id)))
    assert answer.status == 204
    told = wait_for(
        lambda: [
            e for e in module_daemon.events("cwmp.duplicate_parameter")
            if e.get("serial") == "DUPNAMES01"
        ]
    )  # fmt: skip
    assert len(told) == 1 and told[0]["level"] == "warning"
    assert told[0]["message"] == "GetParameterValuesResponse" and told[0]["kept"] == "last"
    assert "Device.DeviceInfo.UpTime" in told[0]["names"] and secret in told[0]["names"]
    shown = dict(zip(told[0]["names"], told[0]["values"], strict=True))
    assert shown["Device.DeviceInfo.UpTime"] == ["42420", "4242"]
    assert shown[secret] == ["***"] and "hunter2" not in module_daemon.log_text()
    assert module_daemon.device_json("DUPNAMES01")["status"]["upTime"] == 4242


def test_a_name_listed_twice_in_an_inform_keeps_the_last_value(module_daemon):
    wire = Wire(module_daemon.cwmp_url)
    params = {
        "Device.DeviceInfo.SoftwareVersion": "0.9.9",
        "Device.ManagementServer.ConnectionRequestURL": "http://127.0.0.1:9/cr",
        "Device.ManagementServer.ParameterKey": "",
    }
    inform = inform_body("DUPNAMES02", params=params).replace(
        "</ParameterList>",
        '<ParameterValueStruct><Name>Device.DeviceInfo.SoftwareVersion</Name><Value xsi:type="'
        'xsd:string">2.0.0</Value></ParameterValueStruct></ParameterList>',
    )
    assert wire.post(envelope(inform, ns=NS)).status == 200
    drive_to_end(wire, wire.post(None), NS)
    told = wait_for(
        lambda: [
            e for e in module_daemon.events("cwmp.duplicate_parameter")
            if e.get("serial") == "DUPNAMES02"
        ]
    )  # fmt: skip
    assert told[0]["message"] == "Inform" and told[0]["values"] == [["0.9.9", "2.0.0"]]
    assert module_daemon.device_json("DUPNAMES02")["cpe"]["softwareVersion"] == "2.0.0"


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\nHost: acs\nContent-Length: 0\n\n",  # every line
        b"POST / HTTP/1.1\r\nHost: acs\nContent-Length: 0\n\n",  # the header lines
        b"POST / HTTP/1.1\r\nHost: acs\r\nContent-Length: 0\r\n\n",  # the blank line
    ],
)
def test_bare_lf_line_endings_are_refused_with_a_reason_that_says_so(module_daemon, head):
    # aiohttp's parser refuses them (README: Troubleshooting), naming what it met there:
    # "Bad status line", "Invalid header field char". The router, and the log, are told.
    host, port = module_daemon.cwmp_url.split("/")[2].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        answer = read_until(sock, b"CRLF line endings")
    assert answer.startswith(b"HTTP/1.1 400") or answer.startswith(b"HTTP/1.0 400")
    assert b"bare LF" in answer
    told = wait_for(
        lambda: [
            e for e in module_daemon.events("client_request_unreadable")
            if "bare LF" in e.get("reason", "")
        ]
    )  # fmt: skip
    assert told[-1]["remote"] == "127.0.0.1"


def test_other_unreadable_headers_keep_aiohttp_s_reason(module_daemon):
    host, port = module_daemon.cwmp_url.split("/")[2].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: acs\r\nX-A: \x01\r\n\r\n")
        answer = read_until(sock, b"header value char")
    assert b" 400 " in answer.split(b"\r\n", 1)[0] and b"bare LF" not in answer


def _post_then_half_close(url: str, body: bytes, cookie: str | None) -> bytes:
    """POST over HTTP/1.0, shut the sending side (as minimal clients mark a request's
    end), read to the server's close."""
    host, port = url.split("/")[2].rsplit(":", 1)
    head = f"POST / HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: {len(body)}\r\n"
    if cookie:
        head += f"Cookie: {cookie}\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_client_that_half_closes_after_its_request_gets_the_answer(module_daemon):
    # asyncio closed the connection at the client's FIN: the Inform was handled (a session
    # opened) and its answer dropped, every time.
    answer = _post_then_half_close(
        module_daemon.cwmp_url, envelope(inform_body("HALFCLOSE1"), ns=NS), None
    )
    assert answer.startswith(b"HTTP/1.0 200") and b"InformResponse" in answer
    cookie = next(
        line.split(b":", 1)[1].split(b";")[0].strip().decode()
        for line in answer.split(b"\r\n")
        if line.lower().startswith(b"set-cookie:")
    )
    answer = _post_then_half_close(module_daemon.cwmp_url, b"", cookie)
    assert answer.startswith(b"HTTP/1.0 200") and b"GetParameterValues" in answer
    # a connection on which nothing was asked is still closed at once
    host, port = module_daemon.cwmp_url.split("/")[2].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(10) == b""
