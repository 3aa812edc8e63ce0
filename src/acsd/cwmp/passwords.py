"""CPE password hashes: the Digest HA1 (RFC 7616, H(username:realm:password)), PBKDF2-SHA256
for Basic (``pbkdf2_sha256$iterations$salt$hash``, Django's layout), and the
credentials-file line ``acsd cpe-password`` prints, which holds these hashes and never the
password itself.

A module of its own: the credentials file, the authenticator and ``acsd cpe-password``
hash alike, and the command needs none of the listener's code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HASHES: dict[str, Callable[..., Any]] = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
PBKDF2_PREFIX = "pbkdf2_sha256"
PBKDF2_ITERATIONS = 200_000


def hex_hash(algorithm: str, text: str) -> str:
    # surrogateescape: aiohttp decodes header bytes that are not UTF-8 that way; hashing
    # the bytes the client sent gives 401 where a strict encode gave 500
    return HASHES[algorithm](text.encode("utf-8", "surrogateescape")).hexdigest()


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """RFC 7616 HA1 = H(username:realm:password), lower-case hex."""
    return hex_hash(algorithm, f"{username}:{realm}:{password}")


@dataclass(frozen=True, slots=True)
class Pbkdf2Hash:
    iterations: int
    salt: str
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> Pbkdf2Hash:
        """``pbkdf2_sha256$ITERATIONS$SALT$BASE64`` (Django's layout) or ValueError."""
        parts = text.split("$")
        if len(parts) != 4 or parts[0] != PBKDF2_PREFIX:
            raise ValueError(f"expected {PBKDF2_PREFIX}$ITERATIONS$SALT$HASH")
        _, iterations, salt, encoded = parts
        if not iterations.isdigit() or not 1000 <= int(iterations) <= 10_000_000:
            raise ValueError("PBKDF2 iterations must be a number from 1000 to 10000000")
        if not salt:
            raise ValueError("PBKDF2 salt is empty")
        try:
            digest = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("PBKDF2 hash is not base64") from None
        if len(digest) < 16:
            raise ValueError("PBKDF2 hash is too short")
        return cls(int(iterations), salt, digest)

    @classmethod
    def make(cls, password: str, iterations: int = PBKDF2_ITERATIONS) -> Pbkdf2Hash:
        salt = secrets.token_urlsafe(16)
        return cls(iterations, salt, _pbkdf2(password, salt, iterations, 32))

    def __str__(self) -> str:
        encoded = base64.b64encode(self.digest).decode("ascii")
        return f"{PBKDF2_PREFIX}${self.iterations}${self.salt}${encoded}"

    def verify(self, password: str) -> bool:
        candidate = _pbkdf2(password, self.salt, self.iterations, len(self.digest))
        return hmac.compare_digest(candidate, self.digest)


def _pbkdf2(password: str, salt: str, iterations: int, length: int) -> bytes:
    return hashlib.pbkdf2_hmac(
        "sha256", password.encode("utf-8"), salt.encode("utf-8"), iterations, length
    )


def password_line(
    serial: str, password: str, realm: str, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """The credentials-file line for ``serial`` (what ``acsd cpe-password`` prints): the
    HA1s for Digest and a PBKDF2 hash for Basic, never the password itself."""
    key = serial if re.fullmatch(r"[A-Za-z0-9_-]+", serial) else _toml_string(serial)
    return (
        f"{key} = {{ ha1_md5 = {_toml_string(ha1('MD5', serial, realm, password))}, "
        f"ha1_sha256 = {_toml_string(ha1('SHA-256', serial, realm, password))}, "
        f"{PBKDF2_PREFIX} = {_toml_string(str(Pbkdf2Hash.make(password, iterations)))} }}"
    )


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group(0)):04x}", escaped)
    return f'"{escaped}"'
