"""Load generator: many simulated routers on one event loop, against any CWMP endpoint.
Prints one JSON object with what it measured (and progress words on their own lines:
``registered``, ``measured``, ``paced``, ``holding``, ``held``, which the orchestrator
waits for).

Modes, in this order when combined:
  --register      every router BOOTSTRAPs once (the steady phase then finds known devices)
  --duration S    closed loop: ``--concurrency`` sessions always in flight, as fast as the
                  server goes (throughput)
  --rate R        open loop: a new session every 1/R s whatever the server does, as
                  periodic Informs arrive in the field (latency at a given load);
                  --paced-fraction F instead: F x the closed loop's sessions/s (at most
                  --paced-max). The same process, so the same simulated routers: their
                  sessions are periodic ones (a new process's routers would BOOTSTRAP)
  --light-fraction F  then the same again at F x the closed loop's sessions/s (a load
                  the server carries with room to spare: its latency when not overloaded)
  --hold N        open N sessions (Inform answered) and keep them open until stdin closes

Run by ``benchmarks/bench.py`` in its own process (pinned to its own core), so the
figures measure the server, not the generator.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import sys
import time
from collections import Counter

from acsd.sim.runner import Simulation
from acsd.sim.session import Session, run_session

#: the longest Retry-After the generator waits (a router told to come back later than this
#: would not finish within any benchmark run)
MAX_RETRY_WAIT = 120.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _figures(latencies: list[float], elapsed: float, exchanges: int) -> dict:
    return {
        "seconds": round(elapsed, 3),
        "sessions": len(latencies),
        "sessions_per_s": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "exchanges_per_s": round(exchanges / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(_pct(latencies, 0.50) * 1000, 2),
        "p95_ms": round(_pct(latencies, 0.95) * 1000, 2),
        "p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
    }


async def register(routers: list, acs: str, concurrency: int) -> dict:
    sem = asyncio.Semaphore(concurrency)
    retried_503 = 0
    reasons: Counter[str] = Counter()

    async def boot(cpe) -> bool:
        nonlocal retried_503
        for _ in range(20):
            async with sem:
                result = await run_session(cpe, acs, timeout=60)
            if result.ok or result.retry_after is None:
                if not result.ok:
                    reasons[_reason_kind(result.reason)] += 1
                return result.ok
            # 503 + Retry-After: a real CPE waits as told and comes back (the cap only
            # guards the run against an absurd value).
            retried_503 += 1
            await asyncio.sleep(min(result.retry_after, MAX_RETRY_WAIT))
        return False

    started = time.perf_counter()
    booted = await asyncio.gather(*(boot(cpe) for cpe in routers))
    return {
        "register_seconds": round(time.perf_counter() - started, 3),
        "register_failed": booted.count(False),
        "register_503": retried_503,
        "register_failures": dict(reasons.most_common(10)),
    }


def _reason_kind(reason: str) -> str:
    # "timeout after 60 s on message 3" and the like: group by what happened, not by detail
    return re.sub(r"[0-9]+(\.[0-9]+)?", "N", reason)[:120]


def _idle_router(routers: list, start: int) -> tuple[object | None, int]:
    """The next router (from ``start``) not in a session, or None, and where to look next
    time: a real router never opens a second session while its first runs (acsd would end
    the first one, as after a reboot, and its next message would be refused)."""
    for step in range(len(routers)):
        cpe = routers[(start + step) % len(routers)]
        if not cpe.in_session:
            return cpe, start + step + 1
    return None, start


async def closed_loop(routers: list, acs: str, duration: float, concurrency: int) -> dict:
    latencies: list[float] = []
    exchanges = errors = http_503 = 0
    reasons: Counter[str] = Counter()
    deadline = time.perf_counter() + duration
    next_router = 0

    async def worker() -> None:
        nonlocal exchanges, errors, http_503, next_router
        while time.perf_counter() < deadline:
            cpe, next_router = _idle_router(routers, next_router)
            assert cpe is not None  # no more workers than routers
            t0 = time.perf_counter()
            result = await run_session(cpe, acs, trigger=["2 PERIODIC"], timeout=30)
            exchanges += result.messages
            if result.ok:  # a failed session is an error, not a fast session
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1
                http_503 += result.retry_after is not None
                reasons[_reason_kind(result.reason)] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(routers)))))
    out = _figures(latencies, time.perf_counter() - started, exchanges)
    return {
        **out,
        "errors": errors,
        "http_503": http_503,
        "failures": dict(reasons.most_common(10)),
    }


async def open_loop(routers: list, acs: str, duration: float, rate: float) -> dict:
    """Sessions started on a fixed schedule; latency includes any queueing at the server."""
    latencies: list[float] = []
    exchanges = errors = 0
    reasons: Counter[str] = Counter()
    tasks: set[asyncio.Task] = set()

    async def one(cpe) -> None:
        nonlocal exchanges, errors
        t0 = time.perf_counter()
        result = await run_session(cpe, acs, trigger=["2 PERIODIC"], timeout=30)
        exchanges += result.messages
        if result.ok:
            latencies.append(time.perf_counter() - t0)
        else:
            errors += 1
            reasons[_reason_kind(result.reason)] += 1

    started = time.perf_counter()
    n = pick = skipped = 0
    while (now := time.perf_counter()) - started < duration:
        due = int((now - started) * rate) + 1
        while n < due:
            cpe, pick = _idle_router(routers, pick)
            n += 1
            if cpe is None:
                # Every router is in a session: an overload the run's routers cannot
                # carry. Counted, not sent (a second session of one router is not load a
                # real network makes).
                skipped += 1
                continue
            task = asyncio.create_task(one(cpe))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
    await asyncio.gather(*tasks)
    out = _figures(latencies, time.perf_counter() - started, exchanges)
    return {
        **out,
        "errors": errors,
        "rate": rate,
        "skipped": skipped,
        "failures": dict(reasons.most_common(10)),
    }


async def hold(routers: list, acs: str, count: int) -> dict:
    sessions = [Session(cpe, acs, timeout=60) for cpe in routers[:count]]
    sem = asyncio.Semaphore(256)

    async def start(session: Session) -> bool:
        async with sem:
            return await session.inform_only(["2 PERIODIC"])

    print("holding", flush=True)
    opened = await asyncio.gather(*(start(s) for s in sessions))
    print("held", flush=True)
    # The orchestrator measures the server now, then closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await asyncio.gather(*(s.close() for s in sessions))
    return {"held": opened.count(True), "hold_failed": opened.count(False)}


async def main(args: argparse.Namespace) -> dict:
    sim = Simulation(args.acs, args.profile.split(","), args.routers, serial_prefix="BENCH")
    routers = sim.routers
    # Thousands of routers' trees are millions of long-lived objects: left in the
    # collector's view, every full collection would stall all sessions in flight for
    # ~0.1 s and show up as the server's latency.
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)
    out: dict = {"routers": len(routers), "concurrency": args.concurrency}
    if args.register:
        out.update(await register(routers, args.acs, args.concurrency))
        # The orchestrator measures the server between the phases (e.g. RSS when idle).
        print("registered", flush=True)
        await asyncio.sleep(args.settle)
    if args.duration > 0:
        out.update(await closed_loop(routers, args.acs, args.duration, args.concurrency))
        print("measured", flush=True)
    rate = args.rate
    if args.paced_fraction > 0 and out.get("sessions_per_s"):
        rate = round(min(args.paced_max, args.paced_fraction * out["sessions_per_s"]), 1)
    if rate > 0:
        out["paced"] = await open_loop(routers, args.acs, args.paced_duration, rate)
        print("paced", flush=True)
    if args.light_fraction > 0 and out.get("sessions_per_s"):
        light = round(args.light_fraction * out["sessions_per_s"], 1)
        out["light"] = await open_loop(routers, args.acs, args.paced_duration, light)
    if args.hold > 0:
        out.update(await hold(routers, args.acs, args.hold))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--acs", required=True)
    parser.add_argument("--routers", type=int, default=1000)
    parser.add_argument("--profile", default="tplink-tr181")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=0.0, help="closed-loop seconds")
    parser.add_argument("--rate", type=float, default=0.0, help="open-loop sessions/s")
    parser.add_argument("--paced-duration", type=float, default=10.0)
    parser.add_argument("--paced-fraction", type=float, default=0.0)
    parser.add_argument("--paced-max", type=float, default=float("inf"))
    parser.add_argument("--light-fraction", type=float, default=0.0)
    parser.add_argument("--hold", type=int, default=0, help="open sessions to hold")
    parser.add_argument("--register", action="store_true", help="BOOTSTRAP every router first")
    parser.add_argument("--settle", type=float, default=0.0, help="pause after registering")
    args = parser.parse_args()
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        print(json.dumps(runner.run(main(args))))
