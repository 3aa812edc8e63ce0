"""Writes made with the ``acsd`` command on the server are in the audit log too, with the
local user as their author: the README says every write is audited."""

from __future__ import annotations

import json
import os
import pwd
import re

from api_world import token
from apiclient import Api


def _entries(daemon, admin: str) -> list[dict]:
    reply = Api(daemon.api_url, admin).get("/audit", query={"limit": 1000})
    assert reply.status == 200
    return reply.body["items"]


def test_device_apply_and_tokens_are_audited_with_the_local_user(daemon):
    admin = token(daemon, "ADMIN")
    author = f"cli:{pwd.getpwuid(os.getuid()).pw_name}"
    made = [e for e in _entries(daemon, admin) if e["action"] == "token.create"]
    assert len(made) == 1 and made[0]["tokenName"] == author and made[0]["role"] == "CLI"
    assert made[0]["after"] == {"role": "ADMIN", "customer": None, "name": "test ADMIN",
                                "apnAccount": None, "expires": None}  # fmt: skip
    assert admin not in json.dumps(made)  # the token itself is shown once, on stdout only

    wifi = {"enabled": True, "ssid": "Lobby", "password": "correct-horse-1"}
    device = daemon.apply({"serialNumber": "AUDIT0001", "name": "front desk", "wifi": wifi})
    daemon.apply({"serialNumber": "AUDIT0001", "name": "back office", "wifi": wifi})
    writes = [e for e in _entries(daemon, admin) if e["resource"] == "device"]
    update, create = writes  # newest first
    assert create["action"] == "device.create" and update["action"] == "device.update"
    assert create["resourceId"] == update["resourceId"] == device["_id"]
    # entries are records with an "_id", as every other record of the API
    assert re.fullmatch(r"[0-9a-f]{24}", create["_id"]) and create["_id"] != update["_id"]
    assert "id" not in create
    assert create["tokenName"] == update["tokenName"] == author
    assert "before" not in create and create["after"]["name"] == "front desk"
    assert update["before"]["name"] == "front desk" and update["after"]["name"] == "back office"
    assert update["after"]["wifi"]["password"] == "***"
    assert "correct-horse-1" not in json.dumps(writes)

    token_id = made[0]["resourceId"]
    assert daemon.cli("token", "revoke", token_id).returncode == 0
    assert daemon.cli("token", "revoke", token_id, check=False).returncode == 1
    other = token(daemon, "ADMIN")
    revoked = [e for e in _entries(daemon, other) if e["action"] == "token.revoke"]
    assert [(e["resourceId"], e["tokenName"]) for e in revoked] == [(token_id, author)]


def test_the_cli_author_is_the_account_not_what_the_environment_says(tmp_path):
    # getpass.getuser() reads $USER first: `USER=ceo acsd token create` was cli:ceo
    from conftest import run_cli

    config = tmp_path / "acsd.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "acsd.db"}"\n')
    assert run_cli("db", "migrate", "--config", str(config)).returncode == 0
    env = {"USER": "ceo", "LOGNAME": "ceo"}
    made = run_cli("token", "create", "--role", "ADMIN", "--config", str(config), env=env)
    assert made.returncode == 0, made.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "acsd.db") as db:
        [(name,)] = db.execute("SELECT token_name FROM audit").fetchall()
    assert name == f"cli:{pwd.getpwuid(os.getuid()).pw_name}"
