"""A path with a trailing slash, or with its route's words in another case, is the route, on
every route the API's own /openapi.json lists (a route added later is covered without
being named here); ids and keys keep their case; the answer comes at once, no redirect."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from apiclient import Api, Reply
from apn_client import apns_path

_PARAM = re.compile(r"\{[^}]+\}")
#: a value for each path parameter that names nothing (so no test writes a record)
_VALUES = {
    "{foreignaccountkey}": "NOBODY-PATHS",
    "{foreignkey}": "fleet",
    "{device}": "001010000000009",
}
_NO_ID = "0" * 24
_WRITES = {"post", "put", "patch"}


@pytest.fixture(scope="module")
def admin(module_world) -> Api:
    return module_world.api


@pytest.fixture(scope="module")
def doc(admin: Api) -> dict[str, Any]:
    reply = admin.get("/openapi.json")
    assert reply.status == 200
    return reply.body


def _concrete(template: str) -> str:
    return _PARAM.sub(lambda m: _VALUES.get(m.group(0), _NO_ID), template)


def _swapped(path: str, template: str) -> str:
    """``path`` with the route's own words in swapped case (parameters as they are)."""
    words = template.split("/")
    return "/".join(
        part if word.startswith("{") else part.swapcase()
        for part, word in zip(path.split("/"), words, strict=True)
    )


def _what(reply: Reply) -> tuple[int, Any, str, bool]:
    """What a client branches on: the status, the error's key (the operator API's
    ``message``, the APN API's ``ErrorCode``) and the media type; and whether the path named
    no route at all (the operator API's 404 for that and for no record share their key)."""
    body = reply.body if isinstance(reply.body, dict) else {}
    key = body.get("message", body.get("ErrorCode"))
    media = reply.headers.get("Content-Type", "").split(";")[0]
    no_route = key == 4040 or str(body.get("description", "")).startswith("No resource at")
    return reply.status, key, media, no_route


def _call(api: Api, method: str, path: str) -> Reply:
    # (a write gets an empty object: refused for its missing members, which is an answer of
    # the route's own, and writes nothing)
    body = {} if method in _WRITES else None
    return api.request(method.upper(), path, body, headers={"Accept": "application/json"})


def test_every_documented_route_takes_a_trailing_slash_and_any_case(admin: Api, doc):
    checked = []
    for template, operations in doc["paths"].items():
        path = _concrete(template)
        for method in operations:
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            want = _what(_call(admin, method, path))
            assert not want[3], (method, path, want)
            for variant in (path + "/", _swapped(path, template), _swapped(path, template) + "/"):
                got = _call(admin, method, variant)
                assert _what(got) == want, (method, variant, got.status, got.raw[:300])
                assert "Location" not in got.headers or got.status == 201, got.headers
            checked.append((method, template))
    # the document lists the API: the device routes, the APN ones and the health checks
    assert ("get", "/healthz") in checked and ("post", "/network/device") in checked
    apn_device = "/v1/accounts/{foreignaccountkey}/networks/{foreignkey}/devices/apns/{device}"
    assert ("delete", apn_device) in checked


def test_a_post_with_a_trailing_slash_is_taken_there_not_redirected(admin: Api):
    name = f"Slash {uuid.uuid4().hex[:8]}"
    reply = admin.post("/Customer/", {"name": name, "type": "CUSTOMER", "reseller": None})
    assert reply.status == 201, reply.raw
    assert admin.get(f"/customer/{reply.body['_id']}/").body["name"] == name
    account = f"SLASH-{uuid.uuid4().hex[:8]}"
    body = {"CLI": "(+45)23456789", "Hints": {"BillingCycleDay": 1, "EmailContact": "a@b.example"}}
    shouted = "/V1/Accounts/" + apns_path(account, "fleet").removeprefix("/v1/accounts/")
    reply = admin.post(shouted + "/", body)
    assert reply.status == 202, reply.raw
    assert admin.get(apns_path(account, "fleet", "(+45)23456789") + "/").status == 200


def test_keys_keep_their_case_and_other_paths_stay_unknown(admin: Api):
    account = f"CASE-{uuid.uuid4().hex[:8]}"
    body = {"CLI": "(+45)34567890", "Hints": {"BillingCycleDay": 1, "EmailContact": "a@b.example"}}
    assert admin.post(apns_path(account, "Fleet"), body).status == 202
    # another case of a key is another account, or network: not this device
    lower = admin.get(apns_path(account.lower(), "Fleet", "(+45)34567890") + "/")
    assert lower.status == 404 and lower.body["ErrorCode"] == 4041, lower.raw
    other = admin.get(apns_path(account, "fleet", "(+45)34567890") + "/")
    assert other.status == 404 and other.body["ErrorCode"] in (4042, 4043), other.raw
    # only one slash is forgiven, and only at the end
    for path in ("/customer//", "//customer", "/network//device", "/customers/", "/"):
        assert admin.get(path).status == 404, path
    # a word written with escapes is the word, as on the exact route (an undecodable one
    # is no word, not a 500)
    assert admin.get("/Network/%64evice/").status == 200
    for path in ("/network/%ffdevice/", "/network%2Fdevice/", "/Networ%E2%84%AA/device"):
        assert admin.get(path).status == 404, path


def test_a_method_the_route_lacks_is_its_405_in_its_own_wrapper(admin: Api):
    # (the network's wrapper, as its GET answers, not the device's: a typed client reads it)
    network = "/v1/accounts/NOBODY-PATHS/networks/fleet"
    want = admin.request("DELETE", network, headers={"Accept": "application/xml"})
    assert want.status == 405
    root = want.raw.split(b" ", 1)[0]
    assert root.startswith(b"<PBPRReturnOfAccountNetwork"), want.raw[:200]
    for variant in (network + "/", "/V1/ACCOUNTS/NOBODY-PATHS/NETWORKS/fleet/"):
        got = admin.request("DELETE", variant, headers={"Accept": "application/xml"})
        assert got.status == 405 and got.raw.split(b" ", 1)[0] == root, (variant, got.raw[:200])
