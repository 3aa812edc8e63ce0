"""`acsd token create/list/revoke`: ids in any case, names that are one line of text,
tokens that expire, and when each was last used."""

from __future__ import annotations

import json
import signal
import time

from acsd.api.auth import hash_token
from api_world import World, populate, token
from apiclient import Api
from conftest import wait_for


def _token_lines(daemon) -> list[str]:
    return daemon.cli("token", "list").stdout.splitlines()[1:]


def test_token_ids_are_accepted_in_any_case(daemon):
    """README: ids are accepted in any case; token create --customer and token revoke
    refused upper-case ones."""
    world = World(api=Api(daemon.api_url, token(daemon, "ADMIN")))
    populate(world)
    own = world.customers["own"]
    owner = daemon.cli("token", "create", "--role", "OWNER", "--customer", own.upper())
    assert owner.returncode == 0 and owner.stderr == ""
    reply = Api(daemon.api_url, owner.stdout.strip()).get(f"/customer/{own}")
    assert reply.status == 200, reply.body
    [line] = [row for row in _token_lines(daemon) if "OWNER" in row]
    token_id = line.split()[0]
    assert line.split()[2] == own  # stored as acsd writes ids: lower case
    revoked = daemon.cli("token", "revoke", token_id.upper())
    assert revoked.stdout.strip() == f"revoked {token_id}"
    assert Api(daemon.api_url, owner.stdout.strip()).get(f"/customer/{own}").status == 401


def test_token_names_are_one_line_of_text_of_limited_length(daemon):
    before = _token_lines(daemon)
    for name, message in {
        "x\x1b[31mRED": "--name: must not hold control characters or line breaks",
        "first\nsecond": "--name: must not hold control characters or line breaks",
        "first\u2028second": "--name: must not hold control characters or line breaks",
        "n" * 100_000: "--name: String should have at most 200 characters",
    }.items():
        proc = daemon.cli("token", "create", "--role", "ADMIN", "--name", name, check=False)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.splitlines() == [f"acsd: {message}"]
    assert _token_lines(daemon) == before
    daemon.cli("token", "create", "--role", "ADMIN", "--name", "billing ünd co " + "n" * 185)
    assert "billing ünd co" in daemon.cli("token", "list").stdout


def test_revoking_by_the_token_itself_does_not_echo_it(daemon):
    # An operator who pasted the token instead of its ID got it printed back
    # ("acsd: no active token acsd_..."): a bearer secret on the terminal and in logs.
    secret = daemon.cli("token", "create", "--role", "ADMIN", "--name", "pasted").stdout.strip()
    revoked = daemon.cli("token", "revoke", secret, check=False)
    assert revoked.returncode == 2  # the argument is no ID: a usage error
    assert secret not in revoked.stdout + revoked.stderr
    assert secret[len("acsd_") :] not in revoked.stderr
    assert "token list" in revoked.stderr


def test_a_customer_the_records_refuse_is_a_failure_not_a_usage_error(daemon):
    """README, exit statuses: `--customer <unknown id>` exited 2, as if the command line
    were wrong; the line is right, the records say no (1). Wrong options stay 2."""
    world = World(api=Api(daemon.api_url, token(daemon, "ADMIN")))
    populate(world)
    before = _token_lines(daemon)
    unknown = "0" * 24
    for args, status, message in (
        (("--role", "OWNER", "--customer", unknown), 1, f"no customer {unknown}"),
        (("--role", "RESELLER", "--customer", world.customers["own"]), 1,
         f"customer {world.customers['own']} is not a RESELLER"),
        (("--role", "MANAGER"), 2, "a MANAGER token is bound to a customer: give --customer ID"
         " (or --apn-account KEY, for the APN API)"),
        (("--role", "OWNER"), 2, "an OWNER token is bound to a customer: give --customer ID"
         " (or --apn-account KEY, for the APN API)"),
        (("--role", "RESELLER"), 2,
         "a RESELLER token is bound to a customer: give --customer ID"),
        (("--role", "ADMIN", "--apn-account", "k1"), 2,
         "an ADMIN token manages every APN account already"),
    ):  # fmt: skip
        proc = daemon.cli("token", "create", *args, check=False)
        assert (proc.returncode, proc.stdout) == (status, ""), (args, proc.stderr)
        assert proc.stderr.splitlines() == [f"acsd: {message}"], args
    assert _token_lines(daemon) == before


def test_a_database_another_process_holds_locked_is_one_line_and_exit_1(tmp_path):
    # (a sqlite3 shell left in a transaction): a traceback of sqlite3.OperationalError
    import sqlite3

    from conftest import run_cli, write_config

    config = write_config(tmp_path)
    assert run_cli("db", "migrate", "--config", str(config)).returncode == 0
    holder = sqlite3.connect(tmp_path / "acsd.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        body = tmp_path / "device.json"
        body.write_text('{"serialNumber": "LOCKED001"}')
        for args in (("token", "create", "--role", "ADMIN"), ("device", "apply", str(body))):
            proc = run_cli(*args, "--config", str(config))
            assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
            assert "Traceback" not in proc.stderr and proc.stdout == "", proc.stderr
            line = proc.stderr.splitlines()[-1]  # (after the store's own log lines)
            assert line.startswith(f"acsd: {tmp_path / 'acsd.db'}: ") and "locked" in line, line
    finally:
        holder.rollback()
        holder.close()


def test_token_list_json_is_for_scripts_and_holds_no_secret(daemon):
    import json

    from api_world import token

    secret = token(daemon, "ADMIN")
    listed = json.loads(daemon.cli("token", "list", "--json").stdout)
    assert listed and set(listed[0]) == {
        "id", "role", "customer", "apnAccount", "name", "created", "expires", "lastUsed", "revoked"
    }  # fmt: skip
    assert any(t["role"] == "ADMIN" and t["revoked"] is None for t in listed)
    assert secret not in json.dumps(listed)


# -- expiry and last use ----------------------------------------------------------------


def _listed(daemon, name: str) -> dict:
    [found] = [t for t in json.loads(daemon.cli("token", "list", "--json").stdout)
               if t["name"] == name]  # fmt: skip
    return found


def _made(daemon, name: str, *args: str) -> str:
    return daemon.cli("token", "create", "--role", "ADMIN", "--name", name, *args).stdout.strip()


def test_a_token_past_its_expiry_is_refused_as_a_revoked_one(daemon):
    """An operator had no token that ends by itself (a contractor's): one made with
    --expires is refused 401 from then on, with the answer a revoked one gets; the log
    says it expired and whose it was, never the token itself."""
    lasting = _made(daemon, "for a quarter", "--expires", "90d")
    dated = _made(daemon, "until 2099", "--expires", "2099-01-31T18:00:00+01:00")
    _made(daemon, "lower-case", "--expires", "2099-01-31t17:00:00z")  # (RFC 3339 allows it)
    brief = _made(daemon, "contractor", "--expires", "2s")
    revoked = _made(daemon, "revoked")
    daemon.cli("token", "revoke", _listed(daemon, "revoked")["id"])
    assert _listed(daemon, "until 2099")["expires"] == "2099-01-31T17:00:00.000Z"
    assert _listed(daemon, "lower-case")["expires"] == "2099-01-31T17:00:00.000Z"
    quarter = _listed(daemon, "for a quarter")["expires"]
    assert 89 * 86400 < _seconds(quarter) - time.time() <= 90 * 86400
    time.sleep(2.5)
    for secret in (lasting, dated):
        assert Api(daemon.api_url, secret).get("/network/device").status == 200
    expired = Api(daemon.api_url, brief).get("/network/device")
    gone = Api(daemon.api_url, revoked).get("/network/device")
    assert expired.status == gone.status == 401
    assert expired.body == gone.body  # (no oracle either: one answer for the three)
    assert expired.body["message"] == "unauthorized"
    assert expired.headers["WWW-Authenticate"] == gone.headers["WWW-Authenticate"]
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
    [line] = daemon.events("api.auth_failed")  # (one per address a while: the first)
    assert line["reason"] == "expired token"
    assert line["token_id"] == _listed(daemon, "contractor")["id"]
    assert brief not in daemon.log_text() and brief[5:] not in daemon.log_text()
    # the table shows it too
    [row] = [r for r in _token_lines(daemon) if "contractor" in r]
    assert f"{_listed(daemon, 'contractor')['expires']} (expired)" in row
    [row] = [r for r in _token_lines(daemon) if "until 2099" in r]
    assert "(expired)" not in row


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_an_expiry_that_is_past_or_no_time_is_a_usage_error(daemon):
    before = _token_lines(daemon)
    forms = (
        "give a duration from now (90d, 12h, 30m, 45s, 2w) or an RFC 3339 date-time with "
        "its offset (2030-01-31T18:00:00Z, 2030-01-31T19:00:00+01:00)"
    )
    for value, message in (
        ("soon", f"--expires: neither a duration nor a date-time: {forms}"),
        ("90", f"--expires: neither a duration nor a date-time: {forms}"),
        ("-5d", f"--expires: neither a duration nor a date-time: {forms}"),
        ("2030-01-31T18:00:00", f"--expires: a date-time needs its offset: {forms}"),
        ("2030-01-31", f"--expires: a date alone: {forms}"),
        ("999999999w", "--expires: too far in the future (leave it out: no expiry)"),
        ("0001-01-01T00:00:00+14:00", "--expires: in the past"),
    ):
        # (=: argparse would take "-5d" for an option)
        proc = daemon.cli("token", "create", "--role", "ADMIN", f"--expires={value}", check=False)
        assert (proc.returncode, proc.stdout) == (2, ""), (value, proc.stderr)
        assert proc.stderr.splitlines() == [f"acsd: {message}"], value
    for value in ("2020-01-01T00:00:00Z", "0s"):
        proc = daemon.cli("token", "create", "--role", "ADMIN", "--expires", value, check=False)
        assert (proc.returncode, proc.stdout) == (2, ""), (value, proc.stderr)
        [line] = proc.stderr.splitlines()
        assert line.startswith("acsd: --expires: ") and "is not in the future (now " in line
    assert _token_lines(daemon) == before


def test_token_list_shows_when_each_token_was_last_used(daemon):
    """Written at once the first time, then at most once a minute per token however many
    requests it makes (never a write per request), and the latest use at the stop."""
    secret = _made(daemon, "billing")
    idle = _made(daemon, "idle")
    assert _listed(daemon, "billing")["lastUsed"] is None
    [row] = [r for r in _token_lines(daemon) if "billing" in r]
    assert row.split()[-2:] == ["never", "-"]  # LAST USED, REVOKED
    api = Api(daemon.api_url, secret)
    started = time.time()
    assert api.get("/network/device").status == 200
    first = wait_for(lambda: _listed(daemon, "billing")["lastUsed"])
    assert started - 1 <= _seconds(first) <= time.time()
    time.sleep(1.1)
    for _ in range(20):
        assert api.get("/network/device").status == 200
    latest = time.time()
    time.sleep(0.5)
    assert _listed(daemon, "billing")["lastUsed"] == first  # not a write per request
    assert daemon.stop(signal.SIGTERM) == 0
    # the stop wrote the last use it held (the CLI reads the file the daemon left)
    last = _listed(daemon, "billing")["lastUsed"]
    assert _seconds(first) + 1 <= _seconds(last) <= latest
    assert _listed(daemon, "idle")["lastUsed"] is None
    assert idle not in daemon.log_text()


async def test_tokens_made_before_the_upgrade_stay_valid_and_never_used(daemon_factory, tmp_path):
    """Schema 23 (expires, last_used) on a database an older acsd made: the tokens it held
    work as before, with no expiry and no use recorded until their next request."""
    import aiosqlite

    from acsd.store.schema import MIGRATIONS, migrate

    secret = "acsd_made-by-an-older-acsd"
    async with aiosqlite.connect(tmp_path / "acsd.db", isolation_level=None) as conn:
        assert await migrate(conn, MIGRATIONS[:22]) == list(range(1, 23))
        await conn.execute(
            "INSERT INTO tokens (id, hash, role, customer, name, created, revoked, apn_account)"
            " VALUES ('0123456789abcdef01234567', ?, 'ADMIN', NULL, 'older', 1000.0, NULL,"
            " NULL)",
            (hash_token(secret),),
        )
    daemon = daemon_factory()  # migrates at its start
    # (23 and every step since)
    applied = list(range(23, MIGRATIONS[-1].version + 1))
    assert [e["applied"] for e in daemon.events("store_migrated")] == [applied]
    older = _listed(daemon, "older")
    assert (older["expires"], older["lastUsed"], older["revoked"]) == (None, None, None)
    assert Api(daemon.api_url, secret).get("/network/device").status == 200
    assert wait_for(lambda: _listed(daemon, "older")["lastUsed"])


def test_instances_on_postgresql_share_expiry_and_last_use(daemon_factory, pg_url):
    """Two services on one PostgreSQL database: each refuses an expired token, and the
    last use either one wrote shows, the later one winning."""
    first = daemon_factory(store={"url": pg_url})
    second = daemon_factory(store={"url": pg_url})
    secret = _made(first, "shared")
    brief = _made(first, "brief", "--expires", "1s")
    assert Api(first.api_url, secret).get("/network/device").status == 200
    used = wait_for(lambda: _listed(first, "shared")["lastUsed"])
    time.sleep(1.1)
    assert Api(second.api_url, secret).get("/network/device").status == 200
    # (second has not written this token yet: its first use is written at once)
    wait_for(lambda: _listed(second, "shared")["lastUsed"] != used)
    assert _seconds(_listed(first, "shared")["lastUsed"]) > _seconds(used)
    for daemon in (first, second):
        assert Api(daemon.api_url, brief).get("/network/device").status == 401
