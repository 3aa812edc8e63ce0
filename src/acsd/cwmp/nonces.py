"""Digest nonces (RFC 7616): issued signed and timestamped, and the highest ``nc`` each
was used with.

Nonces are 128 random bits plus the time they were issued, signed with a per-process HMAC
key: their validity needs no state, so a CPE that reconnects keeps its nonce (binding
nonces to the TCP connection, as GenieACS does, would re-challenge every reconnect). What
does need state is replay protection: a bounded map nonce -> highest ``nc`` seen; a
request whose ``nc`` is not higher is refused. A module of its own: it knows nothing of
passwords or HTTP, only nonces, addresses and counts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import Callable


class NonceBook:
    """Issues signed, timestamped nonces and remembers the highest ``nc`` used with each."""

    STALE, REPLAY, FRESH = "stale", "replay", "fresh"
    _RAW = 8 + 16 + 16  # issued (double) + 128 random bits + 128-bit MAC

    def __init__(
        self,
        lifetime: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = 100_000,
        key: bytes | None = None,
    ) -> None:
        self.lifetime = lifetime
        self._clock = clock
        # One key for all the workers of a service (``key``): a CPE that reconnects to
        # another worker answers with a nonce that worker must know as its own.
        self._key = key or secrets.token_bytes(32)
        self._max = max_tracked
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()  # nonce -> (nc, issued)
        #: nonces issued at or before this time were forgotten to bound memory: stale
        self._floor = -math.inf

    def issue(self, address: str = "") -> str:
        """A new nonce for the client at ``address``: good from that address only. The
        workers of a service share the key but count a nonce's uses each on its own, so a
        captured request replayed to another worker is refused unless it comes from the
        address the nonce was issued to."""
        body = struct.pack(">d", self._clock()) + secrets.token_bytes(16)
        mac = self._mac(body, address)
        return base64.urlsafe_b64encode(body + mac).decode("ascii").rstrip("=")

    def _mac(self, body: bytes, address: str) -> bytes:
        return hmac.new(self._key, body + address.encode(), hashlib.sha256).digest()[:16]

    def issued_at(self, nonce: str, address: str = "") -> float | None:
        """When this service issued ``nonce`` to ``address``; None if it did not (forged,
        another address's, or an older run's)."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) != self._RAW:
            return None
        body, mac = raw[:24], raw[24:]
        if not hmac.compare_digest(mac, self._mac(body, address)):
            return None
        return struct.unpack(">d", body[:8])[0]

    def use(self, nonce: str, nc: int, address: str = "") -> str:
        """Record a correct digest's use of ``nonce`` (from ``address``) with count ``nc``:
        FRESH, STALE or REPLAY."""
        now = self._clock()
        issued = self.issued_at(nonce, address)
        if issued is None or issued > now or now - issued > self.lifetime:
            return self.STALE
        self._prune(now)
        previous = self._seen.get(nonce)
        if previous is None:
            if issued <= self._floor:
                return self.STALE  # forgotten: its counts are unknown, so never accept it again
            self._seen[nonce] = (nc, issued)
            while len(self._seen) > self._max:
                _old, (_nc, old_issued) = self._seen.popitem(last=False)
                self._floor = max(self._floor, old_issued)
            return self.FRESH
        if nc <= previous[0]:
            return self.REPLAY
        self._seen[nonce] = (nc, issued)
        return self.FRESH

    def _prune(self, now: float) -> None:
        # Roughly oldest first (the order of first use); expired nonces are refused by age.
        while self._seen:
            nonce, (_nc, issued) = next(iter(self._seen.items()))
            if now - issued <= self.lifetime:
                break
            del self._seen[nonce]

    def __len__(self) -> int:
        return len(self._seen)
