"""The text of an operator's TOML file (the config, a credentials file, a profile).

TOML is UTF-8. A file that a Windows editor saved with a byte order mark is taken as it
is meant (tomllib alone answers it "Invalid statement (at line 1, column 1)", which points
at nothing the operator can see); a file in another encoding is told to be saved as UTF-8.
"""

from __future__ import annotations

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
