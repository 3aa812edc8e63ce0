"""Request bodies sent compressed (``Content-Encoding``), inflated by acsd for both
listeners rather than by aiohttp: aiohttp leaves ``x-gzip`` compressed, answers ``br`` and
``zstd`` (without their optional packages) with its own text/plain 400 before any handler
runs, and ignores encodings it does not know. Each listener answers these in its own error
form; the limit is applied to what a body inflates to, which is what stops a zip bomb."""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from acsd.log import peer_text

#: encodings acsd inflates, with zlib's window bits (47: gzip or zlib framing, whichever
#: the data has)
INFLATABLE = {"gzip": 47, "x-gzip": 47, "deflate": 15}
#: what a client may send; in this order in error messages
ACCEPTED = "gzip, x-gzip, deflate or none"


class InflateError(Exception):
    """A body that cannot be taken: ``status`` 415 (an encoding acsd does not inflate),
    413 (too large once inflated) or 400."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _joined(headers: Mapping[str, str], name: str) -> str | None:
    """Every line of a list-valued header as one comma-separated value (None if absent)."""
    getall = getattr(headers, "getall", None)
    if getall is None:
        return headers.get(name)
    values = getall(name, None)
    return None if values is None else ", ".join(values)


def _elements(value: str | None) -> list[str]:
    """A list header's elements, stripped; empty ones left out (RFC 9110 5.6.1)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def content_encoding(headers: Mapping[str, str]) -> str:
    """The request's Content-Encoding, lower case ("" for none or identity); an encoding
    acsd does not inflate raises :class:`InflateError` (415), before the body is read.

    So does a transfer coding other than chunked (``Transfer-Encoding: gzip, chunked``):
    aiohttp takes the chunks apart and hands the rest on still compressed, which was then
    refused as text that is not UTF-8 or not XML, a reason that sent the client's author
    looking in the wrong place."""
    codings = _joined(headers, "Transfer-Encoding")
    if codings is not None:
        other = [c for c in _elements(codings) if c.lower() != "chunked"]
        if other:
            raise InflateError(
                415,
                f"unsupported Transfer-Encoding '{peer_text(', '.join(other))}'; send the body"
                " chunked or with a Content-Length, compressed as Content-Encoding "
                "gzip or deflate if at all",
            )
    # (two Content-Encoding lines are one list, RFC 9110 5.3: "gzip" twice is "gzip, gzip",
    # refused as such, not inflated once; "identity" codes nothing, and is left out)
    sent = ", ".join(
        c for c in _elements(_joined(headers, "Content-Encoding")) if c.lower() != "identity"
    )
    encoding = sent.lower()
    if not encoding:
        return ""
    if encoding not in INFLATABLE:
        raise InflateError(
            415, f"unsupported Content-Encoding '{peer_text(sent)}'; send {ACCEPTED}"
        )
    return encoding


def inflate(data: bytes, encoding: str, limit: int) -> bytes:
    """``data`` as sent with ``encoding`` (from :func:`content_encoding`), inflated; refused
    (413) as soon as it would exceed ``limit`` bytes."""
    if not encoding or not data:
        return data  # an empty body, whatever its headers say
    # "deflate" is zlib framing by the RFC; some clients send raw deflate.
    tries = (INFLATABLE[encoding], -15) if encoding == "deflate" else (INFLATABLE[encoding],)
    error = ""
    for bits in tries:
        try:
            return _inflate(data, encoding, bits, limit)
        except zlib.error as exc:
            error = str(exc)
    raise InflateError(400, f"body could not be read: not {encoding} ({error})")


def _inflate(data: bytes, encoding: str, bits: int, limit: int) -> bytes:
    out = b""
    while True:
        inflater = zlib.decompressobj(bits)
        out += inflater.decompress(data, limit + 1 - len(out))
        if len(out) > limit:
            raise InflateError(413, f"body exceeds {limit} bytes once inflated")
        if not inflater.eof:
            raise InflateError(400, f"body could not be read: {encoding} stream is cut short")
        data = inflater.unused_data
        if not data:
            return out
        if bits != INFLATABLE["gzip"]:
            raise InflateError(400, f"body could not be read: data after the {encoding} stream")
        # gzip allows several members one after the other (RFC 1952 §2.2); anything else
        # after the first is not gzip and fails the next round
