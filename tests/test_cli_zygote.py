"""The tests' fork of the `acsd` command (tests/cli_zygote.py) gives what `python -m acsd`
gives: the same exit status, stdout and stderr, environment and timeout handling."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import REPO, acsd_cmd, run_cli, write_config


def _interpreter(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(acsd_cmd(*args), capture_output=True, text=True, cwd=REPO, env=env)


@pytest.mark.parametrize(
    "args",
    [
        ("--version",),
        ("device", "show", "x", "--config", "/nonexistent/acsd.toml"),
        ("token", "create", "--role", "NOBODY"),
        ("config", "check", "--config", "CONFIG"),
    ],
)
def test_a_forked_command_answers_as_a_new_interpreter_does(args, tmp_path):
    config = write_config(tmp_path)
    args = tuple(str(config) if arg == "CONFIG" else arg for arg in args)
    # an environment of its own, read by the command (an override and an unknown name)
    extra = {"ACSD_LOG_LEVEL": "warning", "ACSD_NO_SUCH_SETTING": "1"}
    forked = run_cli(*args, env=extra)
    fresh = _interpreter(*args, env={**os.environ, **extra})
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        fresh.returncode,
        fresh.stdout,
        fresh.stderr,
    )


def test_a_forked_command_that_outlasts_its_timeout_is_stopped():
    with pytest.raises(subprocess.TimeoutExpired):
        run_cli("sim", "--help", timeout=0.0005, bounded=True)
    assert run_cli("--version").returncode == 0  # and the next one runs
