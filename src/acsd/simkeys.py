"""The one key of a SIM's CLI (seed 003: an MSISDN or an IMSI), however it is written: what
the API looks a device up by and what keeps a SIM from being registered twice. Shared by the
APN API and the store's migration that re-keys what older versions stored."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# The seed's pattern, ^(?<msisdn>\(\+*(\d{1,5})\)(\d{5,16}))$|^(?<imsi>\d{14,16})$, in
# Python: named groups are (?P<...>), and \d is ASCII only (.NET's matches any Unicode
# digit, which no MSISDN or IMSI holds). fullmatch() stands for the anchors.
CLI_PATTERN = re.compile(
    r"(?P<msisdn>\(\+*(?P<cc>\d{1,5})\)(?P<number>\d{5,16}))|(?P<imsi>\d{14,16})", re.ASCII
)


def international(cc: str, number: str) -> str:
    """MSISDN digits in international form (as routers report them). No country code
    starts with 0: leading zeros are the international call prefix written into it,
    ``(0045)12345678`` is ``(+45)12345678``. A code of zeros only stays one 0 (no
    country's: it is kept apart from every real one)."""
    return (cc.lstrip("0") or "0") + number


def parse_cli(text: str) -> tuple[str, str | None, str | None] | None:
    """(CLI key, IMSI, MSISDN) of a valid CLI; None when it is not one."""
    m = CLI_PATTERN.fullmatch(text)
    if m is None:
        return None
    if m["imsi"]:
        return f"imsi:{m['imsi']}", m["imsi"], None
    msisdn = international(m["cc"], m["number"])
    return f"msisdn:{msisdn}", None, msisdn


_NOT_DIGITS = re.compile(r"[^0-9]")


def digits(value: Any) -> str | None:
    """The digits of a reported or given number; None when there are none."""
    if value is None:
        return None
    found = _NOT_DIGITS.sub("", str(value))
    return found or None


def msisdn_key(value: Any) -> str | None:
    """MSISDN digits in international form: ``+45 1234 5678`` and ``004512345678`` ->
    ``4512345678``."""
    found = digits(value)
    if found and str(value).strip().startswith("00"):
        found = found[2:] or None
    return found


def sim_keys(held: Mapping[str, Any]) -> dict[str, str | None]:
    """The SIM numbers a router reported (its identity values, or the ones its record
    keeps), in the form APN devices store them: what a SIM is matched on."""
    return {
        "imsi": digits(held.get("imsi")),
        "iccid": digits(held.get("iccid")),
        "msisdn": msisdn_key(held.get("msisdn")),
    }
