"""How long the store's writer takes to merge a session's values into a stored tree.

Each case stores a tree of TREE leaves, then commits one session result of VALUES values
(half of them new leaves, half changed ones) and prints the wall time of that commit: the
time the one writer, and every session queued behind it, waits. Prints figures, asserts
nothing. Run it against another version with ``PYTHONPATH=<that tree>/src``.

    python benchmarks/params_merge.py                 # the default cases
    python benchmarks/params_merge.py --case 100000:50000 --case 5000:2000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from acsd.store import CpeIdentity, SessionResult, SqliteStore

DEFAULT_CASES = ("2000:45", "5000:2000", "20000:150", "20000:250", "100000:2000", "100000:50000")


def _leaves(count: int, start: int, value: str) -> dict[str, list[str]]:
    return {
        f"Device.Hosts.Host.{n}.HostName": [f"{value}{n}", "xsd:string"]
        for n in range(start, start + count)
    }


def _result(serial: str, at: float, params: dict[str, list[str]], reset: bool) -> SessionResult:
    identity = CpeIdentity(oui="00D09E", product_class="Bench", serial_number=serial)
    return SessionResult(identity=identity, at=at, params=params, reset_params=reset)


async def _case(store: SqliteStore, serial: str, tree: int, values: int, rounds: int) -> float:
    await store.save_session(_result(serial, 1.0, _leaves(tree, 0, "old"), True))
    times = []
    for round_ in range(rounds):
        patch = _leaves(values, tree - values // 2, f"new{round_}-")
        started = time.perf_counter()
        await store.save_session(_result(serial, 2.0 + round_, patch, False))
        times.append(time.perf_counter() - started)
    stored = await store.get_device(serial)
    assert stored is not None
    assert len(await store.device_params(stored.id)) == tree + values - values // 2
    return statistics.median(times)


async def main(cases: list[tuple[int, int]], rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="acsd-merge-") as tmp:
        store = SqliteStore(Path(tmp) / "merge.db")
        await store.open()
        try:
            print("| stored leaves | values merged | commit, ms (median) |")
            print("|---:|---:|---:|")
            for n, (tree, values) in enumerate(cases):
                seconds = await _case(store, f"MERGE{n}", tree, values, rounds)
                print(f"| {tree} | {values} | {seconds * 1000:.1f} |", flush=True)
        finally:
            await store.close()


def _parse_case(text: str) -> tuple[int, int]:
    tree, _, values = text.partition(":")
    return int(tree), int(values)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", type=_parse_case, metavar="TREE:VALUES")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.case or [_parse_case(c) for c in DEFAULT_CASES], args.rounds))
