"""When a listener's certificate expires, and what to tell the operator about it.

An expired certificate is still served: refusing to start (or to reload) would take every
CPE off the ACS at once, where with the expired one those that do not check dates still
come, and the others fail as they would anyway. So it is said, loudly, in time: at the
start, at each reload and once a day (acsd.tls), and by ``acsd config check``.

The date is read from the certificate file's first PEM block (the certificate served; the
chain after it is the CAs'). Python's ssl module decodes certificates only through a
private function and acsd does not depend on ``cryptography``, so the few DER fields
needed (validity, subject CN) are read here: X.509 fixes their places."""

from __future__ import annotations

import calendar
import math
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: a certificate this close to its end (days) is warned about
EXPIRING_DAYS = 14

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
#: commonName (2.5.4.3), DER-encoded
_CN = bytes.fromhex("550403")
_TEXT = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be"}


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
    der = ssl.PEM_cert_to_DER_cert(found.group())
    try:
        return _validity(der)
    except IndexError:  # (a length that runs past the end)
        raise ValueError(f"a certificate acsd cannot read in {path}") from None


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
        return (
            f"{section}.cert: {path}{cn} expired at {when}; acsd serves it all the same, "
            f"and CPEs that check dates refuse it: renew it, then reload (SIGHUP)"
        )
    return f"{section}.cert: {path}{cn} expires at {when}, in {fields['days_left']} days"


# --- DER, as far as X.509 needs it ------------------------------------------------------


def _item(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER item at ``pos``."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        if not 0 < size <= 4:
            raise ValueError("a DER length acsd does not read")
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    if pos + length > len(data):
        raise ValueError("a DER item longer than the certificate")
    return tag, pos, pos + length


def _items(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    found = []
    while start < end:
        item = _item(data, start)
        found.append(item)
        start = item[2]
    return found


def _validity(der: bytes) -> Validity:
    _, start, end = _item(der, 0)  # Certificate
    _, start, end = _items(der, start, end)[0]  # tbsCertificate
    fields = _items(der, start, end)
    if fields[0][0] == 0xA0:  # [0] version (absent: v1)
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject
    _, _, _, (_, v_start, v_end), (_, s_start, s_end) = fields[:5]
    _, (tag, t_start, t_end) = _items(der, v_start, v_end)
    return Validity(_time(tag, der[t_start:t_end].decode("ascii")), _cn(der, s_start, s_end))


def _time(tag: int, text: str) -> float:
    """UTCTime (YYMMDDHHMMSSZ, 19xx from 50: RFC 5280 4.1.2.5.1) or GeneralizedTime."""
    if tag == 0x17:
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18:
        raise ValueError("a certificate time that is neither UTCTime nor GeneralizedTime")
    parsed = datetime.strptime(text, "%Y%m%d%H%M%SZ")
    return float(calendar.timegm(parsed.timetuple()))


def _cn(der: bytes, start: int, end: int) -> str | None:
    """The subject's (last) commonName."""
    found = None
    for _, set_start, set_end in _items(der, start, end):  # RelativeDistinguishedName
        for _, a_start, a_end in _items(der, set_start, set_end):  # AttributeTypeAndValue
            (_, o_start, o_end), (tag, x_start, x_end) = _items(der, a_start, a_end)[:2]
            if der[o_start:o_end] == _CN and tag in _TEXT:
                found = der[x_start:x_end].decode(_TEXT[tag], errors="replace")
    return found
