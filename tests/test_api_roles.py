"""Who may do what: the four roles x own customer / a sub-reseller's customer / another
customer, for create, get, list, update and delete (seed 000's access levels)."""

from __future__ import annotations

import pytest

from api_world import World, build_world, device_body

ROLES = ["ADMIN", "RESELLER", "OWNER", "MANAGER"]
TARGETS = ["own", "subs_customer", "other"]
# RESELLER: its customers and its sub-resellers' customers at any depth; OWNER and MANAGER:
# their own customer; ADMIN: everything.
ALLOWED = {
    "ADMIN": {"own", "subs_customer", "other"},
    "RESELLER": {"own", "subs_customer"},
    "OWNER": {"own"},
    "MANAGER": {"own"},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from conftest import start_daemon, write_config

    tmp = tmp_path_factory.mktemp("roles")
    daemon = start_daemon(write_config(tmp), tmp / "acsd.db")
    world = build_world(daemon)
    yield world
    daemon.stop()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("target", TARGETS)
def test_access_matrix(world: World, role: str, target: str):
    api = world.as_(role)
    admin = world.api
    allowed = target in ALLOWED[role]
    serial = f"M{role[:3]}{target[:3]}".upper()
    status = 201 if allowed else 403

    # (the seed's body less its mvnoAccount: naming an APN account is ADMIN's or the
    # account token's whatever the role, test_naming_another_tenants_apn_account_...)
    body = device_body(world, target, serial + "C")
    if role != "ADMIN":
        body.pop("mvnoAccount")
    created = api.post("/network/device", body)
    assert created.status == status, created.body
    if not allowed:
        assert created.body["message"] == "access_denied"

    # A device the ADMIN created for that customer: get, list, update, delete.
    device = admin.post("/network/device", device_body(world, target, serial + "X")).body
    path = f"/network/device/{device['_id']}"
    got = api.get(path)
    assert got.status == (200 if allowed else 404)
    listed = api.get("/network/device", query={"limit": 1000}).body["items"]
    assert (device["_id"] in {d["_id"] for d in listed}) == allowed
    if not allowed:
        # Not even filtering by the customer shows it.
        reply = api.get("/network/device", query={"customer": world.customers[target]})
        assert reply.status == 403
    patched = api.patch(path, {"name": "mine now"})
    assert patched.status == (200 if allowed else 404)
    deleted = api.delete(path)
    assert deleted.status == (202 if allowed else 404)
    assert admin.get(path).status == (404 if allowed else 200)


@pytest.mark.parametrize("role", ROLES)
def test_customer_tenancy(world: World, role: str):
    api = world.as_(role)
    visible = {c["_id"] for c in api.get("/customer", query={"limit": 1000}).body["items"]}
    ids = world.customers
    expected = {
        "ADMIN": set(ids.values()),
        "RESELLER": {ids["reseller"], ids["sub"], ids["own"], ids["subs_customer"]},
        "OWNER": {ids["own"]},
        "MANAGER": {ids["own"]},
    }[role]
    # Other tests in this module add customers below the sub-reseller; those are fine to
    # see for whoever sees the sub-reseller. What must never show is outside the tenancy.
    forbidden = set(ids.values()) - expected
    assert expected <= visible and not visible & forbidden
    if role in ("OWNER", "MANAGER"):
        assert visible == expected
    assert api.get(f"/customer/{ids['other']}").status == (200 if role == "ADMIN" else 404)
    # Resellers create customers below themselves; owners and managers create none.
    reply = api.post("/customer", {"name": f"New {role}", "type": "CUSTOMER",
                                   "reseller": ids["sub"]})  # fmt: skip
    assert reply.status == (201 if role in ("ADMIN", "RESELLER") else 403)
    top = api.post("/customer", {"name": f"Top {role}", "type": "CUSTOMER", "reseller": None})
    assert top.status == (201 if role == "ADMIN" else 403)
    # A role that may never create one is told so whatever its body holds.
    broken = api.post("/customer", raw=b"{name: 1")
    assert broken.status == (403 if role in ("OWNER", "MANAGER") else 400)
    model = api.post("/network/model", {"name": f"M {role}", "type": "ONT"})
    assert model.status == (201 if role == "ADMIN" else 403)
    assert api.get("/network/model").status == 200


@pytest.mark.parametrize("role", ["RESELLER", "OWNER", "MANAGER"])
def test_another_tenants_records_are_answered_as_missing_ones(world: World, role: str):
    """Ids are predictable (a creation time and a counter, ObjectId-like): a token that got
    403 for another tenant's id and 404 for a free one could tell which devices, customers
    and internet accounts exist, and when each was made. Both get the same 404."""
    api = world.as_(role)
    admin = world.api
    device = admin.post("/network/device", device_body(world, "other", f"HIDDEN{role[:3]}")).body
    account = admin.post(
        "/internet/account", {"customer": world.customers["other"], "name": "Fiber"}
    ).body
    missing = "f" * 24
    for path in (
        "/network/device/{}",
        "/customer/{}",
        "/internet/account/{}",
    ):
        real = {"/network/device/{}": device["_id"], "/customer/{}": world.customers["other"],
                "/internet/account/{}": account["_id"]}[path]  # fmt: skip
        hidden, free = api.get(path.format(real)), api.get(path.format(missing))
        assert (hidden.status, hidden.body["message"]) == (free.status, free.body["message"])
        assert hidden.status == 404, (path, hidden.body)
        assert hidden.body["description"] == free.body["description"].replace(missing, real)
    for reply in (
        api.patch(f"/network/device/{device['_id']}", {"name": "mine now"}),
        api.delete(f"/network/device/{device['_id']}"),
    ):
        assert (reply.status, reply.body["message"]) == (404, "not_found")
    if role != "MANAGER":  # (a MANAGER may order no line at all: 403 whatever it names)
        body = {"customer": world.customers["own"], "device": device["_id"], "name": "x"}
        named = api.post("/internet/account", body).body
        free = api.post("/internet/account", {**body, "device": missing}).body
        assert named == free and named["message"] == "device"
    # Creates naming a customer: another tenant's and a free id are refused alike (the
    # seed's 403), the body otherwise valid, so nothing else tells them apart.
    creates = (
        ("/network/device", lambda c: {**device_body(world, "own", f"NEW{role[:3]}"),
                                       "customer": c}),
        ("/internet/account", lambda c: {"customer": c, "name": "x"}),
        ("/customer", lambda c: {"name": "x", "type": "CUSTOMER", "reseller": c}),
    )  # fmt: skip
    for path, body_for in creates:
        hidden = api.post(path, body_for(world.customers["other"]))
        free = api.post(path, body_for(missing))
        assert (hidden.status, hidden.body) == (free.status, free.body), path
        assert (hidden.status, hidden.body["message"]) == (403, "access_denied"), path
    after = admin.get(f"/network/device/{device['_id']}").body  # nothing changed
    assert after["name"] == device["name"] and after["state"] == device["state"]
