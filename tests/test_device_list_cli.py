"""`acsd device list`: what an operator sees of many devices."""

from __future__ import annotations

import json
import sqlite3


def _serials(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines() if "LIMIT" in line]


def test_device_list_says_when_the_limit_hides_devices(daemon):
    for n in range(3):
        daemon.apply({"serialNumber": f"LIMIT{n:04d}"})
    shown = daemon.cli("device", "list", "--limit", "2")
    assert _serials(shown.stdout) == ["LIMIT0000", "LIMIT0001"]
    assert (
        shown.stderr.strip() == "acsd: devices 1-2 of 3 shown; --after LIMIT0001 shows the next 1"
    )
    whole = daemon.cli("device", "list")
    assert len(_serials(whole.stdout)) == 3
    assert whole.stderr.strip() == "acsd: all 3 devices shown"
    for bad in ("0", "-1", "x", "99999999999999999999"):
        refused = daemon.cli("device", "list", "--limit", bad, check=False)
        assert refused.returncode == 2 and "--limit" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert "no devices yet" not in refused.stdout


def test_device_list_pages_with_offset(daemon):
    for n in range(3):
        daemon.apply({"serialNumber": f"LIMIT{n:04d}"})
    page = daemon.cli("device", "list", "--limit", "2", "--offset", "2")
    assert _serials(page.stdout) == ["LIMIT0002"]
    assert page.stderr.strip() == "acsd: devices 3-3 of 3 shown"
    past = daemon.cli("device", "list", "--offset", "5")
    assert "no devices yet" not in past.stdout  # there are: only not this far
    assert past.stderr.strip() == "acsd: no devices at --offset 5: there are 3"
    refused = daemon.cli("device", "list", "--offset", "-1", check=False)
    assert refused.returncode == 2 and "--offset" in refused.stderr


def test_device_list_walks_by_after_and_says_how_many_match(daemon):
    """--after, as the API's after: the next page starts past the last device shown, so a
    walk sees every device once while others are added and deleted (an --offset walk skips
    one when a device before it goes)."""
    for n in range(5):
        daemon.apply({"serialNumber": f"LIMIT{n:04d}"})
    first = daemon.cli("device", "list", "--limit", "2")
    assert _serials(first.stdout) == ["LIMIT0000", "LIMIT0001"]
    assert (
        first.stderr.strip() == "acsd: devices 1-2 of 5 shown; --after LIMIT0001 shows the next 2"
    )
    # meanwhile a device already shown goes: the next page is still the next two
    with sqlite3.connect(daemon.db) as db:
        db.execute("DELETE FROM devices WHERE serial_number = 'LIMIT0000'")
    second = daemon.cli("device", "list", "--limit", "2", "--after", "limit0001")  # any case
    assert _serials(second.stdout) == ["LIMIT0002", "LIMIT0003"]
    assert second.stderr.strip() == (
        "acsd: 2 of 4 devices shown, after limit0001; --after LIMIT0003 shows the next"
    )
    last = daemon.cli("device", "list", "--limit", "2", "--after", "LIMIT0003")
    assert _serials(last.stdout) == ["LIMIT0004"]
    assert last.stderr.strip() == "acsd: 1 of 4 devices shown, after LIMIT0003"
    past = daemon.cli("device", "list", "--after", "LIMIT0004")
    assert past.stderr.strip() == "acsd: no devices after LIMIT0004: there are 4"
    assert "no devices yet" not in past.stdout

    # --job lists in the order of ids, so its --after is the last device's _id
    ids = {}
    with sqlite3.connect(daemon.db) as db:
        for serial, device_id in db.execute("SELECT serial_number, id FROM devices"):
            ids[serial] = device_id
            job = {"revision": 1, "state": "FAILED" if serial != "LIMIT0002" else "DONE"}
            db.execute(
                "UPDATE devices SET revision = 1, provisioning = ? WHERE id = ?",
                (json.dumps({"job": job}), device_id),
            )
    failed = sorted((s for s in ids if s != "LIMIT0002"), key=ids.__getitem__)
    page = daemon.cli("device", "list", "--job", "FAILED", "--limit", "2")
    assert _serials(page.stdout) == failed[:2]
    assert page.stderr.strip() == (
        f"acsd: devices 1-2 of 3 with a FAILED job shown; --after {ids[failed[1]]} shows the next 1"
    )
    rest = daemon.cli("device", "list", "--job", "FAILED", "--after", ids[failed[1]].upper())
    assert _serials(rest.stdout) == failed[2:]
    assert rest.stderr.strip() == (
        f"acsd: 1 of 3 devices with a FAILED job shown, after {ids[failed[1]].upper()}"
    )
    whole = daemon.cli("device", "list", "--job", "DONE")
    assert whole.stderr.strip() == "acsd: 1 device with a DONE job shown"
    refused = daemon.cli("device", "list", "--job", "FAILED", "--after", "LIMIT0001", check=False)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == (
        "acsd: --after with --job takes the _id of a device (24 hex digits, as the list shows"
        " them), not 'LIMIT0001'"
    )


def test_device_list_and_show_json_are_the_apis_objects(daemon):
    """`--json` prints seed-000 objects, as the API answers them: the model's catalog entry
    joined in (modelType, modelBrand, modelDescription, modelPicture). A script that
    compares the two (or moves from one to the other) saw those four keys missing."""
    from api_world import build_world, device_body

    world = build_world(daemon)
    made = world.api.post("/network/device", device_body(world, "own", "JSONVIEW0001"))
    assert made.status == 201, made.body
    daemon.apply({"serialNumber": "JSONVIEW0002"})  # no model: nothing to join
    api = {d["_id"]: d for d in world.api.get("/network/device?limit=1000").body["items"]}
    listed = json.loads(daemon.cli("device", "list", "--json").stdout)
    assert {d["_id"]: d for d in listed} == api
    shown = daemon.device_json("JSONVIEW0001")
    assert shown == api[made.body["_id"]]
    assert (shown["modelType"], shown["modelBrand"]) == ("ROUTER", "TP-LINK")
    assert list(shown)[:4] == ["_id", "state", "name", "model"]  # the seed's order
    bare = daemon.device_json("JSONVIEW0002")
    assert "modelType" not in bare and bare == next(
        d for d in api.values() if d["serialNumber"] == "JSONVIEW0002"
    )
