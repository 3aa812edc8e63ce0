"""The text of an operator's TOML file (the config, a credentials file, a profile).

TOML is UTF-8. A file that a Windows editor saved with a byte order mark is taken as it
is meant (tomllib alone answers it "Invalid statement (at line 1, column 1)", which points
at nothing the operator can see); a file in another encoding is told to be saved as UTF-8.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tomllib
from typing import Any

#: the byte order mark, as the first character of the decoded text
BOM = "\ufeff"


class NotTomlText(ValueError):
    """Bytes that cannot be a TOML file before any parsing: not UTF-8."""


def toml_text(raw: bytes) -> str:
    """``raw`` as the text tomllib parses (without a byte order mark); raises
    :class:`NotTomlText`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotTomlText(f"not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    return text.removeprefix(BOM)


#: the largest TOML file read: a credentials file of a million routers is ~100 MB, a
#: configuration or a profile a few KB; /dev/zero is not read until memory runs out
MAX_BYTES = 256 << 20


def read_regular(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the regular file at ``path``. Anything else is refused with an
    OSError that says so: a FIFO would block the reader until something writes to it (a
    SIGHUP reload held the daemon's event loop), a device such as /dev/zero never ends."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if info.st_size > MAX_BYTES:
            raise OSError(errno.EFBIG, f"larger than {MAX_BYTES >> 20} MB")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(MAX_BYTES + 1)
    finally:
        os.close(fd)


def parse_toml(text: str) -> dict[str, Any]:
    """``text`` parsed as TOML; nesting too deep for the parser is a TOMLDecodeError too
    (it raised RecursionError, a traceback rather than the file's error)."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError("arrays or tables nested too deeply") from None


# one part of a dotted key: "quoted", 'literal' or bare
_KEY_PART = r"""\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*"""
_KEY_PATH = re.compile(rf"{_KEY_PART}(?:\.{_KEY_PART})*")
_PART = re.compile(_KEY_PART)


def _parts(text: str) -> tuple[str, ...]:
    out = []
    for match in _PART.finditer(text):
        basic, literal, bare = match.groups()
        if basic is not None:
            # TOML's basic strings escape as JSON's do (\uXXXX, \n, \"): an escape JSON
            # lacks (\UXXXXXXXX) leaves the key as written, and its line unfound
            with contextlib.suppress(ValueError):
                basic = json.loads(f'"{basic}"')
        out.append(next(p for p in (basic, literal, bare) if p is not None))
    return tuple(out)


def key_line(text: str, key: tuple[str, ...]) -> int | None:
    """The number (from 1) of the first line of ``text`` that defines ``key`` (a dotted
    path, e.g. ``("devices", "CPE1")``) or something under it: a ``[table]`` header or a
    ``key = value`` line, in any of TOML's spellings. tomllib tells where the TOML is
    broken but not where a value is, which an error about the value should say. None if
    no line is found (a line inside a multi-line string may be taken for one: the
    number is a pointer, not a proof)."""
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            inner = stripped.strip("[").split("]", 1)[0]
            if not _KEY_PATH.fullmatch(inner):
                continue
            table = _parts(inner)
            path = table
        else:
            match = _KEY_PATH.match(line)
            if match is None or not line[match.end() :].startswith("="):
                continue
            path = table + _parts(match.group(0))
        if path[: len(key)] == key:
            return number
    return None
