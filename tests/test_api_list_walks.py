"""Lists walked page by page as an operator's script walks them, while other clients create
and delete records: each record that exists throughout is seen once, and every page's
total counts what the walk can reach. And filters as scripts write them."""

from __future__ import annotations

from typing import Any

import pytest

from apiclient import Api


@pytest.fixture(scope="module")
def world(module_world):
    return module_world


def _device(world, serial: str, customer: str = "own") -> str:
    body = {"serialNumber": serial, "model": world.model, "customer": world.customers[customer]}
    reply = world.api.post("/network/device", body)
    assert reply.status == 201, reply.body
    return reply.body["_id"]


def _walk(api: Api, path: str, limit: int, between=None, **query: Any) -> list[str]:
    """Every page of ``path`` by ``after``; ``between(seen)`` runs after each page."""
    seen: list[str] = []
    after = None
    while True:
        params = {**query, "limit": limit, **({"after": after} if after else {})}
        reply = api.get(path, query=params)
        assert reply.status == 200, reply.body
        assert reply.body["limit"] == limit and reply.body["offset"] == 0
        seen += [item["_id"] for item in reply.body["items"]]
        if len(reply.body["items"]) < limit:
            return seen
        after = seen[-1]
        if between is not None:
            between(seen)


def test_a_walk_by_after_skips_no_device_while_others_come_and_go(world) -> None:
    stays = [_device(world, f"WALK{n:04d}") for n in range(60)]
    passed: list[str] = []

    def churn(seen: list[str]) -> None:
        # delete one the walk has passed (under an offset, the next page would start one
        # record too late) and create one
        victim = next(d for d in seen if d in stays)
        stays.remove(victim)
        passed.append(victim)
        assert world.api.delete(f"/network/device/{victim}").status == 202
        _device(world, f"WALKNEW{len(passed):03d}")

    seen = _walk(world.api, "/network/device", 7, churn, q="walk")
    assert len(seen) == len(set(seen))
    assert set(stays) <= set(seen)
    # the total counts every match, wherever the page starts
    last = world.api.get("/network/device", query={"q": "walk", "after": seen[-1]})
    assert last.body["items"] == [] and last.body["total"] == len(stays) + len(passed)


def test_after_takes_an_id_and_keeps_to_the_tenancy(world) -> None:
    other = _device(world, "WALKOTHER", customer="other")
    mine = _device(world, "WALKMINE")
    owner = world.as_("OWNER")
    # another tenant's id is a place in the order like any other: nothing of its own shows
    reply = owner.get("/network/device", query={"after": other, "q": "walkmine"})
    assert [d["_id"] for d in reply.body["items"]] == [mine] and reply.body["total"] == 1
    assert owner.get("/network/device", query={"after": mine.upper()}).body["items"] == []
    for bad in ("", "12", "x" * 24):
        reply = owner.get("/network/device", query={"after": bad})
        assert (reply.status, reply.body["message"]) == (400, "after"), bad


def test_internet_accounts_and_customers_walk_by_after(world) -> None:
    customer = world.customers["subs_customer"]
    made = []
    for n in range(12):
        reply = world.api.post("/internet/account", {"customer": customer, "name": f"L{n}"})
        assert reply.status == 201, reply.body
        made.append(reply.body["_id"])
    assert _walk(world.api, "/internet/account", 5, customer=customer) == made
    reseller = world.as_("RESELLER")
    tenancy = reseller.get("/customer", query={"limit": 1000}).body["items"]
    assert _walk(reseller, "/customer", 2) == [c["_id"] for c in tenancy]


def test_a_search_that_is_not_utf8_is_refused_not_garbled(world) -> None:
    name = "Caf\u00e9 WALKUTF8"
    body = {"serialNumber": "WALKUTF8", "model": world.model, "customer": world.customers["own"]}
    assert world.api.post("/network/device", {**body, "name": name}).status == 201
    found = world.api.request("GET", "/network/device?q=caf%C3%A9+walkutf8")
    assert [d["name"] for d in found.body["items"]] == [name]
    # the same search in Latin-1 (a script that encoded it so): not a search for U+FFFD
    # that finds nothing, as if there were nothing to find
    for query in ("q=caf%E9+walkutf8", "limit=5&q=%C3", "q=walk&customer=%ff"):
        reply = world.api.request("GET", f"/network/device?{query}")
        assert reply.status == 400, (query, reply.body)
        assert reply.body["message"] in ("q", "customer") and "UTF-8" in reply.body["description"]
    reply = world.api.request("GET", "/internet/account?device=%ff")
    assert (reply.status, reply.body["message"]) == (400, "device")


def test_the_audit_log_walks_by_before_while_writes_come_first(world) -> None:
    api = world.api
    for n in range(6):
        api.post("/customer", {"name": f"Audit walk {n}"})
    start = api.get("/audit", query={"limit": 1000}).body["items"]
    seen: list[str] = []
    before = None
    while True:
        query = {"limit": 4, **({"before": before} if before else {})}
        reply = api.get("/audit", query=query)
        assert reply.status == 200, reply.body
        seen += [entry["_id"] for entry in reply.body["items"]]
        if len(reply.body["items"]) < 4:
            break
        before = seen[-1]
        # a write meanwhile is the newest entry: an offset would show one entry again
        assert api.post("/customer", {"name": "Audit walk meanwhile"}).status == 201
    assert seen == [entry["_id"] for entry in start]
    reply = api.get("/audit", query={"before": "0" * 24})
    assert (reply.status, reply.body["message"]) == (400, "before")


@pytest.mark.parametrize("path", ["/network/device", "/internet/account", "/customer", "/audit"])
def test_page_numbers_are_digits_as_written(world, path: str) -> None:
    # int() reads "1_0" as 10, "+5" as 5, " 1" as 1 and Arabic-Indic digits as digits: a
    # typo or a script's bug, answered as if the page had been asked for as meant.
    for query in ("limit=1_0", "limit=%2B5", "limit=%201", "offset=%D9%A1", "offset=0x10"):
        reply = world.api.request("GET", f"{path}?{query}")
        assert reply.status == 400, (path, query, reply.body)
        assert reply.body["message"] == query.split("=")[0], (path, query)
        assert "integer" in reply.body["description"]
    assert world.api.request("GET", f"{path}?limit=2&offset=0").status == 200
    reply = world.api.request("GET", f"{path}?offset=-1")
    assert (reply.status, reply.body["message"]) == (400, "offset")
