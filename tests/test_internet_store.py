"""Internet accounts in the store: confirm and its audit entry in one transaction, the
address that only one account may have, activation on the start date (the router gets a new
revision), and what a router's session looks up; plus the WAN settings an account asks for."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from acsd.provisioning.internet import internet_settings
from acsd.store import ConflictError, DeviceRecord, SqliteStore, open_store
from acsd.store.base import AuditRecord, InternetAccountQuery, InternetAccountRecord, StateError

NOW = 1_700_000_000.0
NET = {"ipAddress": "203.0.113.10", "subnet": "255.255.255.248", "gateway": "203.0.113.9"}


async def router(store: SqliteStore, serial: str, state: str = "ACTIVE") -> DeviceRecord:
    return await store.upsert_device(
        DeviceRecord(id="", serial_number=serial, customer="c1", state=state)
    )


async def account(store: SqliteStore, device: str | None = None) -> InternetAccountRecord:
    record = InternetAccountRecord(id="", customer="c1", name="Fibre", device=device)
    return await store.create_internet_account(record)


async def confirm(store: SqliteStore, account_id: str, start: float, ip: str = "203.0.113.10"):
    body = {"startDate": "whenever", "net": {**NET, "ipAddress": ip}}
    entry = AuditRecord(id="", at=NOW, action="internet.confirm", resource="internet_account")
    return await store.confirm_internet_account(
        account_id, confirm=body, start_date=start, ip_address=ip, now=NOW, audit=entry
    )


async def test_an_account_marks_its_router_and_operator_writes_keep_the_mark(store):
    device = await router(store, "R1")
    assert device.internet_account is None
    ordered = await account(store, device.id)
    marked = await store.get_device(device.id)
    assert marked is not None and marked.internet_account == ordered.id
    marked.name = "renamed"
    kept = await store.write_device(marked)
    assert kept.internet_account == ordered.id


async def test_confirm_due_activates_the_router_in_the_same_transaction(store):
    device = await router(store, "R1")
    ordered = await account(store, device.id)
    stored, woken = await confirm(store, ordered.id, start=NOW - 60)
    assert stored.state == "ACTIVE" and stored.ip_address == "203.0.113.10"
    assert woken is not None and woken.id == device.id
    assert (woken.revision, woken.state, woken.jobs) == (device.revision + 1, "PROVISIONING", 1)
    found = await store.internet_account_for_device(device.id, NOW)
    assert found is not None and found.confirm == stored.confirm
    entries, _ = await store.list_audit()
    assert [e.resource_id for e in entries if e.action == "internet.confirm"] == [ordered.id]
    with pytest.raises(StateError):
        await confirm(store, ordered.id, start=NOW - 60)


async def test_one_address_one_account(store):
    first, second = await account(store), await account(store)
    await confirm(store, first.id, start=NOW + 60)
    with pytest.raises(ConflictError):
        await confirm(store, second.id, start=NOW + 60)
    got = await store.get_internet_account(second.id)
    assert got is not None and got.state == "ORDERED" and got.ip_address is None
    stored, _ = await confirm(store, second.id, start=NOW + 60, ip="203.0.113.11")
    assert stored.state == "CONFIRMED"


async def test_a_future_account_takes_effect_at_its_start_date(store):
    device = await router(store, "R1")
    leaving = await router(store, "R2")
    later = await account(store, device.id)
    gone = await account(store, leaving.id)
    leaving.state = "DELETING"  # after its line was ordered
    await store.write_device(leaving)
    _, woken = await confirm(store, later.id, start=NOW + 3600)
    await confirm(store, gone.id, start=NOW + 1800, ip="203.0.113.12")
    assert woken is None
    assert await store.internet_account_for_device(device.id, NOW) is None
    assert await store.next_internet_start() == NOW + 1800
    assert await store.activate_internet_accounts(NOW) == []

    def query(state: str, now: float) -> InternetAccountQuery:
        return InternetAccountQuery(state=state, now=now)

    assert (await store.query_internet_accounts(query("CONFIRMED", NOW)))[1] == 2
    # Read after the start date, before any sweep: ACTIVE already.
    assert (await store.query_internet_accounts(query("ACTIVE", NOW + 3600)))[1] == 2
    record = await store.get_internet_account(later.id)
    assert record is not None and record.effective_state(NOW + 3600) == "ACTIVE"

    woken = await store.activate_internet_accounts(NOW + 3600)
    # The router being released is left alone; the other gets a new revision.
    assert [d.id for d in woken] == [device.id]
    assert woken[0].state == "PROVISIONING" and woken[0].revision == device.revision + 1
    assert await store.next_internet_start() is None
    assert await store.activate_internet_accounts(NOW + 7200) == []
    active = await store.get_internet_account(later.id)
    assert active is not None and active.state == "ACTIVE"
    found = await store.internet_account_for_device(device.id, NOW + 3600)
    assert found is not None and found.id == later.id


async def test_a_line_replaced_by_a_later_one_ends_and_frees_its_address(store):
    # An upgrade: the router's new line takes over at its start date; the old line is
    # ENDED and its address goes back to the provider, for another customer's line.
    device = await router(store, "R1")
    old, new = await account(store, device.id), await account(store, device.id)
    await confirm(store, old.id, start=NOW - 3600, ip="203.0.113.10")
    await confirm(store, new.id, start=NOW + 3600, ip="203.0.113.11")
    # until the new line starts, the old one holds its address
    other = await account(store)
    with pytest.raises(ConflictError):
        await confirm(store, other.id, start=NOW + 7200, ip="203.0.113.10")
    await store.activate_internet_accounts(NOW + 3600)
    ended = await store.get_internet_account(old.id)
    assert ended is not None and ended.state == "ENDED"
    assert ended.effective_state(NOW + 7200) == "ENDED"
    stored, _ = await confirm(store, other.id, start=NOW + 7200, ip="203.0.113.10")
    assert stored.state == "CONFIRMED"
    found = await store.internet_account_for_device(device.id, NOW + 7200)
    assert found is not None and found.id == new.id
    query = InternetAccountQuery(state="ENDED", now=NOW + 7200)
    assert [a.id for a in (await store.query_internet_accounts(query))[0]] == [old.id]
    # a confirm that takes effect at once ends the router's line in the same transaction
    second_router = await router(store, "R2")
    first, upgrade = await account(store, second_router.id), await account(store, second_router.id)
    await confirm(store, first.id, start=NOW - 7200, ip="203.0.113.13")
    await confirm(store, upgrade.id, start=NOW - 60, ip="203.0.113.14")
    states = [(await store.get_internet_account(a.id)).state for a in (first, upgrade)]
    assert states == ["ENDED", "ACTIVE"]


async def test_an_upgrade_may_keep_the_routers_address(store):
    # The customer's new line keeps the static address of the line it replaces: both hold
    # it until the new one starts; no other router's line may take it meanwhile.
    device, other_router = await router(store, "R1"), await router(store, "R2")
    old, new = await account(store, device.id), await account(store, device.id)
    await confirm(store, old.id, start=NOW - 3600, ip="203.0.113.10")
    stored, _ = await confirm(store, new.id, start=NOW + 3600, ip="203.0.113.10")
    assert stored.state == "CONFIRMED" and stored.ip_address == "203.0.113.10"
    for other in (await account(store, other_router.id), await account(store)):
        with pytest.raises(ConflictError):
            await confirm(store, other.id, start=NOW + 7200, ip="203.0.113.10")
    await store.activate_internet_accounts(NOW + 3600)
    states = [(await store.get_internet_account(a.id)).state for a in (old, new)]
    assert states == ["ENDED", "ACTIVE"]
    found = await store.internet_account_for_device(device.id, NOW + 3600)
    assert found is not None and found.id == new.id
    # at once: the old line ends in the confirm's own transaction
    third = await account(store, device.id)
    await confirm(store, third.id, start=NOW + 3700, ip="203.0.113.10")
    await store.activate_internet_accounts(NOW + 3700)
    states = [(await store.get_internet_account(a.id)).state for a in (new, third)]
    assert states == ["ENDED", "ACTIVE"]


async def test_no_account_is_ordered_for_a_router_being_deleted(store):
    # Its record goes at the router's next session, and the account's link with it.
    leaving = await router(store, "R3", state="DELETING")
    with pytest.raises(StateError, match="being deleted"):
        await account(store, leaving.id)
    with pytest.raises(StateError, match="being deleted"):
        await account(store, "0" * 24)  # gone already
    assert (await store.query_internet_accounts(InternetAccountQuery()))[1] == 0
    assert (await store.get_device(leaving.id)).internet_account is None


async def test_a_routerless_line_gives_way_to_the_customers_line_that_takes_its_addresses(
    store,
):
    """A line whose router record was deleted (device NULL) holds its addresses until the
    customer's line for the new router takes them: then it is ENDED, in the same confirm.
    Another customer's line, and a routerless line whose addresses are left alone, stay."""
    ranged = {"lanNet": "198.51.100.64", "lanSubnet": "255.255.255.240"}

    async def confirm_net(account_id: str, ip: str, **net: str):
        body = {"startDate": "whenever", "net": {**NET, "ipAddress": ip, **net}}
        return await store.confirm_internet_account(
            account_id, confirm=body, start_date=NOW - 60, ip_address=ip, now=NOW
        )

    old_router = await router(store, "GONE1")
    old = await account(store, old_router.id)
    await confirm_net(old.id, "203.0.113.10")
    in_range = await account(store)  # ordered for no router, its range taken below
    await confirm_net(in_range.id, "203.0.113.20", **ranged)
    kept = await account(store)
    await confirm_net(kept.id, "203.0.113.30")
    theirs = await store.create_internet_account(
        InternetAccountRecord(id="", customer="c2", name="Fibre")
    )
    await confirm_net(theirs.id, "203.0.113.40")
    assert await store.delete_device(old_router.id)

    # another customer's routerless line is no line of this one's: its address stays taken
    new_router = await router(store, "NEW1")
    new = await account(store, new_router.id)
    with pytest.raises(ConflictError):
        await confirm_net(new.id, "203.0.113.40")
    # the line moves to the new router: its address, and an address in a routerless range
    stored, _ = await confirm_net(new.id, "203.0.113.10", lanNet="198.51.100.64",
                                  lanSubnet="255.255.255.248")  # fmt: skip
    assert stored.state == "ACTIVE"
    states = {
        a.id: a.state for a in (await store.query_internet_accounts(InternetAccountQuery()))[0]
    }
    assert states == {
        old.id: "ENDED",
        in_range.id: "ENDED",
        kept.id: "ACTIVE",
        theirs.id: "ACTIVE",
        new.id: "ACTIVE",
    }


async def ends(store) -> dict[str, AuditRecord]:
    """The ``internet.end`` entries of the audit log, by the line they ended."""
    entries, _ = await store.list_audit(limit=1000)
    found = {e.resource_id: e for e in entries if e.action == "internet.end"}
    assert len(found) == sum(e.action == "internet.end" for e in entries)  # one per line
    return found


async def test_every_line_that_ends_has_an_audit_entry_saying_why(store):
    """Operators read in the audit log why a customer's static address moved: the line, its
    customer and addresses, the reason, the line that replaced it and who wrote."""
    billing = AuditRecord(
        id="", at=NOW, action="internet.confirm", resource="internet_account",
        token_id="t1", token_name="billing", role="ADMIN", request_id="r1",
    )  # fmt: skip

    async def confirm_by(account_id: str, start: float, ip: str, **net: str):
        body = {"startDate": "whenever", "net": {**NET, "ipAddress": ip, **net}}
        return await store.confirm_internet_account(
            account_id, confirm=body, start_date=start, ip_address=ip, now=NOW, audit=billing
        )

    device = await router(store, "R1")
    first, second, third = [await account(store, device.id) for _ in range(3)]
    await confirm_by(first.id, NOW - 7200, "203.0.113.10")
    # at the confirm: the router's earlier line ends in the confirm's transaction
    await confirm_by(second.id, NOW - 60, "203.0.113.10")
    entry = (await ends(store))[first.id]
    assert (entry.customer, entry.token_name, entry.role) == ("c1", "billing", "ADMIN")
    assert (entry.token_id, entry.request_id, entry.resource) == ("t1", "r1", "internet_account")
    assert entry.before == {"state": "ACTIVE", "device": device.id, "ipAddress": "203.0.113.10"}
    assert entry.after is not None
    assert entry.after["reason"] == "superseded" and entry.after["replacedBy"] == second.id
    assert entry.after["state"] == "ENDED" and "later line" in entry.after["description"]
    # at the start date: acsd itself ends it
    await confirm_by(third.id, NOW + 3600, "203.0.113.11")
    assert second.id not in await ends(store)
    await store.activate_internet_accounts(NOW + 3600)
    entry = (await ends(store))[second.id]
    assert entry.token_name == "internet activation" and entry.token_id is None
    assert entry.after is not None and entry.after["replacedBy"] == third.id
    assert entry.before is not None and entry.before["ipAddress"] == "203.0.113.10"

    # a routerless line taken over by the customer's line for the new router
    ranged = {"lanNet": "198.51.100.64", "lanSubnet": "255.255.255.240"}
    gone = await router(store, "GONE1")
    old = await account(store, gone.id)
    await confirm_by(old.id, NOW - 60, "203.0.113.20", **ranged)
    assert await store.delete_device(gone.id)
    new = await account(store, (await router(store, "NEW1")).id)
    await confirm_by(new.id, NOW - 30, "203.0.113.20")
    entry = (await ends(store))[old.id]
    assert entry.before == {"state": "ACTIVE", "device": None, "ipAddress": "203.0.113.20",
                            **ranged}  # fmt: skip
    assert entry.after is not None
    assert entry.after["reason"] == "taken_over" and entry.after["replacedBy"] == new.id
    assert entry.token_name == "billing"
    assert set(await ends(store)) == {first.id, second.id, old.id}


async def test_a_line_that_names_no_router_can_be_ended(store):
    operator = AuditRecord(id="", at=NOW, action="internet.end", resource="internet_account",
                           token_id="t2", token_name="noc", role="ADMIN")  # fmt: skip
    with pytest.raises(KeyError):
        await store.end_internet_account("0" * 24, now=NOW, audit=operator)
    # a router's line: the router holds its settings, its next line ends it
    device = await router(store, "R1")
    held = await account(store, device.id)
    await confirm(store, held.id, start=NOW - 60, ip="203.0.113.10")
    with pytest.raises(StateError, match=device.id):
        await store.end_internet_account(held.id, now=NOW, audit=operator)
    # its router's record deleted, nothing takes its address over: ended on request
    assert await store.delete_device(device.id)
    ended = await store.end_internet_account(held.id, now=NOW + 1, audit=operator)
    assert ended.state == "ENDED"
    stored = await store.get_internet_account(held.id)
    assert stored is not None and stored.state == "ENDED"
    entry = (await ends(store))[held.id]
    assert (entry.token_name, entry.customer) == ("noc", "c1")
    assert entry.before is not None and entry.before["ipAddress"] == "203.0.113.10"
    assert entry.after is not None and entry.after["reason"] == "ended"
    assert "replacedBy" not in entry.after
    # again: nothing changes, no second entry
    again = await store.end_internet_account(held.id, now=NOW + 2, audit=operator)
    assert again.state == "ENDED" and again.updated == NOW + 1
    assert list(await ends(store)) == [held.id]
    # its address is free for another line
    other = await account(store)
    stored, _ = await confirm(store, other.id, start=NOW - 60, ip="203.0.113.10")
    assert stored.state == "ACTIVE"
    # an order never confirmed, for no router, is withdrawn the same way
    ordered = await account(store)
    assert (await store.end_internet_account(ordered.id, now=NOW)).state == "ENDED"
    entry = (await ends(store))[ordered.id]
    assert entry.before == {"state": "ORDERED", "device": None, "ipAddress": None}


async def test_ending_an_upgrade_leaves_the_address_with_the_line_still_using_it(store):
    # The upgrade keeps the customer's address (the claim moves to it); the router's record
    # is deleted before it starts, and the upgrade is ended: the line in use keeps it.
    device = await router(store, "R1")
    current, upgrade = await account(store, device.id), await account(store, device.id)
    await confirm(store, current.id, start=NOW - 60, ip="203.0.113.10")
    await confirm(store, upgrade.id, start=NOW + 3600, ip="203.0.113.10")
    assert await store.delete_device(device.id)
    await store.end_internet_account(upgrade.id, now=NOW)
    kept = await store.get_internet_account(current.id)
    assert kept is not None and kept.state == "ACTIVE" and kept.ip_address == "203.0.113.10"
    with pytest.raises(ConflictError):
        await confirm(store, (await account(store)).id, start=NOW, ip="203.0.113.10")


async def test_a_routers_line_that_has_not_started_is_withdrawn(store):
    # Confirmed with a start date a year off (a typo): nothing reached the router, and
    # every later line of it had to start after that date (409 startDate) until the
    # router's record went. Withdrawn, the router's line in use keeps its address, and a
    # later line may be confirmed again.
    device = await router(store, "R1")
    current, typo = await account(store, device.id), await account(store, device.id)
    await confirm(store, current.id, start=NOW - 60, ip="203.0.113.10")
    await confirm(store, typo.id, start=NOW + 365 * 86400, ip="203.0.113.10")
    assert (await store.end_internet_account(typo.id, now=NOW)).state == "ENDED"
    kept = await store.get_internet_account(current.id)
    assert kept is not None and kept.state == "ACTIVE" and kept.ip_address == "203.0.113.10"
    fixed = await account(store, device.id)
    stored, _ = await confirm(store, fixed.id, start=NOW + 3600, ip="203.0.113.10")
    assert stored.state == "CONFIRMED"
    # an order for the router never confirmed is withdrawn too; the line in use is not
    ordered = await account(store, device.id)
    assert (await store.end_internet_account(ordered.id, now=NOW)).state == "ENDED"
    with pytest.raises(StateError, match=device.id):
        await store.end_internet_account(current.id, now=NOW)
    # nor, once its date has come (before any sweep), the fixed line
    with pytest.raises(StateError, match=device.id):
        await store.end_internet_account(fixed.id, now=NOW + 3600)


async def test_an_upgrade_ends_the_line_it_replaces_once_its_router_is_gone(store):
    # Both lines name no router once its record is deleted: the upgrade names the line it
    # was confirmed to replace, and ends it at its start as it would through the router.
    device = await router(store, "R1")
    first, current = await account(store, device.id), await account(store, device.id)
    upgrade = await account(store, device.id)
    await confirm(store, first.id, start=NOW - 7200, ip="203.0.113.10")
    await confirm(store, current.id, start=NOW - 60, ip="203.0.113.11")
    await confirm(store, upgrade.id, start=NOW + 3600, ip="203.0.113.11")
    stored = await store.get_internet_account(upgrade.id)
    assert stored is not None and stored.replaces == current.id
    assert await store.delete_device(device.id)
    assert await store.activate_internet_accounts(NOW + 3599) == []
    assert (await store.get_internet_account(current.id)).state == "ACTIVE"
    assert await store.activate_internet_accounts(NOW + 3600) == []  # no router to tell
    states = [(await store.get_internet_account(a.id)).state for a in (first, current, upgrade)]
    assert states == ["ENDED", "ENDED", "ACTIVE"]
    entry = (await ends(store))[current.id]
    assert entry.after is not None and entry.before is not None
    assert (entry.after["reason"], entry.after["replacedBy"]) == ("superseded", upgrade.id)
    assert entry.before["device"] is None and entry.token_name == "internet activation"
    assert set(await ends(store)) == {first.id, current.id}


async def _behind_the_stores_back(url: str, backend: str, *statements: str) -> None:
    if backend == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            for statement in statements:
                db.execute(statement)
        return
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_migration_16_names_the_line_a_pending_upgrade_replaces(store_url, backend):
    # An upgrade confirmed by an older acsd, still to start: it gets the router's line that
    # started last before it, so it ends that line even if the router's record goes.
    store = open_store(store_url)
    await store.open()
    try:
        device, other = await router(store, "R1"), await router(store, "R2")
        ended, old, new = [await account(store, device.id) for _ in range(3)]
        await confirm(store, ended.id, start=NOW - 7200, ip="203.0.113.10")
        await confirm(store, old.id, start=NOW - 3600, ip="203.0.113.11")
        await confirm(store, new.id, start=NOW + 3600, ip="203.0.113.12")
        alone = await account(store, other.id)
        await confirm(store, alone.id, start=NOW + 3600, ip="203.0.113.13")
    finally:
        await store.close()
    await _behind_the_stores_back(
        store_url, backend,
        "ALTER TABLE internet_accounts DROP COLUMN replaces",
        "DELETE FROM schema_migrations WHERE version = 16",
    )  # fmt: skip
    store = open_store(store_url)
    await store.open()
    try:
        replaces = {a.id: a.replaces for a in (await store.query_internet_accounts(
            InternetAccountQuery()))[0]}  # fmt: skip
        # only pending upgrades: the started lines ended (or replaced) theirs already
        assert replaces == {ended.id: None, old.id: None, new.id: old.id, alone.id: None}
        assert await store.delete_device(device.id)
        await store.activate_internet_accounts(NOW + 3600)
        stored = await store.get_internet_account(old.id)
        assert stored is not None and stored.state == "ENDED"
    finally:
        await store.close()


async def test_tenancy_and_filters_of_the_list(store):
    a = await account(store, None)
    other = await store.create_internet_account(
        InternetAccountRecord(id="", customer="c2", name="Other")
    )
    page, total = await store.query_internet_accounts(InternetAccountQuery(customers={"c1"}))
    assert total == 1 and [r.id for r in page] == [a.id]
    page, total = await store.query_internet_accounts(InternetAccountQuery(customer="c2"))
    assert [r.id for r in page] == [other.id]
    _, total = await store.query_internet_accounts(InternetAccountQuery(state="ORDERED"))
    assert total == 2
    # a page past an id: the total still counts both
    page, total = await store.query_internet_accounts(InternetAccountQuery(after=a.id))
    assert [r.id for r in page] == [other.id] and total == 2


def test_the_settings_an_account_asks_for():
    settings = internet_settings(
        {
            "net": {
                **NET,
                "lanNet": "198.51.100.16",
                "lanSubnet": "255.255.255.240",
                "failover": True,
                "failoverNumber": "71919998",
            }
        }
    )
    assert settings == {
        "wan.static.enable": True,
        "wan.static.ip": "203.0.113.10",
        "wan.static.mask": "255.255.255.248",
        "wan.static.gateway": "203.0.113.9",
        # the router's own address in the additional range: its first host address
        "lan.extra.enable": True,
        "lan.extra.ip": "198.51.100.17",
        "lan.extra.mask": "255.255.255.240",
        "wan.failover.enable": True,
        "wan.failover.number": "71919998",
    }
    plain = internet_settings({"net": NET})
    assert plain["wan.failover.enable"] is False
    # no range: "off", for the one an earlier line of the router may have left on
    assert {k: v for k, v in plain.items() if k.startswith("lan.")} == {"lan.extra.enable": False}
    assert "wan.failover.number" not in plain
