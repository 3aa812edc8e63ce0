"""The text of an operator's TOML file (the config, a credentials file, a profile).

TOML is UTF-8. A file that a Windows editor saved with a byte order mark is taken as it
is meant (tomllib alone answers it "Invalid statement (at line 1, column 1)", which points
at nothing the operator can see); a file in another encoding is told to be saved as UTF-8.
"""

from __future__ import annotations

import errno
import os
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
