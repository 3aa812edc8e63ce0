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
