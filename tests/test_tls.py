"""TLS on both listeners with certificates made here: routers over https, /healthz over
https, mTLS refusing clients without the right certificate, and the start-up checks of the
TLS files (one line naming the key, exit status 2)."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from acsd.tls import ServerTls, TlsFileError, TlsSettings
from conftest import run_cli, wait_for
from cpe_steps import finish, inform, wire_for
from tlscerts import (
    OPENSSL,
    Pki,
    client_context,
    get,
    host_port,
    https,
    make_pki,
    needs_openssl,
    refused,
)

pytestmark = needs_openssl


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_sections(pki: Pki, *, mtls: bool = False) -> dict:
    cwmp_tls = {"cert": str(pki.server.cert), "key": str(pki.server.key)}
    if mtls:
        cwmp_tls["client_ca"] = str(pki.ca.cert)
    return {
        "cwmp.tls": cwmp_tls,
        "api.tls": {"cert": str(pki.server.cert), "key": str(pki.server.key)},
    }


def sim(url: str, *args: str) -> tuple[int, str]:
    proc = run_cli("sim", "--acs", url, "--timeout", "10", *args)
    return proc.returncode, proc.stdout + proc.stderr


def test_routers_and_api_over_https(daemon_factory, pki):
    daemon = daemon_factory(**tls_sections(pki))
    [listening] = daemon.events("listening")
    assert listening["tls"] == ["api", "cwmp"] and listening["mtls"] is False
    cwmp, api = https(daemon.cwmp_url), https(daemon.api_url)

    code, out = sim(cwmp, "--ca-file", str(pki.ca.cert), "--once", "--count", "3")
    assert code == 0, out
    assert "3 sessions ok" in out
    assert daemon.device_json("SIMMOB000003")["serialNumber"] == "SIMMOB000003"

    status, body, cn = get(api, "/healthz", client_context(pki))
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert cn == pki.server.name
    # The CWMP listener speaks TLS too (405: the CWMP endpoint only takes POST).
    assert get(cwmp, "/", client_context(pki))[0] == 405

    # Plain HTTP to a TLS listener gets no HTTP answer.
    host, port = host_port(daemon.api_url)
    plain = http.client.HTTPConnection(host, port, timeout=10)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        plain.request("GET", "/healthz")
        plain.getresponse().read()
    plain.close()

    # A simulator that does not trust the CA refuses the ACS.
    code, out = sim(cwmp, "--once", "--count", "1", "--serial-prefix", "UNTRUSTED")
    assert code == 1 and "certificate verify failed" in out.lower(), out
    assert daemon.proc.poll() is None


def test_mtls_refuses_clients_without_the_right_certificate(daemon_factory, pki):
    daemon = daemon_factory(**tls_sections(pki, mtls=True))
    assert daemon.events("listening")[0]["mtls"] is True
    cwmp = https(daemon.cwmp_url)

    # No client certificate, or one from another CA: refused in the handshake, under
    # TLS 1.2 (the handshake itself fails) and TLS 1.3 (the first read fails).
    for tls12 in (True, False):
        assert refused(cwmp, client_context(pki, tls12=tls12))
        assert refused(cwmp, client_context(pki, pki.stranger, tls12=tls12))
    # Under TLS 1.2 the refusal is the handshake itself failing.
    host, port = host_port(cwmp)
    with socket.create_connection((host, port), timeout=10) as raw, pytest.raises(ssl.SSLError):
        client_context(pki, tls12=True).wrap_socket(raw, server_hostname=host)

    # Each refusal is logged and counted with OpenSSL's reason: the connection never
    # reaches a request, so nothing else would say why a router does not show up.
    reasons = {e["reason"] for e in daemon.events("tls.refused")}
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in reasons, reasons
    assert "CERTIFICATE_VERIFY_FAILED" in reasons, reasons
    assert all(e["listener"] == "cwmp" for e in daemon.events("tls.refused"))
    metrics = get(https(daemon.api_url), "/metrics", client_context(pki))[1].decode()
    assert (
        'acsd_tls_handshakes_refused_total{listener="cwmp",'
        'reason="PEER_DID_NOT_RETURN_A_CERTIFICATE"}' in metrics
    ), metrics

    # The right certificate gets through, also for the simulator.
    assert get(cwmp, "/", client_context(pki, pki.client))[0] == 405
    wire = wire_for(cwmp, client_context(pki, pki.client))
    inform(wire, "MTLS000001")
    # The rest of the session on a new connection (as routers that close after each
    # answer do): TLS again, with the same certificate, and found by its cookie.
    wire.reconnect()
    assert "GetParameterValues" in finish(wire)
    assert isinstance(wire.last_sock, ssl.SSLSocket)
    wire.close()
    code, out = sim(
        cwmp,
        *("--ca-file", str(pki.ca.cert), "--cert", str(pki.client.cert)),
        *("--key", str(pki.client.key), "--once", "--count", "2"),
    )
    assert code == 0, out
    code, out = sim(cwmp, "--ca-file", str(pki.ca.cert), "--once", "--serial-prefix", "NOCERT")
    assert code == 1, out
    # what to do, not "0 bytes read on a total of undefined expected bytes"
    assert "give the router --cert and --key" in out, out
    # mTLS is for routers: the API listener asks for no client certificate.
    assert get(https(daemon.api_url), "/healthz", client_context(pki))[0] == 200
    assert daemon.proc.poll() is None
    assert daemon.cli("device", "show", "MTLS000001", check=False).returncode == 0
    assert daemon.cli("device", "show", "NOCERT000001", check=False).returncode != 0


def test_a_flood_of_refused_handshakes_is_counted_but_logged_once_a_while(pki):
    from structlog.testing import capture_logs

    server_tls = ServerTls("cwmp", TlsSettings("cwmp.tls", str(pki.server.cert),
                                                str(pki.server.key)))  # fmt: skip
    refusal = ssl.SSLError(1, "[SSL: HTTP_REQUEST] http request")
    refusal.reason = "HTTP_REQUEST"
    with capture_logs() as logs:
        for _ in range(500):  # a port scanner
            server_tls.handshake_failed(refusal)
    assert server_tls.refused == {"HTTP_REQUEST": 500}
    lines = [e for e in logs if e["event"] == "tls.refused"]
    assert len(lines) == 1 and lines[0]["reason"] == "HTTP_REQUEST"


def test_sim_tls_options_are_checked(pki):
    proc = run_cli("sim", "--acs", "http://127.0.0.1:9/", "--cert", str(pki.client.cert))
    assert proc.returncode == 2 and "https" in proc.stderr
    proc = run_cli(
        "sim", "--acs", "https://127.0.0.1:9/", "--cert", str(pki.client.cert) + ".missing"
    )
    assert proc.returncode == 2 and "--cert" in proc.stderr


# --- start-up checks ---------------------------------------------------------------------


def _check(tmp_path: Path, text: str, command: str = "config") -> tuple[int, list[str]]:
    path = tmp_path / "tls.toml"
    path.write_text(
        '[cwmp]\nlisten = "127.0.0.1:0"\n[api]\nlisten = "127.0.0.1:0"\n'
        f'[store]\nurl = "sqlite:///{tmp_path / "check.db"}"\n' + text
    )
    args = ("config", "check") if command == "config" else ("serve",)
    proc = run_cli(*args, "--config", str(path), timeout=30, bounded=True)
    return proc.returncode, proc.stderr.strip().splitlines()


def test_tls_files_are_checked_at_start_up(tmp_path, pki):
    good_cert, good_key = pki.server.cert, pki.server.key
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = {
        f'[cwmp.tls]\ncert = "{tmp_path / "nope.pem"}"\nkey = "{good_key}"\n': (
            "cwmp.tls.cert",
            "file not found",
        ),
        f'[cwmp.tls]\ncert = "{good_cert}"\nkey = "{tmp_path / "nope.key"}"\n': (
            "cwmp.tls.key",
            "file not found",
        ),
        f'[cwmp.tls]\ncert = "{good_cert}"\nkey = "{pki.server2.key}"\n': (
            "cwmp.tls.key",
            "does not match the certificate",
        ),
        f'[cwmp.tls]\ncert = "{garbage}"\nkey = "{good_key}"\n': (
            "cwmp.tls.cert",
            "no PEM certificate",
        ),
        f'[cwmp.tls]\ncert = "{good_cert}"\nkey = "{garbage}"\n': (
            "cwmp.tls.key",
            "no usable PEM private key",
        ),
        f'[cwmp.tls]\ncert = "{good_cert}"\nkey = "{good_key}"\nclient_ca = "{garbage}"\n': (
            "cwmp.tls.client_ca",
            "no PEM certificate",
        ),
        f'[api.tls]\ncert = "{good_cert}"\nkey = "{tmp_path}"\n': (
            "api.tls.key",
            "is a directory",
        ),
        f'[api.tls]\ncert = "{good_cert}"\n': ("api.tls.key", "cert is set but key is not"),
        f'[cwmp.tls]\nclient_ca = "{pki.ca.cert}"\n': ("cwmp.tls.client_ca", "need TLS"),
        '[cwmp.tls]\nmin_version = "SSLv3"\n': ("cwmp.tls.min_version", "TLSv1.2"),
    }
    for text, (key, reason) in cases.items():
        for command in ("config", "serve"):
            code, lines = _check(tmp_path, text, command)
            assert code == 2, (text, command, lines)
            assert len(lines) == 1, (text, lines)
            assert key in lines[0] and reason in lines[0], (text, lines)
            assert str(tmp_path / "tls.toml") in lines[0]

    # A key only root could read: named too (root reads everything, so not as root).
    if os.geteuid() != 0:
        locked = tmp_path / "locked.key"
        shutil.copy(good_key, locked)
        locked.chmod(0)
        code, lines = _check(tmp_path, f'[cwmp.tls]\ncert = "{good_cert}"\nkey = "{locked}"\n')
        assert code == 2 and len(lines) == 1
        assert "cwmp.tls.key" in lines[0] and "permission denied" in lines[0]

    # Encrypted keys are refused, never prompted for.
    encrypted = tmp_path / "encrypted.key"
    assert OPENSSL is not None
    subprocess.run(
        [OPENSSL, "pkey", "-in", str(good_key), "-aes256", "-passout", "pass:x"],
        stdout=encrypted.open("w"),
        check=True,
        stdin=subprocess.DEVNULL,
    )
    code, lines = _check(tmp_path, f'[cwmp.tls]\ncert = "{good_cert}"\nkey = "{encrypted}"\n')
    assert code == 2 and "cwmp.tls.key" in lines[0] and "encrypted" in lines[0], lines

    # Good files pass; TLSv1 is allowed only with a warning.
    code, lines = _check(
        tmp_path,
        f'[cwmp.tls]\ncert = "{good_cert}"\nkey = "{good_key}"\nclient_ca = "{pki.ca.cert}"\n'
        f'min_version = "TLSv1"\n[api.tls]\ncert = "{good_cert}"\nkey = "{good_key}"\n',
    )
    assert code == 0, lines
    assert len(lines) == 1 and "warning" in lines[0] and "cwmp.tls.min_version" in lines[0]


# --- the context itself, in-process -----------------------------------------------------------


async def _peer_cn(port: int, context: ssl.SSLContext) -> tuple[str, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        writer.write(b"ping\n")
        await writer.drain()
        data = await reader.readline()
        peer = writer.get_extra_info("peercert")
        return dict(item[0] for item in peer["subject"])["commonName"], data
    finally:
        writer.close()


async def test_reload_swaps_certificate_for_new_handshakes_only(tmp_path, pki):
    """What SIGHUP relies on: the listener's SSLContext stays, new handshakes get the new
    certificate, a connection opened before the reload keeps working."""
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    shutil.copy(pki.server.cert, cert)
    shutil.copy(pki.server.key, key)
    server_tls = ServerTls("cwmp", TlsSettings("cwmp.tls", str(cert), str(key)))

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_tls.context)
    port = server.sockets[0].getsockname()[1]
    try:
        context = client_context(pki)
        assert await _peer_cn(port, context) == (pki.server.name, b"ping\n")
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)

        shutil.copy(pki.server2.cert, cert)
        shutil.copy(pki.server2.key, key)
        server_tls.reload()
        assert await _peer_cn(port, context) == (pki.server2.name, b"ping\n")

        # The connection from before the reload still works, with its old certificate.
        writer.write(b"still here\n")
        await writer.drain()
        assert await reader.readline() == b"still here\n"
        subject = writer.get_extra_info("peercert")["subject"]
        assert dict(item[0] for item in subject)["commonName"] == pki.server.name
        writer.close()

        # A broken file on reload changes nothing.
        key.write_text("garbage\n")
        with pytest.raises(TlsFileError, match=r"cwmp\.tls\.key"):
            server_tls.reload()
        assert await _peer_cn(port, context) == (pki.server2.name, b"ping\n")
    finally:
        server.close()
        await server.wait_closed()


async def test_legacy_protocol_versions_only_when_configured(pki):
    legacy_client = ssl.create_default_context(cafile=str(pki.ca.cert))
    legacy_client.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.warns(DeprecationWarning):
        legacy_client.minimum_version = ssl.TLSVersion.TLSv1
        legacy_client.maximum_version = ssl.TLSVersion.TLSv1

    async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello\n")
        await writer.drain()
        writer.close()

    async def version_used(min_version: str) -> str | None:
        settings = TlsSettings(
            "cwmp.tls", str(pki.server.cert), str(pki.server.key), min_version=min_version
        )
        server = await asyncio.start_server(
            hello, "127.0.0.1", 0, ssl=ServerTls("cwmp", settings).context
        )
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=legacy_client)
            assert await reader.readline() == b"hello\n"
            version = writer.get_extra_info("ssl_object").version()
            writer.close()
            return version
        except (ssl.SSLError, ConnectionError):
            return None
        finally:
            server.close()
            await server.wait_closed()

    assert await version_used("TLSv1.2") is None
    assert await version_used("TLSv1") == "TLSv1"


def test_daemon_warns_about_legacy_versions(daemon_factory, pki):
    sections = tls_sections(pki)
    sections["cwmp.tls"]["min_version"] = "TLSv1.1"
    daemon = daemon_factory(**sections)
    wait_for(lambda: daemon.events("tls.legacy_versions"))
    assert "TLSv1.1" in daemon.events("tls.legacy_versions")[0]["detail"]
