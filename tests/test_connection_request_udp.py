"""A router behind NAT, end to end on 127.0.0.1 (TR-069 Annex G): acsd's STUN server, the
STUN settings acsd pushes, the UDPConnectionRequestAddress it learns, and an operator's
change that reaches the router as a signed UDP Connection Request from the STUN port."""

from __future__ import annotations

import asyncio
import socket
from functools import partial

import pytest

from acsd.cwmp import stun
from acsd.cwmp.connreq import ConnectionRequester, http_reaches
from acsd.sim.cpe import Cpe
from acsd.sim.runner import Simulation
from conftest import DENY_BUT_LOOPBACK, Daemon, lazy_world, wait_for
from test_metrics import scrape, value

MS = "Device.ManagementServer."

STUN_CONFIG = {
    "stun": {"enabled": True, "listen": "127.0.0.1:0", "public_address": "127.0.0.1"},
    "cwmp": {"connection_request_interval": 1},
    # steady sessions plan nothing (no SetParameterValues): what a notification set or
    # refused once must be remembered without one
    "provisioning": {"drift_check_interval": 3600},
}


@pytest.fixture(scope="module")
def stun_daemon(module_daemon_factory) -> Daemon:
    return module_daemon_factory(**STUN_CONFIG)


def stun_port(daemon: Daemon) -> int:
    listening = daemon.events("listening")[0]
    return int(listening["stun"].rsplit(":", 1)[1])


@pytest.mark.parametrize(
    ("profile", "ssid_path"),
    [
        ("tplink-tr181", "Device.WiFi.SSID.1.SSID"),
        ("tr098-dsl", "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"),
    ],
)
async def test_an_operator_change_reaches_a_router_behind_nat_over_udp(
    stun_daemon, profile: str, ssid_path: str
) -> None:
    daemon = stun_daemon
    world = lazy_world(daemon)

    sim, router = _nat_router(daemon.cwmp_url, profile, f"UDPCR{len(ssid_path)}")
    serial = router.serial
    ms = router.template.root + "ManagementServer."
    # as firmware that notifies its UDP address actively (icwmp's default): the change
    # its STUN client learns is an Inform of its own
    router.tree.notification[ms + "UDPConnectionRequestAddress"] = 2
    path = await _register(world, serial)

    learnt = partial(_active_udp_address, world, path)

    running = asyncio.create_task(sim.run(duration=60))
    try:
        address = await asyncio.to_thread(wait_for, learnt, 20)
        udp = sim.udp[serial]
        # acsd set the router's STUN client towards its own STUN port, which answered it
        flat = router.tree.flat()
        assert flat[ms + "STUNEnable"] in ("true", "1")
        assert flat[ms + "STUNServerAddress"] == "127.0.0.1"
        assert flat[ms + "STUNServerPort"] == str(stun_port(daemon))
        assert udp.stats.bindings >= 1
        host, port = udp._transport.get_extra_info("sockname")[:2]  # type: ignore[union-attr]
        assert address == f"{host}:{port}"

        before = sum(1 for events in router.stats.events if "6 CONNECTION REQUEST" in events)
        changed = await asyncio.to_thread(world.api.patch, path, {"wifi": {"ssid": "OverUdp"}})
        assert changed.status == 200, changed.body

        def applied() -> bool:
            return router.tree.flat()[ssid_path] == "OverUdp"

        await asyncio.to_thread(wait_for, applied, 15)
        after = sum(1 for events in router.stats.events if "6 CONNECTION REQUEST" in events)
        assert after == before + 1  # the router's session was the UDP request's
        assert udp.stats.accepted == 1
        # the HTTP listener at a loopback (no public) URL was not asked: UDP only
        assert sim.cr_server is not None and sim.cr_server.requests == 0
    finally:
        sim.stop()
        await running
    done = [e for e in daemon.events("connreq.done") if e.get("device") == path.rsplit("/", 1)[1]]
    assert [e["way"] for e in done] == ["udp"] and done[0]["ok"]
    samples = scrape(daemon)
    assert value(samples, "acsd_connection_requests_by_way_total", way="udp") >= 1
    assert value(samples, "acsd_udp_connection_requests_total", result="sent") >= 1
    assert value(samples, "acsd_stun_binding_requests_total") >= 1


async def test_the_router_takes_only_requests_signed_with_its_password(stun_daemon) -> None:
    sim, router = _nat_router(stun_daemon.cwmp_url, "tplink-tr181", "UDPSIG")
    serial = router.serial
    running = asyncio.create_task(sim.run(duration=60))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        await asyncio.to_thread(wait_for, lambda: serial in sim.udp and router.stats.ok, 20)
        udp = sim.udp[serial]
        target = udp._transport.get_extra_info("sockname")[:2]  # type: ignore[union-attr]
        user = router.tree.get(MS + "ConnectionRequestUsername")
        password = router.tree.get(MS + "ConnectionRequestPassword")
        assert user and password  # (acsd set them in the first session)
        sessions = router.stats.sessions
        host = f"{target[0]}"
        forged = [
            stun.udp_message(host, target[1], user, password + "x"),  # wrong password
            stun.udp_message(host, target[1], "someone-else", password),  # wrong user
            b"GET http://x?ts=1 HTTP/1.1\r\n\r\n",  # no signature at all
        ]
        for message in forged:
            sender.sendto(message, target)
        await asyncio.to_thread(wait_for, lambda: udp.stats.rejected >= len(forged), 5)
        await asyncio.sleep(0.3)
        assert udp.stats.accepted == 0 and not router.cr_requested
        assert router.stats.sessions == sessions
        # the right one is taken, and a copy of it (or a replay) is not taken twice
        good = stun.udp_message(host, target[1], user, password)
        for _ in range(3):
            sender.sendto(good, target)
        await asyncio.to_thread(wait_for, lambda: udp.stats.accepted == 1, 5)
        await asyncio.to_thread(wait_for, lambda: router.stats.sessions > sessions, 10)
        assert "6 CONNECTION REQUEST" in router.stats.events[-1]
        assert udp.stats.accepted == 1
    finally:
        sender.close()
        sim.stop()
        await running


def test_http_goes_beside_udp_only_to_a_public_address() -> None:
    assert not http_reaches("http://192.168.1.1/cr")  # RFC 1918: behind NAT
    assert not http_reaches("http://100.64.3.2/")  # carrier-grade NAT
    assert not http_reaches("http://127.0.0.1:7547/")
    assert http_reaches("http://203.0.113.9:7547/")  # (documentation range: global enough)
    assert http_reaches("http://cpe.example.net:7547/")  # a name: tried


async def test_udp_to_a_denied_address_is_not_sent_and_http_is_tried() -> None:
    server = stun.StunServer("127.0.0.1", 0, deny=["127.0.0.0/8"])
    await server.start()
    requester = ConnectionRequester(deny=DENY_BUT_LOOPBACK, min_interval=1, udp=server)
    await requester.start()
    try:
        # nothing listens at port 9: the HTTP request fails too, and both reasons are given
        task = requester.poke("dev1", "http://127.0.0.1:9/cr", "u", "p", "127.0.0.1:40000")
        assert task is not None
        result = await task
        assert not result.ok
        assert "UDP: 127.0.0.1 is in 127.0.0.0/8" in result.reason and "HTTP" in result.reason
        assert server.stats.udp_requests == 0 and server.stats.udp_refused == 1
        assert requester.ways == {"http": 1}
    finally:
        await requester.close()
        server.close()


async def test_the_udp_address_is_stored_kept_and_cleared_on_both_backends(store) -> None:
    """What a session reports is kept until a session reports another (or "": STUN off)."""
    from acsd.cwmp.connreq import target_of
    from acsd.store.base import CpeIdentity, SessionResult

    url = "http://10.0.0.2/cr"  # (behind NAT, never contacted: no request reaches it)

    async def session(at: float, udp: str | None) -> str:
        return await store.save_session(
            SessionResult(
                identity=CpeIdentity(oui="00D09E", product_class="X", serial_number="UDPST1"),
                at=at, connection_request_url=url, cr_username="u", cr_password="p",
                udp_connection_request_address=udp,
            )
        )  # fmt: skip

    async def target(device_id: str) -> object:
        record = await store.get_device(device_id)
        assert record is not None
        return target_of(record)

    device_id = await session(1000.0, "198.51.100.7:30001")
    assert await target(device_id) == (url, "u", "p", "198.51.100.7:30001")
    await session(1001.0, None)  # a session that did not read it keeps it
    assert await target(device_id) == (url, "u", "p", "198.51.100.7:30001")
    await session(1002.0, "198.51.100.7:30777")  # a new NAT mapping
    assert await target(device_id) == (url, "u", "p", "198.51.100.7:30777")
    await session(1003.0, "")  # STUN turned off on the router
    assert await target(device_id) == (url, "u", "p", None)


async def _register(world, serial: str) -> str:
    """The operator's record for ``serial`` (POST /network/device); its URL."""
    from api_world import device_body

    made = await asyncio.to_thread(
        world.api.post, "/network/device", device_body(world, "own", serial)
    )
    assert made.status == 201, made.body
    return f"/network/device/{made.body['_id']}"


def _active_udp_address(world, url: str) -> str | None:
    """The UDP Connection Request address acsd learnt for an ACTIVE device, or None."""
    body = world.api.get(url).body
    return body["state"] == "ACTIVE" and body["cpe"].get("udpConnectionRequestAddress")


def _nat_router(
    url: str, profile: str, prefix: str, *, interval: float = 3600
) -> tuple[Simulation, Cpe]:
    """One simulated router behind NAT (a STUN client and a UDP Connection Request
    listener), Informing at ``interval``."""
    sim = Simulation(
        url, [profile], 1, serial_prefix=prefix, interval=interval, ramp=0.01, udp_cr=True
    )
    return sim, sim.router(sim.routers[0].serial)


async def _request_connection(router: Cpe, timeout: float = 10) -> None:
    """A Connection Request the router takes: one in a session is refused, as real routers
    answer 503 then (on the simulation's loop: the router is no thread-safe object)."""
    async with asyncio.timeout(timeout):
        while not router.request_connection():
            await asyncio.sleep(0.05)


def _spa_count(router: Cpe) -> int:
    """SetParameterAttributes the router was sent, in all its sessions."""
    return sum(session.count("SetParameterAttributes") for session in router.stats.rpcs)


async def test_a_new_nat_mapping_is_notified_at_once_and_used(stun_daemon) -> None:
    """acsd sets active notification on UDPConnectionRequestAddress once; when the router's
    mapping changes, it Informs VALUE CHANGE, and the next change goes to the new port."""
    daemon = stun_daemon
    world = lazy_world(daemon)

    sim, router = _nat_router(daemon.cwmp_url, "tplink-tr181", "UDPNOTE")
    serial = router.serial
    path = MS + "UDPConnectionRequestAddress"
    assert router.tree.notification.get(path, 0) == 0  # (firmware's default: off)
    url = await _register(world, serial)

    address = partial(_active_udp_address, world, url)

    running = asyncio.create_task(sim.run(duration=60))
    try:
        udp_first = await asyncio.to_thread(wait_for, address, 20)
        assert router.tree.notification[path] == 2
        udp = sim.udp[serial]
        assert udp_first == "{}:{}".format(*udp.address)
        sessions = router.stats.sessions

        await udp.rebind()  # the NAT's mapping changes
        moved = "{}:{}".format(*udp.address)
        assert moved != udp_first

        def learnt() -> bool:
            return address() == moved

        # at once, by the router's own Inform: its periodic one is an hour away
        await asyncio.to_thread(wait_for, learnt, 10)
        assert "4 VALUE CHANGE" in router.stats.events[-1]
        assert router.stats.sessions == sessions + 1
        # the attribute was set once, not in every session since
        assert _spa_count(router) == 1

        changed = await asyncio.to_thread(world.api.patch, url, {"wifi": {"ssid": "NewPort"}})
        assert changed.status == 200, changed.body
        await asyncio.to_thread(
            wait_for, lambda: router.tree.flat()["Device.WiFi.SSID.1.SSID"] == "NewPort", 15
        )
        assert udp.stats.accepted == 1  # the UDP request reached the new port
        assert "6 CONNECTION REQUEST" in router.stats.events[-1]
        assert _spa_count(router) == 1
    finally:
        sim.stop()
        await running
    done = [e for e in daemon.events("connreq.done") if e.get("device") == url.rsplit("/", 1)[1]]
    assert [e["way"] for e in done] == ["udp"] and done[0]["ok"]
    # the router's STUN client said its mapping changed (TR-111's BINDING-CHANGE)
    assert moved in [e["source"] for e in daemon.events("stun.binding_change")]


async def test_a_refused_notification_fails_no_session_and_is_not_asked_again(
    stun_daemon,
) -> None:
    sim, router = _nat_router(stun_daemon.cwmp_url, "tplink-tr181", "UDPNOTR", interval=0.5)
    serial = router.serial
    path = MS + "UDPConnectionRequestAddress"
    router.attribute_faults[path] = 9009  # "notification request rejected"
    running = asyncio.create_task(sim.run(duration=60))
    try:
        await asyncio.to_thread(wait_for, lambda: router.stats.ok >= 4, 20)
    finally:
        sim.stop()
        await running
    assert router.stats.failed == 0
    assert _spa_count(router) == 1  # refused once, never asked again
    refusals = [f.code for f in router.stats.faults if f.method == "SetParameterAttributes"]
    assert refusals == [9009]
    # the session went on: acsd's settings (STUN on) were applied all the same
    assert router.tree.flat()[MS + "STUNEnable"] in ("1", "true")
    refused = stun_daemon.events("session.udp_notification_refused")
    assert [(e["serial"], e["code"]) for e in refused] == [(serial, 9009)]


async def test_a_factory_reset_has_the_notification_set_again(stun_daemon) -> None:
    sim, router = _nat_router(stun_daemon.cwmp_url, "tr098-dsl", "UDPNOTB")
    path = "InternetGatewayDevice.ManagementServer.UDPConnectionRequestAddress"
    running = asyncio.create_task(sim.run(duration=60))
    try:
        await asyncio.to_thread(wait_for, lambda: router.tree.notification.get(path) == 2, 20)
        # a session more: nothing to set again (a router in a session, the one that set it
        # or the VALUE CHANGE that follows, refuses a Connection Request: asked again)
        await _request_connection(router)
        done = router.stats.ok
        await asyncio.to_thread(wait_for, lambda: router.stats.ok > done, 10)
        assert _spa_count(router) == 1
        router.factory_reset()  # forgets its attributes; the next session says BOOTSTRAP
        await _request_connection(router)
        await asyncio.to_thread(wait_for, lambda: router.tree.notification.get(path) == 2, 10)
    finally:
        sim.stop()
        await running
    assert _spa_count(router) == 2
    assert "0 BOOTSTRAP" in router.stats.events[-2] or "0 BOOTSTRAP" in router.stats.events[-1]


async def test_new_firmware_has_the_notification_set_again(stun_daemon) -> None:
    """A firmware upgrade may come back without the attribute (TR-069 keeps attributes
    across a reboot, not across an image that rewrites the data model): a session that
    reports another SoftwareVersion sets it again, without a BOOTSTRAP."""
    sim, router = _nat_router(stun_daemon.cwmp_url, "tplink-tr181", "UDPNOTF")
    path = MS + "UDPConnectionRequestAddress"
    running = asyncio.create_task(sim.run(duration=60))
    try:
        await asyncio.to_thread(wait_for, lambda: router.tree.notification.get(path) == 2, 20)
        await _request_connection(router)  # a session more: nothing to set again
        await asyncio.to_thread(wait_for, lambda: router.stats.ok >= 3, 10)
        assert _spa_count(router) == 1
        version = "Device.DeviceInfo.SoftwareVersion"
        router.cpe.set_local(version, router.tree.get(version) + "-upgraded")
        router.tree.notification.pop(path, None)  # the new image forgot it
        router.reboot()
        await _request_connection(router)
        await asyncio.to_thread(wait_for, lambda: router.tree.notification.get(path) == 2, 10)
    finally:
        sim.stop()
        await running
    assert _spa_count(router) == 2
    assert not any("0 BOOTSTRAP" in events for events in router.stats.events[1:])


async def test_a_router_being_released_is_not_asked_for_the_notification(stun_daemon) -> None:
    """A record being deleted gets nothing new: its router's session releases it, and a
    router that forgot the attribute (a factory reset) is not given it again."""
    world = lazy_world(stun_daemon)

    sim, router = _nat_router(stun_daemon.cwmp_url, "tplink-tr181", "UDPNOTD")
    serial = router.serial
    path = MS + "UDPConnectionRequestAddress"
    url = await _register(world, serial)
    running = asyncio.create_task(sim.run(duration=60))
    try:
        await asyncio.to_thread(wait_for, lambda: router.tree.notification.get(path) == 2, 20)

        def settled() -> bool:
            # the VALUE CHANGE session that reports the NAT mapping is over too: a session
            # that began after the reset and before the DELETE would rightly set it again
            cpe = world.api.get(url).body["cpe"]
            return bool(cpe.get("udpConnectionRequestAddress")) and not router.in_session

        await asyncio.to_thread(wait_for, settled, 20)
        assert _spa_count(router) == 1
        # Forgotten by the router (its next Inform says BOOTSTRAP, which has acsd set it
        # again on a record it keeps), and the record is being deleted.
        router.factory_reset()
        deleted = await asyncio.to_thread(world.api.delete, url)
        assert deleted.status == 202 and deleted.body["state"] == "DELETING", deleted.body
        await _request_connection(router)
        await asyncio.to_thread(wait_for, lambda: world.api.get(url).status == 404, 15)
    finally:
        sim.stop()
        await running
    assert any("0 BOOTSTRAP" in events for events in router.stats.events)
    assert _spa_count(router) == 1
    assert router.tree.notification.get(path, 0) == 0
    assert router.stats.failed == 0
