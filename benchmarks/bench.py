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
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned(core: int, cmd: list[str]) -> list[str]:
    # Two cores: server on one, load on the other; without taskset, run unpinned.
    if shutil.which("taskset") and (os.cpu_count() or 1) > core:
        return ["taskset", "-c", str(core), *cmd]
    return cmd


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


def loadgen(
    acs: str,
    routers: int,
    duration: float,
    concurrency: int,
    register: bool,
    on_registered=None,
) -> dict:
    """Run the load generator on core 1; ``on_registered`` is called between its
    registration phase and its timed phase (the same routers, the same process)."""
    cmd = [
        PY, str(HERE / "loadgen.py"), "--acs", acs, "--routers", str(routers),
        "--duration", str(duration), "--concurrency", str(concurrency),
    ]  # fmt: skip
    if register:
        cmd += ["--register", "--settle", "1.0" if on_registered else "0"]
    proc = subprocess.Popen(pinned(1, cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout is not None
    last = ""
    for line in proc.stdout:
        if line.strip() == "registered":
            if on_registered:
                on_registered()
            continue
        last = line.strip() or last
    if proc.wait(timeout=1200) != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr.read()[-2000:]}")
    return json.loads(last)


@contextlib.contextmanager
def baseline_server():
    port = free_port()
    proc = subprocess.Popen(
        pinned(0, [PY, str(HERE / "baseline_server.py"), "--port", str(port)]),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    try:
        yield f"http://127.0.0.1:{port}/", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def acsd_daemon(workdir: Path, extra: str = ""):
    cwmp, api = free_port(), free_port()
    config = workdir / "bench.toml"
    config.write_text(
        f'[cwmp]\nlisten = "127.0.0.1:{cwmp}"\nmax_sessions = 20000\n'
        f'[api]\nlisten = "127.0.0.1:{api}"\n'
        f'[store]\nurl = "sqlite:///{workdir / "bench.db"}"\n'
        '[log]\nlevel = "warning"\nformat = "json"\n' + extra
    )
    log = open(workdir / "daemon.log", "w")  # noqa: SIM115 (lives as long as the daemon)
    proc = subprocess.Popen(
        pinned(0, [PY, "-m", "acsd", "serve", "--config", str(config)]),
        stderr=log,
        cwd=workdir,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", api), 0.2):
            break
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{cwmp}/", f"http://127.0.0.1:{api}", proc.pid, config
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def steady(args: argparse.Namespace, workdir: Path) -> dict:
    with baseline_server() as (url, _pid):
        base = loadgen(url, args.routers, args.duration, args.concurrency, register=False)
    with acsd_daemon(workdir) as (url, _api, pid, _cfg):
        idle_rss, _ = proc_stats(pid)
        marks: dict[str, float] = {}

        def registered() -> None:
            marks["rss"], marks["cpu"] = proc_stats(pid)

        run = loadgen(url, args.routers, args.duration, args.concurrency, True, registered)
        rss, cpu1 = proc_stats(pid)
    rss_registered, cpu0 = marks["rss"], marks["cpu"]
    ratio = run["exchanges_per_s"] / base["exchanges_per_s"] if base["exchanges_per_s"] else 0
    return {
        "routers": args.routers,
        "sessions_per_s": run["sessions_per_s"],
        "exchanges_per_s": run["exchanges_per_s"],
        "baseline_exchanges_per_s": base["exchanges_per_s"],
        "ratio": round(ratio, 3),
        "p50_ms": run["p50_ms"],
        "p95_ms": run["p95_ms"],
        "p99_ms": run["p99_ms"],
        "errors": run["errors"] + run.get("register_failed", 0),
        "daemon_rss_mb": round(rss, 1),
        "daemon_cpu_s_per_s": round((cpu1 - cpu0) / run["seconds"], 2),
        "_memory": {"idle_rss_mb": idle_rss, "registered_rss_mb": rss_registered},
    }


def boot_storm(args: argparse.Namespace, workdir: Path) -> dict:
    """Every router BOOTSTRAPs at once, each with wifi+DHCP to apply."""
    with acsd_daemon(workdir) as (url, _api, _pid, config):
        body = {
            "wifi": {"enabled": True, "ssid": "Bench", "password": "benchmark1"},
            "dhcp": {"enable": True, "ipPoolStart": "192.168.0.100", "ipPoolEnd": "192.168.0.199",
                     "leaseTime": 60},
        }  # fmt: skip
        asyncio.run(_apply_many(config, args.storm, body))
        result = loadgen(url, args.storm, 0.0, args.storm_concurrency, register=True)
        states = asyncio.run(_states(config))
    return {
        "routers": args.storm,
        "seconds_to_all_active": result["register_seconds"],
        "lost": args.storm - states.get("ACTIVE", 0),
        "http_503": result.get("register_failed", 0),
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
    """p99 of GET /network/device/{id} and of a filtered list while routers Inform."""
    import http.client

    with acsd_daemon(workdir) as (url, api, _pid, config):
        token = subprocess.run(
            [PY, "-m", "acsd", "token", "create", "--role", "ADMIN", "--config", str(config)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        host, port = api.removeprefix("http://").split(":")
        headers = {"Authorization": f"Bearer {token}"}

        def call(path: str) -> float:
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            t0 = time.perf_counter()
            conn.request("GET", path, headers=headers)
            conn.getresponse().read()
            conn.close()
            return time.perf_counter() - t0

        ids: list[str] = []
        gets: list[float] = []
        lists: list[float] = []
        stop = threading.Event()

        def probe() -> None:
            n = 0
            while not stop.is_set():
                gets.append(call(f"/network/device/{ids[n % len(ids)]}"))
                lists.append(call("/network/device?online=true&q=BENCH00&limit=50"))
                n += 1

        thread = threading.Thread(target=probe)

        def registered() -> None:
            ids.extend(
                d["_id"] for d in _json_get(host, port, "/network/device?limit=100", headers)
            )
            thread.start()

        loadgen(url, args.routers, args.duration, args.concurrency, True, registered)
        stop.set()
        thread.join()
    return {"get_p99_ms": _p99(gets), "list_p99_ms": _p99(lists), "samples": len(gets)}


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
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), **libs}


def table(results: dict) -> str:
    s, b, a, m = results["steady"], results["boot_storm"], results["api"], results["memory"]
    rows = [
        ("steady: sessions/s", s["sessions_per_s"], ">= 1200"),
        ("steady: exchanges/s", s["exchanges_per_s"], ""),
        ("baseline: exchanges/s", s["baseline_exchanges_per_s"], ""),
        ("steady: ratio to baseline", s["ratio"], ">= 0.5"),
        ("steady: p50 / p95 ms", f"{s['p50_ms']} / {s['p95_ms']}", ""),
        ("steady: p99 ms", s["p99_ms"], "<= 25"),
        ("steady: errors", s["errors"], "0"),
        ("boot storm: routers", b["routers"], ""),
        ("boot storm: seconds to all ACTIVE", b["seconds_to_all_active"], "<= 60 (10k)"),
        ("boot storm: lost / 503", f'{b["lost"]} / {b["http_503"]}', "0 lost"),
        ("API p99 GET one / list ms", f'{a["get_p99_ms"]} / {a["list_p99_ms"]}', ""),
        ("memory: MB per 100k idle devices", m["rss_mb_per_100k_idle"], "<= 30"),
        ("memory: KB per open session", m["kb_per_session"], "<= 20"),
    ]  # fmt: skip
    lines = ["| figure | acsd | target |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {target} |" for name, value, target in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds per scenario")
    parser.add_argument("--routers", type=int)
    parser.add_argument("--storm", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--storm-concurrency", type=int, default=512)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.routers = args.routers or (300 if args.quick else 10000)
    args.storm = args.storm or (200 if args.quick else 10000)
    args.duration = args.duration or (3.0 if args.quick else 30.0)

    results: dict = {"machine": machine(), "quick": args.quick}
    with tempfile.TemporaryDirectory() as tmp:
        for name, scenario in (("steady", steady), ("boot_storm", boot_storm),
                               ("api", api_under_load)):  # fmt: skip
            work = Path(tmp) / name
            work.mkdir()
            started = time.monotonic()
            results[name] = scenario(args, work)
            print(f"{name}: done in {time.monotonic() - started:.1f}s", file=sys.stderr)
    memory = results["steady"].pop("_memory")
    per_device = (memory["registered_rss_mb"] - memory["idle_rss_mb"]) / max(1, args.routers)
    results["memory"] = {
        "rss_mb_per_100k_idle": round(per_device * 100_000, 1),
        "kb_per_session": None,
    }
    results["memory"]["kb_per_session"] = "not measured yet"
    print(table(results))
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2)
    (args.out / "latest.json").write_text(text)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (args.out / f"{stamp}.json").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
