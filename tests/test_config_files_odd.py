"""Files that are no regular files, or TOML the parser cannot take, are a clear error: a
FIFO held the reader (a SIGHUP reload, the daemon's event loop) until something wrote to
it, /dev/zero was read until memory ran out, deep nesting was a RecursionError traceback,
and a dangling link or a directory named *.toml among the profiles was skipped without a
word."""

from __future__ import annotations

import os
import signal
import threading
import urllib.request
from pathlib import Path

import pytest

from acsd.config import ConfigError, load_config
from acsd.provisioning.profiles import ProfileError, load_profiles
from conftest import wait_for


def _within(seconds: float, call) -> BaseException | None:
    """What ``call()`` raised, failing if it does not end within ``seconds``."""
    said: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            said.append(None)
        except BaseException as exc:
            said.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{call} did not end within {seconds} s")
    return said[0]


def test_a_config_that_is_no_regular_file_is_refused_at_once(tmp_path: Path):
    fifo = tmp_path / "acsd.toml"
    os.mkfifo(fifo)
    try:
        for path in (fifo, Path("/dev/zero"), tmp_path):
            error = _within(5, lambda p=path: load_config(p))
            assert isinstance(error, ConfigError), error
            assert str(path) in str(error) and "not a regular file" in str(error), error
    finally:
        # (a reader still blocked in open() would be let go)
        with pytest.raises(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def test_toml_nested_too_deeply_is_the_files_error(tmp_path: Path):
    path = tmp_path / "acsd.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(path)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "deep.toml").write_text('name = "deep"\nx = ' + "{a = " * 3000 + "1" + "}" * 3000)
    with pytest.raises(ProfileError, match="nested too deeply"):
        load_profiles(profiles)


@pytest.mark.parametrize("odd", ["dangling link", "directory", "fifo"])
def test_a_profile_entry_that_is_no_file_is_an_error_not_skipped(tmp_path: Path, odd: str):
    entry = tmp_path / "vendor.toml"
    if odd == "dangling link":
        entry.symlink_to(tmp_path / "gone.toml")
    elif odd == "directory":
        entry.mkdir()
    else:
        os.mkfifo(entry)
    error = _within(5, lambda: load_profiles(tmp_path))
    assert isinstance(error, ProfileError) and "vendor.toml" in str(error), error
    assert "cannot read" in str(error)


def test_a_reload_of_a_config_that_became_a_fifo_keeps_the_daemon_serving(daemon):
    config = daemon.config
    config.rename(config.with_suffix(".bak"))
    os.mkfifo(config)
    daemon.proc.send_signal(signal.SIGHUP)
    line = wait_for(lambda: daemon.events("reload.config_invalid"), timeout=10)[0]
    assert "not a regular file" in line.get("error", "") + line.get("reason", ""), line
    with urllib.request.urlopen(daemon.api_url + "healthz", timeout=5) as answer:
        assert answer.status == 200
