"""The per-device credentials file (``[cwmp.auth] credentials_file``): read and checked
into one :class:`DeviceCredentials` per ``[devices]`` entry (a clear password, HA1s, a
PBKDF2 hash), keyed by the serial number in lower case, as the store tells routers apart.

Its errors name the file, the line and the entry, never a value: a password or a hash must
not reach the log. A module of its own: ``config check`` and the start-up check the file,
a reload (SIGHUP) and the workers' supervisor read it again, and none of them needs the
authenticator to do so.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from acsd.cwmp.passwords import HASHES, PBKDF2_PREFIX, Pbkdf2Hash
from acsd.rules import serial_problem
from acsd.tomltext import NotTomlText, key_line, parse_toml, read_regular, toml_text
from acsd.workdir import relative_note

_HEX = {"MD5": re.compile(r"[0-9a-f]{32}"), "SHA-256": re.compile(r"[0-9a-f]{64}")}
_ENTRY_KEYS = {"password", "ha1_md5", "ha1_sha256", PBKDF2_PREFIX}


@dataclass(frozen=True, slots=True)
class DeviceCredentials:
    """One ``[devices]`` entry as read from the file (validated, not yet hashed)."""

    serial: str
    password: str | None = None
    ha1_md5: str | None = None
    ha1_sha256: str | None = None
    pbkdf2: Pbkdf2Hash | None = None


def load_credentials(
    path: str | Path, *, scheme: str, realm: str, algorithms: Iterable[str]
) -> dict[str, DeviceCredentials]:
    """Read and check a credentials file; keys of the result are case-folded serials.

    Raises ValueError with one line naming the file and the entry at fault.
    """
    return parse_credentials(
        read_credentials(path), str(path), scheme=scheme, realm=realm, algorithms=algorithms
    )


def read_credentials(path: str | Path) -> bytes:
    """The bytes of a credentials file, or ValueError with one line saying why not."""
    try:
        return read_regular(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found{relative_note(path)}") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read{relative_note(path)}: {exc.strerror}") from None


def parse_credentials(
    raw: bytes, name: str, *, scheme: str, realm: str, algorithms: Iterable[str]
) -> dict[str, DeviceCredentials]:
    """:func:`load_credentials` of the bytes ``raw`` of the file ``name``. Its errors name
    the line and the entry, never a value: a password or a hash must not reach the log."""
    try:
        text = toml_text(raw)
        data = parse_toml(text)
    except (tomllib.TOMLDecodeError, NotTomlText) as exc:  # (tomllib's say where)
        raise ValueError(f"{name}: invalid TOML: {exc}") from None

    def at(*key: str) -> str:
        number = key_line(text, key)
        return f"{name}: line {number}" if number is not None else name

    unknown = sorted(set(data) - {"devices", "realm"})
    if unknown:
        where = at(unknown[0])
        raise ValueError(f"{where}: {unknown[0]}: unknown key (expected [devices] and realm)")
    if "realm" in data and data["realm"] != realm:
        raise ValueError(
            f"{at('realm')}: realm {data['realm']!r} differs from cwmp.auth.realm {realm!r} "
            "(the stored HA1 hashes are only valid for the realm they were made with)"
        )
    devices = data.get("devices", {})
    if not isinstance(devices, dict):
        raise ValueError(f"{at('devices')}: devices must be a table of SERIAL = password entries")
    wanted = [a for a in algorithms if a in HASHES]
    out: dict[str, DeviceCredentials] = {}
    for serial, value in devices.items():
        try:
            entry = _checked_entry(serial, value, scheme, wanted)
        except ValueError as exc:
            raise ValueError(f"{at('devices', serial)}: {exc}") from None
        # lower(), as the store keys routers: under casefold() STRASSE1 and STRAßE1, two
        # routers to the store, could not both be listed
        key = serial.lower()
        if key in out:
            where = at("devices", serial)
            raise ValueError(
                f"{where}: devices.{serial}: listed twice (serial numbers are case-insensitive)"
            )
        out[key] = entry
    return out


def _checked_entry(serial: str, value: object, scheme: str, wanted: list[str]) -> DeviceCredentials:
    """One ``[devices]`` entry, checked for ``scheme``; ValueError names the entry (the
    caller adds the file and the line)."""
    where = f"devices.{serial}"
    if not serial.strip():
        raise ValueError(f"{where}: empty serial number")
    if problem := serial_problem(serial):
        # (repr: the message stays one line)
        raise ValueError(f"devices.{serial!r}: {problem}")
    entry = _parse_entry(serial, value, where)
    if scheme == "digest" and entry.password is None:
        # The CPE picks the algorithm before we know who it is: every offered one needs
        # an HA1 (or narrow cwmp.auth.algorithms).
        have = {"MD5": entry.ha1_md5, "SHA-256": entry.ha1_sha256}
        lacking = [a for a in wanted if not have[a]]
        if lacking:
            keys = " and ".join("ha1_" + a.lower().replace("-", "") for a in lacking)
            raise ValueError(
                f"{where}: Digest offers {', '.join(wanted)}: needs password or {keys} "
                "(or fewer cwmp.auth.algorithms)"
            )
    if scheme == "basic" and entry.password is None and entry.pbkdf2 is None:
        raise ValueError(f"{where}: Basic needs password or {PBKDF2_PREFIX}")
    return entry


def _parse_entry(serial: str, value: object, where: str) -> DeviceCredentials:
    if isinstance(value, str):
        if value.startswith(PBKDF2_PREFIX + "$"):
            return DeviceCredentials(serial, pbkdf2=_parse_pbkdf2(value, where))
        if not value:
            raise ValueError(f"{where}: empty password")
        return DeviceCredentials(serial, password=value)
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a password string or an inline table")
    unknown = sorted(set(value) - _ENTRY_KEYS)
    if unknown:
        raise ValueError(
            f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(_ENTRY_KEYS))})"
        )
    if not value:
        raise ValueError(f"{where}: empty entry")
    for key, item in value.items():
        if not isinstance(item, str) or not item:
            raise ValueError(f"{where}.{key}: expected a non-empty string")
    for key, algorithm in (("ha1_md5", "MD5"), ("ha1_sha256", "SHA-256")):
        if key in value and not _HEX[algorithm].fullmatch(value[key].lower()):
            raise ValueError(f"{where}.{key}: expected {algorithm} HA1 as hex")
    pbkdf2 = value.get(PBKDF2_PREFIX)
    return DeviceCredentials(
        serial,
        password=value.get("password"),
        ha1_md5=value["ha1_md5"].lower() if "ha1_md5" in value else None,
        ha1_sha256=value["ha1_sha256"].lower() if "ha1_sha256" in value else None,
        pbkdf2=_parse_pbkdf2(pbkdf2, f"{where}.{PBKDF2_PREFIX}") if pbkdf2 else None,
    )


def _parse_pbkdf2(text: str, where: str) -> Pbkdf2Hash:
    try:
        return Pbkdf2Hash.parse(text)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
