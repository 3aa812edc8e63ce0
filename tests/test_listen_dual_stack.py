"""``listen = "[::]:PORT"`` takes routers and API clients over IPv4 as well as IPv6 (as an
operator reads "every address"); an IPv4 one is known by its IPv4 address, not the
``::ffff:`` form the dual-stack socket gives it."""

from __future__ import annotations

import json
import urllib.request

from conftest import start_daemon, write_config
from wire import Wire, envelope, inform_body


def _port(daemon, listener: str) -> int:
    [listening] = daemon.events("listening")
    return int(listening[listener].rsplit(":", 1)[1])


def test_a_listener_on_every_ipv6_address_takes_ipv4_clients_too(tmp_path):
    config = write_config(tmp_path, cwmp={"listen": "[::]:0"}, api={"listen": "[::]:0"})
    daemon = start_daemon(config, tmp_path / "acsd.db")
    try:
        port = _port(daemon, "cwmp")
        for host, serial in (("127.0.0.1", "DUAL00004"), ("[::1]", "DUAL00006")):
            wire = Wire(f"http://{host}:{port}/")
            answer = wire.post(envelope(inform_body(serial)))
            assert answer.status == 200 and b"InformResponse" in answer.body, (host, answer.text)
            while answer.status != 204:
                answer = wire.post(None)
        # the router's address as an operator knows it
        assert daemon.device_json("DUAL00004")["status"]["publicIp"] == "127.0.0.1"
        assert daemon.device_json("DUAL00006")["status"]["publicIp"] == "::1"
        api = _port(daemon, "api")
        with urllib.request.urlopen(f"http://127.0.0.1:{api}/healthz", timeout=10) as reply:
            assert reply.status == 200
        with urllib.request.urlopen(f"http://[::1]:{api}/healthz", timeout=10) as reply:
            assert json.loads(reply.read()) is not None
    finally:
        daemon.stop()
