"""SIGHUP and ``[stun]``: what routers are told of the STUN server (public address, port,
keepalive) and the per-source bounds take effect without a restart, and reach routers at
their next session whatever their drift check; ``enabled`` and ``listen`` are named as
needing a restart, and the socket keeps serving."""

from __future__ import annotations

import asyncio
import socket

from acsd.config import StunConfig
from acsd.cwmp import stun
from acsd.sim.runner import Simulation
from acsd.workers import _reloaded_stun
from conftest import wait_for
from test_connection_request_udp import MS, _request_connection, stun_port
from test_reload import hup

STUN = {
    "stun": {"enabled": True, "listen": "127.0.0.1:0", "public_address": "127.0.0.1"},
    "cwmp": {"connection_request_interval": 1},
    # steady sessions compare no settings: what follows a reload must not wait for a drift
    # check an hour away
    "provisioning": {"drift_check_interval": 3600},
}
STUN_SECTION = '[stun]\nenabled = true\nlisten = "127.0.0.1:0"\npublic_address = "127.0.0.1"\n'


def answers(port: int, requests: int, source: str = "127.0.0.3") -> int:
    """Binding Requests from one source of its own, and the answers it got."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((source, 0))
        sock.settimeout(0.3)
        for _ in range(requests):
            sock.sendto(stun.binding_request(), ("127.0.0.1", port))
        got = 0
        while True:
            try:
                sock.recv(2048)
            except TimeoutError:
                return got
            got += 1
    finally:
        sock.close()


async def test_stun_values_and_bounds_follow_a_reload_and_listen_needs_a_restart(
    daemon_factory,
) -> None:
    daemon = daemon_factory(**STUN)
    port = stun_port(daemon)
    sim = Simulation(
        daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="HUPSTUN", interval=3600,
        ramp=0.01, udp_cr=True,
    )  # fmt: skip
    router = sim.routers[0]

    def told() -> tuple[str, str]:
        # (the simulated firmware has no keepalive periods: the profile's are optional)
        return router.tree.get(MS + "STUNServerAddress"), router.tree.get(MS + "STUNServerPort")

    running = asyncio.create_task(sim.run(duration=60))
    try:
        # its STUN client's mapping, notified at once (a session that checks settings)
        def notified() -> bool:
            stats = router.stats
            over = stats.ok + stats.failed == len(stats.events)  # (no session under way)
            return over and any("4 VALUE CHANGE" in events for events in stats.events)

        await asyncio.to_thread(wait_for, notified, 20)
        assert told() == ("127.0.0.1", str(port))
        sessions = router.stats.ok
        await _request_connection(router)  # a steady session: nothing compared, nothing sent
        await asyncio.to_thread(wait_for, lambda: router.stats.ok > sessions, 10)
        assert router.stats.events[-1] == ["6 CONNECTION REQUEST"]
        assert router.stats.rpcs[-1] == ["GetParameterValues"]

        # (another port routers would reach acsd at, through a NAT of acsd's own)
        moved = port + 1 if port < 65535 else port - 1
        text = daemon.config.read_text()
        assert STUN_SECTION in text
        daemon.config.write_text(
            text.replace(
                STUN_SECTION,
                STUN_SECTION.replace('"127.0.0.1"\n', '"acs.example.net"\n')
                + f"public_port = {moved}\nkeepalive = 45\n"
                "source_rate = 0.5\nsource_burst = 2\n",
            )
        )
        done = await asyncio.to_thread(hup, daemon)
        assert "restart_needed" not in done, done
        # the port's new bound holds at once: a source gets its burst, then nothing
        assert await asyncio.to_thread(answers, port, 10) == 2

        sessions, begun = router.stats.ok, len(router.stats.events)
        await _request_connection(router)  # its next session, a steady one: the router follows
        await asyncio.to_thread(wait_for, lambda: router.stats.ok > sessions, 10)
        assert router.stats.events[begun] == ["6 CONNECTION REQUEST"]
        assert told() == ("acs.example.net", str(moved))
        assert router.stats.failed == 0
    finally:
        sim.stop()
        await running

    # enabled and listen: the socket is bound at start-up
    text = daemon.config.read_text()
    assert 'listen = "127.0.0.1:0"\npublic_address = "acs.example.net"' in text
    daemon.config.write_text(
        text.replace('"127.0.0.1:0"\npublic_address', '"127.0.0.1:3478"\npublic_address')
    )
    done = await asyncio.to_thread(hup, daemon)
    assert done["restart_needed"] == ["stun.listen"]
    assert daemon.events("reload.restart_needed")[-1]["keys"] == ["stun.listen"]
    assert await asyncio.to_thread(answers, port, 1, "127.0.0.4") == 1  # (still serving)


def test_the_workers_snapshot_takes_what_a_reload_applies() -> None:
    """A worker restarted after a reload must not come back with the STUN values of the
    start: the supervisor's copy takes the reloadable keys, not enabled nor listen."""
    running = StunConfig(enabled=True, listen="127.0.0.1:3478", public_address="192.0.2.10")
    fresh = StunConfig(
        enabled=False, listen="127.0.0.1:3479", public_address="192.0.2.20", public_port=13478,
        keepalive=45, source_rate=5, source_burst=9,
    )  # fmt: skip
    kept = _reloaded_stun(running, fresh)
    assert (kept.enabled, kept.listen) == (True, "127.0.0.1:3478")
    assert (kept.public_address, kept.public_port, kept.keepalive) == ("192.0.2.20", 13478, 45)
    assert (kept.source_rate, kept.source_burst) == (5, 9)
    # STUN switched off in the file (no address any more): the running one keeps its own
    off = _reloaded_stun(running, StunConfig(enabled=False, listen="127.0.0.1:3478"))
    assert off.public_address == "192.0.2.10" and off.enabled


def test_a_reload_gives_workers_restarted_later_the_new_stun_values(tmp_path) -> None:
    import json

    from acsd.config import load_config
    from acsd.workers import Supervisor
    from conftest import write_config

    path = write_config(
        tmp_path, top={"workers": 2},
        stun={"enabled": True, "listen": "127.0.0.1:3478", "public_address": "192.0.2.10"},
    )  # fmt: skip
    supervisor = Supervisor(load_config(path), str(path))
    supervisor.snapshot = tmp_path / "config.json"
    path.write_text(
        path.read_text().replace('"192.0.2.10"', '"192.0.2.20"\nkeepalive = 45')
        + '[provisioning]\nstatic_wan_dns = ["198.51.100.53"]\n'
    )
    supervisor._reload()
    copy = json.loads(supervisor.snapshot.read_text())
    assert (copy["stun"]["public_address"], copy["stun"]["keepalive"]) == ("192.0.2.20", 45)
    assert copy["provisioning"]["static_wan_dns"] == ["198.51.100.53"]
