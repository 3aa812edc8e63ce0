"""The benchmark still runs end to end (a few seconds, tiny sizes). It proves the harness
works; it asserts no timing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO


def _run(args: list[str], timeout: float = 420) -> subprocess.CompletedProcess:
    """``subprocess.run``, but a run that outlasts ``timeout`` (a machine loaded by other
    work) gets SIGTERM first: the benchmark then stops its daemons and removes its
    databases, where SIGKILL would leave them running."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"{args[1]} ran over {timeout} s; its stderr ends:\n{err[-3000:]}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def test_quick_benchmark_runs_and_writes_its_results(tmp_path):
    proc = _run(
        [sys.executable, str(REPO / "benchmarks" / "bench.py"), "--quick", "--routers", "40",
         "--storm", "30", "--idle", "50", "--hold", "20", "--duration", "0.5", "--concurrency", "8",
         "--storm-concurrency", "16", "--settle", "0.2", "--out", str(tmp_path)],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| steady: sessions/s (8 in flight) |" in proc.stdout
    # a quick run's figures are kept apart from a full run's
    assert not (tmp_path / "latest.json").exists()
    results = json.loads((tmp_path / "latest-quick.json").read_text())
    steady = results["steady"]
    for key in ("sessions_per_s", "exchanges_per_s", "baseline_exchanges_per_s", "ratio",
                "p99_ms", "errors"):  # fmt: skip
        assert key in steady
    # the reasons first: a long message is cut short in pytest's report
    assert steady["errors"] == 0, (steady["error_kinds"], proc.stderr[-2000:])
    assert steady["sessions_per_s"] > 0, steady
    # the latency at a second, lighter load, where the daemon has room to spare
    assert 0 < steady["light"]["sessions_per_s"] < steady["paced_sessions_per_s"]
    assert steady["light"]["p99_ms"] > 0 and "sessions/s (daemon" in proc.stdout
    # the daemon's CPU per session in each phase, where the phase measured sessions
    per_session = steady["cpu_ms_per_session"]
    assert set(per_session) == {"closed", "paced", "light"}, per_session
    assert per_session["closed"] > 0 and "| steady: daemon CPU ms per session" in proc.stdout
    assert results["boot_storm"]["lost"] == 0
    assert set(results["api"]) >= {"get_p99_ms", "list_p99_ms"}
    assert results["api"]["samples"] > 0 and results["api"]["errors"] == {}
    assert set(results["memory"]) >= {"rss_mb_per_100k_idle", "kb_per_session"}
    assert results["memory"]["open_sessions"] == 20
    assert results["memory"]["baseline_kb_per_session"] != 0
    assert results["boot_storm"]["retry_after_s"] == 5
    scaling = results["scaling"]
    if len(os.sched_getaffinity(0)) > 1:  # one worker against one per CPU
        assert scaling["speedup"] > 0 and set(scaling["cpu_ms_per_session"]) == {
            "1",
            str(scaling["workers"]),
        }
        assert "| workers 1 / " in proc.stdout
    machine = results["machine"]
    assert machine["python"] and machine["acsd"] and machine["loop"]
    assert set(machine["pinned"]) == {"server", "generator"}


def test_compare_runs_both_versions_and_leaves_no_worktree(tmp_path):
    proc = _run(
        [sys.executable, str(REPO / "benchmarks" / "compare.py"), "--base", "HEAD",
         "--rounds", "2", "--routers", "20", "--duration", "0.5", "--concurrency", "4",
         "--settle", "0.2"],
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


def test_a_daemon_that_dies_at_start_stops_the_run_with_its_log(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import bench
    finally:
        sys.path.pop(0)
    log = tmp_path / "daemon.log"
    log.write_text("config_error: cwmp.listen is not host:port\n")
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(RuntimeError, match="exited with 3") as caught:
        bench._wait_listening(proc, bench.free_port(), log)
    assert "config_error" in str(caught.value)


def test_a_closed_loop_that_completed_no_session_stops_with_the_daemons_warnings(
    tmp_path, monkeypatch, capsys
):
    # (it ended in a KeyError: with no rate measured, the load generator paces nothing)
    import argparse

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import bench
    finally:
        sys.path.pop(0)
    seed = tmp_path / "seed.db"
    bench.populate(seed, 10)
    real = bench.loadgen

    def every_session_failed(url, routers, *, on=None, **options):
        if not on:  # the baseline
            return real(url, routers, **options)
        on["registered"]()
        on["measured"]()
        return {"sessions": 0, "sessions_per_s": 0.0, "exchanges_per_s": 0.0, "errors": 7,
                "p99_ms": None}  # fmt: skip

    monkeypatch.setattr(bench, "loadgen", every_session_failed)
    args = argparse.Namespace(routers=10, idle=10, duration=0.5, concurrency=2, settle=0.0,
                              seed_db=seed)  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(RuntimeError, match="no session completed in the closed loop"):
        bench.steady(args, work)


def test_sigterm_stops_the_benchmark_and_leaves_no_daemon_or_database(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    # The steady scenario's baseline runs first, for half the duration; its daemon then
    # lives for at least settle + three times the duration (closed loop, paced, light), which the
    # signal must not outlast: 3 s keeps the one short and the other well over the polling.
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "benchmarks" / "bench.py"), "--quick", "--routers", "20",
         "--idle", "20", "--duration", "3", "--concurrency", "4", "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        # the steady scenario's daemon is up once its config is written and it listens
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _daemons_under(tmp_path):
            time.sleep(0.2)
        assert _daemons_under(tmp_path), "the benchmark never started a daemon"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    deadline = time.monotonic() + 10
    while _daemons_under(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _daemons_under(tmp_path)
    assert not list(tmp_path.glob("acsd-bench-*")), "the temporary databases were left behind"
    assert not (tmp_path / "out").exists()


def _daemons_under(folder) -> list[str]:
    """Command lines of acsd daemons whose config lies under ``folder``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        text = b" ".join(args).decode(errors="replace")
        if "acsd serve" in text.replace("-m acsd", "acsd") and str(folder) in text:
            found.append(text)
    return found


@pytest.mark.parametrize(
    ("flag", "text"),
    [("--settle", t) for t in ("-1", "nan", "inf", "soon")]
    + [("--duration", t) for t in ("0", "-5", "nan")]
    + [("--routers", "0"), ("--hold", "-1"), ("--concurrency", "2.5")],
)
def test_an_argument_that_is_no_usable_amount_is_refused_before_anything_runs(flag, text):
    # --duration 0 divided the rates by nothing; --routers 0 ran a scenario of no router
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench.py"), flag, text],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and f"argument {flag}:" in proc.stderr, proc.stderr
    assert text in proc.stderr.splitlines()[-1]
