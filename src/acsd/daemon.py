"""``acsd serve``: open the store, load profiles, start both listeners, stop cleanly.

:func:`serve` reads the files the configuration names, starts every part (:func:`_start`:
each pushes its own cleanup on one exit stack as it starts), serves until SIGTERM/SIGINT
(:func:`_serve_until_stopped`), drains the open sessions (:func:`_drain`), and the exit
stack stops the parts in reverse, as it does after a start that failed half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from acsd import __version__, entry
from acsd.api.app import build_api_app
from acsd.api.context import ApiContext
from acsd.api.token_uses import TokenUses
from acsd.config import Config, StunConfig
from acsd.cwmp.auth import CpeAuthenticator, build_authenticator
from acsd.cwmp.connreq import ConnectionRequester, Target, target_of
from acsd.cwmp.server import CwmpServer, ServerSettings
from acsd.cwmp.session import Limits
from acsd.cwmp.stun import StunServer
from acsd.eventloop import loop_name, stop_task
from acsd.fdwatch import FdWatch
from acsd.listen_socket import answer_as_acsd, bound_sockets
from acsd.log import get_logger, set_static
from acsd.metrics import MeteredDriver, Metrics
from acsd.metrics_share import METRICS_DIR_ENV, MetricsShare
from acsd.provisioning.absent import AbsentHints
from acsd.provisioning.driver import ProvisioningDriver
from acsd.provisioning.held_lines import wake_held_lines
from acsd.provisioning.jobs import RetryPolicy, is_provisioned
from acsd.provisioning.profiles import ProfileError, ProfileSet, load_profiles, warn_of_doubts
from acsd.provisioning.session_state import DriverSettings
from acsd.reload import Profiles, Reloader
from acsd.retention import RetentionDays, run_pruner
from acsd.sdnotify import keep_alive, notify
from acsd.store import StoreError, is_postgres, shown_url, store_of
from acsd.store.base import DeviceRecord, Store
from acsd.throttle import close_held
from acsd.tls import ServerTls, TlsFileError, listener_settings, warnings_for, watch_expiry
from acsd.workers import drop_snapshot, shared_nonce_key, worker_index

log = get_logger("acsd")


def _bound(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _stop_when_orphaned(stop: asyncio.Event) -> None:
    """A worker whose supervisor is gone (killed, crashed) stops too, rather than serve on
    unsupervised and hold the port against the next start."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    log.error("workers.supervisor_gone", supervisor=parent)
    # The socket this worker reports to was the supervisor's: its STOPPING=1 would only
    # log a refused connection (systemd saw the supervisor go and acts on that).
    os.environ.pop("NOTIFY_SOCKET", None)
    drop_snapshot()
    stop.set()


#: seconds a request handler still running after the drain gets before it is cancelled (a
#: cancelled session's write is still committed: the store flushes its queue at close)
HANDLER_GRACE = 5.0
#: connections the kernel queues before acsd accepts them (capped by net.core.somaxconn):
#: a boot storm connects thousands of CPEs at once, and aiohttp's default of 128 turns the
#: excess into resets instead of a short wait or a 503
CWMP_BACKLOG = 4096
#: bytes of an API request line: the longest search (acsd.models.Search, 4000 characters
#: of up to 4 UTF-8 bytes, each written %XX) with the list's other parameters
API_MAX_REQUEST_LINE = 64 * 1024


async def serve(
    config: Config,
    *,
    stop: asyncio.Event | None = None,
    config_path: str | Path | None = None,
    profiles: ProfileSet | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); return the exit status. SIGHUP
    reloads profiles, log settings, TLS and CPE credentials files (``config_path`` is read
    again). ``profiles``: the set the command line loaded and checked (None: loaded here)."""
    stop = stop or asyncio.Event()
    worker = worker_index()
    if worker is not None:
        set_static(worker=worker)
    early_hup = _hold_sighup()
    # Whatever the start starts pushes its own cleanup here: a start that fails half-way
    # and the stop both undo what was started, in reverse (CWMP first, the store last).
    async with contextlib.AsyncExitStack() as started:
        # WATCHDOG=1 to whoever watches (a supervisor, systemd's WatchdogSec=) from now
        # until the store is closed: a worker that drains (or flushes its writes) is
        # alive, and its supervisor must not take it for hung.
        started.push_async_callback(stop_task, asyncio.create_task(keep_alive()))
        try:
            # Before the store opens: a profile that fails here must not leave its threads
            # running.
            files = _read_files(config, profiles)
            daemon = await _start(config, worker, files, started)
        except _StartFailed as failed:  # (its line is logged; what started stops now)
            return failed.status
        _tune_gc()
        hurry = _stop_on_signals(stop, worker)
        reloader = _reload_on_sighup(daemon, config_path, early_hup)
        await _serve_until_stopped(daemon, stop)
        await _drain(daemon, reloader, hurry)
    # Only once the store is closed: until then a SIGTERM must stay caught, or its default
    # action would end the process before the store's queued writes are flushed.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    # the counts of throttled lines still held back, told before the last line (and none
    # after it: a line after "stopped" would read as a daemon still running)
    close_held()
    log.info("stopped")
    return 0


class _StartFailed(Exception):
    """The start cannot go on; its error line is logged. ``status`` is serve's exit status:
    2 for a file the configuration names, 1 for the store or a port."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class _Files:
    """What the configuration names that the start reads (again: ``acsd config check`` or
    the command line read it too, but a file may have changed since)."""

    tls: dict[str, ServerTls]
    cpe_auth: CpeAuthenticator | None
    profiles: ProfileSet


@dataclass
class _Daemon:
    """What the start made, as serving, reloads and the stop use it."""

    config: Config
    worker: int | None
    tls: dict[str, ServerTls]
    #: new sessions read the ProfileSet through this holder, so SIGHUP can replace it
    profiles: Profiles
    store: Store
    metrics: Metrics
    share: MetricsShare | None
    driver_settings: DriverSettings
    cwmp: CwmpServer
    cwmp_runner: web.ServerRunner
    stun: StunServer | None
    api_context: ApiContext
    api_runner: web.AppRunner
    #: asks a router to connect (the Connection Request client's poke)
    wake: Callable[[DeviceRecord], None]
    #: the held lines' Connection Requests under way (see wake_held)
    waves: set[asyncio.Task[int]] = field(default_factory=set)

    def wake_held(self) -> None:
        """Routers whose static line waits for DNS servers, asked to connect now that the
        configuration has some (acsd.provisioning.held_lines). One worker asks: the others'
        requests would only be refused by the claim they share."""
        if self.worker not in (None, 0):
            return
        task = asyncio.create_task(wake_held_lines(self.store, self.wake), name="acsd-held-lines")
        self.waves.add(task)
        task.add_done_callback(self.waves.discard)

    def new_profiles(self, current: ProfileSet) -> None:
        """A reload's profiles, for the API and the metrics (sessions read the holder)."""
        self.api_context.profiles = current
        self.metrics.know_profiles(current.names())

    def new_config(self, running: Config, fresh: Config) -> None:
        """What a reload changes in this process: sessions that start afterwards push the
        new STUN values and static lines' DNS servers and follow the new drift-check and
        absent-recheck intervals; the STUN port's bounds at once."""
        settings = self.driver_settings
        if self.stun is not None:
            self.stun.bound_sources(fresh.stun.source_rate, fresh.stun.source_burst)
            pushed = _stun_for_routers(fresh.stun, self.stun)
            if pushed is not None:  # (none: STUN switched off in the file, for a restart)
                settings.stun = pushed
        # (read at each session's start: sessions in progress keep the ones they began with)
        settings.drift_check_interval = fresh.provisioning.drift_check_interval
        settings.absent_recheck_interval = fresh.provisioning.absent_recheck_interval
        dns = tuple(fresh.provisioning.static_wan_dns)
        if dns != settings.static_wan_dns:
            settings.static_wan_dns = dns
            if dns:
                self.wake_held()


# --- the start ----------------------------------------------------------------------------


def _hold_sighup() -> asyncio.Event:
    """An event set by a SIGHUP that arrives while the daemon starts. A SIGHUP while
    starting must not kill the daemon (its default action): it is held and served once
    the listeners run."""
    held = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, held.set)
    if entry.held:  # (one before the event loop: see acsd.entry)
        held.set()
    return held


def _read_files(config: Config, profiles: ProfileSet | None) -> _Files:
    """The TLS files, the CPE credentials and the profiles (``profiles``: the set the
    command line loaded and checked, None: loaded here). One that fails is a
    ``config_error`` line and exit status 2."""
    try:
        tls = {name: ServerTls(name, s) for name, s in listener_settings(config).items()}
    except TlsFileError as exc:  # a file changed since the config was checked
        log.error("config_error", key=exc.key, error=exc.reason)
        raise _StartFailed(2) from exc
    for settings in listener_settings(config).values():
        for warning in warnings_for(settings):
            log.warning("tls.legacy_versions", detail=warning)
    try:
        # (warns if CPEs are not authenticated)
        # (the configured key is every instance's; else the one this service's workers share)
        cpe_auth = build_authenticator(
            config.cwmp.auth, nonce_key=config.cwmp.auth.nonce_key_bytes or shared_nonce_key()
        )
    except ValueError as exc:  # the credentials file changed since the config was checked
        log.error("config_error", key="cwmp.auth.credentials_file", error=str(exc))
        raise _StartFailed(2) from exc
    try:
        loaded = (
            profiles
            if profiles is not None
            else load_profiles(Path(config.profiles.dir) if config.profiles.dir else None)
        )
    except ProfileError as exc:
        log.error("config_error", key="profiles.dir", error=str(exc))
        raise _StartFailed(2) from exc
    return _Files(tls=tls, cpe_auth=cpe_auth, profiles=loaded)


async def _start(
    config: Config, worker: int | None, files: _Files, started: contextlib.AsyncExitStack
) -> _Daemon:
    """Open the store, make every component from ``config``, start them and bind both
    listeners. Each pushes its cleanup on ``started`` once it is started."""
    profiles = Profiles(files.profiles)
    warn_of_doubts(files.profiles)
    store = await _open_store(config, started)
    fds = FdWatch()  # (a process at its open-files limit says so)
    fds.start()
    started.push_async_callback(fds.stop)
    metrics = Metrics(version=__version__)
    metrics.know_profiles(profiles.current.names())
    metrics.watch_store(store)
    metrics.watch_tls(files.tls)
    share = _metrics_share(worker)
    if share is not None:
        metrics.share(share)

    driver_settings = _driver_settings(config)
    if (cpe_auth := files.cpe_auth) is not None:
        # (the authenticator a reload updates in place: the password of the moment)
        driver_settings.rotate_to = lambda: cpe_auth.rotate_to
    # One for the process: what one CPE showed it lacks spares the next of its kind.
    absent_hints = AbsentHints()
    # (made below, once the STUN port it sends from is bound; wake runs in sessions only,
    # which start once the listeners are bound)
    requester: ConnectionRequester

    def wake(record: DeviceRecord) -> None:
        if (target := target_of(record)) is not None:
            requester.poke(record.id, *target)

    def new_driver() -> MeteredDriver:
        return metrics.instrument(
            ProvisioningDriver(store, profiles.current, driver_settings, absent_hints, wake)
        )

    answer_as_acsd()
    cwmp = CwmpServer(_cwmp_settings(config, worker, files.cpe_auth), new_driver, parking=store)
    cwmp_runner = _cwmp_runner(config, cwmp)
    metrics.watch_cwmp(cwmp)

    stun = await _start_stun(config, worker, started)
    if stun is not None:
        metrics.watch_stun(stun)
        driver_settings.stun = _stun_for_routers(config.stun, stun)
    requester = _connection_requester(config, store, stun)
    metrics.watch_requester(requester)
    await requester.start()
    started.push_async_callback(requester.close)

    api_context = ApiContext(
        store=store,
        profiles=profiles.current,
        requester=requester,
        default_interval=config.cwmp.periodic_interval,
        grace=config.cwmp.online_grace,
        public_url=config.api.public_url,
        body_timeout=config.api.body_timeout,
    )
    # Stopped after the API (the stack unwinds in reverse): it writes the last uses the
    # requests of the drain noted, before the store closes.
    api_context.token_uses = TokenUses(store)
    api_context.token_uses.start()
    started.push_async_callback(api_context.token_uses.stop)
    api_runner = _api_runner(config, api_context, metrics)
    # The API's runner is set up first so that the stop cleans it up after the CWMP one,
    # in the order the stop has always had: the API still answers (/readyz: draining)
    # while the CWMP handlers left after the drain have their HANDLER_GRACE.
    await api_runner.setup()
    started.push_async_callback(api_runner.cleanup)
    await cwmp_runner.setup()
    started.push_async_callback(cwmp_runner.cleanup)
    await cwmp.start()
    started.push_async_callback(cwmp.stop)
    await _bind(config, worker, files.tls, cwmp_runner, api_runner)
    return _Daemon(
        config=config,
        worker=worker,
        tls=files.tls,
        profiles=profiles,
        store=store,
        metrics=metrics,
        share=share,
        driver_settings=driver_settings,
        cwmp=cwmp,
        cwmp_runner=cwmp_runner,
        stun=stun,
        api_context=api_context,
        api_runner=api_runner,
        wake=wake,
    )


async def _open_store(config: Config, started: contextlib.AsyncExitStack) -> Store:
    """The store, open and writable; one that is not is a ``store_open_failed`` line and
    exit status 1."""
    store = store_of(config.store)
    # (before it opens: one that opened but cannot be written is closed too)
    started.push_async_callback(store.close)
    try:
        await store.open()
        await store.check_writable()
    except (StoreError, sqlite3.DatabaseError) as exc:
        # One line, not a traceback: a path that is wrong, a file that is no database, a
        # database this user may not write.
        log.error("store_open_failed", url=shown_url(config.store.url), error=str(exc))
        raise _StartFailed(1) from exc
    return store


def _driver_settings(config: Config) -> DriverSettings:
    """What every session's driver is set to (a reload changes some: see new_config)."""
    return DriverSettings(
        retry=RetryPolicy(
            base=config.provisioning.retry_base,
            max_attempts=config.provisioning.retry_max_attempts,
        ),
        drift_check=config.provisioning.drift_check,
        drift_check_interval=config.provisioning.drift_check_interval,
        absent_recheck_interval=config.provisioning.absent_recheck_interval,
        static_wan_dns=tuple(config.provisioning.static_wan_dns),
        periodic_interval=config.cwmp.periodic_interval,
        full_read_interval=config.cwmp.full_read_interval,
        max_body=config.cwmp.max_body,
    )


def _cwmp_settings(
    config: Config, worker: int | None, cpe_auth: CpeAuthenticator | None
) -> ServerSettings:
    return ServerSettings(
        max_body=config.cwmp.max_body,
        max_sessions=config.cwmp.max_sessions,
        session_timeout=config.cwmp.session_timeout,
        body_timeout=config.cwmp.body_timeout,
        max_loop_lag=config.cwmp.max_loop_lag,
        retry_after=config.cwmp.retry_after,
        trust_forwarded=config.cwmp.trust_forwarded,
        limits=Limits(
            max_requests=config.cwmp.max_requests_per_session,
            max_seconds=config.cwmp.max_session_seconds,
            hold_requests=config.cwmp.hold_requests,
        ),
        auth=cpe_auth,
        worker=worker,
        handoff=config.workers > 1,
        shared_store=is_postgres(config.store.url),
    )


def _cwmp_runner(config: Config, cwmp: CwmpServer) -> web.ServerRunner:
    return web.ServerRunner(
        cwmp.http_server(
            access_log=None,
            keepalive_timeout=config.cwmp.session_timeout,
            # A CWMP session lives seconds and has its own timeout; SO_KEEPALIVE would cost
            # two socket calls on every connection and find a dead peer only after two hours.
            tcp_keepalive=False,
            # The CWMP handler inflates bodies itself (x-gzip too; br gets its 415).
            auto_decompress=False,
        ),
        handle_signals=False,
        shutdown_timeout=HANDLER_GRACE,
    )


async def _start_stun(
    config: Config, worker: int | None, started: contextlib.AsyncExitStack
) -> StunServer | None:
    """The STUN server, bound (None when ``[stun]`` is off); a port that cannot be bound
    is a ``listen_failed`` line and exit status 1."""
    if not config.stun.enabled:
        return None
    stun = StunServer(
        config.stun.host,
        config.stun.port,
        deny=config.cwmp.connection_request_deny,
        reuse_port=worker is not None,
        source_rate=config.stun.source_rate,
        source_burst=config.stun.source_burst,
        workers=config.workers,
    )
    try:
        await stun.start()
    except OSError as exc:
        log.error("listen_failed", key="stun.listen", listen=config.stun.listen, error=str(exc))
        raise _StartFailed(1) from exc
    started.callback(stun.close)
    return stun


def _connection_requester(
    config: Config, store: Store, stun: StunServer | None
) -> ConnectionRequester:
    async def cr_target(device_id: str) -> Target | None:
        # Read when a deferred request goes: a session in between may have taken the
        # change up (another process's, or the one the router opened itself while it
        # answered 503: the record ACTIVE and its revision applied, nothing waits for the
        # router, so no request), or set new credentials on the router. A FAILED job's
        # record (a line held for DNS servers a reload just gave) is still asked.
        record = await store.get_device(device_id)
        if record is None or (
            record.state == "ACTIVE" and is_provisioned(record.provisioning, record.revision)
        ):
            return None
        return target_of(record)

    if not config.cwmp.connection_request_deny:
        # (an empty value reads as "deny nothing", which may be no one's intent: a stray
        # ACSD_CWMP_CONNECTION_REQUEST_DENY= in an environment file)
        log.warning(
            "connreq.deny_empty",
            message="cwmp.connection_request_deny is empty: Connection Requests go to any "
            "address a router reports, acsd's own host and its loopback included",
        )

    return ConnectionRequester(
        timeout=config.cwmp.connection_request_timeout,
        min_interval=config.cwmp.connection_request_interval,
        deny=config.cwmp.connection_request_deny,
        lookup=cr_target,
        # Only where other processes send requests too (workers on the SQLite file, or
        # instances on PostgreSQL, which this one cannot count): one process alone keeps
        # the interval in memory, and a write per request would queue behind sessions'.
        claim=store.claim_connection_request
        if config.workers > 1 or is_postgres(config.store.url)
        else None,
        allow_basic=config.cwmp.connection_request_allow_basic,
        busy_for=config.cwmp.max_session_seconds,
        udp=stun,
    )


def _api_runner(config: Config, api_context: ApiContext, metrics: Metrics) -> web.AppRunner:
    return web.AppRunner(
        build_api_app(api_context, version=__version__, metrics=metrics),
        access_log=None,
        handle_signals=False,
        # aiohttp's own default (an hour) would let a client hold a connection that long
        # by never finishing its headers; the timer runs from the connection's start.
        keepalive_timeout=config.api.idle_timeout,
        # The body readers inflate (acsd.inflate): aiohttp's own 400 for br or zstd would
        # reach clients as text/plain, outside the API's error form.
        auto_decompress=False,
        shutdown_timeout=HANDLER_GRACE,
        # A search the API takes (q= of up to 4000 characters, 12 bytes each as %XX in the
        # URL) must reach it: over aiohttp's default (8190 bytes) the request line is
        # refused before any handler, in text/plain, outside the API's error form.
        max_line_size=API_MAX_REQUEST_LINE,
    )


async def _bind(
    config: Config,
    worker: int | None,
    tls: dict[str, ServerTls],
    cwmp_runner: web.ServerRunner,
    api_runner: web.AppRunner,
) -> None:
    """Both listeners on their addresses, CWMP first; an address that cannot be bound is
    a ``listen_failed`` line (naming the listener's key, as the supervisor's does with
    workers) and exit status 1."""
    reuse_port = worker is not None  # (workers share the ports)
    key, listen = "cwmp.listen", config.cwmp.listen
    try:
        # (sockets of acsd's own: "[::]" takes IPv4 routers too, see acsd.listen_socket;
        # a name is each of its addresses)
        for sock in bound_sockets(config.cwmp.host, config.cwmp.port, reuse_port=reuse_port):
            await web.SockSite(
                cwmp_runner,
                sock,
                ssl_context=tls["cwmp"].context if "cwmp" in tls else None,
                backlog=CWMP_BACKLOG,
            ).start()
        key, listen = "api.listen", config.api.listen
        for sock in bound_sockets(config.api.host, config.api.port, reuse_port=reuse_port):
            await web.SockSite(
                api_runner, sock, ssl_context=tls["api"].context if "api" in tls else None
            ).start()
    except OSError as exc:
        log.error("listen_failed", key=key, listen=listen, error=str(exc))
        raise _StartFailed(1) from exc


# --- serving, and the stop ----------------------------------------------------------------


def _stop_on_signals(stop: asyncio.Event, worker: int | None) -> asyncio.Event:
    """SIGTERM/SIGINT set ``stop``; returns the event that cuts the stop's grace short."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # A second SIGTERM/SIGINT cuts the grace short (sessions are still committed). A
    # supervised worker gets that from its supervisor as SIGUSR1: SIGTERM may reach it
    # twice for one stop (systemd's KillMode=control-group signals every process of the
    # service, and the supervisor forwards its own; Ctrl-C reaches the process group).
    hurry = asyncio.Event()
    if worker is not None:

        def hurry_up() -> None:
            hurry.set()
            stop.set()

        loop.add_signal_handler(signal.SIGUSR1, hurry_up)
    return hurry


def _reload_on_sighup(
    daemon: _Daemon, config_path: str | Path | None, early_hup: asyncio.Event
) -> Reloader:
    """SIGHUP reloads from now on; one held since the start is served now."""
    reloader = Reloader(
        daemon.config,
        config_path,
        daemon.profiles,
        daemon.tls,
        on_profiles=daemon.new_profiles,
        on_config=daemon.new_config,
        cpe_auth=daemon.cwmp.settings.auth,
    )
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.request)
    if early_hup.is_set():
        reloader.request()
    return reloader


async def _serve_until_stopped(daemon: _Daemon, stop: asyncio.Event) -> None:
    """Tell the log and systemd that the daemon listens; run its background tasks until
    ``stop`` is set, then cancel them."""
    cwmp_at, api_at = _bound(daemon.cwmp_runner), _bound(daemon.api_runner)
    log.info(
        "listening",
        cwmp=cwmp_at,
        api=api_at,
        store=shown_url(daemon.config.store.url),
        profiles=sorted(daemon.profiles.current.names()),
        tls=sorted(daemon.tls),
        stun=daemon.stun.bound if daemon.stun is not None else None,
        mtls=bool("cwmp" in daemon.tls and daemon.tls["cwmp"].settings.mtls),
        loop=loop_name(),
    )
    notify("READY=1", f"STATUS=CWMP on {cwmp_at}, API on {api_at}")
    background: list[asyncio.Task[None]] = []
    if daemon.worker is not None:
        background.append(asyncio.create_task(_stop_when_orphaned(stop)))
    if daemon.share is not None:
        background.append(asyncio.create_task(daemon.share.run(daemon.metrics.exposition)))
    if daemon.tls:
        background.append(asyncio.create_task(watch_expiry(daemon.tls)))
    if daemon.worker in (None, 0):
        # One worker prunes: the others' batches would only find the rows gone.
        retention = RetentionDays.of(daemon.config.store)
        background.append(asyncio.create_task(run_pruner(daemon.store, retention)))
    if daemon.driver_settings.static_wan_dns:
        # (set since the lines were held: a restart releases them as a reload would)
        daemon.wake_held()
    await stop.wait()
    for task in (*background, *daemon.waves):
        task.cancel()


async def _drain(daemon: _Daemon, reloader: Reloader, hurry: asyncio.Event) -> None:
    """The stop, up to the teardown: systemd and /readyz are told, a reload in progress
    ends, open sessions get ``shutdown_grace`` (less once ``hurry`` is set)."""
    notify("STOPPING=1")
    daemon.api_context.stopping = True
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        if daemon.worker is None:
            loop.add_signal_handler(sig, hurry.set)
        else:  # one stop, however many copies of its signal arrive (see _stop_on_signals)
            loop.add_signal_handler(sig, lambda: None)
    loop.add_signal_handler(signal.SIGHUP, lambda: log.info("reload.skipped", reason="stopping"))
    grace = daemon.config.shutdown_grace
    log.info("stopping", open_sessions=len(daemon.cwmp.sessions), grace=grace)
    await reloader.wait()
    await daemon.cwmp.drain(grace, hurry=hurry)


def _stun_for_routers(section: StunConfig, server: StunServer) -> tuple[str, int, int] | None:
    """What every router's STUN client is set to, towards ``server``: (STUNServerAddress,
    STUNServerPort, keepalive); the port routers reach, else the one bound (a listen port
    of 0, in tests). None without a public address (STUN switched off in the file)."""
    if not section.public_address:
        return None
    return section.public_address, section.public_port or server.port, section.keepalive


def _metrics_share(worker: int | None) -> MetricsShare | None:
    """A supervised worker's share of the workers' metrics (the supervisor made the
    directory); None for a daemon on its own."""
    directory = os.environ.get(METRICS_DIR_ENV)
    if worker is None or not directory:
        return None
    return MetricsShare(Path(directory), worker)


def _tune_gc() -> None:
    """Every CWMP exchange allocates thousands of short-lived objects (parsed XML, values,
    dicts) and keeps almost none. With CPython's default thresholds the collector runs
    every 700 allocations and often walks the long-lived heap too. Here, what start-up
    loaded (modules, profiles) is frozen out of collection, and young objects are collected
    every 20,000 allocations: the steady benchmark does about a tenth more sessions/s."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)
