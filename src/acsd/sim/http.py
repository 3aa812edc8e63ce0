"""A deliberately small HTTP/1.1 client on asyncio streams: one persistent connection per
CWMP session, ``Content-Length`` bodies, session cookies, Basic/Digest answers to 401.

Written by hand rather than on aiohttp so the simulator controls every byte it sends (the
quirks need that: an empty POST without Content-Length, dropped cookies) and so thousands of
routers cost one socket and a few objects each.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as _ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from acsd import httpdigest as digest

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 32 * 1024 * 1024
USER_AGENT = "acsd-sim/0.1"
_SOAP_HEADERS = 'Content-Type: text/xml; charset="utf-8"\r\nSOAPAction: ""\r\n'


class HttpError(Exception):
    """The exchange failed (connection dropped, timeout, a response we cannot read)."""


@dataclass(slots=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes = b""
    set_cookies: list[str] = field(default_factory=list)
    #: each WWW-Authenticate header on its own (joining them with ", " loses challenges)
    challenges: list[str] = field(default_factory=list)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


class HttpClient:
    """POSTs to one URL over one kept-alive connection (reopened if the server closes it),
    or over a new connection for each request (``reconnect``)."""

    def __init__(
        self,
        url: str,
        *,
        ssl: _ssl.SSLContext | None = None,
        cookies: bool = True,
        timeout: float = 30.0,
        credentials: tuple[str, str] | None = None,
        reconnect: bool = False,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported ACS URL {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.ssl = ssl if parts.scheme == "https" else None
        if parts.scheme == "https" and self.ssl is None:
            self.ssl = _ssl.create_default_context()
        host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = self.port == (443 if self.ssl else 80)
        self.host_header = host if default_port else f"{host}:{self.port}"
        self.keep_cookies = cookies
        #: one TCP connection per request, as CPE stacks that never keep one alive do
        self.reconnect = reconnect
        self.cookies: dict[str, str] = {}
        self.timeout = timeout
        self.credentials = credentials
        self._auth: tuple[str, dict[str, str]] | None = None  # scheme, challenge
        self._nc = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        # the part of every request head that never changes, built once
        self._head = f"POST {self.path} HTTP/1.1\r\nHost: {self.host_header}\r\n"
        self._head += f"User-Agent: {USER_AGENT}\r\n"
        if reconnect:
            self._head += "Connection: close\r\n"

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, _ssl.SSLError):
                await writer.wait_closed()

    async def post(self, body: bytes, *, content_length: bool = True) -> Response:
        """POST ``body``; ``content_length=False`` on an empty body sends neither
        Content-Length nor Transfer-Encoding (a quirk of some CPE stacks)."""
        try:
            async with asyncio.timeout(self.timeout):
                sent_credentials = self._auth is not None
                response = await self._exchange(body, content_length)
                if response.status == 401 and self._take_challenge(response, sent_credentials):
                    response = await self._exchange(body, content_length)
                return response
        except TimeoutError:
            await self.close()
            raise HttpError(f"no answer within {self.timeout:g}s") from None
        except (OSError, asyncio.IncompleteReadError, _ssl.SSLError) as exc:
            await self.close()
            raise HttpError(f"connection dropped: {self._dropped(exc)}") from None

    def _dropped(self, exc: BaseException) -> str:
        """Why the exchange failed, in words for the operator trying the simulator."""
        if isinstance(exc, asyncio.IncompleteReadError):
            # (its own text, "0 bytes read on a total of undefined expected bytes", says
            # nothing)
            reason = "the ACS closed the connection without answering"
        else:
            reason = str(exc) or type(exc).__name__
        # TLS 1.3 refuses a missing client certificate after the handshake: the client
        # sees the connection close, or the alert
        if self.ssl is not None and (
            isinstance(exc, asyncio.IncompleteReadError) or "CERTIFICATE_REQUIRED" in reason
        ):
            reason += " (with [cwmp.tls] client_ca, give the router --cert and --key)"
        return reason

    def _take_challenge(self, response: Response, sent_credentials: bool) -> bool:
        """Remember a 401's challenge; True if a retry with credentials makes sense: the
        request carried none, or the ACS says our Digest nonce went stale (retried once:
        ``post`` never sends a third time)."""
        if self.credentials is None or not self.credentials[0]:
            return False
        chosen = self._choose(digest.parse_challenges(response.challenges))
        if chosen is None:
            return False
        scheme, params = chosen
        stale = scheme == "digest" and params.get("stale", "").lower() == "true"
        if sent_credentials and not stale:
            return False  # our credentials were refused: retrying cannot help
        self._auth, self._nc = (scheme, params), 0
        return True

    @staticmethod
    def _choose(challenges: list[tuple[str, dict[str, str]]]) -> tuple[str, dict[str, str]] | None:
        """The first challenge this client can answer, in the server's order (RFC 7616 has
        the server list its preferred algorithm first)."""
        for scheme, params in challenges:
            if scheme == "basic":
                return scheme, params
            if scheme != "digest" or not digest.supported(params.get("algorithm", "MD5")):
                continue
            qops = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
            if not qops or "auth" in qops:
                return scheme, params
        return None

    def _authorization(self) -> str | None:
        if self._auth is None or self.credentials is None:
            return None
        user, password = self.credentials
        scheme, params = self._auth
        if scheme == "basic":
            return digest.basic(user, password)
        self._nc += 1
        return digest.authorization(params, "POST", self.path, user, password, self._nc)

    async def _exchange(self, body: bytes, content_length: bool) -> Response:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.ssl, server_hostname=self.host if self.ssl else None
            )
        head = self._head
        if body:
            head += _SOAP_HEADERS
        if body or content_length:
            head += f"Content-Length: {len(body)}\r\n"
        if self.cookies and self.keep_cookies:
            head += "Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()) + "\r\n"
        auth = self._authorization()
        if auth:
            head += f"Authorization: {auth}\r\n"
        data = (head + "\r\n").encode("latin-1") + body
        assert self._writer is not None and self._reader is not None
        self._writer.write(data)
        await self._writer.drain()
        response = await self._read_response(self._reader)
        if self.keep_cookies:
            self._store_cookies(response.set_cookies)
        if self.reconnect or response.header("connection").lower() == "close":
            await self.close()
        return response

    async def _read_response(self, reader: asyncio.StreamReader) -> Response:
        while True:
            status_line = await reader.readline()
            if not status_line:
                raise asyncio.IncompleteReadError(b"", None)
            parts = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise HttpError(f"bad status line {status_line[:80]!r}")
            status = int(parts[1])
            headers, cookies, challenges = await self._read_headers(reader)
            if status >= 200:
                break  # 1xx (100 Continue) is followed by the real answer
        reason = parts[2] if len(parts) > 2 else ""
        if status in (204, 304):
            return Response(status, reason, headers, b"", cookies, challenges)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            # the ACS always sends Content-Length (cwmp-reference 1.3); say so plainly
            raise HttpError("chunked response not supported (expected Content-Length)")
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                raise HttpError(f"bad Content-Length {length[:20]!r}")
            body = await reader.readexactly(int(length))
        else:  # no length: the body runs to the end of the connection
            body = await reader.read(MAX_BODY_BYTES)
            headers["connection"] = "close"
        return Response(status, reason, headers, body, cookies, challenges)

    @staticmethod
    async def _read_headers(
        reader: asyncio.StreamReader,
    ) -> tuple[dict[str, str], list[str], list[str]]:
        headers: dict[str, str] = {}
        cookies: list[str] = []
        challenges: list[str] = []
        total = 0
        while True:
            line = await reader.readline()
            total += len(line)
            if total > MAX_HEADER_BYTES:
                raise HttpError("response headers too large")
            if not line:
                raise asyncio.IncompleteReadError(b"", None)
            if line in (b"\r\n", b"\n"):
                return headers, cookies, challenges
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise HttpError(f"bad header line {line[:80]!r}")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookies.append(value)
            elif name == "www-authenticate":
                challenges.append(value)
            headers[name] = f"{headers[name]}, {value}" if name in headers else value

    def _store_cookies(self, set_cookies: list[str]) -> None:
        for item in set_cookies:
            pair, *attrs = item.split(";")
            name, sep, value = pair.partition("=")
            if not sep or not name.strip():
                continue
            expired = any(a.strip().lower().replace(" ", "") == "max-age=0" for a in attrs)
            if expired:
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value.strip()
