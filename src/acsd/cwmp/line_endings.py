"""HTTP lines ended by a bare LF: refused, and said so.

Old embedded HTTP clients end their request and header lines with "\\n" alone. RFC 9112
(2.2) lets a server take that, and lets it refuse; aiohttp's request parser (llhttp, whose
lenient mode aiohttp turns on for responses only and does not expose for requests; the
pure-Python parser reads requests by CRLF too) refuses it, and a parser of acsd's own in
front of it, or aiohttp's pure-Python one fed by LF, would be request-smuggling surface and
several times the CPU per request. So acsd refuses them too, but with a reason that says
what is wrong: llhttp's own names the symptom where it met it ("Bad status line: Expected
CRLF after version", "Invalid header field char"), which sent operators looking at the
request line or the headers' names rather than the line endings.
"""

from __future__ import annotations

import re

from aiohttp.http_exceptions import HttpProcessingError

#: the answer's text (and the log line's reason, client_request_unreadable)
BARE_LF = (
    "HTTP request lines end in a bare LF; acsd reads only CRLF line endings (RFC 9112 2.2): "
    "the router's HTTP client must end each request and header line with CR LF"
)

#: llhttp's message quotes the bytes where it stopped as a Python bytes literal, and
#: puts a caret under the byte it could not take on the next line
_QUOTED = re.compile(r"^( *b['\"])(.*)\n( *)\^", re.MULTILINE)
#: the pure-Python parser's own wording (AIOHTTP_NO_EXTENSIONS=1)
_PY_PARSER = "Bad line ending, expected CRLF"


def bare_lf(exc: BaseException | None) -> bool:
    """Whether aiohttp refused a request because a line of it ends in LF without CR."""
    if not isinstance(exc, HttpProcessingError):
        return False
    text = exc.message if isinstance(exc.message, str) else ""
    if _PY_PARSER in text:
        return True
    quoted = _QUOTED.search(text)
    if quoted is None:
        return False
    at = len(quoted.group(3)) - len(quoted.group(1))
    literal = quoted.group(2)
    # The caret is under the LF ("\n" in the literal) or just past it, as llhttp's state
    # was when it stopped; a LF that a CR ("\r") comes before is no bare one.
    for lf in (at, at - 2):
        if lf >= 0 and literal[lf : lf + 2] == "\\n":
            return literal[max(0, lf - 2) : lf] != "\\r"
    return False
