"""``python -m acsd.sim`` as a user runs it: --once exit status and summary, --list-profiles,
--state (a second run is the same routers rebooting) and --dump."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from acsd.cwmp import rpc
from test_sim_http import FakeAcs

SUMMARY = re.compile(r"sim: (\d+) routers, (\d+) sessions ok, (\d+) failed in \d+\.\d\ds")


async def sim(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "acsd.sim", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_once_exits_0_with_one_summary_line() -> None:
    acs = await FakeAcs().start()
    try:
        code, out, err = await sim(
            "--acs", acs.url, "--once", "--count", "3",
            "--profile", "tr181-mobile,tr098-dsl", "--profile", "tplink-tr181",
        )  # fmt: skip
    finally:
        await acs.stop()
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 1 and SUMMARY.fullmatch(lines[0]), out
    assert SUMMARY.fullmatch(lines[0]).groups() == ("3", "3", "0")
    serials = sorted(i.device_id.serial_number for i in acs.informs)
    assert serials == ["SIMDSL000002", "SIMMOB000001", "SIMTPL000003"]
    assert all(i.event_codes() == ["0 BOOTSTRAP", "1 BOOT"] for i in acs.informs)


async def test_once_reports_each_failure_on_stderr_and_exits_1() -> None:
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    code, out, err = await sim("--acs", url, "--once", "--count", "2", "--serial-prefix", "BAD")
    assert code == 1
    assert SUMMARY.fullmatch(out.strip()).groups() == ("2", "0", "2")
    failures = err.strip().splitlines()
    assert len(failures) == 2
    assert failures[0].startswith("sim: BAD000001: ") and "connection" in failures[0]
    assert failures[1].startswith("sim: BAD000002: ")


async def test_list_profiles_prints_name_then_description() -> None:
    code, out, _ = await sim("--list-profiles")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert {"tr181-mobile", "tr098-dsl", "tplink-tr181"} <= set(names)
    assert all(len(line.split(None, 1)) == 2 for line in out.splitlines())


async def test_usage_errors_exit_2() -> None:
    code, _, err = await sim("--once")
    assert code == 2 and "--acs" in err
    code, _, err = await sim("--acs", "http://203.0.113.1:7547/", "--once")
    assert code == 2 and "loopback" in err
    code, _, err = await sim("--acs", "http://127.0.0.1:1/", "--once", "--profile", "nope")
    assert code == 2 and "nope" in err
    code, _, err = await sim("--acs", "http://127.0.0.1:1/", "--once", "--quirks", "nope")
    assert code == 2 and "nope" in err


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--interval", "nan"),  # was a traceback from the event loop's timer
        ("--interval", "-1"),
        ("--timeout", "0"),
        ("--timeout", "inf"),
        ("--duration", "-1"),  # was a run that ended at once, exit 0
        ("--ramp", "-3"),
        ("--retry-scale", "x"),
        ("--concurrency", "0"),
        ("--count", "99999999999"),  # was minutes of building routers, then memory
        ("--cr-listen", "127.0.0.1:99999"),  # was a traceback once the run started
    ],
)
async def test_a_number_a_run_cannot_use_is_a_usage_error(option: str, value: str) -> None:
    code, out, err = await sim("--acs", "http://127.0.0.1:1/", "--duration", "1", option, value)
    assert code == 2, (out, err)
    assert option in err and "Traceback" not in err
    assert out == ""


async def test_a_connection_request_listener_that_cannot_start_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = await sim(
            "--acs", "http://127.0.0.1:1/", "--duration", "1", "--cr-listen", f"127.0.0.1:{port}"
        )  # fmt: skip
    assert code == 1 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(
        f"acsd sim: error: cannot listen for Connection Requests on 127.0.0.1:{port}: "
    )
    assert line.endswith("address already in use")


async def test_state_makes_the_second_run_a_reboot_and_dump_writes_trees(tmp_path: Path) -> None:
    ssid = "Device.WiFi.SSID.1.SSID"
    script = lambda inform: (  # noqa: E731
        [rpc.SetParameterValues([rpc.ParameterValue(ssid, "from-acs")], "rev-1")]
        if "0 BOOTSTRAP" in inform.event_codes()
        else []
    )
    acs = await FakeAcs(script=script).start()
    state, dump = tmp_path / "state", tmp_path / "dump"
    common = ("--acs", acs.url, "--once", "--count", "2", "--state", str(state))
    try:
        first = await sim(*common, "--dump", str(dump))
        second = await sim(*common)
    finally:
        await acs.stop()
    assert first[0] == 0 and second[0] == 0, (first, second)
    codes = [i.event_codes() for i in acs.informs]
    assert codes == [["0 BOOTSTRAP", "1 BOOT"]] * 2 + [["1 BOOT"]] * 2
    later = {p.name: p.value for p in acs.informs[2].parameters}
    assert later["Device.ManagementServer.ParameterKey"] == "rev-1"
    assert sorted(p.name for p in state.iterdir()) == ["SIMMOB000001.json", "SIMMOB000002.json"]
    tree = json.loads((dump / "SIMMOB000001.json").read_text())
    assert tree[ssid] == "from-acs"
    assert tree["Device.DeviceInfo.SerialNumber"] == "SIMMOB000001"
    assert len(tree["Device.WiFi.AccessPoint.1.Security.KeyPassphrase"]) >= 8  # held, not ""
    assert all(isinstance(v, str) for v in tree.values())


def test_the_acsd_command_leaves_the_simulator_unloaded_until_it_is_asked_for():
    """``acsd device list`` builds the whole parser, ``sim`` included: loading the simulator
    (aiohttp's client, the trees) for that doubled the start of every command."""
    code = (
        "import sys, acsd.cli; acsd.cli.build_parser();"
        "print(sorted(m for m in sys.modules if m.startswith(('acsd.sim.', 'aiohttp'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['acsd.sim.args', 'acsd.sim.quirks']"


def test_every_public_name_of_the_simulator_package_resolves():
    import acsd.sim

    for name in acsd.sim.__all__:
        value = getattr(acsd.sim, name)
        assert isinstance(value, dict) or value.__module__.startswith("acsd.sim."), name
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = acsd.sim.Nope


async def test_a_state_file_of_the_wrong_shape_is_ignored_with_a_warning(tmp_path: Path) -> None:
    acs = await FakeAcs().start()
    state = tmp_path / "state"
    common = ("--acs", acs.url, "--once", "--state", str(state))
    try:
        assert (await sim(*common))[0] == 0
        path = state / "SIMMOB000001.json"
        saved = json.loads(path.read_text())
        saved["tree"]["released"] = ["not", "a", "mapping"]  # hand-edited
        path.write_text(json.dumps(saved))
        code, _out, err = await sim(*common)
    finally:
        await acs.stop()
    assert code == 0, err
    assert f"SIMMOB000001: ignoring malformed state {path}" in err
    # the router starts fresh: a first contact again
    assert acs.informs[-1].event_codes() == ["0 BOOTSTRAP", "1 BOOT"]


def test_the_readme_names_only_serial_numbers_the_simulator_gives():
    # Its examples are pasted in order against the simulator: a serial number no simulated
    # router has (the swap example had "SIMTR2000009") makes an example that shows nothing.
    from acsd.sim.template import list_templates, load_template

    prefixes = {load_template(name).serial_prefix for name, _ in list_templates()}
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    serials = set(re.findall(r"\bSIM[A-Z0-9]+\b", readme))
    assert serials  # the pattern still finds the walkthrough's
    for serial in serials:
        prefix, index = serial[:-6], serial[-6:]
        assert prefix in prefixes and index.isdigit() and int(index) >= 1, serial


async def test_a_tree_file_of_the_operators_is_a_router_to_try_a_profile_on(tmp_path: Path) -> None:
    # An operator writing a profile for a model acsd does not ship copies a tree, changes
    # it into that router and points the simulator at the file.
    from acsd.sim.template import _tree_files

    tree = json.loads(_tree_files()["tr181-generic"].read_text(encoding="utf-8"))
    tree["name"], tree["serial_prefix"] = "acme-x1", "ACME"
    tree["device_id"] = {**tree["device_id"]}
    path = tmp_path / "acme-x1.json"
    path.write_text(json.dumps(tree))
    acs = await FakeAcs().start()
    try:
        code, _out, err = await sim("--acs", acs.url, "--once", "--profile", str(path))
    finally:
        await acs.stop()
    assert code == 0, err
    assert [i.device_id.serial_number for i in acs.informs] == ["ACME000001"]
    # a file that is no tree is one line naming it, exit 2
    (tmp_path / "broken.json").write_text('{"name": "broken"}')
    for name, said in [("broken.json", "'root' is missing"), ("none.json", "cannot read")]:
        code, _out, err = await sim("--acs", acs.url, "--once", "--profile", str(tmp_path / name))
        assert code == 2 and said in err and err.count("\n") == 1, err
