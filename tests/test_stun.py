"""acsd's STUN server and UDP Connection Request sender (acsd.cwmp.stun), over real UDP
sockets on 127.0.0.1: what a router's STUN client gets back, what hostile datagrams get
(nothing), and the signed message a router behind NAT receives."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest

from acsd.cwmp import stun
from conftest import DENY_BUT_LOOPBACK


@pytest.fixture
async def server() -> AsyncIterator[stun.StunServer]:
    srv = stun.StunServer("127.0.0.1", 0, deny=DENY_BUT_LOOPBACK)
    await srv.start()
    yield srv
    srv.close()


@pytest.fixture
def client() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


async def recv(sock: socket.socket, timeout: float = 2.0) -> bytes:
    return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 2048), timeout)


async def nothing(sock: socket.socket, wait: float = 0.2) -> bool:
    try:
        await recv(sock, wait)
    except TimeoutError:
        return True
    return False


@pytest.mark.parametrize("modern", [False, True], ids=["rfc3489", "rfc5389"])
async def test_binding_request_gets_the_mapped_address(server, client, modern):
    request = stun.binding_request(modern=modern)
    client.sendto(request, ("127.0.0.1", server.port))
    answer = await recv(client)
    mapped = stun.parse_mapped_address(answer, request[4:20])
    assert mapped == client.getsockname()
    kind = struct.unpack_from("!H", answer, 20)[0]
    # classic clients read MAPPED-ADDRESS, RFC 5389 ones XOR-MAPPED-ADDRESS; one of them only
    assert kind == (stun.XOR_MAPPED_ADDRESS if modern else stun.MAPPED_ADDRESS)
    # no amplification: header + one IPv4 address attribute, nothing more
    assert len(answer) == 20 + 4 + 8
    assert server.stats.answered == 1 and server.stats.dropped == 0


def _request(kind: int = stun.BINDING_REQUEST, body: bytes = b"", length: int | None = None):
    size = len(body) if length is None else length
    return struct.pack("!HH", kind, size) + bytes(16) + body


HOSTILE = {
    "short": b"\x00\x01\x00\x00",
    "oversized": _request(body=b"\x80\x22\x05\xa8" + bytes(1448)),
    "answer": _request(stun.BINDING_RESPONSE),
    "not stun": b"GET / HTTP/1.1\r\n\r\n" + bytes(8),
    "bad length": _request(length=40),
    "attribute past the end": _request(body=struct.pack("!HH", 0x8022, 200) + bytes(4)),
    "too many attributes": _request(body=struct.pack("!HH", 0x8022, 0) * 40),
    "empty": b"",
}


async def test_hostile_datagrams_are_dropped_and_counted(server, client):
    for data in HOSTILE.values():
        client.sendto(data, ("127.0.0.1", server.port))
    assert await nothing(client)
    assert server.stats.dropped == len(HOSTILE)
    assert server.stats.answered == 0
    assert set(server.stats.drop_reasons) >= {"short", "oversized", "not a binding request"}
    # and the server still answers the next router
    request = stun.binding_request()
    client.sendto(request, ("127.0.0.1", server.port))
    assert stun.parse_mapped_address(await recv(client), request[4:20]) is not None


def test_attribute_walk_is_bounded():
    body = b"".join(struct.pack("!HH", 0x8022, 0) for _ in range(stun.MAX_ATTRIBUTES))
    assert stun.parse_request(_request(body=body)).modern is False
    with pytest.raises(stun.NotStun, match="too many attributes"):
        stun.parse_request(_request(body=body + struct.pack("!HH", 0x8022, 0)))


def test_tr111_attributes_are_recognised():
    request = stun.parse_request(stun.binding_request())
    assert request.connection_request_binding and not request.binding_change


def test_signature_is_hmac_sha1_over_ts_id_un_cn():
    # TR-069 Annex G's text, computed by hand: HMAC-SHA1(key=password, ts+id+un+cn)
    import hashlib
    import hmac

    expected = hmac.new(b"pw", b"170000000042userabc", hashlib.sha1).hexdigest()
    assert stun.signature("pw", 1700000000, 42, "user", "abc") == expected


async def test_udp_connection_request_leaves_from_the_stun_port(server, client):
    host, port = client.getsockname()
    assert server.send_connection_request(f"{host}:{port}", "cpe-1", "secret") is None
    copies = [await recv(client) for _ in range(stun.UDP_CR_COPIES)]
    assert len(set(copies)) == 1  # the same message three times (UDP is lossy)
    # from the STUN server's own address: the one the router's NAT binding was made with
    _, source = await _recv_from(server, client)
    assert source == ("127.0.0.1", server.port)
    line, host_line = copies[0].decode().split("\r\n")[:2]
    method, url, version = line.split(" ")
    assert (method, version) == ("GET", "HTTP/1.1")
    assert host_line == f"Host: {host}:{port}"
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["un"] == "cpe-1"
    assert query["sig"] == stun.signature(
        "secret", int(query["ts"]), int(query["id"]), "cpe-1", query["cn"]
    )
    # a second request is a new one: a router ignores a (ts, id) it has seen
    server.send_connection_request(f"{host}:{port}", "cpe-1", "secret")
    again = await recv(client)
    assert parse_qs(urlsplit(again.split(b" ")[1].decode()).query)["id"] != [query["id"]]
    assert server.stats.udp_requests == 3  # (and _recv_from's)


async def _recv_from(server, client) -> tuple[bytes, tuple]:
    host, port = client.getsockname()
    server.send_connection_request(f"{host}:{port}", "u", "p")
    data, source = await asyncio.wait_for(asyncio.get_running_loop().sock_recvfrom(client, 2048), 2)
    for _ in range(stun.UDP_CR_COPIES - 1):
        await recv(client)
    return data, source


async def test_udp_connection_request_refusals(client):
    guarded = stun.StunServer("127.0.0.1", 0, deny=["127.0.0.0/8"])
    await guarded.start()
    try:
        port = client.getsockname()[1]
        reason = guarded.send_connection_request(f"127.0.0.1:{port}", "u", "p")
        assert reason is not None and "127.0.0.0/8" in reason
        assert "not an address" in guarded.send_connection_request("cpe.example:1", "u", "p")
        assert "not an address" in guarded.send_connection_request("192.0.2.1:0", "u", "p")
        assert "username" in guarded.send_connection_request("192.0.2.1:7547", None, "p")
        assert await nothing(client)
        assert guarded.stats.udp_refused == 4 and guarded.stats.udp_requests == 0
    finally:
        guarded.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("198.51.100.7:30000", ("198.51.100.7", 30000)),
        ("198.51.100.7", ("198.51.100.7", 80)),
        ("[2001:db8::1]:5060", ("2001:db8::1", 5060)),
    ],
)
def test_udp_address_forms(text, expected):
    assert stun.parse_udp_address(text) == expected


@pytest.mark.parametrize("text", ["", ":5", "198.51.100.7:x", "198.51.100.7:70000", "[::1"])
def test_udp_address_refused(text):
    with pytest.raises(ValueError):
        stun.parse_udp_address(text)


def test_stun_is_off_by_default_and_never_guesses_the_public_address(tmp_path) -> None:
    from acsd.config import ConfigError, load_config

    assert load_config(None, {}).stun.enabled is False
    path = tmp_path / "acsd.toml"
    path.write_text('[stun]\nenabled = true\nlisten = "0.0.0.0:3478"\n')
    with pytest.raises(ConfigError, match=r"stun\.public_address"):
        load_config(path, {})
    for bad in ("http://acs.example.net", "acs.example.net:3478", "0.0.0.0", "a b"):
        path.write_text(f'[stun]\nenabled = true\npublic_address = "{bad}"\n')
        with pytest.raises(ConfigError, match="public_address"):
            load_config(path, {})
    path.write_text('[stun]\nenabled = true\npublic_address = "acs.example.net"\n')
    config = load_config(path, {"ACSD_STUN_PUBLIC_PORT": "13478"})
    assert (config.stun.public_address, config.stun.server_port) == ("acs.example.net", 13478)


# -- the per-source bound: a spoofed source is a victim ----------------------------------------


async def test_a_flood_from_one_source_gets_a_burst_of_answers_then_nothing(client):
    # the request's 20 bytes came back as 32: without a bound, a spoofed source (the victim)
    # would get an answer for every request, as fast as they were sent
    limited = stun.StunServer("127.0.0.1", 0, source_rate=1, source_burst=5)
    await limited.start()
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(50):
            client.sendto(stun.binding_request(), ("127.0.0.1", limited.port))
        answers = 0
        while not await nothing(client, 0.3):
            answers += 1
        assert answers == 5
        assert limited.stats.answered == 5 and limited.stats.dropped == 45
        assert limited.stats.drop_reasons == {"rate limited": 45}
        # another source (a router) is answered meanwhile
        other.bind(("127.0.0.2", 0))
        other.setblocking(False)
        request = stun.binding_request()
        other.sendto(request, ("127.0.0.1", limited.port))
        assert stun.parse_mapped_address(await recv(other), request[4:20]) is not None
    finally:
        other.close()
        limited.close()


def test_a_source_is_answered_again_as_its_bucket_refills():
    from acsd.cwmp.stunlimit import SourceLimiter

    now = [1000.0]
    limiter = SourceLimiter(2, 3, clock=lambda: now[0])
    assert [limiter.allow("192.0.2.1") for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one answer's worth
    assert [limiter.allow("192.0.2.1") for _ in range(2)] == [True, False]
    # a router's keepalives (one per 30 s, a retry a second later) are never limited
    keepalive = SourceLimiter(10, 20, clock=lambda: now[0])
    for _ in range(100):
        now[0] += 30
        assert keepalive.allow("198.51.100.7") and keepalive.allow("198.51.100.7")


def test_the_sources_tracked_are_bounded_and_a_victim_keeps_its_bucket():
    from acsd.cwmp.stunlimit import SourceLimiter, source_key

    now = [1000.0]
    limiter = SourceLimiter(1, 2, max_sources=100, clock=lambda: now[0])
    assert limiter.allow("192.0.2.1") and limiter.allow("192.0.2.1")
    assert not limiter.allow("192.0.2.1")  # the victim's bucket is empty
    # a flood from many spoofed sources: the table stays bounded, and cannot push the
    # victim's entry out to give it a fresh bucket
    answered = sum(limiter.allow(f"10.{n // 250}.{n % 250}.1") for n in range(10_000))
    assert len(limiter) == 100 and answered == 99  # (the first 99 new sources, once each)
    assert not limiter.allow("192.0.2.1")
    # once the buckets have refilled, their entries are forgotten as new sources come
    now[0] += 3
    assert limiter.allow("198.51.100.9") and len(limiter) == 100
    # an IPv6 host counts by its /64; a dual-stack socket's IPv4 address as itself
    assert source_key("2001:db8:1:2::1") == source_key("2001:db8:1:2:ffff::9")
    assert source_key("2001:db8:1:2::1") != source_key("2001:db8:1:3::1")
    assert source_key("::ffff:192.0.2.1") == "192.0.2.1"


async def test_workers_sharing_the_port_answer_a_source_no_more_than_its_bound():
    """With workers = N the kernel spreads a source's datagrams over the workers by their
    source port: each worker's bucket is its share, so a flood from many ports of one
    address gets no more answers than one process would give it."""
    from acsd.cwmp.stunlimit import worker_share

    assert worker_share(10.0, 20, 4) == (2.5, 5)
    assert worker_share(10.0, 3, 4) == (2.5, 1)  # (each worker answers a source at all)
    first = stun.StunServer(
        "127.0.0.1", 0, reuse_port=True, source_rate=1, source_burst=6, workers=2
    )
    await first.start()
    second = stun.StunServer(
        "127.0.0.1", first.port, reuse_port=True, source_rate=1, source_burst=6, workers=2
    )
    await second.start()
    senders = []
    try:
        for _ in range(32):  # (one source address, many ports: both workers get some)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            senders.append(sock)
            for _ in range(4):
                sock.sendto(stun.binding_request(), ("127.0.0.1", first.port))
        await asyncio.sleep(0.3)
        assert first.stats.answered + first.stats.dropped > 0
        assert second.stats.answered + second.stats.dropped > 0
        assert first.stats.answered + second.stats.answered == 6
    finally:
        for sock in senders:
            sock.close()
        first.close()
        second.close()


def test_a_reload_retunes_the_buckets_and_keeps_the_sources():
    from acsd.cwmp.stunlimit import SourceLimiter

    now = [1000.0]
    limiter = SourceLimiter(1, 2, clock=lambda: now[0])
    assert [limiter.allow("192.0.2.1") for _ in range(3)] == [True, True, False]
    limiter.retune(4, 5)  # (the drained source is not given a fresh bucket)
    assert not limiter.allow("192.0.2.1") and len(limiter) == 1
    now[0] += 2
    assert [limiter.allow("192.0.2.1") for _ in range(6)] == [True] * 5 + [False]
    with pytest.raises(ValueError, match="positive"):
        limiter.retune(0, 5)


async def test_a_binding_change_from_ipv6_logs_the_address_apart_from_its_port():
    # "::1:44546" read as an address of eight groups, or as ::1 and a port: brackets say
    from structlog.testing import capture_logs

    srv = stun.StunServer("::1", 0, deny=DENY_BUT_LOOPBACK)
    await srv.start()
    client = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    client.bind(("::1", 0))
    client.setblocking(False)
    try:
        with capture_logs() as logs:
            client.sendto(stun.binding_request(binding_change=True), ("::1", srv.port))
            await recv(client)
        [line] = [e for e in logs if e["event"] == "stun.binding_change"]
        assert line["source"] == f"[::1]:{client.getsockname()[1]}"
    finally:
        client.close()
        srv.close()
