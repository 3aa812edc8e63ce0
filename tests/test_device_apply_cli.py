"""`acsd device apply`: it refuses what the API refuses, the same way."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from api_world import token
from apiclient import Api


def _apply(daemon, tmp_path: Path, body: dict):
    path = tmp_path / "apply.json"
    path.write_text(json.dumps(body))
    return daemon.cli("device", "apply", str(path), check=False)


def test_device_apply_leaves_a_device_being_deleted_alone(daemon, tmp_path: Path):
    device = daemon.apply({"serialNumber": "DELAPPLY01", "wifi": {"ssid": "One"}})
    with sqlite3.connect(daemon.db) as db:  # seen by acsd: released at its next session
        # (seen, and online: a DELETE of a router that is not goes at once)
        db.execute("UPDATE devices SET last_inform = ? WHERE id = ?", (time.time(), device["_id"]))
    api = Api(daemon.api_url, token(daemon, "ADMIN"))
    assert api.delete(f"/network/device/{device['_id']}").body["state"] == "DELETING"
    before = daemon.device_json("DELAPPLY01")
    proc = _apply(daemon, tmp_path, {"serialNumber": "DELAPPLY01", "wifi": {"ssid": "Two"}})
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "state: device DELAPPLY01" in proc.stderr and "being deleted" in proc.stderr
    assert daemon.device_json("DELAPPLY01") == before
    assert before["state"] == "DELETING"


def test_device_apply_validates_strictly_like_the_api(daemon, tmp_path: Path):
    """What the API refuses (strict JSON types) apply refuses too, one line each."""
    pool = {"ipPoolStart": "192.168.0.100", "ipPoolEnd": "192.168.0.200"}
    client = {"mac": "123456789013", "ip": "192.168.0.10", "enable": "yes"}
    cases = {
        "wifi.enabled": {"wifi": {"enabled": "true"}},
        "dhcp.leaseTime": {"dhcp": {"leaseTime": "10"}},
        "driftCheck": {"driftCheck": "no"},
        "dhcp.reservedClients.0.enable": {"dhcp": {**pool, "reservedClients": [client]}},
    }
    for where, extra in cases.items():
        proc = _apply(daemon, tmp_path, {"serialNumber": "STRICT01", **extra})
        assert proc.returncode == 1 and proc.stdout == "", (where, proc.stdout)
        assert proc.stderr.splitlines() == [
            f"acsd: {tmp_path / 'apply.json'}: {where}: Input should be a valid boolean"
            if where != "dhcp.leaseTime"
            else f"acsd: {tmp_path / 'apply.json'}: {where}: Input should be a valid integer"
        ]
    assert json.loads(daemon.cli("device", "list", "--json").stdout) == []


def test_device_apply_says_what_is_wrong_with_a_file_in_one_line(daemon, tmp_path: Path):
    path = tmp_path / "odd.json"
    cases = {
        b'{"serialNumber": "ODD1", "name": "caf\xe9"}': "not UTF-8 text (byte 37)",
        b'{"serialNumber": "ODD1", "notes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}": (
            "invalid JSON: Nesting is too deep"
        ),
        b'{"serialNumber": "ODD1", "serialNumber": "ODD2"}': "invalid JSON: Duplicate key",
    }
    for raw, message in cases.items():
        path.write_bytes(raw)
        proc = daemon.cli("device", "apply", str(path), check=False)
        assert proc.returncode == 1 and proc.stdout == ""
        assert len(proc.stderr.splitlines()) == 1 and message in proc.stderr, proc.stderr
    assert json.loads(daemon.cli("device", "list", "--json").stdout) == []
