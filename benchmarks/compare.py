"""CPU per steady session of the working tree against another commit, on this machine.

One run of one version says little on a shared machine whose speed drifts by tens of percent
from minute to minute. This runs the two daemons in alternation (A B, B A, A B ...) on the
same load, each on core 0 with the load generator on core 1, and prints the CPU seconds the
daemon spent per session in each run and the ratio of the means (below 1: the working tree
is cheaper). The two runs of a round are next to each other in time, so compare rounds.

    python benchmarks/compare.py --base HEAD~3 --rounds 4   # make bench-compare BASE=HEAD~3
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench import CpuMarks, acsd_daemon, count_arg, duration_arg, loadgen, seconds_arg

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """The ``src`` folder of ``rev``, checked out in a temporary git worktree."""
    with tempfile.TemporaryDirectory(prefix="acsd-compare-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet",
                        str(tree), rev], check=True)  # fmt: skip
        try:
            yield tree / "src"
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                           check=False)  # fmt: skip


def cpu_per_session(src: Path, args: argparse.Namespace) -> tuple[float, float]:
    """(ms of daemon CPU per session, sessions/s) of one closed-loop run after registering."""
    with tempfile.TemporaryDirectory() as tmp, acsd_daemon(Path(tmp), src=src) as (
        url, _api, pid, _config,
    ):  # fmt: skip
        marks = CpuMarks(pid)
        run = loadgen(url, args.routers, register=True, settle=args.settle, duration=args.duration,
                      concurrency=args.concurrency, on={"registered": marks.start})  # fmt: skip
        marks.stop()
        used = marks.used
        if run["errors"] or not run["sessions"]:
            raise SystemExit(f"{src}: {run['errors']} errors in {run['sessions']} sessions")
        return 1000 * used / run["sessions"], run["sessions_per_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD", help="the commit to compare with (HEAD)")
    parser.add_argument("--rounds", type=count_arg, default=4)
    parser.add_argument("--routers", type=count_arg, default=2000)
    parser.add_argument("--duration", type=duration_arg, default=8.0)
    parser.add_argument("--concurrency", type=count_arg, default=64)
    parser.add_argument(
        "--settle",
        type=seconds_arg,
        default=1.0,
        help="seconds between registering and measuring (default 1)",
    )
    args = parser.parse_args()
    work = REPO / "src"
    costs: dict[str, list[float]] = {"base": [], "work": []}
    print(f"| round | {args.base} ms/session | working tree ms/session | ratio |")
    print("|---|---|---|---|")
    with checkout(args.base) as base:
        for n in range(args.rounds):
            order = [("base", base), ("work", work)]
            for label, src in order if n % 2 == 0 else order[::-1]:
                ms, _rate = cpu_per_session(src, args)
                costs[label].append(ms)
            b, w = costs["base"][-1], costs["work"][-1]
            print(f"| {n + 1} | {b:.3f} | {w:.3f} | {w / b:.3f} |", flush=True)
    mean_b = sum(costs["base"]) / len(costs["base"])
    mean_w = sum(costs["work"]) / len(costs["work"])
    print(f"| mean | {mean_b:.3f} | {mean_w:.3f} | {mean_w / mean_b:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
