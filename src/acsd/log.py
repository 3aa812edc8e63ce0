"""Logging: structlog JSON lines when not on a terminal (journald), readable lines on a TTY.

Secrets never reach a log line: any key that looks like a secret is masked, whatever the
call site passed.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_SECRET_KEY = re.compile(r"(pass(word|phrase)?|secret|token|presharedkey|psk|pin)(\d+g)?$", re.I)
MASK = "***"


def is_secret_name(name: str) -> bool:
    """True for keys and parameter paths whose values must never be shown."""
    leaf = name.rsplit(".", 1)[-1]
    return bool(_SECRET_KEY.search(leaf))


def _mask_secrets(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if key != "event" and is_secret_name(key) and event[key]:
            event[key] = MASK
    return event


def configure(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # aiohttp's own access log is noise at CWMP rates; its errors still come through.
    logging.basicConfig(level=logging.WARNING, stream=stream)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name) if name else structlog.get_logger()
