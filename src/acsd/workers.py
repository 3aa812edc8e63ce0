"""``workers = N``: N processes serving the same two listeners.

The process that ``acsd serve`` starts becomes a supervisor: it migrates the store once,
reserves both ports with SO_REUSEPORT (so "port 0" becomes one concrete port for every
worker), then starts N copies of ``acsd serve`` that bind those ports with SO_REUSEPORT;
the kernel spreads new connections over them. The supervisor tells systemd READY once
every worker is ready, passes SIGHUP on, restarts a worker that dies or hangs, and on
SIGTERM stops them all (a second SIGTERM hurries them, as it does a single daemon).

A hung worker (its event loop blocked, or the process stopped) does not die: the kernel
goes on handing it 1/N of the new connections, which time out. So each worker's loop
says it lives (``WATCHDOG=1``, sd_notify's keep-alive) on the datagram socket it reports
READY on, and one silent for ``worker_hang_timeout`` is killed and started again. That
socket, not a pipe per worker: it is there already, and the kernel stamps each datagram
with its sender's pid (SCM_CREDENTIALS), which is all the supervisor needs to know who
lives; a datagram's cost is a system call a second per worker.

Each worker has its own sessions, store connection and metrics (a scrape of any worker
shows every worker's, see ``metrics_share.py``); a CPE whose next request lands on another
worker mid-session is followed through the store (see ``cwmp/handoff.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sqlite3
import struct
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from acsd import entry
from acsd.config import (
    MIN_NONCE_KEY_BYTES,
    WITH_SECRETS,
    Config,
    ConfigError,
    CwmpAuthConfig,
    CwmpTlsConfig,
    ProfilesConfig,
    StunConfig,
    TlsConfig,
    load_config,
)
from acsd.cwmp.credentials_file import load_credentials
from acsd.eventloop import stop_task
from acsd.listen_socket import bound_socket
from acsd.log import get_logger
from acsd.metrics_share import METRICS_DIR_ENV, forget_worker
from acsd.provisioning.profiles import load_profiles
from acsd.reload import CREDENTIALS_BOUND_TO, SHARED
from acsd.rundir import supervisor_dir
from acsd.sdnotify import MAX_KEEP_ALIVE_INTERVAL, keep_alive, log_stalled, notify
from acsd.store import StoreError, shown_url, store_of
from acsd.tls import TlsFileError, TlsSettings, build_context

log = get_logger("acsd.workers")

#: set in a worker's environment by the supervisor: the worker's index (0..N-1)
WORKER_ENV = "ACSD_SUPERVISED_WORKER"
#: set by the supervisor: a file with the configuration every worker starts with (JSON).
#: The file on disk may have changed (or broken) by the time a worker is restarted; a
#: restarted worker must still run as its siblings do (same database, same ports).
CONFIG_ENV = "ACSD_WORKER_CONFIG"
#: set by the supervisor: the key (hex) every worker signs its Digest nonces with, so that
#: a CPE whose next request reaches another worker is not told its nonce is stale
NONCE_KEY_ENV = "ACSD_NONCE_KEY"
#: a worker that cannot start again after the service was ready: next try after this long
RETRY_BROKEN = 10.0
#: seconds before a worker that died is started again
RESTART_DELAY = 1.0
#: a worker that dies this often within RESTART_WINDOW seconds stops the service
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
#: seconds a worker gets beyond shutdown_grace before it is killed
KILL_AFTER = 15.0
EXIT_FAILED = 1


def worker_index() -> int | None:
    """This process's worker index, or None when it is not a supervised worker."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value is not None and value.isdigit() else None


#: bytes of a nonce key a worker accepts (the supervisor makes 32): a shorter one could be
#: guessed, and with it a nonce forged that every worker takes as its own
MIN_NONCE_KEY = MIN_NONCE_KEY_BYTES


def shared_nonce_key() -> bytes | None:
    """The Digest nonce key of this service's workers (None when not a supervised worker).

    A worker whose key is missing or no key at all must not start: falling back to a key
    of its own would have it call every nonce its siblings issued stale, and the routers
    whose connections it takes would never get in (nothing in the log would say why)."""
    if worker_index() is None:
        return None
    value = os.environ.get(NONCE_KEY_ENV, "")
    try:
        key = bytes.fromhex(value)
    except ValueError:
        key = b""
    if len(key) < MIN_NONCE_KEY:
        # (the value itself is a secret: not repeated here)
        what = "not a Digest nonce key" if value else "missing"
        raise ConfigError(
            f"{NONCE_KEY_ENV}: {what} (a worker's, {2 * MIN_NONCE_KEY} or more hex digits,"
            f" is set by the supervisor that starts it with {WORKER_ENV})"
        )
    return key


def worker_config() -> Config | None:
    """The configuration the supervisor started the service with, in a supervised worker
    (None elsewhere)."""
    path = os.environ.get(CONFIG_ENV)
    if worker_index() is None or not path:
        return None
    try:
        return Config.model_validate_json(Path(path).read_bytes())
    except (OSError, ValidationError) as exc:  # the supervisor's own file, gone or damaged
        raise ConfigError(f"{path} (the supervisor's copy of the configuration): {exc}") from None


def drop_snapshot() -> None:
    """Remove the supervisor's copy of the configuration (a worker whose supervisor was
    killed: it holds the secrets, and no worker will be started from it again)."""
    path = os.environ.get(CONFIG_ENV)
    if worker_index() is not None and path:
        Path(path).unlink(missing_ok=True)


def supervise(config: Config, config_path: str | None) -> int:
    """Run the supervisor until SIGTERM/SIGINT; the exit status of the service."""
    with asyncio.Runner() as runner:
        return runner.run(Supervisor(config, config_path).run())


def reserve(host: str, port: int) -> socket.socket:
    """A bound, not listening, SO_REUSEPORT socket: it fixes the port for the workers and
    keeps it while a worker restarts, but never takes a connection itself."""
    if port:
        # SO_REUSEPORT lets any process of the same user share the port: another acsd
        # started by mistake would take half the connections. A bind without it fails
        # while anyone holds the port.
        bound_socket(host, port).close()
    return bound_socket(host, port, reuse_port=True)


def _listen_value(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reloaded_tls(running: TlsConfig, fresh: TlsConfig) -> TlsConfig:
    """The TLS section a reload gives the workers: the new file paths, unless TLS or mTLS
    is switched on or off (that, and ``min_version``, take a restart, as in the workers)."""
    if bool(running.cert) != bool(fresh.cert):
        return running
    paths = {"cert": fresh.cert, "key": fresh.key}
    if isinstance(running, CwmpTlsConfig) and isinstance(fresh, CwmpTlsConfig):
        if bool(running.client_ca) != bool(fresh.client_ca):
            return running
        paths["client_ca"] = fresh.client_ca
    return running.model_copy(update=paths)


def _usable_tls(section: str, running: TlsConfig, fresh: TlsConfig) -> TlsConfig:
    """:func:`_reloaded_tls`, kept as running when its files cannot be used: the workers
    keep the certificate in use (reload.tls_failed), and so must a worker restarted later,
    which would otherwise fail to start on them."""
    reloaded = _reloaded_tls(running, fresh)
    settings = TlsSettings.from_config(section, reloaded)
    if settings is None or reloaded == running:
        return reloaded
    try:
        build_context(settings)
    except TlsFileError:
        return running
    return reloaded


def _usable_profiles(running: ProfilesConfig, fresh: ProfilesConfig) -> ProfilesConfig:
    """The profiles section a reload gives the workers: kept as running when the new one's
    profiles do not load (the workers keep theirs: reload.profiles_failed)."""
    if fresh == running:
        return running
    try:
        load_profiles(Path(fresh.dir) if fresh.dir else None)
    except Exception:  # (ProfileError, or the directory unreadable: each worker says why)
        return running
    return fresh


def _usable_credentials(running: CwmpAuthConfig, fresh: CwmpAuthConfig) -> CwmpAuthConfig:
    """The ``[cwmp.auth]`` a reload gives the workers: the credentials file at a new path
    and the shared username and password, which every worker takes now (acsd.reload),
    unless they keep the ones in use: scheme, realm or algorithms changed (those take a
    restart), the new file's entries do not load, or no way in would be left."""
    if running.scheme == "none":
        return running
    if any(getattr(running, key) != getattr(fresh, key) for key in CREDENTIALS_BOUND_TO):
        return running
    shared = {key: getattr(fresh, key) for key in SHARED}
    # (load_config refuses neither password nor file: one of them is there)
    auth = running.model_copy(
        update={"credentials_file": _usable_file(running, fresh, bool(fresh.password))}
    )
    if all(getattr(auth, key) == value for key, value in shared.items()):
        return auth
    if not fresh.password and not _holds_routers(auth):
        # (the workers refuse to be left with no way in: reload.shared_password_failed)
        return auth
    # a worker restarted later must check the password its siblings check
    return auth.model_copy(update=shared)


def _usable_file(running: CwmpAuthConfig, fresh: CwmpAuthConfig, shared: bool) -> str | None:
    """The credentials file a reload gives the workers (``shared``: a shared password is
    in use after it): a new path once its entries load."""
    path = fresh.credentials_file
    if path == running.credentials_file:
        return path
    if not path:
        # (no shared password in use: the workers refuse to be left with no way in)
        return None if shared else running.credentials_file
    try:
        load_credentials(
            path, scheme=running.scheme, realm=running.realm, algorithms=running.algorithms
        )
    except ValueError:  # (each worker says why: reload.credentials_failed)
        return running.credentials_file
    return path


def _holds_routers(auth: CwmpAuthConfig) -> bool:
    """Whether the credentials file of ``auth`` loads with an entry at least (as the
    workers' count of the ones in use; one that does not load now counts as none)."""
    if not auth.credentials_file:
        return False
    try:
        devices = load_credentials(
            auth.credentials_file, scheme=auth.scheme, realm=auth.realm, algorithms=auth.algorithms
        )
    except ValueError:
        return False
    return bool(devices)


def _reloaded_stun(running: StunConfig, fresh: StunConfig) -> StunConfig:
    """The STUN section a reload gives the workers: what routers are told and the
    per-source bounds; ``enabled`` and ``listen`` take a restart (the socket is bound at
    start-up), and a public address is kept while STUN runs."""
    keys = ("public_port", "keepalive", "source_rate", "source_burst")
    update = {key: getattr(fresh, key) for key in keys}
    if fresh.public_address or not running.enabled:
        update["public_address"] = fresh.public_address
    return running.model_copy(update=update)


class Supervisor:
    def __init__(self, config: Config, config_path: str | None) -> None:
        self.config = config
        # the addresses as configured (self.config gets the ports bound): the workers
        # cannot see a change of them, which the supervisor's ACSD_*_LISTEN hides
        self.listens = {"cwmp.listen": config.cwmp.listen, "api.listen": config.api.listen}
        self.config_path = config_path
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.ready: set[int] = set()  # pids that sent READY=1
        #: pid -> when it last said it lives (READY=1 or WATCHDOG=1; time.monotonic())
        self.seen: dict[int, float] = {}
        self.announced = False
        self.stopping = asyncio.Event()
        self.failed: int | None = None  # exit status when a worker cannot run at all
        self.restarts: list[float] = []
        self.env: dict[str, str] = {}
        self.snapshot: Path | None = None
        #: set by a SIGHUP (and replaced): a worker waiting RETRY_BROKEN is tried at once,
        #: as the operator who fixed what stopped it (a profile) and reloaded expects
        self.retry_now = asyncio.Event()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop)
        loop.add_signal_handler(signal.SIGHUP, self._reload)
        if entry.held:  # (one before the event loop: see acsd.entry)
            self._reload()
        # systemd's WatchdogSec=, if the unit sets it, watches this loop only: a hung
        # worker is this loop's to replace, not a reason to restart the whole service
        pinging = asyncio.create_task(keep_alive())
        try:
            return await self._supervise()
        finally:
            await stop_task(pinging)

    async def _supervise(self) -> int:
        """From the store's migration to the last worker's exit: the exit status."""
        loop = asyncio.get_running_loop()
        store = store_of(self.config.store)
        try:
            await store.open()  # migrations once, before N processes race for them
            await store.check_writable()
        except (StoreError, sqlite3.DatabaseError) as exc:
            log.error("store_open_failed", url=shown_url(self.config.store.url), error=str(exc))
            return EXIT_FAILED
        finally:
            await store.close()
        held: list[socket.socket] = []
        for key, section in (("cwmp.listen", self.config.cwmp), ("api.listen", self.config.api)):
            try:
                held.append(reserve(section.host, section.port))
            except OSError as exc:
                log.error("listen_failed", key=key, listen=section.listen, error=str(exc))
                for sock in held:
                    sock.close()
                return EXIT_FAILED
        with supervisor_dir() as tmp:
            inbox = self._notify_inbox(Path(tmp) / "notify")
            (Path(tmp) / "metrics").mkdir()
            self.snapshot = Path(tmp) / "config.json"
            self.config = self.config.model_copy(
                update={
                    "cwmp": self.config.cwmp.model_copy(update={"listen": _listen_value(held[0])}),
                    "api": self.config.api.model_copy(update={"listen": _listen_value(held[1])}),
                }
            )
            self._write_snapshot()
            self.env = {
                **os.environ,
                CONFIG_ENV: str(self.snapshot),
                METRICS_DIR_ENV: str(Path(tmp) / "metrics"),
                "ACSD_CWMP_LISTEN": _listen_value(held[0]),
                "ACSD_API_LISTEN": _listen_value(held[1]),
                "NOTIFY_SOCKET": str(Path(tmp) / "notify"),
                NONCE_KEY_ENV: secrets.token_hex(32),
            }
            self._watch_workers(self.env)
            log.info(
                "workers.starting",
                workers=self.config.workers,
                cwmp=self.env["ACSD_CWMP_LISTEN"],
                api=self.env["ACSD_API_LISTEN"],
            )
            try:
                watchers = [
                    asyncio.create_task(self._keep(index)) for index in range(self.config.workers)
                ]
                hangs = asyncio.create_task(self._kill_hung())
                await self.stopping.wait()
                # Before the workers are told: one slow to drain is not hung, and one that
                # is hung is killed after the grace (_reap_all), as one that ignores SIGTERM.
                await stop_task(hangs)
                notify("STOPPING=1")
                log.info("workers.stopping", workers=len(self.procs))
                self._forward(signal.SIGTERM)
                await self._reap_all()
                for watcher in watchers:
                    watcher.cancel()
                await asyncio.gather(*watchers, return_exceptions=True)
            finally:
                for proc in self.procs.values():  # whatever happened, no worker outlives us
                    if proc.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            proc.kill()
                loop.remove_reader(inbox.fileno())
                inbox.close()
                for sock in held:
                    sock.close()
        log.info("workers.stopped")
        return self.failed or 0

    # --- workers --------------------------------------------------------------------------

    async def _keep(self, index: int) -> None:
        """Run worker ``index``; start it again when it dies, unless that keeps happening."""
        while not self.stopping.is_set():
            cmd = [sys.executable, "-m", "acsd", "serve"]
            if self.config_path:
                cmd += ["--config", str(self.config_path)]
            proc = await asyncio.create_subprocess_exec(
                *cmd, env={**self.env, WORKER_ENV: str(index)}
            )
            self.procs[index] = proc
            code = await proc.wait()
            was_ready = proc.pid in self.ready
            self.ready.discard(proc.pid)
            self.seen.pop(proc.pid, None)
            # its figures are not the service's any more (a scrape must not show it alive)
            forget_worker(Path(self.env[METRICS_DIR_ENV]), index)
            if self.stopping.is_set():
                return
            log.error("workers.exited", worker=index, pid=proc.pid, status=code)
            cannot_start = not was_ready and code in (1, 2)
            if cannot_start and self.announced and not self._alive():
                # Not one worker serves: a supervisor that stays would look active to
                # systemd, which then never restarts the service.
                log.error("workers.none_left", worker=index, status=code)
                self.failed = EXIT_FAILED
                self._stop()
                return
            if cannot_start and self.announced:
                # The service runs on its other workers: keep it, and try this one again
                # now and then (what it lacks, a profile fixed or the store back, may come).
                log.error(
                    "workers.restart_failed", worker=index, status=code, retry_in=RETRY_BROKEN
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.retry_now.wait(), RETRY_BROKEN)
                continue
            now = time.monotonic()
            self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW] + [now]
            if cannot_start or len(self.restarts) > MAX_RESTARTS:
                # A worker that cannot start (config, port, store) will not start next time.
                log.error("workers.giving_up", worker=index, restarts=len(self.restarts))
                # a signal's death (a negative code) is no exit status of ours
                self.failed = code if code and code > 0 else EXIT_FAILED
                self._stop()
                return
            await asyncio.sleep(RESTART_DELAY)

    def _watch_workers(self, env: dict[str, str]) -> None:
        """Ask the workers for ``WATCHDOG=1`` (``env`` is theirs): sd_notify's variables,
        so the same code answers systemd's WatchdogSec= in a process of its own."""
        # systemd's, for the supervisor (its main pid): not the workers' to answer
        env.pop("WATCHDOG_PID", None)
        env.pop("WATCHDOG_USEC", None)
        if self.config.worker_hang_timeout:
            env["WATCHDOG_USEC"] = str(int(self.config.worker_hang_timeout * 1_000_000))

    async def _kill_hung(self) -> None:
        """Kill a ready worker that has not said it lives for ``worker_hang_timeout``:
        :meth:`_keep` then starts it again as one that died (its restart counts)."""
        bound = self.config.worker_hang_timeout
        if not bound:
            return
        tick = min(bound / 4, MAX_KEEP_ALIVE_INTERVAL)
        last = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if now - last > 2 * tick:
                # This loop did not run either (the supervisor stopped: Ctrl-Z on the
                # process group, a paused VM): a worker's silence meanwhile says nothing,
                # and its WATCHDOG=1 may not be here yet. Each gets its bound again.
                self.seen = dict.fromkeys(self.seen, now)
            last = now
            if log_stalled():
                # Whoever reads the log (journald, a container's log driver, a pager) has
                # stopped: every worker blocks at its next line, which is no hang of its
                # own, and it goes on once reading does. Each gets its bound again then.
                self.seen = dict.fromkeys(self.seen, now)
                continue
            for index, proc in list(self.procs.items()):
                since = self.seen.get(proc.pid)
                if proc.returncode is not None or proc.pid not in self.ready or since is None:
                    continue
                if now - since <= bound:
                    continue
                log.warning(
                    "workers.hung",
                    worker=index,
                    pid=proc.pid,
                    silent_for=round(now - since, 1),
                    worker_hang_timeout=bound,
                )
                del self.seen[proc.pid]  # (killed once: it may take a moment to go)
                # SIGKILL: a loop that does not run does not run a SIGTERM handler either
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()

    def _alive(self) -> bool:
        """Whether any worker process is running now (of this supervisor's)."""
        return any(proc.returncode is None for proc in self.procs.values())

    def _write_snapshot(self) -> None:
        assert self.snapshot is not None
        tmp = self.snapshot.with_suffix(".tmp")
        # The directory is the supervisor's own (0700); the file holds the secrets.
        tmp.touch(mode=0o600)
        tmp.write_text(self.config.model_dump_json(context=WITH_SECRETS))
        os.replace(tmp, self.snapshot)

    def _reload(self) -> None:
        """SIGHUP: what a reload applies (log settings, profiles dir) goes into the snapshot, so a
        worker restarted later runs with it; then every worker reloads."""
        if self.snapshot is not None:
            try:
                # (the credentials file: _usable_credentials, as each worker reads it)
                fresh = load_config(self.config_path, credentials_later=True)
            except ConfigError:
                pass  # each worker names the error; the snapshot stays as it is
            else:
                now = {"cwmp.listen": fresh.cwmp.listen, "api.listen": fresh.api.listen}
                moved = [key for key, value in now.items() if value != self.listens[key]]
                if moved:
                    log.warning("reload.restart_needed", keys=moved)
                running = self.config
                self.config = self.config.model_copy(
                    update={
                        "log": fresh.log,
                        "profiles": _usable_profiles(running.profiles, fresh.profiles),
                        # the TLS files at new paths, which every worker reloads now: a
                        # worker restarted later must not come back with the old ones
                        "cwmp": running.cwmp.model_copy(
                            update={
                                "tls": _usable_tls("cwmp.tls", running.cwmp.tls, fresh.cwmp.tls),
                                "auth": _usable_credentials(running.cwmp.auth, fresh.cwmp.auth),
                            }
                        ),
                        "api": running.api.model_copy(
                            update={"tls": _usable_tls("api.tls", running.api.tls, fresh.api.tls)}
                        ),
                        "provisioning": self.config.provisioning.model_copy(
                            update={
                                key: getattr(fresh.provisioning, key)
                                for key in (
                                    "static_wan_dns",
                                    "drift_check_interval",
                                    "absent_recheck_interval",
                                )
                            }
                        ),
                        "stun": _reloaded_stun(self.config.stun, fresh.stun),
                    }
                )
                self._write_snapshot()
        # Only to workers that are up: one still starting has no handler yet (SIGHUP would
        # kill it), and reads the snapshot anyway.
        self._forward(signal.SIGHUP, ready_only=True)
        # One that could not start comes back now, with what the reload applies.
        self.retry_now.set()
        self.retry_now = asyncio.Event()

    def _forward(self, sig: int, *, ready_only: bool = False) -> None:
        for proc in self.procs.values():
            if proc.returncode is None and (not ready_only or proc.pid in self.ready):
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)

    def _stop(self) -> None:
        if self.stopping.is_set():
            # The second one: workers cut their grace short. Not SIGTERM: a worker may get
            # that twice for one stop (systemd signals the whole service; Ctrl-C the
            # process group), and must not take the copy for a second signal.
            self._forward(signal.SIGUSR1)
        self.stopping.set()

    async def _reap_all(self) -> None:
        running = [p for p in self.procs.values() if p.returncode is None]
        deadline = self.config.shutdown_grace + KILL_AFTER
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in running)), timeout=deadline)
        except TimeoutError:
            for proc in running:
                if proc.returncode is None:
                    log.error("workers.killed", pid=proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*(p.wait() for p in running))

    # --- readiness -----------------------------------------------------------------------

    def _notify_inbox(self, path: Path) -> socket.socket:
        """The NOTIFY_SOCKET the workers report to; the sender's pid comes with each
        datagram (SCM_CREDENTIALS), so the supervisor knows who is ready."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.bind(str(path))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        sock.setblocking(False)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_notify, sock)
        return sock

    def _on_notify(self, sock: socket.socket) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while True:
                data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
                pid = None
                for level, kind, payload in ancillary:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                        pid = struct.unpack("3i", payload[:12])[0]
                if pid is None:
                    continue
                states = data.split(b"\n")
                if b"READY=1" in states or b"WATCHDOG=1" in states:
                    self.seen[pid] = time.monotonic()
                if b"READY=1" in states:
                    self.ready.add(pid)
                    self._announce()

    def _announce(self) -> None:
        pids = {p.pid for p in self.procs.values() if p.returncode is None}
        if self.announced or len(pids) < self.config.workers or not pids <= self.ready:
            return
        self.announced = True
        log.info("workers.ready", workers=len(pids), pids=sorted(pids))
        notify(
            "READY=1",
            f"STATUS={len(pids)} workers; CWMP on {self.env['ACSD_CWMP_LISTEN']}, "
            f"API on {self.env['ACSD_API_LISTEN']}",
        )
