"""Reading a CWMP request's body: the Content-Types accepted, the body read against its
size limit and stall timer, and a body in a charset only its HTTP header names turned into
UTF-8 for the XML parser."""

from __future__ import annotations

import asyncio

from aiohttp import StreamReader, web

from acsd.charsets import is_transform
from acsd.xmlsafe import declared_encoding

# Real CPE stacks label SOAP in many ways (curl-based ones even send form encoding); what
# is refused is only what is clearly something else.
ACCEPTED_TYPES = {
    "",
    "text/xml",
    "application/xml",
    "application/soap+xml",
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
    "text/html",  # embedded HTTP stacks that label every body so (FreeACS takes it too)
}


def comma_content_type(header: str) -> tuple[str, str | None] | None:
    """The media type and charset of a Content-Type that separates its parameters with a
    comma (``text/xml, charset=utf-8``, as some CPE stacks write it), which aiohttp reads
    as one unknown media type; None when the header is not of that shape."""
    if "," not in header:
        return None
    media, *params = (part.strip() for part in header.replace(";", ",").split(","))
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return media.lower(), charset


async def read_past(content: StreamReader, limit: int, stall: float, deadline: float) -> bytes:
    """The body as it arrives, stopping as soon as it is longer than ``limit``; TimeoutError
    when nothing of it comes for ``stall`` seconds, or not all of it by ``deadline`` (the
    loop's clock). One timer, moved at each chunk."""
    loop = asyncio.get_running_loop()
    body = bytearray()
    async with asyncio.timeout(None) as timer:
        while True:
            timer.reschedule(min(deadline, loop.time() + stall))
            chunk = await content.readany()
            if not chunk:
                break
            body += chunk
            if len(body) > limit:
                break
    return bytes(body)


_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_UTF16_NAMES = frozenset({"utf-16", "utf16"})


def declared_charset(data: bytes, charset: str | None) -> bytes:
    """``data`` in UTF-8 when only the HTTP header names its charset (no XML declaration
    with an encoding, no byte order mark): XML parsers take such a body for UTF-8, and a
    Latin-1 "Société" would fail. A body that declares its encoding is left to it; an
    unknown charset, one that is no character set (``punycode``: quadratic, on the event
    loop), or bytes that are not in it, leave the body as sent."""
    if not charset or charset.lower() in _UTF8_NAMES or declared_encoding(data) is not None:
        return data
    if is_transform(charset):
        return data
    if charset.lower() in _UTF16_NAMES:
        # No byte order mark (declared_encoding found none): Python's codec would take the
        # host's order. An XML document's first character is ASCII ("<" or a space), so
        # the zero byte of the first pair tells the order (XML 1.0 Appendix F); without
        # one, big-endian (RFC 2781 4.3). MIPS routers come in both orders.
        charset = "utf-16-le" if data[1:2] == b"\x00" and data[:1] != b"\x00" else "utf-16-be"
    try:
        return data.decode(charset).encode()
    except (LookupError, UnicodeError):
        # (UnicodeError: also a codec that fails with no UnicodeDecodeError, "undefined",
        # and a decode to a lone surrogate, e.g. unicode_escape's \ud800, that no UTF-8 holds)
        return data


def body_held_back(request: web.BaseRequest) -> bool:
    """Whether the client waits for ``100 Continue`` before it sends the body: answered
    without it, the client may send the body or not, so the connection cannot carry
    another request (RFC 9110 10.1.1) and is closed."""
    expect = request.headers.get("Expect", "").strip()
    return bool(expect) and not request.content.is_eof()
