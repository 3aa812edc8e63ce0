"""The one hardened XML parser for untrusted input (CPE SOAP, operator XML).

No DTD, no entities, no network, no huge trees (cwmp-reference §10.1). Any DOCTYPE or
ENTITY declaration is refused before lxml sees the bytes.
"""

from __future__ import annotations

import re

from lxml import etree

#: One parser for the process: lxml serialises concurrent use of a parser object, and both
#: users parse on the event loop thread anyway.
PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
    recover=False,
    collect_ids=False,
)
DTD_MARKER = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
#: characters XML 1.0 cannot carry at all, not even as character references
NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def has_dtd(data: bytes) -> bool:
    """True when the bytes declare a DOCTYPE or ENTITY (checked before parsing)."""
    return b"<!" in data and DTD_MARKER.search(data) is not None


def xml_text(value: str) -> str:
    """``value`` with what XML 1.0 cannot carry replaced by U+FFFD: for output that must
    be written whatever it holds (an error naming a client's bad key, a record stored
    before its field was checked)."""
    return NOT_XML.sub("\ufffd", value)


#: byte order marks and the encoding each one fixes (RFC 7303 §3.2: a mark wins over any
#: declaration and over the HTTP charset)
BYTE_ORDER_MARKS = {b"\xef\xbb\xbf": "utf-8", b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16"}
_ENCODING_DECLARED = re.compile(rb"""\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._-]+)""")


def declared_encoding(data: bytes) -> str | None:
    """The encoding an XML document fixes for itself, lower case: by its byte order mark,
    else by the encoding of its XML declaration; None when it fixes none (a parser then
    reads UTF-8)."""
    for mark, encoding in BYTE_ORDER_MARKS.items():
        if data.startswith(mark):
            return encoding
    declared = _ENCODING_DECLARED.match(data)
    return declared.group(1).decode().lower() if declared else None
