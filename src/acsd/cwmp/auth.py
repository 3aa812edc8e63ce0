"""CPE authentication on the CWMP listener: HTTP Basic (RFC 7617) and Digest (RFC 7616).
The authenticator decides on each request's credentials (pass, challenge, refuse, rate
limit) and says whose they are; its parts are modules of their own: password hashes
(passwords.py), the per-device credentials file (credentials_file.py), Digest nonces
(nonces.py), the failed-login limiter (login_failures.py) and the parsing of the
Authorization header (auth_header.py).

What is checked, and why this way:

* **Digest** (MD5, SHA-256, and their ``-sess`` variants when the base algorithm is
  offered; ``qop=auth`` only). One challenge per configured algorithm, MD5 first by
  default: libcurl, which many CPE stacks are built on, reads only the first Digest
  challenge ("Ignoring duplicate digest auth header") and before 7.57 knew no SHA-256,
  so a SHA-256 challenge first locks such CPEs out. A nonce is valid without state, so a
  CPE that reconnects keeps it; a count not higher than the last one is refused (see
  nonces.py). An expired nonce (or one signed by an earlier process) with an otherwise
  correct digest gets a fresh challenge with ``stale=true`` so the CPE retries without
  giving up.
* **Basic** only over TLS unless ``allow_basic_without_tls`` says otherwise. Passwords are
  compared as PBKDF2-SHA256 hashes (the shared password is hashed at start-up, and in a
  thread when a reload changes it; per-device entries may be stored as
  ``pbkdf2_sha256$iterations$salt$hash``, Django's format), in a worker thread, with
  successful checks cached briefly so a session does not pay PBKDF2 on every message (a
  reload that changes the shared password forgets the checks that passed with it). Clear
  per-device passwords from the credentials file are kept only as a keyed HMAC (hashing
  thousands of them with PBKDF2 at start-up would take minutes; the file is the clear copy
  anyway: use ``acsd cpe-password`` to store hashes instead).
* **Who is who.** Per-device credentials (the ``[devices]`` table of ``credentials_file``)
  are keyed by serial number and the username *is* that serial. The shared password goes
  with ``username``; when that is empty, every CPE uses its own serial as its username.
  Either way the credentials are bound to a serial (:attr:`AuthResult.serial`) and the
  server refuses (403) an Inform whose DeviceId serial differs: otherwise one router's
  password would let it speak for any other router. Only a fixed shared ``username``
  leaves the serial unbound (all CPEs are equal then anyway).
* **Rotation.** ``previous_password`` is the shared password before a rotation: taken
  with the same username rules as the shared one (never for a router with an entry of its
  own), and said so (:attr:`AuthResult.previous`), so that the session gives the router
  the current one (:attr:`CpeAuthenticator.rotate_to`). Only a shared-password answer that
  failed is checked against it: routers on the current password pay nothing for it.
* **Rate limit.** Failed credential checks are counted per source address and username;
  beyond ``max_failures`` within ``failure_window`` seconds that username gets 429 +
  Retry-After from that address without any credential check, while other routers behind
  the address (a CGNAT) go on. Beyond ``max_failures_per_address`` failures of any
  usernames the whole address gets 429. A missing header (the usual first request of a
  CPE) and a stale nonce are not failures.
* **Two Authorization headers** (firmware that repeats the header after a 401 sends its
  earlier answer beside the new one): the one that verifies is taken, for Basic and Digest
  alike, whichever comes first; each that fails is counted. More than two different ones
  are guesses, refused unchecked. A 400 would lock such firmware out for good.

Nothing here logs a password, an HA1 or an Authorization header.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from acsd.cwmp.auth_header import (
    MAX_AUTHORIZATIONS,
    authorizations,
    basic_credentials,
    digest_username,
    parse_auth_params,
    same_target,
)
from acsd.cwmp.credentials_file import DeviceCredentials, parse_credentials, read_credentials
from acsd.cwmp.login_failures import FailureLimiter
from acsd.cwmp.nonces import NonceBook
from acsd.cwmp.passwords import HASHES, PBKDF2_ITERATIONS, Pbkdf2Hash, ha1, hex_hash
from acsd.hostaddr import counted_as
from acsd.httpdigest import split_scheme
from acsd.listen_socket import client_address
from acsd.log import get_logger, peer_text

if TYPE_CHECKING:
    from aiohttp import web

    from acsd.config import CwmpAuthConfig
    from acsd.cwmp.rpc import DeviceId

log = get_logger("acsd.cwmp.auth")

_NC = re.compile(r"[0-9a-fA-F]{1,8}")


# --- results ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The outcome of one request's credential check."""

    ok: bool
    username: str = ""
    reason: str = ""
    #: the nonce was expired or unknown but the digest was right: challenge with stale=true
    stale: bool = False
    #: the serial number these credentials belong to; None = any device (fixed shared user)
    serial: str | None = None
    #: a credential check failed (counted for the rate limit; the answer closes the connection)
    failure: bool = False
    #: HTTP status for a refusal: 401 (challenge), 403 (Basic without TLS), 429 (rate limit)
    status: int = 200
    retry_after: int | None = None
    #: the Digest algorithm or "Basic", for the debug log
    method: str = ""
    #: the credentials were the shared password (not a router's own entry)
    shared: bool = False
    #: ... the previous shared password (``previous_password``): the router is to be given
    #: the current one (see CpeAuthenticator.rotate_to)
    previous: bool = False


# --- the authenticator ------------------------------------------------------------------


def usernames_of(device: DeviceId) -> frozenset[str]:
    """The usernames (lower case) that name the router ``device``: its serial number, and
    the defaults TR-069 (3.4.4) recommends to firmware, ``OUI-SerialNumber`` and
    ``OUI-ProductClass-SerialNumber``. Credentials bound to any of them open its sessions."""
    # lower(), not casefold(): the store tells routers apart by lower() (its serial_key),
    # and under casefold() "STRASSE1"'s credentials would pass for "STRAßE1", another record.
    serial, oui = device.serial_number.lower(), device.oui.lower()
    names = {serial, f"{oui}-{serial}"}
    if device.product_class:
        names.add(f"{oui}-{device.product_class.lower()}-{serial}")
    return frozenset(names)


@dataclass(slots=True)
class _Entry:
    """What verification needs for one set of credentials (nothing in clear)."""

    #: algorithm -> HA1 for the username the entry was made for
    ha1: dict[str, str] = field(default_factory=dict)
    pbkdf2: Pbkdf2Hash | None = None
    #: HMAC(process key, password) for clear passwords from the file
    mac: bytes | None = None


#: case-folded username -> (the serial as the file spells it, what verifies it)
DeviceTable = dict[str, tuple[str, _Entry]]


@dataclass(frozen=True, slots=True)
class CredentialsSource:
    """Where per-device credentials were read from: the path and a digest of the bytes
    read (None, None: no file). A reload compares it with the file now, and rebuilds
    nothing for a file that did not change."""

    path: str | None
    digest: bytes | None

    @classmethod
    def of(cls, path: str | None, raw: bytes) -> CredentialsSource:
        return cls(path, hashlib.sha256(raw).digest() if path else None)


@dataclass(frozen=True, slots=True)
class SharedCredentials:
    """The shared ``username`` and password as verification needs them (``entry`` None:
    no shared password); made by :meth:`CpeAuthenticator.shared_credentials`."""

    username: str
    #: (not in a repr: it holds the hashes)
    entry: _Entry | None = field(repr=False)
    #: the password itself, kept only for Digest with the serial as username
    password: str | None = field(repr=False)
    #: the previous shared password (``previous_password``), taken with the same username
    #: rules while routers move to this one (None: not set, or opens nothing more)
    previous: SharedCredentials | None = field(default=None, repr=False)
    #: the password in clear while there is a previous one: what a router that comes with
    #: the previous one is given (ManagementServer.Password)
    rotate_to: str | None = field(default=None, repr=False)


class CpeAuthenticator:
    """Checks the credentials of CWMP requests. Build it with :func:`build_authenticator`."""

    def __init__(
        self,
        *,
        scheme: str,
        realm: str = "acsd",
        username: str = "",
        password: str = "",
        devices: dict[str, DeviceCredentials] | None = None,
        algorithms: Iterable[str] = ("MD5", "SHA-256"),
        nonce_lifetime: float = 300.0,
        max_failures: int = 10,
        failure_window: float = 60.0,
        max_failures_per_address: int | None = None,
        allow_basic_without_tls: bool = False,
        previous_password: str = "",
        clock: Callable[[], float] = time.monotonic,
        pbkdf2_iterations: int = PBKDF2_ITERATIONS,
        nonce_key: bytes | None = None,
    ) -> None:
        if scheme not in ("basic", "digest"):
            raise ValueError(f"unknown scheme {scheme!r}")
        self.scheme = scheme
        self.realm = realm
        self.algorithms = [a for a in algorithms if a in HASHES] or ["MD5"]
        self.allow_basic_without_tls = allow_basic_without_tls
        self.nonces = NonceBook(nonce_lifetime, clock=clock, key=nonce_key)
        # Failures count per address and username: behind a CGNAT, one router with a wrong
        # password must not lock out the others. Guessing with many usernames from one
        # address meets the per-address ceiling (ten times as many by default).
        self.limiter = FailureLimiter(max_failures, failure_window, clock=clock)
        per_address = max_failures_per_address
        if per_address is None:
            per_address = max_failures * 10
        self.address_limiter = FailureLimiter(per_address, failure_window, clock=clock)
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._pbkdf2_iterations = pbkdf2_iterations
        # (no previous password for now: use_shared sets all of the shared credentials)
        self._previous: SharedCredentials | None = None
        self.rotate_to: str | None = None
        self._verified: OrderedDict[bytes, tuple[float, bool]] = OrderedDict()
        self.use_shared(self.shared_credentials(username, password, previous_password))
        self._devices = self.device_table(devices or {})
        #: the file the per-device credentials came from (the builder's, or a reload's)
        self.devices_from = CredentialsSource(None, None)
        self._pbkdf2_slots = asyncio.Semaphore(4)

    def shared_credentials(
        self, username: str, password: str, previous: str = ""
    ) -> SharedCredentials:
        """What :meth:`use_shared` takes: the shared ``username`` and ``password`` (and
        the ``previous`` password, taken beside it) as verification needs them. For Basic
        this is a PBKDF2 hash each (a tenth of a second of CPU): a reload builds it in a
        thread. Reads only what never changes here."""
        if not password:
            return SharedCredentials(username, None, None)  # (a previous one alone opens nothing)
        if previous and previous != password:
            # (routers that come with it are given the password itself: kept in clear, as
            # the config holds it anyway)
            return replace(
                self.shared_credentials(username, password),
                previous=self.shared_credentials(username, previous),
                rotate_to=password,
            )
        entry = _Entry()
        if self.scheme == "digest" and username:
            entry.ha1 = {a: ha1(a, username, self.realm, password) for a in self.algorithms}
        if self.scheme == "basic":
            entry.pbkdf2 = Pbkdf2Hash.make(password, self._pbkdf2_iterations)
        # Digest with the serial as username needs the password itself (HA1 covers the
        # username); in every other case only hashes are kept.
        clear = password if (not username and self.scheme == "digest") else None
        return SharedCredentials(username, entry, clear)

    def use_shared(self, shared: SharedCredentials) -> None:
        """The shared username and password from now on (SIGHUP). As with
        :meth:`use_devices`, a connection that authenticated goes on and every new check
        is made against ``shared``. What Basic remembers of checks that passed with the
        shared password before is forgotten: the old password is no way in any more."""
        self._username = shared.username
        self._shared = shared.entry
        self._shared_password = shared.password
        self._previous = shared.previous
        self.rotate_to = shared.rotate_to
        for token in [t for t, (_until, by_shared) in self._verified.items() if by_shared]:
            del self._verified[token]

    def device_table(self, devices: dict[str, DeviceCredentials]) -> DeviceTable:
        """What :meth:`use_devices` takes: ``devices`` (from :func:`load_credentials`) as
        verification needs them. Reads only what never changes here (the realm, the
        process key): a reload builds it in a thread while requests are checked."""
        return {folded: (creds.serial, self._entry(creds)) for folded, creds in devices.items()}

    def use_devices(self, table: DeviceTable, source: CredentialsSource) -> None:
        """The per-device credentials from now on (SIGHUP), read from ``source``. A
        connection that authenticated before keeps its identity (its session goes on);
        every new check, and each new connection, is made against ``table``. The rate
        limit's counts and the nonces stay: a reload is no way to clear a lockout, nor
        does it stale a router's nonce."""
        self._devices = table
        self.devices_from = source

    def table_changes(self, table: DeviceTable) -> dict[str, int]:
        """How ``table`` differs from the one in use, in counts (for the log: no serial,
        as a file of a million routers may change in every one)."""
        old, new = self._devices, table
        return {
            "added": sum(1 for name in new if name not in old),
            "removed": sum(1 for name in old if name not in new),
            "changed": sum(1 for name, item in new.items() if name in old and old[name] != item),
        }

    @property
    def has_shared(self) -> bool:
        """Whether a shared password is in use (a way in besides the per-device entries)."""
        return self._shared is not None

    def _entry(self, creds: DeviceCredentials) -> _Entry:
        entry = _Entry(pbkdf2=creds.pbkdf2)
        if creds.ha1_md5:
            entry.ha1["MD5"] = creds.ha1_md5
        if creds.ha1_sha256:
            entry.ha1["SHA-256"] = creds.ha1_sha256
        if creds.password is not None:
            for algorithm in HASHES:
                entry.ha1.setdefault(
                    algorithm, ha1(algorithm, creds.serial, self.realm, creds.password)
                )
            entry.mac = self._mac(creds.password)
        return entry

    def _mac(self, *parts: str) -> bytes:
        return hmac.new(self._key, "\0".join(parts).encode("utf-8"), hashlib.sha256).digest()

    @property
    def device_count(self) -> int:
        return len(self._devices)

    def has_own_entry(self, device: DeviceId) -> bool:
        """Whether the router ``device`` has an entry of its own, under any name that
        stands for it (usernames_of): then the shared password is no way into it."""
        return any(name in self._devices for name in usernames_of(device))

    # --- challenges ----------------------------------------------------------------------

    def challenge_headers(self, *, stale: bool = False, address: str = "") -> list[tuple[str, str]]:
        """``WWW-Authenticate`` headers for a 401 to the client at ``address``: one per
        Digest algorithm (one nonce)."""
        if self.scheme == "basic":
            return [("WWW-Authenticate", f'Basic realm="{self.realm}", charset="UTF-8"')]
        nonce = self.nonces.issue(address)
        extra = ", stale=true" if stale else ""
        return [
            (
                "WWW-Authenticate",
                f'Digest realm="{self.realm}", qop="auth", algorithm={algorithm}, '
                f'nonce="{nonce}"{extra}',
            )
            for algorithm in self.algorithms
        ]

    # --- checking ------------------------------------------------------------------------

    def claimed_username(self, request: web.BaseRequest) -> str | None:
        """The username the request's Authorization headers name (None: no header of this
        scheme, or none that names anybody readable; "" when they name different users)."""
        names = set()
        for header in authorizations(request):
            scheme, rest = split_scheme(header)
            if scheme.lower() != self.scheme:
                continue
            if self.scheme == "basic":
                credentials = basic_credentials(rest)
                name = credentials[0] if credentials else None
            else:
                params = parse_auth_params(rest)
                name = digest_username(params) if params else None
            if name is not None:
                names.add(name)
        if len(names) > 1:
            return ""
        return names.pop() if names else None

    async def check(
        self, request: web.BaseRequest, *, remote: str | None = None, secure: bool | None = None
    ) -> AuthResult:
        """Check ``request``'s Authorization header (its body is not read)."""
        address = remote if remote is not None else client_address(request.remote)
        retry = self.address_limiter.retry_after(counted_as(address))
        if retry is not None:
            return self._limited(retry, "from this address")
        is_secure = request.secure if secure is None else secure
        if self.scheme == "basic" and not is_secure and not self.allow_basic_without_tls:
            return AuthResult(
                False,
                reason="Basic authentication is only accepted over TLS "
                "(see cwmp.auth.allow_basic_without_tls)",
                status=403,
            )
        headers = authorizations(request)
        ours = [
            rest for scheme, rest in map(split_scheme, headers) if scheme.lower() == self.scheme
        ]
        if not ours:
            scheme = split_scheme(headers[0])[0] if headers else ""
            reason = (
                "no credentials"
                if not headers
                else f"{peer_text(scheme, 16)} credentials, expected {self.scheme}"
            )
            return AuthResult(False, reason=reason, status=401)
        if len(ours) > MAX_AUTHORIZATIONS:
            self.record_failure(address, "")
            return self._fail(f"{len(ours)} different Authorization headers")
        # Firmware that repeats the header after a 401 sends its earlier answer and its
        # new one: the request passes on the one that verifies, whichever comes first.
        # Each that fails counts as a failure, so two headers are no two guesses for one.
        results: list[AuthResult] = []
        for rest in ours:
            result = await self._check_one(rest, request, address)
            if result.ok or result.status == 429:
                return result
            results.append(result)
        # none verified: a failed check outweighs a stale nonce (the connection closes)
        return next((r for r in reversed(results) if r.failure), results[-1])

    async def _check_one(self, rest: str, request: web.BaseRequest, address: str) -> AuthResult:
        """Check one Authorization header's credentials (``rest``: what follows its scheme)."""
        # Read before anything is checked: the rate limit counts per claimed username.
        if self.scheme == "basic":
            credentials = basic_credentials(rest)
            claimed = credentials[0] if credentials else ""
        else:
            params = parse_auth_params(rest)
            claimed = (digest_username(params) if params else None) or ""
        # (usernames are looked up whatever their case: so are they counted, else each
        # spelling of one would get its own tries)
        retry = self.limiter.retry_after((counted_as(address), claimed.casefold()))
        if retry is not None:
            return self._limited(retry, "for this username", claimed)
        # (the header before may fill it)
        retry = self.address_limiter.retry_after(counted_as(address))
        if retry is not None:
            return self._limited(retry, "from this address")
        if self.scheme == "basic":
            result = await self._check_basic(credentials)
        else:
            result = self._check_digest(params, request.method, request.raw_path, address)
        if result.failure:
            self.record_failure(address, claimed)
        return result

    def record_failure(self, address: str, username: str) -> None:
        """Count a failure (also one found later, e.g. an Inform for another device's
        serial) against the address and the username it claimed."""
        source = counted_as(address)
        self.limiter.record((source, username.casefold()))
        self.address_limiter.record(source)

    @staticmethod
    def _limited(retry: int, which: str, username: str = "") -> AuthResult:
        return AuthResult(
            False,
            username=username,
            reason=f"too many failed attempts {which}",
            status=429,
            retry_after=retry,
        )

    def _lookup(self, username: str) -> tuple[_Entry, str | None] | None:
        """The entry for ``username`` and the serial it is bound to (None = any device)."""
        found = self._devices.get(username.lower())
        if found is not None:
            return found[1], found[0]
        if self._shared is None:
            return None
        if self._username:
            return (self._shared, None) if username == self._username else None
        if not username:
            return None
        return self._shared, username

    @staticmethod
    def _fail(reason: str, username: str = "", method: str = "") -> AuthResult:
        return AuthResult(
            False, username=username, reason=reason, failure=True, status=401, method=method
        )

    # Digest --------------------------------------------------------------------------------

    def _check_digest(
        self, params: dict[str, str] | None, method: str, target: str, address: str = ""
    ) -> AuthResult:
        if params is None:
            return self._fail("malformed Digest header")
        username = digest_username(params)
        # RFC 2069 digests (no qop, nc, cnonce: older CWMP clients) are taken too; with no
        # count to rise, their nonce is good for one request (a connection's later
        # requests pass on its first one's check).
        legacy = "qop" not in params
        needed = ("realm", "nonce", "uri", "response") + (() if legacy else ("qop", "nc", "cnonce"))
        missing = [k for k in needed if not params.get(k)]
        if username is None or missing:
            what = ", ".join((["username"] if username is None else []) + missing)
            return self._fail(f"Digest header lacks {what}", username or "")
        algorithm_name = params.get("algorithm", "MD5")
        upper = algorithm_name.upper()
        sess = upper.endswith("-SESS")
        algorithm = upper[: -len("-SESS")] if sess else upper
        if algorithm not in self.algorithms:
            return self._fail(f"algorithm {algorithm_name[:20]!r} not offered", username)
        if params.get("userhash", "false").lower() == "true":
            return self._fail("userhash not offered", username, algorithm_name)
        if params["realm"] != self.realm:
            return self._fail("wrong realm", username, algorithm_name)
        if not same_target(params["uri"], target):
            return self._fail("uri does not match the request", username, algorithm_name)
        if legacy:
            if sess:
                return self._fail(f"{algorithm_name[:20]} needs qop", username, algorithm_name)
            nc_text = "00000001"
        else:
            if params["qop"].lower() != "auth":
                qop = params["qop"][:16]
                return self._fail(f"qop {qop!r} not offered", username, algorithm_name)
            nc_text = params["nc"]
            if not _NC.fullmatch(nc_text) or int(nc_text, 16) == 0:
                return self._fail("bad nonce count", username, algorithm_name)
        found = self._lookup(username)
        if found is None:
            return self._fail("unknown user", username, algorithm_name)
        entry, serial = found
        shared = entry is self._shared
        first = entry.ha1.get(algorithm)
        if first is None and shared and self._shared_password is not None:
            first = ha1(algorithm, username, self.realm, self._shared_password)
        if first is None:
            return self._fail(
                f"no {algorithm} credentials stored for this user", username, algorithm_name
            )
        second = hex_hash(algorithm, f"{method}:{params['uri']}")
        # surrogateescape, as in hex_hash: a response holding a byte that is not UTF-8 is a
        # wrong digest (401), not a failure to encode it (500)
        given = params["response"].lower().encode("utf-8", "surrogateescape")
        expected = _digest_response(algorithm, first, second, params, nc_text, sess=sess)
        previous = False
        if not hmac.compare_digest(expected.encode(), given):
            # Only a shared-password answer that failed pays for the previous password:
            # a router still on it, after a rotation, until it is given the new one.
            prior = self._previous if shared else None
            first = None
            if prior is not None and prior.entry is not None:
                first = prior.entry.ha1.get(algorithm)
                if first is None and prior.password is not None:
                    first = ha1(algorithm, username, self.realm, prior.password)
            if first is None:
                return self._fail("wrong password", username, algorithm_name)
            expected = _digest_response(algorithm, first, second, params, nc_text, sess=sess)
            if not hmac.compare_digest(expected.encode(), given):
                return self._fail("wrong password", username, algorithm_name)
            previous = True
        # The digest is right; now whether this nonce may (still) be used with this count.
        # A count used before is not accepted again, but the digest proves the password:
        # firmware that opens a connection per message and sends its cached nonce with
        # nc=1 each time is sent a fresh nonce, like a stale one, and is not counted as a
        # failure (which would lock out every router behind its address).
        verdict = self.nonces.use(params["nonce"], int(nc_text, 16), address)
        if verdict != NonceBook.FRESH:
            reason = "stale nonce" if verdict == NonceBook.STALE else "reused nonce count"
            return AuthResult(
                False, username, reason, stale=True, status=401, method=algorithm_name
            )
        return AuthResult(
            True, username, serial=serial, method=algorithm_name, shared=shared, previous=previous
        )

    # Basic ---------------------------------------------------------------------------------

    async def _check_basic(self, credentials: tuple[str, str] | None) -> AuthResult:
        if credentials is None:
            return self._fail("malformed Basic header")
        username, password = credentials
        while True:
            found = self._lookup(username)
            if found is None:
                return self._fail("unknown user", username, "Basic")
            entry, serial = found
            shared = entry is self._shared
            prior = self._previous if shared else None
            previous = False
            if (
                prior is not None
                and prior.entry is not None
                and not self._basic_cached(entry, username, password)
                and self._basic_cached(prior.entry, username, password)
            ):
                # a router still on the previous password, checked a moment ago: no PBKDF2
                # of the current one to fail first
                ok = previous = True
            else:
                ok = await self._verify_basic(entry, username, password)
            if not ok and prior is not None and prior.entry is not None:
                # (only a shared-password check that failed pays for this one)
                ok = previous = await self._verify_basic(prior.entry, username, password)
            # A reload that replaced these credentials while PBKDF2 ran in its thread: the
            # check is made again against the ones in use (an old password must not pass
            # a check that ends after the reload).
            if self._in_use(entry, username) and (prior is None or prior is self._previous):
                break
        if ok:
            return AuthResult(
                True, username, serial=serial, method="Basic", shared=shared, previous=previous
            )
        return self._fail("wrong password", username, "Basic")

    def _in_use(self, entry: _Entry, username: str) -> bool:
        """Whether ``entry`` is still what verifies ``username`` (the previous shared
        password counts as the shared password's)."""
        found = self._lookup(username)
        if found is None:
            return False
        if found[0] is entry:
            return True
        prior = self._previous
        return found[0] is self._shared and prior is not None and prior.entry is entry

    def _basic_cached(self, entry: _Entry, username: str, password: str) -> bool:
        """Whether a PBKDF2 check of ``password`` against ``entry`` passed a moment ago."""
        if entry.pbkdf2 is None or not self._verified:
            return False
        token = self._mac(username.lower(), password, str(entry.pbkdf2))
        cached = self._verified.get(token)
        return cached is not None and cached[0] > self._clock()

    async def _verify_basic(self, entry: _Entry, username: str, password: str) -> bool:
        if entry.mac is not None:
            return hmac.compare_digest(self._mac(password), entry.mac)
        if entry.pbkdf2 is None:
            return False
        if self._basic_cached(entry, username, password):
            return True
        now = self._clock()
        token = self._mac(username.lower(), password, str(entry.pbkdf2))
        async with self._pbkdf2_slots:
            ok = await asyncio.to_thread(entry.pbkdf2.verify, password)
        if ok and self._in_use(entry, username):
            # (marked when it is a shared password's: use_shared forgets those)
            prior = self._previous
            by_shared = entry is self._shared or (prior is not None and entry is prior.entry)
            self._verified[token] = (now + self.nonces.lifetime, by_shared)
            self._verified.move_to_end(token)
            while len(self._verified) > 10_000:
                self._verified.popitem(last=False)
        return ok


def _digest_response(
    algorithm: str,
    first: str,
    second: str,
    params: dict[str, str],
    nc_text: str,
    *,
    sess: bool,
) -> str:
    """The ``response`` a Digest answer must carry for the HA1 ``first`` (RFC 7616 3.4.1;
    without ``qop``, RFC 2069's) and the HA2 ``second``."""
    nonce, cnonce = params["nonce"], params.get("cnonce", "")
    if sess:
        first = hex_hash(algorithm, f"{first}:{nonce}:{cnonce}")
    if "qop" not in params:
        return hex_hash(algorithm, f"{first}:{nonce}:{second}")
    return hex_hash(algorithm, f"{first}:{nonce}:{nc_text}:{cnonce}:{params['qop']}:{second}")


def build_authenticator(
    config: CwmpAuthConfig, *, nonce_key: bytes | None = None
) -> CpeAuthenticator | None:
    """The authenticator for ``[cwmp.auth]`` (None for scheme "none"), with the start-up
    warnings an operator must see; ``nonce_key``: the key the service's workers share.
    Raises ValueError if the credentials file went bad."""
    if config.scheme == "none":
        log.warning(
            "cwmp.auth_disabled",
            message="CPEs are not authenticated: anything that reaches the CWMP listener can "
            'register and speak for any router. Set [cwmp.auth] scheme = "digest".',
        )
        return None
    path = config.credentials_file
    # (read once: the digest a reload compares with is of the bytes these entries came from)
    raw = read_credentials(path) if path else b""
    devices = (
        parse_credentials(
            raw, path, scheme=config.scheme, realm=config.realm, algorithms=config.algorithms
        )
        if path
        else {}
    )
    authenticator = CpeAuthenticator(
        scheme=config.scheme,
        realm=config.realm,
        username=config.username,
        password=config.password,
        devices=devices,
        algorithms=config.algorithms,
        nonce_lifetime=config.nonce_lifetime,
        max_failures=config.max_failures,
        failure_window=config.failure_window,
        max_failures_per_address=config.max_failures_per_address,
        allow_basic_without_tls=config.allow_basic_without_tls,
        previous_password=config.previous_password,
        nonce_key=nonce_key,
    )
    authenticator.devices_from = CredentialsSource.of(path, raw)
    if config.scheme == "basic":
        if config.allow_basic_without_tls:
            log.warning(
                "cwmp.auth_basic_cleartext",
                message="Basic authentication is accepted over plain HTTP: CPE passwords "
                "cross the network readable",
            )
        else:
            log.info(
                "cwmp.auth_basic_tls_only",
                message="Basic authentication is accepted only over TLS; "
                "plain-HTTP requests get 403",
            )
    log.info(
        "cwmp.auth",
        scheme=config.scheme,
        realm=config.realm,
        algorithms=authenticator.algorithms if config.scheme == "digest" else None,
        shared=bool(config.password),
        # (whether routers still on the previous shared password are taken, and given this one)
        rotating=authenticator.rotate_to is not None,
        username=config.username or "(serial number)",
        devices=authenticator.device_count,
    )
    return authenticator
