"""Logging: JSON lines off a terminal, readable lines on one, journald priorities, the
session and serial on every line of a CWMP exchange, and no secret in any line."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import sqlite3
import ssl
from pathlib import Path

import pytest
import structlog

from acsd import log as acsd_log
from acsd.sim.runner import Simulation
from api_world import seed_body
from conftest import wait_for
from wire import Wire, envelope, inform_body


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    if acsd_log._handler is not None:
        logging.getLogger().removeHandler(acsd_log._handler)
        acsd_log._handler = None


def test_json_lines_off_a_terminal_and_readable_lines_on_one(monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()
    acsd_log.configure("info", "auto", stream)
    with structlog.contextvars.bound_contextvars(session="abc123", serial="SN1"):
        acsd_log.get_logger("t").info("session.inform", profile="tr181")
    acsd_log.get_logger("t").debug("hidden")
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["event"] == "session.inform" and entry["level"] == "info"
    assert entry["session"] == "abc123" and entry["serial"] == "SN1"
    assert entry["timestamp"].endswith("Z")

    tty = _Tty()
    acsd_log.configure("debug", "auto", tty)
    acsd_log.get_logger("t").info("session.inform", serial="SN1")
    text = tty.getvalue()
    assert "session.inform" in text and "SN1" in text
    with pytest.raises(ValueError):
        json.loads(text.splitlines()[0])


def test_readable_lines_escape_what_would_act_on_the_terminal(monkeypatch):
    # A router's serial or a client's header is written as it came: on a terminal an ESC
    # starts a colour or cursor sequence, a newline a line that acsd never wrote.
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()  # (no colours: their own escape sequences would be in the text)
    acsd_log.configure("info", "console", stream)
    acsd_log.get_logger("t").info("cwmp.refused", serial="evil\x1b]0;pwned\x07\nFAKE line")
    acsd_log.get_logger("t").info("a message of\nour own\u202e")
    logging.getLogger("aiohttp.server").warning("bad header %s", "x\x1b[2Jy")
    text = stream.getvalue()
    assert "\x1b" not in text and "\x07" not in text, text
    assert "'evil\\x1b]0;pwned\\x07\\nFAKE line'" in text and "bad header x\\x1b[2Jy" in text
    assert "a message of\\nour own\\u202e" in text
    assert len(text.splitlines()) == 3


def test_a_module_logger_follows_a_reload_of_the_level_and_stream():
    # Module loggers are made once at import and bound once per configuration (for speed):
    # a reload (SIGHUP) that changes the level or the output must still reach them.
    logger = acsd_log.get_logger("t")
    first, second = io.StringIO(), io.StringIO()
    acsd_log.configure("warning", "json", first)
    logger.info("quiet")
    logger.warning("loud")
    acsd_log.configure("debug", "json", second)
    logger.debug("now.seen", password="hunter2")
    assert [json.loads(x)["event"] for x in first.getvalue().splitlines()] == ["loud"]
    [entry] = [json.loads(x) for x in second.getvalue().splitlines()]
    assert entry["event"] == "now.seen" and entry["password"] != "hunter2"


def test_secrets_are_masked_at_any_depth(monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()
    acsd_log.configure("debug", "json", stream)
    acsd_log.get_logger("t").info(
        "x",
        password="hunter2-top",
        cr_password="hunter2-cr",
        params={
            "Device.WiFi.AccessPoint.1.Security.KeyPassphrase": ["hunter2-deep", "xsd:string"],
            "Device.WiFi.SSID.1.SSID": ["visible-ssid", "xsd:string"],
        },
        changes=[{"path": "x", "PreSharedKey": "hunter2-list"}],
        nonce_key="hunter2-nonce",  # ([cwmp.auth] nonce_key, should a line ever carry it)
    )
    text = stream.getvalue()
    assert "hunter2" not in text
    assert "visible-ssid" in text and acsd_log.MASK in text


def test_a_secret_key_is_masked_every_time_and_at_any_length(monkeypatch):
    # The verdict on a key is remembered after its first line: the second line must be
    # masked as the first was, and a key too long to remember is still tested.
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()
    acsd_log.configure("info", "json", stream)
    long_key = "x" * 100 + "_password"
    for n in range(3):
        acsd_log.get_logger("t").info(
            "x", psk=f"hunter2-{n}", serial="SN1", **{long_key: "hunter2"}
        )
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(entries) == 3 and "hunter2" not in stream.getvalue()
    assert all(e["psk"] == acsd_log.MASK and e[long_key] == acsd_log.MASK for e in entries)
    assert all(e["serial"] == "SN1" for e in entries)


def test_a_line_orjson_refuses_is_still_written_as_json(monkeypatch):
    # An operator's JSON can carry an escaped lone surrogate ("\ud800") and numbers beyond
    # 64 bits; a line naming them must come out, not raise in whatever logged it.
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()
    acsd_log.configure("info", "json", stream)
    logger = acsd_log.get_logger("t")
    logger.info("odd.text", name="bad\ud800end", big=2**70, data={1: "int key"}, at=Path("/x"))
    logger.info("plain", ssid="Café ☕")
    odd, plain = (json.loads(line) for line in stream.getvalue().splitlines())
    assert odd["name"] == "bad\ud800end" and odd["big"] == 2**70
    assert odd["data"] == {"1": "int key"} and "x" in odd["at"]
    assert plain["ssid"] == "Café ☕"


def test_python_logging_comes_out_in_the_same_format(monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()
    acsd_log.configure("info", "json", stream)
    logging.getLogger("aiohttp.server").error("Error handling request")
    logging.getLogger("aiohttp.access").info("GET / 200")  # filtered: noise
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["event"] == "Error handling request"
    assert entry["level"] == "error" and entry["logger"] == "aiohttp.server"


def test_journald_gets_a_priority_prefix(tmp_path: Path, monkeypatch):
    with open(tmp_path / "journal", "w+") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        acsd_log.configure("info", "auto", stream)
        logger = acsd_log.get_logger("t")
        logger.info("listening")
        logger.warning("cwmp.refused")
        logger.error("store_writer_crashed")
        stream.flush()
        lines = (tmp_path / "journal").read_text().splitlines()
    assert [line[:3] for line in lines] == ["<6>", "<4>", "<3>"]
    assert json.loads(lines[0][3:])["event"] == "listening"

    # Another stream (a child's redirected stderr) inherits the variable but is no journal.
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    other = io.StringIO()
    acsd_log.configure("info", "json", other)
    acsd_log.get_logger("t").info("plain")
    assert other.getvalue().startswith("{")


async def test_session_lines_carry_the_session_and_no_password_is_ever_logged(
    daemon, tmp_path: Path
):
    # The daemon of conftest logs JSON at debug level.
    sim = Simulation(daemon.cwmp_url, ["huawei-hg8245"], 1, serial_prefix="LOG")
    serial = sim.routers[0].serial
    body = seed_body(serial, "192.168.100")  # the simulated Huawei's LAN
    daemon.apply(body)
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    tree = sim.router(serial).tree.flat()
    assert tree["InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"] == "SkyNet"
    wait_for(lambda: len(daemon.events("session.end")) >= 2)

    # What must never appear: the wifi passwords acsd pushed, and the Connection Request
    # password it made up for the router (read from the database, never from the log).
    secrets = {body["wifi"]["password"], body["wifi"]["password5G"]}
    with sqlite3.connect(daemon.db) as db:
        for (password,) in db.execute("SELECT cr_password FROM devices"):
            if password:
                secrets.add(password)
    assert len(secrets) == 3  # acsd keeps a Connection Request password per router
    text = daemon.log_text()
    for secret in secrets:
        assert secret not in text, f"a secret reached the log: {secret[:2]}..."

    entries = [json.loads(line) for line in daemon.lines]  # every line is JSON
    ours = [e for e in entries if e.get("serial") == serial]
    assert {"session.inform", "session.plan", "cwmp.rpc", "session.end"} <= {
        e["event"] for e in ours
    }
    for entry in entries:
        if entry["event"] in ("cwmp.rpc", "session.end"):
            assert entry.get("serial") == serial and len(entry.get("session", "")) == 12, entry
    assert len({e["session"] for e in ours}) == 2  # two sessions, two references


def test_the_session_cookie_is_never_logged_only_a_reference_to_it(daemon):
    wire = Wire(daemon.cwmp_url)
    try:
        assert wire.post(envelope(inform_body("LOGC000001"))).status == 200
        assert wire.post(None).status in (200, 204)
    finally:
        wire.close()
    cookie = wire.cookie.split("=", 1)[1]
    [inform] = wait_for(
        lambda: [e for e in daemon.events("session.inform") if e["serial"] == "LOGC000001"]
    )
    assert inform["session"] == acsd_log.session_ref(cookie)
    assert cookie not in daemon.log_text()


def _refused_header(url: str, header: str) -> None:
    """A GET carrying ``header`` (one line, or a folded one) on a connection of its own,
    which the listener at ``url`` must refuse 400."""
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n{header}\r\n\r\n".encode("latin-1"))
        assert sock.recv(4096).split(b"\r\n")[0].endswith(b" 400 Bad Request")


def test_a_malformed_credential_header_is_logged_without_the_credential(daemon):
    """aiohttp quotes the header line it could not read in its error; acsd logs that error
    (client_request_unreadable), never the token or password in it."""
    secrets = []
    for url, line in (
        (daemon.api_url, "Authorization : Bearer acsd_TOPSECRETAPITOKEN0001"),
        (daemon.cwmp_url, "Authorization: Basic VE9QU0VDUkVUQ1BFOnB3MDAwMQ==\x01"),
        (daemon.api_url, "Cookie: acsd_session=TOPSECRETCOOKIE0001\x7f"),
        # quotes of its own: the response (a hash to guess the password from) came through
        (daemon.cwmp_url, 'Authorization: Digest username="SIM1", response="c0ffee0001"\x00'),
    ):
        secrets.append(line.split()[-1].strip("\x01\x7f\x00").removeprefix("response=").strip('"'))
        _refused_header(url, line)
    unreadable = wait_for(lambda: len(daemon.events("client_request_unreadable")) >= 4 and
                          daemon.events("client_request_unreadable"))  # fmt: skip
    assert any("<redacted>" in e.get("reason", "") for e in unreadable), unreadable
    text = daemon.log_text()
    for secret in secrets:
        assert secret not in text


def test_a_folded_credential_header_is_logged_without_the_credential(daemon):
    """A header folded onto a second line (obs-fold, as some embedded stacks write a long
    Digest header) is refused with aiohttp quoting the continuation without the header's
    name: the Basic password, the Digest response, the session cookie or the API token in
    it went to the log as it was."""
    secrets = ["Q1BFMDAxOnMzY3JldDAwMDM=", "c0ffee0003c0ffee", "TOPSECRETCOOKIE0003",
               "acsd_TOPSECRETAPITOKEN0003"]  # fmt: skip
    for url, header in (
        (daemon.cwmp_url, f"Authorization: Basic\r\n {secrets[0]}"),
        (daemon.cwmp_url, f'Authorization: Digest username="SIM1",\r\n\tresponse="{secrets[1]}"'),
        (daemon.cwmp_url, f"Cookie: a=1;\r\n acsd_session={secrets[2]}"),
        (daemon.api_url, f"Authorization: Bearer\r\n {secrets[3]}"),
    ):
        _refused_header(url, header)
    unreadable = wait_for(lambda: len(daemon.events("client_request_unreadable")) >= 4 and
                          daemon.events("client_request_unreadable"))  # fmt: skip
    assert all("continuation, not shown" in e.get("reason", "") for e in unreadable), unreadable
    text = daemon.log_text()
    for secret in secrets:
        assert secret not in text


def test_an_over_long_credential_header_is_logged_without_the_credential(daemon):
    """A header value over aiohttp's limit (8190 bytes: a Kerberos ticket, a client that
    pads or repeats its credentials) is quoted in aiohttp's error without the header's
    name; the line acsd logs for it names the limit, not the value."""
    secrets = ["acsd_TOPSECRETAPITOKEN0002", "VE9QU0VDUkVUQ1BFOnB3MDAwMg", "TOPSECRETCOOKIE0002"]
    for url, line in (
        (daemon.api_url, f"Authorization: Bearer {secrets[0]}"),
        (daemon.cwmp_url, f"Authorization: Basic {secrets[1]}"),
        (daemon.cwmp_url, f"Cookie: session={secrets[2]}"),
    ):
        _refused_header(url, line + "A" * 9000)
    unreadable = wait_for(lambda: len(daemon.events("client_request_unreadable")) >= 3 and
                          daemon.events("client_request_unreadable"))  # fmt: skip
    assert all("header over 8190 bytes" in e.get("reason", "") for e in unreadable), unreadable
    text = daemon.log_text()
    for secret in secrets:
        assert secret not in text


def _client_hello() -> bytes:
    """The first bytes a router whose ACS URL says https:// sends."""
    tls = ssl.create_default_context().wrap_bio(
        ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname="acs.example.net"
    )
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_a_request_acsd_cannot_read_is_logged_with_the_clients_address(module_daemon):
    """A router that does not show up because it speaks TLS to the plain-HTTP port, or
    sends what is no HTTP request: the operator finds it in the log by its address."""
    daemon = module_daemon
    for url, data in (
        (daemon.cwmp_url, _client_hello()),
        (daemon.api_url, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n"),
    ):
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(data)
            assert sock.recv(4096).split(b"\r\n")[0].endswith(b" 400 Bad Request")
    lines = wait_for(lambda: len(daemon.events("client_request_unreadable")) >= 2 and
                     daemon.events("client_request_unreadable"))  # fmt: skip
    assert all(e["remote"] == "127.0.0.1" and e["level"] == "info" for e in lines), lines
    assert any("HTTPS traffic on an HTTP port" in e["reason"] for e in lines), lines
    assert any("Content-Length" in e["reason"] for e in lines), lines


def test_a_line_that_cannot_be_written_is_lost_not_raised():
    # stderr in a file on a full disk (here /dev/full, which refuses every write) or a
    # closed pipe: the task that logged must go on (the store's writer died of it).
    logger = acsd_log.get_logger("t")
    full = open("/dev/full", "w", buffering=1)  # noqa: SIM115 (closed below, as it can be)
    acsd_log.configure("debug", "json", full)
    logger.warning("store.write_failed", error="no space left on device")
    logger.info("session.end")
    logging.getLogger("aiohttp.server").error("stdlib too")
    with contextlib.suppress(OSError):  # what is left in its buffer cannot go either
        full.close()
    closed = io.StringIO()
    acsd_log.configure("debug", "json", closed)
    closed.close()
    logger.error("after.close")


def test_once_tells_each_key_the_first_time_and_starts_over_past_its_bound():
    from acsd.log import Once

    once = Once(most=3)
    assert [once.first(k) for k in ("a", "b", "a", ("x", 1), ("x", 1))] == [
        True, True, False, True, False,
    ]  # fmt: skip
    # a fourth key starts over: what it held is told again (a bound, not a leak)
    assert once.first("d") is True and once.first("a") is True and once.first("d") is False


def test_what_the_command_line_prints_under_journald_has_a_priority_too(tmp_path: Path):
    # `acsd: config error: ...` (the line an operator needs when the service will not start)
    # went to the journal at info: `journalctl -u acsd -p warning` did not show it.
    import subprocess

    from conftest import REPO, acsd_cmd

    config = tmp_path / "acsd.toml"
    config.write_text('[cwmp]\nperiodic_interval = "300"\n')
    journal = tmp_path / "journal"
    with open(journal, "w") as stream:
        st = os.fstat(stream.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        proc = subprocess.run(
            acsd_cmd("config", "check", "--config", str(config)), stderr=stream,
            stdout=subprocess.DEVNULL, env=env, cwd=REPO, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 2
    [line] = journal.read_text().splitlines()
    assert line.startswith("<3>acsd: config error: ") and "periodic_interval" in line, line
    # a warning is one, and what already has a priority keeps it
    config.write_text('[store]\nurl = "sqlite:////nonexistent-dir/acsd.db"\n')
    with open(journal, "w") as stream:
        st = os.fstat(stream.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        subprocess.run(
            acsd_cmd("config", "check", "--config", str(config)), stderr=stream,
            stdout=subprocess.DEVNULL, env=env, cwd=REPO, timeout=60,
        )  # fmt: skip
    lines = journal.read_text().splitlines()
    assert lines and all(x.startswith("<4>acsd: warning: ") for x in lines), lines
