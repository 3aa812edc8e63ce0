"""acsd's settings: TOML file, then ``ACSD_<SECTION>_<KEY>`` environment overrides, validated once.

Every key and its default is in ``config.example.toml``; a test keeps the two in step.
The file is validated strictly (``trust_forwarded = 1`` or ``periodic_interval = "300"`` is
an error: a typed file says what it means); an environment variable is text, so it is
converted to its setting's type first ("true", "300", "SHA-256,MD5").
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from yarl import URL

from acsd.hostaddr import SELF, is_host_address
from acsd.log import is_secret_name, url_without_userinfo
from acsd.tomltext import NotTomlText, parse_toml, read_regular, toml_text

#: networks no router is on, where a Connection Request is never sent by default
#: (``cwmp.connection_request_deny``; acsd.cwmp.crguard says why): loopback, "this
#: network", link-local (cloud metadata services), multicast, reserved and broadcast,
#: their IPv6 counterparts, and "self": every address of acsd's own host
DEFAULT_DENY = (
    "127.0.0.0/8", "0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    "::1/128", "::/128", "fe80::/10", "ff00::/8", "self",
)  # fmt: skip


def _comma_list(value: Any) -> Any:
    """A list setting given as one string (from the environment: "SHA-256,MD5")."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


#: serialization context under which secrets are written out (only for the copy of the
#: configuration a supervisor hands its workers, in a directory only it can read)
WITH_SECRETS = {"secrets": True}


#: validation context of commands that only work on the records: the CPE password, which
#: often lives in the service's environment file only, is not needed there
RECORDS_ONLY = {"records_only": True}

#: validation context of a reload: the credentials file is read by the reload itself
#: (acsd.reload), which keeps the credentials in use when it is broken, rather than
#: taking the whole file for invalid and keeping every other setting too
CREDENTIALS_LATER = {"credentials_later": True}


class ConfigError(Exception):
    """One line an operator can act on: the file, the key and what is wrong."""


_DOTTED = re.compile(r"[0-9.]+")


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected host:port, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"[{host}] is no IPv6 address, in {value!r}") from None
    elif "[" in host or "]" in host or ":" in host:
        raise ValueError(f"expected host:port or [IPv6]:port, got {value!r}")
    elif not host.strip() or host != host.strip():
        raise ValueError(f"expected host:port without spaces, got {value!r}")
    elif _DOTTED.fullmatch(host):
        # (an address, not a host name: 256.1.1.1 passed the check and failed the start)
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{host} is no IPv4 address, in {value!r}") from None
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"port must be a number, got {port!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port must be 0..65535, got {number}")
    return host, number


#: the largest count or number of seconds a setting may have: TR-069's unsignedInt (the
#: periodic interval is written to routers as one), and small enough that sums of such
#: settings and timestamps fit SQLite's 64-bit integers (a larger online_grace made
#: queries fail with OverflowError)
UINT_MAX = 4_294_967_295


class _Section(BaseModel):
    # inf or nan is no number of seconds (and `config check` would print it as JSON
    # that is none: Infinity)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # a file name or URL cannot hold one: passed by the check, it failed the start
        # with a traceback ("embedded null byte")
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("holds a NUL character")
        return value


class _Listener(_Section):
    listen: str

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @property
    def host(self) -> str:
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return parse_listen(self.listen)[1]


#: bytes at least in a Digest nonce key (acsd.cwmp.nonces.NonceBook)
MIN_NONCE_KEY_BYTES = 16


class CwmpAuthConfig(_Section):
    """``[cwmp.auth]``: how CPEs prove who they are (see ``acsd.cwmp.auth``)."""

    scheme: Literal["none", "basic", "digest"] = "none"
    realm: str = Field("acsd", min_length=1, max_length=128)
    username: str = ""
    password: str = ""
    #: the shared password before the last rotation: still taken (with ``username``, as
    #: ``password`` is), and a router that comes with it is given ``password``
    #: (ManagementServer.Password) in that session; "" = only ``password``
    previous_password: str = ""
    #: challenge order: CPEs whose HTTP client reads only the first challenge get MD5
    algorithms: list[Literal["SHA-256", "MD5"]] = Field(
        default_factory=lambda: ["MD5", "SHA-256"], min_length=1
    )
    credentials_file: str | None = None
    nonce_lifetime: float = Field(300.0, gt=0, le=UINT_MAX)
    max_failures: int = Field(10, ge=0, le=UINT_MAX)
    failure_window: float = Field(60.0, gt=0, le=UINT_MAX)
    #: failures from one address whatever the username (None: ten times max_failures)
    max_failures_per_address: int | None = Field(None, ge=0, le=UINT_MAX)
    allow_basic_without_tls: bool = False
    #: the key Digest nonces are made with (hex): the same on every instance behind one
    #: load balancer, so that a router whose next connection reaches another instance is
    #: not challenged again; unset, each start makes one (its workers share it)
    nonce_key: str | None = None

    _split_algorithms = field_validator("algorithms", mode="before")(_comma_list)

    @field_validator("realm")
    @classmethod
    def _check_realm(cls, value: str) -> str:
        # it is quoted in the challenge header: a quote, backslash or control character
        # would break it (the regex pydantic would name instead is no help to an operator)
        if re.search(r'["\\\x00-\x1f]', value):
            raise ValueError("no double quote, backslash or control character may be in a realm")
        return value

    @field_validator("algorithms")
    @classmethod
    def _unique_algorithms(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an algorithm is listed twice")
        return value

    @field_validator("nonce_key", mode="before")
    @classmethod
    def _check_nonce_key(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        # (never echoed: it is a secret)
        text = value.strip() if isinstance(value, str) else ""
        if len(text) < 2 * MIN_NONCE_KEY_BYTES or not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text):
            raise ValueError(
                f"{2 * MIN_NONCE_KEY_BYTES} or more hex digits (openssl rand -hex 32), "
                "the same on every instance"
            )
        return text.lower()

    @property
    def nonce_key_bytes(self) -> bytes | None:
        """``nonce_key`` as the authenticator takes it (None: unset)."""
        return bytes.fromhex(self.nonce_key) if self.nonce_key else None

    @field_validator("credentials_file")
    @classmethod
    def _check_credentials_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.context in (RECORDS_ONLY, CREDENTIALS_LATER):
            # (records only: it may be a systemd credential, there only while the service
            # runs; a reload reads it itself)
            return value
        scheme = info.data.get("scheme")
        if value and scheme in ("basic", "digest") and "realm" in info.data:
            from acsd.cwmp.credentials_file import load_credentials

            load_credentials(
                value,
                scheme=scheme,
                realm=info.data["realm"],
                algorithms=info.data.get("algorithms", ["MD5"]),
            )
        return value

    @model_validator(mode="after")
    def _needs_credentials(self, info: ValidationInfo) -> CwmpAuthConfig:
        if info.context == RECORDS_ONLY:
            return self  # a command on the records (device, token, db) checks no router
        if self.scheme != "none" and not self.password and not self.credentials_file:
            raise ValueError(
                f'scheme {self.scheme!r} needs password or credentials_file (or scheme "none")'
            )
        return self

    @field_serializer("password", "previous_password", "nonce_key")
    def _mask_password(self, value: str | None, info: SerializationInfo) -> str | None:
        # `acsd config check` prints the config; the workers' copy of it (context
        # WITH_SECRETS) must carry the password itself.
        if info.context == WITH_SECRETS or value is None:
            return value
        return "***" if value else ""


class TlsConfig(_Section):
    """``[api.tls]`` (and the base of ``[cwmp.tls]``): TLS is on when ``cert`` is set.

    Paths are relative to the daemon's working directory. That the files exist, can be
    read and belong together is checked at start-up (``acsd.tls.check_files``), not here:
    commands that only read the database must not need the daemon's private key."""

    cert: str | None = None
    key: str | None = Field(None, validate_default=True)

    @field_validator("cert", "key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("key")
    @classmethod
    def _key_with_cert(cls, value: str | None, info: ValidationInfo) -> str | None:
        cert = info.data.get("cert")
        if cert and not value:
            raise ValueError("cert is set but key is not: set both (PEM files) or neither")
        if value and not cert and "cert" in info.data:
            raise ValueError("key is set but cert is not: set both (PEM files) or neither")
        return value

    @property
    def enabled(self) -> bool:
        return self.cert is not None


class CwmpTlsConfig(TlsConfig):
    """``[cwmp.tls]``: as ``[api.tls]``, plus mTLS and the oldest protocol CPEs may use."""

    client_ca: str | None = None
    min_version: Literal["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"] = "TLSv1.2"

    @field_validator("client_ca", mode="before")
    @classmethod
    def _empty_ca_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("client_ca")
    @classmethod
    def _ca_needs_tls(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and not info.data.get("cert"):
            raise ValueError("client certificates need TLS: set cert and key as well")
        return value


class CwmpConfig(_Listener):
    listen: str = "0.0.0.0:7547"
    periodic_interval: int = Field(300, ge=1, le=UINT_MAX)
    online_grace: int = Field(60, ge=0, le=UINT_MAX)
    max_body: int = Field(1024 * 1024, ge=1024, le=UINT_MAX)
    max_sessions: int = Field(2000, ge=1, le=UINT_MAX)
    max_loop_lag: float = Field(0.25, ge=0, le=UINT_MAX)
    full_read_interval: float = Field(3600.0, ge=0, le=UINT_MAX)
    # (at least a second: a value in ms for s, 0.03, dropped every session)
    session_timeout: float = Field(30.0, ge=1, le=UINT_MAX)
    #: seconds a router may send nothing of a body it announced (a Content-Length larger
    #: than what it sends) before it is answered 408: nginx's client_body_timeout, between
    #: two reads, not for the whole body (which still has session_timeout to arrive)
    body_timeout: float = Field(10.0, gt=0, le=600)
    max_session_seconds: float = Field(600.0, gt=0, le=UINT_MAX)
    max_requests_per_session: int = Field(255, ge=1, le=UINT_MAX)
    retry_after: int = Field(60, ge=1, le=UINT_MAX)
    hold_requests: bool = False
    trust_forwarded: bool = False
    #: networks (CIDR) acsd never sends a Connection Request to, whatever URL a CPE
    #: reports: by default loopback, link-local (cloud metadata), multicast, reserved, and
    #: ("self") the addresses of acsd's own host
    connection_request_deny: list[str] = Field(default_factory=lambda: list(DEFAULT_DENY))
    #: answer a router whose Connection Request challenge is Basic only (its password
    #: then crosses the network readable); off: such a router is not asked (TR-069: Digest)
    connection_request_allow_basic: bool = False
    #: seconds between two Connection Requests to one router (by all processes on the
    #: database): a change within them is sent when they are over
    connection_request_interval: float = Field(10.0, ge=1, le=3600)
    #: seconds a Connection Request's whole exchange (connect, challenge, answer) may take:
    #: a router on a slow mobile link may need more; one that never answers holds one of
    #: the request slots that long
    connection_request_timeout: float = Field(5.0, ge=1, le=60)
    auth: CwmpAuthConfig = Field(default_factory=CwmpAuthConfig)
    tls: CwmpTlsConfig = Field(default_factory=CwmpTlsConfig)

    _split_networks = field_validator("connection_request_deny", mode="before")(_comma_list)

    @field_validator("connection_request_deny")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            if item.lower() == SELF:
                out.append(SELF)
                continue
            try:
                out.append(str(ipaddress.ip_network(item)))
            except ValueError as exc:  # "192.0.2.1/24 has host bits set", "not a network"
                raise ValueError(f"{item!r}: {exc}") from None
        return out

    @model_validator(mode="after")
    def _basic_reachable(self, info: ValidationInfo) -> CwmpConfig:
        # Basic is taken over TLS only (acsd's own, or a proxy's it trusts the word of):
        # without either, every router would be refused (403), whatever it sends.
        if info.context == RECORDS_ONLY:
            return self
        auth = self.auth
        if (
            auth.scheme == "basic"
            and not auth.allow_basic_without_tls
            and not self.tls.enabled
            and not self.trust_forwarded
        ):
            raise ValueError(
                'auth.scheme "basic" is taken over TLS only, and this port has none: set '
                "cwmp.tls (or trust_forwarded behind a TLS proxy), use Digest, or (passwords "
                "then cross the network readable) auth.allow_basic_without_tls"
            )
        return self


class ApiConfig(_Listener):
    listen: str = "127.0.0.1:7557"
    #: where clients reach the API (behind a proxy, say): the base of the absolute URLs
    #: acsd writes (the APN API's StatusUrl and Location); unset, the request's own
    public_url: str | None = None
    #: seconds a client may take to send a request's body once its headers are in: a body
    #: that never comes (a Content-Length larger than what is sent) is answered 408
    body_timeout: float = Field(30.0, gt=0, le=600)
    #: seconds a connection may go without a whole request's headers: an idle keep-alive
    #: connection, or headers that never finish (a slow-header client), is then closed
    idle_timeout: float = Field(75.0, gt=0, le=3600)
    tls: TlsConfig = Field(default_factory=TlsConfig)

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        shown = url_without_userinfo(value)  # (a user part may hold a password)
        try:
            url = URL(value)
        except ValueError as exc:
            raise ValueError(f"{shown!r}: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"{shown!r}: must be an http:// or https:// URL with a host")
        # (url.host decodes a name's IDNA form, xn--80aqu.example, into letters no host
        # name has; raw_host keeps it, but an IPv6 zone there reads %25)
        if not (_is_host(url.host) or _is_host(url.raw_host or "")):
            # (yarl takes "acs.example.com " as a host: the URLs written with it would not work)
            raise ValueError(f"{shown!r}: {url.host!r} is no host name or IP address")
        if url.explicit_port == 0:
            raise ValueError(f"{shown!r}: port 0 is no port a client can reach")
        if url.user is not None or url.password is not None:
            raise ValueError(f"{shown!r} with a user part: no user or password belongs here")
        if url.query_string or url.fragment:
            raise ValueError(f"{shown!r}: no query, fragment or user part")
        return str(url).rstrip("/")


#: the longest retention a setting takes (a century): beyond it, write 0 (for ever)
RETENTION_DAYS_MAX = 36500.0


class StoreConfig(_Section):
    url: str = "sqlite:///acsd.db"
    #: PostgreSQL only: the connections each process reads with (sessions' look-ups, API
    #: pages), beside its one writer connection; unset: 4
    pool_size: int | None = Field(None, ge=1, le=100)
    #: PostgreSQL only: store.url reaches the database through a pooler that lends a server
    #: connection per transaction (pgbouncer's pool_mode = transaction), so no prepared
    #: statement is kept between transactions
    transaction_pooling: bool = False
    #: SQLite only: seconds a write waits for the database's lock held by another process
    #: (another worker's batch, a backup, an operator's sqlite3 shell) before it fails, and
    #: its router or API client is told 503 + Retry-After; unset: 5
    busy_timeout: float | None = Field(None, gt=0, le=300)
    #: PostgreSQL only: seconds a write waits for a lock another client holds (a row an
    #: open transaction updated) before it fails with 503 + Retry-After, whatever the role
    #: or database sets; at most 10, the limit of any statement; unset: 2
    lock_timeout: float | None = Field(None, gt=0, le=10)
    #: days the audit log's entries are kept (acsd.retention); 0: for ever, the default:
    #: the log is the record of who changed what, and an upgrade must not start deleting
    #: what an operator's audits or contracts may still ask for; each sets its own bound
    audit_retention_days: float = Field(0.0, ge=0, le=RETENTION_DAYS_MAX)
    #: days a completed (or failed) APN API operation is kept after it was done, its
    #: StatusUrl answering 404 afterwards; 0: for ever. 30 by default: a client polls it
    #: for seconds or minutes, and a month covers one that retries after a long outage
    operations_retention_days: float = Field(30.0, ge=0, le=RETENTION_DAYS_MAX)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        # The very checks the store makes when it opens: a URL that passes here must not
        # stop serve or a command later. (Their messages never echo the URL: it may
        # carry a password.)
        from acsd.store import check_url

        try:
            check_url(value)
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("store.url: ")) from None
        return value

    @field_validator("pool_size")
    @classmethod
    def _pool_needs_postgres(cls, value: int | None, info: ValidationInfo) -> int | None:
        # Refused rather than ignored: an operator who sets it expects it to do something.
        from acsd.store import is_postgres

        if value is not None and "url" in info.data and not is_postgres(info.data["url"]):
            raise ValueError(
                "only a postgresql:// store.url has a read pool (SQLite reads on one "
                "connection per process): remove pool_size"
            )
        return value

    @field_validator("transaction_pooling")
    @classmethod
    def _pooling_needs_postgres(cls, value: bool, info: ValidationInfo) -> bool:
        from acsd.store import is_postgres

        if value and "url" in info.data and not is_postgres(info.data["url"]):
            raise ValueError("only a postgresql:// store.url goes through a connection pooler")
        return value

    @field_validator("busy_timeout")
    @classmethod
    def _busy_timeout_needs_sqlite(cls, value: float | None, info: ValidationInfo) -> float | None:
        from acsd.store import is_postgres

        if value is not None and "url" in info.data and is_postgres(info.data["url"]):
            raise ValueError(
                "only a sqlite:// store.url waits for a lock held by another process "
                "(PostgreSQL locks rows, not the database: its wait is lock_timeout): "
                "remove busy_timeout"
            )
        return value

    @field_validator("lock_timeout")
    @classmethod
    def _lock_timeout_needs_postgres(
        cls, value: float | None, info: ValidationInfo
    ) -> float | None:
        from acsd.store import is_postgres

        if value is not None and "url" in info.data and not is_postgres(info.data["url"]):
            raise ValueError(
                "only a postgresql:// store.url waits for a row's lock (SQLite's wait for "
                "its database's lock is busy_timeout): remove lock_timeout"
            )
        return value

    @field_serializer("url")
    def _mask_password(self, value: str, info: SerializationInfo) -> str:
        # a PostgreSQL URL may carry the password; the workers' copy needs it
        if info.context == WITH_SECRETS:
            return value
        from acsd.store import shown_url

        return shown_url(value)


class LogConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class ProvisioningConfig(_Section):
    drift_check: bool = True
    drift_check_interval: float = Field(0.0, ge=0, le=UINT_MAX)
    #: seconds after which what a router was found to lack is asked for again (0: never)
    absent_recheck_interval: float = Field(7 * 86400.0, ge=0, le=UINT_MAX)
    retry_base: float = Field(300.0, gt=0, le=UINT_MAX)
    retry_max_attempts: int = Field(5, ge=1, le=UINT_MAX)
    #: DNS servers (IPv4) of internet accounts' static lines; empty: each router keeps the
    #: ones it reported while on DHCP (its DHCP client, turned off for the line, took them)
    static_wan_dns: list[str] = Field(default_factory=list, max_length=4)

    _split_dns = field_validator("static_wan_dns", mode="before")(_comma_list)

    @field_validator("static_wan_dns")
    @classmethod
    def _check_dns(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            try:
                address = ipaddress.IPv4Address(item)
            except ValueError:
                raise ValueError(f"{item!r} is no IPv4 address") from None
            if not is_host_address(address):
                raise ValueError(f"{item!r} cannot be a router's DNS server")
            if str(address) not in out:  # a server twice is one DNS entry (a unique key)
                out.append(str(address))
        return out


class ProfilesConfig(_Section):
    dir: str | None = None


#: RFC 1035's letters, digits and hyphens per label, dots between: what routers' STUN
#: clients resolve (no scheme, no port: the port is stun.public_port)
_HOST_NAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+")


def _is_host(text: str) -> bool:
    """Whether ``text`` is a host name or an IP address (as a URL's host, unbracketed)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return _HOST_NAME.fullmatch(text) is not None
    return True


class StunConfig(_Listener):
    """``[stun]``: acsd's STUN server, and UDP Connection Requests through it to routers
    behind NAT (acsd.cwmp.stun)."""

    enabled: bool = False
    listen: str = "0.0.0.0:3478"
    #: the host name or address routers reach the STUN port at (STUNServerAddress): acsd's
    #: public one, which acsd cannot know behind a NAT or load balancer of its own
    public_address: str | None = None
    #: the port routers reach it at (STUNServerPort); unset: listen's
    public_port: int | None = Field(None, ge=1, le=65535)
    #: seconds between a router's STUN keepalives (STUNMinimumKeepAlivePeriod and
    #: STUNMaximumKeepAlivePeriod): below the NAT's UDP timeout, 30 s for carrier-grade NAT
    keepalive: int = Field(30, ge=1, le=3600)
    #: answers a second to one source address (an IPv6 one by its /64), and at once: a
    #: spoofed source is a victim the port would otherwise flood with answers. Routers
    #: behind one carrier-grade NAT address share it (one Binding Request per keepalive)
    source_rate: float = Field(10.0, gt=0, le=100000)
    source_burst: int = Field(20, ge=1, le=100000)

    @field_validator("public_address")
    @classmethod
    def _check_public_address(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        text = value.strip()
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            if not _HOST_NAME.fullmatch(text):
                raise ValueError(
                    f"{value!r} is no host name or IP address (no scheme, no port: "
                    "the port is stun.public_port)"
                ) from None
            return text.rstrip(".")
        # (loopback stays: a simulator on acsd's own host reaches it there)
        if address.is_unspecified or address.is_multicast:
            raise ValueError(f"{value!r} cannot be an address routers reach acsd at")
        return str(address)

    @model_validator(mode="after")
    def _needs_public_address(self) -> StunConfig:
        if self.enabled and self.public_address is None:
            raise ValueError(
                "stun.enabled needs stun.public_address: the host name or address routers "
                "reach this port at (acsd does not guess it)"
            )
        return self

    @property
    def server_port(self) -> int:
        """The port routers send their STUN requests to."""
        return self.public_port or self.port


class Config(_Section):
    cwmp: CwmpConfig = Field(default_factory=CwmpConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    profiles: ProfilesConfig = Field(default_factory=ProfilesConfig)
    provisioning: ProvisioningConfig = Field(default_factory=ProvisioningConfig)
    stun: StunConfig = Field(default_factory=StunConfig)
    shutdown_grace: float = Field(10.0, ge=0, le=UINT_MAX)
    #: processes sharing the listeners (SO_REUSEPORT); 1 = this process serves alone
    workers: int = Field(1, ge=1, le=64)
    #: seconds a worker's event loop may give no sign of life (workers > 1) before its
    #: supervisor kills it and starts it again; 0: never. gunicorn's worker timeout for the
    #: same check: far above a GC pause or a loop that runs late (max_loop_lag), short
    #: enough that 1/N of new connections do not wait on a hung worker for minutes.
    worker_hang_timeout: float = Field(30.0, ge=0, le=UINT_MAX)
    #: "auto" = uvloop where installed, else asyncio's own loop
    event_loop: Literal["auto", "asyncio", "uvloop"] = "auto"

    @field_validator("worker_hang_timeout")
    @classmethod
    def _hang_timeout_in_seconds(cls, value: float) -> float:
        # less than a second (a value in ms for s, 0.03) is a lag a busy loop can have:
        # healthy workers would be killed again and again
        if 0 < value < 1:
            raise ValueError("seconds, at least 1 (0: workers are not watched)")
        return value

    @model_validator(mode="after")
    def _listeners_apart(self) -> Config:
        # One address for both: the second bind fails at start (or, with SO_REUSEPORT,
        # routers and API clients reach each other's listener).
        (cwmp_host, cwmp_port), (api_host, api_port) = (
            parse_listen(self.cwmp.listen),
            parse_listen(self.api.listen),
        )
        if cwmp_port and cwmp_port == api_port and _overlap(cwmp_host, api_host):
            raise ValueError(
                f"cwmp.listen ({self.cwmp.listen}) and api.listen ({self.api.listen}) "
                "name the same address: give them different ports"
            )
        if self.stun.enabled and self.workers > 1 and self.stun.port == 0:
            # each worker would bind a port of its own, and routers know one
            raise ValueError("stun.listen needs a port of its own (not 0) with workers > 1")
        return self


def _overlap(one: str, other: str) -> bool:
    """Whether listeners on hosts ``one`` and ``other`` (one port) take the same addresses:
    one address however it is spelt ("::1", "0:0:0:0:0:0:0:1"), or a wildcard of its family
    ("0.0.0.0" all IPv4 ones, "::" every address: it is dual-stack, acsd.listen_socket)."""

    def parsed(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | str:
        try:
            return ipaddress.ip_address(host)
        except ValueError:
            return host.lower()  # a name: the same name only

    a, b = parsed(one), parsed(other)
    if a == b:
        return True
    for x, y in ((a, b), (b, a)):
        if x in ("", "*") or x == ipaddress.IPv6Address("::"):
            return True
        if x == ipaddress.IPv4Address("0.0.0.0") and isinstance(y, (ipaddress.IPv4Address, str)):
            return True
    return False


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _settings() -> Iterator[tuple[str, tuple[str, ...], Any]]:
    """Every setting as (its ACSD_* variable, its path in the configuration, its type)."""
    for name, section in Config.model_fields.items():
        annotation = section.annotation
        if not _is_section(annotation):
            yield f"ACSD_{name}".upper(), (name,), annotation
            continue
        for key, item in annotation.model_fields.items():
            nested = item.annotation
            if _is_section(nested):
                for sub, field in nested.model_fields.items():  # ACSD_CWMP_AUTH_<KEY>
                    yield f"ACSD_{name}_{key}_{sub}".upper(), (name, key, sub), field.annotation
            else:
                yield f"ACSD_{name}_{key}".upper(), (name, key), nested


def _from_text(env: str, key: str, text: str, annotation: Any) -> Any:
    """An environment variable's text as the type of its setting ``key``, in pydantic's
    lax mode ("1", "yes", "true" are booleans; a list is comma-separated)."""
    value: Any = text
    if getattr(annotation, "__origin__", None) is list:
        value = _comma_list(text)
    try:
        return TypeAdapter(annotation).validate_python(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        shown = ""
        if not _may_be_secret(key):
            shown = f" (got {text!r})"
            at = error["loc"][0] if error["loc"] else None
            if isinstance(value, list) and isinstance(at, int) and at < len(value):
                # a list's item: which one (the text is split at its commas)
                shown = f" (got {value[at]!r}, item {at + 1} of {text!r})"
        raise ConfigError(f"{env}: {error['msg']}{shown}") from None


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for env, path, annotation in _settings():
        if env in environ:
            node = found
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = _from_text(env, path[-1], environ[env], annotation)
    return found


#: ACSD_* variables that are not settings (set by the supervisor for its workers, or read
#: by `acsd profile check`)
_NOT_SETTINGS = frozenset(
    {
        "ACSD_SUPERVISED_WORKER",
        "ACSD_WORKER_CONFIG",
        "ACSD_METRICS_DIR",
        "ACSD_DATAMODELS",
        "ACSD_NONCE_KEY",
    }
)

#: settings the supervisor gives its workers (the addresses it bound) in the environment
_SUPERVISOR_ENV = ("ACSD_CWMP_LISTEN", "ACSD_API_LISTEN")


def unused_settings(config: Config) -> list[str]:
    """Settings the operator gave (in the file or the environment) that have no effect with
    the rest of the configuration: each one line naming it and why, for ``serve`` and
    ``config check`` to warn of. Accepted in silence, each looked like a setting in force
    (a credentials file under scheme "none": every router got in without a password)."""
    found: list[str] = []
    auth = config.cwmp.auth
    if auth.scheme == "none":
        keys = ("credentials_file", "password", "previous_password", "username", "nonce_key")
        given = [k for k in keys if getattr(auth, k)]
        found += [
            f'cwmp.auth.{key} is not used: scheme "none" asks routers for no credentials'
            for key in given
        ]
    else:
        if auth.scheme == "basic" and auth.nonce_key:
            found.append('cwmp.auth.nonce_key is not used: only scheme "digest" has nonces')
        if problem := previous_password_unused(auth):
            found.append(f"cwmp.auth.previous_password is not used: {problem}")
    for name in ("cwmp", "api"):
        tls = getattr(config, name).tls
        if not tls.enabled:
            found += [
                f"{name}.tls.{key} is not used: {name}.tls.cert is not set (no TLS)"
                for key in _changed(tls, exempt={"cert", "key"})
            ]
    if not config.stun.enabled:
        found += [
            f"stun.{key} is not used: stun.enabled is false"
            for key in _changed(config.stun, exempt={"enabled"})
        ]
    return found


def previous_password_unused(auth: CwmpAuthConfig) -> str | None:
    """Why ``previous_password`` opens nothing besides ``password`` (None: it does, or it
    is not set), under a scheme that authenticates."""
    if not auth.previous_password:
        return None
    if not auth.password:
        return "cwmp.auth.password is not set (the previous password is taken beside it only)"
    if auth.previous_password == auth.password:
        return "it is cwmp.auth.password itself (set it to the password before the rotation)"
    return None


def _changed(section: BaseModel, exempt: set[str]) -> list[str]:
    """The keys of ``section`` given a value other than their default (one given its
    default asks for nothing: config.example.toml lists the defaults of sections it
    leaves off)."""
    fields = type(section).model_fields
    return sorted(
        key
        for key in section.model_fields_set - exempt
        if getattr(section, key) != fields[key].get_default(call_default_factory=True)
    )


def unknown_env(environ: dict[str, str] | None = None) -> list[tuple[str, str | None]]:
    """ACSD_* variables that set nothing, each with the setting it may be a typo of
    (ACSD_WORKER: ACSD_WORKERS): a typo in one would otherwise go unnoticed (a typo in a
    file key is an error)."""
    environ = dict(os.environ if environ is None else environ)
    settings = [env for env, _, _ in _settings()]
    known = set(settings) | _NOT_SETTINGS
    out: list[tuple[str, str | None]] = []
    for name in sorted(n for n in environ if n.startswith("ACSD_") and n not in known):
        near = difflib.get_close_matches(name, settings, n=1, cutoff=0.85)
        out.append((name, near[0] if near else None))
    return out


def env_names(environ: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """The settings ``environ`` sets, each key path (("cwmp", "auth", "password")) with
    the ACSD_* variable that sets it."""
    return {path: env for env, path, _ in _settings() if env in environ}


#: what no ACSD_* variable set
_ABSENT = object()


def _overridden(data: dict[str, Any], overrides: dict[str, Any]) -> tuple[str, ...]:
    """Keys of the file's ``data`` that ACSD_* variables (their values ``overrides``) set
    otherwise ("store.url by ACSD_STORE_URL"): the variable wins, and the shipped unit sets
    ACSD_STORE_URL, so a [store] url written in the file would be ignored without a word."""
    out = []
    for env, keys, _ in _settings():
        node: Any = data
        given: Any = overrides
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
            # (a sentinel, not None: a variable may set a setting to None)
            given = given.get(key, _ABSENT) if isinstance(given, dict) else _ABSENT
        if node is None or given is _ABSENT:  # (TOML has no None: None is "not in the file")
            continue
        if given == node:  # (the same value written both ways overrides nothing: 2 and "2")
            continue
        out.append(f"{'.'.join(keys)} by {env}")
    return tuple(out)


def _section_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The section (model) that holds the key at ``loc``; None where loc leads nowhere."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not _is_section(field.annotation):
            return None
        model = field.annotation
    return model


def _unknown_key_hint(loc: tuple[Any, ...]) -> str:
    """What the operator may have meant by the unknown key at ``loc``: a top-level setting
    written below a [section] (TOML puts it in that section), a key of another section, or
    a near spelling; else the keys the section has."""
    name = str(loc[-1]) if loc else ""
    section = _section_at(loc)
    if section is None:
        return ""
    where = ".".join(str(part) for part in loc[:-1])
    top = Config.model_fields.get(name)
    if where and top is not None:
        if _is_section(top.annotation):
            return f" ([{name}] is a section of its own, not part of [{where}])"
        return f" ({name} is a top-level setting: write it above the first [section])"
    elsewhere = [".".join(path) for _, path, _ in _settings() if path[-1] == name]
    if elsewhere:
        return f" (did you mean {' or '.join(elsewhere)}?)"
    known = list(section.model_fields)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        meant = ".".join([*map(str, loc[:-1]), close[0]])
        if _is_section(section.model_fields[close[0]].annotation):
            meant = f"[{meant}]"
        return f" (did you mean {meant}?)"
    kind = f"[{where}]" if where else "the top level"
    return f" ({kind} takes: {', '.join(known)})"


#: keys whose value may hold a password although their name does not say so: a URL
_URL_KEYS = frozenset({"url", "public_url"})


def _may_be_secret(key: str) -> bool:
    """Whether a setting's value must not be shown in an error (what logs mask, and URLs,
    which may carry a password)."""
    return key in _URL_KEYS or is_secret_name(key)


#: TOML's names for what a key may hold, for a value that is not shown
_TOML_KINDS = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (dict, "a table"),
    (list, "an array"),
)


def _shown_input(loc: tuple[Any, ...], value: Any) -> str:
    """The value a type error points at, as the error shows it. What may hold a secret is
    named by its kind only: a secret key's value, a table or array (`[store.url]`), and
    text given for a whole section (`store = "postgresql://user:password@..."`)."""
    name = str(loc[-1]) if loc else ""
    section = _section_at(loc)
    field = section.model_fields.get(name) if section is not None else None
    is_section = field is not None and _is_section(field.annotation)
    if _may_be_secret(name) or is_section or isinstance(value, dict | list):
        kind = next((k for t, k in _TOML_KINDS if isinstance(value, t)), "a date or time")
        return kind
    return repr(value)


def _env_name(loc: tuple[Any, ...], overrides: dict[str, Any]) -> str | None:
    """The ACSD_* variable that set the value at ``loc``, if the environment did."""
    node: Any = overrides
    for depth, part in enumerate(loc):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
        path = tuple(str(p) for p in loc[: depth + 1])
        for env, setting, _ in _settings():
            if setting == path:
                return env
    return None


def _env_names_below(loc: tuple[Any, ...], overrides: dict[str, Any], message: str) -> list[str]:
    """The ACSD_* variables that set values in the section at ``loc`` (empty: none). Of
    the whole configuration (``loc`` empty), only those of keys its ``message`` names
    (its checks name them, cwmp.listen and api.listen): all would name every variable set,
    the ACSD_STORE_URL the shipped unit sets among them, in every such error."""
    path = tuple(str(p) for p in loc)
    return [
        env
        for env, setting, _ in _settings()
        if setting[: len(path)] == path
        and _env_name(setting, overrides) == env
        and (bool(path) or re.search(rf"(?<![\w.]){re.escape('.'.join(setting))}\b", message))
    ]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclasses.dataclass(frozen=True)
class LoadedConfig:
    """The configuration from one read of its file and of the environment, and what the
    environment did to it. Whoever needs the latter (the start's warnings, a reload's)
    takes it from here: a second read of the file could see another file than the one
    the configuration was made from (an edit saved in between), and the warning would
    then be about a file that is not in use."""

    config: Config
    #: keys of the file that ACSD_* variables set otherwise ("store.url by ACSD_STORE_URL")
    overridden_by_env: tuple[str, ...] = ()
    #: the settings ACSD_* variables set, each key path with its variable
    env_names: Mapping[tuple[str, ...], str] = dataclasses.field(default_factory=dict)


def load_config(
    path: str | Path | None = None,
    environ: dict[str, str] | None = None,
    *,
    records_only: bool = False,
    credentials_later: bool = False,
) -> Config:
    """Read, merge and validate. Raises ConfigError with one line naming file and key.
    ``records_only``: for commands that do not serve routers (no CPE password needed);
    ``credentials_later``: the CPE credentials file is not read (a reload reads it)."""
    return read_config(
        path, environ, records_only=records_only, credentials_later=credentials_later
    ).config


def read_config(
    path: str | Path | None = None,
    environ: dict[str, str] | None = None,
    *,
    records_only: bool = False,
    credentials_later: bool = False,
) -> LoadedConfig:
    """:func:`load_config`, with what the environment set besides the configuration; the
    file is read and parsed once. Raises ConfigError as load_config does."""
    source = str(path) if path else "defaults"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            raw = read_regular(path)
        except FileNotFoundError:
            raise ConfigError(f"{source}: file not found") from None
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
        try:
            data = parse_toml(toml_text(raw))
        except (NotTomlText, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    environ = dict(os.environ if environ is None else environ)
    overrides = _env_overrides(environ)
    # A worker's listeners are the supervisor's (it bound the ports): its reload errors
    # must not send the operator looking for ACSD_* variables they never set.
    theirs = _SUPERVISOR_ENV if "ACSD_SUPERVISED_WORKER" in environ else ()
    if any(env in environ and env not in theirs for env, _, _ in _settings()):
        source += " + ACSD_* environment"
    try:
        context = RECORDS_ONLY if records_only else CREDENTIALS_LATER if credentials_later else None
        config = Config.model_validate(_merge(data, overrides), strict=True, context=context)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")  # pydantic's, not ours
        if error["type"] == "extra_forbidden":
            kind = "section" if isinstance(error["input"], dict) else "key"
            message = f"unknown {kind}{_unknown_key_hint(error['loc'])}"
        elif error["type"] == "model_type":  # `store = "..."`: a section given a value
            message = f"a section, not a value: write its keys below a [{key}] line"
            message += f" (got {_shown_input(error['loc'], error['input'])})"
        elif error["type"].endswith("_type") or error["type"] == "literal_error":
            # strict: 1 for a boolean, "300" for a number; a value of none of the choices
            message += f" (got {_shown_input(error['loc'], error['input'])})"
        # a value from the environment is not in the file: say where the operator finds it
        if env := _env_name(error["loc"], overrides):
            message += f" (set by {env})"
        elif below := [
            e for e in _env_names_below(error["loc"], overrides, message) if e not in theirs
        ]:
            # a check of a whole section (scheme digest without a password) that a
            # variable took part in
            message += f" ({', '.join(below)} set in the environment)"
        where = f"{key}: " if error["loc"] else ""  # a check of several keys names them
        raise ConfigError(f"{source}: {where}{message}") from None
    return LoadedConfig(config, _overridden(data, overrides), env_names(environ))
