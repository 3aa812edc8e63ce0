"""Lines whose router's record was deleted while an upgrade of theirs was pending, over real
HTTP on both store backends: the upgrade still ends the line it was confirmed to replace
when it starts, and the customer's new router takes over both the upgrade and the line
still in use, although the line in use handed its address claim to the upgrade."""

from __future__ import annotations

import time

import pytest

from api_world import World, device_body, token
from conftest import BACKENDS, lazy_world, wait_for

PAST = "2016-01-01T00:00:00Z"


@pytest.fixture(scope="module", params=BACKENDS)
def backend_daemon(request, module_daemon_factory):
    """One daemon per backend for the module: SQLite, then PostgreSQL."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_cluster").new_database()
        return module_daemon_factory(store={"url": url})
    return module_daemon_factory()


@pytest.fixture(scope="module")
def admin_token(backend_daemon) -> str:
    return token(backend_daemon, "ADMIN")


@pytest.fixture
def world(backend_daemon, admin_token) -> World:
    return lazy_world(backend_daemon, admin_token)


def router_of(world: World, serial: str) -> str:
    body = {**device_body(world, "own", serial), "wifi": None, "dhcp": None}
    reply = world.api.post("/network/device", body)
    assert reply.status == 201, reply.body
    return reply.body["_id"]


def line(world: World, device: str | None, ip: str, start: str, customer: str = "own"):
    """A line ordered for ``device`` and confirmed with ``ip`` (a /30, its gateway the
    address below) from ``start``; the confirm's reply."""
    body = {"customer": world.customers[customer], "device": device, "name": "Fibre 1000"}
    reply = world.api.post("/internet/account", body)
    assert reply.status == 201, reply.body
    prefix, last = ip.rsplit(".", 1)
    net = {"ipAddress": ip, "subnet": "255.255.255.252", "gateway": f"{prefix}.{int(last) - 1}"}
    confirmed = world.api.post(
        f"/internet/account/{reply.body['_id']}/confirm", {"startDate": start, "net": net}
    )
    return reply.body["_id"], confirmed


def confirmed(world: World, device: str | None, ip: str, start: str, **kw) -> str:
    account, reply = line(world, device, ip, start, **kw)
    assert reply.status == 200, reply.body
    return account


def state(world: World, account: str) -> str:
    return world.api.get(f"/internet/account/{account}").body["state"]


def ends_of(world: World, account: str) -> list[dict]:
    entries = world.api.get("/audit", query={"limit": 1000}).body["items"]
    return [e for e in entries if e.get("resourceId") == account and e["action"] == "internet.end"]


def test_an_upgrade_ends_the_line_it_replaces_though_the_routers_record_was_deleted(
    world: World,
):
    # Two routers, each on a line, each with an upgrade due in a moment: one keeps the
    # customer's address (the claim moves to the upgrade), the other brings a new one.
    keeps, moves = router_of(world, "UPGONE-1"), router_of(world, "UPGONE-2")
    kept_old = confirmed(world, keeps, "203.0.113.102", PAST)
    moved_old = confirmed(world, moves, "203.0.113.106", PAST)
    start = time.time() + 1.5
    soon = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start)) + "Z"
    kept_new = confirmed(world, keeps, "203.0.113.102", soon)
    moved_new = confirmed(world, moves, "203.0.113.110", soon)
    # Both records are deleted (never seen: at once) before the upgrades start.
    for device in (keeps, moves):
        assert world.api.delete(f"/network/device/{device}").status == 202
    assert state(world, kept_old) == state(world, moved_old) == "ACTIVE"

    # At their start the upgrades end the lines they were confirmed to replace, as they
    # would have through the router.
    wait_for(lambda: state(world, kept_old) == state(world, moved_old) == "ENDED", timeout=15)
    assert state(world, kept_new) == state(world, moved_new) == "ACTIVE"
    for old, new, ip in ((kept_old, kept_new, "203.0.113.102"),
                         (moved_old, moved_new, "203.0.113.106")):  # fmt: skip
        [entry] = ends_of(world, old)
        assert entry["before"] == {"state": "ACTIVE", "device": None, "ipAddress": ip}
        after = entry["after"]
        assert (after["reason"], after["replacedBy"]) == ("superseded", new)
        assert (
            entry["tokenName"] == "internet activation"
            and entry["customer"] == (world.customers["own"])
        )
        assert ends_of(world, new) == []
    # The replaced line's address went back to the provider: another customer's line takes
    # it; the kept address is the live upgrade's.
    confirmed(world, None, "203.0.113.106", PAST, customer="other")
    _, reply = line(world, None, "203.0.113.102", PAST, customer="other")
    assert reply.status == 409 and reply.body["message"] == "net.ipAddress", reply.body


def test_the_new_router_takes_over_the_line_in_use_whose_upgrade_holds_its_address(
    world: World,
):
    # The router's upgrade keeps the customer's address (the claim moves to it) and is
    # due later; the router's record is deleted rather than swapped, and the customer's
    # new router gets a line with that address: it takes over the upgrade and the line
    # still in use alike (as it takes over any line that names no router).
    gone = router_of(world, "TAKEUP-1")
    current = confirmed(world, gone, "203.0.113.114", PAST)
    upgrade = confirmed(world, gone, "203.0.113.114", "2099-01-01T00:00:00Z")
    assert world.api.delete(f"/network/device/{gone}").status == 202
    new = confirmed(world, router_of(world, "TAKEUP-2"), "203.0.113.114", PAST)

    assert state(world, new) == "ACTIVE"
    assert state(world, upgrade) == "ENDED" and state(world, current) == "ENDED"
    for old in (current, upgrade):
        [entry] = ends_of(world, old)
        assert entry["before"]["ipAddress"] == "203.0.113.114"
        assert entry["before"]["device"] is None
        after = entry["after"]
        assert (after["reason"], after["replacedBy"]) == ("taken_over", new)
