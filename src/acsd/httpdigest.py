"""HTTP Digest (RFC 7616) and Basic, both ends: the client side answers a challenge (acsd's
Connection Requests; the simulator's CWMP POSTs) with MD5, SHA-256 or their -sess
variants, qop=auth (auth-int where only that is offered and the body is known); the server
side challenges and verifies (the simulator's Connection Request listener: MD5, qop auth,
auth-int or none)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

# A name starts where no name character precedes it: otherwise findall tries every
# position inside a long word, each scanning to its end (quadratic: a CPE's 8 kB challenge
# of one word held the event loop for two seconds).
_PARAM = re.compile(r'(?<![\w-])([A-Za-z][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
#: what the client answers, in the names RFC 7616 gives them
ALGORITHMS = ("MD5", "MD5-sess", "SHA-256", "SHA-256-sess")
# A challenge starts where a token is followed by whitespace and another token that is not
# the start of "name=" (a Digest parameter): "Basic realm=x, Digest realm=y" -> two.
_CHALLENGE = re.compile(r"(?:^|,)\s*([A-Za-z][\w!#$%&\'*+.^`|~-]*)(?=\s+[^\s=,]+\s*=|\s*(?:,|$))")


def _hash(algorithm: str, data: str | bytes) -> str:
    base = algorithm.upper().removesuffix("-SESS")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return _HASHES[base if base in _HASHES else "MD5"](raw).hexdigest()


def supported(algorithm: str) -> bool:
    return algorithm.upper() in {a.upper() for a in ALGORITHMS}


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
    scheme, rest = split_scheme(header)
    return scheme.lower(), parse_params(rest)


def split_scheme(header: str) -> tuple[str, str]:
    """An auth header (Authorization, WWW-Authenticate) -> (its scheme as written, the
    rest): after the scheme any whitespace, a tab too (RFC 7235 asks for spaces; embedded
    HTTP stacks, CPEs' on both ends, write what their C code wrote)."""
    parts = header.split(None, 1)
    return (parts[0], parts[1] if len(parts) > 1 else "") if parts else ("", "")


def parse_challenges(values: list[str]) -> list[tuple[str, dict[str, str]]]:
    """Every challenge in some WWW-Authenticate values (one header may hold several,
    comma-separated), in order: [(scheme in lower case, parameters), ...]."""
    out = []
    for value in values:
        starts = _challenge_starts(value)
        for begin, end in zip(starts, [*starts[1:], len(value)], strict=True):
            out.append(parse_challenge(value[begin:end].strip().strip(",")))
    return out


def _challenge_starts(value: str) -> list[int]:
    """Where each challenge begins in ``value`` (outside quoted strings)."""
    starts = []
    # One pass: the quoting is carried from one match to the next (scanning from the
    # start for each made a header of thousands of commas quadratic).
    quoted, escaped, scanned = False, False, 0
    for match in _CHALLENGE.finditer(value):
        for char in value[scanned : match.start(1)]:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = not quoted
        scanned = max(scanned, match.start(1))
        if not quoted:
            starts.append(match.start(1))
    return starts or [0]


def response_digest(
    params: dict[str, str],
    method: str,
    uri: str,
    username: str,
    password: str,
    body: bytes = b"",
) -> str:
    algorithm = params.get("algorithm", "MD5")
    ha1 = _hash(algorithm, f"{username}:{params.get('realm', '')}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = _hash(algorithm, f"{ha1}:{params.get('nonce', '')}:{params.get('cnonce', '')}")
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if params.get("qop") == "auth-int":  # the body's hash too (RFC 7616 §3.4.3)
        ha2 = _hash(algorithm, f"{method}:{uri}:{_hash(algorithm, body)}")
    if params.get("qop"):
        return _hash(
            algorithm,
            f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}:{ha2}",
        )
    return _hash(algorithm, f"{ha1}:{params.get('nonce', '')}:{ha2}")  # RFC 2069, no qop


def authorization(
    challenge: dict[str, str],
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int,
    body: bytes | None = None,
) -> str:
    """The Authorization header answering a Digest ``challenge`` (request number ``nc``):
    qop "auth" where offered, else "auth-int" where offered and the ``body`` is known
    (a CPE that offers only that rejects an answer without it)."""
    offered = [q.strip().lower() for q in challenge.get("qop", "").split(",") if q.strip()]
    algorithm = challenge.get("algorithm", "MD5")
    params = {
        "realm": challenge.get("realm", ""),
        "nonce": challenge.get("nonce", ""),
        "algorithm": algorithm,
    }
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(params['realm'])}",
        f"nonce={_quote(params['nonce'])}",
        f"uri={_quote(uri)}",
        f"algorithm={algorithm}",
    ]
    qop = "auth" if "auth" in offered else "auth-int" if "auth-int" in offered else None
    if qop == "auth-int" and body is None:
        qop = None  # (as before: the answer without qop, RFC 2069's)
    if qop is not None:
        params.update(qop=qop, nc=f"{nc:08x}", cnonce=secrets.token_hex(8))
        parts += [f"qop={qop}", f"nc={params['nc']}", f"cnonce={_quote(params['cnonce'])}"]
    digest = response_digest(params, method, uri, username, password, body or b"")
    parts.append(f'response="{digest}"')
    if "opaque" in challenge:
        parts.append(f"opaque={_quote(challenge['opaque'])}")
    return "Digest " + ", ".join(parts)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def basic(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return "Basic " + token


def challenge(realm: str, nonce: str, opaque: str, stale: bool = False) -> str:
    extra = ", stale=true" if stale else ""
    return (
        f'Digest realm="{realm}", qop="auth,auth-int", nonce="{nonce}", opaque="{opaque}", '
        f"algorithm=MD5{extra}"
    )


def verify(
    header: str,
    method: str,
    username: str,
    password: str,
    nonce: str,
    realm: str,
    body: bytes = b"",
) -> bool:
    """Check a Digest Authorization header against the expected credentials and nonce: an
    answer with qop "auth", "auth-int" (which covers the request's ``body``) or, as
    RFC 2069 clients send it, none (the server decides how often its nonce may serve)."""
    scheme, rest = split_scheme(header)
    if scheme.lower() != "digest":
        return False
    params = parse_params(rest)
    if params.get("username") != username or params.get("nonce") != nonce:
        return False
    if params.get("realm") != realm or params.get("algorithm", "MD5").upper() != "MD5":
        return False
    qop = params.get("qop")
    if qop not in (None, "auth", "auth-int"):
        return False
    if qop and not (params.get("cnonce") and re.fullmatch(r"[0-9a-fA-F]{8}", params.get("nc", ""))):
        return False
    expected = response_digest(params, method, params.get("uri", ""), username, password, body)
    return hmac.compare_digest(expected, params.get("response", ""))
