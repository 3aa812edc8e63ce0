"""The Authorization headers of a CWMP request, parsed: their values (each once), a Basic
token's username and password, a Digest header's parameters (RFC 7616; ``username*`` of
RFC 8187), and whether a Digest ``uri`` names the request-target.

Parsing only, no verdict: what is malformed comes back as None, and the authenticator
(auth.py) decides what that costs. A module of its own, so that what is forgiven of CPE
firmware here (a Basic token that is not UTF-8, an absolute or path-only ``uri``) is in
one place, apart from the checks of the credentials.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from aiohttp import web

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = re.compile(rf'\s*({_TOKEN}\*?)\s*=\s*("(?:[^"\\]|\\.)*"|{_TOKEN})\s*(?:,|$)')


#: distinct Authorization headers one request may carry: firmware that repeats the header
#: after a 401 sends two; more is no CPE's retry but a list of guesses
MAX_AUTHORIZATIONS = 2


def authorizations(request: web.BaseRequest) -> list[str]:
    """The request's Authorization headers, each value once, in the order sent."""
    return list(dict.fromkeys(request.headers.getall("Authorization", ())))


def basic_credentials(token: str) -> tuple[str, str] | None:
    """(username, password) of a Basic header's token, or None if it is malformed."""
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user_bytes, sep, pass_bytes = raw.partition(b":")
    if not sep:
        return None
    return _decode(user_bytes), _decode(pass_bytes)


def digest_username(params: dict[str, str]) -> str | None:
    """A Digest header's username, plain or RFC 8187 encoded (``username*``)."""
    username = params.get("username")
    if username is None and "username*" in params:
        username = _ext_value(params["username*"])
    return username


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _ext_value(text: str) -> str | None:
    """RFC 8187 ``UTF-8''percent%20encoded`` -> text (None if malformed)."""
    charset, sep, rest = text.partition("'")
    _language, sep2, encoded = rest.partition("'")
    if not sep or not sep2 or charset.lower() not in ("utf-8", "iso-8859-1"):
        return None
    try:
        return unquote(encoded, encoding=charset, errors="strict")
    except (UnicodeDecodeError, LookupError):
        return None


def same_target(uri: str, target: str) -> bool:
    """The Digest ``uri`` names the request-target: the same path and query (an absolute
    URI, which some clients send as ``uri`` or as the request-target itself, e.g. through
    a proxy that rewrote the request line, is compared by its path and query).

    A ``uri`` of the path alone also names a target with a query: firmware given an ACS
    URL such as ``/acs?sn=1`` may hash the path only (as old browsers did; Apache's
    AuthDigestEnableQueryStringHack), and was refused at every session. acsd answers
    every query alike, so the query is nothing the password has to vouch for; the
    response still covers the method, the path and the nonce count."""
    if uri == target:
        return True
    uri_path, target_path = _path_qs(uri), _path_qs(target)
    if uri_path is None or target_path is None:
        return False
    return uri_path == target_path or (
        "?" not in uri_path and target_path.partition("?")[0] == uri_path
    )


def _path_qs(text: str) -> str | None:
    """The path and query of a request-target or URI (None: not one)."""
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. "http://[::1/": not a URI, so not this target
        return None
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


#: a quoted-pair inside a quoted-string (RFC 9110 5.6.4)
_QUOTED_PAIR = re.compile(r"\\(.)")


def parse_auth_params(text: str) -> dict[str, str] | None:
    """``a="x", b=y`` -> {"a": "x", "b": "y"} (names lower-cased); None if malformed or a
    parameter repeats."""
    out: dict[str, str] = {}
    position, text = 0, text.strip()
    while position < len(text):
        match = _PARAM.match(text, position)
        if match is None or match.end() == position:
            return None
        name, value = match.group(1).lower(), match.group(2)
        if value.startswith('"'):
            value = value[1:-1]
            if "\\" in value:  # most values hold no escape: no substitution to run
                value = _QUOTED_PAIR.sub(r"\1", value)
        if name in out:
            return None
        out[name] = value
        position = match.end()
    return out
