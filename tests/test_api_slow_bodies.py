"""A request whose body never arrives in full ([api] body_timeout): 408, not a handler and a
connection held for good; a client that gives up mid-body is no internal error."""

from __future__ import annotations

import json
import socket
import time

from api_world import token
from apiclient import Api
from conftest import wait_for
from spec_check import mismatches

APNS = "/v1/accounts/{foreignaccountkey}/networks/{foreignkey}/devices/apns"


def _open(daemon) -> socket.socket:
    host, port = daemon.api_url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _short_body(sock: socket.socket, path: str, bearer: str, content_type: str) -> None:
    # promises 100 bytes, sends one
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {bearer}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: 100\r\n\r\n{{".encode()
    )


def _answer(sock: socket.socket) -> tuple[int, dict, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))  # fmt: skip
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(head.split()[1]), json.loads(body), head


def test_a_body_that_never_arrives_in_full_gets_408_after_body_timeout(daemon_factory):
    daemon = daemon_factory(api={"body_timeout": 1})
    admin = token(daemon, "ADMIN")
    doc = Api(daemon.api_url).get("/openapi.json").body
    for path, content_type, documented in (
        ("/network/device", "application/json", "/network/device"),
        ("/v1/accounts/ACME/networks/fleet/devices/apns", "application/json", APNS),
    ):
        with _open(daemon) as sock:
            started = time.monotonic()
            _short_body(sock, path, admin, content_type)
            status, body, head = _answer(sock)
            assert status == 408 and time.monotonic() - started < 8
            assert b"connection: close" in head.lower()
            assert mismatches(doc, "POST", documented, 408, content_type, body) == []
            if path.startswith("/v1/"):  # the APN API's wrapper (seed 003)
                assert (body["Success"], body["Code"], body["ErrorCode"]) == (False, 408, 4080)
            else:
                assert body["message"] == "request_timeout"
                assert "did not arrive within 1 s" in body["description"]
    assert daemon.events("api_internal_error") == []


def test_a_client_that_gives_up_mid_body_is_no_internal_error(daemon_factory):
    daemon = daemon_factory(api={"body_timeout": 30})
    admin = token(daemon, "ADMIN")
    for path in ("/network/device", "/v1/accounts/ACME/networks/fleet/devices/apns"):
        with _open(daemon) as sock:
            _short_body(sock, path, admin, "application/json")
            time.sleep(0.2)  # the handler is waiting for the rest
    # the handler saw the connection go: an ordinary refusal, no traceback at error level
    wait_for(lambda: daemon.cli("device", "list", "--json", check=False).returncode == 0)
    time.sleep(0.5)
    assert daemon.events("api_internal_error") == []
    assert "Traceback" not in daemon.log_text()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the daemon closes ``sock`` within ``seconds`` (it sends nothing before)."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_headers_that_never_finish_do_not_hold_a_connection(daemon_factory):
    daemon = daemon_factory(api={"idle_timeout": 2}, cwmp={"session_timeout": 2})
    cwmp_host, cwmp_port = daemon.cwmp_url.removeprefix("http://").split("/")[0].rsplit(":", 1)
    for connect in (
        lambda: _open(daemon),
        lambda: socket.create_connection((cwmp_host, int(cwmp_port)), 10),
    ):
        with connect() as sock:
            started = time.monotonic()
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            # a byte now and then: the limit is on the headers as a whole
            for _ in range(4):
                time.sleep(0.25)
                sock.sendall(b"X")
            assert _closed_within(sock, 8)
            assert time.monotonic() - started < 8
    # a client that finishes its headers in time is served as ever
    with _open(daemon) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(0.3)
        sock.sendall(b"\r\n")
        assert b" 200 " in sock.recv(1024).split(b"\r\n")[0] + b" "


def test_a_connection_that_sends_nothing_is_closed(daemon_factory):
    daemon = daemon_factory(api={"idle_timeout": 1})
    with _open(daemon) as sock:
        assert _closed_within(sock, 8)


def test_an_answer_the_client_does_not_read_closes_its_connection(daemon_factory):
    # aiohttp has no send timeout and the keep-alive timer does not run while an answer is
    # written: connections asking for /openapi.json (no token needed) and never reading
    # held ~250 KB each for as long as they liked (2,000 of them: ~500 MB).
    daemon = daemon_factory(api={"body_timeout": 1})
    host, port = daemon.api_url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    whole = len(Api(daemon.api_url).get("/openapi.json").raw)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # (before connect: the window)
    sock.settimeout(10)
    sock.connect((host, int(port)))
    # 60 answers, pipelined: more than the kernel's buffers hold (tcp_wmem's 4 MB), so
    # that the rest waits in the daemon's, as one answer does under memory pressure
    asked = 60
    with sock:
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * asked)
        time.sleep(4)  # two checks of 1 s without progress, and some
        got, closed = 0, False
        sock.settimeout(3)
        try:
            while chunk := sock.recv(65536):
                got += len(chunk)
            closed = True
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            pass  # still open: the answer waited for us
    assert closed and got < asked * whole, (closed, got, asked * whole)
    line = wait_for(lambda: daemon.events("api.send_timeout"))[0]
    assert line["remote"] == "127.0.0.1" and line["path"] == "/openapi.json"


def test_an_action_whose_body_never_arrives_gets_408_not_500(daemon_factory):
    # POST .../retry and .../end take no body; one promised and never sent was a 500
    daemon = daemon_factory(api={"body_timeout": 1})
    admin = token(daemon, "ADMIN")
    with _open(daemon) as sock:
        _short_body(sock, "/network/device/0123456789abcdef01234567/retry", admin,
                    "application/json")  # fmt: skip
        status, body, _ = _answer(sock)
    assert status == 408 and body["message"] == "request_timeout", body
