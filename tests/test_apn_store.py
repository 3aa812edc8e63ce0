"""APN records in the store, on both backends: one transaction makes the account, the
network, the device, its operation and audit entries; a network's active devices have one
CLI and one SIM each; ended devices are kept and leave their CLI free; what a router's
session looks its SIM up by."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from acsd.ids import new_id
from acsd.store.base import (
    ApnAccountRecord,
    ApnDeviceRecord,
    ApnNetworkRecord,
    ApnOperationRecord,
    AuditRecord,
    ConflictError,
    CpeIdentity,
    DeviceRecord,
    DuplicateError,
    SessionResult,
)


def device(cli: str, **kw) -> ApnDeviceRecord:
    kw.setdefault("msisdn", cli)
    return ApnDeviceRecord(id="", account="acc", network="net", cli=cli, cli_key=f"msisdn:{cli}",
                           **kw)  # fmt: skip


def session_result(serial: str) -> SessionResult:
    identity = CpeIdentity(oui="00D09E", product_class="HG8245", serial_number=serial)
    return SessionResult(identity=identity, at=1000.0)


def entry(action: str) -> AuditRecord:
    return AuditRecord(id="", at=0.0, action=action, resource=action.split(".")[0])


async def make(store, cli: str, **kw) -> ApnDeviceRecord:
    return await store.create_apn_device(
        device(cli, **kw),
        account=ApnAccountRecord(key="acc", email_contact="ops@example.com"),
        operation=ApnOperationRecord(id=new_id(), account="acc", kind="create"),
        audit=entry("apn_device.create"),
        account_audit=entry("apn_account.create"),
    )


async def test_a_device_comes_with_its_account_network_operation_and_audit(store) -> None:
    first = await make(store, "31600000001", iccid="8931000000000000001", imsi="204080000000001")
    second = await make(store, "31600000002")
    assert (await store.get_apn_account("acc")).email_contact == "ops@example.com"
    network = await store.get_apn_network("acc", "net")
    assert network is not None and network.apn is None
    assert await store.get_apn_device(first.id) == first
    entries, _ = await store.list_audit()
    actions = sorted(e.action for e in entries)
    # the account once (the second create found it), one entry per device
    assert actions == ["apn_account.create", "apn_device.create", "apn_device.create"]
    listed = await store.list_apn_devices("acc", "net")
    assert [d.id for d in listed] == sorted([first.id, second.id])
    assert [d.id for d in await store.list_apn_devices("acc", "net", after=listed[0].id)] == [
        listed[1].id
    ]
    assert [d.id for d in await store.find_apn_devices_for_sim(
        imsi="204080000000001", iccid=None, msisdn=None
    )] == [first.id]  # fmt: skip


async def test_one_cli_and_one_sim_per_network_among_active_devices(store) -> None:
    first = await make(store, "31600000001", iccid="8931000000000000001")
    with pytest.raises(DuplicateError) as cli:
        await make(store, "31600000001")
    assert cli.value.field == "CLI"
    with pytest.raises(DuplicateError) as sim:
        await make(store, "31600000009", iccid="8931000000000000001")
    assert sim.value.field == "SIMNumber"
    # Ended (DELETE), the device is kept and its CLI is free for a new one.
    ended = await store.update_apn_device(
        first.id, lambda d: (replace(d, end_date=1000.0, status=3), entry("apn_device.delete"))
    )
    assert ended is not None and ended.end_date == 1000.0
    again = await make(store, "31600000001", iccid="8931000000000000001")
    assert (await store.find_apn_device("acc", "net", "msisdn:31600000001")).id == again.id
    everything = await store.list_apn_devices("acc", "net", include_ended=True)
    assert {d.id for d in everything} == {first.id, again.id}
    assert [d.id for d in await store.list_apn_devices("acc", "net")] == [again.id]


async def test_an_update_stores_what_the_change_returns(store) -> None:
    made = await make(store, "31600000003")
    operation = ApnOperationRecord(id="op1", account="acc", kind="delete", state="pending")
    changed = await store.update_apn_device(
        made.id,
        lambda d: (
            replace(d, enabled=False, lock_imei=True, router="r1", metadata={"a": 1}),
            entry("apn_device.update"),
        ),
        operation=operation,
    )
    stored = await store.get_apn_device(made.id)
    assert stored == changed and stored.enabled is False and stored.lock_imei is True
    assert stored.metadata == {"a": 1}
    assert [d.id for d in await store.find_apn_devices_on_router("r1")] == [made.id]
    op = await store.get_apn_operation("op1")
    assert op is not None and op.resource_id == made.id and op.state == "pending"
    # a change that returns no record writes nothing
    assert await store.update_apn_device(made.id, lambda d: (None, None)) == stored
    assert await store.update_apn_device("0" * 24, lambda d: (d, None)) is None


async def test_a_network_needs_its_account(store) -> None:
    with pytest.raises(ConflictError):
        await store.put_apn_network(ApnNetworkRecord(account="nobody", key="net", apn="x"))
    await make(store, "31600000004")
    named, _ = await store.put_apn_network(ApnNetworkRecord(account="acc", key="net", apn="iot"))
    assert named.apn == "iot" and (await store.get_apn_network("acc", "net")).apn == "iot"


async def test_two_stores_on_one_database_claim_a_parked_session_once(store_url) -> None:
    # Two processes (workers, or instances on PostgreSQL) race for one parked session.
    from acsd.store import open_store

    one, other = open_store(store_url), open_store(store_url)
    await one.open()
    await other.open()
    try:
        await one.park_session("w0.s", b"STATE", None, "Serial1")
        assert await other.parked_of("serial1") == ["w0.s"]
        claims = [await other.claim_session("w0.s"), await one.claim_session("w0.s")]
        assert claims == [b"STATE", None]
        assert await one.parked_sessions() == []
    finally:
        await one.close()
        await other.close()


async def test_a_sim_is_in_one_network_of_an_account(store) -> None:
    """CLI and SIMNumber are unique among an account's active devices, whatever their
    network (the 409 names the network that has it); another account may name them."""
    await make(store, "31600000011", iccid="8931000000000000011")
    for cli, iccid, field in (
        ("31600000011", None, "CLI"),
        ("31600000012", "8931000000000000011", "SIMNumber"),
    ):
        with pytest.raises(DuplicateError) as taken:
            await store.create_apn_device(replace(device(cli, iccid=iccid), network="other"))
        assert taken.value.field == field
        assert "network 'net'" in str(taken.value)
    theirs = ApnAccountRecord(key="acc2", email_contact="ops@example.com")
    made = await store.create_apn_device(
        replace(device("31600000011", iccid="8931000000000000011"), account="acc2"),
        account=theirs,
    )
    assert made.account == "acc2"


async def test_two_stores_creating_one_sim_in_two_networks_at_once_make_one(store_url) -> None:
    """Instances on one database (processes on one SQLite file): of creates of one SIM in
    different networks of an account at the same moment, exactly one is made."""
    from acsd.store import open_store

    stores = [open_store(store_url) for _ in range(2)]
    for s in stores:
        await s.open()
    try:
        await make(stores[0], "31600000020")
        sims = [f"3160000010{n}" for n in range(8)]
        results = await asyncio.gather(
            *(
                s.create_apn_device(replace(device(cli), network=f"net{i}"))
                for cli in sims
                for i, s in enumerate(stores * 2)
            ),
            return_exceptions=True,
        )
        for n, cli in enumerate(sims):
            mine = results[4 * n : 4 * n + 4]
            assert sum(isinstance(r, ApnDeviceRecord) for r in mine) == 1, (cli, mine)
            assert sum(isinstance(r, DuplicateError) for r in mine) == 3, (cli, mine)
    finally:
        for s in stores:
            await s.close()


async def _seen_in(store, router_id: str, cli: str, account: str = "acc") -> ApnDeviceRecord:
    """An APN device of ``account`` whose SIM ``router_id`` reported, connected."""
    if account != "acc":
        made = await store.create_apn_device(
            replace(device(cli), account=account),
            account=ApnAccountRecord(key=account, email_contact="ops@example.com"),
        )
    else:
        made = await make(store, cli)
    seen = await store.update_apn_device(
        made.id, lambda d: (replace(d, router=router_id, network_status=1), None)
    )
    assert seen is not None and seen.router == router_id
    return seen


def _gone(before: ApnDeviceRecord, after: ApnDeviceRecord | None) -> bool:
    """No longer shown in a router, disconnected, as a change (a new Version)."""
    return (
        after is not None
        and after.router is None
        and after.network_status == 0
        and after.version == before.version + 1
    )


async def test_a_deleted_router_shows_its_sims_device_disconnected(store) -> None:
    rec = await store.upsert_device(DeviceRecord(id="", serial_number="APNGONE1"))
    seen = await _seen_in(store, rec.id, "31600000031")
    assert await store.delete_device(rec.id)
    assert _gone(seen, await store.get_apn_device(seen.id))


async def test_an_ended_device_keeps_the_router_it_was_last_seen_in(store) -> None:
    """Only live devices are shown connected through a router: an ended one is history,
    and a router record deleted later changes nothing in it (nor its Version)."""
    rec = await store.upsert_device(DeviceRecord(id="", serial_number="APNGONE2"))
    seen = await _seen_in(store, rec.id, "31600000032")
    ended = await store.update_apn_device(
        seen.id, lambda d: (replace(d, end_date=2000.0, network_status=0), None)
    )
    assert await store.delete_device(rec.id)
    assert await store.get_apn_device(seen.id) == ended


async def test_a_router_linked_to_another_account_shows_the_firsts_device_disconnected(
    store,
) -> None:
    rec = await store.upsert_device(
        DeviceRecord(id="", serial_number="APNLINK1", mvno_account="acc")
    )
    first = await _seen_in(store, rec.id, "31600000041")
    rec.name = "renamed"  # a write that keeps the link leaves the device alone
    rec = await store.write_device(rec)
    assert await store.get_apn_device(first.id) == first
    rec.mvno_account = "acc2"
    rec = await store.write_device(rec)
    assert _gone(first, await store.get_apn_device(first.id))
    # the new account's device, seen in the router since, stays with the next write
    second = await _seen_in(store, rec.id, "31600000042", account="acc2")
    rec.name = "renamed again"
    await store.write_device(rec)
    assert await store.get_apn_device(second.id) == second


async def test_a_session_links_a_sim_only_to_a_router_its_account_still_has(store) -> None:
    """``steers``: a session's write (decided on the record as the session began) lands
    only while the router's record still names the account, in the same transaction: an
    operator's unlink, or a deleted record, since is not undone."""
    rec = await store.upsert_device(
        DeviceRecord(id="", serial_number="APNSTEER1", mvno_account="acc")
    )
    made = await make(store, "31600000061")

    def seen(d: ApnDeviceRecord) -> tuple[ApnDeviceRecord, None]:
        return replace(d, router=rec.id, network_status=1), None

    linked = await store.update_apn_device(made.id, seen, steers=(rec.id, "acc"))
    assert linked is not None and linked.router == rec.id
    rec.mvno_account = None
    rec = await store.write_device(rec)
    unlinked = await store.get_apn_device(made.id)
    assert unlinked is not None and unlinked.router is None
    assert await store.update_apn_device(made.id, seen, steers=(rec.id, "acc")) is None
    assert await store.update_apn_device(made.id, seen, steers=("0" * 24, "acc")) is None
    assert await store.get_apn_device(made.id) == unlinked


async def test_a_replaced_router_takes_the_sim_state_of_the_new_one(store) -> None:
    """A record given another router (serialNumber changed): the old router's SIM is in
    no record now; the new router's own record, merged in, hands its SIM's device over
    (both a new Version)."""
    rec = await store.upsert_device(
        DeviceRecord(id="", serial_number="APNOLD01", mvno_account="acc")
    )
    old = await _seen_in(store, rec.id, "31600000051")
    called_in = await store.save_session(session_result("APNNEW01"))
    new = await _seen_in(store, called_in, "31600000052")
    rec.serial_number = "APNNEW01"
    await store.write_device(rec, new_router=True)
    assert _gone(old, await store.get_apn_device(old.id))
    moved = await store.get_apn_device(new.id)
    assert moved is not None and moved.router == rec.id
    assert moved.version == new.version + 1 and moved.network_status == 1


async def test_a_new_apn_name_is_a_job_of_the_routers_that_take_it(store) -> None:
    """In the write that sets the name: the routers of the network's live, enabled SIMs
    bound to the account get a new revision and are PROVISIONING until a session sets it;
    the same name again, a router of another account, a disabled SIM are left alone."""
    bound = await store.upsert_device(
        DeviceRecord(id="", serial_number="APNJOB01", mvno_account="acc")
    )
    other = await store.upsert_device(
        DeviceRecord(id="", serial_number="APNJOB02", mvno_account="acc2")
    )
    off = await store.upsert_device(
        DeviceRecord(id="", serial_number="APNJOB03", mvno_account="acc")
    )
    await _seen_in(store, bound.id, "31600000071")
    await _seen_in(store, other.id, "31600000072")
    disabled = await make(store, "31600000073", enabled=False)
    await store.update_apn_device(disabled.id, lambda d: (replace(d, router=off.id), None))
    before = {r.id: r for r in (bound, other, off)}

    _, routers = await store.put_apn_network(ApnNetworkRecord(account="acc", key="net", apn="a"))
    assert [r.id for r in routers] == [bound.id]
    assert routers[0].state == "PROVISIONING" and routers[0].jobs == 1
    assert routers[0].revision == bound.revision + 1
    for rec in (bound, other, off):
        stored = await store.get_device(rec.id)
        assert stored is not None
        assert stored.revision == before[rec.id].revision + (rec is bound)
    again, routers = await store.put_apn_network(
        ApnNetworkRecord(account="acc", key="net", apn="a")
    )
    assert again.apn == "a" and routers == []
    # no name: nothing new for the router to hold
    _, routers = await store.put_apn_network(ApnNetworkRecord(account="acc", key="net", apn=None))
    assert routers == []


async def test_a_router_gets_an_apn_job_only_while_it_is_the_accounts(store) -> None:
    """give_apn_job (a session found a SIM whose APN name the router lacks): a new revision
    and PROVISIONING, unless the router was unlinked from the account meanwhile."""
    rec = await store.upsert_device(
        DeviceRecord(id="", serial_number="APNDUE01", mvno_account="acc")
    )
    given = await store.give_apn_job(rec.id, "acc")
    assert given is not None and given.id == rec.id
    assert (given.revision, given.state, given.jobs) == (rec.revision + 1, "PROVISIONING", 1)
    assert await store.give_apn_job(rec.id, "acc2") is None
    assert await store.give_apn_job("0" * 24, "acc") is None
    stored = await store.get_device(rec.id)
    assert stored is not None and stored.revision == rec.revision + 1


async def test_a_sims_removed_devices_are_found_when_asked_for(store) -> None:
    """include_ended: the devices a SIM had, removed ones too (the routers it was seen in)."""
    made = await make(store, "31600000081", imsi="204080000000081")

    def end(d: ApnDeviceRecord) -> tuple[ApnDeviceRecord, None]:
        return replace(d, end_date=2000.0), None

    await store.update_apn_device(made.id, end)
    keys = {"imsi": "204080000000081", "iccid": None, "msisdn": None}
    assert await store.find_apn_devices_for_sim(**keys) == []
    found = await store.find_apn_devices_for_sim(**keys, include_ended=True)
    assert [d.id for d in found] == [made.id]


async def test_a_new_apn_name_is_no_job_of_a_router_without_the_sim_or_refusing_it(
    store,
) -> None:
    """The name goes to a router only where a session could set it: one whose last session
    reported the device's SIM (a record from before SIM numbers were kept: as before), in
    a modem the IMEI lock does not refuse. The others would get a Connection Request and a
    session that sets nothing, at every new name."""
    routers = {}
    for name, sim in (
        ("holds", {"msisdn": "+31 600000091"}),  # as a router may report it
        ("legacy", None),
        ("taken_out", {}),
        ("other_sim", {"msisdn": "31600000099"}),
        ("refused", {"msisdn": "31600000095"}),
    ):
        rec = await store.upsert_device(
            DeviceRecord(id="", serial_number=f"APNDUE{name.upper()}", mvno_account="acc")
        )
        await store.save_session(replace(session_result(rec.serial_number), sim=sim))
        routers[name] = await store.get_device(rec.id)
        assert routers[name].sim == sim
    clis = {"holds": "31600000091", "legacy": "31600000092", "taken_out": "31600000093"}
    clis |= {"other_sim": "31600000094", "refused": "31600000095"}
    for name, cli in clis.items():
        seen = await _seen_in(store, routers[name].id, cli)
        if name == "refused":
            await store.update_apn_device(seen.id, lambda d: (replace(d, status=2), None))

    _, given = await store.put_apn_network(ApnNetworkRecord(account="acc", key="net", apn="b"))
    assert sorted(r.id for r in given) == sorted(routers[n].id for n in ("holds", "legacy"))
    assert all(r.state == "PROVISIONING" and r.jobs == 1 for r in given)
    for name, before in routers.items():
        stored = await store.get_device(before.id)
        assert stored is not None
        assert stored.revision == before.revision + (name in ("holds", "legacy")), name
