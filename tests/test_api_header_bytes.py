"""Request headers that are not UTF-8: aiohttp hands them over with the bad bytes as lone
surrogates (surrogateescape). A client's broken header is a 4xx in the API's own error
shape, never a 500 (the token's hash, or an error text quoting the header, once failed to
encode)."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from api_world import token

APN_PATH = b"/v1/accounts/HDRBYTES/networks/fleet/devices/apns"


def _send(daemon, method: bytes, path: bytes, headers: list[tuple[bytes, bytes]], body=b""):
    """One request with header bytes exactly as given; (status, parsed JSON body)."""
    parts = urlsplit(daemon.api_url)
    head = b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    raw = (
        method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head
        + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )  # fmt: skip
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_text, _, payload = data.partition(b"\r\n\r\n")
    status = int(head_text.split(b" ", 2)[1])
    try:
        parsed = json.loads(payload)
    except ValueError:
        parsed = None
    return status, parsed


@pytest.fixture(scope="module")
def admin(module_daemon) -> bytes:
    return token(module_daemon, "ADMIN").encode()


@pytest.mark.parametrize("path", [b"/network/device", APN_PATH])
def test_a_bearer_token_that_is_not_utf8_is_401_not_500(module_daemon, path):
    status, body = _send(module_daemon, b"GET", path, [(b"Authorization", b"Bearer \xff\xfe")])
    assert status == 401, body
    if path == APN_PATH:
        assert (body["Code"], body["ErrorCode"], body["Success"]) == (401, 4010, False)
    else:
        assert body["code"] == 401 and body["message"] == "unauthorized"


def test_a_content_type_that_is_not_utf8_is_415_in_the_error_shape(module_daemon, admin):
    status, body = _send(
        module_daemon, b"POST", b"/network/device",
        [(b"Authorization", b"Bearer " + admin), (b"Content-Type", b"application/\xffjson")],
        b"{}",
    )  # fmt: skip
    assert status == 415, body
    assert body["code"] == 415 and body["message"] == "unsupported_media_type"


def test_apn_a_content_type_that_is_not_utf8_is_415_in_the_wrapper(module_daemon, admin):
    status, body = _send(
        module_daemon, b"POST", APN_PATH,
        [(b"Authorization", b"Bearer " + admin), (b"Content-Type", b"application/\xffjson")],
        b"{}",
    )  # fmt: skip
    assert status == 415, body
    assert (body["Code"], body["ErrorCode"], body["Success"]) == (415, 4150, False)
