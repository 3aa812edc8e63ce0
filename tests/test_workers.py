"""``workers = N``: several processes on one port, and sessions that move between them."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from acsd.cwmp import rpc
from acsd.cwmp.soap import Envelope, parse_envelope, render_envelope
from acsd.workers import RETRY_BROKEN
from conftest import run_cli, wait_for, write_config
from cpe_steps import NS, TREE, answer_request
from test_metrics import fetch, scrape
from tlscerts import needs_openssl
from wire import Wire, envelope, inform_body, post_slowly

#: what acsd sets on every CPE, so that its SetParameterValues succeeds on the step CPE
MANAGED = {
    "Device.ManagementServer.ConnectionRequestUsername": ("", "xsd:string"),
    "Device.ManagementServer.ConnectionRequestPassword": ("", "xsd:string"),
    "Device.ManagementServer.PeriodicInformEnable": ("false", "xsd:boolean"),
}


def start_workers(daemon_factory, count: int = 2, **sections):
    top = {"workers": count, **sections.pop("top", {})}
    daemon = daemon_factory(top=top, **sections)
    wait_for(lambda: daemon.events("workers.ready"), timeout=20)
    return daemon


#: the service of two workers that tests share (module_daemon_factory): they run sessions of
#: their own serials only, and leave none parked (a CPE without cookies is found by its
#: address, 127.0.0.1 for every test: one left parked would make the next one's ambiguous).
#: A test that stops, kills or counts its service, or leaves sessions parked, has its own.
SHARED = {"cwmp": {"session_timeout": 30}}


@pytest.fixture(scope="module")
def shared_workers(module_daemon_factory):
    return start_workers(module_daemon_factory, **SHARED)


#: the service with Digest authentication that the two tests of it share
DIGEST = {"cwmp": {"auth": {"scheme": "digest", "password": "shared-secret"}}}


@pytest.fixture(scope="module")
def digest_workers(module_daemon_factory):
    # A stop does not wait out the grace for the sessions the nonce test leaves parked.
    return start_workers(module_daemon_factory, top={"shutdown_grace": 0}, **DIGEST)


def session_over_new_connections(
    url: str,
    serial: str,
    *,
    announce: bool,
    cookies: bool = True,
    hop_to: str | None = None,
    **inform,
) -> dict:
    """One whole session, each request on a TCP connection of its own (as CPEs without
    keep-alive do). ``announce``: the CPE says ``Connection: close``; otherwise it just
    drops the connection after each answer. ``cookies=False``: it never sends the session
    cookie back. ``hop_to``: every other connection goes to this other service (behind
    a load balancer). Returns the CPE's tree afterwards."""
    tree = {**TREE, **MANAGED}
    wire = Wire(url, cookies=cookies)
    ports = [wire.port, Wire(hop_to).port] if hop_to else [wire.port]
    headers = {"Connection": "close"} if announce else {}
    answer = wire.post(envelope(inform_body(serial, **inform), ns=NS), headers=headers)
    assert answer.status == 200, answer.text
    assert isinstance(parse_envelope(answer.body).body, rpc.InformResponse)
    body: bytes | None = None
    for hop in range(40):
        wire.port = ports[(hop + 1) % len(ports)]
        wire.reconnect()
        answer = wire.post(body, headers=headers)
        if answer.status == 204:
            wire.close()
            return tree
        assert answer.status == 200, (answer.status, answer.text)
        env = parse_envelope(answer.body)
        reply = answer_request(env.body, tree)
        body = render_envelope(Envelope(body=reply, cwmp_ns=NS, id=env.id))
    raise AssertionError("the session did not end")


def test_workers_share_one_port_and_stop_together(daemon_factory):
    daemon = start_workers(daemon_factory)
    ready = daemon.events("workers.ready")[0]
    assert len(ready["pids"]) == 2
    assert {e["worker"] for e in daemon.events("listening")} == {0, 1}
    assert len({e["cwmp"] for e in daemon.events("listening")}) == 1  # one port for both

    run_cli("sim", "--acs", daemon.cwmp_url, "--count", "40", "--serial-prefix", "WRK", "--once",
            check=True, bounded=True)  # fmt: skip
    # 40 connections over two listeners: each worker took some (1 in 2^39 that one took all).
    workers = {e.get("worker") for e in daemon.events("session.end")}
    assert workers == {0, 1}
    listed = daemon.cli("device", "list", "--json").stdout
    assert all(f"WRK{n:06d}" in listed for n in range(1, 41))

    assert daemon.stop() == 0
    for pid in ready["pids"]:
        wait_for(lambda pid=pid: not _alive(pid), timeout=10)


def test_a_scrape_of_any_worker_shows_every_workers_figures(daemon_factory):
    # The kernel hands each scrape to either worker: both must answer for both, or every
    # other scrape would look to Prometheus like a counter reset.
    daemon = start_workers(daemon_factory)
    run_cli("sim", "--acs", daemon.cwmp_url, "--count", "30", "--serial-prefix", "MET", "--once",
            check=True, bounded=True)  # fmt: skip
    by_worker = {e.get("worker") for e in daemon.events("session.end")}
    assert by_worker == {0, 1}

    def sessions_by_worker() -> dict[str, float]:
        samples = scrape(daemon)  # a new connection each: either worker may answer
        return {
            dict(labels)["worker"]: v
            for (name, labels), v in samples.items()
            if name == "acsd_cwmp_sessions_total"
        }

    wait_for(lambda: sum(sessions_by_worker().values()) == 30, timeout=10)
    for _ in range(12):
        seen = sessions_by_worker()
        assert set(seen) == {"0", "1"} and sum(seen.values()) == 30
        assert all(v > 0 for v in seen.values())
    content_type, text = fetch(
        daemon.api_url + "metrics", accept="application/openmetrics-text; version=1.0.0"
    )
    assert content_type.startswith("application/openmetrics-text")
    assert text.rstrip().endswith("# EOF")
    assert 'acsd_build_info{version="' in text and 'worker="1"' in text


def test_session_goes_on_when_the_cpe_reconnects_to_another_worker(shared_workers):
    daemon = shared_workers
    for n in range(8):
        # Half say "Connection: close" (parked at once), half just drop the connection
        # (noticed by the worker within a tenth of a second, waited for by the other).
        tree = session_over_new_connections(daemon.cwmp_url, f"HOP{n:03d}", announce=n % 2 == 0)
        # The apply phase survived the moves: acsd's own settings reached the CPE.
        assert tree["Device.ManagementServer.ConnectionRequestUsername"][0] == f"HOP{n:03d}"
        assert tree["Device.ManagementServer.PeriodicInformEnable"][0] == "true"
        shown = daemon.device_json(f"HOP{n:03d}")
        assert shown["status"]["upTime"] == 77
    taken = [e for e in daemon.events("cwmp.session_taken_over") if e["serial"].startswith("HOP")]
    assert {e["worker"] for e in taken} == {0, 1}
    # (it names no session: none on the shared service may have failed)
    assert not daemon.events("cwmp.take_over_failed")
    assert not [e for e in daemon.events("cwmp.park_failed") if e["serial"].startswith("HOP")]
    # Every session ended complete, on whichever worker had it last.
    ends = [e for e in daemon.events("session.end") if e["serial"].startswith("HOP")]
    assert len(ends) == 8 and all(e["complete"] for e in ends)


def test_a_cpe_without_cookies_that_reconnects_is_followed_by_its_address(shared_workers):
    # Parked sessions are out of every worker's memory: without a cookie, only the address
    # the CPE comes from finds them again.
    daemon = shared_workers
    for n in range(6):
        serial = f"NOCK{n:03d}"
        tree = session_over_new_connections(
            daemon.cwmp_url, serial, announce=n % 2 == 0, cookies=False
        )
        assert tree["Device.ManagementServer.ConnectionRequestUsername"][0] == serial
        assert daemon.device_json(serial)["status"]["upTime"] == 77
    ends = [e for e in daemon.events("session.end") if e["serial"].startswith("NOCK")]
    assert len(ends) == 6 and all(e["complete"] for e in ends)
    assert [e for e in daemon.events("cwmp.session_taken_over") if e["serial"].startswith("NOCK")]


def test_two_cookieless_cpes_parked_from_one_address_are_not_mixed_up(daemon_factory):
    # (its own service: it leaves both parked. Its stop need not wait the grace out for them.)
    daemon = start_workers(daemon_factory, top={"shutdown_grace": 0})
    for serial in ("NAT001", "NAT002"):
        wire = Wire(daemon.cwmp_url, cookies=False)
        answer = wire.post(envelope(inform_body(serial), ns=NS), headers={"Connection": "close"})
        assert answer.status == 200
        wire.close()
    wait_for(lambda: len(daemon.events("cwmp.session_parked")) == 2, timeout=5)
    # Which of the two is this? Neither is guessed: the request is refused.
    wire = Wire(daemon.cwmp_url, cookies=False)
    try:
        answer = wire.post(None)
        assert answer.status == 400 and "send an Inform first" in answer.text
    finally:
        wire.close()
    assert not daemon.events("cwmp.session_taken_over")


def test_a_parked_session_whose_cpe_never_returns_is_still_committed(daemon_factory):
    daemon = start_workers(daemon_factory, cwmp={"session_timeout": 1})
    wire = Wire(daemon.cwmp_url)
    answer = wire.post(
        envelope(inform_body("GONE001"), ns=NS), headers={"Connection": "close"}
    )  # fmt: skip
    assert answer.status == 200
    wire.close()  # and never comes back
    wait_for(lambda: daemon.events("cwmp.session_parked"), timeout=5)
    ends = wait_for(
        lambda: [e for e in daemon.events("session.end") if e["serial"] == "GONE001"], timeout=15
    )
    assert ends[0]["complete"] is False
    assert daemon.device_json("GONE001")["serialNumber"] == "GONE001"


@pytest.fixture(scope="module")
def upload_service(module_daemon_factory, request):
    """The service of each backend the slow-upload tests share (``upload_service(backend)``).
    Each leaves its session parked; only a cookieless one is found by its address, and one
    of those per service does not make another ambiguous. Its stop need not wait the grace
    out for them."""
    started = {}

    def get(backend: str):
        if backend not in started:
            store = {}
            if backend == "postgresql":
                store = {"store": {"url": request.getfixturevalue("pg_cluster").new_database()}}
            started[backend] = start_workers(
                module_daemon_factory,
                top={"shutdown_grace": 0},
                cwmp={"session_timeout": 3},
                **store,
            )
        return started[backend]

    return get


@pytest.mark.parametrize("keeps_cookies", [True, False], ids=["cookie", "no-cookie"])
def test_a_parked_session_does_not_time_out_while_its_cpe_uploads_its_answer(
    upload_service, keeps_cookies, backend
):
    # The CPE closes its connection after each answer (its session parks), thinks a while,
    # then uploads its answer slowly on a new one: begun within session_timeout of the
    # request, ended within session_timeout of its start. A worker used to end the parked
    # session under the upload, and the answer got 400 "no open CWMP session".
    # (On both backends: the parked session is re-stamped in the store, touch_parked.)
    daemon = upload_service(backend)  # session_timeout = 3
    serial = "SLOWPARK1" if keeps_cookies else "SLOWPARK2"
    wire = Wire(daemon.cwmp_url, cookies=keeps_cookies)
    close = {"Connection": "close"}
    assert wire.post(envelope(inform_body(serial), ns=NS), headers=close).status == 200
    wire.reconnect()
    asked = parse_envelope(wire.post(None, headers=close).body)
    assert isinstance(asked.body, rpc.GetParameterValues)
    wire.close()
    reply = answer_request(asked.body, {**TREE, **MANAGED})
    body = render_envelope(Envelope(body=reply, cwmp_ns=NS, id=asked.id))
    time.sleep(1.75)  # the CPE builds its answer
    # 4 s after the request it answers: past session_timeout, and past the reaper's first
    # look after it (every session_timeout / 4)
    cookie = wire.cookie if keeps_cookies else None
    status = post_slowly(daemon.cwmp_url, body, cookie=cookie, pause=2.25)
    assert status in (b"HTTP/1.1 200 OK", b"HTTP/1.1 204 No Content"), status
    assert not _events_of(daemon, "cwmp.session_timeout", serial)
    assert _events_of(daemon, "cwmp.session_taken_over", serial)


def _events_of(daemon, name: str, serial: str) -> list[dict]:
    return [e for e in daemon.events(name) if e.get("serial") == serial]


def _versioned(version: str) -> dict[str, str]:
    return {
        "Device.DeviceInfo.SoftwareVersion": version,
        "Device.DeviceInfo.HardwareVersion": "HW1",
        "Device.ManagementServer.ConnectionRequestURL": "http://127.0.0.1:9/cr",
        "Device.ManagementServer.ParameterKey": "",
    }


def test_a_session_cut_by_a_reboot_is_ended_by_the_inform_after_it(shared_workers):
    # The CPE (no cookies) reboots mid-session: its session is parked, and the BOOT Inform
    # that follows starts a new one on whichever worker. That Inform ends the parked one
    # first, as one process does: its older values are committed before, not over, the new
    # session's (and a parked session left at the address would block the CPE's next
    # requests, found by address alone, until its timeout).
    daemon = shared_workers  # session_timeout = 30: none of its sessions times out
    url = daemon.cwmp_url
    session_over_new_connections(url, "RBT001", announce=True, params=_versioned("1.0.0"))
    for _ in range(3):  # cut again and again, as a CPE that retries does
        wire = Wire(url, cookies=False)
        answer = wire.post(
            envelope(inform_body("RBT001", events=("1 BOOT",), params=_versioned("1.5.0")), ns=NS),
            headers={"Connection": "close"},
        )
        assert answer.status == 200
        wire.close()  # the reboot
    wait_for(lambda: len(_events_of(daemon, "cwmp.session_parked", "RBT001")) >= 3, timeout=5)
    session_over_new_connections(
        url, "RBT001", announce=True, cookies=False, params=_versioned("2.0.0")
    )
    shown = daemon.device_json("RBT001")
    assert shown["cpe"]["softwareVersion"] == "2.0.0" and shown["status"]["upTime"] == 77
    ended = [
        e for e in daemon.events("session.end")
        if e["serial"] == "RBT001" and e["reason"] == "CPE started a new session"
    ]  # fmt: skip
    assert len(ended) == 3 and not any(e["complete"] for e in ended)
    assert not _events_of(daemon, "session.save_failed", "RBT001")


def test_a_first_session_cut_does_not_write_over_the_session_after_it(daemon_factory):
    # A CPE acsd has no record of loses its connection mid-session and starts over. Its
    # session was parked by an acsd that did not note the serial (so the new Inform cannot
    # end it): it ends at its timeout, after the new one committed. It began without a
    # record, and a record that heard from the CPE later must not get its older values.
    daemon = start_workers(daemon_factory, cwmp={"session_timeout": 2})
    url = daemon.cwmp_url
    wire = Wire(url)
    inform = inform_body("NEW001", events=("0 BOOTSTRAP",), params=_versioned("1.0.0"))
    assert wire.post(envelope(inform, ns=NS)).status == 200
    assert wire.post(None).status == 200  # the cookie went back: found by it alone
    wire.close()  # cut
    wait_for(lambda: daemon.events("cwmp.session_parked"), timeout=5)
    with sqlite3.connect(daemon.db) as db:
        db.execute("UPDATE cwmp_sessions SET serial_key = NULL")
    session_over_new_connections(url, "NEW001", announce=True, params=_versioned("2.0.0"))
    after = daemon.device_json("NEW001")
    assert after["cpe"]["softwareVersion"] == "2.0.0"
    dropped = wait_for(
        lambda: [e for e in daemon.events("session.result_dropped") if e["serial"] == "NEW001"],
        timeout=15,
    )
    assert len(dropped) == 1
    shown = daemon.device_json("NEW001")
    assert shown["cpe"]["softwareVersion"] == "2.0.0"
    assert shown["status"] == after["status"]
    assert not daemon.events("session.save_failed")


def test_a_worker_that_dies_is_replaced(daemon_factory):
    daemon = start_workers(daemon_factory)
    victim = daemon.events("workers.ready")[0]["pids"][0]
    os.kill(victim, signal.SIGKILL)
    exited = wait_for(lambda: daemon.events("workers.exited"), timeout=10)
    assert exited[0]["pid"] == victim
    wait_for(lambda: len(daemon.events("listening")) == 3, timeout=20)
    run_cli("sim", "--acs", daemon.cwmp_url, "--count", "10", "--serial-prefix", "AFT", "--once",
            check=True, bounded=True)  # fmt: skip
    assert daemon.stop() == 0


def test_a_restarted_worker_runs_with_the_configuration_the_service_started_with(
    daemon_factory, tmp_path
):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    daemon = start_workers(daemon_factory, profiles={"dir": str(profiles)})
    # Meanwhile the file names another database, and a broken profile lies in the folder.
    other_db = tmp_path / "other.db"
    text = daemon.config.read_text().replace(str(daemon.db), str(other_db))
    daemon.config.write_text(text)
    (profiles / "broken.toml").write_text('name = "broken"\nextends = "nonexistent"\n')
    pids = daemon.events("workers.ready")[0]["pids"]
    os.kill(pids[0], signal.SIGKILL)
    # Its profiles no longer load: the service goes on on the other worker, and says so.
    failed = wait_for(lambda: daemon.events("workers.restart_failed"), timeout=20)
    assert failed[0]["status"] == 2
    assert not daemon.events("workers.giving_up")
    run_cli("sim", "--acs", daemon.cwmp_url, "--count", "5", "--serial-prefix", "KEPT", "--once",
            check=True, bounded=True)  # fmt: skip
    # Fixed and reloaded: the worker comes back at once, not RETRY_BROKEN after it failed
    # (the daemon's own clock: however slow this machine, a timer could not start it
    # sooner), on the service's database, not the file's new one.
    (profiles / "broken.toml").unlink()
    daemon.proc.send_signal(signal.SIGHUP)
    back = wait_for(lambda: daemon.events("listening")[2:], timeout=30)
    # (from its last failed start: on a machine slow enough that the sessions above took
    # RETRY_BROKEN, the timer tried, and failed, again meanwhile)
    last = max(_stamp(e) for e in daemon.events("workers.restart_failed"))
    waited = _stamp(back[0]) - last
    assert 0 < waited < RETRY_BROKEN, waited
    run_cli("sim", "--acs", daemon.cwmp_url, "--count", "20", "--serial-prefix", "BACK", "--once",
            check=True, bounded=True)  # fmt: skip
    assert not other_db.exists()
    with sqlite3.connect(daemon.db) as db:
        (count,) = db.execute("SELECT count(*) FROM devices").fetchone()
    assert count == 25
    assert daemon.stop() == 0


def test_workers_stop_when_their_supervisor_is_killed(daemon_factory):
    auth = {"scheme": "digest", "username": "cpe", "password": "s3cret-of-the-cpes"}
    daemon = start_workers(daemon_factory, cwmp={"auth": auth})
    pids = daemon.events("workers.ready")[0]["pids"]
    snapshot = Path(_environ(pids[0])["ACSD_WORKER_CONFIG"])
    assert "s3cret-of-the-cpes" in snapshot.read_text()
    daemon.proc.kill()  # SIGKILL: the supervisor cannot pass anything on
    daemon.proc.wait(timeout=10)
    for pid in pids:
        wait_for(lambda pid=pid: not _alive(pid), timeout=15)
    assert len(daemon.events("workers.supervisor_gone")) == 2
    # nothing more told to the supervisor's socket, which is gone with it
    assert not daemon.events("sdnotify_failed")
    # no copy of the secrets stays behind in the temporary directory
    assert not snapshot.exists()


def test_a_supervisor_removes_what_killed_ones_left_in_the_temporary_directory(
    daemon_factory, tmp_path, monkeypatch
):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    old = time.time() - 3600
    left, running, young = (temp / f"acsd-workers-{name}" for name in ("left", "running", "young"))
    for folder in (left, running, young):
        (folder / "metrics").mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    for folder in (left, running):
        os.utime(folder, (old, old))
    other = temp / "unrelated"
    other.mkdir()
    os.utime(other, (old, old))
    held = os.open(running, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)  # a supervisor that still runs
        daemon = start_workers(daemon_factory)
        assert not left.exists()
        assert running.exists() and young.exists() and other.exists()
        (own,) = set(temp.glob("acsd-workers-*")) - {running, young}
        assert (own / "config.json").exists()
        assert daemon.stop() == 0
        assert not own.exists()
    finally:
        os.close(held)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _stamp(entry: dict) -> float:
    return datetime.fromisoformat(entry["timestamp"]).timestamp()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_taken_port_fails_the_start_with_a_clear_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, top={"workers": 2}, cwmp={"listen": f"127.0.0.1:{port}"})
        proc = run_cli("serve", "--config", str(config), timeout=30, bounded=True)
    assert proc.returncode == 1
    assert '"listen_failed"' in proc.stderr and "in use" in proc.stderr


def test_a_second_service_on_the_same_ports_is_refused(shared_workers, tmp_path):
    # SO_REUSEPORT would let it share the port and take half the routers to its database.
    first = shared_workers
    port = urlsplit(first.cwmp_url).port
    other = tmp_path / "other"
    other.mkdir()
    config = write_config(other, top={"workers": 2}, cwmp={"listen": f"127.0.0.1:{port}"})
    proc = run_cli("serve", "--config", str(config), timeout=30, bounded=True)
    assert proc.returncode == 1
    assert '"listen_failed"' in proc.stderr and '"cwmp.listen"' in proc.stderr
    assert first.proc.poll() is None


def test_workers_authenticate_routers_with_the_configured_password(digest_workers):
    # The workers start from the supervisor's copy of the configuration: the password
    # must be in it, not the "***" that `acsd config check` prints.
    daemon = digest_workers
    run_cli("sim", "--acs", daemon.cwmp_url, "--count", "20", "--serial-prefix", "AUTHW",
            "--acs-username", "{serial}", "--acs-password", "shared-secret", "--once",
            check=True, bounded=True)  # fmt: skip
    ends = [e for e in daemon.events("session.end") if e["serial"].startswith("AUTHW")]
    assert {e.get("worker") for e in ends} == {0, 1}
    # (the other test on this service fails if any of its own requests is refused)
    assert not daemon.events("cwmp.auth_failed")


def _fleet(prefix: str, count: int) -> str:
    """A credentials file's text: ``count`` routers PREFIX000001... with password pw-SERIAL."""
    serials = [f"{prefix}{n:06d}" for n in range(1, count + 1)]
    return "[devices]\n" + "".join(f'{s} = "pw-{s}"\n' for s in serials)


def test_every_worker_reads_the_credentials_file_again_on_sighup(daemon_factory, tmp_path):
    # The supervisor passes SIGHUP on: each worker reads the file itself, and a worker
    # restarted later starts with the file the others use (a new path included).
    creds = tmp_path / "cpe-credentials.toml"
    creds.write_text(_fleet("WKRA", 1))
    auth = {"scheme": "digest", "credentials_file": str(creds)}
    daemon = start_workers(daemon_factory, top={"shutdown_grace": 0}, cwmp={"auth": auth})
    sim = ("sim", "--acs", daemon.cwmp_url, "--count", "20", "--once", "--timeout", "10",
           "--acs-username", "{serial}", "--acs-password", "pw-{serial}")  # fmt: skip

    def reloaded(count: int) -> list[dict]:
        """The last two reload.done lines (a worker's each), once there are ``count``."""
        wait_for(lambda: len(daemon.events("reload.done")) >= count, timeout=20)
        return daemon.events("reload.done")[count - 2 : count]

    creds.write_text(_fleet("WKRN", 20))
    daemon.proc.send_signal(signal.SIGHUP)
    done = reloaded(2)
    assert sorted(e["worker"] for e in done) == [0, 1]
    assert {e["credentials"] for e in done} == {"reloaded (20 devices)"}
    run_cli(*sim, "--serial-prefix", "WKRN", check=True, bounded=True)
    ends = [e for e in daemon.events("session.end") if e["serial"].startswith("WKRN")]
    assert len(ends) == 20 and {e.get("worker") for e in ends} == {0, 1}

    moved = tmp_path / "moved.toml"
    moved.write_text(_fleet("WKRM", 20))
    daemon.config.write_text(daemon.config.read_text().replace(str(creds), str(moved)))
    daemon.proc.send_signal(signal.SIGHUP)
    assert {e["credentials"] for e in reloaded(4)} == {"reloaded (20 devices)"}
    os.kill(daemon.events("workers.ready")[0]["pids"][0], signal.SIGKILL)
    wait_for(lambda: daemon.events("listening")[2:], timeout=30)
    run_cli(*sim, "--serial-prefix", "WKRM", check=True, bounded=True)
    ends = [e for e in daemon.events("session.end") if e["serial"].startswith("WKRM")]
    assert len(ends) == 20 and {e.get("worker") for e in ends} == {0, 1}
    assert not daemon.events("workers.restart_failed")
    assert daemon.stop() == 0


def test_every_worker_takes_a_new_shared_password_on_sighup(daemon_factory):
    # Each worker swaps the password in on the SIGHUP the supervisor passes on, and a
    # worker restarted later starts with it (the supervisor's copy of the config), not
    # with the password of the start, which its siblings refuse.
    from test_cwmp_auth import challenges, digest_header, first_challenge, inform

    auth = {"scheme": "digest", "password": "old-fleet-pw", "max_failures": 50}
    daemon = start_workers(daemon_factory, top={"shutdown_grace": 0}, cwmp={"auth": auth})
    sim = ("sim", "--acs", daemon.cwmp_url, "--count", "20", "--once", "--timeout", "10",
           "--acs-username", "{serial}", "--acs-password", "new-fleet-pw")  # fmt: skip

    def refused_everywhere(prefix: str) -> bool:
        """The old password gets 401, on 8 connections of their own (either worker)."""
        for n in range(1, 9):
            serial = f"{prefix}{n:06d}"
            wire, answer = first_challenge(daemon, serial)
            header = digest_header(challenges(answer)[0], serial, "old-fleet-pw")
            if wire.post(inform(serial), headers={"Authorization": header}).status != 401:
                return False
        return True

    text = daemon.config.read_text()
    daemon.config.write_text(text.replace('"old-fleet-pw"', '"new-fleet-pw"'))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(daemon.events("reload.done")) >= 2, timeout=20)
    done = daemon.events("reload.done")
    assert sorted(e["worker"] for e in done) == [0, 1]
    assert {e["shared_credentials"] for e in done} == {"changed"}
    run_cli(*sim, "--serial-prefix", "WSPN", check=True, bounded=True)
    ends = [e for e in daemon.events("session.end") if e["serial"].startswith("WSPN")]
    assert len(ends) == 20 and {e.get("worker") for e in ends} == {0, 1}
    assert refused_everywhere("WSPO")

    os.kill(daemon.events("workers.ready")[0]["pids"][0], signal.SIGKILL)
    wait_for(lambda: daemon.events("listening")[2:], timeout=30)
    run_cli(*sim, "--serial-prefix", "WSPR", check=True, bounded=True)
    ends = [e for e in daemon.events("session.end") if e["serial"].startswith("WSPR")]
    assert len(ends) == 20 and {e.get("worker") for e in ends} == {0, 1}
    assert refused_everywhere("WSPQ")
    assert "fleet-pw" not in daemon.log_text()
    assert daemon.stop() == 0


def test_every_worker_takes_the_previous_shared_password_on_sighup(daemon_factory):
    # A rotation with [cwmp.auth] previous_password: routers still on the old password get
    # in on either worker, also on one restarted later (the supervisor's copy of the
    # config carries it), and each is given the new password.
    auth = {"scheme": "digest", "password": "old-fleet-pw", "max_failures": 50}
    daemon = start_workers(daemon_factory, top={"shutdown_grace": 0}, cwmp={"auth": auth})
    sim = ("sim", "--acs", daemon.cwmp_url, "--count", "20", "--once", "--timeout", "10",
           "--acs-username", "{serial}", "--acs-password", "old-fleet-pw")  # fmt: skip
    text = daemon.config.read_text()
    daemon.config.write_text(
        text.replace(
            'password = "old-fleet-pw"',
            'password = "new-fleet-pw"\nprevious_password = "old-fleet-pw"',
        )
    )
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(daemon.events("reload.done")) >= 2, timeout=20)
    assert {e["shared_credentials"] for e in daemon.events("reload.done")} == {"changed"}
    for prefix in ("WPPA", "WPPB"):
        if prefix == "WPPB":  # a worker restarted after the reload
            os.kill(daemon.events("workers.ready")[0]["pids"][0], signal.SIGKILL)
            wait_for(lambda: daemon.events("listening")[2:], timeout=30)
        run_cli(*sim, "--serial-prefix", prefix, check=True, bounded=True)
        ends = [e for e in daemon.events("session.end") if e["serial"].startswith(prefix)]
        assert len(ends) == 20 and {e.get("worker") for e in ends} == {0, 1}
        rotated = daemon.events("session.acs_password_rotated")
        assert len([e for e in rotated if e["serial"].startswith(prefix)]) == 20
    assert "fleet-pw" not in daemon.log_text()
    assert daemon.stop() == 0


def test_a_rotation_session_that_moves_between_workers_parks_no_password(daemon_factory, tmp_path):
    # A session that moves between workers is parked in the database, its driver's state
    # pickled: a rotation session's carried the fleet's shared password (in the desired
    # settings, the planned changes, the outstanding SetParameterValues) into the SQLite
    # file and its WAL, which no record ever held. Parked now with a placeholder, the
    # worker that takes the session up fills in the password it has.
    from test_cwmp_auth import challenges, digest_header, first_challenge, inform

    auth = {
        "scheme": "digest",
        "password": "new-fleet-pw",
        "previous_password": "old-fleet-pw",
        "max_failures": 50,
    }
    daemon = start_workers(
        daemon_factory, top={"shutdown_grace": 0}, cwmp={"auth": auth, "session_timeout": 4}
    )
    state = tmp_path / "routers"
    # every message on a connection of its own: parked after each, the SetParameterValues
    # with the password too while it waits for its answer
    sim = ("sim", "--acs", daemon.cwmp_url, "--count", "10", "--once", "--timeout", "10",
           "--quirks", "new-connection", "--serial-prefix", "WPRK", "--state", str(state),
           "--acs-username", "{serial}", "--acs-password", "old-fleet-pw")  # fmt: skip
    run_cli(*sim, check=True, bounded=True)
    ends = [e for e in daemon.events("session.end") if e["serial"].startswith("WPRK")]
    assert len(ends) == 10 and all(e["complete"] for e in ends)
    taken = [e for e in daemon.events("cwmp.session_taken_over") if e["serial"].startswith("WPRK")]
    assert len(taken) >= 50 and {e["worker"] for e in taken} == {0, 1}
    assert not daemon.events("cwmp.take_over_refused")
    assert not daemon.events("cwmp.take_over_failed")
    # Each router was given the password itself (not the placeholder), and comes with it.
    rotated = daemon.events("session.acs_password_rotated")
    assert len([e for e in rotated if e["serial"].startswith("WPRK")]) == 10
    for saved in state.glob("WPRK*.json"):
        values = json.loads(saved.read_text())["tree"]["values"]
        assert values["Device.ManagementServer.Password"] == "new-fleet-pw", saved
    run_cli(*sim, check=True, bounded=True)  # (on the old password, it would be given it again)
    assert len([e for e in daemon.events("session.end") if e["serial"].startswith("WPRK")]) == 20
    assert len(daemon.events("session.acs_password_rotated")) == 10
    # A router that refuses it quoting the value (its fault parked with the session): the
    # changes hold the placeholder, so the value is masked as the fault comes in.
    refuse = ("sim", "--acs", daemon.cwmp_url, "--once", "--timeout", "10",
              "--quirks", "new-connection,echo-values", "--serial-prefix", "WPRF",
              "--fault", "Device.ManagementServer.Password=9007",
              "--acs-username", "{serial}", "--acs-password", "old-fleet-pw")  # fmt: skip
    run_cli(*refuse, check=True, bounded=True)
    [refused] = _events_of(daemon, "session.acs_password_refused", "WPRF000001")
    assert refused["codes"] == [9007]
    assert _events_of(daemon, "cwmp.session_parked", "WPRF000001")
    _no_fleet_password_in_the_database(daemon)

    # Parked after its Inform, the rotation session of a router that never comes back is
    # taken up by a worker whose reload removed previous_password meanwhile: with no
    # password to give, the rotation is dropped and said so.
    wire, answer = first_challenge(daemon, "WPRG000001")
    header = digest_header(challenges(answer)[0], "WPRG000001", "old-fleet-pw")
    headers = {"Authorization": header, "Connection": "close"}
    assert wire.post(inform("WPRG000001"), headers=headers).status == 200
    wire.close()
    wait_for(lambda: _events_of(daemon, "cwmp.session_parked", "WPRG000001"), timeout=5)
    text = daemon.config.read_text()
    daemon.config.write_text(text.replace('previous_password = "old-fleet-pw"\n', ""))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(daemon.events("reload.done")) >= 2, timeout=20)

    def not_sent() -> list[dict]:
        return _events_of(daemon, "session.acs_password_not_sent", "WPRG000001")

    [dropped] = wait_for(not_sent, timeout=20)
    assert "previous_password was removed" in dropped["reason"]
    ended = _events_of(daemon, "cwmp.session_timeout", "WPRG000001")
    assert ended and ended[0]["parked"] is True
    assert not daemon.events("cwmp.take_over_failed")

    assert "fleet-pw" not in daemon.log_text()
    _no_fleet_password_in_the_database(daemon)
    assert daemon.stop() == 0
    _no_fleet_password_in_the_database(daemon)  # (checkpointed into the file now)


def _no_fleet_password_in_the_database(daemon) -> None:
    for path in daemon.db.parent.glob(daemon.db.name + "*"):  # (its -wal and -shm too)
        assert b"fleet-pw" not in path.read_bytes(), path


def test_a_damaged_configuration_copy_is_a_config_error(tmp_path, monkeypatch, capsys):
    from acsd.cli import main

    copy = tmp_path / "config.json"
    copy.write_text('{"cwmp": {"listen": ')
    monkeypatch.setenv("ACSD_SUPERVISED_WORKER", "0")
    monkeypatch.setenv("ACSD_WORKER_CONFIG", str(copy))
    assert main(["serve"]) == 2  # one line, no traceback, no daemon started
    assert "config error" in capsys.readouterr().err
    copy.unlink()
    assert main(["serve"]) == 2
    assert "the supervisor's copy" in capsys.readouterr().err


def test_a_digest_nonce_one_worker_issued_is_good_on_every_other(digest_workers):
    # A router on a new connection per request reaches any worker with the nonce another
    # one issued: each worker signed nonces with a key of its own, so every such answer
    # was "stale" and the router never got in.
    from acsd import httpdigest

    daemon = digest_workers
    wire = Wire(daemon.cwmp_url, cookies=False)
    challenge = wire.post(envelope(inform_body("NONCE000"), ns=NS))
    assert challenge.status == 401
    challenges = httpdigest.parse_challenges(challenge.headers.get_all("WWW-Authenticate"))
    params = next(p for scheme, p in challenges if scheme == "digest")
    statuses = []
    for n in range(1, 17):
        wire.reconnect()  # the kernel spreads new connections over the workers
        serial = f"NONCE{n:03d}"
        authorization = httpdigest.authorization(
            params, "POST", wire.path, serial, "shared-secret", nc=n
        )
        answer = wire.post(
            envelope(inform_body(serial), ns=NS), headers={"Authorization": authorization}
        )
        statuses.append(answer.status)
    wire.close()
    assert statuses == [200] * 16
    informed = [e for e in daemon.events("session.inform") if e["serial"].startswith("NONCE")]
    assert {e["worker"] for e in informed} == {0, 1}


def test_with_no_worker_left_the_service_stops_and_says_so(daemon_factory, tmp_path):
    # Every worker killed while none can start again (a profile broken meanwhile): a
    # supervisor that stayed would look active to systemd, which would never restart it.
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    daemon = start_workers(daemon_factory, profiles={"dir": str(profiles)})
    (profiles / "broken.toml").write_text('name = "broken"\nextends = "nonexistent"\n')
    for pid in daemon.events("workers.ready")[0]["pids"]:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: daemon.events("workers.none_left"), timeout=30)
    assert daemon.proc.wait(timeout=30) == 1
    # a worker's figures go with it: no scrape of a later worker shows it alive
    assert not list((tmp_path).rglob("worker-*.prom"))


def test_a_worker_killed_by_a_signal_again_and_again_stops_the_service_with_status_1(
    daemon_factory,
):
    daemon = start_workers(daemon_factory)
    children = f"/proc/{daemon.proc.pid}/task/{daemon.proc.pid}/children"
    for _ in range(600):
        if daemon.proc.poll() is not None:
            break
        with contextlib.suppress(OSError):
            for pid in open(children).read().split():  # noqa: SIM115
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.05)
    assert daemon.events("workers.giving_up")
    # not 247 (sys.exit(-9)): systemd reads that as a status of acsd's own
    assert daemon.proc.wait(timeout=30) == 1


#: the hang bound of the tests below: small, so that they are quick (the default is 30 s)
HANG = {"top": {"worker_hang_timeout": 2, "shutdown_grace": 0}}


def _every_new_connection_answered(daemon, count: int = 12) -> bool:
    """``count`` new connections in a row, each answered within a second: the kernel hands
    each to either worker, so a hung one takes about half of them (1 in 2^count none)."""
    for _ in range(count):
        try:
            with urllib.request.urlopen(daemon.api_url + "healthz", timeout=1) as answer:
                if answer.status != 200:
                    return False
        except OSError:  # (a timeout, or a reset: the hung worker's queue as it is killed)
            return False
    return True


@contextlib.contextmanager
def _stopped(*pids: int):
    """SIGSTOP ``pids`` (a hang the loop cannot answer: no handler runs), SIGCONT after."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def test_a_hung_worker_is_killed_and_started_again(daemon_factory):
    # A worker whose loop is blocked does not die: the supervisor only restarted one that
    # exited, and the kernel went on handing the hung one half of the new connections.
    daemon = start_workers(daemon_factory, **HANG)
    hung, other = daemon.events("workers.ready")[0]["pids"]
    assert _every_new_connection_answered(daemon)
    with _stopped(hung):
        [warned] = wait_for(lambda: daemon.events("workers.hung"), timeout=10)
        assert warned["pid"] == hung and warned["level"] == "warning"
        assert warned["silent_for"] >= 2 and warned["worker_hang_timeout"] == 2
        # a hung loop does not run a SIGTERM handler: SIGKILL, the restart of one that died
        wait_for(lambda: not _alive(hung), timeout=5)
        # (the supervisor writes its line once it has reaped the process: a moment later)
        [exited] = wait_for(lambda: daemon.events("workers.exited"), timeout=5)
        assert exited["pid"] == hung and exited["status"] == -signal.SIGKILL
        # the bound, 1 s before the restart and the new worker's start: all served again
        wait_for(lambda: len(daemon.events("listening")) == 3, timeout=15)
        wait_for(lambda: _every_new_connection_answered(daemon), timeout=5, interval=0.2)
    assert _alive(other) and len(daemon.events("workers.hung")) == 1
    assert daemon.stop() == 0


def test_a_worker_stopped_and_continued_within_the_bound_is_left_running(daemon_factory):
    daemon = start_workers(daemon_factory, **HANG)
    pids = daemon.events("workers.ready")[0]["pids"]
    with _stopped(pids[0]):
        time.sleep(1.0)  # half the bound: its loop says it lives again at once after
    time.sleep(2.5)  # beyond the bound since the stop
    assert not daemon.events("workers.hung") and not daemon.events("workers.exited")
    assert all(_alive(pid) for pid in pids)
    assert _every_new_connection_answered(daemon)
    assert daemon.stop() == 0


def test_a_service_stopped_as_a_whole_and_continued_keeps_its_workers(daemon_factory):
    # Ctrl-Z on the process group (or a paused VM) stops the supervisor with its workers:
    # their silence meanwhile is no hang. Continued, the supervisor runs before the
    # workers' keep-alives arrive; it must not take them for hung.
    daemon = start_workers(daemon_factory, **HANG)
    pids = daemon.events("workers.ready")[0]["pids"]
    with _stopped(*pids):
        with _stopped(daemon.proc.pid):
            time.sleep(3.0)  # longer than the bound
        time.sleep(0.3)  # the supervisor runs alone a while
    time.sleep(2.5)
    assert not daemon.events("workers.hung") and not daemon.events("workers.exited")
    assert daemon.stop() == 0


def test_a_service_that_stops_does_not_take_its_draining_workers_for_hung(daemon_factory):
    # SIGTERM: the watch ends before the workers are told to stop. A worker hung then is
    # killed at the end of the grace (as one that ignores SIGTERM), not as hung.
    daemon = start_workers(daemon_factory, top={"worker_hang_timeout": 1, "shutdown_grace": 0})
    pids = daemon.events("workers.ready")[0]["pids"]
    with _stopped(pids[0]):
        daemon.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: daemon.events("workers.stopping"), timeout=5)
        time.sleep(2.0)  # twice the bound
        assert not daemon.events("workers.hung")
    assert daemon.proc.wait(timeout=30) == 0
    assert not daemon.events("workers.hung") and not daemon.events("workers.exited")


def _park_a_first_session(url: str, serial: str) -> None:
    """A CPE acsd has no record of informs and drops the connection: its session parks."""
    wire = Wire(url, cookies=False)
    inform = inform_body(serial, events=("0 BOOTSTRAP",), params=_versioned("1.0.0"))
    assert wire.post(envelope(inform, ns=NS), headers={"Connection": "close"}).status == 200
    wire.close()


def test_a_stopping_service_commits_its_parked_sessions(daemon_factory):
    # No grace: what is parked is ended (committed) once it is over, at once here.
    daemon = start_workers(daemon_factory, top={"shutdown_grace": 0}, cwmp={"session_timeout": 300})
    _park_a_first_session(daemon.cwmp_url, "PARKSTOP1")
    wait_for(lambda: daemon.events("cwmp.session_parked"), timeout=5)
    assert daemon.stop() == 0
    with sqlite3.connect(daemon.db) as db:
        assert db.execute("SELECT count(*) FROM cwmp_sessions").fetchone() == (0,)
        assert db.execute(
            "SELECT count(*) FROM devices WHERE serial_key = 'parkstop1'"
        ).fetchone() == (1,)


def test_one_process_ends_what_an_earlier_run_with_workers_left_parked(daemon_factory):
    # Killed outright (no drain) while a session was parked: a later run of one process
    # (which parks nothing itself) must still commit it, not leave it for ever.
    daemon = start_workers(daemon_factory, cwmp={"session_timeout": 300})
    _park_a_first_session(daemon.cwmp_url, "PARKLEFT1")
    wait_for(lambda: daemon.events("cwmp.session_parked"), timeout=5)
    children = open(f"/proc/{daemon.proc.pid}/task/{daemon.proc.pid}/children").read()  # noqa: SIM115
    for pid in [daemon.proc.pid, *map(int, children.split())]:
        os.kill(pid, signal.SIGKILL)
    daemon.proc.wait(timeout=10)
    with sqlite3.connect(daemon.db) as db:
        assert db.execute("SELECT count(*) FROM cwmp_sessions").fetchone() == (1,)
    alone = daemon_factory()
    wait_for(lambda: alone.events("cwmp.parked_ended"), timeout=10)
    assert alone.device_json("PARKLEFT1")["serialNumber"] == "PARKLEFT1"
    with sqlite3.connect(alone.db) as db:
        assert db.execute("SELECT count(*) FROM cwmp_sessions").fetchone() == (0,)


def test_a_cpe_that_reconnects_while_the_service_stops_goes_on_within_the_grace(
    daemon_factory,
):
    # SIGTERM: an idle worker must not end a parked session at once while another worker,
    # still in its grace, can take it over when the CPE comes back.
    daemon = daemon_factory(top={"workers": 2, "shutdown_grace": 5}, cwmp={"session_timeout": 300})
    wait_for(lambda: daemon.events("workers.ready"), timeout=20)
    wire = Wire(daemon.cwmp_url)
    inform = inform_body("GRACE001", params=_versioned("1.0.0"))
    assert wire.post(envelope(inform, ns=NS), headers={"Connection": "close"}).status == 200
    wire.close()
    wait_for(lambda: daemon.events("cwmp.session_parked"), timeout=5)
    daemon.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: daemon.events("workers.stopping"), timeout=5)
    wire.reconnect()
    answer = wire.post(None, headers={"Connection": "close"})
    assert answer.status == 200, answer.text  # the session went on (a GetParameterValues)
    assert isinstance(parse_envelope(answer.body).body, rpc.GetParameterValues)
    wire.close()


@needs_openssl
def test_a_reload_gives_workers_restarted_later_the_new_tls_files(tmp_path):
    # Every running worker reloads the certificate at its new path on SIGHUP, but the
    # supervisor's copy of the configuration kept the old paths: a worker that died later
    # came back serving the old certificate (or, with the old files gone, not at all).
    import json

    from acsd.config import load_config
    from acsd.workers import Supervisor
    from tlscerts import make_pki

    pki = make_pki(tmp_path / "pki")
    path = write_config(
        tmp_path,
        cwmp={"tls": {"cert": str(pki.server.cert), "key": str(pki.server.key)}},
        api={"tls": {"cert": str(pki.server.cert), "key": str(pki.server.key)}},
    )
    supervisor = Supervisor(load_config(path), str(path))
    supervisor.snapshot = tmp_path / "config.json"
    path.write_text(
        path.read_text()
        .replace(str(pki.server.cert), str(pki.server2.cert))
        .replace(str(pki.server.key), str(pki.server2.key))
    )
    supervisor._reload()
    copy = json.loads(supervisor.snapshot.read_text())
    for section in ("cwmp", "api"):
        assert copy[section]["tls"]["cert"] == str(pki.server2.cert), section
        assert copy[section]["tls"]["key"] == str(pki.server2.key), section


@needs_openssl
def test_a_reload_whose_files_do_not_load_gives_workers_restarted_later_the_old_ones(tmp_path):
    # Each worker keeps its profiles and certificate when the new ones fail to load
    # (reload.profiles_failed, reload.tls_failed), but the supervisor's copy took the new
    # paths: a worker that died later failed to start on them, again every 10 s.
    import json

    from acsd.config import load_config
    from acsd.workers import Supervisor
    from tlscerts import make_pki

    pki = make_pki(tmp_path / "pki")
    folder = tmp_path / "profiles"
    folder.mkdir()
    path = write_config(
        tmp_path,
        cwmp={"tls": {"cert": str(pki.server.cert), "key": str(pki.server.key)}},
        profiles={"dir": str(folder)},
    )
    supervisor = Supervisor(load_config(path), str(path))
    supervisor.snapshot = tmp_path / "config.json"
    path.write_text(
        path.read_text()
        .replace(str(pki.server.cert), str(tmp_path / "gone.pem"))
        .replace(str(folder), str(tmp_path / "no-such-dir"))
        .replace('level = "debug"', 'level = "info"')
    )
    supervisor._reload()
    copy = json.loads(supervisor.snapshot.read_text())
    assert copy["cwmp"]["tls"]["cert"] == str(pki.server.cert)
    assert copy["profiles"]["dir"] == str(folder)
    assert copy["log"]["level"] == "info"  # what did load is taken in


def test_a_worker_restarted_after_a_reload_keeps_the_reloaded_provisioning_intervals(tmp_path):
    # A reload applies them in every worker; a worker restarted later must not come back
    # with the intervals the service started with.
    import json

    from acsd.config import load_config
    from acsd.workers import Supervisor

    path = write_config(tmp_path, provisioning={"absent_recheck_interval": 3600})
    supervisor = Supervisor(load_config(path), str(path))
    supervisor.snapshot = tmp_path / "config.json"
    path.write_text(
        path.read_text().replace(
            "absent_recheck_interval = 3600",
            "absent_recheck_interval = 60\ndrift_check_interval = 900",
        )
    )
    supervisor._reload()
    provisioning = json.loads(supervisor.snapshot.read_text())["provisioning"]
    assert provisioning["absent_recheck_interval"] == 60
    assert provisioning["drift_check_interval"] == 900


def test_a_stop_signal_that_reaches_every_process_keeps_the_grace(tmp_path):
    # systemd's default KillMode=control-group sends SIGTERM to the supervisor *and* to
    # every worker (as Ctrl-C's SIGINT reaches the whole process group). The supervisor
    # then forwarded its own SIGTERM: each worker took it for the second signal and cut
    # the grace short, abandoning every open session at once.
    import json
    import subprocess
    import threading

    from conftest import acsd_cmd
    from cpe_steps import finish, inform, wire_for

    config = write_config(tmp_path, top={"workers": 2, "shutdown_grace": 20.0})
    proc = subprocess.Popen(
        acsd_cmd("serve", "--config", str(config)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        start_new_session=True,  # its own process group, as the unit's cgroup is
    )
    lines: list[dict] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))

    threading.Thread(target=pump, daemon=True).start()
    try:
        wait_for(lambda: any(e.get("event") == "workers.ready" for e in lines), timeout=30)
        [starting] = [e for e in lines if e.get("event") == "workers.starting"]
        wire = wire_for(f"http://{starting['cwmp']}/")
        inform(wire, "KILLGRP001")
        # What systemd does, in the order that lost the grace: the workers have taken
        # their SIGTERM when the supervisor's forwarded one arrives.
        [ready] = [e for e in lines if e.get("event") == "workers.ready"]
        for pid in ready["pids"]:
            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: len([e for e in lines if e.get("event") == "stopping"]) == 2)
        os.kill(proc.pid, signal.SIGTERM)
        wait_for(lambda: any(e.get("event") == "workers.stopping" for e in lines))
        time.sleep(1.0)  # the forwarded signal has arrived by now
        assert "GetParameterValues" in finish(wire), "the open session was cut off"
        wire.close()
        assert proc.wait(timeout=40) == 0
        assert not [e for e in lines if e.get("event") == "cwmp.drain_abandon"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_changed_listen_address_is_named_on_reload_with_workers(tmp_path, capsys):
    # The workers read the file with the supervisor's ACSD_CWMP_LISTEN/ACSD_API_LISTEN
    # (the ports it bound), so a new address in the file was named by nobody: the reload
    # said "restart needed" for every other key but this one.
    from acsd.config import load_config
    from acsd.log import configure
    from acsd.workers import Supervisor

    # (logging as the supervisor sets it up, onto this test's stderr: a test before it in
    # this process may have left it writing to a stream captured then, or above info)
    configure(level="info", fmt="json")
    path = write_config(tmp_path, top={"workers": 2})
    supervisor = Supervisor(load_config(path), str(path))
    supervisor.snapshot = tmp_path / "config.json"
    path.write_text(path.read_text().replace('listen = "127.0.0.1:0"', 'listen = "[::1]:0"', 1))
    capsys.readouterr()
    supervisor._reload()
    said = capsys.readouterr()
    lines = [line for line in (said.out + said.err).splitlines() if "restart_needed" in line]
    assert lines and "cwmp.listen" in lines[0], said


@pytest.mark.parametrize("key", [None, "", "not-hex", "00ff", "abc"])
def test_a_worker_without_a_usable_nonce_key_does_not_start(key, tmp_path):
    # A worker that signed its nonces with a key of its own would call every nonce its
    # siblings issued stale: routers it took over would never get in, with nothing said.
    config = write_config(tmp_path)
    worker = {"ACSD_SUPERVISED_WORKER": "0", "ACSD_WORKER_CONFIG": None, "ACSD_NONCE_KEY": key}
    proc = run_cli("serve", "--config", str(config), env=worker, timeout=30, bounded=True)
    assert proc.returncode == 2  # one line, no daemon started
    assert "config error: ACSD_NONCE_KEY: " in proc.stderr
    assert ("missing" if not key else "not a Digest nonce key") in proc.stderr
    if key:
        assert key not in proc.stderr.split("ACSD_NONCE_KEY: ", 1)[1]  # the value is a secret


def test_a_nonce_key_set_by_the_operator_is_said_to_be_unused(tmp_path):
    config = write_config(tmp_path)
    env = {"ACSD_SUPERVISED_WORKER": None, "ACSD_NONCE_KEY": "00" * 32}
    proc = run_cli("config", "check", "--config", str(config), env=env, check=True)
    assert "ACSD_NONCE_KEY is not used" in proc.stderr
    # ... and which variable is: "acsd makes a new key at each start" sent the operator
    # who wanted one key on every instance away, and is not so with cwmp.auth.nonce_key
    assert "ACSD_CWMP_AUTH_NONCE_KEY" in proc.stderr


def test_a_directory_left_by_a_supervisor_killed_just_before_goes_once_old_enough(
    tmp_path, monkeypatch
):
    # Killed and started again within MIN_AGE (Restart=on-failure after a SIGKILL), the
    # new supervisor could not tell the old directory from one being made, and left it,
    # with the CPE password of its configuration, until the start after next.
    import tempfile as tempfile_module

    from acsd import rundir

    monkeypatch.setattr(tempfile_module, "tempdir", str(tmp_path))
    monkeypatch.setattr(rundir, "MIN_AGE", 0.5)
    left = tmp_path / (rundir.PREFIX + "killed")
    left.mkdir()
    (left / "config.json").write_text('{"password": "x"}')
    with rundir.supervisor_dir() as mine:
        assert left.exists()  # too young to tell at the start
        deadline = time.monotonic() + 10
        while left.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left.exists() and mine.exists()


def test_a_log_reader_that_stops_for_longer_than_the_bound_has_no_worker_killed(daemon_factory):
    # journald stalled, a container's log driver, `acsd serve | less` left on a page: each
    # worker blocks at its next line, and goes on once reading does. It was taken for hung
    # and killed (its sessions with it) as soon as the reader came back.
    daemon = start_workers(daemon_factory, **HANG)
    pids = daemon.events("workers.ready")[0]["pids"]
    stop = threading.Event()

    def informs() -> None:  # (each logs a few lines: the pipe fills in a moment)
        n = 0
        while not stop.is_set():
            n += 1
            wire = Wire(daemon.cwmp_url, timeout=1)
            with contextlib.suppress(OSError):
                wire.post(envelope(inform_body(f"LOGSTALL{n:05d}")))
            wire.close()

    load = threading.Thread(target=informs, daemon=True)
    load.start()
    time.sleep(0.5)
    with daemon._read_lock:  # the test's reader of the daemon's log stops reading
        time.sleep(3 * HANG["top"]["worker_hang_timeout"])
    stop.set()
    load.join(timeout=10)
    wait_for(lambda: _every_new_connection_answered(daemon), timeout=10, interval=0.2)
    time.sleep(HANG["top"]["worker_hang_timeout"])
    assert not daemon.events("workers.hung") and not daemon.events("workers.exited")
    assert all(_alive(pid) for pid in pids)


def test_a_refusal_quoting_the_password_after_a_reload_is_parked_without_it(
    daemon_factory, tmp_path
):
    """The SetParameterValues giving a router the shared password is sent by one worker; a
    reload changes the password; the router's fault, quoting the value (echo-values), is
    taken up by a worker that knows only the newer one: the password reaches neither the
    database nor the log (found by review). Which worker takes the fault up is the
    kernel's choice: test_rotation_fault_texts checks the withholding itself."""
    auth = {
        "scheme": "digest",
        "password": "new-fleet-pw",
        "previous_password": "old-fleet-pw",
        "max_failures": 50,
    }
    daemon = start_workers(
        daemon_factory, top={"shutdown_grace": 0}, cwmp={"auth": auth, "session_timeout": 30}
    )
    mark, go = tmp_path / "paused", tmp_path / "go"
    env = dict(os.environ, PAUSE_MARK=str(mark), PAUSE_GO=str(go))
    sim = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("pause_rotation_sim.py")),
            "sim",
            "--acs",
            daemon.cwmp_url,
            "--once",
            "--timeout",
            "30",
            "--quirks",
            "new-connection,echo-values",
            "--serial-prefix",
            "WPRL",
            "--fault",
            "Device.ManagementServer.Password=9007",
            "--acs-username",
            "{serial}",
            "--acs-password",
            "old-fleet-pw",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(mark.exists, timeout=60)
        text = daemon.config.read_text()
        # a reload that changes the current password mid-rotation (previous_password kept:
        # with it removed, the router could not log in on its next connection at all)
        daemon.config.write_text(
            text.replace('password = "new-fleet-pw"', 'password = "newer-fleet-pw"')
        )
        before = len(daemon.events("reload.done"))
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(daemon.events("reload.done")) >= before + 2, timeout=20)
        go.write_text("go\n")
        out, _ = sim.communicate(timeout=60)
        assert sim.returncode is not None, out.decode()[-2000:]
    finally:
        if sim.poll() is None:
            sim.kill()
    wait_for(lambda: _events_of(daemon, "session.end", "WPRL000001"), timeout=20)
    assert _events_of(daemon, "session.acs_password_refused", "WPRL000001")
    in_log = "new-fleet-pw" in daemon.log_text()
    assert daemon.stop() == 0
    found = [
        p.name
        for p in daemon.db.parent.glob(daemon.db.name + "*")
        if b"new-fleet-pw" in p.read_bytes()
    ]
    assert not found and not in_log
