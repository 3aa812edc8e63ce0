"""TLS for the two listeners: contexts from ``[cwmp.tls]`` and ``[api.tls]``, the start-up
check of their files, and certificate reload without dropping a connection.

A listener keeps the SSLContext it was started with for its whole life (asyncio binds it to
the listening socket). So a reload never changes that context. Instead, every handshake
passes through its SNI callback, which OpenSSL calls for every ClientHello (CPEs that dial an
IP address send no SNI, and the callback still runs), and the callback moves the new
connection onto the context built from the files as they are now. Connections already open
keep the certificate they were made with; a reload whose files are broken changes nothing.

What the start-up context fixes for the listener's life: the oldest protocol version and
whether a client certificate is requested at all. Changing those needs a restart.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import warnings
from dataclasses import dataclass
from typing import Any

from acsd.cert_expiry import Validity, notice, read_validity, warning_text
from acsd.config import Config, ConfigError, CwmpTlsConfig, TlsConfig
from acsd.log import get_logger
from acsd.throttle import Throttle
from acsd.workdir import relative_note

log = get_logger("acsd.tls")

#: ``min_version`` -> protocol version. TLS 1.0 and 1.1 are deprecated in Python as well.
VERSIONS = {
    "TLSv1": "TLSv1",
    "TLSv1.1": "TLSv1_1",
    "TLSv1.2": "TLSv1_2",
    "TLSv1.3": "TLSv1_3",
}
LEGACY = frozenset({"TLSv1", "TLSv1.1"})
# OpenSSL 3 refuses TLS 1.0/1.1 handshakes (SHA-1 signatures) above security level 0.
LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=0"
#: seconds between two tls.refused lines of one reason (the count has them all)
REFUSAL_LOG_INTERVAL = 10.0
#: seconds between two looks at how long the certificates served have left
EXPIRY_CHECK_INTERVAL = 86400.0


class TlsFileError(Exception):
    """A TLS file that cannot be used: ``key`` is the config key that names it."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """One listener's TLS files. ``section`` is its config prefix (``cwmp.tls``)."""

    section: str
    cert: str
    key: str
    client_ca: str | None = None
    min_version: str = "TLSv1.2"

    @classmethod
    def from_config(cls, section: str, tls: TlsConfig) -> TlsSettings | None:
        if not tls.enabled:
            return None
        assert tls.cert is not None and tls.key is not None
        if isinstance(tls, CwmpTlsConfig):
            return cls(section, tls.cert, tls.key, tls.client_ca, tls.min_version)
        return cls(section, tls.cert, tls.key)

    @property
    def mtls(self) -> bool:
        return self.client_ca is not None

    def same_shape(self, other: TlsSettings) -> bool:
        """True if ``other`` can be loaded into a running listener made with ``self``."""
        return self.mtls == other.mtls and self.min_version == other.min_version


def listener_settings(config: Config) -> dict[str, TlsSettings]:
    """``{"cwmp": ..., "api": ...}`` for the listeners that have TLS on."""
    found = {
        "cwmp": TlsSettings.from_config("cwmp.tls", config.cwmp.tls),
        "api": TlsSettings.from_config("api.tls", config.api.tls),
    }
    return {name: settings for name, settings in found.items() if settings is not None}


def warnings_for(settings: TlsSettings) -> list[str]:
    if settings.min_version in LEGACY:
        return [
            f"{settings.section}.min_version: {settings.min_version} is allowed; it is weak "
            f"(security level 0 ciphers) and only for CPEs that cannot do TLSv1.2"
        ]
    return []


def check_files(config: Config, source: str) -> list[str]:
    """Start-up check: every TLS file exists, is readable, and cert and key belong together.
    Raises :class:`ConfigError` (one line: file, key, reason); returns warnings."""
    found: list[str] = []
    for settings in listener_settings(config).values():
        try:
            build_context(settings)
        except TlsFileError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        found.extend(warnings_for(settings))
        validity = _validity_of(settings.cert)
        if validity is not None:
            said = warning_text(settings.section, settings.cert, validity, time.time())
            found.extend([said] if said else [])
    return found


def _validity_of(path: str) -> Validity | None:
    """The certificate's dates; None if they cannot be read (OpenSSL loaded it all the
    same, so it is served: only its expiry goes untold)."""
    try:
        return read_validity(path)
    except (OSError, ValueError) as exc:
        log.debug("tls.cert_dates_unread", cert=path, error=str(exc))
        return None


def _no_password() -> bytes:
    raise _EncryptedKey


class _EncryptedKey(Exception):
    pass


def _readable(key: str, path: str) -> None:
    note = relative_note(path)
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except FileNotFoundError:
        raise TlsFileError(key, f"file not found: {path}{note}") from None
    except PermissionError:
        raise TlsFileError(key, f"cannot read {path}{note}: permission denied") from None
    except IsADirectoryError:
        raise TlsFileError(key, f"{path}{note} is a directory, not a PEM file") from None
    except OSError as exc:
        raise TlsFileError(key, f"cannot read {path}{note}: {exc.strerror or exc}") from None


def _has_certificate(key: str, path: str) -> None:
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cafile=path)
    except ssl.SSLError:
        raise TlsFileError(key, f"no PEM certificate in {path}") from None


def build_context(settings: TlsSettings) -> ssl.SSLContext:
    """A server context from the files as they are now; :class:`TlsFileError` names the
    config key of the file that is wrong."""
    cert_key, key_key, ca_key = (
        f"{settings.section}.cert",
        f"{settings.section}.key",
        f"{settings.section}.client_ca",
    )
    _readable(cert_key, settings.cert)
    _readable(key_key, settings.key)
    if settings.client_ca is not None:
        _readable(ca_key, settings.client_ca)
    _has_certificate(cert_key, settings.cert)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1 / TLSv1_1
        context.minimum_version = getattr(ssl.TLSVersion, VERSIONS[settings.min_version])
    if settings.min_version in LEGACY:
        context.set_ciphers(LEGACY_CIPHERS)
    try:
        # A password callback that refuses: an encrypted key must fail here, never prompt
        # on a terminal the daemon does not have.
        context.load_cert_chain(settings.cert, settings.key, password=_no_password)
    except _EncryptedKey:
        raise TlsFileError(
            key_key, f"{settings.key} is encrypted; acsd needs an unencrypted PEM key"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsFileError(
                key_key,
                f"{settings.key} does not match the certificate in {cert_key} ({settings.cert})",
            ) from None
        raise TlsFileError(key_key, f"no usable PEM private key in {settings.key}") from None
    if settings.client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        try:
            context.load_verify_locations(cafile=settings.client_ca)
        except ssl.SSLError:
            raise TlsFileError(ca_key, f"no PEM certificate in {settings.client_ca}") from None
    return context


class ServerTls:
    """The TLS side of one listener: :attr:`context` goes to the listener once; :meth:`reload`
    makes new handshakes use the files as they are then."""

    def __init__(self, name: str, settings: TlsSettings) -> None:
        self.name = name
        self.settings = settings
        self.context = build_context(settings)
        self.context.sni_callback = self._select
        self.context.sslobject_class = _refusals_reported_to(self)
        self._current = self.context
        self.reloads = 0
        #: handshakes that failed (no or untrusted client certificate, no common protocol
        #: version, plain HTTP on the TLS port), by OpenSSL's reason
        self.refused: dict[str, int] = {}
        #: when each reason was last logged, and the refusals not logged since
        self._logged = Throttle(REFUSAL_LOG_INTERVAL)
        #: the dates of the certificate served (None: unreadable), as last loaded
        self.validity = _validity_of(settings.cert)
        self.tell_expiry()

    def tell_expiry(self) -> None:
        """Log tls.cert_expiring or tls.cert_expired if the certificate served is near its
        end or past it (at the start, at each reload, once a day: see watch_expiry)."""
        if self.validity is None:
            return
        level, event, fields = notice(self.name, self.settings.cert, self.validity, time.time())
        if level:
            getattr(log, level)(event, **fields)

    def handshake_failed(self, exc: ssl.SSLError) -> None:
        """Log and count a handshake that failed. The event loop drops such a connection
        without a word (and before any request, so no other log line names it): without
        this a router refused for its certificate left no trace at all. The TLS layer
        does not tell the client's address here."""
        reason = exc.reason or type(exc).__name__
        self.refused[reason] = self.refused.get(reason, 0) + 1
        # A port scanner fails handshakes by the thousand: one line per reason per
        # REFUSAL_LOG_INTERVAL, saying how many the ones in between were.
        # (and once they stop, a closing line with the count of the last ones held back)
        detail = getattr(exc, "verify_message", None) or str(exc)
        self._logged.tell(
            reason, log, "warning", "tls.refused", listener=self.name, reason=reason, detail=detail
        )

    def _select(self, ssl_object: Any, server_name: str | None, context: ssl.SSLContext) -> None:
        current = self._current
        if current is not context:
            ssl_object.context = current  # certificate and client CAs of the newest files
        return None

    def reload(self, settings: TlsSettings | None = None) -> None:
        """Build a context from ``settings`` (default: the same paths) and use it for new
        handshakes. Raises TlsFileError (nothing changes) or ValueError for settings that
        only a restart can apply."""
        settings = settings or self.settings
        if not self.settings.same_shape(settings):
            raise ValueError(
                f"{settings.section}: client_ca on/off and min_version take effect at restart"
            )
        context = build_context(settings)
        self._current = context
        self.settings = settings
        self.reloads += 1
        self.validity = _validity_of(settings.cert)
        log.info(
            "tls.reloaded",
            listener=self.name,
            cert=settings.cert,
            client_ca=settings.client_ca,
        )
        self.tell_expiry()


async def watch_expiry(listeners: dict[str, ServerTls]) -> None:
    """Every EXPIRY_CHECK_INTERVAL, each listener's certificate as served is told about
    again if it is near its end: a daemon that runs for months passes the 14 days without
    a start or a reload. (The dates are those read when the file was loaded: a file
    replaced without a reload is not what is served.)"""
    while True:
        await asyncio.sleep(EXPIRY_CHECK_INTERVAL)
        for tls in listeners.values():
            tls.tell_expiry()


def _refusals_reported_to(owner: ServerTls) -> type[ssl.SSLObject]:
    """An SSLObject class whose failed handshakes go to ``owner`` (the listener's context
    makes one per connection, in asyncio and uvloop alike: ``SSLContext.sslobject_class``)."""

    class _Reported(ssl.SSLObject):
        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, ssl.SSLEOFError):
                # more bytes to come; or the client hung up (a port probe): nothing refused
                raise
            except ssl.SSLError as exc:
                owner.handshake_failed(exc)
                raise

    return _Reported
