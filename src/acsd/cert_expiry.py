"""When a listener's certificate expires, and what to tell the operator about it.

An expired certificate is still served: refusing to start (or to reload) would take every
CPE off the ACS at once, where with the expired one those that do not check dates still
come, and the others fail as they would anyway. So it is said, loudly, in time: at the
start, at each reload and once a day (acsd.tls), and by ``acsd config check``.

The date is read from the certificate file's first PEM block (the certificate served; the
chain after it is the CAs'; a key before it is skipped, as ssl's loading does). Python's
ssl module decodes a certificate only through a private function: ``cryptography`` reads
it."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

#: a certificate this close to its end (days) is warned about
EXPIRING_DAYS = 14

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


@dataclass(frozen=True, slots=True)
class Validity:
    """A certificate's end (Unix time) and its subject's CN (None: it has none)."""

    not_after: float
    subject_cn: str | None

    @property
    def not_after_text(self) -> str:
        return datetime.fromtimestamp(self.not_after, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_validity(path: str) -> Validity:
    """The first certificate of the PEM file ``path``. OSError or ValueError if it cannot
    be read."""
    with open(path, encoding="ascii", errors="replace") as handle:
        found = _PEM.search(handle.read())
    if found is None:
        raise ValueError(f"no PEM certificate in {path}")
    try:
        cert = x509.load_pem_x509_certificate(found.group().encode("ascii", "replace"))
    except ValueError:
        raise ValueError(f"a certificate acsd cannot read in {path}") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = names[-1].value if names else None
    return Validity(
        cert.not_valid_after_utc.timestamp(),
        cn if isinstance(cn, str) else cn.decode("utf-8", "replace") if cn else None,
    )


def notice(listener: str, path: str, validity: Validity, now: float) -> tuple[str, str, dict]:
    """(level, event, fields) of the line to log about ``validity``; level "" when the
    certificate has more than EXPIRING_DAYS left."""
    left = validity.not_after - now
    fields: dict[str, Any] = {
        "listener": listener,
        # whole days (rounded down), negative once expired (-1: a day ago or more)
        "days_left": math.floor(left / 86400) if left > 0 else -math.floor(-left / 86400),
        "not_after": validity.not_after_text,
        "subject_cn": validity.subject_cn,
        "cert": path,
    }
    if left <= 0:
        return "error", "tls.cert_expired", fields
    if left <= EXPIRING_DAYS * 86400:
        return "warning", "tls.cert_expiring", fields
    return "", "", fields


def warning_text(section: str, path: str, validity: Validity, now: float) -> str | None:
    """``acsd config check``'s words for what :func:`notice` logs (None: nothing to say)."""
    level, _, fields = notice(section, path, validity, now)
    if not level:
        return None
    cn = f" (CN={validity.subject_cn})" if validity.subject_cn else ""
    when = validity.not_after_text
    if level == "error":
        # (the API listener's clients are the operator's own systems, not routers)
        clients = "API clients" if section.startswith("api.") else "CPEs"
        return (
            f"{section}.cert: {path}{cn} expired at {when}; acsd serves it all the same, "
            f"and {clients} that check dates refuse it: renew it, then reload (SIGHUP)"
        )
    return f"{section}.cert: {path}{cn} expires at {when}, in {fields['days_left']} days"
