"""The routers' Connection Request listener (TR-069 3.2.2): ``GET /cr/SERIAL``, answered
with HTTP Digest against the router's ConnectionRequestUsername/Password (no challenge when
the username is empty), 200 when the router will call in, 503 while it is in a session.

It checks an answer as a strict router does, being what tests prove acsd's client against:
qop "auth" or "auth-int" (the request's body hashed), or none (RFC 2069: its nonce then
serves once); the ``uri`` is the request's; and a nonce count not higher than the last one
the nonce was used with is a replay, refused (a fresh nonce, stale=true: the password
was right)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping

from aiohttp import web

from acsd import httpdigest as digest
from acsd.sim.cpe import Cpe

REALM = "acsd-sim"
NONCE_TTL = 60.0
MAX_NONCES = 100_000


class ListenError(Exception):
    """The listener could not be started (address in use, unknown host, no permission)."""


def split_host_port(text: str) -> tuple[str, int]:
    """``127.0.0.1:0`` / ``[::1]:7547`` / ``localhost`` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:
        host, port = text, "0"
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"bad listen address {text!r}")
    return host, int(port)


class ConnectionRequestServer:
    def __init__(self, routers: Mapping[str, Cpe], listen: str = "127.0.0.1:0") -> None:
        self.routers = routers
        self.host, self.port = split_host_port(listen)
        self.requests = 0  # answered with 200
        #: nonce -> (when it runs out, the highest nonce count it was used with)
        self._nonces: dict[str, tuple[float, int]] = {}
        self._opaque = secrets.token_hex(8)
        self._runner: web.AppRunner | None = None

    def url_for(self, serial: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/cr/{serial}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/cr/{serial}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise ListenError(
                f"cannot listen for Connection Requests on {self.host}:{self.port}: "
                f"{exc.strerror or exc}"
            ) from None
        self.port = self._runner.addresses[0][1]  # the real one when asked for port 0

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _new_nonce(self) -> str:
        now = time.monotonic()
        if len(self._nonces) >= MAX_NONCES:
            self._nonces = {n: t for n, t in self._nonces.items() if t[0] > now}
        nonce = secrets.token_hex(16)
        self._nonces[nonce] = (now + NONCE_TTL, 0)
        return nonce

    async def _check(self, request: web.Request, user: str, password: str) -> str:
        """The verdict on the request's Digest answer: "ok"; "stale", a right answer to a
        nonce run out, unknown, or used with this count before; or "wrong"."""
        header = request.headers.get("Authorization", "")
        params = digest.parse_params(digest.split_scheme(header)[1])
        nonce = params.get("nonce", "")
        if params.get("uri") != request.raw_path:
            return "wrong"
        body = await request.read() if params.get("qop") == "auth-int" else b""
        if not digest.verify(header, request.method, user, password, nonce, REALM, body):
            return "wrong"
        expires, last = self._nonces.get(nonce, (0.0, 0))
        # RFC 2069's answer has no count: its nonce serves once
        count = int(params["nc"], 16) if params.get("qop") else 0xFFFFFFFF
        if expires < time.monotonic() or count <= last:
            return "stale"
        self._nonces[nonce] = (expires, count)
        return "ok"

    async def _handle(self, request: web.Request) -> web.Response:
        cpe = self.routers.get(request.match_info["serial"])
        if cpe is None:
            return web.Response(status=404)
        ms = cpe.template.root + "ManagementServer."
        tree = cpe.tree
        user = (
            tree.get(ms + "ConnectionRequestUsername")
            if ms + "ConnectionRequestUsername" in tree
            else ""
        )
        if user:
            password = tree.get(ms + "ConnectionRequestPassword")
            verdict = await self._check(request, user, password)
            if verdict != "ok":
                nonce = self._new_nonce()
                challenge = digest.challenge(REALM, nonce, self._opaque, verdict == "stale")
                return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        if not cpe.request_connection():
            # already in a session: TR-069 lets the CPE refuse rather than preempt it
            return web.Response(status=503)
        self.requests += 1
        return web.Response(status=200)
