"""A router's provisioning memory (what acsd remembers of provisioning it) is written when a
session changed it, and only then: a steady session that rewrote it would cost WAL pages
and a row of another size every time, for nothing."""

from __future__ import annotations

import json
import sqlite3

from acsd.sim.runner import Simulation
from api_world import SEED_BODY


def _memory(db: str, serial: str) -> str:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT provisioning FROM devices WHERE serial_key = ?", (serial.lower(),)
        ).fetchone()
    assert row is not None, serial
    return row[0]


async def test_a_session_that_changes_nothing_leaves_the_stored_memory_as_it_is(daemon):
    # An open session holds the stored memory as its JSON and decodes it at the end to
    # compare: a comparison gone wrong would write it again every session. The stored one
    # is planted in bytes of its own (keys reversed, spaced out): the same memory, so a
    # session that changed nothing leaves those bytes as they are.
    sim = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="MEMKEEP")
    router = sim.routers[0]
    for _ in range(2):  # registered; the second forgets what the first set, held or not
        assert (await sim.run_once()).ok == 1
    stored = json.loads(_memory(daemon.db, router.serial))
    planted = json.dumps(dict(reversed(list(stored.items()))), indent=1)
    with sqlite3.connect(daemon.db) as conn:
        conn.execute(
            "UPDATE devices SET provisioning = ? WHERE serial_key = ?",
            (planted, router.serial.lower()),
        )
    assert (await sim.run_once()).ok == 1
    assert _memory(daemon.db, router.serial) == planted

    # A session that does change it writes it: here the job of settings the operator gave.
    daemon.apply({**SEED_BODY, "serialNumber": router.serial})
    assert (await sim.run_once()).ok == 1
    assert json.loads(_memory(daemon.db, router.serial))["appliedRevision"] == 1
