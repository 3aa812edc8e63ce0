"""PostgreSQL tables and migrations, numbered as :data:`acsd.store.schema.MIGRATIONS`.

Each step reaches the same schema as the SQLite step of its number, so a version means the
same tables on both backends (``schema_migrations`` tells it). The differences are the
types only: REAL is DOUBLE PRECISION, BLOB is BYTEA, and the two JSON columns that are
queried inside (a device's ``params``, merged with ``||``; an internet account's
``confirm``, whose ranges the address check reads) are JSONB. The other JSON columns stay
TEXT, as in SQLite: their object keys keep the order they were written in.

Several acsd instances may start at once against one database: every step runs in its
own transaction under a transaction-level advisory lock, and re-reads what is applied
once it holds it, so a step is applied exactly once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from acsd import clock
from acsd.store import clikeys
from acsd.store.base import SchemaError
from acsd.store.schema import MIGRATIONS as SQLITE_MIGRATIONS
from acsd.store.schema import REPLACES_SQL


@dataclass(frozen=True, slots=True)
class PgMigration:
    version: int
    sql: str
    #: as :attr:`acsd.store.schema.Migration.code`: run after ``sql``, in its transaction
    code: Callable[[asyncpg.Connection], Awaitable[None]] | None = None


async def _rekey_clis(conn: asyncpg.Connection) -> None:
    """Step 15, as SQLite's (acsd.store.clikeys): refused while two live devices would
    be one SIM."""
    changes = clikeys.rekeys(await conn.fetch(clikeys.CANDIDATES_SQL))
    holders = []
    for change in changes:
        if change.live:
            holders += await conn.fetch(
                f"{clikeys.HOLDER_SQL} AND account = $1 AND cli_key = $2",
                change.account,
                change.key,
            )
    clikeys.refuse_collisions(changes, holders)
    for change in changes:
        await conn.execute(
            "UPDATE apn_devices SET cli_key = $1, msisdn = $2 WHERE id = $3",
            change.key,
            change.msisdn,
            change.id,
        )


#: the advisory lock key of acsd's migrations ("acsd" in ASCII)
MIGRATION_LOCK = 0x61637364
#: what every migration transaction starts with: no limit of the role's or database's
#: (a statement_timeout would fail a step that rewrites a large table at every start, and
#: a lock_timeout the wait for another instance that is migrating; either would keep acsd
#: from starting at all). SET LOCAL: for that transaction only, as a pooler needs.
_UNLIMITED = "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0"

PG_MIGRATIONS: list[PgMigration] = [
    PgMigration(
        1,
        """
        CREATE TABLE devices (
            id                     TEXT PRIMARY KEY,
            serial_number          TEXT NOT NULL,
            serial_key             TEXT NOT NULL UNIQUE,
            mac_address            TEXT,
            mac_key                TEXT,
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
            wifi                   TEXT,
            dhcp                   TEXT,
            state                  TEXT NOT NULL DEFAULT 'ACTIVE',
            revision               BIGINT NOT NULL DEFAULT 0,
            jobs                   BIGINT NOT NULL DEFAULT 0,
            status                 TEXT NOT NULL DEFAULT '{}',
            public_ip              TEXT,
            last_inform            DOUBLE PRECISION,
            periodic_interval      BIGINT,
            params                 JSONB NOT NULL DEFAULT '{}',
            absent_paths           TEXT NOT NULL DEFAULT '[]',
            connection_request_url TEXT,
            created                DOUBLE PRECISION NOT NULL,
            updated                DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX devices_mac_key ON devices (mac_key);
        CREATE INDEX devices_last_inform ON devices (last_inform);
        CREATE INDEX devices_customer ON devices (customer);
        """,
    ),
    PgMigration(
        2,
        """
        ALTER TABLE devices ADD COLUMN provisioning TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE devices ADD COLUMN drift_check INTEGER NOT NULL DEFAULT 1;
        """,
    ),
    PgMigration(
        3,
        """
        CREATE TABLE customers (
            id       TEXT PRIMARY KEY,
            name     TEXT NOT NULL,
            type     TEXT NOT NULL DEFAULT 'CUSTOMER',
            reseller TEXT REFERENCES customers (id),
            created  DOUBLE PRECISION NOT NULL,
            updated  DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX customers_reseller ON customers (reseller);
        CREATE TABLE tokens (
            id       TEXT PRIMARY KEY,
            hash     TEXT NOT NULL UNIQUE,
            role     TEXT NOT NULL,
            customer TEXT,
            name     TEXT NOT NULL DEFAULT '',
            created  DOUBLE PRECISION NOT NULL,
            revoked  DOUBLE PRECISION
        );
        CREATE TABLE models (
            id          TEXT PRIMARY KEY,
            name        TEXT NOT NULL,
            type        TEXT NOT NULL,
            brand       TEXT,
            description TEXT,
            picture     TEXT,
            profile     TEXT,
            created     DOUBLE PRECISION NOT NULL,
            updated     DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE audit (
            id          TEXT PRIMARY KEY,
            at          DOUBLE PRECISION NOT NULL,
            action      TEXT NOT NULL,
            resource    TEXT NOT NULL,
            resource_id TEXT,
            token_id    TEXT,
            token_name  TEXT,
            role        TEXT,
            customer    TEXT,
            "before"    TEXT,
            "after"     TEXT,
            request_id  TEXT
        );
        CREATE INDEX audit_at ON audit (at);
        ALTER TABLE devices ADD COLUMN cr_username TEXT;
        ALTER TABLE devices ADD COLUMN cr_password TEXT;
        """,
    ),
    PgMigration(
        4,
        """
        CREATE TABLE internet_accounts (
            id         TEXT PRIMARY KEY,
            customer   TEXT NOT NULL,
            name       TEXT NOT NULL,
            device     TEXT,
            state      TEXT NOT NULL DEFAULT 'ORDERED',
            confirm    JSONB,
            start_date DOUBLE PRECISION,
            ip_address TEXT,
            created    DOUBLE PRECISION NOT NULL,
            updated    DOUBLE PRECISION NOT NULL
        );
        CREATE UNIQUE INDEX internet_accounts_ip_address ON internet_accounts (ip_address)
            WHERE ip_address IS NOT NULL;
        CREATE INDEX internet_accounts_device ON internet_accounts (device);
        CREATE INDEX internet_accounts_customer ON internet_accounts (customer);
        CREATE INDEX internet_accounts_pending ON internet_accounts (start_date)
            WHERE state = 'CONFIRMED';
        ALTER TABLE devices ADD COLUMN internet_account TEXT;
        """,
    ),
    PgMigration(
        5,
        """
        CREATE TABLE apn_accounts (
            key               TEXT PRIMARY KEY,
            billing_cycle_day BIGINT,
            email_contact     TEXT,
            tenant_id         TEXT,
            created           DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE apn_networks (
            account TEXT NOT NULL REFERENCES apn_accounts (key),
            key     TEXT NOT NULL,
            apn     TEXT,
            created DOUBLE PRECISION NOT NULL,
            updated DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (account, key)
        );
        CREATE TABLE apn_devices (
            id                   TEXT PRIMARY KEY,
            account              TEXT NOT NULL,
            network              TEXT NOT NULL,
            cli                  TEXT NOT NULL,
            cli_key              TEXT NOT NULL,
            sim_number           TEXT,
            soc                  TEXT,
            internal_soc         TEXT,
            description          TEXT,
            ip_address           TEXT,
            friendly_name        TEXT,
            metadata             TEXT,
            start_date           DOUBLE PRECISION NOT NULL,
            end_date             DOUBLE PRECISION,
            status               BIGINT NOT NULL DEFAULT 0,
            version              BIGINT NOT NULL DEFAULT 1,
            actor_status         BIGINT NOT NULL DEFAULT 0,
            network_status       BIGINT NOT NULL DEFAULT 0,
            enabled              INTEGER NOT NULL DEFAULT 1,
            lock_imei            INTEGER NOT NULL DEFAULT 0,
            imei                 TEXT,
            refused_imei         TEXT,
            last_sync            DOUBLE PRECISION,
            last_connected_start DOUBLE PRECISION,
            last_connected_end   DOUBLE PRECISION,
            last_connected_mcc   TEXT,
            last_connected_mnc   TEXT,
            imsi                 TEXT,
            iccid                TEXT,
            msisdn               TEXT,
            router               TEXT,
            created              DOUBLE PRECISION NOT NULL,
            updated              DOUBLE PRECISION NOT NULL,
            FOREIGN KEY (account, network) REFERENCES apn_networks (account, key)
        );
        CREATE UNIQUE INDEX apn_devices_cli ON apn_devices (account, network, cli_key)
            WHERE end_date IS NULL;
        CREATE UNIQUE INDEX apn_devices_iccid ON apn_devices (account, network, iccid)
            WHERE iccid IS NOT NULL AND end_date IS NULL;
        CREATE INDEX apn_devices_imsi ON apn_devices (imsi) WHERE imsi IS NOT NULL;
        CREATE INDEX apn_devices_sim ON apn_devices (iccid) WHERE iccid IS NOT NULL;
        CREATE INDEX apn_devices_msisdn ON apn_devices (msisdn) WHERE msisdn IS NOT NULL;
        CREATE INDEX apn_devices_network ON apn_devices (account, network, id);
        CREATE TABLE apn_operations (
            id          TEXT PRIMARY KEY,
            account     TEXT NOT NULL,
            kind        TEXT NOT NULL,
            resource_id TEXT,
            state       TEXT NOT NULL,
            created     DOUBLE PRECISION NOT NULL,
            done        DOUBLE PRECISION
        );
        ALTER TABLE tokens ADD COLUMN apn_account TEXT;
        """,
    ),
    PgMigration(
        6,
        """
        CREATE TABLE cwmp_sessions (
            id      TEXT PRIMARY KEY,
            state   BYTEA NOT NULL,
            parked  DOUBLE PRECISION NOT NULL
        );
        """,
    ),
    PgMigration(
        7,
        """
        ALTER TABLE devices ADD COLUMN read_plan TEXT;
        ALTER TABLE devices ADD COLUMN sim TEXT;
        """,
    ),
    PgMigration(
        8,
        """
        CREATE INDEX devices_filters ON devices (
            customer, state, last_inform, periodic_interval, mac_key, serial_number, name,
            notes, id
        );
        """,
    ),
    PgMigration(
        9,
        """
        ALTER TABLE cwmp_sessions ADD COLUMN remote_ip TEXT;
        CREATE INDEX cwmp_sessions_by_address ON cwmp_sessions (remote_ip)
            WHERE remote_ip IS NOT NULL;
        """,
    ),
    PgMigration(
        10,
        """
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
    PgMigration(
        11,
        "ALTER TABLE devices ADD COLUMN mac_from_router INTEGER NOT NULL DEFAULT 0;",
    ),
    PgMigration(
        12,
        """
        ALTER TABLE cwmp_sessions ADD COLUMN serial_key TEXT;
        CREATE INDEX cwmp_sessions_by_serial ON cwmp_sessions (serial_key)
            WHERE serial_key IS NOT NULL;
        """,
    ),
    PgMigration(
        13,
        """
        CREATE INDEX apn_devices_router ON apn_devices (router)
            WHERE router IS NOT NULL AND end_date IS NULL;
        """,
    ),
    PgMigration(
        14,
        "CREATE INDEX apn_devices_by_cli ON apn_devices (account, network, cli_key, end_date);",
    ),
    PgMigration(15, "", code=_rekey_clis),
    PgMigration(16, REPLACES_SQL),
    PgMigration(
        17,
        """
        CREATE TABLE cr_claims (
            device TEXT PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
            until  DOUBLE PRECISION NOT NULL
        );
        """,
    ),
    PgMigration(
        18,
        """
        ALTER TABLE devices ADD COLUMN reported_cr_username TEXT;
        UPDATE devices SET reported_cr_username = coalesce(
            nullif(params -> 'InternetGatewayDevice.ManagementServer.ConnectionRequestUsername'
                   ->> 0, ''),
            params -> 'Device.ManagementServer.ConnectionRequestUsername' ->> 0)
        WHERE params ?| ARRAY['InternetGatewayDevice.ManagementServer.ConnectionRequestUsername',
                              'Device.ManagementServer.ConnectionRequestUsername'];
        """,
    ),
    PgMigration(
        19,
        """
        -- An index entry holds at most ~2.7 KB (a third of a page, compressed), and a
        -- device's notes are free text of any length: notes past that failed every write of
        -- the device (500). A search reads them from the table instead; the other columns
        -- are bounded (a name of 200 characters, a serial number of 64).
        DROP INDEX devices_filters;
        CREATE INDEX devices_filters ON devices (
            customer, state, last_inform, periodic_interval, mac_key, serial_number, name, id
        );
        """,
    ),
    PgMigration(
        20,
        """
        -- As SQLite's step 20: the state of the job a device shows, in an index on the
        -- expression. A function, for what an expression cannot say: a memory that is no
        -- JSON (a row edited by hand) has no job rather than failing its every write.
        -- IMMUTABLE: it reads its arguments only (the index needs that). Not PARALLEL
        -- SAFE: its EXCEPTION block is a subtransaction, which a parallel worker cannot
        -- start (the index build of a large table and a parallel scan failed with it).
        CREATE FUNCTION acsd_job_state(provisioning TEXT, revision BIGINT) RETURNS TEXT
        LANGUAGE plpgsql IMMUTABLE STRICT AS $$
        DECLARE
            job JSONB;
        BEGIN
            IF revision <= 0 THEN
                RETURN NULL;
            END IF;
            job := provisioning::jsonb -> 'job';
            IF jsonb_typeof(job) = 'object' AND job -> 'revision' = to_jsonb(revision)
                    AND jsonb_typeof(job -> 'state') = 'string' THEN
                RETURN job ->> 'state';
            END IF;
            RETURN NULL;
        EXCEPTION WHEN invalid_text_representation THEN
            RETURN NULL;
        END
        $$;
        CREATE INDEX devices_job_state ON devices (
            acsd_job_state(provisioning, revision), id, customer, state, last_inform,
            periodic_interval
        );
        """,
    ),
    PgMigration(21, "ALTER TABLE devices ADD COLUMN udp_connection_request_address TEXT;"),
    PgMigration(22, "CREATE INDEX devices_serial_lower ON devices (lower(serial_number));"),
    PgMigration(
        23,
        """
        ALTER TABLE tokens ADD COLUMN expires DOUBLE PRECISION;
        ALTER TABLE tokens ADD COLUMN last_used DOUBLE PRECISION;
        """,
    ),
    PgMigration(24, "CREATE INDEX apn_operations_done ON apn_operations (done);"),
]


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  DOUBLE PRECISION NOT NULL
)
"""


def _check_pairing(migrations: list[PgMigration]) -> None:
    # Version N must mean the same schema on both backends: a step added to one list only
    # would make the other's databases claim a version they do not have.
    mine = [m.version for m in migrations]
    theirs = [m.version for m in SQLITE_MIGRATIONS]
    if mine != theirs:
        raise SchemaError(
            f"PostgreSQL migrations {mine[-1:] or 'none'} do not match the SQLite ones "
            f"{theirs[-1:] or 'none'}: every schema version needs a step for both"
        )


async def applied_versions(conn: asyncpg.Connection) -> list[int]:
    rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    return [row[0] for row in rows]


def _refuse_future(done: list[int], known: int) -> None:
    if done and done[-1] > known:
        raise SchemaError(
            f"database schema is version {done[-1]} but this acsd knows only up to {known}: "
            "it was written by a newer acsd; upgrade acsd (migrations are forward-only)"
        )


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply every pending step; the versions applied (empty when up to date)."""
    _check_pairing(PG_MIGRATIONS)
    descriptions = {m.version: m.description for m in SQLITE_MIGRATIONS}
    known = PG_MIGRATIONS[-1].version
    async with conn.transaction():
        await conn.execute(_UNLIMITED)
        # CREATE TABLE IF NOT EXISTS races with itself in PostgreSQL: under the lock.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(_CREATE_TABLE)
    applied: list[int] = []
    # Every pending step in one transaction: one that refuses (or fails) leaves the
    # database as it was, at the version the installed acsd runs, not halfway at one
    # no acsd opens.
    async with conn.transaction():
        await conn.execute(_UNLIMITED)
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        done = await applied_versions(conn)
        _refuse_future(done, known)
        for migration in PG_MIGRATIONS:
            if migration.version in done:
                continue
            if migration.sql:
                # one simple-query call runs the whole script, inside this transaction
                await conn.execute(migration.sql)
            if migration.code is not None:
                await migration.code(conn)
            await conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at)"
                " VALUES ($1, $2, $3)",
                migration.version,
                descriptions[migration.version],
                clock.now(),
            )
            applied.append(migration.version)
    return applied
