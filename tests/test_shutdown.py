"""SIGTERM/SIGINT: no new sessions (503 + Retry-After), open sessions get ``shutdown_grace``
to finish, abandoned ones are still committed, every acknowledged write is on disk, exit 0.

"Acknowledged" is a session that ended with 204: the driver commits before it answers 204,
so a router the simulator counts as done must have its row, however the daemon stops."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Daemon, acsd_cmd, wait_for
from cpe_steps import finish, inform, wire_for
from spec_check import mismatches
from wire import envelope, inform_body

ROUTERS = 200


def rows(db: Path) -> dict[str, float | None]:
    """serial -> last_inform, read with the daemon stopped."""
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT serial_number, last_inform FROM devices").fetchall())
    finally:
        conn.close()


def stopped_in(daemon: Daemon, timeout: float) -> tuple[int, float]:
    started = time.monotonic()
    code = daemon.proc.wait(timeout=timeout)
    return code, time.monotonic() - started


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_stop_under_load_loses_no_acknowledged_session(daemon_factory, tmp_path, sig):
    daemon = daemon_factory(top={"shutdown_grace": 5.0}, log={"level": "info"})
    report = tmp_path / "report.json"
    sim = subprocess.Popen(
        acsd_cmd(
            *("sim", "--acs", daemon.cwmp_url, "--count", str(ROUTERS)),
            *("--interval", "1", "--ramp", "1", "--duration", "120"),
            *("--concurrency", str(ROUTERS), "--timeout", "5", "--retry-scale", "0.02"),
            *("--report", str(report)),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Under load: every router has had its boot session and periodic ones are running.
        def loaded() -> bool:
            ends = daemon.events("session.end")
            return len(ends) >= 2 * ROUTERS and len({e["serial"] for e in ends}) == ROUTERS

        wait_for(loaded, timeout=60)
        # The simulated sessions last milliseconds: one more, held open by hand, makes sure
        # a session is in flight when the signal lands.
        held = wire_for(daemon.cwmp_url)
        inform(held, "HELD000001")
        daemon.proc.send_signal(sig)
        if sig == signal.SIGTERM:
            wait_for(lambda: daemon.events("stopping"))
            assert "GetParameterValues" in finish(held)  # it goes on to its 204
        held.close()
        code, seconds = stopped_in(daemon, timeout=30)
    finally:
        time.sleep(0.5)  # let the routers see the daemon gone
        sim.send_signal(signal.SIGINT)  # stops the run, writes the report
        out, err = sim.communicate(timeout=60)

    routers = json.loads(report.read_text())["routers"]
    acknowledged = {r["serial"]: r for r in routers if r["ok"] > 0}
    # (a router whose only 204 was on its way when the daemon died counts as not done)
    assert len(acknowledged) >= 0.9 * ROUTERS, (out, err)
    stored = rows(daemon.db)
    missing = sorted(set(acknowledged) - set(stored))
    assert not missing, f"acknowledged but not stored: {missing[:10]}"
    stale = {
        serial: (stored[serial], r["last_ok_started"])
        for serial, r in acknowledged.items()
        if stored[serial] is None or stored[serial] < r["last_ok_started"]
    }
    assert not stale, f"row older than the last acknowledged session: {list(stale.items())[:5]}"
    sessions_ok = sum(r["ok"] for r in routers)
    assert sessions_ok >= 1.5 * ROUTERS

    if sig == signal.SIGTERM:
        assert code == 0, daemon.log_text()[-3000:]
        assert seconds < 5.0 + 5.0 + 3.0  # grace + handler grace + slack
        [stopping] = daemon.events("stopping")
        assert stopping["grace"] == 5.0
        assert stopping["open_sessions"] > 0, "not under load when stopped"
        # Sessions in flight at SIGTERM went on to their 204.
        entries = [e for e in map(_json, daemon.lines) if e]
        at = entries.index(next(e for e in entries if e.get("event") == "stopping"))
        finished = [e for e in entries[at:] if e.get("event") == "session.end"]
        assert any(e["complete"] for e in finished)
        assert daemon.events("stopped")
        errors = [e for e in map(_json, daemon.lines) if e and e.get("level") == "error"]
        assert not errors, errors[:5]
    else:
        assert code == -signal.SIGKILL


def _json(line: str) -> dict | None:
    try:
        return json.loads(line)
    except ValueError:
        return None


def test_open_session_finishes_and_new_informs_get_503(daemon_factory):
    daemon = daemon_factory(top={"shutdown_grace": 20.0})
    open_session = wire_for(daemon.cwmp_url)
    inform(open_session, "DRAIN00001")
    daemon.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: daemon.events("stopping"))
    assert daemon.events("stopping")[0]["open_sessions"] == 1

    # While draining, a new session is refused with a Retry-After, on a new connection ...
    latecomer = wire_for(daemon.cwmp_url)
    answer = latecomer.post(envelope(inform_body("DRAIN00002")))
    assert answer.status == 503
    assert int(answer.headers["Retry-After"]) > 0
    latecomer.close()
    # ... and the open session goes on to its 204.
    assert "GetParameterValues" in finish(open_session)
    open_session.close()

    code, seconds = stopped_in(daemon, timeout=30)
    assert code == 0
    assert seconds < 10, "the daemon waited for the grace although no session was open"
    stored = rows(daemon.db)
    assert stored.get("DRAIN00001") is not None
    assert "DRAIN00002" not in stored


def test_silent_session_is_committed_when_the_grace_ends(daemon_factory):
    daemon = daemon_factory(top={"shutdown_grace": 1.5})
    wire = wire_for(daemon.cwmp_url)
    before = time.time()
    inform(wire, "SILENT0001")
    daemon.proc.send_signal(signal.SIGTERM)
    code, seconds = stopped_in(daemon, timeout=30)
    assert code == 0
    assert 1.0 < seconds < 1.5 + 5.0 + 3.0
    assert daemon.events("cwmp.drain_abandon")[0]["sessions"] == 1
    [end] = [e for e in daemon.events("session.end") if e.get("serial") == "SILENT0001"]
    assert end["complete"] is False
    assert rows(daemon.db)["SILENT0001"] >= before
    wire.close()


def test_second_signal_cuts_the_grace_short(daemon_factory):
    daemon = daemon_factory(top={"shutdown_grace": 60.0})
    wire = wire_for(daemon.cwmp_url)
    inform(wire, "HURRY00001")
    daemon.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: daemon.events("stopping"))
    time.sleep(0.3)
    assert daemon.proc.poll() is None  # still waiting for the open session
    daemon.proc.send_signal(signal.SIGINT)
    code, seconds = stopped_in(daemon, timeout=30)
    assert code == 0 and seconds < 8
    assert rows(daemon.db)["HURRY00001"] is not None
    wire.close()


def test_readyz_says_not_ready_while_the_daemon_drains(daemon_factory):
    # During the grace new Informs get 503, but /readyz went on answering 200
    # {"ready": true}: a balancer kept sending routers to a daemon that turns them away.
    import urllib.error
    import urllib.request

    daemon = daemon_factory(top={"shutdown_grace": 20.0})
    with urllib.request.urlopen(daemon.api_url + "openapi.json", timeout=5) as answer:
        doc = json.loads(answer.read())
    with urllib.request.urlopen(daemon.api_url + "readyz", timeout=5) as answer:
        assert answer.status == 200
        ready = json.loads(answer.read())
        assert mismatches(doc, "GET", "/readyz", 200, answer.headers["Content-Type"], ready) == []
    open_session = wire_for(daemon.cwmp_url)
    inform(open_session, "DRAIN00003")
    daemon.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: daemon.events("stopping"))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(daemon.api_url + "readyz", timeout=5)
    assert refused.value.code == 503
    body = json.loads(refused.value.read())
    # why, for whoever asks (a balancer reads the status only)
    assert body["ready"] is False and body["cause"] == "draining", body
    assert body["description"].startswith("acsd is shutting down"), body
    # as the API's description says: a balancer's client generated from it reads it
    content_type = refused.value.headers["Content-Type"]
    assert mismatches(doc, "GET", "/readyz", 503, content_type, body) == []
    finish(open_session)
    open_session.close()
    assert daemon.proc.wait(timeout=30) == 0
