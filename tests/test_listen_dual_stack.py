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


def test_a_host_name_is_each_of_its_addresses(monkeypatch):
    # "localhost:7557" where localhost is ::1 and 127.0.0.1 (most distributions) bound
    # ::1 alone: http://127.0.0.1:7557/ was refused.
    import socket

    from acsd.listen_socket import bound_sockets

    real = socket.getaddrinfo

    def both(host, port, *args, **kwargs):
        if host == "dual.invalid":
            return real("::1", port, *args, **kwargs) + real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", both)
    sockets = bound_sockets("dual.invalid", 0)
    try:
        names = [s.getsockname()[:2] for s in sockets]
        assert [host for host, _ in names] == ["::1", "127.0.0.1"]
        assert len({port for _, port in names}) == 1  # port 0: the first's, for all
    finally:
        for s in sockets:
            s.close()
