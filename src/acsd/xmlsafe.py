"""The one hardened XML parser for untrusted input (CPE SOAP, operator XML).

No DTD, no entities, no network, no huge trees (cwmp-reference §10.1). Any DOCTYPE or
ENTITY declaration is refused before lxml sees the bytes.
"""

from __future__ import annotations

import ctypes
import re
import threading

from lxml import etree


class _NothingToLoad(etree.Resolver):
    """Every external subset, entity and XInclude the input names resolves to nothing.

    ``load_dtd=False`` and ``no_network`` do not stop libxml2 from opening a *local* file
    that a DOCTYPE's external subset or a parameter entity names: a body that slips past
    :func:`has_dtd` (in an encoding it did not read) would have had the daemon open it, a
    FIFO freezing the event loop, and the error telling whether the file exists. Asked
    here first, nothing is opened; the DOCTYPE is then refused after the parse."""

    def resolve(self, system_url: str, public_id: str, context: object) -> object:
        return self.resolve_string("", context)


def _new_parser() -> etree.XMLParser:
    parser = etree.XMLParser(
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
    parser.resolvers.add(_NothingToLoad())
    return parser


#: Input parsed with one parser (and one libxml2 name dictionary) before both are replaced.
#: libxml2 keeps every element, attribute and prefix name and namespace URI it reads in a
#: per-thread dictionary for good: a client sending invented names (any CPE, before
#: authentication) would grow the daemon by ~40 bytes a name, 100 MB in 60 envelopes.
#: Replacing them after each MB bounds that to what a MB can hold (a few MB); a rotation
#: costs ~20 us, so a full load (~10 MB/s at 1,200 sessions/s) pays ~0.02% of a core.
ROTATE_BYTES = 1 << 20


class _Parsers(threading.local):
    """This thread's hardened parser, replaced with the thread's name dictionary after
    ROTATE_BYTES of input parsed on this thread. Per thread: lxml's dictionary is, and a
    rotation made by one thread would leave another's to grow.

    Nothing in acsd parses incrementally (``feed``, ``iterparse``): a rotation while such
    a parse is open on the thread would free names its document still uses."""

    def __init__(self) -> None:
        self.parser = _new_parser()
        self.parsed = 0

    def take(self, size: int) -> etree.XMLParser:
        self.parsed += size
        if self.parsed > ROTATE_BYTES:
            self.rotate()
            self.parsed = size
        return self.parser

    def rotate(self) -> None:
        # lxml keeps the calling thread's dictionary in its thread state under this key; a
        # new parser with its own dictionary then gives this thread a fresh one, and the old
        # one is freed once the documents parsed with it are gone (all but the first one of
        # the thread that imported lxml: lxml's global context keeps that one, bounded like
        # every other). No public API does this; tests/test_xml_names_bounded.py checks
        # that it still works with the lxml in use.
        state = _thread_state_dict()
        if state is not None:
            state.pop("_ParserDictionaryContext", None)
        self.parser = _new_parser()


_GET_STATE_DICT = ctypes.pythonapi.PyThreadState_GetDict
_GET_STATE_DICT.restype = ctypes.c_void_p  # borrowed: a py_object result would be released
_GET_STATE_DICT.argtypes = []


def _thread_state_dict() -> dict | None:
    address = _GET_STATE_DICT()
    return ctypes.cast(address, ctypes.py_object).value if address else None


_PARSERS = _Parsers()


def parse_xml(data: bytes) -> etree._Element:
    """``data`` parsed with the hardened parser: no DTD, no entities, no network, no huge
    trees. Raises what ``etree.fromstring`` raises; :func:`parse_errors` then holds the
    errors of this parse."""
    return etree.fromstring(data, _PARSERS.take(len(data)))


def parse_errors() -> etree._ListErrorLog:
    """The errors of this thread's last :func:`parse_xml` (a rotation happens before a
    parse, never between one and this)."""
    return _PARSERS.parser.error_log


DTD_MARKER = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_DTD_TEXT = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
#: characters XML 1.0 cannot carry at all, not even as character references
NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


#: how a document in UTF-16 or UTF-32 starts (XML 1.0 Appendix F): a byte order mark, or
#: its first "<" in that encoding; the longest first
_WIDE_STARTS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"), (b"\x00\x00\x00<", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
    (b"<\x00", "utf-16-le"), (b"\x00<", "utf-16-be"),
)  # fmt: skip
#: bytes of a wide document read for its DOCTYPE: the prolog is where one may stand, and
#: one past a long prolog is still refused after the parse (opening nothing, see
#: _NothingToLoad); reading all of a large body in every encoding stalled the loop
_WIDE_HEAD = 8192


def has_dtd(data: bytes) -> bool:
    """True when the bytes declare a DOCTYPE or ENTITY (checked before parsing), in an
    ASCII-compatible encoding or in UTF-16/32 (which libxml2 reads by their byte order
    mark or their first characters: ``<\0!\0D\0...`` is no ASCII ``<!DOCTYPE``)."""
    if b"<!" in data and DTD_MARKER.search(data) is not None:
        return True
    if b"\x00" not in data[:4]:
        return False
    for start, codec in _WIDE_STARTS:
        if data.startswith(start):
            # (a mark is no character; a "<" is the document's first)
            head = data[len(start) if b"<" not in start else 0 : _WIDE_HEAD]
            return _DTD_TEXT.search(head.decode(codec, errors="ignore")) is not None
    return False


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
