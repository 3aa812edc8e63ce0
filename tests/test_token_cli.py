"""`acsd token create/list/revoke`: ids in any case, names that are one line of text."""

from __future__ import annotations

from api_world import World, populate, token
from apiclient import Api


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
    assert listed and {"id", "role", "customer", "apnAccount", "name", "created", "revoked"} == set(
        listed[0]
    )
    assert any(t["role"] == "ADMIN" and t["revoked"] is None for t in listed)
    assert secret not in json.dumps(listed)
