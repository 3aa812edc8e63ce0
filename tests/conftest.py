"""Fixtures that start real things: the daemon on 127.0.0.1 port 0 with a SQLite file in a
temp dir, the CLI as a subprocess, raw HTTP to the CWMP listener."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from acsd.config import DEFAULT_DENY
from acsd.provisioning.profiles import load_profiles
from acsd.rundir import sweep_stale

REPO = Path(__file__).resolve().parents[1]
DATAMODELS = REPO.parent / "shared" / "datamodels"


def acsd_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "acsd", *args]


class CliZygote:
    """Runs ``acsd ARGS`` as a child forked from a process that has imported acsd already
    (tests/cli_zygote.py says why), one command at a time; ``run`` returns None while
    another thread's command runs (the caller then starts a plain subprocess)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._folder: Path | None = None
        self._count = 0

    def _start(self) -> subprocess.Popen:
        import tempfile

        if self._folder is None:  # (one folder for the outputs, kept over a restart)
            # a killed run's (close() never ran): untouched for an hour, as the one in use
            # is written into with every command
            sweep_stale(Path(tempfile.gettempdir()), CLI_FOLDER_STALE, "acsd-cli-")
            self._folder = Path(tempfile.mkdtemp(prefix="acsd-cli-"))
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("cli_zygote.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        return proc

    def run(
        self, args: list[str], env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess | None:
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            assert self._folder is not None and self._proc.stdin and self._proc.stdout
            self._count += 1
            out, err = (self._folder / f"{self._count}.{name}" for name in ("out", "err"))
            request = {"args": args, "env": env, "cwd": str(REPO), "timeout": timeout,
                       "stdout": str(out), "stderr": str(err)}  # fmt: skip
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            answer = json.loads(self._proc.stdout.readline())
            # (a child killed at its timeout may not have made them yet)
            stdout, stderr = (p.read_text() if p.exists() else "" for p in (out, err))
            out.unlink(missing_ok=True)
            err.unlink(missing_ok=True)
            cmd = acsd_cmd(*args)
            if answer.get("timeout"):
                raise subprocess.TimeoutExpired(cmd, timeout, stdout, stderr)
            return subprocess.CompletedProcess(cmd, answer["status"], stdout, stderr)
        finally:
            self._lock.release()

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._folder is not None:
            import shutil

            shutil.rmtree(self._folder, ignore_errors=True)


#: seconds after which a CLI output folder nobody wrote into is a killed run's
CLI_FOLDER_STALE = 3600.0


_ZYGOTE = CliZygote()
#: commands that run for long or hold the process (a daemon, the simulator) keep their own
#: interpreter; TEST_ACSD_CLI=subprocess runs every command that way
_OWN_INTERPRETER = {"serve", "sim"}


@pytest.fixture(scope="session", autouse=True)
def _cli_zygote() -> Iterator[None]:
    yield
    _ZYGOTE.close()


def run_cli(
    *args: str,
    timeout: float = 60,
    check: bool = False,
    env: dict[str, str | None] | None = None,
    bounded: bool = False,
) -> subprocess.CompletedProcess:
    """``acsd ARGS``; ``env``: variables set (or, None, removed) for it. ``bounded``: a run
    of a command in _OWN_INTERPRETER that ends by itself soon (``sim --once``, a ``serve``
    the test expects to refuse to start): it may be forked from the warm process too (one
    that hangs still fails the test at its timeout)."""
    environ = None
    if env is not None:
        environ = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    proc = None
    own = not bounded and bool(_OWN_INTERPRETER & set(args[:1]))
    if os.environ.get("TEST_ACSD_CLI") != "subprocess" and not own:
        proc = _ZYGOTE.run(list(args), dict(os.environ) if environ is None else environ, timeout)
    if proc is None:
        proc = subprocess.run(
            acsd_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=REPO, env=environ
        )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"acsd {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@dataclass
class Daemon:
    proc: subprocess.Popen
    config: Path
    db: Path
    cwmp_url: str = ""
    api_url: str = ""
    lines: list[str] = field(default_factory=list)
    # Each line is parsed once: a test polling events() on a daemon under load used to
    # parse its whole log every 50 ms, CPU taken from the daemon it was waiting for.
    _parsed: list[dict] = field(default_factory=list, repr=False)
    _seen: int = field(default=0, repr=False)
    _parse_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # The log comes through a pipe that a thread reads: an event the daemon logged before
    # answering a request could still be in the pipe when the test looks. catch_up() reads
    # all the daemon has written so far, so events() and log_text() see it.
    _fd: int = field(default=-1, repr=False)
    _partial: bytes = field(default=b"", repr=False)
    _read_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def catch_up(self) -> bool:
        """Take in every line the daemon has written so far; False once its stderr closed."""
        if self._fd < 0:
            return False
        with self._read_lock:
            while True:
                try:
                    chunk = os.read(self._fd, 1 << 16)
                except BlockingIOError:
                    return True
                except OSError:  # (closed at the end of the test)
                    chunk = b""
                if not chunk:
                    if self._partial:
                        self.lines.append(self._partial.decode("utf-8", "replace"))
                        self._partial = b""
                    return False
                *whole, self._partial = (self._partial + chunk).split(b"\n")
                self.lines.extend(raw.decode("utf-8", "replace") for raw in whole)

    def events(self, name: str) -> list[dict]:
        self.catch_up()
        with self._parse_lock:
            new = self.lines[self._seen :]  # (the reader thread only ever appends)
            self._seen += len(new)
            for line in new:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    self._parsed.append(entry)
            # copies: a test that edits what it got must not change what the next call sees
            return [dict(e) for e in self._parsed if e.get("event") == name]

    def log_text(self) -> str:
        self.catch_up()
        return "\n".join(self.lines)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run_cli(*args, "--config", str(self.config), check=check)

    def device_json(self, key: str) -> dict:
        return json.loads(self.cli("device", "show", key, "--json").stdout)

    def apply(self, body: dict) -> dict:
        """``acsd device apply`` of ``body`` (as an operator's file); the device it made."""
        path = self.config.parent / "device.json"
        path.write_text(json.dumps(body))
        return json.loads(self.cli("device", "apply", str(path)).stdout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


#: the default deny list without loopback (nor "self": the host's addresses include it)
DENY_BUT_LOOPBACK = [n for n in DEFAULT_DENY if n not in ("127.0.0.0/8", "::1/128", "self")]


def write_config(tmp_path: Path, **sections: dict) -> Path:
    # A loaded 2-core CI can stall a daemon for a moment; tests that are not about
    # admission by load must not get a 503 for it (test_loop_lag.py tests the default).
    # The simulated routers' Connection Request servers listen on loopback, which acsd
    # refuses by default (test_connection_request_guard.py tests the default).
    cwmp = {
        "listen": "127.0.0.1:0",
        "max_loop_lag": 2.0,
        "connection_request_deny": DENY_BUT_LOOPBACK,
        **sections.pop("cwmp", {}),
    }
    api = {"listen": "127.0.0.1:0", **sections.pop("api", {})}
    store = {"url": f"sqlite:///{tmp_path / 'acsd.db'}", **sections.pop("store", {})}
    log = {"format": "json", "level": "debug", **sections.pop("log", {})}
    # Tests stop daemons often; a short grace keeps a stop with open sessions quick
    # (tests of shutdown itself set their own).
    top = {"shutdown_grace": 2.0, **sections.pop("top", {})}
    parts = [f"{k} = {json.dumps(v)}" for k, v in top.items()]
    for name, values in (
        ("cwmp", cwmp),
        ("api", api),
        ("store", store),
        ("log", log),
        *sections.items(),
    ):
        parts.append(f"[{name}]")
        parts.extend(f"{k} = {json.dumps(v)}" for k, v in values.items() if not isinstance(v, dict))
        for key, table in values.items():  # nested sections, e.g. cwmp={"auth": {...}}
            if isinstance(table, dict):
                parts.append(f"[{name}.{key}]")
                parts.extend(f"{k} = {json.dumps(v)}" for k, v in table.items())
    path = tmp_path / "acsd.toml"
    path.write_text("\n".join(parts) + "\n")
    return path


def start_daemon(config: Path, db: Path, timeout: float = 20, *, prelude: str = "") -> Daemon:
    """``acsd serve``; ``prelude``: Python run in its process first, before acsd is imported
    (a module constant a test sets, such as acsd.throttle.WINDOW_LIMIT)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = acsd_cmd("serve", "--config", str(config))
    if prelude:  # (as `python -m acsd` runs: acsd.__main__)
        cmd[1:3] = ["-c", f"{prelude}\nimport runpy; runpy.run_module('acsd', run_name='__main__')"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=config.parent,
        env=env,
    )
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    daemon = Daemon(proc=proc, config=config, db=db, _fd=proc.stderr.fileno())
    ready = threading.Event()

    def pump() -> None:
        while True:
            try:
                select.select([daemon._fd], [], [])
            except (OSError, ValueError):
                break
            if not daemon.catch_up():
                break
            if not ready.is_set():
                for line in daemon.lines:
                    if '"listening"' in line:
                        entry = json.loads(line)
                        daemon.cwmp_url = f"http://{entry['cwmp']}/"
                        daemon.api_url = f"http://{entry['api']}/"
                        ready.set()
                        break
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout) or not daemon.cwmp_url:
        proc.kill()
        raise AssertionError("daemon did not start:\n" + daemon.log_text())
    return daemon


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator:
    started: list[Daemon] = []

    def make(prelude: str = "", **sections: dict) -> Daemon:
        config = write_config(tmp_path, **sections)
        daemon = start_daemon(config, tmp_path / "acsd.db", prelude=prelude)
        started.append(daemon)
        return daemon

    yield make
    # all told to stop first, then waited for: a test that made several (one per setting)
    # does not wait for their stops one after the other
    running = [d for d in started if d.proc.poll() is None]
    for daemon in running:
        daemon.proc.send_signal(signal.SIGTERM)
    for daemon in running:  # (not stop(): a second SIGTERM would cut the grace short)
        daemon.proc.wait(timeout=30)


@pytest.fixture
def daemon(daemon_factory) -> Daemon:
    return daemon_factory()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll until ``predicate()`` is truthy (for effects that land asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def drop_first(monkeypatch, kind: type) -> list:
    """Simulated routers drop the connection instead of sending their first message of
    ``kind`` (a router that reboots, or goes away, in the middle of a session): the list
    the dropped message goes into. Later messages of ``kind`` go as usual."""
    from acsd.sim import session as sim_session
    from acsd.sim.http import HttpError

    post = sim_session.Session._post
    dropped: list = []

    async def drop(self, message, echo_id=None):
        if isinstance(message, kind) and not dropped:
            dropped.append(message)
            raise HttpError("connection dropped: the router went away")
        return await post(self, message, echo_id)

    monkeypatch.setattr(sim_session.Session, "_post", drop)
    return dropped


# --- daemons and API worlds shared by the tests of one module --------------------------------
# Starting a daemon (and creating tokens with the CLI) is most of what a short test costs.
# Tests that only touch records of their own (their own serials, customers, accounts, IP
# addresses) and filter whatever they count or list by what they made can share one daemon
# per module. Tests that need a daemon configured for them, that damage its database or that
# count everything in it keep their own (``daemon`` / ``daemon_factory``).


@pytest.fixture(scope="module")
def module_daemon_factory(tmp_path_factory) -> Iterator:
    """``make(**sections)`` as with ``daemon_factory``, but one daemon per config and module:
    the first test asking for a config starts it, later ones asking for the same config get
    the same daemon. All are stopped (and must exit cleanly) when the module is done."""
    started: dict[str, Daemon] = {}

    def make(**sections: dict) -> Daemon:
        key = json.dumps(sections, sort_keys=True)
        if key not in started:
            folder = tmp_path_factory.mktemp("shared")
            started[key] = start_daemon(write_config(folder, **sections), folder / "acsd.db")
        daemon = started[key]
        if daemon.proc.poll() is not None:  # never hand out a dead one as if it were fine
            raise AssertionError(
                f"shared daemon exited {daemon.proc.returncode}:\n" + daemon.log_text()
            )
        return daemon

    yield make
    # all told to stop first, then waited for: each may wait out its grace at the same time
    for daemon in started.values():
        if daemon.proc.poll() is None:
            daemon.proc.send_signal(signal.SIGTERM)
    codes = {key: daemon.proc.wait(timeout=30) for key, daemon in started.items()}
    assert all(code == 0 for code in codes.values()), codes


@pytest.fixture(scope="module")
def module_daemon(module_daemon_factory) -> Daemon:
    """One daemon with the default test config, shared by the tests of a module."""
    return module_daemon_factory()


def lazy_world(daemon: Daemon, admin_token: str | None = None):
    """The world of ``api_world.build_world`` (fresh customers every call, a role's token
    created when a test first acts as that role)."""
    from api_world import build_world

    return build_world(daemon, admin_token)


@pytest.fixture(scope="module")
def module_world(module_daemon):
    """One API world on ``module_daemon`` for a whole module (its tests share its customers:
    each works on devices, accounts and tokens of its own)."""
    return lazy_world(module_daemon)


# The built-in profiles, and the one each data-model root selects (status extraction tests;
# a module that needs other profiles defines its own fixture of the same name).
@pytest.fixture(scope="module")
def profiles():
    return load_profiles()


@pytest.fixture(scope="module")
def tr181(profiles):
    return profiles.for_root("Device.")


@pytest.fixture(scope="module")
def tr098(profiles):
    return profiles.for_root("InternetGatewayDevice.")


# --- PostgreSQL ------------------------------------------------------------------------------
# One throwaway cluster per test session (per xdist worker), started by the first test that
# needs it; each test gets a database of its own. A machine without the server programs
# fails these tests with the reason (they are never skipped).


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator:
    from pgcluster import ClusterError, start_cluster

    try:
        cluster = start_cluster()
    except ClusterError as exc:
        pytest.fail(f"cannot start the PostgreSQL test cluster: {exc}", pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """The URL of a new, empty PostgreSQL database."""
    return pg_cluster.new_database()


#: the store backends the store-level tests run on
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def store_url(backend: str, request, tmp_path: Path) -> str:
    """A database of each backend: a SQLite file in tmp_path, or a new PostgreSQL one."""
    if backend == "postgresql":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path / 'acsd.db'}"


@pytest.fixture
async def store(store_url: str):
    """An open store of each backend (see store_url), closed after the test."""
    from acsd.store import open_store

    s = open_store(store_url)
    await s.open()
    yield s
    await s.close()


#: a store test about SQLite itself (its file, pragmas, threads): on that backend only
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])
