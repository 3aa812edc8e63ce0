"""Each quirk of real CPEs that the simulator mimics runs a whole session against the daemon."""

from __future__ import annotations

import pytest

from conftest import run_cli

QUIRKS = [
    "no-cookies",
    "cwmp-1-0",
    "prefix-soap",
    "prefix-SOAP-ENV",
    "untyped-values",
    "reused-id",
    "empty-post-no-length",
    "new-connection",
    "all",
]


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory):
    from conftest import start_daemon, write_config

    tmp = tmp_path_factory.mktemp("quirks")
    daemon = start_daemon(write_config(tmp), tmp / "acsd.db")
    yield daemon
    assert daemon.stop() == 0


@pytest.mark.parametrize("quirk", QUIRKS)
def test_quirky_routers_complete_their_sessions_and_are_recorded(shared_daemon, quirk):
    prefix = "Q" + quirk.replace("-", "")[:10].upper()
    proc = run_cli(
        "sim",
        "--acs",
        shared_daemon.cwmp_url,
        "--count",
        "3",
        "--once",
        "--quirks",
        quirk,
        "--profile",
        "tr181-mobile,tr098-dsl,tplink-tr181",
        "--serial-prefix",
        prefix,
        bounded=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 sessions ok, 0 failed" in proc.stdout
    for n in range(1, 4):
        device = shared_daemon.device_json(f"{prefix}{n:06d}")
        assert device["status"]["wanIp"].startswith("100.64.")
        assert device["status"]["lanIp"].startswith("192.168.")
        assert device["status"]["online"] is True


def test_a_router_found_by_address_alone_that_reuses_its_inform_id_completes(shared_daemon):
    # No cookies, a new connection for every message, every message stamped with the
    # Inform's cwmp:ID: only its address and that ID tie its answers to its session. One
    # router: the empty POSTs of several such routers at one address carry nothing to tell
    # them apart.
    proc = run_cli(
        "sim",
        "--acs",
        shared_daemon.cwmp_url,
        "--count",
        "1",
        "--once",
        "--quirks",
        "no-cookies,reused-id,new-connection",
        "--profile",
        "tr181-mobile",
        "--serial-prefix",
        "QSAMEID",
        bounded=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 sessions ok, 0 failed" in proc.stdout
    device = shared_daemon.device_json("QSAMEID000001")
    assert device["status"]["wanIp"].startswith("100.64.")
    assert device["status"]["online"] is True


def test_list_profiles_names_the_three_router_kinds():
    proc = run_cli("sim", "--list-profiles", check=True)
    names = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    assert {"tr181-mobile", "tr098-dsl", "tplink-tr181"} <= set(names)


def test_once_fails_when_the_acs_is_not_there(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = run_cli(
        "sim", "--acs", f"http://127.0.0.1:{port}/", "--once", "--count", "1", bounded=True
    )
    assert proc.returncode != 0
    assert "1 failed" in proc.stdout
    assert len(proc.stdout.strip().splitlines()) == 1
