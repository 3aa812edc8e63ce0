"""Many routers on one event loop: the ``--once`` boot run and the periodic run, retries
with the CWMP back-off, the Connection Request listener, ``--state``, ``--dump`` and
``--report``."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import random
import re
import ssl as _ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from acsd.sim.cpe import PERIODIC, Cpe
from acsd.sim.crserver import ConnectionRequestServer
from acsd.sim.session import SessionResult, run_session
from acsd.sim.template import PathRules, load_template
from acsd.sim.udpcr import UdpRouter

log = logging.getLogger(__name__)

# Where the routers claim to listen for Connection Requests when no listener runs: a local
# port nothing serves, so an ACS that tries gets "connection refused" at once.
NO_LISTENER_URL = "http://127.0.0.1:9/cr/{serial}"


def credential(template: str, cpe: Cpe) -> str:
    """``--acs-username``/``--acs-password`` for ``cpe``: ``{serial}``, ``{oui}`` and
    ``{productClass}`` filled in (``{oui}-{serial}`` is TR-069's recommended username)."""
    device = cpe.template.device_id
    return (
        template.replace("{serial}", cpe.serial)
        .replace("{oui}", str(cpe.tree.get(device["oui"])))
        .replace("{productClass}", str(cpe.tree.get(device["product_class"])))
    )


MAX_RETRY_AFTER = 600.0  # seconds: a Retry-After is honoured up to this
ONCE_503_RETRIES = 3  # --once: how often a router comes back after "503, Retry-After"
_SERIAL_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,58}")


def check_target(url: str, allow_remote: bool = False) -> None:
    """The simulator talks to loopback only unless told otherwise: it is a test tool, and
    thousands of fake routers must never be pointed at somebody's server by a typo."""
    host = urlsplit(url).hostname or ""
    if urlsplit(url).scheme not in ("http", "https") or not host:
        raise ValueError(f"bad ACS URL {url!r} (expected http://HOST:PORT/...)")
    if allow_remote or host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"ACS host {host} is not a loopback address (use --allow-remote to override)")


def check_faults(faults: Mapping[str, int]) -> dict[str, int]:
    """``--fault`` entries: parameter selectors (see PathRules) -> CPE fault code."""
    out: dict[str, int] = {}
    for path, code in faults.items():
        if not isinstance(code, int) or not 9000 <= code <= 9899:
            raise ValueError(f"fault code for {path} must be a CPE fault 9000-9899, not {code!r}")
        out[path] = code
    PathRules(out)  # raises ValueError on a bad selector
    return out


def retry_wait(attempt: int, minimum: float, multiplier: float, rng: random.Random) -> float:
    """TR-069 3.2.1.1 session retry: attempt n waits between m*k^(n-1) and m*k^n seconds,
    growing for ten attempts and then staying there (cwmp-reference 1.8)."""
    n = max(1, min(attempt, 10))
    low = minimum * multiplier ** (n - 1)
    return rng.uniform(low, low * multiplier)


@dataclass(slots=True)
class Summary:
    routers: int
    ok: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def sessions(self) -> int:
        return self.ok + self.failed

    def line(self) -> str:
        return (
            f"sim: {self.routers} routers, {self.ok} sessions ok, "
            f"{self.failed} failed in {self.seconds:.2f}s"
        )

    def record(self, serial: str, result: SessionResult) -> None:
        if result.ok:
            self.ok += 1
        else:
            self.failed += 1
            if len(self.failures) < 10_000:
                self.failures.append((serial, result.reason))


class Simulation:
    """N routers of the given profiles (assigned round-robin), talking to ``acs_url``."""

    def __init__(
        self,
        acs_url: str,
        profiles: Iterable[str],
        count: int,
        *,
        serial_prefix: str | None = None,
        quirks: frozenset[str] | set[str] = frozenset(),
        state_dir: str | Path | None = None,
        dump_dir: str | Path | None = None,
        concurrency: int = 64,
        interval: float | None = None,
        ramp: float | None = None,
        retry_scale: float = 1.0,
        delay_scale: float = 1.0,
        cr_listen: str | None = None,
        ssl: _ssl.SSLContext | None = None,
        timeout: float = 30.0,
        allow_remote: bool = False,
        acs_username: str | None = None,
        acs_password: str | None = None,
        start_index: int = 1,
        faults: Mapping[str, int] | None = None,
        report_file: str | Path | None = None,
        udp_cr: bool = False,
    ) -> None:
        check_target(acs_url, allow_remote)
        names = list(profiles)
        if not names or count < 0:
            raise ValueError("need at least one profile and a count >= 0")
        if serial_prefix is not None and not _SERIAL_PREFIX.fullmatch(serial_prefix):
            raise ValueError(f"serial prefix {serial_prefix!r}: use 1-58 of A-Z a-z 0-9 _ -")
        templates = [load_template(n) for n in names]
        faults = check_faults(faults or {})
        self.report_file = Path(report_file) if report_file else None
        self.acs_url = acs_url
        self.quirks = frozenset(quirks)
        self.state_dir = Path(state_dir) if state_dir else None
        self.dump_dir = Path(dump_dir) if dump_dir else None
        self.concurrency = max(1, concurrency)
        self.interval = interval
        self.ramp = ramp
        self.retry_scale = retry_scale
        self.ssl = ssl
        self.timeout = timeout
        self.cr_listen = cr_listen
        self.cr_server: ConnectionRequestServer | None = None
        #: each router's STUN client and UDP Connection Request listener (TR-069 Annex G),
        #: on 127.0.0.1: started with the run when ``udp_cr``
        self.udp_cr = udp_cr
        self.udp: dict[str, UdpRouter] = {}
        self.routers: list[Cpe] = []
        for n in range(count):
            index = start_index + n
            template = templates[n % len(templates)]
            serial = f"{serial_prefix or template.serial_prefix}{index:06d}"
            cpe = Cpe(
                template,
                index,
                serial,
                acs_url=acs_url,
                cr_url=NO_LISTENER_URL.format(serial=serial),
                delay_scale=delay_scale,
                faults=faults,
            )
            self.routers.append(cpe)
        self._credentials = {"Username": acs_username, "Password": acs_password}
        self.by_serial = {cpe.serial: cpe for cpe in self.routers}
        self.summary = Summary(len(self.routers))
        self._sem: asyncio.Semaphore | None = None
        self._stop_event: asyncio.Event | None = None
        self._stopping = False
        self._wakers: dict[str, asyncio.Event] = {}
        self._rng = random.Random(0x5117)

    def router(self, serial: str) -> Cpe:
        """The router named ``serial``: its ``tree``, ``stats``, ``faults``, ``set_local``."""
        return self.by_serial[serial]

    def report(self) -> dict[str, Any]:
        """What ``--report`` writes: per router its sessions and what the ACS asked."""
        return {
            "routers": [
                {"serial": cpe.serial, "profile": cpe.profile, **cpe.stats.to_json()}
                for cpe in self.routers
            ]
        }

    # --- start and finish ---------------------------------------------------------------

    async def _start(self, listen: str | None) -> None:
        self._sem = asyncio.Semaphore(self.concurrency)
        self._stop_event = asyncio.Event()
        self._stopping = False
        self.summary = Summary(len(self.routers))
        if listen:
            self.cr_server = ConnectionRequestServer(self.by_serial, listen)
            await self.cr_server.start()
            for cpe in self.routers:
                cpe.set_connection_request_url(self.cr_server.url_for(cpe.serial))
        if self.udp_cr:
            for cpe in self.routers:
                self.udp[cpe.serial] = router = UdpRouter(cpe)
                await router.start()
        if self.state_dir is not None:
            self._load_state(self.state_dir)
        for cpe in self.routers:
            # after --state: the command line wins, but for what the ACS set since (a
            # rotated ManagementServer.Password), as on a real router
            cpe.set_factory_credentials(
                {
                    leaf: credential(value, cpe)
                    for leaf, value in self._credentials.items()
                    if value is not None
                }
            )

    async def _finish(self, started: float) -> Summary:
        for router in self.udp.values():
            await router.stop()
        self.udp = {}
        if self.cr_server is not None:
            await self.cr_server.stop()
            self.cr_server = None
        if self.state_dir is not None:
            self._write(self.state_dir, lambda cpe: cpe.save_state())
        if self.dump_dir is not None:
            self._write(self.dump_dir, lambda cpe: cpe.tree.flat())
        if self.report_file is not None:
            _write_json(self.report_file, self.report())
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _load_state(self, folder: Path) -> None:
        for cpe in self.routers:
            path = folder / f"{cpe.serial}.json"
            try:
                state = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                log.warning("%s: ignoring unreadable state %s: %s", cpe.serial, path, exc)
                continue
            if state.get("profile") != cpe.profile:
                log.warning(
                    "%s: state is for profile %s, not %s; starting fresh",
                    cpe.serial,
                    state.get("profile"),
                    cpe.profile,
                )
                continue
            try:
                cpe.load_state(state)
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                # a hand-edited file of the wrong shape ("released": [], no "tree"): the
                # router starts fresh rather than the whole run failing
                log.warning("%s: ignoring malformed state %s: %r", cpe.serial, path, exc)

    def _write(self, folder: Path, content: Callable[[Cpe], Any]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for cpe in self.routers:
            _write_json(folder / f"{cpe.serial}.json", content(cpe))

    async def _session(self, cpe: Cpe, trigger: list[str] | None) -> SessionResult:
        assert self._sem is not None
        async with self._sem:
            result = await run_session(
                cpe,
                self.acs_url,
                trigger=trigger,
                quirks=self.quirks,
                ssl=self.ssl,
                timeout=self.timeout,
            )
        if not result.ok:
            log.info("%s: session failed: %s", cpe.serial, result.reason)
        return result

    # --- --once ---------------------------------------------------------------------------

    async def run_once(self) -> Summary:
        """Every router runs its boot session (BOOTSTRAP, or BOOT with saved state) once."""
        started = time.monotonic()
        await self._start(self.cr_listen)
        try:
            await asyncio.gather(*(self._once(cpe) for cpe in self.routers))
        finally:
            summary = await self._finish(started)
        return summary

    async def _once(self, cpe: Cpe) -> None:
        for attempt in range(ONCE_503_RETRIES + 1):
            result = await self._session(cpe, None)
            if result.ok or result.retry_after is None or attempt == ONCE_503_RETRIES:
                break
            # an overloaded ACS asked us to come back later: a boot storm should drain
            await asyncio.sleep(min(result.retry_after, MAX_RETRY_AFTER) * self.retry_scale)
        self.summary.record(cpe.serial, result)

    # --- periodic -------------------------------------------------------------------------

    async def run(self, duration: float | None = None) -> Summary:
        """Boot every router (spread over the first interval), then Inform periodically,
        answer Connection Requests and retry failures until ``duration`` seconds pass."""
        started = time.monotonic()
        await self._start(self.cr_listen if self.cr_listen is not None else "127.0.0.1:0")
        tasks = [asyncio.create_task(self._life(cpe)) for cpe in self.routers]
        assert self._stop_event is not None
        try:
            async with asyncio.timeout(duration):
                await self._stop_event.wait()
        except TimeoutError:
            pass
        finally:
            self.stop()
            _, pending = await asyncio.wait(tasks, timeout=self.timeout + 5) if tasks else ((), ())
            for task in pending:
                task.cancel()
            summary = await self._finish(started)
        return summary

    def stop(self) -> None:
        """End a periodic run: sessions in flight finish, nothing new starts."""
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()
        for event in self._wakers.values():
            event.set()

    def _interval(self, cpe: Cpe) -> float | None:
        """Seconds to the next periodic Inform: the tree's PeriodicInformInterval (the ACS
        may change it) unless --interval overrides; None when periodic Inform is off."""
        if self.interval is not None:
            return self.interval
        ms = cpe.template.root + "ManagementServer."
        tree = cpe.tree
        if tree.get(ms + "PeriodicInformEnable") not in ("1", "true"):
            return None
        try:
            return max(1.0, float(tree.get(ms + "PeriodicInformInterval")))
        except ValueError:
            return None

    async def _nap(self, wake: asyncio.Event, seconds: float) -> None:
        if self._stopping or seconds <= 0:
            return
        try:
            async with asyncio.timeout(seconds):
                await wake.wait()
        except TimeoutError:
            pass

    async def _life(self, cpe: Cpe) -> None:
        wake = self._wakers[cpe.serial] = asyncio.Event()
        cpe.on_wake = wake.set
        rng = self._rng  # jitter and back-off need no per-router reproducibility
        first = self.ramp if self.ramp is not None else (self._interval(cpe) or 0.0)
        await self._nap(wake, rng.uniform(0, first))
        interval = self._interval(cpe)
        next_periodic = time.monotonic() + interval if interval else None
        trigger: list[str] = []  # the boot session: its events are pending already
        failures = 0
        ms = cpe.template.root + "ManagementServer."
        while not self._stopping:
            result = await self._session(cpe, trigger)
            self.summary.record(cpe.serial, result)
            if not result.ok:
                failures += 1
                minimum = _number(cpe.tree.get(ms + "CWMPRetryMinimumWaitInterval"), 5.0)
                multiplier = _number(cpe.tree.get(ms + "CWMPRetryIntervalMultiplier"), 2000.0)
                wait = retry_wait(failures, minimum, multiplier / 1000, rng)
                if result.retry_after is not None:
                    wait = max(wait, min(result.retry_after, MAX_RETRY_AFTER))
                wake.clear()
                await self._nap(wake, wait * self.retry_scale)
                continue  # same trigger again: its events were not delivered
            failures = 0
            new_interval = self._interval(cpe)
            if new_interval != interval:  # the ACS changed it (or switched periodic on/off)
                interval = new_interval
                next_periodic = time.monotonic() + interval if interval else None
            trigger = []
            while not self._stopping:
                wake.clear()
                if cpe.poll():
                    break  # reboot, timers, Connection Request, active notification
                now = time.monotonic()
                if next_periodic is not None and now >= next_periodic:
                    assert interval is not None
                    next_periodic = max(next_periodic + interval, now + interval / 2)
                    cpe.drift()
                    trigger = [PERIODIC]
                    break
                deadline = min(
                    next_periodic if next_periodic is not None else now + 3600,
                    cpe.next_timer() or now + 3600,
                )
                await self._nap(wake, deadline - now)


def _write_json(path: Path, content: Any) -> None:
    """Write ``content`` whole or not at all (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def _number(text: str, default: float) -> float:
    try:
        return float(text)
    except ValueError:
        return default
