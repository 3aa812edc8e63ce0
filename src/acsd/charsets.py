"""Which charsets a client's body is decoded in. A Content-Type's charset goes to Python's
codecs, and some of those are no character set at all but transforms of Unicode text:
``punycode`` decodes in quadratic time (150 kB took 2.5 s, 1 MB minutes), all of it on
the event loop, so one request declared so froze every CWMP session and the API."""

from __future__ import annotations

import codecs

#: Python text codecs that no IANA charset names (canonical names, as codecs.lookup
#: gives them): nothing a CPE or an operator's client writes its body in.
NOT_CHARSETS = frozenset({"punycode", "idna", "unicode-escape", "raw-unicode-escape", "undefined"})


def is_transform(charset: str) -> bool:
    """True when ``charset`` names one of Python's codecs that is not a character set
    (``punycode``, ``idna``, the escape codecs): a body must not be decoded with it.
    Unknown names are False: the caller's LookupError says what it says for those."""
    try:
        return codecs.lookup(charset).name in NOT_CHARSETS
    except (LookupError, ValueError, TypeError):
        return False


#: bytes Windows-1252 leaves undefined: read as ISO-8859-1's (C1 controls)
_CP1252_HOLES = frozenset(b"\x81\x8d\x8f\x90\x9d")


def _as_cp1252(err: UnicodeError) -> tuple[str, int]:
    assert isinstance(err, UnicodeDecodeError)
    bad = err.object[err.start : err.end]
    text = "".join(chr(b) if b in _CP1252_HOLES else bytes([b]).decode("cp1252") for b in bad)
    return text, err.end


#: codecs error handler: a byte that is not UTF-8 read as Windows-1252's character
LEGACY_BYTES = "acsd-cp1252"
codecs.register_error(LEGACY_BYTES, _as_cp1252)

#: what firmware that keeps text in a legacy encoding sends inside envelopes it labels
#: UTF-8: Western European routers' Latin-1 (Windows-1252), Chinese ones' GBK
LEGACY_ENCODINGS = ("cp1252", "gbk")


def mixed_utf8(data: bytes) -> str:
    """``data`` as UTF-8, each byte that is none read as Windows-1252: what a router of
    Latin-1 firmware means, and a lossless reading of anything else (GBK's bytes too),
    which :func:`as_sent_by` reproduces from the text the router holds."""
    return data.decode("utf-8", LEGACY_BYTES)


def as_sent_by(text: str, encoding: str) -> str | None:
    """``text`` as acsd reads it from a router that keeps it in ``encoding`` and sends
    those bytes in an envelope labelled UTF-8; None when ``encoding`` cannot hold it."""
    try:
        return mixed_utf8(text.encode(encoding))
    except UnicodeEncodeError:
        return None
