"""The text of an operator's TOML file (the config, a credentials file, a profile).

TOML is UTF-8 without a byte order mark. tomllib answers a file that a Windows editor saved
with one "Invalid statement (at line 1, column 1)", which points at nothing the operator
can see; these errors say what is wrong and what to do.
"""

from __future__ import annotations

#: the byte order mark, as the first character of the decoded text
BOM = "\ufeff"

BOM_PROBLEM = "the file starts with a byte order mark (BOM): save it as UTF-8 without BOM"


class NotTomlText(ValueError):
    """Bytes that cannot be a TOML file before any parsing: not UTF-8, or a BOM first."""


def toml_text(raw: bytes) -> str:
    """``raw`` as the text tomllib parses; raises :class:`NotTomlText`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotTomlText(f"not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    if text.startswith(BOM):
        raise NotTomlText(BOM_PROBLEM)
    return text
