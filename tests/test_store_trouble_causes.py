"""When the database is in trouble, a client or a monitor can tell which trouble without
reading English: the operator API's 503 names it in ``cause``, the APN API's in
``Meta.Cause``, ``/readyz`` in its body, and ``acsd_store_refusals_total`` counts the
refused requests and sessions by it. One daemon on SQLite for the module, driven into
each trouble that is cheap to cause here (a lock another process holds, then its WAL
removed underneath: that one last, it lasts until a restart). A full disk, PostgreSQL down
or read-only and a daemon draining are in their own modules' tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from acsd.cwmp.soap import Envelope, parse_envelope, render_envelope
from api_world import device_body
from apiclient import readyz, store_refusals
from conftest import lazy_world, wait_for
from cpe_steps import NS, TREE, answer_request
from spec_check import mismatches
from wire import Answer, Wire, envelope, inform_body

APN_DEVICES = "/v1/accounts/{foreignaccountkey}/networks/{foreignkey}/devices/apns"


@pytest.fixture(scope="module")
def daemon(module_daemon_factory):
    # a lock is waited for half a second, not five, before the request is refused
    return module_daemon_factory(store={"busy_timeout": 0.5})


@pytest.fixture(scope="module")
def world(daemon):
    return lazy_world(daemon)


def _session(daemon, serial: str) -> Answer:
    """A router's whole session; its last answer (204 once its result is committed)."""
    wire = Wire(daemon.cwmp_url)
    answer = wire.post(envelope(inform_body(serial), ns=NS))
    assert answer.status == 200, answer.text
    answer = wire.post(None)
    while answer.status == 200:
        env = parse_envelope(answer.body)
        reply = Envelope(body=answer_request(env.body, dict(TREE)), cwmp_ns=NS, id=env.id)
        answer = wire.post(render_envelope(reply))
    return answer


def _apn_create(world, account: str):
    body = {"CLI": "(+45)12345678", "Hints": {"BillingCycleDay": 1, "EmailContact": "a@b.dk"}}
    return world.api.post(f"/v1/accounts/{account}/networks/fleet/devices/apns", body)


def test_a_lock_held_elsewhere_is_named_busy_to_clients_monitors_and_metrics(daemon, world):
    doc = world.api.get("/openapi.json").body
    assert readyz(daemon.api_url) == (200, {"ready": True})
    assert store_refusals(daemon.api_url) == {}
    holder = sqlite3.connect(daemon.db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        reply = world.api.post("/customer", {"name": "Locked out", "type": "CUSTOMER"})
        assert reply.status == 503, reply.body
        # the seeds' form, with the key of the trouble beside its words
        assert reply.body["message"] == "unavailable" and reply.body["cause"] == "busy"
        assert reply.body["description"].startswith("The database is busy")
        assert set(reply.body) == {"code", "message", "description", "cause"}
        apn = _apn_create(world, "BUSYCAUSE")
        assert (apn.status, apn.body["ErrorCode"]) == (503, 5030), apn.body
        assert apn.body["Meta"] == {"Cause": "busy"}, apn.body
        for path, answer in (("/customer", reply), (APN_DEVICES, apn)):
            found = mismatches(doc, "POST", path, 503, answer.headers["Content-Type"], answer.body)
            assert found == [], (path, found)
        # the router's session ends in 503: what it learned could not be kept
        ended = _session(daemon, "BUSYCAUSE01")
        assert ended.status == 503 and ended.headers["Retry-After"] == "10"
        # /readyz: not ready, and why (its own write probe meets the lock)
        _, body = wait_for(lambda: (r := readyz(daemon.api_url))[0] == 503 and r, 5)
        assert body["ready"] is False and body["cause"] == "busy", body
        assert body["description"] == reply.body["description"]
        assert mismatches(doc, "GET", "/readyz", 503, "application/json", body) == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # each refusal counted once, by where and why
    assert store_refusals(daemon.api_url) == {("api", "busy"): 2, ("cwmp", "busy"): 1}
    assert wait_for(lambda: readyz(daemon.api_url)[0] == 200, 5)
    assert readyz(daemon.api_url) == (200, {"ready": True})
    reply = world.api.post("/customer", {"name": "Let in", "type": "CUSTOMER"})
    assert reply.status == 201 and "cause" not in reply.body


def test_files_removed_underneath_are_named_restart_needed(daemon, world):
    # (last: acsd refuses writes from now on until it is restarted)
    before = store_refusals(daemon.api_url)
    for suffix in ("-wal", "-shm"):
        Path(f"{daemon.db}{suffix}").unlink()

    serials = (f"GONECAUSE{n:03d}" for n in range(1000))

    def create():
        return world.api.post("/network/device", device_body(world, "own", next(serials)))

    # (acsd notices within a second or so; writes before that go to the files it holds)
    refused = wait_for(lambda: (r := create()).status != 201 and r, 5)
    assert refused.status == 503, refused.body
    assert refused.body["cause"] == "restart_needed", refused.body
    assert refused.headers["Retry-After"] == "600"
    assert _apn_create(world, "GONECAUSE").body["Meta"] == {"Cause": "restart_needed"}

    def why_not_ready():
        answer = readyz(daemon.api_url)
        return answer[1].get("cause") == "restart_needed" and answer

    # (the last probe's answer, before the files went, stands for a second)
    status, body = wait_for(why_not_ready, 5)
    assert status == 503
    assert body["description"] == refused.body["description"]
    after = store_refusals(daemon.api_url)
    assert after[("api", "restart_needed")] >= 2
    assert {k: v for k, v in after.items() if k[1] != "restart_needed"} == before
