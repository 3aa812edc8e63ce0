"""Behind a trusted reverse proxy (``trust_forwarded``): the router's address and scheme are
taken from the entry the proxy itself appended, never from what the router put before it."""

from __future__ import annotations

import base64

import pytest

from acsd.cwmp.forwarded import forwarded_for, forwarded_https
from wire import Wire, envelope, inform_body


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["198.51.100.7"], "198.51.100.7"),
        # the router wrote the first entry, the proxy appended the address it saw
        (["203.0.113.66, 198.51.100.7"], "198.51.100.7"),
        (["203.0.113.66", "198.51.100.7"], "198.51.100.7"),  # two header lines
        (["203.0.113.66,198.51.100.7 , "], "198.51.100.7"),
        (["198.51.100.7:4711"], "198.51.100.7"),
        (["[2001:db8::7]:4711"], "2001:db8::7"),
        (["2001:DB8:0::7"], "2001:db8::7"),
        (["::ffff:198.51.100.7"], "198.51.100.7"),  # a dual-stack proxy's notation
        (["203.0.113.66, unknown"], None),
        (["198.51.100.7, _hidden"], None),
        ([""], None),
        ([], None),
        (["[2001:db8::7"], None),
    ],
)
def test_the_last_entry_is_the_address(values, expected):
    assert forwarded_for(values) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["https"], True),
        ([" HTTPS "], True),
        (["https, http"], False),  # the router's "https" before the proxy's own "http"
        (["https", "http"], False),  # two header lines
        (["http, https"], True),
        ([], False),
        ([""], False),
    ],
)
def test_the_last_proto_entry_says_whether_tls_ended_at_the_proxy(values, expected):
    assert forwarded_https(values) is expected


def _public_ip(daemon, serial: str, headers: dict[str, str]) -> str:
    wire = Wire(daemon.cwmp_url)
    answer = wire.post(envelope(inform_body(serial)), headers=headers)
    assert answer.status == 200, answer.text
    while answer.status != 204:  # (the proxy adds its headers to every request)
        answer = wire.post(None, headers=headers)
    return daemon.device_json(serial)["status"]["publicIp"]


def test_public_ip_is_the_address_the_proxy_saw(module_daemon_factory):
    daemon = module_daemon_factory(cwmp={"trust_forwarded": True})
    # a router that forges the header only adds an entry before the proxy's own
    forged = {"X-Forwarded-For": "203.0.113.66, 198.51.100.7"}
    assert _public_ip(daemon, "FWD000001", forged) == "198.51.100.7"
    # a proxy that hides the client: the connection's own address, not the text, and
    # the operator is told once that routers now share the proxy's address
    assert _public_ip(daemon, "FWD000002", {"X-Forwarded-For": "unknown"}) == "127.0.0.1"
    assert _public_ip(daemon, "FWD000004", {}) == "127.0.0.1"
    [told] = daemon.events("cwmp.forwarded_missing")
    assert told["level"] == "warning" and told["header"] == "unknown"


def test_forwarded_headers_are_ignored_unless_trusted(module_daemon_factory):
    daemon = module_daemon_factory()
    headers = {"X-Forwarded-For": "198.51.100.7"}
    assert _public_ip(daemon, "FWD000003", headers) == "127.0.0.1"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("proto", "status"),
    [
        ("https", 200),  # TLS ended at the proxy
        ("http", 403),
        ("https, http", 403),  # the router's "https" before the proxy's own "http"
    ],
)
def test_basic_auth_needs_tls_at_the_proxy(module_daemon_factory, proto, status):
    auth = {"scheme": "basic", "password": "s3cret-Basic"}
    daemon = module_daemon_factory(cwmp={"trust_forwarded": True, "auth": auth})
    headers = {"X-Forwarded-Proto": proto, "Authorization": _basic("FWDB0001", "s3cret-Basic")}
    answer = Wire(daemon.cwmp_url).post(envelope(inform_body("FWDB0001")), headers=headers)
    assert answer.status == status, answer.text


def test_a_locked_out_ipv6_client_is_logged_once_a_while_whichever_address_of_its_64(
    module_daemon_factory,
):
    # One host holds a whole /64 and is locked out by it: a line per address of it would
    # let it choose how much acsd logs again, by stepping through its 2^64 addresses.
    auth = {"scheme": "basic", "password": "right", "allow_basic_without_tls": True,
            "max_failures": 1, "failure_window": 60}  # fmt: skip
    daemon = module_daemon_factory(cwmp={"trust_forwarded": True, "auth": auth})
    wrong = "Basic " + base64.b64encode(b"FWD6LIMIT:wrong").decode()
    for host in range(1, 21):
        headers = {"X-Forwarded-For": f"2001:db8:1:2::{host:x}", "Authorization": wrong}
        answer = Wire(daemon.cwmp_url).post(envelope(inform_body("FWD6LIMIT")), headers=headers)
        assert answer.status == (401 if host == 1 else 429), (host, answer.status)
    limited = daemon.events("cwmp.auth_rate_limited")
    assert len(limited) == 1 and limited[0]["remote"] == "2001:db8:1:2::2", limited
    # another /64 is another client
    headers = {"X-Forwarded-For": "2001:db8:1:3::1", "Authorization": wrong}
    answer = Wire(daemon.cwmp_url).post(envelope(inform_body("FWD6LIMIT")), headers=headers)
    assert answer.status == 401
