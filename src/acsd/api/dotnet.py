"""How .NET reads an ``int`` and a ``bool`` from text, for the APN API (seed 003), whose
service is ASP.NET: Json.NET (a numeric string for an int member, ``"True"`` for a bool)
and DataContractSerializer (XML text) read a client's values so, and a client written
against that service sends what they take.

* ``Int32.Parse`` with ``NumberStyles.Integer`` (Json.NET's ``ReadAsInt32`` of a string,
  ``XmlConvert.ToInt32``): blanks either side (tab to carriage return, space), one ``+``
  or ``-``, ASCII digits (leading zeros allowed), within -2147483648..2147483647. No
  fraction, exponent or digit group: ``"1.0"`` and ``"1e3"`` are no Int32.
* ``Boolean.TryParse`` (Json.NET's ``ReadAsBoolean`` of a string): ``true`` or ``false`` in
  any case, blanks or NULs either side. ``"1"``, ``"yes"`` are no Boolean there.
"""

from __future__ import annotations

import re
import unicodedata

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: NumberStyles.AllowLeadingWhite/AllowTrailingWhite: U+0009-U+000D and U+0020 only
_INT32 = re.compile(r"[\t\n\v\f\r ]*([+-]?)0*([0-9]+)[\t\n\v\f\r ]*", re.ASCII)


def int32(text: str) -> int | None:
    """``text`` as ``Int32.Parse(text, NumberStyles.Integer, InvariantCulture)`` reads it;
    None where that throws (not a whole number, or beyond Int32)."""
    m = _INT32.fullmatch(text)
    if m is None or len(m[2]) > 10:  # (before int(): a long run of digits is no Int32)
        return None
    value = int(m[1] + m[2])
    return value if INT32_MIN <= value <= INT32_MAX else None


def _blank(char: str) -> bool:
    # char.IsWhiteSpace (the Unicode separators, tab to carriage return, U+0085) or NUL,
    # what Boolean.TryParse trims
    return char in "\t\n\v\f\r\x85\x00" or unicodedata.category(char) in ("Zs", "Zl", "Zp")


def boolean(text: str) -> bool | None:
    """``text`` as ``Boolean.TryParse`` reads it; None where it fails."""
    start, end = 0, len(text)
    while start < end and _blank(text[start]):
        start += 1
    while end > start and _blank(text[end - 1]):
        end -= 1
    word = text[start:end].lower()
    return True if word == "true" else False if word == "false" else None
