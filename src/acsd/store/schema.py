"""Tables and migrations: numbered, forward-only, applied at start-up.

To change the schema, append a :class:`Migration` to :data:`MIGRATIONS` with the next
version number. Never edit or reorder one that has shipped: databases in the field have
already recorded it as applied and will not run it again.

Each migration runs in its own ``BEGIN IMMEDIATE`` transaction together with the row that
records it in ``schema_migrations``, so a crash mid-migration leaves the previous version
intact, and two processes starting at once (daemon and ``acsd db migrate``) cannot both
apply the same step: the second waits for the write lock, then sees the step recorded.

The SQL is kept to what SQLite and PostgreSQL both understand where that costs nothing
(TEXT/INTEGER/REAL, no STRICT tables), so the PostgreSQL backend can follow the same
numbering.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosqlite

from acsd import clock
from acsd.store import clikeys
from acsd.store.base import SchemaError


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sql: str
    #: what SQL cannot say (a key computed as the API computes it), run after ``sql`` in
    #: the step's transaction
    code: Callable[[aiosqlite.Connection], Awaitable[None]] | None = None


async def _rekey_clis(conn: aiosqlite.Connection) -> None:
    """Step 15 (acsd.store.clikeys): refused while two live devices would be one SIM."""
    changes = clikeys.rekeys(await conn.execute_fetchall(clikeys.CANDIDATES_SQL))
    holders = []
    for change in changes:
        if change.live:
            holders += await conn.execute_fetchall(
                f"{clikeys.HOLDER_SQL} AND account = ? AND cli_key = ?",
                (change.account, change.key),
            )
    clikeys.refuse_collisions(changes, holders)
    for change in changes:
        await conn.execute(
            "UPDATE apn_devices SET cli_key = ?, msisdn = ? WHERE id = ?",
            (change.key, change.msisdn, change.id),
        )


#: step 16, the same on both backends
REPLACES_SQL = """
-- The router's line that a line was confirmed to replace (its upgrade's predecessor): the
-- upgrade ends it at its start even when the router's record was deleted meanwhile and
-- neither line names the router any more. NULL: a line that replaces none.
ALTER TABLE internet_accounts ADD COLUMN replaces TEXT;
-- Upgrades still to start: the router's line that started last before them.
UPDATE internet_accounts SET replaces = (
    SELECT earlier.id FROM internet_accounts AS earlier
    WHERE earlier.device = internet_accounts.device AND earlier.id != internet_accounts.id
      AND earlier.state IN ('CONFIRMED', 'ACTIVE')
      AND (earlier.start_date < internet_accounts.start_date
           OR (earlier.start_date = internet_accounts.start_date
               AND earlier.id < internet_accounts.id))
    ORDER BY earlier.start_date DESC, earlier.id DESC LIMIT 1
)
WHERE state = 'CONFIRMED' AND device IS NOT NULL;
"""

#: step 20's indexed expression: the state of the job a device shows (acsd.device_view), the
#: provisioning memory's when it is of the record's revision; none for revision 0 (no
#: operator settings) nor for a memory that is no JSON (a row edited by hand, on which
#: json_extract would fail the statement). The device list's job= filter
#: (acsd.store.sqlite.filters) is written with this very text: SQLite uses an index on an
#: expression only for a query that spells the same expression. Shipped: never edit.
JOB_STATE_SQL = (
    "(CASE WHEN revision > 0 AND json_valid(provisioning)"
    " AND json_extract(provisioning, '$.job.revision') = revision"
    " THEN json_extract(provisioning, '$.job.state') END)"
)

MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "devices",
        """
        CREATE TABLE devices (
            id                     TEXT PRIMARY KEY,      -- 24 hex, acsd.ids.new_id()
            serial_number          TEXT NOT NULL,         -- as first given (operator or CPE)
            serial_key             TEXT NOT NULL UNIQUE,  -- lower(serial_number): case varies
            mac_address            TEXT,                  -- as given
            mac_key                TEXT,                  -- 12 lowercase hex digits, or NULL
            oui                    TEXT,
            product_class          TEXT,
            manufacturer           TEXT,
            model_name             TEXT,
            software_version       TEXT,
            hardware_version       TEXT,
            profile                TEXT,
            name                   TEXT,
            notes                  TEXT,
            customer               TEXT,
            model                  TEXT,
            mvno_account           TEXT,
            wifi                   TEXT,                  -- JSON object or NULL
            dhcp                   TEXT,                  -- JSON object or NULL
            state                  TEXT NOT NULL DEFAULT 'ACTIVE',
            revision               INTEGER NOT NULL DEFAULT 0,
            jobs                   INTEGER NOT NULL DEFAULT 0,
            status                 TEXT NOT NULL DEFAULT '{}',  -- JSON object
            public_ip              TEXT,
            last_inform            REAL,                  -- POSIX seconds
            periodic_interval      INTEGER,
            params                 TEXT NOT NULL DEFAULT '{}',  -- JSON: path -> [value, type]
            absent_paths           TEXT NOT NULL DEFAULT '[]',  -- JSON array of paths
            connection_request_url TEXT,
            created                REAL NOT NULL,
            updated                REAL NOT NULL
        );
        -- A CPE whose serial matches no record binds by MAC (architecture §4).
        CREATE INDEX devices_mac_key ON devices (mac_key);
        -- "Offline for N hours" and stale-device sweeps scan by last Inform.
        CREATE INDEX devices_last_inform ON devices (last_inform);
        -- Resellers/owners list their customers' devices.
        CREATE INDEX devices_customer ON devices (customer);
        """,
    ),
    Migration(
        2,
        "device provisioning memory and drift switch",
        """
        -- JSON: appliedRevision, secrets (path -> hash), faults (path -> back-off), job
        ALTER TABLE devices ADD COLUMN provisioning TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE devices ADD COLUMN drift_check INTEGER NOT NULL DEFAULT 1;
        """,
    ),
    Migration(
        3,
        "customers, API tokens, router models, audit log, connection request credentials",
        """
        CREATE TABLE customers (
            id       TEXT PRIMARY KEY,
            name     TEXT NOT NULL,
            type     TEXT NOT NULL DEFAULT 'CUSTOMER',   -- CUSTOMER | RESELLER
            reseller TEXT REFERENCES customers (id),     -- NULL = top level
            created  REAL NOT NULL,
            updated  REAL NOT NULL
        );
        -- A reseller's tree is walked downwards (recursive CTE over reseller links).
        CREATE INDEX customers_reseller ON customers (reseller);

        CREATE TABLE tokens (
            id       TEXT PRIMARY KEY,
            hash     TEXT NOT NULL UNIQUE,                -- sha256 hex; never the token
            role     TEXT NOT NULL,
            customer TEXT,
            name     TEXT NOT NULL DEFAULT '',
            created  REAL NOT NULL,
            revoked  REAL                                 -- NULL = valid
        );

        CREATE TABLE models (
            id          TEXT PRIMARY KEY,
            name        TEXT NOT NULL,
            type        TEXT NOT NULL,
            brand       TEXT,
            description TEXT,
            picture     TEXT,
            profile     TEXT,
            created     REAL NOT NULL,
            updated     REAL NOT NULL
        );

        -- "before"/"after" are quoted: both are keywords in SQL.
        CREATE TABLE audit (
            id          TEXT PRIMARY KEY,
            at          REAL NOT NULL,
            action      TEXT NOT NULL,
            resource    TEXT NOT NULL,
            resource_id TEXT,
            token_id    TEXT,
            token_name  TEXT,
            role        TEXT,
            customer    TEXT,
            "before"    TEXT,                             -- JSON object or NULL
            "after"     TEXT,                             -- JSON object or NULL
            request_id  TEXT
        );
        CREATE INDEX audit_at ON audit (at);

        -- Connection Request credentials acsd sets on each CPE (written by sessions only).
        ALTER TABLE devices ADD COLUMN cr_username TEXT;
        ALTER TABLE devices ADD COLUMN cr_password TEXT;
        """,
    ),
    Migration(
        4,
        "internet accounts (seed 002)",
        """
        CREATE TABLE internet_accounts (
            id         TEXT PRIMARY KEY,
            customer   TEXT NOT NULL,
            name       TEXT NOT NULL,
            device     TEXT,                      -- the router the line ends at, or NULL
            state      TEXT NOT NULL DEFAULT 'ORDERED',  -- ORDERED | CONFIRMED | ACTIVE | ENDED
            confirm    TEXT,                      -- JSON: the confirm body as accepted
            start_date REAL,                      -- POSIX seconds, set by confirm
            ip_address TEXT,                      -- the confirmed net.ipAddress
            created    REAL NOT NULL,
            updated    REAL NOT NULL
        );
        -- One static address, one account (seed 002: 409 net.ipAddress); the index is the
        -- guard even when two confirms race.
        CREATE UNIQUE INDEX internet_accounts_ip_address ON internet_accounts (ip_address)
            WHERE ip_address IS NOT NULL;
        CREATE INDEX internet_accounts_device ON internet_accounts (device);
        CREATE INDEX internet_accounts_customer ON internet_accounts (customer);
        -- The activation sweep: confirmed accounts by start date.
        CREATE INDEX internet_accounts_pending ON internet_accounts (start_date)
            WHERE state = 'CONFIRMED';
        -- Set when an account names the router: only those sessions look accounts up.
        ALTER TABLE devices ADD COLUMN internet_account TEXT;
        """,
    ),
    Migration(
        5,
        "APN API (seed 003): accounts, networks, APN devices, operations; token scope",
        """
        CREATE TABLE apn_accounts (
            key               TEXT PRIMARY KEY,       -- the caller's foreignaccountkey
            billing_cycle_day INTEGER,
            email_contact     TEXT,
            tenant_id         TEXT,
            created           REAL NOT NULL
        );

        CREATE TABLE apn_networks (
            account TEXT NOT NULL REFERENCES apn_accounts (key),
            key     TEXT NOT NULL,                    -- the caller's foreignkey
            apn     TEXT,                             -- APN name pushed to its routers
            created REAL NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (account, key)
        );

        CREATE TABLE apn_devices (
            id                   TEXT PRIMARY KEY,
            account              TEXT NOT NULL,
            network              TEXT NOT NULL,
            cli                  TEXT NOT NULL,       -- as given
            cli_key              TEXT NOT NULL,       -- "msisdn:<digits>" | "imsi:<digits>"
            sim_number           TEXT,                -- ICCID as given
            soc                  TEXT,
            internal_soc         TEXT,
            description          TEXT,
            ip_address           TEXT,
            friendly_name        TEXT,
            metadata             TEXT,                -- JSON object (ProvisioningMetaData)
            start_date           REAL NOT NULL,
            end_date             REAL,                -- set by DELETE
            status               INTEGER NOT NULL DEFAULT 0,
            version              INTEGER NOT NULL DEFAULT 1,
            actor_status         INTEGER NOT NULL DEFAULT 0,
            network_status       INTEGER NOT NULL DEFAULT 0,
            enabled              INTEGER NOT NULL DEFAULT 1,
            lock_imei            INTEGER NOT NULL DEFAULT 0,
            imei                 TEXT,
            refused_imei         TEXT,
            last_sync            REAL,
            last_connected_start REAL,
            last_connected_end   REAL,
            last_connected_mcc   TEXT,
            last_connected_mnc   TEXT,
            imsi                 TEXT,                -- digits: matched against CPE reports
            iccid                TEXT,
            msisdn               TEXT,
            router               TEXT,                -- devices.id last seen with this SIM
            created              REAL NOT NULL,
            updated              REAL NOT NULL,
            FOREIGN KEY (account, network) REFERENCES apn_networks (account, key)
        );
        -- One CLI and one SIM per network among devices not removed; the indexes are the
        -- guard even when two creates race.
        CREATE UNIQUE INDEX apn_devices_cli ON apn_devices (account, network, cli_key)
            WHERE end_date IS NULL;
        CREATE UNIQUE INDEX apn_devices_iccid ON apn_devices (account, network, iccid)
            WHERE iccid IS NOT NULL AND end_date IS NULL;
        -- A session's SIM is looked up by any of its three numbers.
        CREATE INDEX apn_devices_imsi ON apn_devices (imsi) WHERE imsi IS NOT NULL;
        CREATE INDEX apn_devices_sim ON apn_devices (iccid) WHERE iccid IS NOT NULL;
        CREATE INDEX apn_devices_msisdn ON apn_devices (msisdn) WHERE msisdn IS NOT NULL;
        -- Lists page through a network by id.
        CREATE INDEX apn_devices_network ON apn_devices (account, network, id);

        CREATE TABLE apn_operations (
            id          TEXT PRIMARY KEY,
            account     TEXT NOT NULL,
            kind        TEXT NOT NULL,                -- create | delete
            resource_id TEXT,
            state       TEXT NOT NULL,                -- pending | complete | failed
            created     REAL NOT NULL,
            done        REAL
        );

        -- A token may be scoped to one APN API account (acsd token create --apn-account).
        ALTER TABLE tokens ADD COLUMN apn_account TEXT;
        """,
    ),
    Migration(
        6,
        "cwmp sessions parked between workers",
        """
        -- A session whose CPE dropped its TCP connection mid-session, saved by the worker
        -- that ran it so that whichever worker the CPE reconnects to can go on with it.
        -- Rows live for seconds; a claim deletes them.
        CREATE TABLE cwmp_sessions (
            id      TEXT PRIMARY KEY,                 -- the session cookie
            state   BLOB NOT NULL,
            parked  REAL NOT NULL
        );
        """,
    ),
    Migration(
        7,
        "device read plans and SIM numbers",
        """
        -- JSON: the exact status leaves of this CPE, the refs they hang off and when its
        -- whole tree was last read (acsd.provisioning.status.ReadPlan); NULL = none yet.
        ALTER TABLE devices ADD COLUMN read_plan TEXT;
        -- JSON: the SIM numbers the router last reported (imsi, iccid, msisdn; {} = no
        -- SIM), so a session finds its SIM's APN without the parameter tree. NULL = not
        -- known yet (a record from before this column).
        ALTER TABLE devices ADD COLUMN sim TEXT;
        """,
    ),
    Migration(
        8,
        "an index that covers the device list's filters",
        """
        -- The device list filters by customer, state, online (last_inform against the
        -- interval) and a search over serial, name, notes and MAC, then counts all that
        -- match. Rows carry several KB of parameters each; this index holds just the
        -- filtered columns, so a filtered list scans a few MB instead of the whole table.
        CREATE INDEX devices_filters ON devices (
            customer, state, last_inform, periodic_interval, mac_key, serial_number, name,
            notes, id
        );
        """,
    ),
    Migration(
        9,
        "parked cwmp sessions of CPEs that keep no cookies",
        """
        -- The CPE's address, for a session whose CPE never sent its cookie back: its next
        -- request (on a new connection, to any worker) can only be matched by address.
        -- NULL: a CPE that keeps cookies, taken up by its cookie alone.
        ALTER TABLE cwmp_sessions ADD COLUMN remote_ip TEXT;
        CREATE INDEX cwmp_sessions_by_address ON cwmp_sessions (remote_ip)
            WHERE remote_ip IS NOT NULL;
        """,
    ),
    Migration(
        10,
        "internet lines superseded by a later line of their router are ENDED",
        """
        -- A line replaced by a later one of the same router (an upgrade) is ENDED: its
        -- address and additional range go back to the provider, and a later confirm may
        -- take them. The uniqueness of addresses holds among the lines that are not ENDED.
        UPDATE internet_accounts SET state = 'ENDED'
        WHERE state = 'ACTIVE' AND device IS NOT NULL AND EXISTS (
            SELECT 1 FROM internet_accounts AS newer
            WHERE newer.device = internet_accounts.device AND newer.state = 'ACTIVE'
              AND (newer.start_date > internet_accounts.start_date
                   OR (newer.start_date = internet_accounts.start_date
                       AND newer.id > internet_accounts.id))
        );
        DROP INDEX internet_accounts_ip_address;
        CREATE UNIQUE INDEX internet_accounts_ip_address ON internet_accounts (ip_address)
            WHERE ip_address IS NOT NULL AND state != 'ENDED';
        """,
    ),
    Migration(
        11,
        "whether a device's MAC address is one its router reported",
        """
        -- 1: the router filled in the MAC (the record had none); 0: an operator wrote it,
        -- or a record from before this column (kept as the operator's, as it was). An
        -- operator's MAC is taken from the record of a router that only reported it.
        ALTER TABLE devices ADD COLUMN mac_from_router INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    Migration(
        12,
        "parked cwmp sessions found by their CPE's serial number",
        """
        -- The serial key of the CPE a parked session belongs to: a new Inform of that CPE,
        -- on whichever worker, ends it. NULL: parked by an older acsd (ended at its timeout).
        ALTER TABLE cwmp_sessions ADD COLUMN serial_key TEXT;
        CREATE INDEX cwmp_sessions_by_serial ON cwmp_sessions (serial_key)
            WHERE serial_key IS NOT NULL;
        """,
    ),
    Migration(
        13,
        "APN devices found by the router last seen with their SIM",
        """
        -- A router's session that reports another SIM than an APN device's: that device is
        -- no longer connected through it (apn.record_apn_session).
        CREATE INDEX apn_devices_router ON apn_devices (router)
            WHERE router IS NOT NULL AND end_date IS NULL;
        """,
    ),
    Migration(
        14,
        "APN devices found by their CLI, removed ones too",
        """
        -- GET and DELETE .../apns/{CLI} find the network's device of that CLI, the live
        -- one or else the last removed (apn.find_apn_device). apn_devices_cli holds live
        -- devices only, so that look-up read every device of the network: ~35 ms a
        -- request at 100k, on the one reader connection every API read waits for.
        CREATE INDEX apn_devices_by_cli ON apn_devices (account, network, cli_key, end_date);
        """,
    ),
    Migration(
        15,
        "APN devices' CLI keys without a country code's leading zeros",
        "",
        code=_rekey_clis,
    ),
    Migration(
        16,
        "internet lines remember the line they replace",
        REPLACES_SQL,
    ),
    Migration(
        17,
        "connection request claims shared by every process on the database",
        """
        -- Until when (POSIX seconds on the database's clock, never a process's) the router
        -- of a device is not sent another Connection Request by any process sharing the
        -- database (workers, instances): acsd.cwmp.connreq. One row per device that was
        -- ever sent one, gone with the device.
        CREATE TABLE cr_claims (
            device TEXT PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
            until  REAL NOT NULL
        );
        """,
    ),
    Migration(
        18,
        "the Connection Request username the router reports, in a column",
        """
        -- A Connection Request names the username the router holds; read from the stored
        -- tree it took 30-45 ms of the reader per API write to a 100k-leaf router. Sessions
        -- write it with the tree's values from now on (acsd.store.writes.reported_username).
        ALTER TABLE devices ADD COLUMN reported_cr_username TEXT;
        UPDATE devices SET reported_cr_username = coalesce(
            nullif(json_extract(
                params, '$."InternetGatewayDevice.ManagementServer.ConnectionRequestUsername"[0]'
            ), ''),
            json_extract(params, '$."Device.ManagementServer.ConnectionRequestUsername"[0]'))
        WHERE instr(params, '.ManagementServer.ConnectionRequestUsername"') > 0;
        """,
    ),
    Migration(
        19,
        "devices_filters without notes on PostgreSQL",
        """
        -- PostgreSQL's step: an entry of its btree indexes holds at most ~2.7 KB, and a
        -- device's notes are free text of any length, so long notes failed every write of
        -- the device. SQLite's indexes take values of any length: nothing to do here.
        """,
    ),
    Migration(
        20,
        "an index of the devices' job states",
        f"""
        -- GET /network/device?job=FAILED (acsd device list --job) read and parsed every
        -- row's provisioning memory: ~0.8 s a page at 100k routers, on the one reader every
        -- API read waits for. An index on the expression rather than a column the writers
        -- keep: it is right whoever writes the row (sessions, the API, a restore, a hand
        -- edit), and costs a session's save one small JSON parse. id next: a page of one
        -- state comes in id order from the index; customer, state and the online columns
        -- after it, so a tenant's or an online= list is filtered before its rows are read.
        CREATE INDEX devices_job_state ON devices (
            {JOB_STATE_SQL}, id, customer, state, last_inform, periodic_interval
        );
        """,
    ),
    Migration(
        21,
        "the UDP Connection Request address the router reports, in a column",
        """
        -- Where a router behind NAT takes a UDP Connection Request (TR-069 Annex G): its
        -- ManagementServer.UDPConnectionRequestAddress, kept beside the
        -- ConnectionRequestURL so that a Connection Request reads no tree. Sessions write
        -- it from now on; a router that reported one before reports it again.
        ALTER TABLE devices ADD COLUMN udp_connection_request_address TEXT;
        """,
    ),
    Migration(
        22,
        "an index of the devices' serial numbers in small letters",
        """
        -- A serial_key that is not its serial number's key (edited by hand, a bad
        -- migration in another tool) hid the record from its router's Informs, which
        -- then bound by MAC or made a second record of the serial. A look-up that misses
        -- by key looks here, and repairs the key it finds (acsd.store.records.REKEY). Not
        -- UNIQUE: a database may already hold two records of one serial.
        CREATE INDEX devices_serial_lower ON devices (lower(serial_number));
        """,
    ),
    Migration(
        23,
        "API tokens that expire, and when each was last used",
        """
        -- POSIX seconds from which the token is refused as a revoked one is (acsd token
        -- create --expires). NULL: it never expires, as every token made before this step.
        ALTER TABLE tokens ADD COLUMN expires REAL;
        -- When the token last authenticated an API request, to the minute or so: a request
        -- only notes it in memory, and each process writes it at most once a minute per
        -- token (acsd.api.token_uses). NULL: not since this step, as every older token.
        ALTER TABLE tokens ADD COLUMN last_used REAL;
        """,
    ),
    Migration(
        24,
        "an index of the APN operations by when they were done",
        """
        -- The retention prune (acsd.retention) deletes the operations done before its
        -- cutoff, oldest first, a thousand at a time: without an index each of those
        -- statements read the whole table. (The audit log's prune has audit_at, step 3.)
        CREATE INDEX apn_operations_done ON apn_operations (done);
        """,
    ),
]


def latest_version() -> int:
    return MIGRATIONS[-1].version if MIGRATIONS else 0


def _check_numbering(migrations: list[Migration]) -> None:
    # A gap or duplicate would silently skip or double-apply a step in the field.
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise SchemaError(
                f"migration list is broken: expected version {expected}, "
                f"found {migration.version} ({migration.description})"
            )


def split_statements(sql: str) -> list[str]:
    """Split a script into statements (``executescript`` would COMMIT our transaction)."""
    statements: list[str] = []
    pending = ""
    for chunk in sql.split(";"):
        pending += chunk + ";"
        # complete_statement() knows about strings, comments and CREATE TRIGGER ... END;
        if sqlite3.complete_statement(pending):
            text = pending.strip()
            if _has_code(text):
                statements.append(text)
            pending = ""
    if _has_code(pending.rstrip(";")):
        raise SchemaError(f"incomplete SQL statement in migration: {pending.strip()[:80]!r}")
    return statements


def _has_code(text: str) -> bool:
    lines = [line.split("--", 1)[0].strip() for line in text.splitlines()]
    return any(line and line != ";" for line in lines)


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  REAL NOT NULL
)
"""


async def applied_versions(conn: aiosqlite.Connection) -> list[int]:
    rows = await conn.execute_fetchall("SELECT version FROM schema_migrations ORDER BY version")
    return [row[0] for row in rows]


def _refuse_future(done: list[int], known: int) -> None:
    if done and done[-1] > known:
        raise SchemaError(
            f"database schema is version {done[-1]} but this acsd knows only up to {known}: "
            "it was written by a newer acsd; upgrade acsd (migrations are forward-only)"
        )


async def pending(conn: aiosqlite.Connection) -> bool:
    """Whether migrate() has anything to do or say: a step of this acsd's schema the
    database lacks (a new one lacks them all), or one of a newer acsd's (refused)."""
    await conn.execute(_CREATE_TABLE)
    return set(await applied_versions(conn)) != {m.version for m in MIGRATIONS}


async def migrate(
    conn: aiosqlite.Connection, migrations: list[Migration] | None = None
) -> list[int]:
    """Apply every pending migration; return the versions applied (empty when up to date).

    ``conn`` must be in autocommit mode (``isolation_level=None``): the steps run in one
    transaction of their own, so that a step that refuses (or fails) leaves the database
    as it was, at the version the installed acsd runs, not halfway at one no acsd opens.
    Raises :class:`SchemaError` when the database was written by a newer acsd.
    """
    migrations = MIGRATIONS if migrations is None else migrations
    _check_numbering(migrations)
    known = migrations[-1].version if migrations else 0

    await conn.execute(_CREATE_TABLE)
    done = await applied_versions(conn)
    _refuse_future(done, known)
    if all(m.version in done for m in migrations):
        return []
    applied: list[int] = []
    await conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        done = await applied_versions(conn)
        _refuse_future(done, known)
        for migration in migrations:
            if migration.version in done:
                continue
            for statement in split_statements(migration.sql):
                await conn.execute(statement)
            if migration.code is not None:
                await migration.code(conn)
            await conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.description, clock.now()),
            )
            # user_version lets `sqlite3 acsd.db 'PRAGMA user_version'` tell the version.
            await conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            applied.append(migration.version)
        await conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise
    return applied
