"""Whole CWMP sessions of a simulated router against a tiny fake ACS on 127.0.0.1, the wire
quirks as the ACS sees them, and the hand-written HTTP client's edge cases."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from acsd.cwmp import rpc
from acsd.cwmp.soap import Envelope, parse_envelope, render_envelope
from acsd.sim import Simulation, parse_quirks
from acsd.sim.cpe import Cpe
from acsd.sim.http import HttpClient, HttpError
from acsd.sim.quirks import ALL_QUIRKS, QUIRKS
from acsd.sim.session import run_session
from acsd.sim.template import load_template

Script = Callable[[rpc.Inform], list[rpc.Message]]


def gpv_script(inform: rpc.Inform) -> list[rpc.Message]:
    root = inform.parameters[0].name.split(".")[0] + "."
    return [
        rpc.GetParameterValues([root + "DeviceInfo.SoftwareVersion", root + "DeviceInfo.UpTime"])
    ]


@dataclass
class Seen:
    headers: dict[str, str]
    body: bytes
    envelope: Envelope | None


@dataclass
class _Session:
    ns: str
    queue: list[rpc.Message]


@dataclass
class FakeAcs:
    """InformResponse (with a session cookie), TransferCompleteResponse, then the script's
    requests one by one after the empty POST, then 204. Records everything it receives."""

    script: Script = gpv_script
    answer_ns: str | None = None  # answer in this namespace instead of the CPE's
    seen: list[Seen] = field(default_factory=list)
    informs: list[rpc.Inform] = field(default_factory=list)
    answers: list[rpc.Message] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._sessions: dict[object, _Session] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    async def start(self) -> FakeAcs:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/acs"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _reply(self, message: rpc.Message, ns: str, cwmp_id: str | None) -> web.Response:
        body = render_envelope(Envelope(message, cwmp_ns=self.answer_ns or ns, id=cwmp_id))
        return web.Response(body=body, content_type="text/xml", charset="utf-8")

    def _next(self, session: _Session) -> web.Response:
        if not session.queue:
            return web.Response(status=204)
        return self._reply(session.queue.pop(0), session.ns, f"acs-{next(self._ids)}")

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        envelope = parse_envelope(body) if body.strip() else None
        self.seen.append(Seen(dict(request.headers), body, envelope))
        # the simulator keeps one TCP connection per session: key on it, cookies or not
        key = request.transport.get_extra_info("peername") if request.transport else None
        if envelope is None:
            return self._next(self._sessions[key])
        message = envelope.body
        if isinstance(message, rpc.Inform):
            self.informs.append(message)
            self._sessions[key] = _Session(envelope.cwmp_ns, list(self.script(message)))
            response = self._reply(rpc.InformResponse(1), envelope.cwmp_ns, envelope.id)
            response.set_cookie("acs-session", f"s{len(self.informs)}")
            return response
        if isinstance(message, rpc.TransferComplete):
            self.answers.append(message)
            return self._reply(rpc.TransferCompleteResponse(), envelope.cwmp_ns, envelope.id)
        self.answers.append(message)
        return self._next(self._sessions[key])


@pytest.fixture
async def acs():
    server = await FakeAcs().start()
    yield server
    await server.stop()


def router(profile: str = "tr181-mobile", index: int = 1) -> Cpe:
    return Cpe(load_template(profile), index, f"H{index:06d}", acs_url="", cr_url="")


def ids(body: bytes) -> list[str]:
    return re.findall(rb"<cwmp:ID[^>]*>([^<]*)</cwmp:ID>", body)


# --- whole sessions -------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["tr181-mobile", "tr098-dsl", "tplink-tr181"])
async def test_a_whole_session_ends_with_204(acs: FakeAcs, profile: str) -> None:
    cpe = router(profile)
    result = await run_session(cpe, acs.url)
    assert result.ok, result.reason
    assert result.events == ["0 BOOTSTRAP", "1 BOOT"]
    assert len(acs.seen) == 3  # Inform, empty POST, GetParameterValuesResponse
    [answer] = acs.answers
    assert isinstance(answer, rpc.GetParameterValuesResponse)
    assert [p.name.split(".", 1)[1] for p in answer.parameters] == [
        "DeviceInfo.SoftwareVersion",
        "DeviceInfo.UpTime",
    ]
    assert answer.parameters[1].type == "xsd:unsignedInt"
    assert cpe.bootstrapped and not cpe.in_session


async def test_default_wire_format(acs: FakeAcs) -> None:
    result = await run_session(router(), acs.url)
    assert result.ok
    inform, empty, response = acs.seen
    assert inform.body.startswith(b"<soap-env:Envelope")
    assert b"urn:dslforum-org:cwmp-1-2" in inform.body
    assert inform.headers["Content-Type"].startswith("text/xml")
    assert "Cookie" not in inform.headers
    assert empty.body == b"" and empty.headers["Content-Length"] == "0"
    assert empty.headers["Cookie"] == "acs-session=s1"  # the ACS's cookie comes back
    assert response.headers["Cookie"] == "acs-session=s1"
    assert b'xsi:type="xsd:string"' in response.body
    assert ids(response.body) == [b"acs-1"]  # the ACS's ID is echoed
    assert ids(inform.body) != [b"1"]


async def test_quirk_no_cookies(acs: FakeAcs) -> None:
    result = await run_session(router(), acs.url, quirks=parse_quirks("no-cookies"))
    assert result.ok, result.reason
    assert all("Cookie" not in s.headers for s in acs.seen)


async def test_quirk_cwmp_1_0(acs: FakeAcs) -> None:
    result = await run_session(router(), acs.url, quirks=parse_quirks("cwmp-1-0"))
    assert result.ok, result.reason
    assert all(s.envelope.cwmp_ns == "urn:dslforum-org:cwmp-1-0" for s in acs.seen if s.envelope)
    assert b"cwmp-1-2" not in b"".join(s.body for s in acs.seen)


async def test_quirk_cwmp_1_0_fails_when_the_acs_answers_in_another_namespace() -> None:
    acs = await FakeAcs(answer_ns="urn:dslforum-org:cwmp-1-2").start()
    try:
        result = await run_session(router(), acs.url, quirks=parse_quirks("cwmp-1-0"))
    finally:
        await acs.stop()
    assert not result.ok
    assert "cwmp-1-2" in result.reason


@pytest.mark.parametrize(
    ("quirk", "prefix"), [("prefix-soap", b"soap"), ("prefix-SOAP-ENV", b"SOAP-ENV")]
)
async def test_quirk_envelope_prefix(acs: FakeAcs, quirk: str, prefix: str) -> None:
    result = await run_session(router(), acs.url, quirks=parse_quirks(quirk))
    assert result.ok, result.reason
    for seen in acs.seen:
        if seen.body:
            assert seen.body.startswith(b"<" + prefix + b":Envelope xmlns:" + prefix + b"=")
            assert b"</" + prefix + b":Body>" in seen.body


async def test_quirk_untyped_values(acs: FakeAcs) -> None:
    result = await run_session(router(), acs.url, quirks=parse_quirks("untyped-values"))
    assert result.ok, result.reason
    response = acs.seen[2]
    assert b"<Value>" in response.body and b"xsi:type" not in response.body
    assert acs.answers[0].parameters[0].type is None


async def test_quirk_reused_id(acs: FakeAcs) -> None:
    result = await run_session(router(), acs.url, quirks=parse_quirks("reused-id"))
    assert result.ok, result.reason
    inform, _, response = acs.seen
    assert ids(inform.body) == [b"1"]
    assert ids(response.body) == [b"1"]  # not the ACS's "acs-1"


async def test_quirk_empty_post_no_length(acs: FakeAcs) -> None:
    result = await run_session(router(), acs.url, quirks=parse_quirks("empty-post-no-length"))
    assert result.ok, result.reason
    empty = acs.seen[1]
    assert empty.body == b""
    assert "Content-Length" not in empty.headers and "Transfer-Encoding" not in empty.headers
    assert acs.seen[0].headers["Content-Length"] == str(len(acs.seen[0].body))


async def test_all_quirks_together(acs: FakeAcs) -> None:
    assert parse_quirks("all") == ALL_QUIRKS and "prefix-SOAP-ENV" in ALL_QUIRKS
    result = await run_session(router("tr098-dsl"), acs.url, quirks=parse_quirks("all"))
    assert result.ok, result.reason
    assert all("Cookie" not in s.headers for s in acs.seen)
    assert acs.seen[0].body.startswith(b"<SOAP-ENV:Envelope")


def test_quirk_names_are_checked() -> None:
    assert set(QUIRKS) >= {"no-cookies", "cwmp-1-0", "untyped-values", "reused-id"}
    with pytest.raises(ValueError):
        parse_quirks("no-cookies,bogus")
    with pytest.raises(ValueError):
        parse_quirks("prefix-soap,prefix-SOAP-ENV")


async def test_transfer_complete_is_sent_before_the_empty_post() -> None:
    scripts = iter(
        [[rpc.Download("dl-9", "3 Vendor Configuration File", "http://127.0.0.1:1/f")], []]
    )
    acs = await FakeAcs(script=lambda inform: next(scripts)).start()
    cpe = router()
    cpe.transfer_seconds = 0.0
    try:
        assert (await run_session(cpe, acs.url)).ok
        assert cpe.poll()
        result = await run_session(cpe, acs.url)
    finally:
        await acs.stop()
    assert result.ok, result.reason
    assert result.events == ["7 TRANSFER COMPLETE", "M Download"]
    assert isinstance(acs.answers[0], rpc.DownloadResponse)
    tc = acs.answers[1]
    assert isinstance(tc, rpc.TransferComplete) and tc.command_key == "dl-9" and tc.fault.code == 0
    assert acs.seen[-1].body == b""  # the empty POST comes after TransferComplete
    assert not cpe.events and cpe.next_transfer() is None


async def test_spv_fault_travels_back_as_a_soap_fault() -> None:
    script = lambda inform: [  # noqa: E731
        rpc.SetParameterValues(
            [
                rpc.ParameterValue("Device.DeviceInfo.SerialNumber", "x"),
                rpc.ParameterValue("Device.WiFi.SSID.1.SSID", "fine"),
            ],
            "k",
        )
    ]
    acs = await FakeAcs(script=script).start()
    try:
        result = await run_session(router(), acs.url)
    finally:
        await acs.stop()
    assert result.ok
    [fault] = acs.answers
    assert isinstance(fault, rpc.Fault) and fault.code == 9003
    assert [(f.name, f.code) for f in fault.spv_faults] == [
        ("Device.DeviceInfo.SerialNumber", 9008)
    ]


# --- failures -----------------------------------------------------------------------------------


async def raw_server(
    answer: bytes | Callable[[bytes], bytes | None],
) -> tuple[asyncio.Server, str, list]:
    """A socket server answering each request with fixed bytes (None: hang up)."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"Content-Length: (\d+)", head)
                body = await reader.readexactly(int(length.group(1))) if length else b""
                received.append(head + body)
                out = answer(head + body) if callable(answer) else answer
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/", received


async def test_503_fails_the_session_with_its_retry_after() -> None:
    server, url, _ = await raw_server(
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n"
    )
    cpe = router()
    async with server:
        result = await run_session(cpe, url)
    assert not result.ok and "503" in result.reason and result.retry_after == 7
    assert cpe.retry_count == 1 and [e.code for e in cpe.events] == ["0 BOOTSTRAP", "1 BOOT"]


async def test_soap_fault_to_the_inform_fails_the_session() -> None:
    fault = render_envelope(Envelope(rpc.acs_fault(8005), id="1"))
    server, url, _ = await raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(fault) + fault
    )
    async with server:
        result = await run_session(router(), url)
    assert not result.ok and "8005" in result.reason


async def test_unparseable_answer_and_dropped_connection_fail_the_session() -> None:
    server, url, _ = await raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    async with server:
        result = await run_session(router(), url)
    assert not result.ok and "unparseable" in result.reason
    server, url, _ = await raw_server(lambda request: None)
    async with server:
        result = await run_session(router(), url)
    assert not result.ok and "connection" in result.reason


async def test_session_length_is_bounded() -> None:
    forever = lambda inform: [rpc.GetRPCMethods()] * 50  # noqa: E731
    acs = await FakeAcs(script=forever).start()
    try:
        result = await run_session(router(), acs.url, max_messages=10)
    finally:
        await acs.stop()
    assert not result.ok and "more than 10 messages" in result.reason


# --- the HTTP client ------------------------------------------------------------------------------


async def test_client_rejects_chunked_responses() -> None:
    server, url, _ = await raw_server(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    client = HttpClient(url)
    async with server:
        with pytest.raises(HttpError, match="chunked"):
            await client.post(b"<x/>")
    await client.close()


async def test_client_keeps_cookies_and_reconnects_after_connection_close() -> None:
    answers = iter(
        [
            b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\n"
            b"Content-Length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 204 No Content\r\nSet-Cookie: a=; Max-Age=0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
        ]
    )
    server, url, received = await raw_server(lambda request: next(answers))
    client = HttpClient(url)
    async with server:
        first = await client.post(b"<a/>")
        assert (first.status, first.body) == (200, b"ok")
        second = await client.post(b"")
        assert second.status == 200
        third = await client.post(b"", content_length=False)  # on a new connection
        assert third.status == 204
        fourth = await client.post(b"<b/>")
        assert fourth.body == b"until the end"
    await client.close()
    assert b"Cookie" not in received[0]
    assert b"Cookie: a=1; b=2\r\n" in received[1]
    assert b"Content-Length" not in received[2]
    assert b"Cookie: b=2\r\n" in received[3]


async def test_client_answers_a_digest_challenge() -> None:
    from acsd import httpdigest as digest

    nonce = "abc123"

    def answer(request: bytes) -> bytes:
        auth = re.search(rb"Authorization: (.*)\r\n", request)
        if auth and digest.verify(auth.group(1).decode(), "POST", "cpe", "pw", nonce, "acs"):
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        challenge = f'Digest realm="acs", qop="auth", nonce="{nonce}"'.encode()
        return (
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: "
            + challenge
            + b"\r\nContent-Length: 0\r\n\r\n"
        )

    server, url, received = await raw_server(answer)
    async with server:
        good = HttpClient(url, credentials=("cpe", "pw"))
        assert (await good.post(b"<x/>")).status == 204
        assert (await good.post(b"")).status == 204  # nc=2, no new challenge
        await good.close()
        bad = HttpClient(url, credentials=("cpe", "wrong"))
        assert (await bad.post(b"<x/>")).status == 401
        await bad.close()
    assert len(received) == 3 + 2
    assert b"nc=00000002" in received[2]


# --- Connection Requests and periodic runs -------------------------------------------------------


async def test_connection_request_with_digest_opens_a_session(acs: FakeAcs) -> None:
    sim = Simulation(acs.url, ["tplink-tr181"], 1, interval=3600, ramp=0, cr_listen="127.0.0.1:0")
    run = asyncio.create_task(sim.run(duration=30))
    try:
        await wait_for(lambda: len(acs.informs) == 1)
        cpe = sim.routers[0]
        url = cpe.tree.get("Device.ManagementServer.ConnectionRequestURL")
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/cr/SIMTPL000001", url)
        assert acs.informs[0].parameters[5].value == url  # forced ConnectionRequestURL
        ms = "Device.ManagementServer."
        cpe.tree.values[ms + "ConnectionRequestUsername"] = "acs"
        cpe.tree.values[ms + "ConnectionRequestPassword"] = "cr-secret"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as anonymous:
                assert anonymous.status == 401
                assert "Digest" in anonymous.headers["WWW-Authenticate"]
            auth = aiohttp.DigestAuthMiddleware("acs", "wrong")
            async with http.get(url, middlewares=(auth,)) as refused:
                assert refused.status == 401
            auth = aiohttp.DigestAuthMiddleware("acs", "cr-secret")
            async with http.get(url, middlewares=(auth,)) as accepted:
                assert accepted.status == 200
        await wait_for(lambda: len(acs.informs) == 2, timeout=1.5)
        assert acs.informs[1].event_codes() == ["6 CONNECTION REQUEST"]
    finally:
        sim.stop()
        await run


async def test_periodic_informs_follow_the_interval(acs: FakeAcs) -> None:
    sim = Simulation(acs.url, ["tr181-mobile", "tr098-dsl"], 2, interval=0.3, ramp=0.1)
    summary = await sim.run(duration=1.2)
    assert summary.failed == 0 and summary.ok >= 4
    for serial in ("SIMMOB000001", "SIMDSL000002"):
        codes = [i.event_codes() for i in acs.informs if i.device_id.serial_number == serial]
        assert codes[0] == ["0 BOOTSTRAP", "1 BOOT"]
        assert codes[1:] and all(c == ["2 PERIODIC"] for c in codes[1:])


async def test_failed_sessions_are_retried_with_back_off() -> None:
    calls = []

    def flaky(request: bytes) -> bytes | None:
        calls.append(request)
        return (
            None
            if len(calls) == 1
            else b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
        )

    server, url, _ = await raw_server(flaky)
    sim = Simulation(url, ["tr181-mobile"], 1, interval=3600, ramp=0, retry_scale=0.01)
    async with server:
        summary = await sim.run(duration=1.0)
    assert summary.ok == 0 and summary.failed >= 3
    assert b"<RetryCount>2</RetryCount>" in calls[2]


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_periodic_interval_set_by_the_acs_is_followed() -> None:
    interval = "Device.ManagementServer.PeriodicInformInterval"
    script = lambda inform: (  # noqa: E731
        [rpc.SetParameterValues([rpc.ParameterValue(interval, "1", "xsd:unsignedInt")], "p")]
        if "0 BOOTSTRAP" in inform.event_codes()
        else []
    )
    acs = await FakeAcs(script=script).start()
    sim = Simulation(acs.url, ["tr181-mobile"], 1, ramp=0)  # the tree says 300 s
    try:
        summary = await sim.run(duration=2.6)
    finally:
        await acs.stop()
    assert summary.failed == 0
    codes = [i.event_codes() for i in acs.informs]
    # the tree said 300 s: any periodic Inform within 2.6 s follows the ACS's 1 s
    assert codes[0] == ["0 BOOTSTRAP", "1 BOOT"]
    assert codes[1:] and all(c == ["2 PERIODIC"] for c in codes[1:])


async def test_connection_request_listener_answers_503_404_and_no_auth() -> None:
    from acsd.sim.crserver import ConnectionRequestServer

    cpe = router()
    server = ConnectionRequestServer({cpe.serial: cpe}, "127.0.0.1:0")
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url_for("NOSUCH")) as missing:
                assert missing.status == 404
            cpe.in_session = True
            async with http.get(server.url_for(cpe.serial)) as busy:
                assert busy.status == 503
            cpe.in_session = False
            async with http.get(server.url_for(cpe.serial)) as accepted:  # empty username
                assert accepted.status == 200
    finally:
        await server.stop()
    assert cpe.cr_requested and cpe.begin_session().event_codes()[-1] == "6 CONNECTION REQUEST"


async def test_connection_request_listener_checks_digest_answers_as_a_strict_router() -> None:
    """The listener is what tests prove acsd's Connection Request client against, so it
    checks what a strict router checks: an answer with qop auth-int covers the body (a
    GET's is empty), one without qop (RFC 2069) is good once per nonce, a nonce count
    used before is a replay, and the uri is the request's. Hashes computed here from the
    RFCs, not by the code under test."""
    import hashlib

    from acsd.sim.crserver import REALM, ConnectionRequestServer

    def md5(text: str | bytes) -> str:
        return hashlib.md5(text.encode() if isinstance(text, str) else text).hexdigest()

    cpe = router()
    ms = cpe.template.root + "ManagementServer."
    cpe.tree.set_local(ms + "ConnectionRequestUsername", "cr-user")
    cpe.tree.set_local(ms + "ConnectionRequestPassword", "cr-pw")
    server = ConnectionRequestServer({cpe.serial: cpe}, "127.0.0.1:0")
    path = f"/cr/{cpe.serial}"

    def header(nonce: str, qop: str | None, nc: int = 1, uri: str = path, body: bytes = b""):
        ha1 = md5(f"cr-user:{REALM}:cr-pw")
        ha2 = md5(f"GET:{uri}:{md5(body)}" if qop == "auth-int" else f"GET:{uri}")
        fields = f'username="cr-user", realm="{REALM}", nonce="{nonce}", uri="{uri}"'
        if qop is None:
            return f'Digest {fields}, response="{md5(f"{ha1}:{nonce}:{ha2}")}"'
        response = md5(f"{ha1}:{nonce}:{nc:08x}:c1:{qop}:{ha2}")
        return f'Digest {fields}, qop={qop}, nc={nc:08x}, cnonce="c1", response="{response}"'

    async def get(http: aiohttp.ClientSession, authorization: str | None = None) -> tuple:
        headers = {"Authorization": authorization} if authorization else None
        async with http.get(server.url_for(cpe.serial), headers=headers) as answer:
            found = re.search(r'nonce="([^"]+)"', answer.headers.get("WWW-Authenticate", ""))
            stale = "stale=true" in answer.headers.get("WWW-Authenticate", "")
            return answer.status, found.group(1) if found else None, stale

    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            status, nonce, _ = await get(http)
            assert status == 401 and nonce
            # auth-int: the hash of a body other than the one sent is wrong
            assert (await get(http, header(nonce, "auth-int", body=b"x")))[0] == 401
            status, nonce, _ = await get(http)
            assert (await get(http, header(nonce, "auth-int")))[0] == 200
            # the same count again: a replay (the password was right: stale); a higher one
            assert (await get(http, header(nonce, "auth-int")))[:3:2] == (401, True)
            assert (await get(http, header(nonce, "auth", nc=2)))[0] == 200
            # RFC 2069: once per nonce
            status, nonce, _ = await get(http)
            assert (await get(http, header(nonce, None)))[0] == 200
            assert (await get(http, header(nonce, None)))[:3:2] == (401, True)
            # the uri of another request
            status, nonce, _ = await get(http)
            assert (await get(http, header(nonce, "auth", uri="/cr/OTHER")))[:3:2] == (401, False)
    finally:
        await server.stop()
    assert server.requests == 3
