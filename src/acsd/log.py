"""Logging: structlog JSON lines when not on a terminal (journald), readable lines on a TTY.

Secrets never reach a log line: any key that looks like a secret is masked, whatever the
call site passed, also inside dicts and lists passed as values.

Under systemd (stderr is the journal stream named by ``$JOURNAL_STREAM``) each line starts
with its syslog priority (``<6>{...}``): journald strips it and files the line at that
priority, so ``journalctl -u acsd -p warning`` works and the stored MESSAGE is pure JSON.
Python's own logging (aiohttp's errors) goes through the same renderer, so every line of
the stream has one format.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import io
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import structlog

from acsd.throttle import Throttle

_SECRET_KEY = re.compile(
    r"(pass(word|phrase)?|secret|token|presharedkey|psk|pin|nonce_?key)(\d+g)?$", re.I
)
MASK = "***"


def is_secret_name(name: str) -> bool:
    """True for keys and parameter paths whose values must never be shown."""
    leaf = name.rsplit(".", 1)[-1]
    return bool(_SECRET_KEY.search(leaf))


#: the CWMP exchange being handled, (session reference, serial): every line written while
#: it is (by whatever code) names them. One variable set per exchange: structlog's
#: bind_contextvars makes and sets one per key, and its reset as many again, which cost
#: ~1 % of a steady session's CPU for three exchanges.
_EXCHANGE: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "acsd_exchange", default=None
)


def bind_exchange(ref: str, serial: str) -> contextvars.Token[tuple[str, str] | None]:
    """Name ``ref`` (:func:`session_ref`) and ``serial`` on every line written in this
    context until :func:`unbind_exchange` with the token returned."""
    return _EXCHANGE.set((ref, serial))


def unbind_exchange(token: contextvars.Token[tuple[str, str] | None]) -> None:
    _EXCHANGE.reset(token)


@contextlib.contextmanager
def exchange(ref: str, serial: str) -> Iterator[None]:
    """:func:`bind_exchange` for a block."""
    token = bind_exchange(ref, serial)
    try:
        yield
    finally:
        unbind_exchange(token)


def _merge_exchange(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    bound = _EXCHANGE.get()
    if bound is not None:  # (a line's own session or serial wins, as structlog's do)
        event_dict.setdefault("session", bound[0])
        event_dict.setdefault("serial", bound[1])
    return event_dict


@functools.lru_cache(maxsize=8192)
def session_ref(session_id: str) -> str:
    """What logs call a CWMP session: a digest of its id, because the id is the session
    cookie and whoever holds it can speak for the CPE in that session. (Cached: every
    exchange of a session binds it to its log lines.)"""
    return hashlib.blake2s(session_id.encode(), digest_size=6).hexdigest()


#: is_secret_name's verdict on the keys of log lines, which are a few dozen identifiers
#: written in the code: every key of every line is tested, and the test (~0.8 us) made a
#: third of an info line's cost. Bounded: longer keys (a path, a client's text) and keys
#: past the cap are tested each time.
_KEY_VERDICTS: dict[str, bool] = {}
_CACHED_KEY_LEN = 64
_CACHED_KEYS = 2048


def _secret_key(key: str) -> bool:
    """:func:`is_secret_name` for the key of a log field."""
    verdict = _KEY_VERDICTS.get(key)
    if verdict is None:
        verdict = is_secret_name(key)
        if len(key) <= _CACHED_KEY_LEN and len(_KEY_VERDICTS) < _CACHED_KEYS:
            _KEY_VERDICTS[key] = verdict
    return verdict


def _masked(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return value
    if isinstance(value, dict):
        return {
            k: MASK if isinstance(k, str) and _secret_key(k) and v else _masked(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_masked(v, depth + 1) for v in value]
    return value


#: a tuple, not ``dict | list | tuple``: isinstance takes half the time with it
_CONTAINERS = (dict, list, tuple)


def _mask_secrets(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    # Values are replaced while iterating, keys never added or removed: no copy of the items.
    for key, value in event.items():
        if not value or key == "event":
            continue
        secret = _KEY_VERDICTS.get(key)
        if secret is None:
            secret = _secret_key(key)
        if secret:
            event[key] = MASK
        elif isinstance(value, _CONTAINERS):
            event[key] = _masked(value)
    return event


def _printable_message(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """For the console renderer: terminal controls in the message escaped. It writes the
    other values as repr() does (controls, C1 and bidirectional overrides escaped) but
    the message as it is, and a message of Python logging's (aiohttp's) may quote what a
    CPE or a client sent: an ESC there would act on the operator's terminal, a newline
    start a line acsd never wrote. JSON lines escape control characters themselves.
    (Call sites still cut what a peer sent to a length: :func:`peer_text`.)"""
    message = event.get("event")
    if isinstance(message, str) and _UNPRINTABLE.search(message):
        event["event"] = printable(message)
    return event


def _json_line(event: dict[str, Any], **kw: Any) -> str:
    """One log line as JSON: orjson (~0.5 us where the json module takes ~4 us a line),
    the json module for what orjson refuses (a lone surrogate from an operator's escaped
    JSON, an integer beyond 64 bits) so that such a line is still written."""
    default = kw.get("default", repr)
    try:
        return orjson.dumps(event, default=default, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(event, default=default)


#: syslog priorities (journald reads a leading ``<N>``)
_PRIORITY = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "info": 6, "debug": 7}


def on_journal(stream: Any) -> bool:
    """True when ``stream`` is the journald stream systemd connected (``$JOURNAL_STREAM`` is
    ``device:inode`` of it; a child whose stderr was redirected must not match)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


class JournalPriorities(io.TextIOBase):
    """stderr under journald for what is not a log line: ``acsd: config error: ...`` (the
    exit-2 line the unit does not restart after), ``acsd: warning: ...``, argparse's usage
    errors. journald files a line without ``<N>`` at info, so `journalctl -p warning`
    missed why acsd would not start. Lines that have a priority (the log's) pass as they
    are; a warning gets 4, anything else printed there 3 (an error)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._pending = ""
        # (threads write too: the store's, a thread pool's; a line is one write then)
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            while "\n" in self._pending:
                line, self._pending = self._pending.split("\n", 1)
                self._stream.write(f"{_priority_of(line)}{line}\n")
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._stream.write(f"{_priority_of(self._pending)}{self._pending}")
                self._pending = ""
            self._stream.flush()

    def fileno(self) -> int:
        return int(self._stream.fileno())

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


def _priority_of(line: str) -> str:
    if len(line) > 2 and line[0] == "<" and line[1].isdigit() and line[2] == ">":
        return ""
    return "<4>" if line.startswith("acsd: warning:") else "<3>"


class _Prioritised:
    """Wraps the renderer: ``<N>`` in front of each line, N from the event's level."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> str:
        priority = _PRIORITY.get(str(event.get("level", method)).lower(), 6)
        return f"<{priority}>{self.renderer(logger, method, event)}"


_handler: logging.Handler | None = None
#: fields on every line of this process (the worker index under ``workers = N``)
_static: dict[str, Any] = {}


class _LossyWriteLogger(structlog.WriteLogger):
    """A line that cannot be written (stderr in a file on a full disk, a closed pipe) is
    lost rather than raised in whatever logged it: the store's writer task died of one, and
    with it every later write until a restart."""

    def msg(self, message: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # ValueError: the stream was closed
            super().msg(message)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class _LossyWriteLoggerFactory:
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __call__(self, *args: Any) -> _LossyWriteLogger:
        return _LossyWriteLogger(self._stream)


def set_static(**fields: Any) -> None:
    """Put these fields on every later log line of this process (survives reconfigure)."""
    _static.update(fields)


def _add_static(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in _static.items():
        event.setdefault(key, value)
    return event


def configure(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_json_line)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    if on_journal(stream):
        renderer = _Prioritised(renderer)
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _merge_exchange,
            _add_static,
            structlog.processors.add_log_level,
            stamp,
            _mask_secrets,
            structlog.processors.format_exc_info,
            *([] if fmt == "json" else [_printable_message]),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # WriteLogger: one write() per line (print() makes two), so the lines of workers
        # sharing one stderr never interleave.
        logger_factory=_LossyWriteLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # Python logging (aiohttp's errors) in the same format; its access log is noise at
    # CWMP rates, so only warnings and up come through.
    global _handler
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                _merge_exchange,
                _add_static,
                structlog.processors.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(allow=("reason", "remote")),
                stamp,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _mask_secrets,
                structlog.processors.format_exc_info,
                *([] if fmt == "json" else [_printable_message]),
                renderer,
            ],
        )
    )
    handler.addFilter(_ClientFault(logging.getLevelNamesMapping()[level.upper()]))
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    _handler = handler
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # aiohttp logs a first request that is no HTTP at all at debug level (TLS on the plain
    # port: a router whose ACS URL says https://); _ClientFault lets only that through.
    logging.getLogger("aiohttp.server").setLevel(logging.DEBUG)


#: aiohttp's message for a request it could not read, its argument the client's address
_AIOHTTP_FROM = "Error handling request from %s"


class _ClientFault(logging.Filter):
    """aiohttp logs a request it could not read (a header line too long, a body that does
    not inflate) as an error with a traceback. The fault is the client's, and anyone who
    reaches the port could fill the log with them: one info line with the reason instead."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiohttp."):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        # Here, not at the top: the profile checker imports this module and must not pull
        # in aiohttp; a record from aiohttp means it is loaded.
        from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
        from aiohttp.web_protocol import RequestPayloadError

        # what a client's malformed request (or its leaving mid-request) raises in aiohttp
        if not isinstance(exc, HttpProcessingError | RequestPayloadError | ConnectionResetError):
            # aiohttp.server passes its debug lines (see configure): only warnings and up
            return record.levelno >= logging.WARNING
        if self.level > logging.INFO:
            return False
        if record.msg == _AIOHTTP_FROM and isinstance(record.args, tuple) and record.args:
            # the client's address, as on acsd's own refusals: the one way to tell which
            # router (or scanner) sent it
            # (an IPv4 client of a dual-stack listener as its IPv4 address, as elsewhere)
            from acsd.listen_socket import client_address

            record.remote = client_address(str(record.args[0]))
        record.msg, record.args = "client_request_unreadable", ()
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info = record.exc_text = None
        if isinstance(exc, LineTooLong):
            # aiohttp quotes the first 100 bytes of an over-long header's value without its
            # name: an Authorization or Cookie value cannot be told from any other there
            record.reason = f"400, message: a request line or header over {exc.args[1]} bytes"
        else:
            record.reason = peer_text(_without_credentials(str(exc)), 200)
        return True


#: "//" and what follows up to the last "@": where a URL carries a user and a password
_USERINFO = re.compile(r"//.*@", re.DOTALL)


def url_without_userinfo(url: str, limit: int | None = None) -> str:
    """A URL someone else wrote (a router's Connection Request URL, an operator's setting)
    for a log line or an error: credentials in it (``http://admin:pw@...``) are not shown,
    also where the URL is broken, so anything before its last "@" is masked (a path's "@"
    too: over-masking a broken URL is safe). Masked before it is cut, so that a long
    password is not cut to a readable start."""
    if "@" not in url:
        return url[:limit]
    return _USERINFO.sub("//***@", url, count=1)[:limit]


#: a credential-bearing header as aiohttp quotes an unreadable request line in its error
#: ("Authorization : Bearer ...", "Cookie: ...\x01"): the value, to the end of the line (a
#: Digest header holds quotes of its own: stopping at the quote that ends the quoted line
#: left its response, enough to guess the password offline)
_CREDENTIAL_HEADER = re.compile(r"((?:proxy-)?authorization|cookie)(\s*:)[^\n]*", re.IGNORECASE)


#: a header line aiohttp quotes (as Python bytes) that begins with white space: the
#: continuation of a folded header (obs-fold), quoted without the name of the header it
#: continues, which may well be an Authorization or a Cookie
_CONTINUATION = re.compile(r"""b(?:'(?: |\\t)(?:[^'\\]|\\.)*'|"(?: |\\t)(?:[^"\\]|\\.)*")""")


def _without_credentials(text: str) -> str:
    """``text`` with the values of Authorization and Cookie headers replaced, and the
    continuation lines of folded headers (whose header cannot be told) too."""
    text = _CONTINUATION.sub("<a folded header's continuation, not shown>", text)
    return _CREDENTIAL_HEADER.sub(r"\1\2 <redacted>", text)


#: what a terminal would act on rather than show: C0/C1 controls (an ESC starts a colour or
#: cursor sequence on the operator's TTY), and bidirectional overrides, which show the
#: rest of a line reversed; and lone surrogates, which stand for bytes that were no UTF-8
_UNPRINTABLE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def printable(text: str) -> str:
    """``text`` with what a terminal would act on escaped ("\\x1b"): for what records hold
    (a router's serial, an operator's device name) printed to a terminal or a log."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)


def peer_text(text: str, limit: int = 64) -> str:
    """What a peer wrote (a CPE's header, a client's), fit for a log line or an error
    reason: :func:`printable`, at most ``limit`` of its characters, "..." where it was cut.
    A header may be 8 KB; a log line names it."""
    head = printable(text[:limit])
    return head + "..." if len(text) > limit else head


class _Logger:
    """A logger bound once per logging configuration. structlog's lazy proxy binds anew on
    every call (~2.4 us, several times per CWMP session, even for a filtered-out debug line);
    caching on first use instead would keep a level that a reload changed."""

    __slots__ = ("_bound", "_factory", "_name", "_processors", "_wrapper")

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._bound: Any = None
        self._processors: Any = None
        self._wrapper: Any = None
        self._factory: Any = None

    def _current(self) -> Any:
        config = structlog.get_config()
        processors = config["processors"]
        wrapper = config["wrapper_class"]
        factory = config["logger_factory"]
        if (
            self._bound is None
            or processors is not self._processors
            or wrapper is not self._wrapper
            or factory is not self._factory
        ):
            proxy = structlog.get_logger(self._name) if self._name else structlog.get_logger()
            self._bound = proxy.bind()
            self._processors, self._wrapper, self._factory = processors, wrapper, factory
        return self._bound

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._current(), attr)


def get_logger(name: str | None = None) -> Any:
    return _Logger(name)


#: seconds between two lines of one passing failure (event and reason) of log_failure
PASSING_LOG_INTERVAL = 10.0


def log_failure(logger: Any, event: str, passing: str | None, **fields: Any) -> None:
    """Log a failure from inside its ``except`` block: ``passing`` is why it is trouble that
    passes (the database unavailable, as the store says): a warning with that reason and no
    traceback, since every call fails alike meanwhile and a traceback each buries the one
    useful line; and one such line per event and reason every PASSING_LOG_INTERVAL, with
    ``since_last`` counting the failures in between (in an outage every Inform's look-up
    and take-over failed alike, hundreds of lines a second on a large network, and
    journald's rate limit then dropped the lines that said when it ended), and a closing
    line with ``held_back`` once it stops (acsd.throttle). None: an error with the
    traceback, which is a bug's, every time."""
    if passing is None:
        logger.exception(event, **fields)
        return
    _PASSING_TOLD.tell((event, passing), logger, "warning", event, error=passing, **fields)


class Once:
    """Keys already logged about, for a warning that every look-up or session would
    otherwise repeat (a damaged row, a record's unusable setting): the first time per
    key. Bounded: past ``most`` keys it starts over, and some are told again."""

    __slots__ = ("_most", "_seen")

    def __init__(self, most: int = 10_000) -> None:
        self._seen: set[Any] = set()
        self._most = most

    def first(self, key: Any) -> bool:
        """True the first time ``key`` is asked about (and remembered from then on)."""
        if key in self._seen:
            return False
        if len(self._seen) >= self._most:
            self._seen.clear()
        self._seen.add(key)
        return True


_PASSING_TOLD = Throttle(PASSING_LOG_INTERVAL)
