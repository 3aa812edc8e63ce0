"""CPE authentication on the CWMP listener ([cwmp.auth]): Basic and Digest, shared and
per-device credentials, against the daemon as a subprocess.

Authorization headers are built here with hashlib (RFC 7616 / 7617), independently of
acsd.cwmp.auth. "Nothing recorded" is checked with ``acsd device list --json``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import re
import socket
import time

import pytest

from conftest import Daemon, run_cli, wait_for, write_config
from test_cwmp_protocol import drive_to_end
from wire import Answer, Wire, envelope, expect_continue, inform_body, read_until

PASSWORD = "s3cret-pw"
DIGEST = {"scheme": "digest", "password": PASSWORD}
HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


# --- building and reading headers by hand -------------------------------------------------


def challenges(answer: Answer) -> list[dict[str, str]]:
    """Each WWW-Authenticate header as {"scheme": ..., params...}."""
    out = []
    for value in answer.headers.get_all("WWW-Authenticate") or []:
        scheme, _, rest = value.partition(" ")
        params = {
            k.lower(): v.strip('"') for k, v in re.findall(r'([\w-]+)=("[^"]*"|[^,\s]+)', rest)
        }
        out.append({"scheme": scheme, **params})
    return out


def digest_header(
    challenge: dict[str, str],
    username: str,
    password: str,
    *,
    uri: str = "/",
    nc: int = 1,
    cnonce: str = "0a4f113b",
    realm: str | None = None,
    algorithm: str | None = None,
) -> str:
    algorithm = algorithm or challenge.get("algorithm", "MD5")
    realm = challenge["realm"] if realm is None else realm
    h = HASHES[algorithm.removesuffix("-sess")]

    def hx(text: str) -> str:
        return h(text.encode()).hexdigest()

    nonce = challenge["nonce"]
    ha1 = hx(f"{username}:{realm}:{password}")
    if algorithm.endswith("-sess"):
        ha1 = hx(f"{ha1}:{nonce}:{cnonce}")
    ha2 = hx(f"POST:{uri}")
    response = hx(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'algorithm={algorithm}, qop=auth, nc={nc:08x}, cnonce="{cnonce}", response="{response}"'
    )


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def inform(serial: str) -> bytes:
    return envelope(inform_body(serial))


def devices(daemon: Daemon, *serials: str) -> list:
    """The devices recorded; with ``serials``: those of them only (on a shared daemon,
    whose store holds other tests' devices too)."""
    found = json.loads(daemon.cli("device", "list", "--json").stdout)
    if serials:
        wanted = {s.lower() for s in serials}
        found = [d for d in found if d["serialNumber"].lower() in wanted]
    return found


_SOURCES = (f"127.0.0.{n}" for n in itertools.count(10))


@pytest.fixture
def source() -> str:
    """A loopback address no other test of this module connects from. On a shared daemon
    what is kept per address stays the test's own: the failure limiter's counts, the nonces
    (bound to the address they were issued to), and the open sessions a cookieless request
    is matched to. (The simulator and ``Since`` connect from 127.0.0.1.)"""
    return next(_SOURCES)


def acs(daemon_factory, auth: dict) -> Daemon:
    """The daemon with ``[cwmp.auth]`` = ``auth`` (and no wait for open sessions at exit)."""
    return daemon_factory(cwmp={"auth": auth}, top={"shutdown_grace": 0})


class Since:
    """A daemon that several tests share (one per ``[cwmp.auth]``, see ``shared_acs``) as one
    of them sees it: its log from the test's start on. The start is marked by a challenge the
    test provokes (nothing is recorded for it): every line before it in the log came earlier.
    """

    log_text = Daemon.log_text

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        before = len(daemon.lines)
        assert Wire(daemon.cwmp_url).post(inform("MARK")).status == 401

        def marked() -> int:
            lines = daemon.lines[before:]
            seen = [n for n, line in enumerate(lines) if '"cwmp.auth_challenge"' in line]
            return seen and before + seen[-1] + 1

        self.start = wait_for(marked)

    @property
    def lines(self) -> list[str]:
        return self.daemon.lines[self.start :]

    def events(self, name: str) -> list[dict]:
        """The events ``name`` of this test's lines only (Daemon.events keeps what it
        parsed of the whole log)."""
        out = []
        for line in self.lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("event") == name:
                out.append(entry)
        return out

    def __getattr__(self, name: str):
        return getattr(self.daemon, name)


def shared_acs(module_daemon_factory, auth: dict) -> Since:
    """The module's daemon with ``[cwmp.auth]`` = ``auth``, shared by the tests that ask for
    the same ``auth``. Each records serials of its own and reads the store for those only
    (``devices(daemon, *serials)``), and looks at its own log lines only. Each connects from
    an address of its own (``source``) where it counts failures or leaves a session open;
    what the simulator and ``Since`` send comes from 127.0.0.1, where failed checks add up
    in one limiter (``max_failures``, 10 a minute): keep those well under it.
    """
    return Since(acs(module_daemon_factory, auth))


def logged(daemon: Daemon, event: str, count: int = 1) -> list[dict]:
    """The daemon's ``event`` lines, once ``count`` of them have arrived."""
    return wait_for(lambda: len(daemon.events(event)) >= count and daemon.events(event))


def closes(answer: Answer) -> bool:
    return (answer.headers.get("Connection") or "").lower() == "close"


def first_challenge(
    daemon: Daemon, serial: str = "AUTH0001", source: str | None = None
) -> tuple[Wire, Answer]:
    wire = Wire(daemon.cwmp_url, source=source)
    answer = wire.post(inform(serial))
    assert answer.status == 401, answer.text
    return wire, answer


def sim(daemon: Daemon, *args: str) -> tuple[int, str]:
    # --once: one session per router, 10 s a message at most, so bounded
    args = ("sim", "--acs", daemon.cwmp_url, "--once", "--timeout", "10", *args)
    proc = run_cli(*args, bounded=True)
    return proc.returncode, proc.stdout + proc.stderr


# --- a simulated CPE completes its sessions ------------------------------------------------


@pytest.mark.parametrize(
    ("algorithms", "expected"),
    [(["MD5"], "MD5"), (["SHA-256"], "SHA-256"), (["SHA-256", "MD5"], "SHA-256")],
)
def test_simulated_cpes_pass_digest_with_a_shared_password(daemon_factory, algorithms, expected):
    daemon = acs(daemon_factory, {**DIGEST, "algorithms": algorithms})
    code, out = sim(
        daemon,
        "--count",
        "2",
        "--profile",
        "tr181-mobile,tr098-dsl",
        "--serial-prefix",
        "DIG",
        "--acs-username",
        "{serial}",
        "--acs-password",
        PASSWORD,
    )
    assert code == 0, out
    assert "2 sessions ok, 0 failed" in out
    assert sorted(d["serialNumber"] for d in devices(daemon)) == ["DIG000001", "DIG000002"]
    used = {e["method"] for e in logged(daemon, "cwmp.auth_ok", 2)}
    assert used == {expected}
    # one challenge per algorithm, in the configured order, one nonce for all
    _wire, answer = first_challenge(daemon, "OTHER1")
    offered = challenges(answer)
    assert [c["algorithm"] for c in offered] == algorithms
    assert all(c["scheme"] == "Digest" and c["qop"] == "auth" for c in offered)
    assert len({c["nonce"] for c in offered}) == 1
    assert len(base64.urlsafe_b64decode(offered[0]["nonce"] + "==")) >= 16


#: Basic with a shared password over plain HTTP, shared by the tests that use it
BASIC_CLEARTEXT = {"scheme": "basic", "password": PASSWORD, "allow_basic_without_tls": True}


def test_simulated_cpes_pass_basic_when_allowed_over_plain_http(module_daemon_factory):
    # shared: its start-up lines are in the whole log, the rest in the test's own
    started = acs(module_daemon_factory, BASIC_CLEARTEXT)
    assert started.events("cwmp.auth_basic_cleartext")[0]["level"] == "warning"
    daemon = Since(started)
    code, out = sim(
        daemon,
        "--serial-prefix",
        "BAS",
        "--acs-username",
        "{serial}",
        "--acs-password",
        PASSWORD,
    )
    assert code == 0, out
    assert [d["serialNumber"] for d in devices(daemon, "BAS000001")] == ["BAS000001"]
    assert {e["method"] for e in logged(daemon, "cwmp.auth_ok")} == {"Basic"}
    _wire, answer = first_challenge(daemon, "OTHER1")
    assert challenges(answer) == [{"scheme": "Basic", "realm": "acsd", "charset": "UTF-8"}]


def test_basic_over_plain_http_is_refused_unless_allowed(daemon_factory, tmp_path):
    # Behind a TLS proxy whose word acsd takes: a request that did not come through it
    # over TLS (no X-Forwarded-Proto https) is plain HTTP.
    daemon = daemon_factory(
        cwmp={"auth": {"scheme": "basic", "password": PASSWORD}, "trust_forwarded": True},
        top={"shutdown_grace": 0},
    )
    wire = Wire(daemon.cwmp_url)
    for headers in ({}, {"Authorization": basic_header("BAS1", PASSWORD)}):
        answer = wire.post(inform("BAS1"), headers=headers)
        assert answer.status == 403 and "TLS" in answer.text
        assert not answer.headers.get_all("WWW-Authenticate")  # never invite a clear password
    assert devices(daemon) == []
    # With no TLS of its own nor a proxy's, no router could ever get in: the file is
    # refused before anything starts, saying what to set.
    path = write_config(tmp_path, cwmp={"auth": {"scheme": "basic", "password": PASSWORD}})
    checked = run_cli("config", "check", "--config", str(path))
    assert checked.returncode == 2
    assert 'auth.scheme "basic" is taken over TLS only' in checked.stderr
    assert "cwmp.tls" in checked.stderr and PASSWORD not in checked.stderr


#: per-device entries for test_an_inform_for_another_serial_is_refused_and_not_recorded
#: (in the Digest file, whose daemon it shares)
LISTED = ("DEV-A", "STRASSE1")
#: entries under the usernames TR-069 (3.4.4) recommends: OUI-Serial, OUI-ProductClass-Serial
TR069_USERNAMES = ("00D09E-OUIDEV01", "00D09E-TestBox-OUIDEV02")


def _credentials_file(tmp_path, scheme: str) -> str:
    """Three per-device entries, in the forms the scheme can verify: a clear password, then
    HA1 hashes (Digest) or PBKDF2 hashes (Basic, as a string and as a table); Digest's
    also has the ``LISTED`` ones, with password "pw-a"."""

    def ha1(name: str, algorithm: str) -> str:
        return HASHES[algorithm](f"{name}:acsd:pw-{name}".encode()).hexdigest()

    def pbkdf2(name: str) -> str:
        salt = "c2FsdHNhbHQ" + name
        derived = hashlib.pbkdf2_hmac("sha256", f"pw-{name}".encode(), salt.encode(), 1000)
        return f"pbkdf2_sha256$1000${salt}${base64.b64encode(derived).decode()}"

    lines = ['realm = "acsd"', "[devices]", 'PDV000001 = "pw-PDV000001"']
    if scheme == "digest":
        lines += [
            f'PDV000002 = {{ ha1_md5 = "{ha1("PDV000002", "MD5")}", '
            f'ha1_sha256 = "{ha1("PDV000002", "SHA-256")}" }}',
            'PDV000003 = { password = "pw-PDV000003" }',
            *(f'{serial} = "pw-a"' for serial in LISTED),
            *(f'"{username}" = "pw-a"' for username in TR069_USERNAMES),
        ]
    else:
        lines += [
            f'PDV000002 = "{pbkdf2("PDV000002")}"',
            f'PDV000003 = {{ pbkdf2_sha256 = "{pbkdf2("PDV000003")}" }}',
        ]
    path = tmp_path / "cpe-credentials.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def digest_devices(tmp_path_factory) -> dict:
    """``[cwmp.auth]`` with the Digest credentials file (one per module: the tests using it
    share a daemon)."""
    path = _credentials_file(tmp_path_factory.mktemp("digest-devices"), "digest")
    return {"scheme": "digest", "credentials_file": path}


PDV = ("PDV000001", "PDV000002", "PDV000003")


@pytest.mark.parametrize("scheme", ["digest", "basic"])
def test_per_device_credentials_from_a_file(
    daemon_factory, module_daemon_factory, digest_devices, tmp_path, scheme
):
    if scheme == "digest":
        daemon = shared_acs(module_daemon_factory, digest_devices)
    else:
        auth = {"scheme": scheme, "credentials_file": _credentials_file(tmp_path, scheme)}
        daemon = acs(daemon_factory, {**auth, "allow_basic_without_tls": True})
    args = ["--count", "3", "--serial-prefix", "PDV", "--acs-username", "{serial}"]
    code, out = sim(daemon, *args, "--acs-password", "pw-{serial}")
    assert code == 0, out
    assert len(devices(daemon, *PDV)) == 3

    # another device's password is no good, and neither is a shared one (none configured)
    wire, answer = first_challenge(daemon, "PDV000001")
    if scheme == "digest":
        header = digest_header(challenges(answer)[-1], "PDV000001", "pw-PDV000002")
    else:
        header = basic_header("PDV000001", "pw-PDV000002")
    assert wire.post(inform("PDV000001"), headers={"Authorization": header}).status == 401


@pytest.mark.parametrize(
    ("listed", "other"),
    [
        ("DEV-A", "DEV-B"),
        # "STRAßE1" and "STRASSE1" are two records for the store (it compares lower case)
        ("STRASSE1", "STRA\u00dfE1"),
    ],
)
def test_an_inform_for_another_serial_is_refused_and_not_recorded(
    module_daemon_factory, digest_devices, source, listed, other
):
    assert listed in LISTED and other not in LISTED  # the file lists one of the two only
    daemon = shared_acs(module_daemon_factory, digest_devices)
    wire, answer = first_challenge(daemon, other, source)
    header = digest_header(challenges(answer)[-1], listed, "pw-a")
    refused = wire.post(inform(other), headers={"Authorization": header})
    assert refused.status == 403 and closes(refused)
    assert devices(daemon, other, listed) == []
    # the line names the router the Inform was for, as an operator searches by its serial
    lines = wait_for(
        lambda: [e for e in daemon.events("cwmp.auth_refused") if e.get("serial") == other]
    )
    assert [e["username"] for e in lines] == [listed], lines
    # the same credentials for their own serial (any case) work
    wire = Wire(daemon.cwmp_url, source=source)
    answer = wire.post(inform(listed.lower()))
    header = digest_header(challenges(answer)[-1], listed, "pw-a")
    assert wire.post(inform(listed.lower()), headers={"Authorization": header}).status == 200


def test_tr069s_default_usernames_name_the_router(module_daemon_factory, digest_devices, source):
    """Firmware that was never given a username uses TR-069's default, OUI-[ProductClass-]
    SerialNumber (a Thomson SpeedTouch sends "00147F-CP0611JTLNW"): an entry under that
    name opens the sessions of that router, and of no other."""
    daemon = shared_acs(module_daemon_factory, digest_devices)
    for username, serial in zip(TR069_USERNAMES, ("OUIDEV01", "OUIDEV02"), strict=True):
        wire, answer = first_challenge(daemon, serial, source)
        header = digest_header(challenges(answer)[-1], username, "pw-a")
        ok = wire.post(inform(serial), headers={"Authorization": header})
        assert ok.status == 200 and b"InformResponse" in ok.body, ok.text
        drive_to_end(wire, wire.post(None), "urn:dslforum-org:cwmp-1-0")
    assert [d["serialNumber"] for d in devices(daemon, "OUIDEV01", "OUIDEV02")] == [
        "OUIDEV01",
        "OUIDEV02",
    ]
    # the same name from a router of another OUI, or with another serial, is someone else
    for body in (
        inform_body("OUIDEV01", oui="A0B1C2"),
        inform_body("OUIDEV03"),
        inform_body("OUIDEV02", product_class="OtherBox"),
    ):
        wire = Wire(daemon.cwmp_url, source=source)
        answer = wire.post(envelope(body))
        username = TR069_USERNAMES[1 if "OtherBox" in body else 0]
        header = digest_header(challenges(answer)[-1], username, "pw-a")
        assert wire.post(envelope(body), headers={"Authorization": header}).status == 403
    assert devices(daemon, "OUIDEV03") == []


def test_a_shared_password_takes_tr069s_default_username(module_daemon_factory):
    daemon = shared_acs(module_daemon_factory, DIGEST)
    args = ["--serial-prefix", "OUS", "--acs-username", "{oui}-{serial}"]
    code, out = sim(daemon, *args, "--acs-password", PASSWORD)
    assert code == 0, out
    code, out = sim(daemon, *args[:2], "--acs-username", "{oui}-{productClass}-{serial}",
                    "--serial-prefix", "OUT", "--acs-password", PASSWORD)  # fmt: skip
    assert code == 0, out
    found = devices(daemon, "OUS000001", "OUT000001")
    assert sorted(d["serialNumber"] for d in found) == ["OUS000001", "OUT000001"]


#: a fixed shared username, shared by the tests that use it (the bad-credentials ones need
#: MD5 alone, to send an algorithm not offered; which one the simulator answers is all the
#: same to the fixed-username test)
FIXED_USER = {**DIGEST, "username": "cpe", "algorithms": ["MD5"]}


def test_a_fixed_shared_username_is_not_bound_to_a_serial(module_daemon_factory):
    daemon = shared_acs(module_daemon_factory, FIXED_USER)
    code, out = sim(
        daemon, "--serial-prefix", "FIX", "--acs-username", "cpe", "--acs-password", PASSWORD
    )
    assert code == 0, out
    code, out = sim(
        daemon, "--serial-prefix", "FIY", "--acs-username", "{serial}", "--acs-password", PASSWORD
    )
    assert code != 0  # the username must be "cpe"
    found = devices(daemon, "FIX000001", "FIY000001")
    assert [d["serialNumber"] for d in found] == ["FIX000001"]


def test_a_wrong_password_fails_the_simulated_session(module_daemon_factory):
    daemon = shared_acs(module_daemon_factory, DIGEST)
    args = ["--serial-prefix", "WPW", "--acs-username", "{serial}", "--acs-password", "nope"]
    code, out = sim(daemon, *args)
    assert code != 0 and "401" in out
    assert devices(daemon, "WPW000001") == []
    failed = logged(daemon, "cwmp.auth_failed")
    assert failed[0]["reason"] == "wrong password" and failed[0]["level"] == "warning"
    assert "remote" in failed[0]
    assert "nope" not in daemon.log_text()


# --- refusals: 401, a fresh challenge, nothing recorded ------------------------------------


def test_missing_header_gets_a_challenge_and_the_connection_stays_open(
    module_daemon_factory, source
):
    daemon = shared_acs(module_daemon_factory, DIGEST)
    wire, answer = first_challenge(daemon, "HDR0001", source)
    assert answer.body == b"" and not closes(answer)
    sock = wire.conn.sock
    header = digest_header(challenges(answer)[-1], "HDR0001", PASSWORD)
    ok = wire.post(inform("HDR0001"), headers={"Authorization": header})
    assert ok.status == 200 and b"InformResponse" in ok.body
    assert wire.conn.sock is sock  # answered on the same connection
    # the rest of the session rides on the authenticated connection, without a header
    drive_to_end(wire, wire.post(None), "urn:dslforum-org:cwmp-1-0")
    # a new connection authenticates again
    other = Wire(daemon.cwmp_url, source=source)
    assert other.post(None).status == 401
    assert [d["serialNumber"] for d in devices(daemon, "HDR0001")] == ["HDR0001"]


def test_nothing_is_recorded_without_credentials(module_daemon_factory, source):
    daemon = shared_acs(module_daemon_factory, DIGEST)
    for serial in ("NOC0001", "NOC0002"):
        wire = Wire(daemon.cwmp_url, source=source)
        for _ in range(3):
            answer = wire.post(inform(serial))
            assert answer.status == 401 and challenges(answer)
    assert devices(daemon, "NOC0001", "NOC0002") == []
    assert not daemon.events("cwmp.auth_failed")  # a missing header is no failure


def _refused(answer: Answer, used_nonce: str, *, stale: bool = False) -> None:
    assert answer.status == 401, answer.text
    assert answer.body == b""
    fresh = challenges(answer)
    assert fresh and all(c["nonce"] != used_nonce for c in fresh)
    assert all(c.get("stale", "false") == ("true" if stale else "false") for c in fresh)


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        ("wrong password", {"password": "not-it"}),
        ("wrong realm", {"realm": "elsewhere"}),
        ("uri mismatch", {"uri": "/other"}),
        ("unknown user", {"username": ""}),
        ("algorithm not offered", {"algorithm": "SHA-256"}),
    ],
)
def test_bad_digest_credentials_get_401_close_and_a_fresh_challenge(
    module_daemon_factory, source, case, changes
):
    daemon = shared_acs(module_daemon_factory, FIXED_USER)
    wire, answer = first_challenge(daemon, "AUTH0001", source)
    challenge = challenges(answer)[0]
    kwargs = {k: v for k, v in changes.items() if k in ("uri", "realm", "algorithm")}
    header = digest_header(
        challenge,
        changes.get("username", "cpe"),
        changes.get("password", PASSWORD),
        **kwargs,
    )
    answer = wire.post(inform("AUTH0001"), headers={"Authorization": header})
    _refused(answer, challenge["nonce"])
    assert closes(answer)
    failed = logged(daemon, "cwmp.auth_failed")
    assert len(failed) == 1 and failed[0]["reason"].startswith(case.split()[0])
    assert devices(daemon, "AUTH0001") == []


#: a low failure limit, shared by the tests of it (each counts from an address of its own)
RATE_LIMITED = {**DIGEST, "max_failures": 3, "failure_window": 30, "max_failures_per_address": 6}

#: nonces that expire soon, for the stale-nonce tests (which share the daemon, each from an
#: address of its own: nonces are bound to it)
SHORT_NONCES = {**DIGEST, "nonce_lifetime": 0.5}


def test_a_stale_nonce_gets_a_challenge_with_stale_true(module_daemon_factory, source):
    daemon = shared_acs(module_daemon_factory, SHORT_NONCES)
    wire, answer = first_challenge(daemon, "AUTH0001", source)
    challenge = challenges(answer)[-1]
    time.sleep(0.7)
    header = digest_header(challenge, "AUTH0001", PASSWORD)
    answer = wire.post(inform("AUTH0001"), headers={"Authorization": header})
    _refused(answer, challenge["nonce"], stale=True)
    assert not closes(answer)  # the CPE did nothing wrong: it retries on this connection
    assert devices(daemon, "AUTH0001") == []
    # ...with the fresh nonce, which works. Valid for 0.5 s from the challenge: on a loaded
    # machine the retry may come later, and then it is stale in its turn (and only stale:
    # the password is right), so the CPE retries again, as a real one does.
    for _ in range(5):
        header = digest_header(challenges(answer)[-1], "AUTH0001", PASSWORD)
        retried = wire.post(inform("AUTH0001"), headers={"Authorization": header})
        if retried.status == 200:
            break
        _refused(retried, challenges(answer)[-1]["nonce"], stale=True)
        answer = retried
    assert retried.status == 200


def test_a_stale_nonce_with_a_wrong_password_is_a_plain_failure(module_daemon_factory, source):
    daemon = shared_acs(module_daemon_factory, SHORT_NONCES)
    wire, answer = first_challenge(daemon, "AUTH0002", source)
    challenge = challenges(answer)[-1]
    time.sleep(0.7)
    header = digest_header(challenge, "AUTH0002", "wrong")
    answer = wire.post(inform("AUTH0002"), headers={"Authorization": header})
    _refused(answer, challenge["nonce"], stale=False)
    assert closes(answer)


def test_a_reused_nonce_count_gets_a_fresh_challenge_not_a_failure(module_daemon_factory, source):
    """A correct digest with a count already used is not accepted again, but it proves the
    password: firmware that opens a connection per message and sends its cached nonce
    with nc=1 each time gets a fresh nonce (stale=true), is not counted toward
    max_failures, and so never locks out the routers behind its address (CGNAT)."""
    daemon = shared_acs(module_daemon_factory, RATE_LIMITED)  # max_failures 3
    wire, answer = first_challenge(daemon, "REU0001", source)
    challenge = challenges(answer)[-1]
    header = digest_header(challenge, "REU0001", PASSWORD, nc=1)
    # nc=1 is used once (an empty POST: authenticated, but no session, so nothing recorded)
    assert wire.post(None, headers={"Authorization": header}).status == 400
    for _ in range(5):  # the same request again, from new connections: past max_failures
        replay = Wire(daemon.cwmp_url, source=source).post(
            inform("REU0001"), headers={"Authorization": header}
        )
        _refused(replay, challenge["nonce"], stale=True)
        assert not closes(replay)
    older = digest_header(challenge, "REU0001", PASSWORD, nc=1, cnonce="other")
    again = Wire(daemon.cwmp_url, source=source)
    replay = again.post(inform("REU0001"), headers={"Authorization": older})
    _refused(replay, challenge["nonce"], stale=True)
    assert devices(daemon, "REU0001") == []
    assert daemon.events("cwmp.auth_failed") == []
    # the fresh nonce works on the same connection, as any stale one's
    fresh = digest_header(challenges(replay)[-1], "REU0001", PASSWORD, nc=1)
    assert again.post(inform("REU0001"), headers={"Authorization": fresh}).status == 200
    # a higher count with the first nonce is fine too
    newer = digest_header(challenge, "REU0001", PASSWORD, nc=2)
    assert (
        Wire(daemon.cwmp_url, source=source)
        .post(inform("REU0001"), headers={"Authorization": newer})
        .status
        == 200
    )


def test_an_rfc2069_digest_without_qop_is_taken_once_per_nonce(module_daemon_factory, source):
    """Older CWMP clients answer without qop, nc and cnonce (RFC 2069, which RFC 2617 keeps
    for them). With no count to rise, a nonce is good for one request; the connection's
    later requests pass on its first check."""
    daemon = shared_acs(module_daemon_factory, DIGEST)
    wire, answer = first_challenge(daemon, "RFC0001", source)
    challenge = next(c for c in challenges(answer) if c.get("algorithm", "MD5") == "MD5")

    def legacy(password: str) -> str:
        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"RFC0001:{challenge['realm']}:{password}")
        response = md5(f"{ha1}:{challenge['nonce']}:{md5('POST:/')}")
        return (
            f'Digest username="RFC0001", realm="{challenge["realm"]}", '
            f'nonce="{challenge["nonce"]}", uri="/", response="{response}"'
        )

    wrong = Wire(daemon.cwmp_url, source=source).post(
        inform("RFC0001"), headers={"Authorization": legacy("x")}
    )
    _refused(wrong, challenge["nonce"])
    assert closes(wrong)
    assert wire.post(inform("RFC0001"), headers={"Authorization": legacy(PASSWORD)}).status == 200
    answer = wire.post(None)  # the same connection: no new check
    assert answer.status == 200 and b"GetParameterValues" in answer.body
    again = Wire(daemon.cwmp_url, source=source).post(
        inform("RFC0001"), headers={"Authorization": legacy(PASSWORD)}
    )
    _refused(again, challenge["nonce"], stale=True)
    assert [e["reason"] for e in daemon.events("cwmp.auth_failed")] == ["wrong password"]


def test_a_forged_nonce_is_refused(module_daemon_factory, source):
    daemon = shared_acs(module_daemon_factory, DIGEST)
    forged = {"realm": "acsd", "nonce": base64.urlsafe_b64encode(b"x" * 40).decode().rstrip("=")}
    header = digest_header({**forged, "algorithm": "MD5"}, "FRG0001", PASSWORD)
    wire = Wire(daemon.cwmp_url, source=source)
    answer = wire.post(inform("FRG0001"), headers={"Authorization": header})
    # the password is right, so the CPE may simply retry: stale=true
    _refused(answer, forged["nonce"], stale=True)
    assert devices(daemon, "FRG0001") == []


@pytest.mark.parametrize("case", ["missing", "wrong password", "malformed", "other scheme"])
def test_bad_basic_credentials_get_401_and_a_challenge(module_daemon_factory, source, case):
    daemon = shared_acs(module_daemon_factory, BASIC_CLEARTEXT)
    headers = {
        "missing": {},
        "wrong password": {"Authorization": basic_header("AUTH0001", "nope")},
        "malformed": {"Authorization": "Basic !!!not-base64"},
        "other scheme": {"Authorization": 'Digest username="AUTH0001"'},
    }[case]
    answer = Wire(daemon.cwmp_url, source=source).post(inform("AUTH0001"), headers=headers)
    assert answer.status == 401 and answer.body == b""
    assert challenges(answer)[0]["scheme"] == "Basic"
    assert closes(answer) == (case in ("wrong password", "malformed"))
    assert devices(daemon, "AUTH0001") == []


# --- rate limit ----------------------------------------------------------------------------


def test_failures_are_rate_limited_per_router_and_address(module_daemon_factory, source):
    # Everything here comes from one address (``source``), as routers behind one CGNAT
    # would; the limiter's counts for it and its usernames are this test's own.
    daemon = shared_acs(module_daemon_factory, RATE_LIMITED)
    for _ in range(3):
        wire, answer = first_challenge(daemon, "AUTH0001", source)
        header = digest_header(challenges(answer)[-1], "AUTH0001", "guess")
        assert wire.post(inform("AUTH0001"), headers={"Authorization": header}).status == 401
    # that username is refused now, right credentials are not even looked at ...
    wire, answer = first_challenge(daemon, "AUTH0001", source)
    right = digest_header(challenges(answer)[-1], "AUTH0001", PASSWORD)
    limited = wire.post(inform("AUTH0001"), headers={"Authorization": right})
    assert limited.status == 429 and closes(limited)
    assert 1 <= int(limited.headers["Retry-After"]) <= 30
    assert not limited.headers.get_all("WWW-Authenticate")
    # ... nor another spelling of it (usernames are looked up whatever their case: each
    # spelling had tries of its own)
    wire, answer = first_challenge(daemon, "auth0001", source)
    other = digest_header(challenges(answer)[-1], "auth0001", PASSWORD)
    assert wire.post(inform("AUTH0001"), headers={"Authorization": other}).status == 429
    # ... while another router behind the same address still gets in
    wire, answer = first_challenge(daemon, "AUTH0002", source)
    header = digest_header(challenges(answer)[-1], "AUTH0002", PASSWORD)
    assert wire.post(inform("AUTH0002"), headers={"Authorization": header}).status == 200
    # Guessing across usernames meets the ceiling of the address: then even a challenge
    # is refused, for every router there.
    for name in ("GUESS1", "GUESS2", "GUESS3"):
        wire, answer = first_challenge(daemon, name, source)
        header = digest_header(challenges(answer)[-1], name, "guess")
        assert wire.post(inform(name), headers={"Authorization": header}).status == 401
    limited = Wire(daemon.cwmp_url, source=source).post(inform("AUTH0003"))
    assert limited.status == 429 and closes(limited)
    assert len(logged(daemon, "cwmp.auth_failed", 6)) == 6
    rate_limited = logged(daemon, "cwmp.auth_rate_limited", 3)
    assert [e["reason"] for e in rate_limited] == [
        "too many failed attempts for this username",
        "too many failed attempts for this username",
        "too many failed attempts from this address",
    ]
    assert [e["username"] for e in rate_limited[:2]] == ["AUTH0001", "auth0001"]
    # A client locked out may go on asking at will: each gets its 429, but not a warning
    # line each (the count is in the next line, and in acsd_cwmp_auth_rate_limited_total)
    for _ in range(20):
        assert Wire(daemon.cwmp_url, source=source).post(inform("AUTH0003")).status == 429
    time.sleep(0.5)
    assert len(daemon.events("cwmp.auth_rate_limited")) == 3


# --- start-up and config -------------------------------------------------------------------


def test_scheme_none_logs_a_warning_at_start(daemon):
    warning = daemon.events("cwmp.auth_disabled")
    assert len(warning) == 1 and warning[0]["level"] == "warning"
    assert "not authenticated" in warning[0]["message"]


def test_auth_on_does_not_log_the_warning_nor_secrets(module_daemon_factory):
    daemon = acs(module_daemon_factory, DIGEST)  # shared (with its whole log, start-up on)
    assert not daemon.events("cwmp.auth_disabled")
    assert daemon.events("cwmp.auth")[0]["scheme"] == "digest"
    assert PASSWORD not in daemon.log_text()


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ('scheme = "digest"\n', "cwmp.auth: "),
        ('scheme = "basic"\nusername = "cpe"\n', "needs password or credentials_file"),
        ('scheme = "digest"\ncredentials_file = "/nonexistent/creds.toml"\n', "file not found"),
        ('scheme = "digest"\ncredentials_file = "BAD"\n', "cwmp.auth.credentials_file"),
        ('scheme = "digest"\npassword = "x"\nalgorithms = ["MD4"]\n', "cwmp.auth.algorithms"),
        ('scheme = "digest"\ncredentials_file = "MD5ONLY"\n', "needs password or ha1_sha256"),
        ('scheme = "nope"\n', "cwmp.auth.scheme"),
    ],
)
def test_bad_auth_config_is_one_line_naming_the_key(tmp_path, auth, expected):
    bad = tmp_path / "bad-creds.toml"
    bad.write_text('[devices]\nX = { ha1_md5 = "not-hex" }\n')
    md5_only = tmp_path / "md5-only.toml"
    md5_only.write_text(f'[devices]\nY = {{ ha1_md5 = "{"0" * 32}" }}\n')
    text = auth.replace('"BAD"', json.dumps(str(bad)))
    text = text.replace('"MD5ONLY"', json.dumps(str(md5_only)))
    path = tmp_path / "acsd.toml"
    path.write_text("[cwmp.auth]\n" + text)
    proc = run_cli("config", "check", "--config", str(path))
    assert proc.returncode == 2, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines
    if "BAD" in auth:
        assert "devices.X.ha1_md5" in lines[0]


def test_config_check_masks_the_shared_password(tmp_path):
    path = tmp_path / "acsd.toml"
    path.write_text(f'[cwmp.auth]\nscheme = "digest"\npassword = "{PASSWORD}"\n')
    proc = run_cli("config", "check", "--config", str(path), check=True)
    assert json.loads(proc.stdout)["cwmp"]["auth"]["password"] == "***"
    assert PASSWORD not in proc.stdout


def test_cpe_password_prints_hashes_only(tmp_path):
    import subprocess

    from conftest import REPO, acsd_cmd

    proc = subprocess.run(
        [*acsd_cmd("cpe-password", "SN-0042", "--realm", "acs.example", "--iterations", "1000")],
        input="hunter2\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "hunter2" not in proc.stdout
    import tomllib

    entry = tomllib.loads("[devices]\n" + proc.stdout)["devices"]["SN-0042"]
    assert entry["ha1_md5"] == hashlib.md5(b"SN-0042:acs.example:hunter2").hexdigest()
    assert entry["ha1_sha256"] == hashlib.sha256(b"SN-0042:acs.example:hunter2").hexdigest()
    name, iterations, salt, digest = entry["pbkdf2_sha256"].split("$")
    expected = hashlib.pbkdf2_hmac("sha256", b"hunter2", salt.encode(), int(iterations))
    assert (name, base64.b64decode(digest)) == ("pbkdf2_sha256", expected)


# --- the simulator's client side ----------------------------------------------------------


async def test_sim_client_answers_sha256_first_and_retries_a_stale_nonce_once():
    from acsd.sim.http import HttpClient

    seen: list[dict[str, str]] = []
    nonces = iter(["n1", "n2", "n3"])
    state = {"nonce": next(nonces), "stale": False, "expired_once": False}

    def check(params: dict[str, str]) -> bool:
        h = HASHES[params["algorithm"]]

        def hx(text: str) -> str:
            return h(text.encode()).hexdigest()

        ha1 = hx(f"{params['username']}:acsd:pw")
        ha2 = hx(f"POST:{params['uri']}")
        expected = hx(
            f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}:{ha2}"
        )
        return params["response"] == expected

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"Content-Length: (\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
            auth = re.search(rb"Authorization: Digest (.*)\r\n", head)
            params = {}
            if auth:
                raw = auth.group(1).decode()
                params = {
                    k: v.strip('"') for k, v in re.findall(r'([\w-]+)=("[^"]*"|[^,\s]+)', raw)
                }
                seen.append(params)
            if (
                params
                and params["nonce"] == state["nonce"]
                and not state["stale"]
                and check(params)
            ):
                if params["nc"] == "00000002" and not state["expired_once"]:
                    state["stale"] = state["expired_once"] = True  # pretend n1 expired
                else:
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                    await writer.drain()
                    continue
            stale = ", stale=true" if state["stale"] else ""
            if state["stale"]:
                state["nonce"], state["stale"] = next(nonces), False
            lines = [
                f'WWW-Authenticate: Digest realm="acsd", qop="auth", algorithm={a}, '
                f'nonce="{state["nonce"]}"{stale}\r\n'
                for a in ("SHA-256", "MD5")
            ]
            writer.write(
                b"HTTP/1.1 401 Unauthorized\r\n"
                + "".join(lines).encode()
                + b"Content-Length: 0\r\n\r\n"
            )
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        client = HttpClient(f"http://127.0.0.1:{port}/acs?x=1", credentials=("SN1", "pw"))
        assert (await client.post(b"<a/>")).status == 204  # challenge, answer
        assert (await client.post(b"")).status == 204  # nc=2 -> stale -> retried once
        assert (await client.post(b"")).status == 204  # nc=2 of the new nonce
        await client.close()
    assert [(p["nonce"], p["nc"], p["algorithm"]) for p in seen] == [
        ("n1", "00000001", "SHA-256"),
        ("n1", "00000002", "SHA-256"),
        ("n2", "00000001", "SHA-256"),
        ("n2", "00000002", "SHA-256"),
    ]
    assert {p["uri"] for p in seen} == {"/acs?x=1"}


def test_a_challenge_to_a_body_held_back_for_100_continue_closes_the_connection(
    module_daemon_factory,
):
    # The client waits for "100 Continue" before it sends the body; answered 401 instead,
    # it may send the body or not, so the connection cannot carry its next request.
    daemon = acs(module_daemon_factory, DIGEST)
    address, head = expect_continue(daemon.cwmp_url, inform("AUTH0001"))
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(head)
        answer = read_until(sock, b"\r\n\r\n")
        head_lines = answer.split(b"\r\n\r\n")[0].lower()
        assert head_lines.startswith(b"http/1.1 401")
        assert b"www-authenticate: digest" in head_lines
        assert b"connection: close" in head_lines
    # without Expect, the challenge keeps the connection for the CPE's answer
    _wire, answer = first_challenge(daemon)
    assert not closes(answer)


def test_cpe_password_takes_the_realm_of_a_config_whose_credentials_file_it_is_to_fill(
    tmp_path,
):
    # The operator names credentials_file in the config, keeps the shared password in
    # /etc/acsd/acsd.env, and runs `acsd cpe-password SERIAL --config ...` to write the
    # file's first entry: it refused, the file it is to fill being "not found".
    import subprocess

    from conftest import REPO, acsd_cmd

    path = tmp_path / "acsd.toml"
    path.write_text(
        '[cwmp.auth]\nscheme = "digest"\nrealm = "acs.example"\n'
        f'credentials_file = "{tmp_path}/cpe-credentials.toml"\n'
    )
    proc = subprocess.run(
        acsd_cmd("cpe-password", "SN-0042", "--config", str(path), "--iterations", "1000"),
        input="hunter2\n", capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    import tomllib

    entry = tomllib.loads("[devices]\n" + proc.stdout)["devices"]["SN-0042"]
    assert entry["ha1_md5"] == hashlib.md5(b"SN-0042:acs.example:hunter2").hexdigest()
    # a config that is wrong in itself is still refused
    path.write_text("[cwmp.auth]\nrealm = 5\n")
    proc = subprocess.run(
        acsd_cmd("cpe-password", "SN-0042", "--config", str(path), "--iterations", "1000"),
        input="hunter2\n", capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "cwmp.auth.realm" in proc.stderr


def test_cpe_password_refuses_a_realm_config_check_refuses():
    """A line made for realm 'a"b' matches no daemon: config check refuses that realm."""
    import subprocess

    from conftest import REPO, acsd_cmd

    for realm, message in {
        'a"b': "no double quote, backslash or control character",
        "a\\b": "no double quote, backslash or control character",
        "": "String should have at least 1 character",
        "r" * 129: "String should have at most 128 characters",
    }.items():
        proc = subprocess.run(
            acsd_cmd("cpe-password", "SN-0042", "--realm", realm, "--iterations", "1000"),
            input="hunter2\n", capture_output=True, text=True, cwd=REPO, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 2 and proc.stdout == "", realm
        [line] = proc.stderr.splitlines()
        assert line.startswith(f"acsd: --realm: {message}"), (realm, line)


def test_cpe_password_refuses_a_serial_the_credentials_file_refuses():
    """The line printed for " SN-0042" would stop the daemon at its next start."""
    import subprocess

    from conftest import REPO, acsd_cmd

    proc = subprocess.run(
        acsd_cmd("cpe-password", "SN-0042\n", "--realm", "acsd", "--iterations", "1000"),
        input="hunter2\n", capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        "acsd: SERIAL 'SN-0042\\n': serial number must not begin or end with spaces nor "
        "hold control characters (a line break, a tab)\n"
    )


def test_a_digest_response_that_is_not_utf8_is_401_not_500(module_daemon_factory, source):
    # aiohttp hands header bytes that are not UTF-8 over as lone surrogates; the response
    # was compared as UTF-8 and failed to encode (500), where a wrong digest is 401
    daemon = shared_acs(module_daemon_factory, DIGEST)
    _, answer = first_challenge(daemon, "AUTH0009", source)
    nonce = challenges(answer)[0]["nonce"].encode()
    auth = (
        b'Digest username="cpe", realm="acsd", nonce="' + nonce + b'", uri="/", '
        b'response="\xff\xfe", qop=auth, nc=00000001, cnonce="a"'
    )
    body = inform("AUTH0009")
    host, port = daemon.cwmp_url.split("//")[1].strip("/").rsplit(":", 1)
    with socket.create_connection((host, int(port)), 10, (source, 0)) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
            b"Authorization: " + auth + b"\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n" + body
        )  # fmt: skip
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.split(b"\r\n", 1)[0] == b"HTTP/1.1 401 Unauthorized", reply[:300]
    assert devices(daemon, "AUTH0009") == []


def _session_done(daemon, serial: str, source: str) -> Wire:
    """A connection on which ``serial`` authenticated and ended its session (the cookie
    dropped, as a proxy's next router would have none)."""
    wire, answer = first_challenge(daemon, serial, source)
    header = digest_header(challenges(answer)[-1], serial, PASSWORD)
    assert wire.post(inform(serial), headers={"Authorization": header}).status == 200
    drive_to_end(wire, wire.post(None), "urn:dslforum-org:cwmp-1-0")
    wire.cookie = None
    return wire


def test_a_second_router_on_an_authenticated_connection_is_checked_by_its_own_header(
    module_daemon_factory, source
):
    """A proxy with upstream keep-alive (trust_forwarded off: it adds no X-Forwarded-For)
    sends a second router's session down the connection the first one authenticated. Its
    own valid Authorization header used to be ignored for the first router's cached
    identity: 403 "authenticated as 'PRX1000A'", and a failure counted against PRX1000A
    (enough of them lock PRX1000A out of that address with 429)."""
    daemon = shared_acs(module_daemon_factory, DIGEST)
    wire = _session_done(daemon, "PRX1000A", source)
    # The second router's nonce (the proxy passed its first request on another connection).
    _other, answer = first_challenge(daemon, "PRX1000B", source)
    header = digest_header(challenges(answer)[-1], "PRX1000B", PASSWORD)
    answer = wire.post(inform("PRX1000B"), headers={"Authorization": header})
    assert answer.status == 200, answer.text
    drive_to_end(wire, wire.post(None), "urn:dslforum-org:cwmp-1-0")
    assert sorted(d["serialNumber"] for d in devices(daemon, "PRX1000A", "PRX1000B")) == [
        "PRX1000A",
        "PRX1000B",
    ]
    assert not daemon.events("cwmp.auth_refused")


def test_a_second_router_without_credentials_on_an_authenticated_connection_is_challenged(
    module_daemon_factory, source
):
    """As above, but the second router's Inform comes as a CPE's first request does, with
    no Authorization header. It used to pass as the first router and get 403 (with a
    failure counted against that router) where a challenge was due."""
    daemon = shared_acs(module_daemon_factory, DIGEST)
    wire = _session_done(daemon, "PRX2000A", source)
    answer = wire.post(inform("PRX2000B"))
    assert answer.status == 401 and challenges(answer), answer.text
    header = digest_header(challenges(answer)[-1], "PRX2000B", PASSWORD)
    assert wire.post(inform("PRX2000B"), headers={"Authorization": header}).status == 200
    drive_to_end(wire, wire.post(None), "urn:dslforum-org:cwmp-1-0")
    assert sorted(d["serialNumber"] for d in devices(daemon, "PRX2000A", "PRX2000B")) == [
        "PRX2000A",
        "PRX2000B",
    ]
    assert not daemon.events("cwmp.auth_refused")


def test_a_digest_uri_of_the_path_is_taken_for_an_absolute_form_request(
    module_daemon_factory, source
):
    """RFC 9112 3.2.2: a server accepts a request-target in absolute form (a CPE set to go
    through an HTTP proxy writes one; a proxy may pass it on as it is). The CPE's Digest
    uri then holds its path: the check compared it with the whole URL, so a correct
    password was a failure (401, Connection: close, counted toward the lockout)."""
    daemon = shared_acs(module_daemon_factory, DIGEST)
    host, port = daemon.cwmp_url.split("//")[1].rstrip("/").split(":")
    absolute = f"http://{host}:{port}/"
    body = inform("ABS0001")

    def post(sock: socket.socket, authorization: str | None) -> bytes:
        lines = [f"POST {absolute} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}"]
        if authorization:
            lines.append(f"Authorization: {authorization}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return read_until(sock, b"\r\n\r\n")

    with socket.create_connection((host, int(port)), 5, (source, 0)) as sock:
        head = post(sock, None).decode()
        assert head.startswith("HTTP/1.1 401"), head
        nonce = re.search(r'nonce="([^"]+)"', head).group(1)
        challenge = {"realm": "acsd", "nonce": nonce, "algorithm": "MD5"}
        head = post(sock, digest_header(challenge, "ABS0001", PASSWORD, uri="/")).decode()
        assert head.startswith("HTTP/1.1 200"), head


# --- an Authorization header sent twice --------------------------------------------------


@pytest.mark.parametrize("newest", ["last", "first"])
def test_a_repeated_digest_header_passes_on_the_answer_that_verifies(
    module_daemon_factory, source, newest
):
    """Firmware that repeats the Authorization header after a 401 sends its earlier answer
    (here one whose nonce count was used) beside its new one: the request passes on the
    one that verifies, in whichever order they come, not on the first alone."""
    daemon = shared_acs(module_daemon_factory, DIGEST)
    serial = f"TWICE{newest.upper()}"
    wire, answer = first_challenge(daemon, serial, source)
    challenge = challenges(answer)[0]
    earlier = digest_header(challenge, serial, PASSWORD, nc=1)
    assert wire.post(None, headers={"Authorization": earlier}).status == 400  # nc=1 used
    new = digest_header(challenge, serial, PASSWORD, nc=2)
    both = [earlier, new] if newest == "last" else [new, earlier]
    answer = Wire(daemon.cwmp_url, source=source).post(
        inform(serial), headers=[("Authorization", h) for h in both]
    )
    assert answer.status == 200 and b"InformResponse" in answer.body, answer.text
    assert daemon.events("cwmp.auth_failed") == []


def test_a_repeated_basic_header_passes_on_the_one_that_verifies(module_daemon_factory, source):
    """As for Digest: one of the two verifies, the request passes; each wrong one counts
    as a failed attempt (two headers are not two guesses for one), and neither alone
    gets the request through when neither verifies."""
    daemon = shared_acs(module_daemon_factory, BASIC_CLEARTEXT)
    wrong, right = basic_header("TWICEB1", "earlier-pw"), basic_header("TWICEB1", PASSWORD)
    answer = Wire(daemon.cwmp_url, source=source).post(
        inform("TWICEB1"), headers=[("Authorization", wrong), ("Authorization", right)]
    )
    assert answer.status == 200 and b"InformResponse" in answer.body, answer.text
    other = basic_header("TWICEB1", "another-guess")
    refused = Wire(daemon.cwmp_url, source=source).post(
        inform("TWICEB1"), headers=[("Authorization", wrong), ("Authorization", other)]
    )
    assert refused.status == 401 and closes(refused)
    assert [e["reason"] for e in logged(daemon, "cwmp.auth_failed", 1)] == ["wrong password"]


def test_more_authorization_headers_than_a_retry_sends_are_refused(module_daemon_factory, source):
    """Firmware that repeats its header sends two; three different ones are a list of
    guesses, refused without checking any."""
    daemon = shared_acs(module_daemon_factory, BASIC_CLEARTEXT)
    guesses = [("Authorization", basic_header("TWICEB2", pw)) for pw in ("a", "b", PASSWORD)]
    refused = Wire(daemon.cwmp_url, source=source).post(inform("TWICEB2"), headers=guesses)
    assert refused.status == 401 and closes(refused)
    [failed] = logged(daemon, "cwmp.auth_failed", 1)
    assert failed["reason"] == "3 different Authorization headers"
    assert devices(daemon, "TWICEB2") == []


def test_what_a_cpe_writes_in_its_headers_reaches_the_log_bounded_and_printable(
    module_daemon_factory, source
):
    """A username (Basic carries any bytes) and a Content-Type are the CPE's text: in a
    log line they come with their control characters escaped (an ESC sequence would act
    on the terminal of an operator who reads the log there) and cut to a few dozen
    characters, not the 8 KB a header may hold."""
    daemon = shared_acs(module_daemon_factory, BASIC_CLEARTEXT)
    name = "\x1b[2J\x1b]0;owned\x07" + "N" * 4000
    refused = Wire(daemon.cwmp_url, source=source).post(
        inform("LOGTEXT1"), headers={"Authorization": basic_header(name, "x")}
    )
    assert refused.status == 401
    [failed] = logged(daemon, "cwmp.auth_failed", 1)
    assert failed["username"].startswith("\\x1b[2J\\x1b]0;owned\\x07NNN")
    assert len(failed["username"]) < 100
    kind = "text/" + "x" * 8000
    answer = Wire(daemon.cwmp_url, source=source).post(
        inform("LOGTEXT1"),
        headers={"Authorization": basic_header("LOGTEXT1", PASSWORD), "Content-Type": kind},
    )
    assert answer.status == 415 and len(answer.body) < 200, answer.body[:200]
    [event] = logged(daemon, "cwmp.refused", 1)
    assert event["reason"].startswith("unsupported Content-Type 'text/xxx")
    assert len(event["reason"]) < 150


def test_the_shared_password_under_another_name_of_a_router_with_its_own_entry_is_refused(
    daemon_factory, tmp_path
):
    # Whoever read the fleet's shared password out of one router logged in as a router
    # given its own password, as "OUI-Serial": no entry is keyed so, the shared password
    # answered, and the name stands for that router.
    creds = tmp_path / "creds.toml"
    creds.write_text(
        'realm = "acsd"\n[devices]\nVICTIM01 = "its-own-password"\n'
        '"00D09E-VICTIM02" = "its-own-password"\n'
    )
    daemon = acs(daemon_factory, {**DIGEST, "credentials_file": str(creds)})
    for username in ("00D09E-VICTIM01", "00D09E-TestBox-VICTIM01", "VICTIM01"):
        wire, answer = first_challenge(daemon, "VICTIM01")
        header = digest_header(challenges(answer)[-1], username, PASSWORD)
        refused = wire.post(inform("VICTIM01"), headers={"Authorization": header})
        assert refused.status in (401, 403), (username, refused.status)
    # (and an entry keyed by the OUI form: the plain serial is no way in either)
    wire, answer = first_challenge(daemon, "VICTIM02")
    header = digest_header(challenges(answer)[-1], "VICTIM02", PASSWORD)
    assert wire.post(inform("VICTIM02"), headers={"Authorization": header}).status == 403
    assert devices(daemon, "VICTIM01", "VICTIM02") == []
    # its own password opens it; the shared one still opens routers without an entry
    wire, answer = first_challenge(daemon, "VICTIM01")
    header = digest_header(challenges(answer)[-1], "VICTIM01", "its-own-password")
    assert wire.post(inform("VICTIM01"), headers={"Authorization": header}).status == 200
    wire, answer = first_challenge(daemon, "OTHER001")
    header = digest_header(challenges(answer)[-1], "00D09E-OTHER001", PASSWORD)
    assert wire.post(inform("OTHER001"), headers={"Authorization": header}).status == 200


def test_instances_given_one_nonce_key_take_each_others_nonces(daemon_factory, source, tmp_path):
    # Behind a load balancer without source affinity, a router's answer to one instance's
    # challenge often reaches another: with a key of its own each, that one challenged it
    # again, and a router whose every request goes on a new connection could not get in.
    key = "00112233445566778899aabbccddeeff" * 2
    auth = {"scheme": "digest", "password": PASSWORD, "nonce_key": key}

    def instance(name: str, auth: dict) -> Daemon:
        # (a database each: what is shown here needs no shared store)
        return daemon_factory(
            cwmp={"auth": auth},
            top={"shutdown_grace": 0},
            store={"url": f"sqlite:///{tmp_path / name}.db"},
        )

    one, other = instance("one", auth), instance("other", auth)
    _wire, answer = first_challenge(one, "KEYS0001", source)
    header = digest_header(challenges(answer)[-1], "KEYS0001", PASSWORD)
    elsewhere = Wire(other.cwmp_url, source=source)
    assert elsewhere.post(inform("KEYS0001"), headers={"Authorization": header}).status == 200
    assert key not in one.log_text() + other.log_text()
    # an instance with a key of its own (none configured) calls the nonce stale
    third = instance("third", {"scheme": "digest", "password": PASSWORD})
    _wire, answer = first_challenge(one, "KEYS0002", source)
    header = digest_header(challenges(answer)[-1], "KEYS0002", PASSWORD)
    refused = Wire(third.cwmp_url, source=source).post(
        inform("KEYS0002"), headers={"Authorization": header}
    )
    assert refused.status == 401 and challenges(refused)[-1].get("stale") == "true"
