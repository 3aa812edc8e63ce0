"""``acsd --help`` and the help of every subcommand: what an operator reads first."""

from __future__ import annotations

import argparse

import acsd
from acsd.cli import build_parser
from conftest import run_cli


def _commands(
    parser: argparse.ArgumentParser, name: str = "acsd"
) -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                out += _commands(subparser, f"{name} {sub}")
    return out


def test_every_argument_of_every_command_is_explained():
    unexplained = [
        f"{name}: {action.option_strings or action.dest}"
        for name, parser in _commands(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
        and not action.help
    ]
    assert unexplained == []


def test_version_is_printed_and_the_config_default_is_named():
    proc = run_cli("--version", check=True)
    assert proc.stdout.strip() == f"acsd {acsd.__version__}"
    shown = run_cli("device", "list", "--help", check=True).stdout
    # which database a command works on when --config is left out
    assert "acsd.db" in " ".join(shown.split())


def test_an_argument_that_is_not_utf8_is_a_usage_error(tmp_path):
    # A serial pasted from a Latin-1 log ("a\xffb"): tracebacks (UnicodeEncodeError), or a
    # credentials line that made serve refuse the whole credentials file.
    config = tmp_path / "acsd.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "acsd.db"}"\n')
    assert run_cli("db", "migrate", "--config", str(config)).returncode == 0
    bad = "a\udcffb"  # (how Python holds the byte 0xFF of an argument)
    for args, named in (
        (("device", "show", bad), "ID|SERIAL"),
        (("device", "list", "--after", bad), "--after"),
        (("token", "revoke", bad), "ID"),
        (("token", "create", "--role", "OWNER", "--customer", bad), "--customer"),
    ):
        proc = run_cli(*args, "--config", str(config))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert proc.stderr.splitlines()[-1] == f"acsd: error: argument {named}: not UTF-8 text"
    proc = run_cli("cpe-password", bad, "--realm", "acsd")
    assert proc.returncode == 2 and proc.stdout == ""


def test_config_may_come_before_the_command(tmp_path):
    # `acsd --config FILE device list` said "invalid choice: 'FILE'"
    config = tmp_path / "acsd.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "acsd.db"}"\n')
    assert run_cli("--config", str(config), "db", "migrate").returncode == 0
    listed = run_cli("--config", str(config), "device", "list")
    assert listed.returncode == 0, listed.stderr
    twice = run_cli("--config", str(config), "device", "list", "--config", "other.toml")
    assert twice.returncode == 2 and "--config given twice" in twice.stderr
    none = run_cli("--config", str(config), "profile", "check")
    assert none.returncode == 2 and "acsd profile takes no --config" in none.stderr
