"""Migration 15 on both backends: APN devices stored with a country code written with
leading zeros, (0045)12345678, get the key (and MSISDN) the API computes now, so the SIM is
found and refused a second time as (+45)12345678 is; two live devices that would then be
one SIM are not merged: the step is refused, naming them, and nothing changes."""

from __future__ import annotations

import sqlite3
from typing import Any

import asyncpg
import pytest

from acsd.store import open_store
from acsd.store.base import SchemaError

NOW = 1_700_000_000.0


def numbered(text: str) -> str:
    """``?`` parameters as PostgreSQL's $1, $2, ..."""
    first, *rest = text.split("?")
    return first + "".join(f"${n}{part}" for n, part in enumerate(rest, start=1))


async def sql(url: str, backend: str, *statements: tuple[str, tuple[Any, ...]]) -> list[Any]:
    """Run statements (``?`` parameters) behind the store's back; the last one's rows."""
    rows: list[Any] = []
    if backend == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            for text, args in statements:
                rows = db.execute(text, args).fetchall()
        return rows
    conn = await asyncpg.connect(url)
    try:
        for text, args in statements:
            rows = await conn.fetch(numbered(text), *args)
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


def device(device_id: str, network: str, cli: str, key: str, end: float | None = None):
    return (
        "INSERT INTO apn_devices (id, account, network, cli, cli_key, msisdn, start_date,"
        " end_date, created, updated) VALUES (?, 'A', ?, ?, ?, ?, ?, ?, ?, ?)",
        (device_id, network, cli, key, key.removeprefix("msisdn:"), NOW, end, NOW, NOW),
    )


async def as_an_older_acsd_left_it(url: str, backend: str, *devices) -> None:
    await sql(url, backend, *devices, ("DELETE FROM schema_migrations WHERE version = 15", ()))


async def test_clis_with_zeros_before_the_country_code_get_the_key_of_the_sim(
    store_url: str, backend: str
):
    store = open_store(store_url)
    await store.open()
    await store.close()
    await sql(
        store_url, backend,
        ("INSERT INTO apn_accounts (key, created) VALUES ('A', ?)", (NOW,)),
        ("INSERT INTO apn_networks (account, key, created, updated) VALUES ('A', 'N1', ?, ?)",
         (NOW, NOW)),
        ("INSERT INTO apn_networks (account, key, created, updated) VALUES ('A', 'N2', ?, ?)",
         (NOW, NOW)),
    )  # fmt: skip
    await as_an_older_acsd_left_it(
        store_url, backend,
        device("d1", "N1", "(0045)12345678", "msisdn:004512345678"),
        device("d2", "N1", "(045)87654321", "msisdn:04587654321", end=NOW),  # removed
        device("d3", "N1", "(+45)11111111", "msisdn:4511111111"),
        device("d4", "N1", "(0)22222222", "msisdn:022222222"),  # no country's code
    )  # fmt: skip
    store = open_store(store_url)
    await store.open()
    try:
        assert store.migrations_applied == [15]
        found = await store.find_apn_device("A", "N1", "msisdn:4512345678")
        assert found is not None and found.id == "d1" and found.msisdn == "4512345678"
        removed = await store.get_apn_device("d2")
        assert removed is not None and removed.cli_key == "msisdn:4587654321"
        for kept, key in (("d3", "msisdn:4511111111"), ("d4", "msisdn:022222222")):
            record = await store.get_apn_device(kept)
            assert record is not None and record.cli_key == key
    finally:
        await store.close()

    # Two live devices of the account that would be one SIM (in two networks, or in one
    # once both lose their zeros): which is the SIM's is the operator's call.
    await as_an_older_acsd_left_it(
        store_url, backend,
        device("d5", "N1", "(0046)22222222", "msisdn:004622222222"),
        device("d6", "N2", "(+46)22222222", "msisdn:4622222222"),
        device("d7", "N2", "(047)33333333", "msisdn:04733333333"),
        device("d8", "N2", "(0047)33333333", "msisdn:004733333333"),
    )  # fmt: skip
    store = open_store(store_url)
    with pytest.raises(SchemaError) as refused:
        await store.open()
    await store.close()
    said = str(refused.value)
    assert "leading zeros" in said and "remove all but one" in said
    for shown in ("'d5' (CLI '(0046)22222222', network 'N1')", "'d6'", "'d7'", "'d8'"):
        assert shown in said, said
    rows = await sql(
        store_url, backend,
        ("SELECT id, cli_key FROM apn_devices WHERE id IN ('d5', 'd7') ORDER BY id", ()),
    )  # fmt: skip
    assert rows == [("d5", "msisdn:004622222222"), ("d7", "msisdn:04733333333")]
    versions = await sql(store_url, backend, ("SELECT version FROM schema_migrations", ()))
    assert (15,) not in versions and (14,) in versions
