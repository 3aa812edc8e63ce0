"""A ``postgresql://`` store.url's query, checked as asyncpg will take it, without
connecting: ``config check`` must refuse what ``serve`` then fails on at its first
connection (``?sslmode=bogus``, ``?connect_timeout=10``).

asyncpg takes some libpq parameters itself and sends every other one to the server as a
run-time setting, which the server refuses unless it is one a client may set (an unknown
name, a libpq option asyncpg lacks, a setting of the server's own file). The values are
checked with asyncpg's own parsers, so that a value its version accepts passes here.
Files the URL names (``sslrootcert``, ``passfile``) are not read: the check may run as
another user than the service, and the service reports them at its start.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from urllib.parse import parse_qs

from acsd.store.pg_settings import CONNECT_SETTINGS

#: the query parameters asyncpg takes itself (asyncpg.connect_utils, 0.30 and later)
ASYNCPG_PARAMS: frozenset[str] = frozenset(
    {
        "host",
        "port",
        "dbname",
        "database",
        "user",
        "password",
        "passfile",
        "service",
        "sslmode",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslnegotiation",
        "sslcrl",
        "sslpassword",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
    }
)

#: libpq connection parameters asyncpg does not take: they would reach the server as
#: settings, which it refuses ("unrecognized configuration parameter")
LIBPQ_ONLY: frozenset[str] = frozenset(
    {
        "hostaddr",
        "connect_timeout",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "channel_binding",
        "gssencmode",
        "gssdelegation",
        "requiressl",
        "sslcompression",
        "sslsni",
        "sslcertmode",
        "sslkeylogfile",
        "require_auth",
        "requirepeer",
        "load_balance_hosts",
        "fallback_application_name",
        "min_protocol_version",
        "max_protocol_version",
        "replication",
    }
)

#: what the startup packet takes besides settings (PostgreSQL's own parameter)
STARTUP_PARAMS: frozenset[str] = frozenset({"options"})


def check_query(query: str, *, netloc_host: bool = False) -> None:
    """Raise ValueError ("store.url: ...", naming the parameter, never the URL's
    password) for what asyncpg or the server would refuse in ``query``; ``netloc_host``:
    the URL names a host before its path (asyncpg then ignores a ``port`` parameter:
    the host's port, or 5432, is taken first)."""
    if not query:
        return
    try:
        # as asyncpg parses it (an empty value is left out, as there)
        params = {k: v[-1] for k, v in parse_qs(query, strict_parsing=True).items()}
    except ValueError:
        raise ValueError("store.url: a query that cannot be parsed (NAME=VALUE&...)") from None
    if netloc_host:
        params.pop("port", None)
    for name, value in params.items():
        check = _VALUE_CHECKS.get(name)
        if check is not None:
            problem = check(value)
            if problem:
                raise ValueError(f"store.url: {name}={value!r}: {problem}")
        elif name not in ASYNCPG_PARAMS:
            _check_setting(name)
    if params.get("sslnegotiation") == "direct":
        mode = params.get("sslmode") or os.environ.get("PGSSLMODE") or "prefer"
        if mode.replace("_", "-") not in ("require", "verify-ca", "verify-full"):
            raise ValueError(
                "store.url: sslnegotiation=direct needs sslmode=require, verify-ca or verify-full"
            )


def _check_setting(name: str) -> None:
    """``name`` goes to the server as a run-time setting: one it takes at connection."""
    if name in LIBPQ_ONLY:
        raise ValueError(
            f"store.url: {name} is a libpq option that asyncpg does not take: the server "
            "would refuse it as a setting; leave it out"
        )
    if name in STARTUP_PARAMS or "." in name or name.lower() in CONNECT_SETTINGS:
        return
    close = difflib.get_close_matches(
        name.lower(), sorted(ASYNCPG_PARAMS | CONNECT_SETTINGS), n=1, cutoff=0.75
    )
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ValueError(
        f"store.url: option {name}{hint}: neither a connection option asyncpg takes "
        "nor a PostgreSQL setting a client may give when it connects (a setting of a "
        "later PostgreSQL than 15: ALTER ROLE ... SET it instead)"
    )


def _one_of(
    choices: Callable[[], list[str]], parse: Callable[[str], object]
) -> Callable[[str], str | None]:
    """A value check by asyncpg's own parser (imported when a URL has the parameter)."""

    def check(value: str) -> str | None:
        try:
            parse(value)
        except Exception:  # (asyncpg's: AttributeError, ValueError, its own error)
            return f"must be one of {', '.join(choices())}"
        return None

    return check


def _sslmode(value: str) -> object:
    from asyncpg.connect_utils import SSLMode

    # (SSLMode.parse takes "verify_full" for "verify-full" too, and any attribute of the
    # enum class: only its members are modes)
    mode = SSLMode.parse(value)
    if not isinstance(mode, SSLMode):
        raise ValueError(value)
    return mode


def _sslmodes() -> list[str]:
    from asyncpg.connect_utils import SSLMode

    return [m.name.replace("_", "-") for m in SSLMode]


def _negotiation(value: str) -> object:
    from asyncpg.connect_utils import SSLNegotiation

    return SSLNegotiation(value)


def _negotiations() -> list[str]:
    from asyncpg.connect_utils import SSLNegotiation

    return [m.value for m in SSLNegotiation]


def _session_attrs(value: str) -> object:
    from asyncpg.connect_utils import SessionAttribute

    return SessionAttribute(value)


def _session_attr_names() -> list[str]:
    from asyncpg.connect_utils import SessionAttribute

    return [m.value for m in SessionAttribute]


def _tls_version(value: str) -> object:
    from asyncpg.connect_utils import _parse_tls_version

    return _parse_tls_version(value)


def _port(value: str) -> str | None:
    # asyncpg: int() of each of a comma-separated list
    try:
        ports = [int(p) for p in value.split(",")]
    except ValueError:
        return "a port number (or a comma-separated list of them)"
    if not all(0 < p < 65536 for p in ports):
        return "a port number from 1 to 65535"
    return None


_TLS_VERSIONS = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]

_VALUE_CHECKS: dict[str, Callable[[str], str | None]] = {
    "sslmode": _one_of(_sslmodes, _sslmode),
    "sslnegotiation": _one_of(_negotiations, _negotiation),
    "target_session_attrs": _one_of(_session_attr_names, _session_attrs),
    "ssl_min_protocol_version": _one_of(lambda: _TLS_VERSIONS, _tls_version),
    "ssl_max_protocol_version": _one_of(lambda: _TLS_VERSIONS, _tls_version),
    "gsslib": lambda v: None if v in ("gssapi", "sspi") else "must be one of gssapi, sspi",
    "port": _port,
}
