"""systemd/acsd.service: the hardening keys with the right values (always checked, by
parsing the file), ``systemd-analyze verify`` and ``security`` where systemd-analyze
exists, and the sd_notify readiness the unit's Type=notify relies on."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from acsd.cli import build_parser
from acsd.config import Config
from acsd.sdnotify import keep_alive_interval, notify
from conftest import REPO, start_daemon, wait_for, write_config
from wire import Wire, envelope, inform_body

UNIT = REPO / "systemd" / "acsd.service"
#: the most `systemd-analyze security` may call the unit (0 = locked down, 10 = exposed)
MAX_EXPOSURE = 2.0


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value in order (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"no continuation lines, please: {line}"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text())


def one(unit, section: str, key: str) -> str:
    values = unit[section].get(key)
    assert values, f"[{section}] {key}= is missing"
    assert len(values) == 1, f"[{section}] {key}= is set {len(values)} times"
    return values[0]


def test_service_keys(unit):
    assert set(unit) == {"Unit", "Service", "Install"}
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "RestartPreventExitStatus") == "2"  # config errors
    assert shlex.split(one(unit, "Service", "ExecReload")) == ["/bin/kill", "-HUP", "$MAINPID"]
    assert one(unit, "Service", "EnvironmentFile") == "-/etc/acsd/acsd.env"
    assert one(unit, "Install", "WantedBy") == "multi-user.target"
    assert "network-online.target" in one(unit, "Unit", "After")
    # Longer than the default shutdown_grace, so open sessions can finish and commit.
    stop = one(unit, "Service", "TimeoutStopSec")
    assert int(stop.rstrip("s")) > Config().shutdown_grace


def test_the_unit_watches_the_event_loop(unit, monkeypatch):
    # workers = 1 has no supervisor: only systemd's watchdog sees its loop hang. The loop
    # must say it lives at least every WATCHDOG_USEC/2 (sd_watchdog_enabled(3)).
    bound = int(one(unit, "Service", "WatchdogSec").removesuffix("s"))
    assert bound >= 30  # a GC pause, a slow reload are far shorter; a hang is not
    monkeypatch.setenv("WATCHDOG_USEC", str(bound * 1_000_000))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    interval = keep_alive_interval()
    assert interval is not None and interval <= bound / 2
    assert one(unit, "Service", "NotifyAccess") == "main"  # the supervisor's pings only


def test_it_runs_acsd_serve_with_the_config_in_the_configuration_directory(unit):
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert argv[0] == "/opt/acsd/bin/acsd"  # make install rewrites the prefix
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve"
    assert args.config == "/etc/acsd/acsd.toml"
    assert one(unit, "Service", "ConfigurationDirectory") == "acsd"
    assert args.config.startswith("/etc/" + one(unit, "Service", "ConfigurationDirectory") + "/")


def test_the_database_lives_in_the_state_directory(unit):
    assert one(unit, "Service", "StateDirectory") == "acsd"
    environment = dict(
        item.split("=", 1)
        for line in unit["Service"].get("Environment", [])
        for item in shlex.split(line)
    )
    assert environment["ACSD_STORE_URL"] == "sqlite:////var/lib/acsd/acsd.db"
    assert one(unit, "Service", "WorkingDirectory") == "/var/lib/acsd"
    assert one(unit, "Service", "UMask") == "0077"


def test_hardening(unit):
    assert one(unit, "Service", "DynamicUser") == "yes"
    assert "User" not in unit["Service"]
    assert one(unit, "Service", "ProtectSystem") == "strict"
    assert one(unit, "Service", "NoNewPrivileges") == "yes"
    for key in (
        "PrivateTmp",
        "PrivateDevices",
        "ProtectHome",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "RestrictNamespaces",
        "RestrictRealtime",
        "RestrictSUIDSGID",
        "LockPersonality",
        "MemoryDenyWriteExecute",
    ):
        assert one(unit, "Service", key) == "yes", key
    # No capabilities at all: port 7547 is not privileged.
    assert one(unit, "Service", "CapabilityBoundingSet") == ""
    assert one(unit, "Service", "AmbientCapabilities") == ""
    families = one(unit, "Service", "RestrictAddressFamilies").split()
    assert sorted(families) == ["AF_INET", "AF_INET6", "AF_UNIX"]
    filters = unit["Service"]["SystemCallFilter"]
    assert filters[0] == "@system-service"
    assert any(f.startswith("~") and "@privileged" in f for f in filters[1:])
    # the one call taken back from @resources: the store's threads lower their own priority
    assert filters[-1] == "setpriority"
    assert one(unit, "Service", "SystemCallArchitectures") == "native"


def test_make_install_rewrites_what_it_means_to():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^install:", makefile, re.M)
    assert re.search(r"^PREFIX \?= /opt/acsd$", makefile, re.M)
    # The unit line and the config line that the install target's sed edits exist once.
    assert "s#^ExecStart=/opt/acsd/#" in makefile
    assert len(re.findall(r"^ExecStart=/opt/acsd/", UNIT.read_text(), re.M)) == 1
    assert 's#^url = "sqlite:///acsd.db"#url = "sqlite:////var/lib/acsd/acsd.db"#' in makefile
    example = (REPO / "config.example.toml").read_text()
    assert len(re.findall(r'^url = "sqlite:///acsd\.db"$', example, re.M)) == 1


def _analyzable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart on an acsd that exists here (verify checks the binary)."""
    acsd = Path(sys.executable).with_name("acsd")
    if not acsd.exists():
        acsd = Path(shutil.which("acsd") or "")
    assert acsd.is_file(), "the acsd console script is not installed"
    text = UNIT.read_text().replace("ExecStart=/opt/acsd/bin/acsd", f"ExecStart={acsd}")
    path = tmp_path / "acsd.service"
    path.write_text(text)
    return path


needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (the unit's keys are still checked above)",
)


@needs_analyze
def test_systemd_analyze_verify(tmp_path: Path):
    path = _analyzable_copy(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "acsd.service" not in result.stderr, result.stderr


@needs_analyze
def test_systemd_analyze_security(tmp_path: Path):
    path = _analyzable_copy(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0 and "offline" in result.stderr:
        pytest.skip("this systemd-analyze cannot score unit files offline (systemd < 250)")
    match = re.search(r"Overall exposure level for acsd\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


# --- sd_notify ------------------------------------------------------------------------------


@pytest.fixture
def notify_socket():
    folder = tempfile.mkdtemp(prefix="acsd-")  # short: AF_UNIX paths are limited
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    yield path, sock
    sock.close()
    shutil.rmtree(folder)


def test_the_daemon_tells_systemd_when_it_is_ready_and_when_it_stops(
    tmp_path: Path, monkeypatch, notify_socket
):
    path, sock = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    daemon = start_daemon(write_config(tmp_path), tmp_path / "acsd.db")
    try:
        ready = sock.recv(4096).decode().split("\n")
        assert ready[0] == "READY=1"
        assert ready[1].startswith("STATUS=") and daemon.cwmp_url.split("/")[2] in ready[1]
        assert daemon.stop(signal.SIGTERM) == 0
        assert sock.recv(4096).decode() == "STOPPING=1"
    finally:
        daemon.stop()


def test_notify_outside_systemd_and_on_an_abstract_socket(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
    name = f"acsd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("READY=1", "STATUS=ok") is True
        assert sock.recv(100) == b"READY=1\nSTATUS=ok"
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/socket")
    assert notify("READY=1") is False  # logged, never raised


@pytest.mark.parametrize("workers", [1, 2])
def test_under_a_systemd_watchdog_the_main_process_says_it_lives(
    tmp_path: Path, monkeypatch, notify_socket, workers: int
):
    # WatchdogSec= in a drop-in: systemd watches the process it started. The workers'
    # keep-alives are their supervisor's (worker_hang_timeout), never systemd's: a hung
    # worker is the supervisor's to replace, not a reason to restart the whole service.
    path, sock = notify_socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # a ping every half second
    daemon = start_daemon(write_config(tmp_path, top={"workers": workers}), tmp_path / "db")
    heard: list[tuple[int, bytes]] = []
    try:
        if workers > 1:
            wait_for(lambda: daemon.events("workers.ready"), timeout=20)
        until = time.monotonic() + 2.0
        while time.monotonic() < until:
            data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
            [(_, _, creds)] = ancillary
            heard.append((struct.unpack("3i", creds[:12])[0], data))
    finally:
        daemon.stop()
    assert {pid for pid, _ in heard} == {daemon.proc.pid}
    assert sum(data == b"WATCHDOG=1" for _, data in heard) >= 3


def test_keep_alives_are_sent_only_when_asked_for_this_process(monkeypatch):
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert keep_alive_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    assert keep_alive_interval() == 0.5  # a quarter of the bound
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    assert keep_alive_interval() == 1.0  # at most a second apart
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert keep_alive_interval() == 1.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # systemd's main process: not this one
    assert keep_alive_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", "")
    monkeypatch.setenv("WATCHDOG_USEC", "0")
    assert keep_alive_interval() is None


def test_make_install_refuses_a_python_the_service_cannot_reach(tmp_path: Path):
    # A pyenv or user Python lives below /root or /home, hidden by ProtectHome=yes.
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho /home/someone/.pyenv/versions/3.11.7/bin/python3.11\n")
    fake.chmod(0o755)
    proc = subprocess.run(
        ["make", "-s", "install", f"PYTHON={fake}", f"PREFIX={tmp_path / 'opt'}",
         f"UNITDIR={tmp_path / 'unit'}", f"CONFDIR={tmp_path / 'etc'}"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "ProtectHome" in proc.stderr and "PYTHON=/usr/bin/python3" in proc.stderr
    assert not (tmp_path / "opt").exists()


def _pings(sock: socket.socket, seconds: float) -> list[tuple[float, int]]:
    """(arrival, sender's pid) of each ``WATCHDOG=1`` that arrives within ``seconds``."""
    heard = []
    sock.settimeout(0.1)
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        try:
            data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except TimeoutError:
            continue
        if data == b"WATCHDOG=1":
            [(_, _, creds)] = ancillary
            heard.append((time.monotonic(), struct.unpack("3i", creds[:12])[0]))
    return heard


def _longest_silence(start: float, pings: list[tuple[float, int]], end: float) -> float:
    times = [start, *(at for at, _ in pings), end]
    return max(b - a for a, b in itertools.pairwise(times))


#: run in the daemon before acsd: SIGUSR2 blocks its event loop for 3 s, as a bug would (a
#: Python signal handler runs in the loop's thread, between two of its steps)
BLOCK_LOOP = "import signal, time\nsignal.signal(signal.SIGUSR2, lambda *_: time.sleep(3))"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_blocked_event_loop_stops_the_keep_alives_systemd_watches(
    tmp_path: Path, monkeypatch, notify_socket, workers: int
):
    # WatchdogSec= is for a hung loop: the keep-alives come from it, not from a thread
    # that would go on while the loop does not (workers = N: the supervisor's loop).
    path, sock = notify_socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # a ping every half second
    config = write_config(tmp_path, top={"workers": workers})
    daemon = start_daemon(config, tmp_path / "db", prelude=BLOCK_LOOP)
    try:
        if workers > 1:
            wait_for(lambda: daemon.events("workers.ready"), timeout=20)
        before = _pings(sock, 1.5)
        daemon.proc.send_signal(signal.SIGUSR2)
        sent = time.monotonic()
        after = _pings(sock, 5.0)
    finally:
        daemon.stop()
    assert len(before) >= 2 and {pid for _, pid in before + after} == {daemon.proc.pid}
    # silent while blocked, beyond the 2 s bound (systemd would act), and alive after
    assert _longest_silence(sent, after, sent + 5.0) > 2.5, after
    assert after and after[-1][0] > sent + 3.5


def test_a_log_reader_that_stops_does_not_stop_the_keep_alives(
    tmp_path: Path, monkeypatch, notify_socket
):
    # journald stalled: the loop blocks at its next log line until reading goes on, which
    # a restart would not change (its first line blocks too) but for the sessions it cuts.
    # A thread speaks for the loop then; it did not, and WatchdogSec= killed the daemon.
    path, sock = notify_socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    daemon = start_daemon(write_config(tmp_path), tmp_path / "db")
    stop = threading.Event()

    def informs() -> None:  # (each logs a few lines at debug: the pipe fills in a moment)
        n = 0
        while not stop.is_set():
            n += 1
            wire = Wire(daemon.cwmp_url, timeout=1)
            with contextlib.suppress(OSError):
                wire.post(envelope(inform_body(f"LOGSTALL{n:05d}")))
            wire.close()

    load = threading.Thread(target=informs, daemon=True)
    try:
        _pings(sock, 0.5)
        with daemon._read_lock:  # the test's reader of the daemon's log stops reading
            load.start()
            time.sleep(1.0)
            start = time.monotonic()
            during = _pings(sock, 4.0)
            # the loop is blocked indeed: the API does not answer
            with pytest.raises(OSError):
                urllib.request.urlopen(daemon.api_url + "readyz", timeout=1)
            during += _pings(sock, 1.0)
            end = time.monotonic()
        stop.set()
        load.join(timeout=10)
        assert _pings(sock, 1.5)  # the loop's own again
    finally:
        stop.set()
        daemon.stop()
    assert {pid for _, pid in during} == {daemon.proc.pid}
    assert _longest_silence(start, during, end) < 1.5, during
