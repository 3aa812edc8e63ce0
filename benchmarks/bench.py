"""acsd's benchmark: steady periodic Informs, a boot storm, the API under CWMP load, and
memory — each next to a bare aiohttp+lxml baseline measured in the same run.

The daemon (or the baseline) runs pinned to core 0 and the load generator to core 1
(``taskset``), so figures from different runs on the same machine compare. Results go to
stdout as a Markdown table and to ``benchmarks/results/latest.json`` plus a dated copy.

    python benchmarks/bench.py            # the full run (make bench)
    python benchmarks/bench.py --quick    # a few seconds per scenario (make bench-quick)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _allowed_cpus() -> list[int]:
    """The CPUs this process may run on (a container or cgroup may allow CPUs 2-3 only)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def pinning() -> dict[str, int | None]:
    """The CPU the server (daemon or baseline) and the load generator each run on; None
    when they cannot be pinned (no taskset, or fewer than two CPUs allowed)."""
    cpus = _allowed_cpus()
    if not shutil.which("taskset") or len(cpus) < 2:
        return {"server": None, "generator": None}
    return {"server": cpus[0], "generator": cpus[1]}


def pinned(role: str, cmd: list[str]) -> list[str]:
    cpu = pinning()[role]
    return cmd if cpu is None else ["taskset", "-c", str(cpu), *cmd]


def proc_stats(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds) of a process, from /proc."""
    rss = 0.0
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(fields[11]) + int(fields[12])) / ticks


def loadgen(acs: str, routers: int, *, on: dict | None = None, pin: bool = True, **options) -> dict:
    """Run the load generator on core 1 (options: see loadgen.py, as keyword arguments);
    ``on`` maps its progress words (``registered``, ``held``) to callbacks run right then;
    ``pin=False``: on any core."""
    cmd = [PY, str(HERE / "loadgen.py"), "--acs", acs, "--routers", str(routers)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            cmd.append(flag)
        elif value not in (None, False):
            cmd += [flag, str(value)]
    proc = subprocess.Popen(pinned("generator", cmd) if pin else cmd, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    last = ""
    try:
        for line in proc.stdout:
            word = line.strip()
            if word in ("registered", "measured", "paced", "holding", "held"):
                if on and word in on:
                    on[word]()
                if word == "held":
                    proc.stdin.close()  # the generator lets its sessions go
                continue
            last = word or last
        if proc.wait(timeout=1200) != 0:
            raise RuntimeError(f"load generator failed: {proc.stderr.read()[-2000:]}")
    finally:
        if proc.poll() is None:  # the run was interrupted: no generator left behind
            proc.kill()
            proc.wait()
    return json.loads(last)


@contextlib.contextmanager
def baseline_server():
    port = free_port()
    proc = subprocess.Popen(
        pinned("server", [PY, str(HERE / "baseline_server.py"), "--port", str(port)]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        if proc.stdout.readline().strip() != "ready":
            proc.wait(timeout=10)
            raise RuntimeError(
                f"the baseline server did not start (exit {proc.returncode}): "
                f"{proc.stderr.read()[-2000:]}"
            )
        yield f"http://127.0.0.1:{port}/", proc.pid
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # Its figures are taken; on a loaded machine its graceful stop can outlast
                # the wait, and the run must not fail for a server it no longer needs.
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def acsd_daemon(
    workdir: Path,
    db: Path | None = None,
    extra: str = "",
    src: Path | None = None,
    *,
    workers: int = 1,
    pin: bool = True,
):
    """acsd on core 0 with its defaults but for the log level (warning: at info it writes
    two lines per session, which is a cost of its own) and ``extra`` TOML; ``src``: run the
    acsd package of that source tree instead of the installed one (see compare.py);
    ``workers``, and ``pin=False`` to let them (and their supervisor) run on any core."""
    cwmp, api = free_port(), free_port()
    config = workdir / "bench.toml"
    db = db or workdir / "bench.db"
    config.write_text(
        # Sessions the memory scenario held are gone with their generator: a stop need not
        # wait the default grace for them.
        f"shutdown_grace = 1\nworkers = {workers}\n"
        # A router told 503 comes back after 2-7 s (the default, 60, spreads a real storm
        # over minutes; the generator waits what it is told).
        f'[cwmp]\nlisten = "127.0.0.1:{cwmp}"\nretry_after = {BENCH_RETRY_AFTER}\n{extra}'
        f'[api]\nlisten = "127.0.0.1:{api}"\n'
        f'[store]\nurl = "sqlite:///{db}"\n'
        '[log]\nlevel = "warning"\nformat = "json"\n'
    )
    log = open(workdir / "daemon.log", "a")  # noqa: SIM115 (lives as long as the daemon)
    env = None if src is None else {**os.environ, "PYTHONPATH": str(src)}
    serve = [PY, "-m", "acsd", "serve", "--config", str(config)]
    proc = subprocess.Popen(
        pinned("server", serve) if pin else serve,
        stderr=log,
        cwd=workdir,
        env=env,
    )
    try:
        _wait_listening(proc, api, workdir / "daemon.log")
        yield f"http://127.0.0.1:{cwmp}/", f"http://127.0.0.1:{api}", proc.pid, config
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=120)
        log.close()


def _show_daemon_warnings(log: Path, lines: int = 20) -> None:
    """The end of the daemon's log on stderr: failed sessions say why on the daemon's side
    (the generator sees only a status), and the log goes with the run's temporary files."""
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    print(f"the daemon's log ({log.name}) ends:", *tail, sep="\n  ", file=sys.stderr)


def _wait_listening(proc: subprocess.Popen, port: int, log: Path) -> None:
    """Until the daemon's API port answers; raises with the end of its log if it exits
    first or is not up within a minute (a run against no daemon measures nothing)."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    state = f"exited with {proc.returncode}" if proc.poll() is not None else "not up in 60 s"
    raise RuntimeError(f"acsd {state}; its log ends:\n{log.read_text()[-2000:]}")


# -- registered idle devices ------------------------------------------------------------------


def populate(db: Path, count: int) -> float:
    """``count`` registered devices (serials IDLE000001...), each with the parameter tree
    and status a tplink-tr181 router reports, written through the store; seconds taken."""
    started = time.monotonic()
    asyncio.run(_populate(db, count))
    return round(time.monotonic() - started, 1)


async def _populate(db: Path, count: int) -> None:
    from acsd.provisioning.profiles import load_profiles
    from acsd.provisioning.status import extract_status, fetch_names
    from acsd.sim.runner import Simulation
    from acsd.store import open_store
    from acsd.store.base import CpeIdentity, SessionResult

    cpe = Simulation("http://127.0.0.1:9/", ["tplink-tr181"], 1, serial_prefix="IDLE").routers[0]
    profile = load_profiles().get("tplink-tr181")
    params: dict = {}
    for name in [*fetch_names(profile), "Device.DeviceInfo.", "Device.ManagementServer."]:
        with contextlib.suppress(Exception):  # names this tree lacks (9005 in a session)
            params.update({p.name: [p.value, p.type] for p in cpe.tree.get_values([name])})
    status = extract_status(profile, {k: v[0] for k, v in params.items()})
    store = open_store(f"sqlite:///{db}")
    await store.open()
    now = time.time()
    try:
        for first in range(1, count + 1, 2000):
            batch = range(first, min(count, first + 1999) + 1)
            await asyncio.gather(*(store.save_session(SessionResult(
                identity=CpeIdentity(oui="50C7BF", product_class="EX220",
                                     serial_number=f"IDLE{n:06d}", manufacturer="TP-Link"),
                at=now - 60, params=params, reset_params=True, status=status,
                profile="tplink-tr181", periodic_interval=900,
            )) for n in batch))  # fmt: skip
    finally:
        await store.close()


# -- scenarios ----------------------------------------------------------------------------------


def steady(args: argparse.Namespace, workdir: Path) -> dict:
    """Throughput with ``concurrency`` sessions in flight, then latency at a fixed rate.
    The baseline runs before and after acsd and counts with their mean: on a shared
    (virtual) machine the CPU's speed drifts by tens of percent from minute to minute."""

    def baseline() -> float:
        with baseline_server() as (url, _pid):
            run = loadgen(url, args.routers, duration=args.duration / 2,
                          concurrency=args.concurrency)  # fmt: skip
        return run["exchanges_per_s"]

    before = baseline()
    db = workdir / "bench.db"
    shutil.copy(args.seed_db, db)
    with acsd_daemon(workdir, db) as (url, _api, pid, _cfg):
        marks: dict[str, float] = {}

        def registered() -> None:
            marks["rss"], marks["cpu"] = proc_stats(pid)

        def measured() -> None:
            marks["rss_end"], marks["cpu_end"] = proc_stats(pid)

        def paced_done() -> None:
            marks["cpu_paced"] = proc_stats(pid)[1]

        # Then the same routers Inform on a schedule, at the target rate or, when acsd does
        # not reach it, at 80 % of what it reached: the latency a router sees at that load;
        # and at 40 %, where acsd has room to spare: its latency when it is not overloaded.
        run = loadgen(url, args.routers, register=True, settle=args.settle, duration=args.duration,
                      concurrency=args.concurrency, paced_fraction=0.8, paced_max=TARGET_RATE,
                      light_fraction=LIGHT_FRACTION, paced_duration=args.duration,
                      on={"registered": registered, "measured": measured,
                          "paced": paced_done})  # fmt: skip
        if "paced" not in run or "light" not in run:
            # the closed loop completed no session: there is no rate to pace at
            _show_daemon_warnings(workdir / "daemon.log")
            raise RuntimeError(
                f"steady: no session completed in the closed loop ({run.get('errors', 0)} "
                "errors): see the daemon's warnings above"
            )
        rss, cpu1 = marks["rss_end"], marks["cpu_end"]
        paced, light = run["paced"], run["light"]
        rate = paced["rate"]
        # The share of the core the paced phase took: near 1.0, the machine had slowed
        # since the closed loop measured the rate, and the latency is that of an overload.
        paced_cpu = (marks["cpu_paced"] - cpu1) / paced["seconds"]
        light_cpu_s = proc_stats(pid)[1] - marks["cpu_paced"]
        light_cpu = light_cpu_s / light["seconds"]
    # A session costs the daemon more CPU at a paced rate than back to back in the closed
    # loop (fewer sessions per commit and per turn of the loop, a core that idles between
    # them): the closed loop's rate overstates what the daemon carries at an even pace.
    per_session = {
        "closed": _ms_per(cpu1 - marks["cpu"], run["sessions"]),
        "paced": _ms_per(marks["cpu_paced"] - cpu1, paced["sessions"]),
        "light": _ms_per(light_cpu_s, light["sessions"]),
    }
    if run["errors"] or paced["errors"] or light["errors"] or run.get("register_failed"):
        _show_daemon_warnings(workdir / "daemon.log")
    after = baseline()
    base = (before + after) / 2
    ratio = run["exchanges_per_s"] / base if base else 0
    return {
        "routers": args.routers,
        "registered_idle": args.idle,
        "sessions_per_s": run["sessions_per_s"],
        "exchanges_per_s": run["exchanges_per_s"],
        "baseline_exchanges_per_s": round(base, 1),
        "baseline_before_after": [before, after],
        "ratio": round(ratio, 3),
        "p99_ms_saturated": run["p99_ms"],
        "paced_sessions_per_s": rate,
        "p50_ms": paced["p50_ms"],
        "p95_ms": paced["p95_ms"],
        "p99_ms": paced["p99_ms"],
        "paced_daemon_cpu": round(paced_cpu, 2),
        "light": {
            "sessions_per_s": light["rate"],
            "p50_ms": light["p50_ms"],
            "p99_ms": light["p99_ms"],
            "daemon_cpu": round(light_cpu, 2),
        },
        # sessions the schedule called for while every router was in one: the run had too
        # few routers for the latency it measured (a larger --routers fixes it)
        "paced_skipped": paced.get("skipped", 0) + light.get("skipped", 0),
        "errors": run["errors"] + run.get("register_failed", 0) + paced["errors"] + light["errors"],
        # where they were: a 503 is the daemon refusing under load (a busy machine), the
        # rest sessions that failed
        "error_kinds": {
            "register_failed": run.get("register_failed", 0),
            "register_failures": run.get("register_failures", {}),
            "closed_loop": run["errors"],
            "closed_loop_503": run.get("http_503", 0),
            "closed_loop_failures": run.get("failures", {}),
            "paced": paced["errors"],
            "paced_failures": paced.get("failures", {}),
            "light": light["errors"],
            "light_failures": light.get("failures", {}),
        },
        "cpu_ms_per_session": per_session,
        "daemon_rss_mb": round(rss, 1),
        # the CPU mark is taken before the settle: its second counts too
        "daemon_cpu_s_per_s": round((cpu1 - marks["cpu"]) / (run["seconds"] + args.settle), 2),
        "concurrency": args.concurrency,
    }


def _ms_per(cpu_s: float, sessions: int) -> float | None:
    """CPU ms per session (None: no session measured)."""
    return round(1000 * cpu_s / sessions, 3) if sessions else None


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its children (a supervisor and its workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(c) for c in children.read_text().split()] if children.exists() else []
    return sum(proc_stats(p)[1] for p in [pid, *kids])


class CpuMarks:
    """The CPU a daemon (all its processes) spent between two progress words."""

    def __init__(self, pid: int) -> None:
        self.pid, self.used, self._at = pid, 0.0, 0.0

    def start(self) -> None:
        self._at = tree_cpu_s(self.pid)

    def stop(self) -> None:
        self.used = tree_cpu_s(self.pid) - self._at


#: routers each run of the scaling scenario registers and drives
SCALING_ROUTERS = 2000
#: each of a full run's four runs measures this share of ``--duration``: its figure is a
#: ratio of runs side by side, which half the time measures as well, and at full length
#: it took make bench (which must end within 10 minutes) to 9-10 minutes at a slow hour
SCALING_SHARE = 0.5


def scaling(args: argparse.Namespace, workdir: Path) -> dict:
    """``workers = 1`` against ``workers = N`` (N: the CPUs allowed), closed loop, nothing
    pinned: with N cores the workers share them with the load generator, so the speed-up
    is what the cores left over give, and the CPU per session says whether running more
    workers costs more (the one SQLite database, its write lock) per session."""
    cpus = len(_allowed_cpus())
    if cpus < 2:
        return {"workers": 1, "note": "one CPU allowed: nothing to scale onto"}
    rounds = 1 if args.quick else 2
    duration = args.duration if args.quick else args.duration * SCALING_SHARE
    # Enough routers for the closed loop's sessions in flight; each run registers its own
    # (a BOOTSTRAP each, on cores the generator shares), which with all of steady's made
    # this scenario five of make bench's twelve minutes.
    routers = min(args.routers, SCALING_ROUTERS)
    runs: dict[int, list[tuple[float, float]]] = {1: [], cpus: []}
    for round_ in range(rounds):
        for workers in (1, cpus) if round_ % 2 == 0 else (cpus, 1):
            work = workdir / f"w{workers}-{round_}"
            work.mkdir()
            with acsd_daemon(work, workers=workers, pin=False) as (url, _api, pid, _cfg):
                marks = CpuMarks(pid)
                run = loadgen(url, routers, register=True, settle=args.settle, pin=False,
                              duration=duration, concurrency=args.concurrency * cpus,
                              on={"registered": marks.start, "measured": marks.stop})  # fmt: skip
                if run["errors"] or not run["sessions"]:
                    raise RuntimeError(f"workers = {workers}: {run['errors']} errors")
                cpu_ms = 1000 * marks.used / run["sessions"]
                runs[workers].append((run["sessions_per_s"], cpu_ms))

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 3)

    rate = {w: mean([r for r, _ in runs[w]]) for w in runs}
    cpu = {w: mean([c for _, c in runs[w]]) for w in runs}
    return {
        "workers": cpus,
        "sessions_per_s": {str(w): rate[w] for w in runs},
        "speedup": round(rate[cpus] / rate[1], 2) if rate[1] else 0,
        "cpu_ms_per_session": {str(w): cpu[w] for w in runs},
        "rounds": rounds,
        "seconds_per_run": duration,
    }


def boot_storm(args: argparse.Namespace, workdir: Path) -> dict:
    """Every router BOOTSTRAPs at once, each with wifi+DHCP to apply. acsd runs with its
    default session limit, so part of the storm is told 503 + Retry-After and comes back."""
    with acsd_daemon(workdir) as (url, _api, _pid, config):
        body = {
            "wifi": {"enabled": True, "ssid": "Bench", "password": "benchmark1"},
            "dhcp": {"enable": True, "ipPoolStart": "192.168.0.100", "ipPoolEnd": "192.168.0.199",
                     "leaseTime": 60},
        }  # fmt: skip
        asyncio.run(_apply_many(config, args.storm, body))
        result = loadgen(url, args.storm, register=True, concurrency=args.storm_concurrency)
        states = asyncio.run(_states(config))
    return {
        "routers": args.storm,
        "seconds_to_all_active": result["register_seconds"],
        "lost": args.storm - states.get("ACTIVE", 0),
        "http_503": result.get("register_503", 0),
        "failed": result.get("register_failed", 0),
        "failure_reasons": result.get("register_failures", {}),
        "retry_after_s": BENCH_RETRY_AFTER,
    }


async def _apply_many(config: Path, count: int, body: dict) -> None:
    from acsd.config import load_config
    from acsd.devices import apply_device
    from acsd.models import DeviceInput
    from acsd.store import open_store

    store = open_store(load_config(config).store.url)
    await store.open()
    try:
        await asyncio.gather(
            *(
                apply_device(store, DeviceInput(serialNumber=f"BENCH{n:06d}", **body))
                for n in range(1, count + 1)
            )
        )
    finally:
        await store.close()


async def _admin_token(db: Path) -> str:
    from acsd.api.auth import create_token
    from acsd.store import open_store

    store = open_store(f"sqlite:///{db}")
    await store.open()
    try:
        token, _ = await create_token(store, "ADMIN", name="benchmark")
        return token
    finally:
        await store.close()


async def _states(config: Path) -> dict[str, int]:
    from acsd.config import load_config
    from acsd.store import open_store

    store = open_store(load_config(config).store.url)
    await store.open()
    try:
        counts: dict[str, int] = {}
        for record in await store.list_devices(limit=10**7):
            counts[record.state] = counts.get(record.state, 0) + 1
        return counts
    finally:
        await store.close()


def api_under_load(args: argparse.Namespace, workdir: Path) -> dict:
    """p99 of GET /network/device/{id} and of a filtered list over every registered device
    while routers Inform (closed loop, as in steady)."""
    import http.client

    db = workdir / "bench.db"
    shutil.copy(args.seed_db, db)
    # Made in this process, as ``acsd token create`` makes it: an interpreter of its own
    # only for that would cost a second or more on a busy machine.
    token = asyncio.run(_admin_token(db))
    with acsd_daemon(workdir, db) as (url, api, _pid, _config):
        host, port = api.removeprefix("http://").split(":")
        headers = {"Authorization": f"Bearer {token}"}

        failed: Counter[str] = Counter()

        def call(path: str) -> float:
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            t0 = time.perf_counter()
            conn.request("GET", path, headers=headers)
            answer = conn.getresponse()
            answer.read()
            conn.close()
            if answer.status != 200:  # timed, but counted: a fast 500 is no success
                failed[str(answer.status)] += 1
            return time.perf_counter() - t0

        ids: list[str] = []
        gets: list[float] = []
        lists: list[float] = []
        stop = threading.Event()
        crashed: list[BaseException] = []
        rng = random.Random(8)

        def probe() -> None:
            try:
                # after the generator's settle, so that only the load is measured
                if stop.wait(args.settle):
                    return
                while not stop.is_set():
                    gets.append(call(f"/network/device/{rng.choice(ids)}"))
                    lists.append(call("/network/device?online=true&q=IDLE0001&limit=50"))
            except BaseException as exc:
                crashed.append(exc)

        thread = threading.Thread(target=probe)

        def registered() -> None:
            # ids from all over the table, not the first page's (which stays in the cache)
            total = args.idle + args.routers
            for offset in rng.sample(range(0, total, 100), min(20, max(1, total // 100))):
                page = f"/network/device?limit=100&offset={offset}"
                ids.extend(d["_id"] for d in _json_get(host, port, page, headers))
            thread.start()

        def measured() -> None:
            stop.set()

        try:
            loadgen(url, args.routers, register=True, settle=args.settle, duration=args.duration,
                    concurrency=args.concurrency,
                    on={"registered": registered, "measured": measured})  # fmt: skip
        finally:
            stop.set()
            if thread.is_alive():
                thread.join()
        if crashed:
            raise RuntimeError(f"the API probe failed: {crashed[0]!r}")
    return {
        "devices": args.idle + args.routers,
        "get_p99_ms": _p99(gets),
        "list_p99_ms": _p99(lists),
        "samples": len(gets),
        "errors": dict(failed),
    }


def memory(args: argparse.Namespace, workdir: Path) -> dict:
    """RSS of the daemon with no devices vs. with ``idle`` registered ones (both after the
    same warm-up), and what each open session adds."""
    warm = {"register": True, "duration": _warm_up(args), "concurrency": args.concurrency}
    empty = workdir / "empty"
    empty.mkdir()
    with acsd_daemon(empty) as (url, _api, pid, _cfg):
        loadgen(url, args.hold, **warm)
        rss_empty, _ = proc_stats(pid)
    full = workdir / "full"
    full.mkdir()
    shutil.copy(args.seed_db, full / "bench.db")
    with acsd_daemon(full, full / "bench.db") as (url, _api, pid, _cfg):
        # The same warm-up, then the same routers hold periodic sessions open.
        rss_full, rss_held, held = _hold_sessions(url, pid, args, **warm)
    # Not clamped at 0: a small negative figure says the difference is within the noise.
    per_device_mb = (rss_full - rss_empty) / args.idle
    return {
        "rss_mb_empty": round(rss_empty, 1),
        "rss_mb_with_idle": round(rss_full, 1),
        "idle_devices": args.idle,
        "rss_mb_per_100k_idle": round(per_device_mb * 100_000, 1),
        "open_sessions": held,
        "kb_per_session": round((rss_held - rss_full) * 1024 / max(1, held), 1),
        "baseline_kb_per_session": _baseline_kb_per_session(args),
    }


def _warm_up(args: argparse.Namespace) -> float:
    """Seconds of closed loop before the memory figures: WARM_UP, but no longer than the
    run's measurements (a smoke run of 1 s phases need not warm up for 2)."""
    return min(WARM_UP, args.duration)


#: connections the bare server holds at least for its KB per connection
BASELINE_HOLD = 200


def _baseline_kb_per_session(args: argparse.Namespace) -> float:
    """What one held connection costs the bare aiohttp server: the part of acsd's figure
    that is aiohttp's own connection and request state."""
    with baseline_server() as (url, pid):
        # At least BASELINE_HOLD: a quick run's 20 connections (~100 KB) can fit in pages
        # the server already has, and the figure then reads 0.
        before, during, held = _hold_sessions(
            url, pid, args, duration=_warm_up(args), concurrency=args.concurrency,
            hold=max(args.hold, BASELINE_HOLD),
        )  # fmt: skip
    return round((during - before) * 1024 / max(1, held), 1)


def _hold_sessions(
    url: str, pid: int, args: argparse.Namespace, hold: int | None = None, **warm: object
) -> tuple[float, float, int]:
    """RSS MiB of ``pid`` before and while the generator holds ``hold`` (else
    ``args.hold``) sessions open (after the ``warm`` phases, loadgen options), and how
    many it held."""
    rss: dict[str, float] = {}
    hold = hold or args.hold

    def mark(name: str):
        return lambda: rss.__setitem__(name, proc_stats(pid)[0])

    run = loadgen(url, hold, **warm, hold=hold,
                  on={"holding": mark("before"), "held": mark("held")})  # fmt: skip
    return rss["before"], rss["held"], run["held"]


def _json_get(host: str, port: str, path: str, headers: dict) -> list:
    import http.client

    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", path, headers=headers)
    data = json.loads(conn.getresponse().read())
    conn.close()
    return data["items"]


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return round(values[min(len(values) - 1, int(0.99 * len(values)))] * 1000, 2)


def machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    libs = {}
    for name in ("aiohttp", "lxml", "pydantic", "aiosqlite", "structlog"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            libs[name] = metadata.version(name)
    try:
        import uvloop

        loop = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop = "asyncio"
    commit = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"],
                            capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    from acsd import __version__

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "allowed_cpus": _allowed_cpus(),
        "pinned": pinning(),
        "python": platform.python_version(),
        "loop": loop,
        "acsd": __version__,
        "commit": commit or None,
        **libs,
    }


def table(results: dict) -> str:
    s, b, a, m = results["steady"], results["boot_storm"], results["api"], results["memory"]
    rows = [
        (f"steady: sessions/s ({s['concurrency']} in flight)", s["sessions_per_s"], ">= 1200"),
        ("steady: exchanges/s", s["exchanges_per_s"], ""),
        ("baseline: exchanges/s (mean of {} before and {} after)".format(
            *s["baseline_before_after"]), s["baseline_exchanges_per_s"], ""),
        ("steady: ratio to baseline", s["ratio"], ">= 0.5"),
        (f"steady: p50 / p95 ms at {s['paced_sessions_per_s']} sessions/s",
         f"{s['p50_ms']} / {s['p95_ms']}", ""),
        (f"steady: p99 ms at {s['paced_sessions_per_s']} sessions/s", s["p99_ms"], "<= 25"),
        ("steady: daemon's share of its core at that rate", s["paced_daemon_cpu"], ""),
        (f"steady: p50 / p99 ms at {s['light']['sessions_per_s']} sessions/s "
         f"(daemon {s['light']['daemon_cpu']} of its core)",
         f"{s['light']['p50_ms']} / {s['light']['p99_ms']}", ""),
        (f"steady: p99 ms at {s['concurrency']} in flight", s["p99_ms_saturated"], ""),
        ("steady: daemon CPU ms per session, closed loop / at {} / at {} sessions/s".format(
            s["paced_sessions_per_s"], s["light"]["sessions_per_s"]),
         " / ".join(str(s["cpu_ms_per_session"][k]) for k in ("closed", "paced", "light")), ""),
        ("steady: errors", s["errors"], "0"),
        ("boot storm: routers", b["routers"], ""),
        ("boot storm: seconds to all ACTIVE", b["seconds_to_all_active"], "<= 60 (10k)"),
        ("boot storm: lost / 503 answers", f'{b["lost"]} / {b["http_503"]}', "0 lost"),
        (f"API p99 ms, GET one / list ({a['devices']} devices)",
         f'{a["get_p99_ms"]} / {a["list_p99_ms"]}', ""),
        ("memory: MB per 100k idle devices", m["rss_mb_per_100k_idle"], "<= 30"),
        ("memory: KB per open session", m["kb_per_session"], "<= 20"),
        ("memory: KB per open connection, bare aiohttp", m["baseline_kb_per_session"], ""),
    ]  # fmt: skip
    if s.get("paced_skipped"):
        rows.append(("steady: paced sessions not started (every router busy)",
                     s["paced_skipped"], "0"))  # fmt: skip
    w = results.get("scaling", {})
    if "speedup" in w:
        n = w["workers"]
        rows += [
            (f"workers 1 / {n}: sessions/s (unpinned, with the generator)",
             f'{w["sessions_per_s"]["1"]} / {w["sessions_per_s"][str(n)]}', ""),
            (f"workers {n}: speed-up over 1", w["speedup"], "near-linear"),
            (f"workers 1 / {n}: daemon CPU ms per session",
             f'{w["cpu_ms_per_session"]["1"]} / {w["cpu_ms_per_session"][str(n)]}', ""),
        ]  # fmt: skip
    lines = ["| figure | acsd | target |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {target} |" for name, value, target in rows]
    return "\n".join(lines)


#: sessions/s of a million routers at a 15-minute interval (issue #8)
TARGET_RATE = 1200.0
#: the steady scenario's second paced rate, as a share of the closed loop's sessions/s
LIGHT_FRACTION = 0.4
#: the daemons' cwmp.retry_after: a 503 tells a router to come back in 2-7 s
BENCH_RETRY_AFTER = 5
#: seconds between registering the routers and measuring (--settle)
SETTLE = 1.0
#: seconds of closed loop that warm a server up before its memory is measured
WARM_UP = 2.0


def _stop_on_sigterm() -> None:
    """SIGTERM (a CI timeout, ``kill``) unwinds like Ctrl-C: the daemons are stopped and the
    temporary databases (GBs in a full run) removed."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def _write_atomically(path: Path, text: str) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(text)
    os.replace(part, path)


def seconds_arg(text: str) -> float:
    """An argparse type: a finite, non-negative number of seconds (a negative settle would
    measure from before the routers registered, and divide the CPU by nothing)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"seconds must be finite and not negative: {text!r}")
    return value


def duration_arg(text: str) -> float:
    """An argparse type: seconds to measure for, more than none (a run of no time has no
    rate, and the generator's figures would divide by it)."""
    value = seconds_arg(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"a duration must be more than 0 seconds: {text!r}")
    return value


def count_arg(text: str) -> int:
    """An argparse type: a whole number of at least 1 (routers, rounds, sessions held)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds per scenario")
    parser.add_argument("--routers", type=count_arg, help="routers that Inform (default 10000)")
    parser.add_argument("--idle", type=count_arg, help="registered idle devices (default 100000)")
    parser.add_argument("--storm", type=count_arg, help="routers in the boot storm (default 10000)")
    parser.add_argument("--hold", type=count_arg, help="open sessions to measure (default 1000)")
    parser.add_argument("--duration", type=duration_arg, help="seconds each scenario measures")
    parser.add_argument("--concurrency", type=count_arg, default=64)
    parser.add_argument("--storm-concurrency", type=count_arg, default=3000)
    parser.add_argument(
        "--settle",
        type=seconds_arg,
        default=SETTLE,
        help=f"seconds between registering and measuring (default {SETTLE})",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    _stop_on_sigterm()
    args.routers = args.routers or (300 if args.quick else 10000)
    args.idle = args.idle or (2000 if args.quick else 100000)
    args.storm = args.storm or (300 if args.quick else 10000)
    args.hold = args.hold or (200 if args.quick else 1000)
    args.duration = args.duration or (3.0 if args.quick else 20.0)

    results: dict = {"machine": machine(), "quick": args.quick}
    if results["machine"]["pinned"]["server"] is None:
        warning = ("warning: server and generator are not pinned (taskset missing or fewer "
                   "than two CPUs allowed): figures do not compare with pinned runs")  # fmt: skip
        print(warning, file=sys.stderr)
    # TMPDIR decides where: a full run keeps several copies of a ~1 GB database.
    with tempfile.TemporaryDirectory(prefix="acsd-bench-") as tmp:
        args.seed_db = Path(tmp) / "seed.db"
        seconds = populate(args.seed_db, args.idle)
        print(f"seed: {args.idle} idle devices in {seconds}s", file=sys.stderr)
        for name, scenario in (("steady", steady), ("boot_storm", boot_storm),
                               ("api", api_under_load), ("memory", memory),
                               ("scaling", scaling)):  # fmt: skip
            work = Path(tmp) / name
            work.mkdir()
            started = time.monotonic()
            results[name] = scenario(args, work)
            print(f"{name}: done in {time.monotonic() - started:.1f}s", file=sys.stderr)
    print(table(results))
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2)
    # A quick run's figures must not pass for a full run's.
    suffix = "-quick" if args.quick else ""
    _write_atomically(args.out / f"latest{suffix}.json", text)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    _write_atomically(args.out / f"{stamp}{suffix}.json", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
