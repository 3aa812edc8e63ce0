"""How long the store takes to answer GET /network/device/{id}'s look-up of one device.

Stores two routers, one with a parameter tree of TREE leaves and one with none, then
looks each up by id ROUNDS times (``Store.get_device``, as the API's GET, PATCH and DELETE
do), and the large one's Connection Request target (the record and the username its router
reported, as a PATCH that pokes the router and the deferred request look it up); prints
the median wall time and the longest stall of the event loop (what every other request
and CWMP session waits meanwhile), and the ratio of the large tree to the
empty one (1.0: the tree costs the look-up nothing). Prints figures, asserts nothing.
Run it against another version with ``PYTHONPATH=<that tree>/src``.

    python benchmarks/device_lookup.py                       # 100k leaves, SQLite
    python benchmarks/device_lookup.py --tree 20000 --url postgresql://acsd@/acsd
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from acsd.cwmp import connreq
from acsd.store import CpeIdentity, SessionResult, open_store
from acsd.store.base import Store


def _tree(count: int) -> dict[str, list[str]]:
    tree = {
        f"Device.Hosts.Host.{n}.HostName": [f"host-{n}.example.net", "xsd:string"]
        for n in range(count)
    }
    tree["Device.ManagementServer.ConnectionRequestUsername"] = ["cpeadmin", "xsd:string"]
    return tree


async def _router(store: Store, serial: str, leaves: int) -> str:
    identity = CpeIdentity(oui="00D09E", product_class="Bench", serial_number=serial)
    result = SessionResult(
        identity=identity, at=1.0, params=_tree(leaves), reset_params=True,
        connection_request_url="http://192.0.2.1:7547/cr",
    )  # fmt: skip
    return await store.save_session(result)


class _LoopWatch:
    """The longest gap between ticks of a task that yields every millisecond."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    async def __aenter__(self) -> _LoopWatch:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0.005)
        self.longest = 0.0
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def _time(call: Callable[[], Awaitable[Any]], rounds: int) -> tuple[float, float]:
    """Median wall seconds of ``call`` and the longest loop stall over all rounds."""
    times = []
    async with _LoopWatch() as watch:
        for _ in range(rounds):
            started = time.perf_counter()
            await call()
            times.append(time.perf_counter() - started)
            await asyncio.sleep(0.002)  # let the watch tick between rounds
    return statistics.median(times), watch.longest


async def _cr_target(store: Store, device_id: str) -> Any:
    """The Connection Request target of a device as the daemon looks it up, in this version
    or an older one (which read the username from the stored tree: stored_target)."""
    record = await store.get_device(device_id)
    assert record is not None
    stored = getattr(connreq, "stored_target", None)
    if stored is not None:
        return await stored(record, store.device_values)
    return connreq.target_of(record)


async def main(url: str | None, tree: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="acsd-lookup-") as tmp:
        store = open_store(url or f"sqlite:///{Path(tmp) / 'lookup.db'}")
        await store.open()
        try:
            large = await _router(store, "LOOKUP-LARGE", tree)
            empty = await _router(store, "LOOKUP-EMPTY", 0)
            print(f"| look-up ({tree} leaves vs none) | wall, ms (median) | loop stall, ms (max) |")
            print("|---|---:|---:|")
            base, base_stall = await _time(lambda: store.get_device(empty), rounds)
            print(f"| get_device, no tree | {base * 1000:.2f} | {base_stall * 1000:.1f} |")
            wall, stall = await _time(lambda: store.get_device(large), rounds)
            print(f"| get_device, {tree} leaves | {wall * 1000:.2f} | {stall * 1000:.1f} |")
            values = getattr(store, "device_values", None)
            if values is not None:  # the one value a Connection Request needed
                path = ["Device.ManagementServer.ConnectionRequestUsername"]
                cr, cr_stall = await _time(lambda: values(large, path), rounds)
                print(f"| device_values, 1 path | {cr * 1000:.2f} | {cr_stall * 1000:.1f} |")
            # what an API write does to poke the router: the record, then its target
            target, target_stall = await _time(lambda: _cr_target(store, large), rounds)
            print(f"| CR target, {tree} leaves | {target * 1000:.2f} | {target_stall * 1000:.1f} |")
            print(f"\nratio, {tree} leaves / no tree: {wall / base:.1f}")
        finally:
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=int, default=100_000, help="leaves of the large tree")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--url", help="store.url (default: SQLite in a temporary directory)")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.tree, args.rounds))
