"""CPE authentication in-process (acsd.cwmp.auth and its parts): nonce book, rate limiter,
header parsing, the credentials file, and Digest variants the daemon tests do not reach
(-sess, username*, uri forms)."""

from __future__ import annotations

import base64
import gc
import hashlib
import tracemalloc

import pytest
from aiohttp.test_utils import make_mocked_request

from acsd.config import Config, ConfigError, load_config
from acsd.cwmp.auth import CpeAuthenticator
from acsd.cwmp.auth_header import parse_auth_params
from acsd.cwmp.credentials_file import load_credentials
from acsd.cwmp.login_failures import FailureLimiter
from acsd.cwmp.nonces import NonceBook
from acsd.cwmp.passwords import Pbkdf2Hash, ha1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_nonces_are_signed_expire_and_count_up():
    clock = Clock()
    book = NonceBook(60, clock=clock)
    nonce = book.issue()
    assert len(base64.urlsafe_b64decode(nonce + "==")) == 40  # 128 random bits + time + MAC
    assert book.issue() != nonce
    assert book.use(nonce, 1) == book.FRESH
    assert book.use(nonce, 1) == book.REPLAY
    assert book.use(nonce, 3) == book.FRESH
    assert book.use(nonce, 2) == book.REPLAY
    clock.now += 61
    assert book.use(nonce, 4) == book.STALE
    assert book.use("A" + nonce[1:], 1) == book.STALE  # not ours (or an older process's)
    assert NonceBook(60, clock=clock).use(book.issue(), 1) == NonceBook.STALE
    assert book.use("", 1) == book.STALE and book.use("@@@", 1) == book.STALE


def test_nonce_book_is_bounded_and_never_reaccepts_a_forgotten_nonce():
    clock = Clock()
    book = NonceBook(60, clock=clock, max_tracked=3)
    nonces = []
    for _ in range(5):
        clock.now += 1
        nonces.append(book.issue())
    for nonce in nonces[:4]:
        assert book.use(nonce, 1) == book.FRESH
    assert len(book) == 3
    assert book.use(nonces[0], 2) == book.STALE  # forgotten: its counts are unknown
    assert book.use(nonces[4], 1) == book.FRESH  # issued later than anything forgotten
    clock.now += 120
    fresh = book.issue()
    assert book.use(fresh, 1) == book.FRESH
    assert len(book) == 1  # the expired ones were pruned


def test_failure_limiter_window():
    clock = Clock()
    limiter = FailureLimiter(3, 60, clock=clock)
    for _ in range(2):
        limiter.record("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") is None
    clock.now += 10
    limiter.record("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") == 50  # until the oldest failure leaves the window
    assert limiter.retry_after("192.0.2.2") is None
    clock.now += 50.5
    assert limiter.retry_after("192.0.2.1") is None
    off = FailureLimiter(0, 60, clock=clock)
    off.record("x")
    assert off.retry_after("x") is None


def test_failure_limiter_forgets_keys_whose_failures_left_the_window():
    clock = Clock()
    limiter = FailureLimiter(3, 60, clock=clock)
    for n in range(1000):  # one failure from each of many addresses (IPv6 has plenty)
        limiter.record(f"2001:db8::{n:x}")
    assert len(limiter) == 1000
    clock.now += 61
    limiter.record("2001:db8::ffff")
    assert len(limiter) == 1  # the others limit nothing any more
    for _ in range(2):
        limiter.record("2001:db8::ffff")
    assert limiter.retry_after("2001:db8::ffff") == 60


def test_failure_limiter_holds_no_copy_of_what_clients_sent():
    """A username of kilobytes per failure, from a new address each time: what one
    failure keeps does not grow with the username."""
    clock = Clock()
    limiter = FailureLimiter(3, 60, clock=clock)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(1000):  # each request's header is parsed into new strings
            limiter.record((f"2001:db8::{n:x}", f"{n:06d}" + "u" * 8000))
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 2_000_000  # 8 MB of usernames had the table kept them
    limiter.record(("2001:db8::1", "000001" + "u" * 8000))
    assert limiter.retry_after(("2001:db8::1", "000001" + "u" * 8000)) is None
    limiter.record(("2001:db8::1", "000001" + "u" * 8000))
    assert limiter.retry_after(("2001:db8::1", "000001" + "u" * 8000)) == 60


def test_auth_params_parsing():
    assert parse_auth_params('username="a\\"b", nc=00000001, qop=auth,uri="/x?y=1,2"') == {
        "username": 'a"b',
        "nc": "00000001",
        "qop": "auth",
        "uri": "/x?y=1,2",
    }
    assert parse_auth_params("") == {}
    assert parse_auth_params('a="1", a="2"') is None  # repeated
    assert parse_auth_params('a="unterminated') is None
    assert parse_auth_params("a b") is None


#: the address _check's requests come from (a nonce is good from the address it went to)
ADDRESS = "192.0.2.9"


def _digest(auth: CpeAuthenticator, username: str, password: str, **over: str) -> str:
    headers = auth.challenge_headers(address=over.get("address", ADDRESS))
    challenge = dict(h.split("=", 1) for h in headers[0][1][7:].split(", "))
    nonce = challenge["nonce"].strip('"')
    algorithm = over.get("algorithm", "MD5")
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algorithm.upper().removesuffix("-SESS")]

    def hx(text: str) -> str:
        return h(text.encode()).hexdigest()

    uri, cnonce, nc = over.get("uri", "/acs?x=1"), "c0ffee", "00000001"
    ha1 = hx(f"{username}:acsd:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = hx(f"{ha1}:{nonce}:{cnonce}")
    response = hx(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{hx(f'POST:{uri}')}")
    user = over.get("user_param", f'username="{username}"')
    return (
        f'Digest {user}, realm="acsd", nonce="{nonce}", uri="{uri}", algorithm={algorithm}, '
        f'qop=auth, nc={nc}, cnonce="{cnonce}", response="{response}"'
    )


async def _check(auth: CpeAuthenticator, header: str, path: str = "/acs?x=1"):
    request = make_mocked_request("POST", path, headers={"Authorization": header})
    return await auth.check(request, remote=ADDRESS, secure=False)


@pytest.mark.parametrize("algorithm", ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"])
async def test_digest_algorithms_and_sess_variants(algorithm):
    auth = CpeAuthenticator(scheme="digest", password="pw")
    result = await _check(auth, _digest(auth, "SN1", "pw", algorithm=algorithm))
    assert result.ok and result.username == "SN1" and result.serial == "SN1"
    only_md5 = CpeAuthenticator(scheme="digest", password="pw", algorithms=["MD5"])
    result = await _check(only_md5, _digest(only_md5, "SN1", "pw", algorithm=algorithm))
    assert result.ok == algorithm.startswith("MD5")


async def test_digest_username_star_and_absolute_uri():
    auth = CpeAuthenticator(scheme="digest", password="pw")
    header = _digest(auth, "Jäsøn", "pw", user_param="username*=UTF-8''J%C3%A4s%C3%B8n")
    assert (await _check(auth, header)).ok
    header = _digest(auth, "SN1", "pw", uri="http://acs.example:7547/acs?x=1")
    assert (await _check(auth, header)).ok
    # The path alone names it too: firmware given a URL with a query may hash the path
    # only (refused at every session before); another path or query is still refused.
    assert (await _check(auth, _digest(auth, "SN1", "pw", uri="/acs"))).ok
    for other in ("/other", "/acs?x=2", "/acs/", "http://[::1/"):
        result = await _check(auth, _digest(auth, "SN1", "pw", uri=other))
        assert not result.ok and result.failure and "uri" in result.reason, other


async def test_a_tab_after_the_scheme_is_white_space_as_a_space_is():
    # acsd answered such challenges from CPEs' Connection Request servers; the same C
    # code writes the CPE's Authorization, which was refused as "Digest\tusername=..."
    # credentials, expected digest
    auth = CpeAuthenticator(scheme="digest", password="pw")
    header = _digest(auth, "SN1", "pw").replace("Digest ", "Digest\t", 1)
    assert (await _check(auth, header)).ok
    assert (
        auth.claimed_username(make_mocked_request("POST", "/", headers={"Authorization": header}))
        == "SN1"
    )


async def test_digest_fields_that_are_not_text_fail_as_a_wrong_answer():
    # Found by fuzzing: both answered HTTP 500 before any credential was checked.
    auth = CpeAuthenticator(scheme="digest", password="pw")
    header = _digest(auth, "SN1", "pw", uri="http://[::1/")  # not a URI at all
    result = await _check(auth, header)
    assert not result.ok and result.failure
    # aiohttp hands header bytes that are not UTF-8 on as surrogates: hashed as those bytes
    assert ha1("MD5", "SN\udcff", "acsd", "pw") == hashlib.md5(b"SN\xff:acsd:pw").hexdigest()


async def test_fixed_username_is_not_bound_to_a_serial_but_per_device_is():
    devices = {"dev-a": _device("DEV-A", "pw-a")}
    auth = CpeAuthenticator(scheme="digest", username="cpe", password="pw", devices=devices)
    shared = await _check(auth, _digest(auth, "cpe", "pw"))
    assert shared.ok and shared.serial is None
    own = await _check(auth, _digest(auth, "DEV-A", "pw-a"))
    assert own.ok and own.serial == "DEV-A"
    assert not (await _check(auth, _digest(auth, "DEV-A", "pw"))).ok  # its own password only
    assert (await _check(auth, _digest(auth, "other", "pw"))).reason == "unknown user"


async def test_serials_the_store_tells_apart_log_in_with_their_own_passwords(tmp_path):
    # "STRASSE1" and "STRAßE1" are two routers to the store (it compares lower case)
    path = tmp_path / "c.toml"
    path.write_text('[devices]\nSTRASSE1 = "pw-ss"\n"STRA\u00dfE1" = "pw-sz"\n', encoding="utf-8")
    devices = load_credentials(path, scheme="digest", realm="acsd", algorithms=["MD5"])
    auth = CpeAuthenticator(scheme="digest", devices=devices, algorithms=["MD5"])
    for serial, own, other in (("STRASSE1", "pw-ss", "pw-sz"), ("STRA\u00dfE1", "pw-sz", "pw-ss")):
        result = await _check(auth, _digest(auth, serial, own))
        assert result.ok and result.serial == serial
        assert not (await _check(auth, _digest(auth, serial, other))).ok


def _device(serial: str, password: str):
    from acsd.cwmp.credentials_file import DeviceCredentials

    return DeviceCredentials(serial, password=password)


async def test_basic_checks_pbkdf2_and_caches_success():
    clock = Clock()
    auth = CpeAuthenticator(scheme="basic", password="pw", clock=clock, pbkdf2_iterations=1000)
    token = base64.b64encode(b"SN1:pw").decode()
    request = make_mocked_request("POST", "/", headers={"Authorization": f"Basic {token}"})
    assert (await auth.check(request, remote="x", secure=True)).ok
    assert (await auth.check(request, remote="x", secure=True)).ok  # cached
    plain = await auth.check(request, remote="x", secure=False)
    assert plain.status == 403  # Basic needs TLS unless allowed
    bad = base64.b64encode(b"SN1:px").decode()
    request = make_mocked_request("POST", "/", headers={"Authorization": f"Basic {bad}"})
    result = await auth.check(request, remote="x", secure=True)
    assert not result.ok and result.failure and result.reason == "wrong password"


async def test_a_new_shared_password_leaves_no_cached_check_of_the_old_one(monkeypatch):
    # A reload of the shared password (SIGHUP): Basic's cache of checks that passed must
    # not keep the old password in, nor may a PBKDF2 check running in its thread while
    # the password is swapped let the old one through after the swap.
    import asyncio

    from acsd.cwmp import passwords

    auth = CpeAuthenticator(scheme="basic", password="old-pw", pbkdf2_iterations=1000)

    def basic(password: str):
        token = base64.b64encode(f"SN1:{password}".encode()).decode()
        return make_mocked_request("POST", "/", headers={"Authorization": f"Basic {token}"})

    assert (await auth.check(basic("old-pw"), remote="x", secure=True)).ok
    assert len(auth._verified) == 1
    auth.use_shared(await asyncio.to_thread(auth.shared_credentials, "", "new-pw"))
    assert not auth._verified  # forgotten, not left to expire
    assert not (await auth.check(basic("old-pw"), remote="x", secure=True)).ok
    assert (await auth.check(basic("new-pw"), remote="x", secure=True)).ok

    # The swap lands while a check of the password in use runs in its thread.
    started, release = asyncio.Event(), asyncio.Event()
    verify = passwords.Pbkdf2Hash.verify
    loop = asyncio.get_running_loop()

    def slow_verify(self, password: str) -> bool:
        loop.call_soon_threadsafe(started.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10)
        return verify(self, password)

    monkeypatch.setattr(passwords.Pbkdf2Hash, "verify", slow_verify)
    auth._verified.clear()
    checking = asyncio.create_task(auth.check(basic("new-pw"), remote="y", secure=True))
    await started.wait()
    monkeypatch.setattr(passwords.Pbkdf2Hash, "verify", verify)
    auth.use_shared(auth.shared_credentials("", "newer-pw"))
    release.set()
    result = await checking
    assert not result.ok and result.reason == "wrong password"
    assert not auth._verified
    assert (await auth.check(basic("newer-pw"), remote="y", secure=True)).ok


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256-sess"])
@pytest.mark.parametrize("username", ["", "cpe"])
async def test_the_previous_shared_password_is_taken_and_said_so(algorithm, username):
    # A rotation of the shared password locked every router still on the old one out.
    devices = {"own1": _device("OWN1", "own-pw")}
    auth = CpeAuthenticator(
        scheme="digest", username=username, password="new-pw", previous_password="old-pw",
        devices=devices,
    )  # fmt: skip
    user = username or "SN1"
    current = await _check(auth, _digest(auth, user, "new-pw", algorithm=algorithm))
    assert current.ok and current.shared and not current.previous
    previous = await _check(auth, _digest(auth, user, "old-pw", algorithm=algorithm))
    assert previous.ok and previous.shared and previous.previous
    assert previous.serial == (None if username else "SN1") and auth.rotate_to == "new-pw"
    assert not (await _check(auth, _digest(auth, user, "other-pw"))).ok
    # a router's own entry is not opened by it (nor by the current shared password)
    assert not (await _check(auth, _digest(auth, "OWN1", "old-pw"))).ok
    assert (await _check(auth, _digest(auth, "OWN1", "own-pw"))).ok
    # removed (a reload): the old password is no way in
    auth.use_shared(auth.shared_credentials(username, "new-pw"))
    assert auth.rotate_to is None
    assert not (await _check(auth, _digest(auth, user, "old-pw"))).ok


def test_a_previous_password_that_opens_nothing_more_is_none():
    # the same as the password (pointless), or without one (the previous alone opens
    # nothing): no second check, nothing to give routers
    for password, previous in (("pw", "pw"), ("", "old-pw")):
        shared = CpeAuthenticator(scheme="basic", password="x", pbkdf2_iterations=1000)
        built = shared.shared_credentials("", password, previous)
        assert built.previous is None and built.rotate_to is None


async def test_basic_takes_the_previous_shared_password_and_forgets_it_with_it(monkeypatch):
    from acsd.cwmp import passwords

    auth = CpeAuthenticator(
        scheme="basic", password="new-pw", previous_password="old-pw", pbkdf2_iterations=1000
    )

    def basic(password: str):
        token = base64.b64encode(f"SN1:{password}".encode()).decode()
        return make_mocked_request("POST", "/", headers={"Authorization": f"Basic {token}"})

    result = await auth.check(basic("old-pw"), remote="x", secure=True)
    assert result.ok and result.previous and result.serial == "SN1"
    # checked again (a router on a connection per session): no PBKDF2 at all, not of the
    # current password first either
    calls = []
    verify = passwords.Pbkdf2Hash.verify
    monkeypatch.setattr(
        passwords.Pbkdf2Hash, "verify", lambda h, pw: calls.append(pw) or verify(h, pw)
    )
    assert (await auth.check(basic("old-pw"), remote="x", secure=True)).previous
    assert calls == []
    new = await auth.check(basic("new-pw"), remote="x", secure=True)
    assert new.ok and not new.previous
    auth.use_shared(auth.shared_credentials("", "new-pw"))
    assert not (await auth.check(basic("old-pw"), remote="x", secure=True)).ok


def test_pbkdf2_hash_round_trip_and_django_layout():
    made = Pbkdf2Hash.make("hunter2", 1000)
    parsed = Pbkdf2Hash.parse(str(made))
    assert parsed.verify("hunter2") and not parsed.verify("hunter3")
    for bad in ("pbkdf2_sha256$10$s$AAAA", "pbkdf2_sha1$1000$s$AAAA", "pbkdf2_sha256$x$s$AA"):
        with pytest.raises(ValueError):
            Pbkdf2Hash.parse(bad)


def test_credentials_file_errors_name_the_entry(tmp_path):
    path = tmp_path / "c.toml"
    cases = {
        '[devices]\nA = ""\n': "devices.A: empty password",
        "[devices]\nA = 5\n": "devices.A: expected a password string",
        '[devices]\nA = { pw = "x" }\n': "devices.A.pw: unknown key",
        '[devices]\nA = { ha1_md5 = "zz" }\n': "devices.A.ha1_md5: expected MD5 HA1",
        '[devices]\nA = "x"\na = "y"\n': "devices.a: listed twice",
        '[devices]\nA = "pbkdf2_sha256$1$s$AAAA"\n': "devices.A: PBKDF2 iterations",
        'realm = "other"\n[devices]\nA = "x"\n': "realm 'other' differs",
        "[device]\n": "device: unknown key",
        "[devices\n": "invalid TOML",
    }
    for text, expected in cases.items():
        path.write_text(text)
        with pytest.raises(ValueError, match=expected.replace("$", r"\$")) as caught:
            load_credentials(path, scheme="digest", realm="acsd", algorithms=["MD5"])
        assert str(path) in str(caught.value)
    path.write_text('[devices]\nA = { ha1_md5 = "' + "0" * 32 + '" }\n')
    with pytest.raises(ValueError, match="Basic needs password or pbkdf2_sha256"):
        load_credentials(path, scheme="basic", realm="acsd", algorithms=["MD5"])
    assert load_credentials(path, scheme="digest", realm="acsd", algorithms=["MD5"])["a"]
    # two routers to the store (it compares lower case), so two entries here too
    path.write_text('[devices]\nSTRASSE1 = "x"\n"STRA\u00dfE1" = "y"\n', encoding="utf-8")
    both = load_credentials(path, scheme="digest", realm="acsd", algorithms=["MD5"])
    assert sorted(both) == ["strasse1", "stra\u00dfe1"]


def test_credentials_file_errors_name_the_line_and_never_a_value(tmp_path):
    # A reload that keeps the credentials in use logs this line: the operator must find
    # the entry at fault in a file of thousands, and the log must hold no secret.
    path = tmp_path / "c.toml"
    head = 'realm = "acsd"\n# the fleet\n[devices]\nOK1 = "pw-ok"\n'
    cases = {
        '"B 2" = { password = "hunter2", ha1_md5 = "zz-secret" }\n': (
            "line 5: devices.B 2.ha1_md5: expected MD5 HA1 as hex"
        ),
        'C = "pbkdf2_sha256$1$salt-secret$AAAA"\n': "line 5: devices.C: PBKDF2 iterations",
        'ok1 = "hunter2"\n': "line 5: devices.ok1: listed twice",
        "D = secret-unquoted\n": "invalid TOML: Invalid value (at line 5",
        '[devices.E]\npassword = ""\n': "line 5: devices.E.password: expected a non-empty",
        '\n[other]\nF = "hunter2"\n': "line 6: other: unknown key",
    }
    for tail, expected in cases.items():
        path.write_text(head + tail)
        with pytest.raises(ValueError) as caught:
            load_credentials(path, scheme="digest", realm="acsd", algorithms=["MD5"])
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and expected in message, message
        for secret in ("hunter2", "zz-secret", "salt-secret", "secret-unquoted", "pw-ok"):
            assert secret not in message
    # a dotted key at the top
    path.write_text('devices.G.ha1_md5 = "not-hex"\n')
    with pytest.raises(ValueError, match=r"line 1: devices\.G\.ha1_md5: expected MD5"):
        load_credentials(path, scheme="digest", realm="acsd", algorithms=["MD5"])


def test_a_serial_no_router_can_send_is_refused_at_load_in_one_line(tmp_path):
    """A serial key with a line break, a tab or spaces at an end could never match a
    router's Inform (its serial comes stripped, without control characters): the entry
    was accepted and its router then locked out without a word."""
    path = tmp_path / "c.toml"
    for key, shown in (
        ('"SER 1\\n"', "'SER 1\\n'"),
        ('"SER\\t1"', "'SER\\t1'"),
        ('" SER1"', "' SER1'"),
        ('"SER1 "', "'SER1 '"),
    ):
        path.write_text(f'[devices]\n{key} = "x"\n')
        with pytest.raises(ValueError) as caught:
            load_credentials(path, scheme="digest", realm="acsd", algorithms=["MD5"])
        assert str(caught.value) == (
            f"{path}: line 2: devices.{shown}: serial number must not begin or end with "
            "spaces nor "
            "hold control characters (a line break, a tab)"
        )
    # and through the config, as other bad config is refused
    config = tmp_path / "acsd.toml"
    config.write_text(f'[cwmp.auth]\nscheme = "digest"\ncredentials_file = "{path}"\n')
    with pytest.raises(ConfigError, match=r"devices\.'SER1 ': serial number must not"):
        load_config(config, environ={})
    # a space inside is a serial a router can have (the device API takes it too)
    path.write_text('[devices]\n"SER 1" = "x"\n')
    assert list(load_credentials(path, scheme="digest", realm="acsd", algorithms=["MD5"])) == [
        "ser 1"
    ]


def test_the_first_challenge_is_md5_by_default_and_the_order_is_the_operators():
    # libcurl-based CPE stacks read only the first Digest challenge; old ones know no SHA-256.
    def algorithms(auth: CpeAuthenticator) -> list[str]:
        return [v.split("algorithm=")[1].split(",")[0] for _, v in auth.challenge_headers()]

    assert algorithms(CpeAuthenticator(scheme="digest", password="p")) == ["MD5", "SHA-256"]
    chosen = CpeAuthenticator(scheme="digest", password="p", algorithms=["SHA-256", "MD5"])
    assert algorithms(chosen) == ["SHA-256", "MD5"]
    assert Config().cwmp.auth.algorithms == ["MD5", "SHA-256"]


async def test_a_nonce_is_good_only_from_the_address_it_was_issued_to():
    # The workers of a service share the nonce key but count uses each on its own: a
    # request captured on the wire and replayed from elsewhere must not pass on another
    # worker (nor on this one).
    auth = CpeAuthenticator(scheme="digest", username="cpe", password="pw")
    header = _digest(auth, "cpe", "pw", address="198.51.100.7")
    result = await _check(auth, header)  # comes from ADDRESS, not 198.51.100.7
    assert not result.ok and result.reason == "stale nonce"
    assert (await _check(auth, _digest(auth, "cpe", "pw"))).ok
    book = NonceBook(60, key=b"k" * 32)
    other_worker = NonceBook(60, key=b"k" * 32)
    nonce = book.issue("192.0.2.1")
    assert other_worker.use(nonce, 1, "192.0.2.1") == NonceBook.FRESH
    assert other_worker.use(nonce, 2, "203.0.113.5") == NonceBook.STALE


def test_a_credentials_file_saved_with_a_bom_is_read_and_one_not_in_utf8_is_told_so(tmp_path):
    # tomllib says "Invalid statement (at line 1, column 1)" of a BOM (Windows editors save
    # UTF-8 so: it is read as meant), and Python's codec error of Latin-1, which does not
    # tell the operator to save the file as UTF-8.
    path = tmp_path / "c.toml"
    path.write_bytes(b'\xef\xbb\xbf[devices]\nA = "x"\n')
    devices = load_credentials(path, scheme="digest", realm="acsd", algorithms=["MD5"])
    assert list(devices) == ["a"]
    path.write_bytes(b'# caf\xe9\n[devices]\nA = "x"\n')
    with pytest.raises(ValueError) as caught:
        load_credentials(path, scheme="digest", realm="acsd", algorithms=["MD5"])
    assert str(caught.value).startswith(f"{path}: invalid TOML: not UTF-8 text (byte 5)")


async def test_failed_logins_from_one_ipv6_64_count_together():
    # One host holds a whole /64: counted by address, each of its addresses had a fresh
    # count (the STUN port's bounds already count by /64). IPv4 stays by address.
    auth = CpeAuthenticator(scheme="basic", password="pw", max_failures=3,
                            max_failures_per_address=5, allow_basic_without_tls=True)  # fmt: skip
    guesses = iter(range(100))

    async def attempt(address: str):
        # (another username each time: the address's ceiling, not a username's)
        wrong = "Basic " + base64.b64encode(f"SN{next(guesses)}:guess".encode()).decode()
        request = make_mocked_request("POST", "/", headers={"Authorization": wrong})
        return await auth.check(request, remote=address, secure=False)

    for n in range(5):
        result = await attempt(f"2001:db8:1:2::{n + 1:x}")
        assert result.status != 429, n
    limited = await attempt("2001:db8:1:2:ffff::9")
    assert limited.status == 429 and "from this address" in limited.reason
    assert (await attempt("2001:db8:1:3::1")).status != 429  # another /64
    for _ in range(5):
        await attempt("192.0.2.1")
    assert (await attempt("192.0.2.2")).status != 429
