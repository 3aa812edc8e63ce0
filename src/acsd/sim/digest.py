"""HTTP Digest (RFC 7616, MD5, qop=auth) for both ends the simulator plays: answering the
ACS's challenge on its CWMP POSTs, and challenging the ACS's Connection Requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

_PARAM = re.compile(r'([A-Za-z][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def parse_params(text: str) -> dict[str, str]:
    """``a="x", b=y`` -> {"a": "x", "b": "y"} (keys lower-cased, quotes removed)."""
    out = {}
    for key, value in _PARAM.findall(text):
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out[key.lower()] = value
    return out


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """A WWW-Authenticate value -> (scheme in lower case, parameters)."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), parse_params(rest)


def response_digest(
    params: dict[str, str], method: str, uri: str, username: str, password: str
) -> str:
    ha1 = _md5(f"{username}:{params.get('realm', '')}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    if params.get("qop"):
        return _md5(
            f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}:{ha2}"
        )
    return _md5(f"{ha1}:{params.get('nonce', '')}:{ha2}")  # RFC 2069 style, no qop


def authorization(
    challenge: dict[str, str], method: str, uri: str, username: str, password: str, nc: int
) -> str:
    """The Authorization header answering a Digest ``challenge`` (request number ``nc``)."""
    offered = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    params = {"realm": challenge.get("realm", ""), "nonce": challenge.get("nonce", "")}
    parts = [
        f'username="{username}"',
        f'realm="{params["realm"]}"',
        f'nonce="{params["nonce"]}"',
        f'uri="{uri}"',
        "algorithm=MD5",
    ]
    if "auth" in offered:
        params.update(qop="auth", nc=f"{nc:08x}", cnonce=secrets.token_hex(8))
        parts += ["qop=auth", f"nc={params['nc']}", f'cnonce="{params["cnonce"]}"']
    digest = response_digest(params, method, uri, username, password)
    parts.append(f'response="{digest}"')
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(parts)


def basic(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return "Basic " + token


def challenge(realm: str, nonce: str, opaque: str) -> str:
    return f'Digest realm="{realm}", qop="auth", nonce="{nonce}", opaque="{opaque}", algorithm=MD5'


def verify(header: str, method: str, username: str, password: str, nonce: str, realm: str) -> bool:
    """Check a Digest Authorization header against the expected credentials and nonce."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return False
    params = parse_params(rest)
    if params.get("username") != username or params.get("nonce") != nonce:
        return False
    if params.get("realm") != realm or params.get("algorithm", "MD5").upper() != "MD5":
        return False
    if params.get("qop") not in (None, "auth") or (params.get("qop") and not params.get("cnonce")):
        return False
    expected = response_digest(params, method, params.get("uri", ""), username, password)
    return hmac.compare_digest(expected, params.get("response", ""))
