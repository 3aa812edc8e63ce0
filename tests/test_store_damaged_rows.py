"""Rows acsd did not write as this release would (edited by hand with sqlite3 or psql, an
older release's, a half restored backup): a JSON column of another shape, or holding no
JSON at all, reads as absent with one warning naming the record and the column; the rest
of the record reads as stored, and the next write of the column replaces it."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import asyncpg
import pytest
from structlog.testing import capture_logs

from acsd import clock
from acsd.store.base import (
    CpeIdentity,
    DeviceQuery,
    DeviceRecord,
    InternetAccountQuery,
    InternetAccountRecord,
    SessionResult,
)

# column -> what a damaged value of it reads as
READ_AS = {
    "wifi": None, "dhcp": None, "status": {}, "absent_paths": [], "provisioning": {},
    "read_plan": None, "sim": None,
}  # fmt: skip
# JSON of another shape, and text that is no JSON (PostgreSQL's JSONB params hold only
# JSON: its other JSON columns are TEXT)
DAMAGED = ['"FAILED"', "3", "[1]", '{"a": 1}', "{bad"]


async def _behind_the_stores_back(url: str, backend: str, statement: str, *args) -> list:
    """The statement's rows, as tuples."""
    if backend == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return db.execute(statement.replace("$1", "?").replace("$2", "?"), args).fetchall()
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(statement, *args)]
    finally:
        await conn.close()


def _damaged_warnings(logs: list[dict], record_id: str) -> list[tuple[str, str]]:
    return [
        (entry["column"], entry["found"])
        for entry in logs
        if entry["event"] == "store_column_damaged" and entry["record"] == record_id
    ]


@pytest.mark.parametrize("text", DAMAGED)
async def test_a_damaged_json_column_reads_as_absent_and_the_rest_as_stored(
    store, store_url, backend, text
):
    device = await store.upsert_device(
        DeviceRecord(id="", serial_number="DMG1", name="kept", wifi={"ssid": "home"})
    )
    for column in READ_AS:
        value = text
        if column == "absent_paths" and text == "[1]":
            value = '["Device.X.", 1]'  # a list, of other things than paths
        await _behind_the_stores_back(
            store_url, backend, f"UPDATE devices SET {column} = $1 WHERE id = $2", value, device.id
        )
    if text != "{bad" or backend == "sqlite":
        await _behind_the_stores_back(
            store_url, backend, "UPDATE devices SET params = $1 WHERE id = $2",
            text, device.id,
        )  # fmt: skip
    with capture_logs() as logs:
        got = await store.get_device(device.id)
        listed = await store.list_devices()
        page, total = await store.query_devices(DeviceQuery(limit=10))
        again = await store.get_device("DMG1")
    assert got is not None and again is not None and total == 1
    for record in (got, listed[0], page[0], again):
        assert (record.id, record.serial_number, record.name) == (device.id, "DMG1", "kept")
        shown = {column: getattr(record, column) for column in READ_AS}
        if text == '{"a": 1}':  # an object: right for all but the list of paths
            expected = {column: {"a": 1} for column in READ_AS}
            expected["absent_paths"] = []
        elif text == "[1]":
            expected = {**READ_AS, "absent_paths": ["Device.X."]}
        else:
            expected = READ_AS
        assert shown == expected
    # once per record and column, however often it is read, naming no value
    warned = _damaged_warnings(logs, device.id)
    assert len(warned) == len(set(warned)) and warned
    assert {column for column, _ in warned} <= set(READ_AS)
    assert "FAILED" not in str(logs)
    # the next write of the column replaces the damage
    await store.write_device(replace(got, wifi={"ssid": "new"}, dhcp=None))
    repaired = await store.get_device(device.id)
    assert repaired is not None and repaired.wifi == {"ssid": "new"} and repaired.name == "kept"


async def test_a_damaged_internet_confirm_reads_as_absent(store, store_url, backend):
    # (PostgreSQL's confirm is JSONB: it holds only JSON, so no invalid text there)
    texts = ['"x"', "[1]"] + (["{bad"] if backend == "sqlite" else [])
    for text in texts:
        record = InternetAccountRecord(id="", customer="c1", name="Fibre")
        account = await store.create_internet_account(record)
        await _behind_the_stores_back(
            store_url, backend, "UPDATE internet_accounts SET confirm = $1 WHERE id = $2",
            text, account.id,
        )  # fmt: skip
        with capture_logs() as logs:
            got = await store.get_internet_account(account.id)
        assert got is not None and got.confirm is None and got.name == "Fibre", text
        assert _damaged_warnings(logs, account.id) == [
            ("confirm", "invalid JSON" if text == "{bad" else type(eval(text)).__name__)
        ], text


async def test_a_damaged_parameter_tree_reads_as_empty_and_a_session_rebuilds_it(
    store, store_url, backend
):
    # JSON of another shape, and text that is no JSON (PostgreSQL's JSONB holds only JSON)
    texts = ['"FAILED"', "3", "[1]", '["A"]'] + (["{bad"] if backend == "sqlite" else [])
    for n, text in enumerate(texts):
        identity = CpeIdentity(oui="00D09E", product_class="HG", serial_number=f"TREE{n}")
        device_id = await store.save_session(SessionResult(identity=identity, at=1000.0))
        with capture_logs() as logs:
            # a small result (merged with json_patch) and a large one (merged key by key)
            for size in (1, 250):
                await _behind_the_stores_back(
                    store_url, backend, "UPDATE devices SET params = $1 WHERE id = $2",
                    text, device_id,
                )  # fmt: skip
                assert await store.device_params(device_id) == {}, text
                assert await store.device_values(device_id, ["A", "0"]) == {}, text
                params = {"A": ["1", "xsd:string"]} | {f"P{i}": [str(i), None] for i in range(size)}
                result = SessionResult(identity=identity, at=1000.0 + size, params=params)
                assert await store.save_session(result) == device_id, text
                assert await store.device_params(device_id) == params, (text, size)
                got = await store.device_values(device_id, ["A", "0"])
                assert got == {"A": ["1", "xsd:string"]}, text
        # once per record and column
        found = "invalid JSON" if text == "{bad" else type(eval(text)).__name__
        assert _damaged_warnings(logs, device_id) == [("params", found)], text


# What a hand edit leaves in serial_key. PostgreSQL's TEXT NOT NULL holds neither NULL nor
# another type; SQLite's NOT NULL refuses NULL too, and its TEXT affinity stores a number
# as text (another wrong key), but a BLOB as a BLOB.
SERIAL_KEY_DAMAGE = ["upper(serial_key)", "' ' || serial_key || ' '"]


async def test_a_damaged_serial_key_is_repaired_and_makes_no_second_record(
    store, store_url, backend
):
    damages = SERIAL_KEY_DAMAGE + (["CAST(serial_key AS BLOB)"] if backend == "sqlite" else [])
    for n, damage in enumerate(damages):
        serial = f"DmgKey{n}"
        made = await store.upsert_device(DeviceRecord(id="", serial_number=serial, name="kept"))
        damage_key = f"UPDATE devices SET serial_key = {damage} WHERE id = $1"
        await _behind_the_stores_back(store_url, backend, damage_key, made.id)
        with capture_logs() as logs:
            # the look-up of its router's Inform (in another case), and the API's
            found = await store.find_device_for_cpe(serial.upper(), for_session=True)
            assert found is not None and found.id == made.id, damage
            got = await store.get_device(serial)
            assert got is not None and got.id == made.id, damage
        assert _damaged_warnings(logs, made.id) == [
            ("serial_key", "not its serial number's key")
        ], damage
        stored = "SELECT serial_key FROM devices WHERE id = $1"
        assert await _behind_the_stores_back(store_url, backend, stored, made.id) == [
            (serial.lower(),)
        ], damage
        # damaged again during the session: its save finds the record all the same
        await _behind_the_stores_back(store_url, backend, damage_key, made.id)
        identity = CpeIdentity(oui="00D09E", product_class="HG", serial_number=serial)
        result = SessionResult(identity=identity, at=1000.0, status={"lanIp": "192.0.2.1"})
        assert await store.save_session(result) == made.id, damage
        saved = await store.get_device(made.id)
        assert saved is not None and saved.status == {"lanIp": "192.0.2.1"}, damage
        assert saved.name == "kept", damage
    assert await store.count_devices() == len(damages)


async def test_a_list_filtered_by_state_finds_a_record_as_it_is_shown(store, store_url, backend):
    # a state this release does not know (a newer one's, a typing error) reads as a new
    # record's; SQLite keeps a value of another type too. A confirmed line without a start
    # date reads as CONFIRMED (PostgreSQL's start_date holds a number or NULL only).
    states = ["'RETIRED'"] + (["x'00'", "7"] if backend == "sqlite" else [])
    dates = ["NULL"] + (["'soon'"] if backend == "sqlite" else [])
    devices, lines = [], []
    for n, state in enumerate(states):
        device = await store.upsert_device(DeviceRecord(id="", serial_number=f"DMGST{n}"))
        change = "UPDATE devices SET state = " + state + " WHERE id = $1"
        await _behind_the_stores_back(store_url, backend, change, device.id)
        record = InternetAccountRecord(id="", customer="c1", name="Fibre")
        account = await store.create_internet_account(record)
        change = "UPDATE internet_accounts SET state = " + state + " WHERE id = $1"
        await _behind_the_stores_back(store_url, backend, change, account.id)
        devices.append(device.id)
        lines.append(account.id)
    confirmed = []
    for date in dates:
        record = InternetAccountRecord(id="", customer="c2", name="Fibre")
        account = await store.create_internet_account(record)
        change = (
            f"UPDATE internet_accounts SET state = 'CONFIRMED', start_date = {date} WHERE id = $1"
        )
        await _behind_the_stores_back(store_url, backend, change, account.id)
        confirmed.append(account.id)

    async def device_ids(state: str) -> list[str]:
        page, _ = await store.query_devices(DeviceQuery(state=state, limit=100))
        return sorted(device.id for device in page)

    async def line_ids(state: str) -> list[str]:
        page, _ = await store.query_internet_accounts(InternetAccountQuery(state=state))
        return sorted(line.id for line in page)

    for device_id in devices:
        shown = await store.get_device(device_id)
        assert shown is not None and shown.state == "ACTIVE"
    assert await device_ids("ACTIVE") == sorted(devices)
    assert await device_ids("PROVISIONING") == []
    for line_id in lines + confirmed:
        shown = await store.get_internet_account(line_id)
        assert shown is not None
        assert shown.effective_state(clock.now()) == (
            "ORDERED" if line_id in lines else "CONFIRMED"
        )
    assert await line_ids("ORDERED") == sorted(lines)
    assert await line_ids("CONFIRMED") == sorted(confirmed)
    assert await line_ids("ACTIVE") == []


async def test_a_sessions_save_repairs_the_record_columns_it_read(store, store_url, backend):
    # PostgreSQL's columns hold their types: only a state this release does not know
    damage = {"state": "'RETIRED'"}
    if backend == "sqlite":
        damage |= {"revision": "'x'", "jobs": "4.5", "created": "'then'"}
    identity = CpeIdentity(oui="00D09E", product_class="HG", serial_number="DMGSAVE")
    device_id = await store.save_session(SessionResult(identity=identity, at=1000.0))
    sets = ", ".join(f"{column} = {value}" for column, value in damage.items())
    await _behind_the_stores_back(
        store_url, backend, f"UPDATE devices SET {sets} WHERE id = $1", device_id
    )
    with capture_logs() as logs:
        read = await store.get_device(device_id)
    assert read is not None and (read.state, read.revision, read.jobs) == ("ACTIVE", 0, 0)
    # (a damaged creation time reads as the last change's)
    assert read.created == read.updated == 1000.0
    assert {column for column, _ in _damaged_warnings(logs, device_id)} == set(damage)
    # a session that decides nothing about the job writes what it read
    result = SessionResult(identity=identity, at=2000.0, since=1000.0, device_id=device_id)
    assert await store.save_session(result) == device_id
    names = ", ".join(damage)
    stored = await _behind_the_stores_back(
        store_url, backend, f"SELECT {names} FROM devices WHERE id = $1", device_id
    )
    as_read = {"state": "ACTIVE", "revision": 0, "jobs": 0, "created": 1000.0}
    assert stored == [tuple(as_read[column] for column in damage)]


async def test_a_serial_key_of_another_serial_binds_neither_router_to_the_record(
    store, store_url, backend
):
    made = await store.upsert_device(DeviceRecord(id="", serial_number="DmgOwn", name="kept"))
    # (the key of a serial number that has no record: its router is new)
    damage_key = "UPDATE devices SET serial_key = 'dmgother' WHERE id = $1"
    await _behind_the_stores_back(store_url, backend, damage_key, made.id)
    with capture_logs() as logs:
        assert await store.find_device_for_cpe("DMGOTHER", for_session=True) is None
    assert _damaged_warnings(logs, made.id) == [("serial_key", "not its serial number's key")]
    got = await store.find_device_for_cpe("DmgOwn")
    assert got is not None and got.id == made.id
    # damaged again: the other router's first session makes its own record
    await _behind_the_stores_back(store_url, backend, damage_key, made.id)
    identity = CpeIdentity(oui="00D09E", product_class="HG", serial_number="DMGOTHER")
    result = SessionResult(identity=identity, at=1000.0, status={"lanIp": "192.0.2.9"})
    other = await store.save_session(result)
    assert other != made.id
    kept = await store.get_device(made.id)
    assert kept is not None and kept.status == {} and kept.serial_number == "DmgOwn"
    keys = await _behind_the_stores_back(
        store_url, backend, "SELECT serial_key FROM devices ORDER BY serial_key"
    )
    assert keys == [("dmgother",), ("dmgown",)]
