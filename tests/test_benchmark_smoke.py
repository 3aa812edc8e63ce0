"""The benchmark still runs end to end (a few seconds, tiny sizes). It proves the harness
works; it asserts no timing."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def test_quick_benchmark_runs_and_writes_its_results(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench.py"), "--quick", "--routers", "40",
         "--storm", "30", "--idle", "50", "--hold", "20", "--duration", "1", "--concurrency", "8",
         "--storm-concurrency", "16", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| steady: sessions/s (64 in flight) |" in proc.stdout
    results = json.loads((tmp_path / "latest.json").read_text())
    steady = results["steady"]
    for key in ("sessions_per_s", "exchanges_per_s", "baseline_exchanges_per_s", "ratio",
                "p99_ms", "errors"):  # fmt: skip
        assert key in steady
    assert steady["errors"] == 0 and steady["sessions_per_s"] > 0
    assert results["boot_storm"]["lost"] == 0
    assert set(results["api"]) >= {"get_p99_ms", "list_p99_ms"}
    assert set(results["memory"]) >= {"rss_mb_per_100k_idle", "kb_per_session"}
    assert results["memory"]["open_sessions"] == 20
    assert results["machine"]["python"]


def test_compare_runs_both_versions_and_leaves_no_worktree(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "compare.py"), "--base", "HEAD",
         "--rounds", "2", "--routers", "20", "--duration", "1", "--concurrency", "4"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert rows[0] == "| round | HEAD ms/session | working tree ms/session | ratio |"
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| 1", "| 2", "| mean"]
    for row in rows[1:]:
        base, work, ratio = (float(cell) for cell in row.strip("| ").split(" | ")[1:])
        assert base > 0 and work > 0 and ratio > 0
    listed = subprocess.run(["git", "-C", str(REPO), "worktree", "list"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert "acsd-compare-" not in listed
