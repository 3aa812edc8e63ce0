"""A CWMP session as a CPE drives it, byte by byte, against the running daemon."""

from __future__ import annotations

import gzip
import json
import re
import socket
import time
import zlib
from datetime import datetime
from types import MappingProxyType

import pytest
from aiohttp.test_utils import make_mocked_request

from acsd.cwmp import rpc
from acsd.cwmp.server import COOKIE, session_cookie
from acsd.cwmp.soap import Envelope, parse_envelope, render_envelope
from conftest import wait_for
from cpe_steps import NS, finish
from cpe_steps import answer_request as cpe_answer
from wire import Answer, Wire, envelope, inform_body, post_once

# What the hand-written CPE below holds; anything else it answers with 9005. Read-only:
# each test's CPE writes to a copy.
TREE = MappingProxyType(
    {
        "Device.DeviceInfo.UpTime": ("4242", "xsd:unsignedInt"),
        "Device.DeviceInfo.ModelName": ("TestBox 1", "xsd:string"),
        "Device.IP.Interface.1.IPv4Address.1.IPAddress": ("192.168.7.1", "xsd:string"),
        "Device.IP.Interface.1.IPv4Address.1.SubnetMask": ("255.255.255.0", "xsd:string"),
        "Device.DHCPv4.Server.Pool.1.Interface": ("Device.IP.Interface.1", "xsd:string"),
        "Device.ManagementServer.PeriodicInformInterval": ("600", "xsd:unsignedInt"),
    }
)


def answer_request(request: rpc.Message, tree: dict | None = None) -> rpc.Message:
    """The minimal CPE of cpe_steps, holding a copy of TREE unless given a tree: a write
    to TREE itself would carry into every later test that starts from it (in any order)."""
    return cpe_answer(request, dict(TREE) if tree is None else tree)


def drive_to_end(
    wire: Wire, first: Answer, ns: str, limit: int = 50, tree: dict | None = None
) -> list[rpc.Message]:
    """Answer ACS requests until the 204; returns the requests seen."""
    tree = dict(TREE) if tree is None else tree
    seen = []
    answer = first
    for _ in range(limit):
        if answer.status == 204:
            return seen
        assert answer.status == 200, answer.text
        env = parse_envelope(answer.body)
        assert env.cwmp_ns == ns
        seen.append(env.body)
        reply = answer_request(env.body, tree)
        answer = wire.post(render_envelope(Envelope(body=reply, cwmp_ns=ns, id=env.id)))
    raise AssertionError("session did not end")


def drive_answering_raw(
    wire: Wire, ns: str, raw: dict[type[rpc.Message], str], limit: int = 50
) -> list[rpc.Message]:
    """After the Inform: the empty POST, then answer the ACS until its 204, with the Body
    child in ``raw`` for the request types it names (as a firmware writes it) and the
    minimal CPE's answer otherwise. Returns the requests seen; fails on an ACS fault."""
    tree = dict(TREE)
    seen: list[rpc.Message] = []
    answer = wire.post(None)
    for _ in range(limit):
        if answer.status == 204:
            return seen
        assert answer.status == 200, answer.text
        env = parse_envelope(answer.body)
        assert not isinstance(env.body, rpc.Fault), env.body
        seen.append(env.body)
        if type(env.body) in raw:
            answer = wire.post(envelope(raw[type(env.body)], ns=ns, cwmp_id=env.id))
        else:
            reply = answer_request(env.body, tree)
            answer = wire.post(render_envelope(Envelope(body=reply, cwmp_ns=ns, id=env.id)))
    raise AssertionError("session did not end")


# Most tests share one daemon (module_daemon): each has serial numbers of its own and reads
# only their lines from the log. A session whose CPE never sent its cookie back must be ended
# before the test is done: acsd matches a request without a cookie on a new connection to
# the one such session open from its address (127.0.0.1 for every test), so one left open
# would take the next test's. Tests that need a config of their own, or that look at the
# whole database, start a daemon of their own.


def test_session_answers_in_the_cpes_namespace_and_ends_with_204(module_daemon):
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-0"
    wire = Wire(daemon.cwmp_url)
    first = wire.post(envelope(inform_body("PROTO0001"), ns=ns, cwmp_id="inform-7"))
    assert first.status == 200
    assert first.headers["Content-Type"] == 'text/xml; charset="utf-8"'
    assert "acsd_session=" in first.headers["Set-Cookie"]
    assert not first.body.startswith(b"<?xml")
    env = parse_envelope(first.body)
    assert env.cwmp_ns == ns and env.id == "inform-7"
    assert env.body == rpc.InformResponse(max_envelopes=1)

    # CPE requests before the empty POST are answered, echoing the CPE's ID.
    tc = rpc.TransferComplete(command_key="fw-1", fault=rpc.FaultStruct(0, ""))
    answer = wire.post(render_envelope(Envelope(body=tc, cwmp_ns=ns, id="tc-1")))
    env = parse_envelope(answer.body)
    assert env.body == rpc.TransferCompleteResponse() and env.id == "tc-1"
    # ... also as firmware writes them with empty numbers (a FaultCode meaning "none", a
    # FileSize it did not know): a CPE sends an unacknowledged one again at every session.
    empty = (
        "<cwmp:TransferComplete><CommandKey>fw-1</CommandKey><FaultStruct><FaultCode></FaultCode>"
        "<FaultString></FaultString></FaultStruct><StartTime>0001-01-01T00:00:00Z</StartTime>"
        "<CompleteTime>0001-01-01T00:00:00Z</CompleteTime></cwmp:TransferComplete>"
    )
    autonomous = (
        "<cwmp:AutonomousTransferComplete><AnnounceURL></AnnounceURL><TransferURL></TransferURL>"
        "<IsDownload>true</IsDownload><FileType>1 Firmware Upgrade Image</FileType><FileSize/>"
        "<TargetFileName></TargetFileName><FaultStruct><FaultCode/><FaultString/></FaultStruct>"
        "<StartTime>0001-01-01T00:00:00Z</StartTime><CompleteTime>0001-01-01T00:00:00Z"
        "</CompleteTime></cwmp:AutonomousTransferComplete>"
    )
    for body, response in ((empty, rpc.TransferCompleteResponse()),
                           (autonomous, rpc.AutonomousTransferCompleteResponse())):  # fmt: skip
        answer = wire.post(envelope(body, ns=ns, cwmp_id="tc-2"))
        assert answer.status == 200 and parse_envelope(answer.body).body == response
    answer = wire.post(render_envelope(Envelope(body=rpc.GetRPCMethods(), cwmp_ns=ns, id="g")))
    methods = parse_envelope(answer.body).body
    assert isinstance(methods, rpc.GetRPCMethodsResponse)
    assert {"Inform", "TransferComplete"} <= set(methods.methods)
    # Software-module reports are acknowledged, so the CPE does not send them again.
    for du in (rpc.DUStateChangeComplete(command_key="m1"), rpc.AutonomousDUStateChangeComplete()):
        answer = wire.post(render_envelope(Envelope(body=du, cwmp_ns=ns, id="du")))
        assert parse_envelope(answer.body).body == du.RESPONSE()

    # An unknown method gets fault 8000 and the session goes on.
    unknown = envelope("<cwmp:X_Vendor_Hello><Greeting>hi</Greeting></cwmp:X_Vendor_Hello>", ns=ns)
    fault = parse_envelope(wire.post(unknown).body).body
    assert isinstance(fault, rpc.Fault) and fault.code == 8000

    tree = dict(TREE)
    requests = drive_to_end(wire, wire.post(None), ns, tree=tree)
    # Reads first; then acsd sets what it sets on every CPE: here the periodic interval
    # (the CR credential and PeriodicInformEnable paths this CPE lacks are skipped).
    assert isinstance(requests[0], rpc.GetParameterValues)
    [spv] = [r for r in requests if isinstance(r, rpc.SetParameterValues)]
    assert [(p.name, p.value) for p in spv.parameters] == [
        ("Device.ManagementServer.PeriodicInformInterval", "300")
    ]
    assert tree["Device.ManagementServer.PeriodicInformInterval"][0] == "300"
    device = daemon.device_json("PROTO0001")
    assert device["status"]["upTime"] == 4242
    assert device["status"]["lanIp"] == "192.168.7.1"
    assert device["status"]["online"] is True
    assert device["status"]["publicIp"] == "127.0.0.1"


def test_the_204_that_ends_a_session_closes_the_connection(module_daemon):
    # A 204 has no Content-Length; an embedded HTTP client that reads a body until the
    # connection closes waited out the keep-alive timeout (30 s) after the last message,
    # and a CPE whose own timeout is as short took the session for failed and retried.
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-2"
    wire = Wire(daemon.cwmp_url)
    first = wire.post(envelope(inform_body("PROTO0009"), ns=ns))
    assert first.status == 200 and first.headers.get("Connection") != "close"
    drive_to_end(wire, wire.post(None), ns)
    assert wire.last is not None and wire.last.status == 204
    assert wire.last.headers["Connection"] == "close"
    assert wire.conn.sock is None  # the client was told, and let the connection go
    # The router's next session comes on a connection of its own.
    assert wire.post(envelope(inform_body("PROTO0009"), ns=ns)).status == 200
    drive_to_end(wire, wire.post(None), ns)


def test_second_session_asks_once_for_what_the_cpe_lacks(module_daemon):
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-2"
    first_requests = None
    tree = dict(TREE)
    # A model of its own: what routers of one model lack is learned once per daemon
    # (provisioning/absent.py), and the other tests' routers are of the default model.
    inform = envelope(inform_body("PROTO0002", product_class="LacksBox"), ns=ns)
    for _ in range(2):
        wire = Wire(daemon.cwmp_url)
        assert wire.post(inform).status == 200
        requests = drive_to_end(wire, wire.post(None), ns, tree=tree)
        wire.close()
        if first_requests is None:
            first_requests = requests
    # The first session learned which names the CPE lacks (9005); the second sends one GPV.
    assert len(first_requests) > 1
    assert len(requests) == 1


def test_cookieless_cpe_that_reconnects_keeps_its_session(module_daemon):
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-1"
    wire = Wire(daemon.cwmp_url, cookies=False)
    assert wire.post(envelope(inform_body("PROTO0003"), ns=ns)).status == 200
    wire.reconnect()  # new TCP connection, no cookie: found by remote address
    first = wire.post(None, content_length=False)
    drive_to_end(wire, first, ns)
    assert daemon.device_json("PROTO0003")["status"]["upTime"] == 4242


def test_chunked_and_gzip_bodies_are_accepted(module_daemon):
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-2"
    wire = Wire(daemon.cwmp_url)
    body = gzip.compress(envelope(inform_body("PROTO0004"), ns=ns))
    assert wire.post(body, headers={"Content-Encoding": "gzip"}).status == 200
    # An empty chunked body is an empty POST.
    wire.conn.putrequest("POST", "/", skip_accept_encoding=True)
    wire.conn.putheader("Cookie", wire.cookie)
    wire.conn.putheader("Transfer-Encoding", "chunked")
    wire.conn.endheaders()
    wire.conn.send(b"0\r\n\r\n")
    response = wire.conn.getresponse()
    first = Answer(response.status, response.headers, response.read())
    drive_to_end(wire, first, ns)


def test_a_transfer_coding_other_than_chunked_gets_415_naming_it(module_daemon):
    # It reached the parser compressed: "malformed XML" blamed the envelope.
    packed = gzip.compress(envelope(inform_body("PROTO0011"), ns="urn:dslforum-org:cwmp-1-0"))
    wire = Wire(module_daemon.cwmp_url)
    wire.conn.putrequest("POST", "/", skip_accept_encoding=True)
    wire.conn.putheader("Content-Type", "text/xml")
    wire.conn.putheader("Transfer-Encoding", "gzip, chunked")
    wire.conn.endheaders()
    wire.conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(packed), packed))
    response = wire.conn.getresponse()
    body = response.read()
    assert response.status == 415 and b"unsupported Transfer-Encoding 'gzip'" in body, body
    wire.close()


def test_every_compression_cpes_use_is_inflated_and_others_get_415(module_daemon):
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-0"
    inform = envelope(inform_body("PROTO0010"), ns=ns)
    raw = zlib.compressobj(wbits=-15)
    encodings = {
        "x-gzip": gzip.compress(inform),  # older HTTP stacks' name for gzip
        "GZIP": gzip.compress(inform),
        "deflate": zlib.compress(inform),  # zlib framing, as the RFC says
        " Deflate": raw.compress(inform) + raw.flush(),  # raw deflate, as some clients send
        # two gzip members one after the other are one gzip body (RFC 1952)
        "gzip": gzip.compress(inform[:100]) + gzip.compress(inform[100:]),
    }
    for name, body in encodings.items():
        wire = Wire(daemon.cwmp_url)
        answer = wire.post(body, headers={"Content-Encoding": name})
        assert answer.status == 200, (name, answer.text)
        drive_to_end(wire, wire.post(None), ns)
        wire.close()
    # An encoding acsd cannot read gets acsd's own 415, not a parser's 400.
    for name in ("br", "compress", "zstd"):
        status, body = post_once(daemon.cwmp_url, b"\x1b\x00", {"Content-Encoding": name})
        assert status == 415 and b"unsupported Content-Encoding" in body, (name, body)
    # two Content-Encoding lines are one list (RFC 9110): gzip twice, as "gzip, gzip" is,
    # not inflated once and read as if it were the body
    host, port = daemon.cwmp_url.removeprefix("http://").rstrip("/").split(":")
    body = gzip.compress(gzip.compress(inform))
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml\r\n"
            f"Content-Encoding: gzip\r\nContent-Encoding: gzip\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 415") and b"gzip, gzip" in answer, answer[:300]
    status, body = post_once(
        daemon.cwmp_url, gzip.compress(inform)[:-30], {"Content-Encoding": "gzip"}
    )
    assert status == 400 and b"cut short" in body
    # what follows a deflate stream, or a gzip member, is not dropped unread
    for name, body in (
        ("deflate", zlib.compress(inform) + b"trailing"),
        ("gzip", gzip.compress(inform) + b"trailing"),
    ):
        status, answer = post_once(daemon.cwmp_url, body, {"Content-Encoding": name})
        assert status == 400 and b"could not be read" in answer, (name, answer)


def test_a_gzip_body_that_inflates_past_max_body_is_refused(module_daemon):
    # 20 KB on the wire, 20 MB inflated: the limit counts what the body inflates to.
    daemon = module_daemon
    bomb = gzip.compress(b"<" + b" " * (20 * 1024 * 1024))
    assert len(bomb) < 100_000
    wire = Wire(daemon.cwmp_url)
    answer = wire.post(bomb, headers={"Content-Encoding": "gzip"})
    assert answer.status == 413 and b"max_body" in answer.body
    wire.close()
    good = Wire(daemon.cwmp_url)
    assert good.post(envelope(inform_body("PROTO0020"))).status == 200
    drive_to_end(good, good.post(None), "urn:dslforum-org:cwmp-1-0")
    assert daemon.device_json("PROTO0020")["status"]["upTime"] == 4242


def test_inform_without_device_id_is_refused_with_a_soap_fault(daemon):
    wire = Wire(daemon.cwmp_url)
    body = envelope("<cwmp:Inform><Event/><MaxEnvelopes>1</MaxEnvelopes></cwmp:Inform>")
    answer = wire.post(body)
    fault = parse_envelope(answer.body).body
    assert isinstance(fault, rpc.Fault) and fault.code == 8003
    # the daemon's stderr is read by a thread of the test: the line may lag the answer
    wait_for(lambda: "DeviceId" in daemon.log_text())
    assert "[]" in daemon.cli("device", "list", "--json").stdout


def test_request_without_a_session_is_400_and_get_is_405(module_daemon):
    daemon = module_daemon
    wire = Wire(daemon.cwmp_url)
    assert wire.post(None).status == 400
    wire.reconnect()
    ns = "urn:dslforum-org:cwmp-1-0"
    body = render_envelope(Envelope(body=rpc.RebootResponse(), cwmp_ns=ns, id="x"))
    assert wire.post(body).status == 400
    wire.reconnect()
    wire.conn.request("GET", "/")
    assert wire.conn.getresponse().status == 405


def test_cpe_that_vanishes_mid_session_still_gets_its_inform_recorded(daemon_factory):
    daemon = daemon_factory(cwmp={"session_timeout": 3.0})
    ns = "urn:dslforum-org:cwmp-1-0"
    wire = Wire(daemon.cwmp_url)
    assert (
        wire.post(envelope(inform_body("PROTO0005", events=("2 PERIODIC",)), ns=ns)).status == 200
    )
    first = wire.post(None)
    heard = time.time()
    assert first.status == 200  # the ACS asked something; the CPE never answers
    wire.conn.sock.shutdown(socket.SHUT_RDWR)
    wire.close()
    device = wait_for(
        lambda: (
            (r := daemon.cli("device", "show", "PROTO0005", "--json", check=False)).returncode == 0
            and r.stdout
        ),
        timeout=15,
    )
    [timeout] = daemon.events("cwmp.session_timeout")
    # tied to its session's other lines, as every line about a session is
    [inform] = [e for e in daemon.events("session.inform") if e["serial"] == "PROTO0005"]
    assert timeout["session"] == inform["session"]
    # lastComm is when the router last spoke, not when its session timed out.
    last = datetime.fromisoformat(json.loads(device)["status"]["lastComm"].replace("Z", "+00:00"))
    assert abs(last.timestamp() - heard) < 1.5


def test_hold_requests_is_sent_when_configured_and_late_cpe_requests_are_answered(daemon_factory):
    daemon = daemon_factory(cwmp={"hold_requests": True})
    ns = "urn:dslforum-org:cwmp-1-2"
    wire = Wire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body("PROTO0006"), ns=ns)).status == 200
    first = wire.post(None)
    env = parse_envelope(first.body)
    assert isinstance(env.body, rpc.GetParameterValues) and env.hold_requests is True
    # A CPE that ignores HoldRequests still gets its answer; the ACS request stays pending.
    late = wire.post(render_envelope(Envelope(body=rpc.GetRPCMethods(), cwmp_ns=ns, id="l")))
    assert isinstance(parse_envelope(late.body).body, rpc.GetRPCMethodsResponse)
    reply = answer_request(env.body)
    answer = wire.post(render_envelope(Envelope(body=reply, cwmp_ns=ns, id=env.id)))
    drive_to_end(wire, answer, ns)
    assert daemon.events("cwmp.request_despite_hold")


def test_a_stale_cookie_never_lands_in_another_routers_session(module_daemon):
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-2"
    other = Wire(daemon.cwmp_url, cookies=False)
    assert other.post(envelope(inform_body("PROTO0007"), ns=ns)).status == 200
    stale = Wire(daemon.cwmp_url)
    stale.cookie = "acsd_session=expired-session-id"
    assert stale.post(None).status == 400
    # The cookieless router's session is untouched and completes.
    drive_to_end(other, other.post(None), ns)
    assert daemon.device_json("PROTO0007")["status"]["upTime"] == 4242


def test_the_session_cookie_is_read_as_aiohttp_reads_it():
    cases = [
        None,
        "",
        "acsd_session=w1.AbC-_9",
        "theme=dark; acsd_session=tok123",
        "acsd_session=tok123; theme=dark",
        'acsd_session="tok123"',
        "  acsd_session = tok123 ",
        "acsd_session=old; acsd_session=new",
        "acsd_session2=nope; xacsd_session=nope",
        "acsd_session=",
        "garbage; =x; acsd_session=tok",
    ]
    for header in cases:
        request = make_mocked_request("POST", "/", headers={"Cookie": header} if header else {})
        assert session_cookie(request) == request.cookies.get(COOKIE), header


_COOKIE_FORMS = {
    # RFC 2965 (and 2109), the cookies TR-069 had CWMP 1.0 and 1.1 CPEs implement, lets a
    # client separate cookies with "," as well as ";"
    "rfc2965": ['$Version="1"; lb="node1"; $Path="/", {own}; $Path="/"'],
    # a Cookie header per cookie, as some embedded HTTP clients write their cookie jar
    "a header each": ["lb=node1", "{own}"],
}


@pytest.mark.parametrize("form", _COOKIE_FORMS)
def test_the_session_cookie_is_found_among_others_however_they_are_joined(module_daemon, form):
    # A load balancer in front of acsd adds a cookie of its own, and a CPE that opens a
    # connection per message sends both back. With another router behind the same NAT in a
    # session, the address finds no one session: the cookie is all there is, and acsd read
    # only the first Cookie header, split at ";" alone. It answered 400 "no open CWMP
    # session" and the router never got past its Inform.
    daemon = module_daemon
    source = "127.0.0.61" if form == "rfc2965" else "127.0.0.62"
    serial = "PROTO0030" if form == "rfc2965" else "PROTO0031"
    neighbour = Wire(daemon.cwmp_url, cookies=False, source=source)
    assert neighbour.post(envelope(inform_body(f"{serial}N"), ns=NS)).status == 200
    router = Wire(daemon.cwmp_url, cookies=False, source=source)
    assert router.post(envelope(inform_body(serial), ns=NS)).status == 200
    assert router.cookie is not None
    headers = [("Cookie", text.format(own=router.cookie)) for text in _COOKIE_FORMS[form]]

    def post(body: bytes | None) -> Answer:
        router.reconnect()
        return router.post(body, headers=headers)

    answer = post(None)
    for _ in range(50):
        if answer.status == 204:
            break
        assert answer.status == 200, answer.text
        env = parse_envelope(answer.body)
        reply = Envelope(body=answer_request(env.body), cwmp_ns=NS, id=env.id)
        answer = post(render_envelope(reply))
    assert answer.status == 204
    assert daemon.device_json(serial)["status"]["upTime"] == 4242
    drive_to_end(neighbour, neighbour.post(None), NS)  # no cookieless session left open


# --- sessions that meet: a proxy's shared connection, a CPE that reboots mid-session ------


def _lan(ip: str) -> dict:
    return {**TREE, "Device.IP.Interface.1.IPv4Address.1.IPAddress": (ip, "xsd:string")}


def test_two_cpes_behind_a_proxy_on_one_connection_keep_their_own_sessions(module_daemon):
    # A reverse proxy with upstream keep-alive sends several CPEs' requests down one TCP
    # connection. B's Inform used to end A's session, and A's next request, cookie and
    # all, then went on in B's session: A was sent B's settings and B's record got A's LAN.
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-2"
    wire = Wire(daemon.cwmp_url, cookies=False)
    cookies = {}
    for serial in ("PROXY000A", "PROXY000B"):
        answer = wire.post(envelope(inform_body(serial), ns=ns))
        assert answer.status == 200
        cookies[serial] = answer.headers["Set-Cookie"].split(";", 1)[0]
    trees = {"PROXY000A": _lan("192.168.10.1"), "PROXY000B": _lan("192.168.20.1")}
    answers = {s: wire.post(None, headers={"Cookie": c}) for s, c in cookies.items()}
    for _ in range(60):  # the two sessions take turns on the one connection
        for serial, answer in answers.items():
            if answer.status == 204:
                continue
            assert answer.status == 200, answer.text
            env = parse_envelope(answer.body)
            reply = render_envelope(
                Envelope(body=answer_request(env.body, trees[serial]), cwmp_ns=ns, id=env.id)
            )
            answers[serial] = wire.post(reply, headers={"Cookie": cookies[serial]})
    assert {a.status for a in answers.values()} == {204}
    assert daemon.device_json("PROXY000A")["status"]["lanIp"] == "192.168.10.1"
    assert daemon.device_json("PROXY000B")["status"]["lanIp"] == "192.168.20.1"


def test_a_cpe_that_reboots_mid_session_is_not_overwritten_by_its_old_session(daemon_factory):
    daemon = daemon_factory(cwmp={"session_timeout": 1})
    ns = "urn:dslforum-org:cwmp-1-2"
    old = Wire(daemon.cwmp_url)
    assert old.post(envelope(inform_body("REBOOT001"), ns=ns)).status == 200
    gpv = old.post(None)
    assert gpv.status == 200  # the CPE reboots instead of answering
    old.close()

    new = Wire(daemon.cwmp_url)
    assert new.post(envelope(inform_body("REBOOT001"), ns=ns)).status == 200
    drive_to_end(new, new.post(None), ns, tree=_lan("192.168.30.1"))
    # The old session ended at the new Inform, not at its timeout after the new one's commit.
    ended = [e for e in daemon.events("session.end") if e.get("serial") == "REBOOT001"]
    assert ended and ended[0]["reason"] == "CPE started a new session"
    time.sleep(2.5)  # past session_timeout: nothing left to time out and commit
    assert daemon.events("cwmp.session_timeout") == []
    assert daemon.device_json("REBOOT001")["status"]["lanIp"] == "192.168.30.1"


def test_a_cookieless_cpe_that_retries_after_a_reboot_completes(module_daemon):
    # A new connection for every request and no cookies: acsd finds the session by address,
    # which was ambiguous while the session the CPE abandoned by rebooting stayed open.
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-2"
    wire = Wire(daemon.cwmp_url, cookies=False)

    def post(body: bytes | None) -> Answer:
        wire.reconnect()
        return wire.post(body)

    assert post(envelope(inform_body("NOCOOKIE1"), ns=ns)).status == 200
    assert post(None).status == 200  # a GetParameterValues the rebooting CPE never answers
    assert post(envelope(inform_body("NOCOOKIE1"), ns=ns)).status == 200
    answer = post(None)
    for _ in range(60):
        if answer.status == 204:
            break
        assert answer.status == 200, answer.text
        env = parse_envelope(answer.body)
        reply = Envelope(body=answer_request(env.body, _lan("192.168.40.1")), cwmp_ns=ns, id=env.id)
        answer = post(render_envelope(reply))
    assert answer.status == 204
    assert daemon.device_json("NOCOOKIE1")["status"]["lanIp"] == "192.168.40.1"


def test_a_broken_envelope_mid_session_gets_its_fault_in_the_sessions_namespace(module_daemon):
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-0"
    wire = Wire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body("BROKENNS1"), ns=ns)).status == 200
    two_bodies = envelope("<cwmp:GetRPCMethods/>", ns=ns).replace(
        b"</SOAP-ENV:Envelope>", b"<SOAP-ENV:Body/></SOAP-ENV:Envelope>"
    )
    answer = wire.post(two_bodies)
    fault = parse_envelope(answer.body)
    assert isinstance(fault.body, rpc.Fault) and "more than one SOAP Body" in fault.body.string
    assert fault.cwmp_ns == ns


def test_a_body_whose_charset_only_the_http_header_names_is_read_in_it(module_daemon):
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-0"
    # No XML declaration: only the header says Latin-1.
    latin = "<Manufacturer>Société</Manufacturer>".encode("latin-1")
    body = envelope(inform_body("PROTO0011"), ns=ns).split(b"?>", 1)[1]
    body = body.replace(b"<Manufacturer>Test</Manufacturer>", latin)
    wire = Wire(daemon.cwmp_url)
    answer = wire.post(body, headers={"Content-Type": "text/xml; charset=ISO-8859-1"})
    assert answer.status == 200, answer.text
    drive_to_end(wire, wire.post(None), ns)
    # A body that declares its own encoding is read in that, whatever the header says.
    declared = envelope(inform_body("PROTO0012"), ns=ns).replace(
        b"Test</Manufacturer>", "Société</Manufacturer>".encode()
    )
    assert declared.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    wire = Wire(daemon.cwmp_url)
    answer = wire.post(declared, headers={"Content-Type": "text/xml; charset=ISO-8859-1"})
    assert answer.status == 200, answer.text
    drive_to_end(wire, wire.post(None), ns)
    # So is a UTF-8 body that starts with a byte order mark (RFC 7303: the mark wins).
    marked = b"\xef\xbb\xbf" + body.replace(b"PROTO0011", b"PROTO0013").replace(
        latin, "<Manufacturer>Société</Manufacturer>".encode()
    )
    wire = Wire(daemon.cwmp_url)
    answer = wire.post(marked, headers={"Content-Type": "text/xml; charset=ISO-8859-1"})
    assert answer.status == 200, answer.text
    drive_to_end(wire, wire.post(None), ns)
    shown = daemon.device_json("PROTO0013")
    assert "Société" in json.dumps(shown, ensure_ascii=False), shown


@pytest.mark.parametrize(
    ("serial", "charset"), [("PROTO0014", "undefined"), ("PROTO0015", "unicode_escape")]
)
def test_a_header_charset_that_cannot_make_utf8_leaves_the_body_as_sent(
    module_daemon, serial, charset
):
    # "undefined" fails every decode with a plain UnicodeError; unicode_escape decodes the
    # text \ud800 to a lone surrogate, which UTF-8 cannot encode: both were a 500
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-0"
    body = envelope(inform_body(serial), ns=ns).split(b"?>", 1)[1]
    body = body.replace(
        b"<Manufacturer>Test</Manufacturer>", b"<Manufacturer>T\\ud800</Manufacturer>"
    )
    wire = Wire(daemon.cwmp_url)
    answer = wire.post(body, headers={"Content-Type": f"text/xml; charset={charset}"})
    assert answer.status == 200, answer.text
    drive_to_end(wire, wire.post(None), ns)


def test_a_utf16_body_without_a_byte_order_mark_is_read_big_endian(module_daemon):
    """``charset=utf-16`` and no byte order mark: the order is read off the first
    character, which XML makes ASCII (XML 1.0 Appendix F), so a big-endian (MIPS,
    PowerPC) router and a little-endian one are both understood. The big-endian body was
    read in the ACS host's byte order, little-endian on x86: 400 "malformed XML" at every
    session. A body that says UTF-16LE is read so."""
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-0"
    text = envelope(inform_body("PROTO0016"), ns=ns).split(b"?>", 1)[1].lstrip().decode()
    for serial, encoding, charset in (
        ("PROTO0016", "utf-16-be", "utf-16"),
        ("PROTO0017", "utf-16-le", "UTF-16LE"),
        ("PROTO0018", "utf-16-le", "utf-16"),
        ("PROTO0019", "utf-16-be", "UTF16"),
    ):
        wire = Wire(daemon.cwmp_url)
        body = text.replace("PROTO0016", serial).encode(encoding)
        answer = wire.post(body, headers={"Content-Type": f"text/xml; charset={charset}"})
        assert answer.status == 200, answer.text
        drive_to_end(wire, wire.post(None), ns)
        assert daemon.device_json(serial)["status"]["upTime"] == 4242


def test_an_inform_without_parameters_is_read_under_its_vendors_root(module_daemon):
    # No parameter says TR-098 or TR-181; the Huawei profiles, all TR-098, do.
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-0"
    body = inform_body("HWNOPARAM1", oui="00E0FC", product_class="HG8245H")
    body = body.replace("<Manufacturer>Test</Manufacturer>", "<Manufacturer>Huawei</Manufacturer>")
    start = body.index("<ParameterList")
    body = body[:start] + "<ParameterList/></cwmp:Inform>"
    wire = Wire(daemon.cwmp_url)
    assert wire.post(envelope(body, ns=ns)).status == 200
    first = parse_envelope(wire.post(None).body).body
    assert isinstance(first, rpc.GetParameterValues)
    assert all(name.startswith("InternetGatewayDevice.") for name in first.names), first.names


def test_a_router_sending_latin1_bytes_in_a_utf8_answer_is_still_read(module_daemon):
    # A model name (or SSID) in Latin-1 inside a UTF-8 envelope: acsd used to answer 400 and
    # leave the router unread, at every session.
    daemon = module_daemon

    class Latin1Wire(Wire):
        def post(self, body, headers=None):  # type: ignore[override]
            if body:
                body = body.replace(b"BOITE", b"Bo\xeete")  # "Boîte" in Latin-1
            return super().post(body, headers=headers)

    ns = "urn:dslforum-org:cwmp-1-0"
    tree = {**TREE, "Device.DeviceInfo.ModelName": ("BOITE", "xsd:string")}
    wire = Latin1Wire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body("PROTO0021"), ns=ns)).status == 200
    seen = drive_to_end(wire, wire.post(None), ns, tree=tree)
    assert any(isinstance(r, rpc.GetParameterValues) for r in seen)
    status = daemon.device_json("PROTO0021")["status"]
    assert status["lanIp"] == "192.168.7.1", status
    assert [e for e in daemon.events("cwmp.bad_utf8") if e.get("serial") == "PROTO0021"]


def test_a_router_sending_control_characters_is_still_read(module_daemon):
    # A model name with a control character, raw in the Inform and as a character
    # reference in the answer: XML 1.0 carries neither, and acsd used to answer 400 and
    # leave the router unrecorded, at every session.
    daemon = module_daemon

    class ControlWire(Wire):
        def post(self, body, headers=None):  # type: ignore[override]
            if body and b"<cwmp:Inform>" in body:
                body = body.replace(b"1.0.0", b"1.0\x02")
            elif body:
                body = body.replace(b"BOX", b"B&#x1;X")
            return super().post(body, headers=headers)

    ns = "urn:dslforum-org:cwmp-1-2"
    tree = {**TREE, "Device.DeviceInfo.ModelName": ("BOX", "xsd:string")}
    wire = ControlWire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body("PROTO0022"), ns=ns)).status == 200
    drive_to_end(wire, wire.post(None), ns, tree=tree)
    device = daemon.device_json("PROTO0022")
    assert device["status"]["lanIp"] == "192.168.7.1", device
    assert device["cpe"]["softwareVersion"] == "1.0\ufffd"
    repaired = [e for e in daemon.events("cwmp.bad_xml_chars") if e.get("serial") == "PROTO0022"]
    assert len(repaired) >= 2


def test_a_router_that_leaves_ampersands_unescaped_is_read(module_daemon):
    # Its SOAP stack writes values as they are: "R&D" in the Inform, "AT&T" in the answer.
    # acsd answered 400 and left the router unrecorded, at every session.
    daemon = module_daemon

    class RawWire(Wire):
        def post(self, body, headers=None):  # type: ignore[override]
            if body:
                body = body.replace(b"1.0.0", b"1.0 R&D").replace(b"BOX", b"AT&T Box")
            return super().post(body, headers=headers)

    ns = "urn:dslforum-org:cwmp-1-2"
    tree = {**TREE, "Device.DeviceInfo.ModelName": ("BOX", "xsd:string")}
    wire = RawWire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body("PROTO0024"), ns=ns)).status == 200
    drive_to_end(wire, wire.post(None), ns, tree=tree)
    device = daemon.device_json("PROTO0024")
    assert device["status"]["lanIp"] == "192.168.7.1", device
    assert device["cpe"]["softwareVersion"] == "1.0 R&D"
    assert device["cpe"]["modelName"] == "AT&T Box"


def test_a_router_whose_messages_begin_with_a_line_break_is_read(module_daemon):
    # Its message template starts with a line break before the XML declaration, which XML
    # forbids: acsd answered 400 to its Inform, at every session (GenieACS takes it).
    daemon = module_daemon

    class LineBreakWire(Wire):
        def post(self, body, headers=None):  # type: ignore[override]
            return super().post(b"\r\n" + body if body else body, headers=headers)

    ns = "urn:dslforum-org:cwmp-1-2"
    wire = LineBreakWire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body("PROTO0023"), ns=ns)).status == 200
    drive_to_end(wire, wire.post(None), ns)
    assert daemon.device_json("PROTO0023")["status"]["lanIp"] == "192.168.7.1"


def test_the_cpes_id_is_echoed_as_it_sent_it(module_daemon):
    # A pretty-printing CPE's ID holds line breaks and spaces; the one that matches the
    # echo against its own text needs them back (xsd:string: they are part of it).
    daemon = module_daemon
    for n, sent in enumerate(["\n    4a1e2c\n  ", " id 7 "]):
        wire = Wire(daemon.cwmp_url)
        first = wire.post(envelope(inform_body(f"IDECHO{n:02d}"), cwmp_id=sent))
        assert first.status == 200, first.text
        env = parse_envelope(first.body)
        assert env.id == sent
        drive_to_end(wire, wire.post(None), "urn:dslforum-org:cwmp-1-0")
        wire.close()


def test_a_cwmp_14_cpe_is_told_which_version_the_session_uses(module_daemon):
    """A CPE that lists its versions (SupportedCWMPVersions, CWMP 1.4) gets UseCWMPVersion
    in the InformResponse: the highest it lists that the Inform's namespace allows. One that
    lists none gets no such header (it must understand every header it is sent)."""
    daemon = module_daemon
    cases = [
        ("urn:dslforum-org:cwmp-1-2", "1.0,1.1,1.2,1.3,1.4", "1.4"),
        ("urn:dslforum-org:cwmp-1-2", " 1.2 , 1.3 ", "1.3"),
        ("urn:dslforum-org:cwmp-1-0", "1.0,1.4", "1.0"),
        ("urn:dslforum-org:cwmp-1-2", "2.0", None),
        ("urn:dslforum-org:cwmp-1-2", None, None),
    ]
    for n, (ns, supported, expected) in enumerate(cases):
        body = envelope(inform_body(f"VERS{n:04d}"), ns=ns)
        if supported is not None:
            header = f"<cwmp:SupportedCWMPVersions>{supported}</cwmp:SupportedCWMPVersions>"
            body = body.replace(b"</SOAP-ENV:Header>", header.encode() + b"</SOAP-ENV:Header>")
        wire = Wire(daemon.cwmp_url)
        first = wire.post(body)
        assert first.status == 200, first.text
        env = parse_envelope(first.body)
        assert env.body == rpc.InformResponse(max_envelopes=1) and env.cwmp_ns == ns
        assert env.use_version == expected, (supported, first.text)
        if expected is not None:
            assert f':mustUnderstand="1">{expected}</cwmp:UseCWMPVersion>' in first.text
        drive_to_end(wire, wire.post(None), ns)
        wire.close()


def test_a_template_written_cpe_with_a_c_strings_nul_completes(module_daemon):
    # Firmware that fills string templates: no xmlns for xsi: and SOAP-ENC:, the C string's
    # terminating NUL sent along (an empty POST is then one NUL byte), every body labelled
    # text/html by its embedded HTTP stack.
    daemon = module_daemon
    ns = "urn:dslforum-org:cwmp-1-0"
    undeclared = (
        b' xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/"',
        b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
    )

    def sloppy(body: bytes) -> bytes:
        for declaration in undeclared:
            body = body.replace(declaration, b"")
        return body + b"\x00"

    html = {"Content-Type": "text/html"}
    wire = Wire(daemon.cwmp_url)
    inform = sloppy(envelope(inform_body("TEMPLATE1"), ns=ns))
    assert b"xmlns:xsi" not in inform and b"xsi:type" in inform
    assert wire.post(inform, headers=html).status == 200
    answer = wire.post(b"\x00", headers=html)
    for _ in range(50):
        if answer.status == 204:
            break
        assert answer.status == 200, answer.text
        env = parse_envelope(answer.body)
        reply = render_envelope(Envelope(body=answer_request(env.body), cwmp_ns=ns, id=env.id))
        answer = wire.post(sloppy(reply), headers=html)
    assert answer.status == 204
    assert daemon.device_json("TEMPLATE1")["status"]["upTime"] == 4242


_DECLARATION_ONLY = {
    "declaration": b'<?xml version="1.0" encoding="UTF-8"?>',
    "declaration and line break": b"<?xml version='1.0'?>\r\n",
    "byte order mark": b"\xef\xbb\xbf",
    "both and a nul": b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n\x00',
}


@pytest.mark.parametrize("empty", _DECLARATION_ONLY)
def test_an_empty_post_of_a_bare_xml_declaration_is_the_empty_post(module_daemon, empty):
    # Firmware that writes every message through one function putting the XML declaration
    # (or a byte order mark) first sends its empty POST as that and nothing else. acsd
    # answered 400 "malformed XML" and ended the session: the router reported in, but was
    # never read nor configured, at every session.
    daemon = module_daemon
    serial = f"DECLONLY{list(_DECLARATION_ONLY).index(empty)}"
    wire = Wire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body(serial), ns=NS)).status == 200
    requests = drive_to_end(wire, wire.post(_DECLARATION_ONLY[empty]), NS)
    assert isinstance(requests[0], rpc.GetParameterValues)
    assert daemon.device_json(serial)["status"]["upTime"] == 4242


def test_a_serial_number_reported_under_another_oui_is_logged(module_daemon):
    # acsd keys a record by serial number; TR-069 makes one unique per OUI only. Another
    # maker's router with the same serial (a firmware default) must not go unnoticed.
    daemon = module_daemon

    def session(oui: str) -> None:
        wire = Wire(daemon.cwmp_url)
        answer = wire.post(envelope(inform_body("OUICHG01", oui=oui), ns=NS))
        assert answer.status == 200, answer.text
        finish(wire)

    def changed() -> list[dict]:
        return [e for e in daemon.events("session.oui_changed") if e.get("serial") == "OUICHG01"]

    session("00D09E")
    session("00D09E")
    assert changed() == []
    session("A0B1C2")
    [logged] = wait_for(changed)
    assert logged["level"] == "warning"
    assert (logged["serial"], logged["before"], logged["after"]) == ("OUICHG01", "00D09E", "A0B1C2")
    assert logged["device"] == daemon.device_json("OUICHG01")["_id"]


def test_a_change_answered_with_an_empty_status_counts_as_applied(module_daemon):
    # Many CPEs leave Status empty in SetParameterValuesResponse; acsd answered 8003 and
    # ended the session, so the change the router had made was recorded as failed.
    daemon = module_daemon
    wire = Wire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body("EMPTYST01"), ns=NS)).status == 200
    raw = {
        rpc.SetParameterValues: (
            "<cwmp:SetParameterValuesResponse><Status/></cwmp:SetParameterValuesResponse>"
        )
    }
    requests = drive_answering_raw(wire, NS, raw)
    assert any(isinstance(r, rpc.SetParameterValues) for r in requests)


_MISNAMED = ["GetParameterValueResponse", "X_00D09E_GetParameterValuesResponse"]


@pytest.mark.parametrize("misnamed", _MISNAMED)
def test_a_misnamed_answer_is_taken_as_a_wrong_answer_not_a_request(module_daemon, misnamed):
    # acsd took an unknown "...Response" for a request of the CPE's and answered 8000; the
    # CPE waits for the ACS's next request, acsd for its answer, until the session timed out.
    daemon = module_daemon
    wire = Wire(daemon.cwmp_url)
    serial = f"MISNAMED{_MISNAMED.index(misnamed) + 1}"
    assert wire.post(envelope(inform_body(serial), ns=NS)).status == 200
    raw = {rpc.GetParameterValues: f"<cwmp:{misnamed}><ParameterList/></cwmp:{misnamed}>"}
    requests = drive_answering_raw(wire, NS, raw)
    assert isinstance(requests[0], rpc.GetParameterValues)


@pytest.mark.parametrize("empty", ["", "\n  "], ids=["self-closed", "white-space"])
def test_an_envelope_with_an_empty_body_is_taken_for_the_empty_post(module_daemon, empty):
    # TR-069's empty message is a POST without a body; some CPEs send an envelope whose
    # Body holds nothing instead. acsd answered fault 8003 and ended the session, so the
    # CPE could never be given its configuration.
    daemon = module_daemon
    serial = "EMPTYENV2" if empty else "EMPTYENV1"
    wire = Wire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body(serial), ns=NS)).status == 200
    body = envelope(empty, ns=NS, cwmp_id=None)
    if not empty:
        body = body.replace(b"<SOAP-ENV:Body></SOAP-ENV:Body>", b"<SOAP-ENV:Body/>")
    requests = drive_to_end(wire, wire.post(body), NS)
    assert isinstance(requests[0], rpc.GetParameterValues)
    assert daemon.device_json(serial)["status"]["lanIp"] == "192.168.7.1"


_HEADER_ONLY = {
    "no-more-requests": "<SOAP-ENV:Header><cwmp:NoMoreRequests>1</cwmp:NoMoreRequests>"
    "</SOAP-ENV:Header>",
    "hold-requests": '<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">9</cwmp:ID>'
    '<cwmp:HoldRequests SOAP-ENV:mustUnderstand="1">0</cwmp:HoldRequests></SOAP-ENV:Header>',
    "empty-header": "<SOAP-ENV:Header/>",
    "nothing": "",
}


def _bodyless(inner: str) -> bytes:
    return (
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:cwmp="{NS}">{inner}</SOAP-ENV:Envelope>'
    ).encode()


@pytest.mark.parametrize("header", list(_HEADER_ONLY))
def test_an_envelope_without_a_body_is_taken_for_the_empty_post(module_daemon, header):
    # Some CPEs send their NoMoreRequests/HoldRequests header in an envelope with no Body
    # where TR-069 has the empty POST: acsd answered fault 8003 and the session never got on.
    daemon = module_daemon
    serial = "NOBODY" + header[:4].upper().replace("-", "")
    wire = Wire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body(serial), ns=NS)).status == 200
    requests = drive_to_end(wire, wire.post(_bodyless(_HEADER_ONLY[header])), NS)
    assert isinstance(requests[0], rpc.GetParameterValues)
    assert daemon.device_json(serial)["status"]["lanIp"] == "192.168.7.1"


def test_an_envelope_without_a_body_but_with_something_else_is_still_refused(module_daemon):
    # Only a Header (or nothing) stands for the empty POST: an RPC outside the Body is a
    # broken message, answered with fault 8003 as before, and not the end of the requests.
    daemon = module_daemon
    wire = Wire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body("NOBODYBAD1"), ns=NS)).status == 200
    answer = wire.post(_bodyless("<SOAP-ENV:Header/><cwmp:GetRPCMethods/>"))
    assert answer.status == 200
    fault = parse_envelope(answer.body).body
    assert isinstance(fault, rpc.Fault) and fault.code == 8003
    assert "no SOAP Body" in fault.string


_UNSUPPORTED_HEADER = (
    '<SOAP-ENV:Header><c:ID xmlns:c="urn:dslforum-org:cwmp-9-9" SOAP-ENV:mustUnderstand="1">'
    "9</c:ID></SOAP-ENV:Header>"
)


@pytest.mark.parametrize(
    "body",
    ["", "<SOAP-ENV:Body/>", "<SOAP-ENV:Body>\n</SOAP-ENV:Body>"],
    ids=["no-body", "empty-body", "white-space-body"],
)
def test_an_empty_message_in_an_unsupported_cwmp_version_is_refused(module_daemon, body):
    # A Header in a CWMP version acsd does not speak is refused as in any other message
    # (400, the session ends), with or without an empty Body after it: the empty Body
    # was taken for the empty POST unchecked, and the session went on in cwmp-1-0.
    wire = Wire(module_daemon.cwmp_url)
    serial = f"EMPTYNS{len(body)}"
    assert wire.post(envelope(inform_body(serial), ns=NS)).status == 200
    answer = wire.post(_bodyless(_UNSUPPORTED_HEADER + body))
    assert answer.status == 400, answer.text
    assert "unsupported CWMP namespace 'urn:dslforum-org:cwmp-9-9'" in answer.text


def test_a_content_type_with_a_comma_before_its_charset_is_read(module_daemon):
    # "text/xml, charset=utf-8" (a comma for the semicolon) was answered 415 at every
    # session. The charset after the comma counts: this UTF-16 body has no byte order mark.
    daemon = module_daemon
    wire = Wire(daemon.cwmp_url)
    answer = wire.post(
        envelope(inform_body("COMMACT01"), ns=NS),
        headers={"Content-Type": "text/xml, charset=utf-8"},
    )
    assert answer.status == 200, answer.text
    drive_to_end(wire, wire.post(None), NS)
    text = envelope(inform_body("COMMACT02"), ns=NS).split(b"?>", 1)[1].lstrip().decode()
    wire = Wire(daemon.cwmp_url)
    answer = wire.post(
        text.encode("utf-16-be"), headers={"Content-Type": 'text/xml,charset="UTF-16"'}
    )
    assert answer.status == 200, answer.text
    drive_to_end(wire, wire.post(None), NS)
    assert daemon.device_json("COMMACT02")["status"]["lanIp"] == "192.168.7.1"


# What a router with wifi holds, for sessions that set something on it and read it back.
WIFI_TREE = MappingProxyType(
    {
        **TREE,
        "Device.WiFi.Radio.1.Enable": ("true", "xsd:boolean"),
        "Device.WiFi.SSID.1.Enable": ("true", "xsd:boolean"),
        "Device.WiFi.SSID.1.SSID": ("Factory", "xsd:string"),
        "Device.WiFi.AccessPoint.1.Enable": ("true", "xsd:boolean"),
        "Device.WiFi.AccessPoint.1.Security.ModeEnabled": ("None", "xsd:string"),
        "Device.WiFi.AccessPoint.1.Security.KeyPassphrase": ("", "xsd:string"),
        "Device.WiFi.AccessPoint.1.Security.MFPConfig": ("Disabled", "xsd:string"),
        "Device.ManagementServer.ConnectionRequestUsername": ("", "xsd:string"),
        "Device.ManagementServer.ConnectionRequestPassword": ("", "xsd:string"),
        "Device.ManagementServer.PeriodicInformEnable": ("false", "xsd:boolean"),
    }
)
_VALUE = re.compile(rb"(<Value[^>]*>)([^<]*)(</Value>)")


def _indented(body: bytes) -> bytes:
    """``body`` as a pretty-printing SOAP stack writes it: each value on a line of its own."""
    return _VALUE.sub(rb"\1\n            \2\n          \3", body)


def test_values_indented_by_pretty_printing_firmware_are_not_set_again(module_daemon):
    # Firmware that pretty-prints its SOAP puts every value on a line of its own. acsd
    # took the indentation for part of the SSID, the security mode and its Connection
    # Request username, wrote them again at every session (the wifi restarting each
    # time), and after five writes put the job in FAILED: "the CPE holds '\n  Pretty
    # Net\n  ' after 5 writes".
    daemon = module_daemon
    serial = "PRETTYV01"
    wifi = {"enabled": True, "ssid": "Pretty Net", "password": "pretty-secret"}
    daemon.apply({"serialNumber": serial, "wifi": wifi})
    tree = dict(WIFI_TREE)

    def session(event: str) -> list[str]:
        wire = Wire(daemon.cwmp_url)
        answer = wire.post(envelope(inform_body(serial, events=(event,)), ns=NS))
        assert answer.status == 200, answer.text
        answer = wire.post(None)
        methods = []
        for _ in range(50):
            if answer.status == 204:
                return methods
            assert answer.status == 200, answer.text
            env = parse_envelope(answer.body)
            methods.append(env.body.METHOD)
            reply = Envelope(body=answer_request(env.body, tree), cwmp_ns=NS, id=env.id)
            answer = wire.post(_indented(render_envelope(reply)))
        raise AssertionError("session did not end")

    assert "SetParameterValues" in session("1 BOOT")
    assert tree["Device.WiFi.SSID.1.SSID"][0] == "Pretty Net"
    for _ in range(2):
        assert "SetParameterValues" not in session("2 PERIODIC")
    device = daemon.device_json(serial)
    assert device["state"] == "ACTIVE"
    assert device["job"]["faults"] == []


def test_content_encoding_lines_are_one_list_without_empty_or_identity_elements():
    from multidict import CIMultiDict

    from acsd.inflate import InflateError, content_encoding

    def coding(*lines: str) -> str:
        return content_encoding(CIMultiDict(("Content-Encoding", line) for line in lines))

    # empty elements and identity code nothing (RFC 9110): twice is still nothing
    assert coding("identity", "identity") == coding("", "") == coding(" , ") == ""
    assert coding("gzip", "identity") == coding("gzip, ") == "gzip"
    with pytest.raises(InflateError):
        coding("gzip", "gzip")  # twice compressed: refused, not inflated once


def test_neither_listener_names_its_versions(module_daemon):
    # aiohttp answers "Server: Python/3.11 aiohttp/3.x", versions a scanner matches against
    # advisories (the Connection Request client keeps them to itself already)
    import urllib.request

    wire = Wire(module_daemon.cwmp_url)
    try:
        answer = wire.post(envelope(inform_body("SERVERHDR1")))
        assert answer.headers["Server"] == "acsd"
    finally:
        wire.close()
    with urllib.request.urlopen(module_daemon.api_url + "healthz", timeout=10) as answer:
        assert answer.headers["Server"] == "acsd"
    # nor does aiohttp's own answer to a request it cannot parse, before any handler
    for url in (module_daemon.cwmp_url, module_daemon.api_url):
        host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
            head = sock.recv(4096).split(b"\r\n\r\n")[0].decode("latin-1")
        assert head.split("\r\n")[0].endswith(" 400 Bad Request"), head
        assert (
            "\r\nServer: acsd\r\n" in head + "\r\n"
            and "aiohttp" not in head
            and "Python" not in head
        )
