"""Load generator: many simulated routers on one event loop, closed loop at a fixed
concurrency, against any CWMP endpoint. Prints one JSON object with what it measured.

Run by ``benchmarks/bench.py`` in its own process (pinned to its own core), so the
figures measure the server, not the generator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from acsd.sim.runner import Simulation
from acsd.sim.session import run_session


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def main(args: argparse.Namespace) -> dict:
    sim = Simulation(args.acs, args.profile.split(","), args.routers, serial_prefix="BENCH")
    routers = sim.routers
    out: dict = {"routers": len(routers), "concurrency": args.concurrency}

    if args.register:
        # Every router's BOOTSTRAP first: the steady phase then finds known devices.
        sem = asyncio.Semaphore(args.concurrency)

        async def boot(cpe) -> bool:
            async with sem:
                result = await run_session(cpe, args.acs, timeout=60)
                return result.ok

        started = time.perf_counter()
        booted = await asyncio.gather(*(boot(cpe) for cpe in routers))
        out["register_seconds"] = round(time.perf_counter() - started, 3)
        out["register_failed"] = booted.count(False)
        # The orchestrator measures the server between the phases (e.g. RSS when idle).
        print("registered", flush=True)
        await asyncio.sleep(args.settle)

    latencies: list[float] = []
    exchanges = 0
    errors = 0
    http_503 = 0
    deadline = time.perf_counter() + args.duration
    next_router = 0

    async def worker() -> None:
        nonlocal exchanges, errors, http_503, next_router
        while time.perf_counter() < deadline:
            cpe = routers[next_router % len(routers)]
            next_router += 1
            t0 = time.perf_counter()
            result = await run_session(cpe, args.acs, trigger=["2 PERIODIC"], timeout=30)
            latencies.append(time.perf_counter() - t0)
            exchanges += result.messages
            if not result.ok:
                errors += 1
                if result.retry_after is not None:
                    http_503 += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - started
    out.update(
        {
            "seconds": round(elapsed, 3),
            "sessions": len(latencies),
            "sessions_per_s": round(len(latencies) / elapsed, 1),
            "exchanges_per_s": round(exchanges / elapsed, 1),
            "p50_ms": round(_pct(latencies, 0.50) * 1000, 2),
            "p95_ms": round(_pct(latencies, 0.95) * 1000, 2),
            "p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
            "errors": errors,
            "http_503": http_503,
        }
    )
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--acs", required=True)
    parser.add_argument("--routers", type=int, default=1000)
    parser.add_argument("--profile", default="tplink-tr181")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--register", action="store_true", help="BOOTSTRAP every router first")
    parser.add_argument("--settle", type=float, default=0.0, help="pause after registering")
    args = parser.parse_args()
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(main(args))))
