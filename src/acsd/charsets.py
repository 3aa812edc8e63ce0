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
