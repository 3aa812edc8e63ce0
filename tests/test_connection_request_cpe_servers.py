"""Connection Requests against the HTTP servers CPE firmware embeds, written here byte by
byte on 127.0.0.1: what they send is often not what aiohttp's own server would (a 401
without a length on a connection kept open, a nonce that goes stale between the two
requests), and acsd must still get the router to connect, or say why it did not."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

import acsd
from acsd import httpdigest
from acsd.cwmp.connreq import ConnectionRequester, CrResult
from conftest import DENY_BUT_LOOPBACK

USER, PASSWORD, REALM = "cr-user", "cr-secret", "HG8245 CR"


@dataclass
class Seen:
    """A request the fake CPE got: on which TCP connection (1, 2, ...), and its head."""

    connection: int
    head: str

    @property
    def authorization(self) -> str | None:
        for line in self.head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "authorization":
                return value.strip()
        return None

    @property
    def target(self) -> str:
        return self.head.split(" ")[1]


@dataclass
class Cpe:
    port: int
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cr"


#: what the fake CPE does with a request: the bytes it answers, and "close" to close the
#: connection after them ("" keeps it open for the next request)
Script = Callable[[Seen], tuple[bytes, str]]


@contextlib.asynccontextmanager
async def cpe_server(
    script: Script, one_at_a_time: asyncio.Lock | None = None
) -> AsyncIterator[Cpe]:
    """A fake CPE on 127.0.0.1 that answers by ``script``; with ``one_at_a_time``, a
    connection is served only once the one before it is closed."""
    cpe = Cpe(0)
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with one_at_a_time or contextlib.nullcontext():
            await converse(reader, writer)

    async def converse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        number = connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                seen = Seen(number, head.decode("latin-1"))
                cpe.seen.append(seen)
                answer, then = script(seen)
                writer.write(answer)
                await writer.drain()
                if then == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    cpe.port = server.sockets[0].getsockname()[1]
    try:
        yield cpe
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1)


def answer(status: str, *headers: str, body: bytes = b"") -> bytes:
    lines = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\n{lines}\r\n".encode() + body


def challenge(nonce: str, extra: str = "") -> str:
    return f'WWW-Authenticate: Digest realm="{REALM}", nonce="{nonce}", qop="auth"{extra}'


def digest_ok(seen: Seen, nonce: str) -> bool:
    """The request carries a right Digest answer to ``nonce``, for the request-target it
    was sent to (the uri a CPE hashes is the one on its request line)."""
    header = seen.authorization or ""
    params = httpdigest.parse_params(header.partition(" ")[2])
    return params.get("uri") == seen.target and httpdigest.verify(
        header, "GET", USER, PASSWORD, nonce, REALM
    )


async def request(url: str, *, timeout: float = 2.0, username: str = USER) -> CrResult:
    requester = ConnectionRequester(deny=DENY_BUT_LOOPBACK, min_interval=0, timeout=timeout)
    await requester.start()
    try:
        task = requester.poke("dev1", url, username, PASSWORD)
        assert task is not None
        return await task
    finally:
        await requester.close()


async def test_a_401_without_a_length_on_a_connection_kept_open_is_answered_at_once() -> None:
    """Embedded servers send a bare 401 (no Content-Length, not chunked) and keep the
    connection for the next request. Its body ends only when the connection does: acsd
    must not wait for that (the whole timeout, then no request at all), but answer the
    challenge on a new connection."""

    def cpe(seen: Seen) -> tuple[bytes, str]:
        if seen.authorization is None:
            return answer("401 Unauthorized", challenge("n1")), ""
        return answer("204 No Content" if digest_ok(seen, "n1") else "403 Forbidden"), ""

    async with cpe_server(cpe) as server:
        result = await request(server.url, timeout=1.5)
    assert result.ok and result.status == 204, result
    assert [s.connection for s in server.seen] == [1, 2]


async def test_a_401_whose_head_ends_with_the_connection_is_answered() -> None:
    # easycwmp writes its 401's WWW-Authenticate line and closes the connection, without
    # the empty line that ends an HTTP head (pivasoftware/easycwmp: src/http.c
    # http_new_client, src/digestauth.c http_digest_auth_fail_response), as the Orange
    # tr069agent did; GenieACS failed on it (genieacs/genieacs#64, #91, #280), and so did
    # acsd ("unreachable: ServerDisconnectedError"), for every router it had given CR
    # credentials to. Its 200 has the empty line, and no length either.
    nonce, realm = "d45048332fdf2ba2df6532f51030b7bb000032ae", "realm@easycwmp"

    def cpe(seen: Seen) -> tuple[bytes, str]:
        header = seen.authorization or ""
        if httpdigest.verify(header, "GET", USER, PASSWORD, nonce, realm):
            return b"HTTP/1.1 200 OK\r\n\r\n", "close"
        challenge = f'Digest realm="{realm}",qop="auth",nonce="{nonce}",opaque="3284"'
        head = f"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nWWW-Authenticate: {challenge}"
        return (head + "\r\n").encode(), "close"

    async with cpe_server(cpe) as server:
        result = await request(server.url)
    assert result.ok and result.status == 200, result
    assert server.seen[-1].authorization


async def test_a_nonce_the_cpe_calls_stale_is_answered_again_with_the_new_one() -> None:
    """A CPE that ties its nonce to the connection, or lets it run out quickly, answers
    acsd's first answer with a new 401 that says stale=true (RFC 7616: the credentials
    were right, answer the new nonce). One more answer, not a refused request."""

    def cpe(seen: Seen) -> tuple[bytes, str]:
        if seen.authorization is None:
            return answer("401 Unauthorized", challenge("n1"), "Content-Length: 0"), ""
        if digest_ok(seen, "n1"):
            return answer(
                "401 Unauthorized", challenge("n2", ", stale=true"), "Content-Length: 0"
            ), ""
        return answer(
            "200 OK" if digest_ok(seen, "n2") else "403 Forbidden", "Content-Length: 0"
        ), ""

    async with cpe_server(cpe) as server:
        result = await request(server.url)
    assert result.ok and result.status == 200, result
    assert len(server.seen) == 3

    # A CPE that keeps calling every nonce stale gets no third answer: refused.
    def stale_always(seen: Seen) -> tuple[bytes, str]:
        stale = ", stale=true" if seen.authorization else ""
        return answer("401 Unauthorized", challenge("n1", stale), "Content-Length: 0"), ""

    async with cpe_server(stale_always) as server:
        result = await request(server.url)
    assert not result.ok and result.status == 401
    assert len(server.seen) == 3


async def test_what_became_of_a_request_is_said_in_words_an_operator_can_act_on() -> None:
    """connreq.done's reason is what an operator reads when a change does not reach a
    router: a router that refuses the credentials is not "refused" like a 404, a router
    that never answers is not an empty "TimeoutError: ", and a CPE whose firmware says
    202 Accepted has accepted."""

    def wrong_password(seen: Seen) -> tuple[bytes, str]:
        return answer("401 Unauthorized", challenge("n1"), "Content-Length: 0"), ""

    def accepted(seen: Seen) -> tuple[bytes, str]:
        if digest_ok(seen, "n1"):
            return answer("202 Accepted", "Content-Length: 0"), ""
        return answer("401 Unauthorized", challenge("n1"), "Content-Length: 0"), ""

    async with cpe_server(wrong_password) as server:
        result = await request(server.url)
    assert (result.ok, result.status) == (False, 401)
    assert result.reason == f"the router refused the credentials of {USER!r}"
    assert PASSWORD not in result.reason

    async with cpe_server(accepted) as server:
        result = await request(server.url)
    assert (result.ok, result.status) == (True, 202), result

    held: list[asyncio.StreamWriter] = []  # a router behind a firewall that drops: silence
    silent = await asyncio.start_server(lambda _, writer: held.append(writer), "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        result = await request(f"http://127.0.0.1:{port}/cr", timeout=0.3)
    finally:
        for writer in held:
            writer.close()
        silent.close()
    assert (result.ok, result.status) == (False, None)
    assert result.reason == "unreachable: no answer within 0.3 s"


async def test_a_cpe_that_serves_one_connection_at_a_time_is_not_held_by_an_idle_one() -> None:
    """Many firmwares' Connection Request listeners serve one connection at a time. A
    request is one exchange, and the next to that router is an interval away: a connection
    left open after the CPE's answer would hold its listener, and the next request (from
    another worker, or another instance on the same database) would get no answer."""
    turn = asyncio.Lock()

    def cpe(seen: Seen) -> tuple[bytes, str]:
        if digest_ok(seen, "n1"):
            return answer("204 No Content"), ""
        return answer("401 Unauthorized", challenge("n1"), "Content-Length: 0"), ""

    async with cpe_server(cpe, one_at_a_time=turn) as server:
        worker1 = ConnectionRequester(deny=DENY_BUT_LOOPBACK, min_interval=0, timeout=1.0)
        await worker1.start()
        try:
            first = worker1.poke("dev1", server.url, USER, PASSWORD)
            assert first is not None and (await first).ok
            # worker 1 stays up (its HTTP client with it) while worker 2 sends the next one
            result = await request(server.url, timeout=1.0)
        finally:
            await worker1.close()
    assert result.ok, result


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("header", "qop"),
    [
        # a tab after the scheme, where RFC 7235 has a space
        (f'WWW-Authenticate: Digest\trealm="{REALM}", nonce="n1", qop="auth"', "auth"),
        # only auth-int: RFC 7616 has the answer name it (a GET's body is empty), and a
        # CPE that offers only that refuses one without qop
        (f'WWW-Authenticate: Digest realm="{REALM}", nonce="n1", qop="auth-int"', "auth-int"),
    ],
)
async def test_a_challenge_as_embedded_servers_write_it_is_answered(header, qop) -> None:
    def cpe(seen: Seen) -> tuple[bytes, str]:
        sent = httpdigest.parse_params((seen.authorization or "").partition(" ")[2])
        if sent.get("qop") == qop and sent.get("uri") == seen.target:
            # computed here from RFC 7616, not by the code under test
            body = f":{_md5('')}" if qop == "auth-int" else ""
            ha1 = _md5(f"{USER}:{REALM}:{PASSWORD}")
            ha2 = _md5(f"GET:{seen.target}{body}")
            fields = f"{sent['nonce']}:{sent['nc']}:{sent['cnonce']}:{qop}"
            if sent.get("response") == _md5(f"{ha1}:{fields}:{ha2}"):
                return answer("204 No Content"), ""
        return answer("401 Unauthorized", header, "Content-Length: 0"), ""

    async with cpe_server(cpe) as server:
        result = await request(server.url)
    assert result.ok and result.status == 204, result


async def test_a_request_names_acsd_and_not_the_libraries_under_it() -> None:
    # aiohttp's default User-Agent told every CPE (and whoever watches the path) the
    # Python and aiohttp versions acsd runs on, and so their known flaws.
    async with cpe_server(lambda seen: (answer("204 No Content"), "")) as server:
        result = await request(server.url)
    assert result.ok, result
    [seen] = server.seen
    agents = [line for line in seen.head.split("\r\n") if line.lower().startswith("user-agent:")]
    assert agents == [f"User-Agent: acsd/{acsd.__version__}"], agents


def test_how_long_a_request_waits_is_the_operators(daemon_factory) -> None:
    """[cwmp] connection_request_timeout: a router on a slow mobile link needs more than
    the default 5 s. Here 1 s, against a router whose listener takes the connection and
    never answers; the log says the operator's figure, and names the router."""
    from api_world import build_world, device_body
    from conftest import wait_for
    from cpe_steps import NS, finish
    from wire import Wire, envelope, inform_body

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes connections; nobody ever reads them
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/cr"
        daemon = daemon_factory(
            cwmp={"connection_request_timeout": 1, "connection_request_deny": DENY_BUT_LOOPBACK}
        )
        wire = Wire(daemon.cwmp_url)
        params = {
            "Device.DeviceInfo.SoftwareVersion": "1.0.0",
            "Device.ManagementServer.ConnectionRequestURL": url,
        }
        assert wire.post(envelope(inform_body("SLOWLINK1", params=params), ns=NS)).status == 200
        finish(wire)
        world = build_world(daemon)
        created = world.api.post("/network/device", device_body(world, "own", "SLOWLINK1"))
        assert created.status == 201, created.body
        [done] = wait_for(lambda: daemon.events("connreq.done"), timeout=10)
    assert (done["ok"], done["reason"]) == (False, "unreachable: no answer within 1 s")
    # the line names the router, as the operator whose change did not arrive searches
    assert (done["serial"], done["device"]) == ("SLOWLINK1", created.body["_id"])


async def test_a_url_with_port_0_is_said_to_be_one_no_router_listens_on() -> None:
    result = await request("http://127.0.0.1:0/cr")
    assert not result.ok
    assert result.reason == "not a URL a router listens on (port 0): 'http://127.0.0.1:0/cr'"


async def test_a_request_the_cpe_dropped_goes_again_with_the_next_nonce_count() -> None:
    """A CPE that closes the connection on acsd's answer without a word (firmware that
    resets it, or closed the kept-alive connection after its 401): aiohttp sends the GET
    again on a new connection. The same Digest answer twice, same nonce and nc, is a
    replay to a CPE that counts them (refused, or a failed login): the second goes with
    the next nc and a cnonce of its own."""
    used: set[tuple[str, str]] = set()

    def cpe(seen: Seen) -> tuple[bytes, str]:
        if seen.authorization is None:
            return answer("401 Unauthorized", challenge("n1"), "Content-Length: 0"), ""
        sent = httpdigest.parse_params(seen.authorization.partition(" ")[2])
        pair = (sent.get("nonce", ""), sent.get("nc", ""))
        if pair in used:  # a replay
            return answer("401 Unauthorized", challenge("n1"), "Content-Length: 0"), "close"
        used.add(pair)
        if len(used) == 1:
            return b"", "close"  # read, then the connection dropped
        return answer("204 No Content" if digest_ok(seen, "n1") else "403 Forbidden"), ""

    async with cpe_server(cpe) as server:
        result = await request(server.url)
    assert result.ok and result.status == 204, result
    answers = [httpdigest.parse_params(s.authorization.partition(" ")[2]) for s in server.seen[1:]]
    assert [(a["nc"], s.connection) for a, s in zip(answers, server.seen[1:], strict=True)] == [
        ("00000001", 1),
        ("00000002", 2),
    ]
    assert answers[0]["cnonce"] != answers[1]["cnonce"]


async def test_what_a_cpe_sends_reaches_the_log_bounded_and_printable() -> None:
    """A CPE's header text in connreq.done's reason (its challenge's scheme names, the
    line aiohttp could not parse): a few hundred characters at most, and no control
    character that a terminal would act on (an ESC sequence) or that splits the line."""
    schemes = ", ".join(f"X{n}\x1b[2J realm=a" for n in range(600))  # ~10 KB of header
    garbage = b"HTTP/1.1 20X " + b"\x1b[2J" * 1500 + b"\r\n\r\n"
    replies = [
        answer("401 Unauthorized", f"WWW-Authenticate: {schemes}", "Content-Length: 0"),
        garbage,
    ]
    for reply in replies:
        async with cpe_server(lambda seen, reply=reply: (reply, "close")) as server:
            result = await request(server.url)
        assert not result.ok
        assert len(result.reason) < 300, result.reason
        assert not any(ord(c) < 32 or ord(c) == 127 for c in result.reason), result.reason
        assert result.reason.startswith(
            ("no challenge acsd can answer (x0\\x1b", "unreachable: ClientResponseError: ")
        )
    # the username the router reported holding (its ConnectionRequestUsername), refused
    refusing = answer("401 Unauthorized", challenge("n1"), "Content-Length: 0")
    async with cpe_server(lambda seen: (refusing, "")) as server:
        result = await request(server.url, username="\u202e" + "u" * 5000)
    assert result.reason.startswith("the router refused the credentials of '\\u202euuu")
    assert len(result.reason) < 150
