"""`acsd device apply`: it refuses what the API refuses, the same way."""

from __future__ import annotations

import json
import sqlite3
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
        db.execute("UPDATE devices SET last_inform = 1 WHERE id = ?", (device["_id"],))
    api = Api(daemon.api_url, token(daemon, "ADMIN"))
    assert api.delete(f"/network/device/{device['_id']}").body["state"] == "DELETING"
    before = daemon.device_json("DELAPPLY01")
    proc = _apply(daemon, tmp_path, {"serialNumber": "DELAPPLY01", "wifi": {"ssid": "Two"}})
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "state: device DELAPPLY01" in proc.stderr and "being deleted" in proc.stderr
    assert daemon.device_json("DELAPPLY01") == before
    assert before["state"] == "DELETING"
