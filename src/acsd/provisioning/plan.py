"""Desired settings vs what the CPE reported -> the changes of this session.

Pure functions: no I/O, no clock of their own. The session driver feeds them the values
read from the CPE and the device's provisioning memory (hashes of secrets it applied,
faults with their back-off) and turns the plan into AddObject / SetParameterValues /
DeleteObject / Reboot.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, TypeVar

from acsd.charsets import LEGACY_ENCODINGS, as_sent_by
from acsd.macs import mac_digits
from acsd.models import is_raw_wpa_key
from acsd.provisioning.desired import Desired
from acsd.provisioning.profile_schema import ROOTS, WHOLE_GROUPS, is_secret_name
from acsd.provisioning.profiles import Profile, TableField, TableSpec, Target

_INT_TYPES = {"xsd:int", "xsd:unsignedInt", "xsd:long", "xsd:unsignedLong"}
#: what a router's boolean reads as when it is true: xsd:boolean's two spellings, and the
#: words some firmware reads back instead ("Enable" for a radio it was told "true"), which
#: were a difference to write again at every session until the job gave up
_TRUE = {"1", "true", "enable", "enabled", "on", "yes"}


@dataclass(slots=True)
class Change:
    """One parameter to set, and why."""

    setting: str
    path: str
    value: str
    type: str
    secret: bool = False
    reboot: bool = False
    #: parameters whose remembered secret no longer says what the CPE holds once this
    #: change is applied (the passphrase, when the raw key is written, and back)
    clears: tuple[str, ...] = ()
    #: where a fault of this change is remembered when that is not ``path``: a field of a
    #: row added this session is remembered by its row (row_fault_path, with the whole
    #: row's row_signature as ``fault_value``), since the instance number is new at every
    #: AddObject and a fault kept under it would never wait nor count up
    fault_path: str | None = None
    fault_value: str | None = None
    #: the profile's `optional`: a CPE does without this parameter, so one that refuses
    #: writes to it (9008, 9005, 9001) gets the setting without it (the memory's
    #: ``refusedOptional``), not a fault that fails the job
    optional: bool = False


@dataclass(slots=True)
class RowAdd:
    """A table row the CPE lacks: AddObject, then its fields join the SetParameterValues."""

    table: str
    object: str
    key: str
    row: dict[str, Any]


_Item = TypeVar("_Item", Change, RowAdd, str)


@dataclass(slots=True)
class Plan:
    changes: list[Change] = field(default_factory=list)
    adds: list[RowAdd] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    #: table -> row key -> instance number the CPE holds it at
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    unsupported: list[dict[str, str]] = field(default_factory=list)
    #: faulted parameters held back by their back-off, or given up on
    waiting: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    #: settings not sent because the CPE would refuse them (a DHCP pool outside the LAN
    #: it reports): faults of the job until the operator or the CPE changes, never retried
    refused: list[dict[str, Any]] = field(default_factory=list)
    #: settings not sent because the CPE faulted reading what they are written at
    #: (plan_changes' ``unreadable``), as refused entries: the caller decides what the job
    #: makes of them
    unread: list[dict[str, Any]] = field(default_factory=list)
    #: what keeps the job from being done this time but may not next time (unread
    #: settings still to apply): faults of a PENDING job, whatever else was refused
    pending: list[dict[str, Any]] = field(default_factory=list)
    #: row path -> what the job calls the row (``table[key]``, row_name) for each row
    #: this plan deletes or holds a refused delete of: an instance number tells the
    #: operator nothing of which reservation or entry it was
    deleting: dict[str, str] = field(default_factory=dict)
    #: parameters whose value is given up because the CPE does not keep it (_bounced):
    #: the memory keeps counting them (jobs.count_writes)
    bounced: list[str] = field(default_factory=list)
    #: table -> keys of the rows acsd manages there, for tables without ``only`` (the
    #: memory's ``ownedRows``): only those are ever deleted
    owned: dict[str, list[str]] = field(default_factory=dict)
    #: facts of what this plan sends that the operator should see on the job (the
    #: router's own list entries left out to keep a value within its length)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.changes or self.adds or self.deletes)


def value_hash(path: str, value: str) -> str:
    """What acsd remembers of a secret it applied (passwords read back empty)."""
    return hashlib.sha256(f"{path}\0{value}".encode()).hexdigest()[:32]


def row_name(table: str, key: Any) -> str:
    """What the job calls a row: its table and its key (``dhcp.reservations[<mac>]``)."""
    return f"{table}[{key}]"


def row_fault_path(table_object: str, key: str) -> str:
    """Where the fault of a row acsd adds is remembered: its table and its key."""
    return f"{table_object}[{key}]"


def row_signature(row: Mapping[str, Any]) -> str:
    """The desired row as one value: a fault waits while the row stays what it was."""
    return json.dumps(row, sort_keys=True, default=str)


def row_key(spec: TableSpec, value: Any) -> str:
    """How rows of ``spec`` are matched: MACs whatever their case and separators, other
    keys (an address) as they are."""
    text = str(value)
    return mac_digits(text) if spec.key_is_mac else text.strip()


def password_form(value: str) -> str:
    """The form of a WPA password the API took: the raw 64-hex-digit key ("hex-key") or
    a passphrase ("passphrase")."""
    return "hex-key" if is_raw_wpa_key(value) else "passphrase"


def wire_value(target: Target, value: Any) -> str | None:
    """Abstract value -> what this parameter wants on the wire; None = nothing to write."""
    if target.form is not None and password_form(str(value)) != target.form:
        return None
    if target.value is not None:
        return target.value
    if isinstance(value, bool):
        canonical = "true" if value else "false"
    elif isinstance(value, int):
        canonical = str(value * (target.multiply or 1))
    else:
        canonical = str(value)
    if target.map is not None:
        return target.map.get(canonical)
    if target.type == "xsd:boolean":
        return target.booleans[0] if canonical == "true" else target.booleans[1]
    return canonical


def field_value(spec: TableField, value: Any) -> str:
    if isinstance(value, bool) or spec.type == "xsd:boolean":
        return spec.booleans[0] if value in (True, "true", "1") else spec.booleans[1]
    text = str(value)
    if spec.format in ("mac-colon-upper", "mac-colon-lower"):
        digits = mac_digits(text)
        text = ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))
        text = text.upper() if spec.format == "mac-colon-upper" else text
    return text


def same_value(type_: str, current: str, wanted: str) -> bool:
    """Equal as the CPE means them: booleans 1/true, numbers, lists of addresses with or
    without spaces after their commas, references with or without their trailing dot
    (TR-181 2.17's own examples have one), an unset IPv4 address empty or 0.0.0.0. Any
    other space counts:
    "Sky Net" is another SSID than "SkyNet", and "Cafe, Bar" than "Cafe,Bar"."""
    if type_ == "xsd:boolean":
        return (current.strip().lower() in _TRUE) == (wanted.strip().lower() in _TRUE)
    if type_ in _INT_TYPES:
        try:
            return int(current) == int(wanted)
        except ValueError:
            return current == wanted
    if current == wanted:
        return True
    if not current.isascii() and current in _as_sent(wanted):
        return True
    current, wanted = _list_items(current), _list_items(wanted)
    if current == wanted:
        return True
    if wanted.startswith(ROOTS) or current.startswith(ROOTS):
        return current.rstrip(".") == wanted.rstrip(".")
    return {current, wanted} == {"", "0.0.0.0"}


def _as_sent(wanted: str) -> set[str | None]:
    """``wanted`` as acsd reads it back from firmware that keeps text in a legacy encoding
    and sends its bytes in envelopes labelled UTF-8 (charsets.mixed_utf8): the router
    holds the value, and only the wire garbles it. Taken for drift, it was rewritten
    (restarting the radio) until the job failed as a value the router refuses."""
    return {as_sent_by(wanted, encoding) for encoding in LEGACY_ENCODINGS}


def _list_items(text: str) -> str:
    """A comma-separated list of addresses (DNS servers, routers) without the spaces
    around its items ("a, b" -> "a,b"); any other text as it is: an SSID "Cafe, Bar" is
    another name than "Cafe,Bar"."""
    if "," not in text:
        return text
    items = [item.strip() for item in text.split(",")]
    if not all(_is_address(item) for item in items if item):
        return text
    return ",".join(items)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


#: settings that go only with the rest of their group but that it works without: a line
#: whose DNS servers a router cannot take still carries traffic
OPTIONAL_IN_GROUP = frozenset({"wan.static.dns", "wan.static.dns_servers"})


#: the memory's key of the static line acsd put on the router (see
#: acsd.provisioning.line_off): the rows of it that a line going "off" deletes
STATIC_LINE = "staticLine"
#: the setting whose "off" takes the line's rows away (TableKind.when of those tables)
LINE_SWITCH = "wan.static.enable"


def line_rows(line: Mapping[str, Any] | None) -> dict[str, set[str]]:
    """Table -> keys of the rows the static line ``line`` (memory STATIC_LINE) made: the
    only rows of the line's tables that its going off deletes, so that a static address,
    route or DNS server acsd did not add stays."""
    if not line:
        return {}
    dns = line.get("dns") or []
    return {
        "wan.static.address": {str(line.get("ip") or "")} - {""},
        "wan.static.route": {str(line.get("gateway") or "")} - {""},
        "wan.static.dns_servers": {str(d) for d in dns if d},
    }


def own_row_keys(spec: TableSpec, values: Mapping[str, str]) -> set[str]:
    """The keys of the rows of ``spec`` that ``only`` tells are acsd's kind (what the
    static line adds), as the CPE reports them in ``values``."""
    existing = _existing_rows(spec, values)
    if not spec.only or _unowned(spec, existing):
        return set()
    key = spec.fields[spec.key].param
    return {
        row_key(spec, row.get(key, "")) for row in existing.values() if _ours(row, spec.only)
    } - {""}


def group_of(key: str) -> str | None:
    """The WHOLE_GROUPS group a setting, table or row (``table[key]``) needs whole."""
    return next((g for g in WHOLE_GROUPS if key.startswith(g)), None)


def needed_by_group(key: str) -> bool:
    """Whether the group of ``key`` fails without it (its DNS servers it does not)."""
    return group_of(key) is not None and key.split("[", 1)[0] not in OPTIONAL_IN_GROUP


def _incomplete_groups(
    profile: Profile,
    desired: Desired,
    rows_read: Callable[[str], Mapping[int, Mapping[str, str]]],
    absent: set[str],
    unreadable: Mapping[str, str],
    in_rows: Mapping[str, str],
) -> dict[str, tuple[str, bool]]:
    """Group -> what of it this CPE cannot take (a parameter it lacks or could not read,
    or a setting its profile does not map) and whether it is only unread, for the groups
    of WHOLE_GROUPS the operator asks something of."""
    out: dict[str, tuple[str, bool]] = {}
    for key, value in desired.settings.items():
        group = group_of(key)
        if group is None or group in out or value is False or key in OPTIONAL_IN_GROUP:
            continue  # "off" needs nothing the CPE lacks
        table = in_rows.get(key)
        if table is not None:
            spec = profile.tables[table]
            lack = _lacking(spec.object, absent, unreadable)
            if lack or (lack := _unowned(spec, rows_read(table))):
                out[group] = (lack, spec.object in unreadable)
                continue
        targets = profile.settings.get(key)
        if not targets:
            if table is None:
                out[group] = (f"{key} is unsupported by profile {profile.name}", False)
            continue
        for target in targets:
            lack = _lacking(target.path, absent, unreadable)
            if lack and wire_value(target, value) is not None:
                out[group] = (lack, target.path in unreadable)
                break
    return out


def _lacking(path: str, absent: set[str], unreadable: Mapping[str, str]) -> str | None:
    """Why the plan cannot use ``path``: the CPE lacks it, or it faults reading it."""
    if path in unreadable:
        return f"{path} could not be read ({unreadable[path]})"
    return f"{path} is not on this CPE" if path in absent else None


def _gate(
    targets: Iterable[Target],
    values: Mapping[str, str],
    absent: set[str],
    unreadable: Mapping[str, str],
) -> tuple[str, bool, bool] | None:
    """Why the CPE is not one a setting is written on (the ``when`` tests of its
    parameters), whether that is only unread this session, and whether the CPE reported
    a value that failed the test; None when all pass. An optional parameter's tests are
    its own: failing, they leave it out, not the setting (see plan_changes)."""
    for target in targets:
        if (
            target.when
            and not target.optional
            and (why := _when_fails(target, values, absent, unreadable))
        ):
            return why
    return None


def _when_fails(
    target: Target, values: Mapping[str, str], absent: set[str], unreadable: Mapping[str, str]
) -> tuple[str, bool, bool] | None:
    for path, test in target.when:
        if lack := _lacking(path, absent, unreadable):
            return lack, path in unreadable, False
        if path not in values:
            # asked for with the settings, neither answered nor lacking: it faulted
            return f"{path} could not be read", True, False
        current = values[path].strip()
        if not test(current):
            return f"{path} is {current!r} on this CPE: not written here", False, True
    return None


def _not_supported(
    on_wire: Iterable[tuple[Target, str]], values: Mapping[str, str], *, also: bool
) -> str | None:
    """Why the CPE would refuse a value: its list of the values a parameter takes
    (``supported``) leaves it out. None where every list has it, the CPE holds a value that
    counts as it (``also``), or reports no list (firmware without it, or an empty one)."""
    for target, wanted in on_wire:
        if target.supported is None:
            continue
        listed = values.get(target.supported, "")
        items = {item.strip().lower() for item in listed.split(",") if item.strip()}
        if _on_this_cpe(target, wanted, values, also=also) != wanted:
            continue  # (it holds what counts as the value: nothing is written)
        if items and wanted.strip().lower() not in items:
            return f"{target.supported} is {listed.strip()!r} on this CPE: no {wanted!r}"
    return None


def _unmappable(profile: Profile, targets: Iterable[Target], value: Any) -> str:
    """Why no parameter of a setting takes ``value``, without a password in the text."""
    forms = {t.form for t in targets if t.form is not None}
    if forms:
        what = "a 64-hex-digit key" if password_form(str(value)) == "hex-key" else "a passphrase"
        return f"profile {profile.name} has no parameter for {what} here"
    if any(t.secret for t in targets):
        return f"profile {profile.name} has no way to set this value here"
    return f"profile {profile.name} has no way to set {value!r} here"


def _headed_list(head: str, current: str | None, max_length: int | None = None) -> str:
    """The CPE's list with ``head`` in place of its first entry (a primary DNS server
    replaces the primary, so a changed one does not linger as a secondary), the entries
    after it as they are. Entries count by position: ",8.8.4.4" has an empty first one. A
    list the CPE separates by blanks instead (some firmware's) is written back so.
    ``max_length``: the most characters the parameter holds; the last entries that would
    not fit are left out (_cut_entries says which)."""
    text, _ = _headed_and_cut(head, current, max_length)
    return text


def _headed_and_cut(
    head: str, current: str | None, max_length: int | None
) -> tuple[str, list[str]]:
    """_headed_list's list and the CPE's entries it leaves out to keep within
    ``max_length``. A list the CPE already holds, head first, is its own however long
    (firmware that takes more than the model's length): nothing to write, nothing cut."""
    current = (current or "").strip()
    if "," not in current and len(blank_separated := current.split()) > 1:
        separator, rest = " ", blank_separated[1:]
    else:
        separator, rest = ",", [item.strip() for item in current.split(",")[1:]]
    items = [head, *(item for item in rest if item and item != head)]
    whole = separator.join(items)
    if max_length is None or len(whole) <= max_length or same_value("", current, whole):
        return whole, []
    # TR-098's DNSServers holds 64 characters: a primary longer than the one it replaces
    # pushed the router's last secondary over, and the whole value would be refused
    # (9007) or cut mid-address by the firmware. The head always fits (max_length >= 16).
    kept = [head]
    for item in items[1:]:
        if len(separator.join([*kept, item])) > max_length:
            break
        kept.append(item)
    return separator.join(kept), items[len(kept) :]


def cut_note(setting: str, path: str, cut: list[str], max_length: int) -> str:
    """What the job says of the CPE's entries a headed list left out."""
    return (
        f"{setting}: {', '.join(cut)} left out of {path}, which holds {max_length} "
        "characters at most (the router's own entries, the last ones)"
    )


#: setting -> (what it is, what acsd does instead where a CPE has no parameter for it:
#: desired.py does it for every profile). Said on the job alike whether the profile maps
#: no parameter or the CPE lacks the one it maps (TP-Link TR-181 firmware without
#: X_TP_BandSteering), as the same SSID and password go to every band either way.
INSTEAD = {
    "wifi.bandsteering": ("band steering", "emulated with one SSID and password on every band")
}


def _not_applied(plan: Plan, setting: str, reason: str, unread: bool) -> None:
    """A setting the plan cannot apply: unsupported for good (the CPE lacks what it is
    written at), or not this session (the CPE could not read it: Plan.unread)."""
    if unread:
        plan.unread.append({"setting": setting, "message": reason, "attempts": 0})
    else:
        plan.unsupported.append({"setting": setting, "reason": reason})


def plan_changes(
    profile: Profile,
    desired: Desired,
    values: Mapping[str, str],
    *,
    absent: set[str],
    memory: Mapping[str, Any],
    force: bool,
    now: float,
    max_attempts: int,
    unreadable: Mapping[str, str] | None = None,
) -> Plan:
    """``values``: what the CPE reported (path -> value); ``memory``: the device's
    provisioning memory (``secrets``: path -> hash, ``faults``: path -> entry);
    ``force``: ignore what the CPE reported and write everything (0 BOOTSTRAP);
    ``unreadable``: setting paths and table objects the CPE faulted on when read, and why
    (nothing is written at them this session, as if absent: see Plan.unread)."""
    unreadable = unreadable or {}
    plan = Plan()
    faults: Mapping[str, Any] = memory.get("faults", {})
    bounces: Mapping[str, Any] = memory.get("bounces") or {}
    # (a value refused, or written in two planning sessions in a row already: no sign of
    # a loss, but of a CPE that does not keep it)
    unsure = {**faults, **{p: e for p, e in bounces.items() if _count(e) >= 2}}
    secrets: Mapping[str, str] = _secrets_still_held(
        profile, desired, values, memory.get("secrets", {}), unsure
    )
    owned_rows: Mapping[str, list[str]] = memory.get("ownedRows") or {}
    blank_rows = frozenset(memory.get("blankRows") or ())
    refused: Mapping[str, Any] = memory.get("refusedOptional") or {}

    read: dict[str, dict[int, dict[str, str]]] = {}

    def rows_read(table: str) -> dict[int, dict[str, str]]:
        """The table's rows as the CPE reported them, gathered once per plan."""
        if table not in read:
            read[table] = _existing_rows(profile.tables[table], values)
        return read[table]

    tables, in_rows = _rows_of_settings(profile, desired)
    incomplete = _incomplete_groups(profile, desired, rows_read, absent, unreadable, in_rows)
    other_bands = 0  # of 5 and 6 GHz, the SSIDs this CPE has (what steering copies onto)
    for key, value in desired.settings.items():
        group = group_of(key)
        if group in incomplete:
            if value is not False:
                lack, unread = incomplete[group]
                _not_applied(plan, key, f"{lack}: no {group}* setting sent", unread)
            continue
        targets = profile.settings.get(key)
        if not targets:
            if key not in desired.implied and key not in in_rows:
                _unsupported(plan, profile, key, value)
            continue
        if why := _gate(targets, values, absent, unreadable):
            # Not this CPE's: a 6 GHz SSID where SSID.3 is a guest network on 2.4 GHz.
            # Unread, even "off" waits: the guest SSID.3 must not be turned off unseen.
            # Band steering's own copy is quiet where the band is not there at all, but
            # said where the CPE's answer failed the test: the band tests of TR-098 are
            # guesses from values (channels, vendor leaves), and "one network on every
            # band" must not stand unremarked while a 5 GHz radio kept its own.
            reason, unread, seen = why
            if (key not in desired.implied or seen) and (value is not False or unread):
                _not_applied(plan, key, reason, unread)
            continue
        if key in _OTHER_BAND_SSIDS:
            other_bands += 1
        on_wire = []  # each target with what its map makes of the value, once
        for target in targets:
            wanted = wire_value(target, value)
            if wanted is not None:
                on_wire.append((target, wanted))
        if not on_wire and value is not False:
            # A value no target's map has (6 GHz "open" on TR-181, which allows only SAE):
            # nothing is written, and the job says so instead of going DONE.
            plan.unsupported.append(
                {"setting": key, "reason": _unmappable(profile, targets, value)}
            )
            continue
        also = key not in desired.strict
        if odd := _not_supported(on_wire, values, also=also):
            # A mode this access point does not list (6 GHz OWE on firmware without it):
            # refused (9007) in every session, and the parameters that go with it (the
            # management frame protection of the mode) mean nothing without it.
            plan.unsupported.append({"setting": key, "reason": odd})
            continue
        for index, (target, wanted) in enumerate(on_wire):
            if target.optional and target.when and _when_fails(target, values, absent, unreadable):
                continue  # (the WPA3 passphrase of a router in WPA2/WPA3 transition mode)
            earlier = []
            if target.fallback:
                earlier = [t.path for t, _ in on_wire[:index] if t.form == target.form]
                if unknown := next((p for p in earlier if p in unreadable), None):
                    # which of the two this CPE has is not known this session (said once)
                    if not any(u["setting"] == key for u in plan.unread):
                        _not_applied(plan, key, _lacking(unknown, absent, unreadable) or "", True)
                    break
                if any(p not in absent for p in earlier):
                    continue  # the CPE has the one before: written there
            if lack := _lacking(target.path, absent, unreadable):
                if key in desired.implied or target.optional:
                    continue  # acsd's own addition, or one the CPE does without
                if target.path in absent and any(
                    t.fallback and t.form == target.form for t, _ in on_wire[index + 1 :]
                ):
                    continue  # the fallback after it stands in (or says what is lacking)
                if earlier:
                    lack = f"{lack} (nor is {', '.join(earlier)})"
                if target.path in unreadable:
                    _not_applied(plan, key, lack, True)
                elif value is not False:  # "off" where the CPE lacks it is already true
                    if instead := INSTEAD.get(key):
                        lack = f"{lack}; {instead[1]}"
                    _not_applied(plan, key, lack, False)
                continue
            wanted = _on_this_cpe(target, wanted, values, also=also)
            if not force and _holds(target, wanted, values, secrets):
                continue
            if _refused_optional(plan, refused, key, target):
                continue
            if _held_back(plan, faults, key, target.path, wanted, now, max_attempts):
                continue
            if not force and _bounced(
                plan, bounces, key, target.path, wanted, values.get(target.path), max_attempts
            ):
                continue
            # the other forms' parameters (a passphrase beside the raw key) no longer hold
            # what acsd remembers once this one is written (WPA3's passphrase beside WPA2's
            # is of the same form, and holds it as well)
            clears = tuple(t.path for t in targets if t.form is not None and t.form != target.form)
            if target.list_head and target.max_length is not None:
                _, cut = _headed_and_cut(
                    wire_value(target, value) or "", values.get(target.path), target.max_length
                )
                if cut:
                    plan.notes.append(cut_note(key, target.path, cut, target.max_length))
            plan.changes.append(
                Change(
                    key,
                    target.path,
                    wanted,
                    target.type,
                    target.secret,
                    target.reboot,
                    clears,
                    optional=target.optional,
                )
            )

    for table, rows in tables.items():
        if group_of(table) in incomplete:
            continue  # said above, setting by setting
        spec = profile.tables.get(table)
        if spec is None:
            plan.unsupported.append(
                {"setting": table, "reason": f"unsupported by profile {profile.name}"}
            )
            continue
        if lack := _lacking(spec.object, absent, unreadable):
            # No rows wanted where there is no table is already true; where the table
            # could not be read, rows acsd should delete may be in it still.
            if rows or spec.object in unreadable:
                _not_applied(plan, table, lack, spec.object in unreadable)
            continue
        # A table without `only` cannot tell acsd's rows from the CPE's by their values
        # (a reservation the customer made on the router looks like acsd's): acsd
        # remembers the keys it manages there, and deletes no other row.
        owned = None if spec.only else set(owned_rows.get(table, ()))
        going_off = spec.when is not None and desired.settings.get(spec.when) is False
        if going_off:
            # The line going off takes away the rows it made, no other: a static address
            # or route the customer (or the ISP's installer) added stays.
            owned = line_rows(memory.get(STATIC_LINE)).get(table, set())
        _plan_table(
            plan,
            table,
            spec,
            rows,
            rows_read(table),
            faults,
            bounces,
            force,
            now,
            max_attempts,
            owned,
            blank_rows,
        )
        if going_off and spec.only:
            plan.owned.pop(table, None)  # (``only`` tells its rows apart: no ownedRows)
    _written_along(
        plan,
        profile,
        desired,
        values,
        absent,
        unreadable,
        secrets,
        faults,
        bounces,
        refused,
        now,
        max_attempts,
    )
    _hold_groups(plan, profile)
    if desired.settings.get("wifi.bandsteering") and not other_bands:
        off = [k for k in ("wifi.5g.enable", "wifi.6g.enable") if desired.settings.get(k) is False]
        _nothing_to_steer(plan, profile, switched_off=bool(off))
    return plan


#: the SSIDs band steering copies the 2.4 GHz network onto
_OTHER_BAND_SSIDS = frozenset({"wifi.5g.ssid", "wifi.6g.ssid"})


def _nothing_to_steer(plan: Plan, profile: Profile, *, switched_off: bool = False) -> None:
    """A CPE with no band but 2.4 GHz, or whose others the record switches off: "emulated
    with one SSID and password on every band" would claim a copy that went nowhere."""
    where = (
        "the record switches its other bands off"
        if switched_off
        else "this CPE has no 5 or 6 GHz network to give the 2.4 GHz one's name"
    )
    for entry in plan.unsupported:
        if entry["setting"] == "wifi.bandsteering":
            entry["reason"] = (
                f"profile {profile.name} has no band steering parameter, and {where}: "
                "nothing to steer"
            )


def along_targets(profile: Profile, settings: Iterable[str]) -> list[tuple[str, Target]]:
    """(setting, target) of the parameters written along with any of ``settings`` (names
    of settings or tables, `written_with`): the session reads them with the settings."""
    keys = list(settings)
    return [
        (key, target)
        for key, targets in profile.settings.items()
        for target in targets
        if target.written_with
        and any(fnmatchcase(k, glob) for k in keys for glob in target.written_with)
    ]


def _written_along(
    plan: Plan,
    profile: Profile,
    desired: Desired,
    values: Mapping[str, str],
    absent: set[str],
    unreadable: Mapping[str, str],
    secrets: Mapping[str, str],
    faults: Mapping[str, Any],
    bounces: Mapping[str, Any],
    refused: Mapping[str, Any],
    now: float,
    max_attempts: int,
) -> None:
    """A parameter a profile writes whenever one of some settings is (TR-098's
    DHCPServerConfigurable, without which the CPE serves its default pool whatever acsd
    writes), once: a SetParameterValues must not name one parameter twice, and the
    driver keeps the settings of one kind (``dhcp``) in one SetParameterValues.

    It is also put back on its own when the CPE reports another value while the record
    has one of those settings: firmware turns DHCPServerConfigurable false by itself
    after a change on its web page, and the settings acsd holds there are then not
    served. Not reported (not read this session), it goes only with a change."""
    written = {c.path for c in plan.changes}
    # what this session writes: settings, and tables whose rows it adds, changes or deletes
    # (a reservation the CPE would not serve while it keeps its default DHCP settings)
    settings = {c.setting.split("[", 1)[0] for c in plan.changes}
    settings.update(add.table for add in plan.adds)
    settings.update(table_at(profile, path) for path in plan.deletes)
    with_change = {t.path for _key, t in along_targets(profile, settings)}
    for key, target in along_targets(profile, desired.names):
        wanted = target.value
        if wanted is None or target.path in written:
            continue
        if target.path not in values and target.path not in with_change:
            continue
        if _lacking(target.path, absent, unreadable) or _when_fails(
            target, values, absent, unreadable
        ):
            continue  # a CPE without the switch does without it; its setting says so
        if _holds(target, wanted, values, secrets):
            continue
        if _refused_optional(plan, refused, key, target):
            continue
        if _held_back(plan, faults, key, target.path, wanted, now, max_attempts):
            continue
        if _bounced(plan, bounces, key, target.path, wanted, values.get(target.path), max_attempts):
            continue
        plan.changes.append(
            Change(key, target.path, wanted, target.type, target.secret, optional=target.optional)
        )
        written.add(target.path)


def table_at(profile: Profile, path: str) -> str:
    """The table a row path ("...IPv4Forwarding.4.") belongs to, or "" for none."""
    return next((name for name, s in profile.tables.items() if path.startswith(s.object)), "")


def stopped_groups(settings: Iterable[str]) -> set[str]:
    """The WHOLE_GROUPS groups that a needed part among ``settings`` (refused, or waiting
    for its back-off) stops: the rest of a static line without its address or route cuts
    the router off."""
    return {g for s in settings if needed_by_group(s) and (g := group_of(s)) is not None}


def drop_groups(items: list[_Item], groups: set[str], profile: Profile) -> list[_Item]:
    """``items`` (changes, row adds or row deletes by path) less those of ``groups``."""
    if not groups:
        return items
    return [i for i in items if _group_of_item(i, profile) not in groups]


def _group_of_item(item: Change | RowAdd | str, profile: Profile) -> str | None:
    if isinstance(item, Change):
        return group_of(item.setting)
    if isinstance(item, RowAdd):
        return group_of(item.table)
    return group_of(table_at(profile, item))


def _hold_groups(plan: Plan, profile: Profile) -> None:
    """A group with a part waiting for its back-off (or given up) sends nothing. An old
    row the CPE would not delete is no such part: a line's old address left beside the
    new one does not cut the router off, and holding the group for it would."""
    held = stopped_groups(
        e["setting"] for e in plan.waiting + plan.failed if e.get("parameter") not in plan.deleting
    )
    plan.changes = drop_groups(plan.changes, held, profile)
    plan.adds = drop_groups(plan.adds, held, profile)
    plan.deletes = drop_groups(plan.deletes, held, profile)


def row_changes(table: str, spec: TableSpec, instance: int, row: Mapping[str, Any]) -> list[Change]:
    """The fields of a row just created with AddObject (all of them: defaults are unknown)."""
    base = f"{spec.object}{instance}."
    setting = row_name(table, row[spec.key])
    return [
        Change(setting, base + f.param, f.value, f.type)
        if f.value is not None
        else Change(setting, base + f.param, field_value(f, row[name]), f.type)
        for name, f in spec.fields.items()
        if f.value is not None or name in row
    ]


def _rows_of_settings(
    profile: Profile, desired: Desired
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """The desired tables, with the one-row tables this profile builds of settings (the
    static WAN address of TR-181) added; and setting -> the table that takes it."""
    tables = dict(desired.tables)
    in_rows: dict[str, str] = {}
    for table, spec in profile.tables.items():
        if spec.when is None or spec.when not in desired.settings:
            continue
        in_rows.update((setting, table) for setting in spec.row_from.values())
        if desired.settings[spec.when] is not True:
            tables[table] = []  # "off": the row acsd made goes
            continue
        try:
            row = {f: desired.settings[s] for f, s in spec.row_from.items()}
        except KeyError:
            continue  # asked for without all it needs: nothing half-made
        items = str(row[spec.key]).split(",") if spec.split else [row[spec.key]]
        tables[table] = [{**row, spec.key: item.strip()} for item in items if str(item).strip()]
    return tables, in_rows


# --- helpers -------------------------------------------------------------------------------


def _unsupported(plan: Plan, profile: Profile, key: str, value: Any) -> None:
    # Saying "off" to something the router cannot do is no failure.
    if value is False:
        return
    if instead := INSTEAD.get(key):
        reason = f"profile {profile.name} has no {instead[0]} parameter; {instead[1]}"
        plan.unsupported.append({"setting": key, "reason": reason})
        return
    plan.unsupported.append({"setting": key, "reason": f"unsupported by profile {profile.name}"})


def _holds(
    target: Target, wanted: str, values: Mapping[str, str], secrets: Mapping[str, str]
) -> bool:
    if target.secret:
        # Secrets read back empty: the CPE holds it if acsd applied exactly this value.
        return secrets.get(target.path) == value_hash(target.path, wanted)
    current = values.get(target.path)
    return current is not None and same_value(target.type, current, wanted)


#: a secret setting -> the settings written with it that the CPE reads back: one of those
#: found other than acsd wrote means the CPE lost what acsd set there (a configuration
#: reset without a BOOTSTRAP, a restore of a backup), the secret with it
_SECRET_BESIDE = {
    **{
        f"wifi.{band}.password": (f"wifi.{band}.ssid", f"wifi.{band}.security")
        for band in ("2g", "5g", "6g")
    },
    "management.cr_password": ("management.cr_username",),
}


def _secrets_still_held(
    profile: Profile,
    desired: Desired,
    values: Mapping[str, str],
    secrets: Mapping[str, str],
    unsure: Mapping[str, Any],
) -> Mapping[str, str]:
    """The memory's secret hashes, less those of a setting whose readable neighbours
    (:data:`_SECRET_BESIDE`) the CPE no longer holds: a password reads back empty, and
    its hash alone said "held" on a router that had lost its whole WLAN configuration
    (back to its SSID and an empty key, the job DONE). ``unsure``: neighbours whose
    difference says nothing of a loss (refused: a fault acsd remembers; written in planning
    sessions in a row: a value the CPE does not keep, whose password would otherwise go
    with it every session)."""
    if not secrets:
        return secrets
    stale: list[str] = []
    for secret, beside in _SECRET_BESIDE.items():
        paths = [t.path for t in profile.settings.get(secret, ()) if t.path in secrets]
        if paths and any(_lost(profile, key, desired, values, unsure) for key in beside):
            stale.extend(paths)
    if not stale:
        return secrets
    return {path: digest for path, digest in secrets.items() if path not in stale}


def _count(entry: Any) -> int:
    """In how many planning sessions in a row a ``bounces`` entry's value was written (0
    for an entry a hand edit left without a whole number)."""
    count = entry.get("count") if isinstance(entry, Mapping) else None
    return count if type(count) is int else 0


def _lost(
    profile: Profile,
    key: str,
    desired: Desired,
    values: Mapping[str, str],
    unsure: Mapping[str, Any],
) -> bool:
    """Whether the CPE reports, for a setting acsd wants, a value other than it wants (a
    parameter not read this session, one its `also` counts as held, or one ``unsure``
    names, is no sign)."""
    if key not in desired.settings:
        return False
    for target in profile.settings.get(key, ()):
        if target.secret or target.path not in values or target.path in unsure:
            continue
        wanted = wire_value(target, desired.settings[key])
        if wanted is None:
            continue
        held = _on_this_cpe(target, wanted, values, also=key not in desired.strict)
        if not _holds(target, held, values, {}):
            return True
    return False


def _on_this_cpe(
    target: Target, wanted: str, values: Mapping[str, str], *, also: bool = True
) -> str:
    """What ``target`` is to hold on this CPE for the wire value ``wanted``: the CPE's own
    list with ``wanted`` at its head (``list_head``: held when that list is the CPE's as it
    is), or the CPE's own value where the profile counts it as holding ``wanted`` (``also``:
    a router in WPA2/WPA3 transition mode serves WPA2-PSK; then nothing changes, and a
    write of everything, 0 BOOTSTRAP, writes it as it is)."""
    current = values.get(target.path)
    if target.list_head:
        return _headed_list(wanted, current, target.max_length)
    if (
        also
        and target.also is not None
        and current is not None
        and current.strip() in target.also.get(wanted, ())
    ):
        return current.strip()
    return wanted


#: faults that say the CPE will not take a value at a parameter at all, whatever the
#: value: 9008 (not writable), 9005 (no such parameter: firmware that lacks it, and that
#: may have left it out of its GetParameterValues answer rather than fault there)
WRITE_REFUSED_FOR_GOOD = frozenset({9005, 9008})
#: request denied: a parameter locked by the firmware's policy, or a CPE busy for the
#: moment. Which one only a retry tells: the value is tried once more in a later session
#: (its back-off), and given up when denied again (cwmp-reference, fault 9001)
DENIED = 9001
#: how many denials of one value in a row give it up
DENIED_TRIES = 2


def given_up(fault: Mapping[str, Any], max_attempts: int) -> bool:
    """Whether a remembered fault (``faults`` entry) is not retried any more: tried as
    often as the retry policy allows, or denied DENIED_TRIES times in a row."""
    return fault.get("attempts", 0) >= max_attempts or fault.get("denied", 0) >= DENIED_TRIES


def refused_reason(path: str, code: Any, message: str) -> str:
    """What the job says of an optional parameter the CPE refused (``refusedOptional``)."""
    text = f" {message}" if message else ""
    return f"the CPE refused {path} ({code}{text}): written without it on this CPE"


def _refused_optional(plan: Plan, refused: Mapping[str, Any], setting: str, target: Target) -> bool:
    """Whether ``target`` is an optional parameter this CPE refused writes to (9008, 9005,
    9001): the setting is written without it, and the job lists it with the refusal."""
    entry = refused.get(target.path) if target.optional else None
    if not isinstance(entry, dict):
        return False
    reason = refused_reason(target.path, entry.get("code"), str(entry.get("message") or ""))
    plan.unsupported.append({"setting": setting, "reason": reason})
    return True


#: how far off a refused setting's retry is at most, for a fault remembered without its
#: "delay" (faults remembered before acsd kept it): RetryPolicy.cap's default
RETRY_CAP = 86400.0


def _held_back(
    plan: Plan,
    faults: Mapping[str, Any],
    setting: str,
    path: str,
    wanted: str,
    now: float,
    max_attempts: int,
) -> bool:
    fault = faults.get(path)
    if not fault or fault.get("hash") != value_hash(path, wanted):
        return False  # never faulted, or the operator changed the value since: try it
    entry = {
        "setting": setting,
        "parameter": fault.get("parameter", path),
        "code": fault.get("code"),
        "message": fault.get("message", ""),
        "attempts": fault.get("attempts", 0),
        "nextRetry": fault.get("nextRetry"),
    }
    if given_up(fault, max_attempts):
        plan.failed.append({**entry, "nextRetry": None})
        return True
    next_retry = fault.get("nextRetry", 0)
    if now < next_retry and next_retry - now <= fault.get("delay", RETRY_CAP):
        plan.waiting.append(entry)
        return True
    # due, or set further off than the retry was ever put: by a clock that was ahead and
    # has been put right (it waited that long besides, and said "tomorrow" all the while)
    return False


def _bounced(
    plan: Plan,
    bounces: Mapping[str, Any],
    setting: str,
    path: str,
    wanted: str,
    current: str | None,
    max_attempts: int,
) -> bool:
    """Whether ``wanted`` was written at ``path`` in as many sessions in a row as the retry
    policy allows, each taken by the CPE (SetParameterValues answered) and read back as
    something else the next time: a value it normalises or silently refuses. Writing it
    once more would not help (cwmp-reference 9.7): it is given up, and the job says what
    the CPE holds instead. A value changed by hand between sessions that hold it is no
    such thing: a session that finds it held starts the count again (jobs.count_writes)."""
    entry = bounces.get(path)
    if not entry or entry.get("hash") != value_hash(path, wanted):
        return False
    count = _count(entry)
    if count < max_attempts:
        return False
    # A secret parameter's writes are never counted (it reads back empty); one a profile
    # marked `secret = false` (firmware that reads it back) is still named, not shown.
    secret = "password" in setting or is_secret_name(path)
    if secret and current == "":
        # (most likely a password the firmware hides: the profile took it for readable)
        message = (
            f"the CPE reads this parameter back empty after {count} writes: if it hides the "
            "password it holds, the profile must mark it `secret = true`"
        )
    else:
        held = (
            f"another value after {count} writes of this one"
            if secret
            else f"{_shown(current)} after {count} writes of {_shown(wanted)}"
        )
        message = f"the CPE holds {held}: it changes or silently refuses this value"
    plan.failed.append(
        {
            "setting": setting,
            "parameter": path,
            "code": None,
            "message": message,
            "attempts": count,
            "nextRetry": None,
        }
    )
    plan.bounced.append(path)
    return True


def _shown(value: str | None) -> str:
    if value is None:
        return "no value"
    return repr(value if len(value) <= 64 else value[:64] + "...")


def _plan_table(
    plan: Plan,
    table: str,
    spec: TableSpec,
    rows: list[dict[str, Any]],
    existing: Mapping[int, Mapping[str, str]],
    faults: Mapping[str, Any],
    bounces: Mapping[str, Any],
    force: bool,
    now: float,
    max_attempts: int,
    owned: set[str] | None = None,
    blank_rows: frozenset[str] = frozenset(),
) -> None:
    """``owned``: for a table without ``only``, the keys of the rows acsd manages (those
    it was asked for in earlier sessions); rows of other keys are the CPE's, never deleted.
    None: ``only`` tells the rows apart. ``blank_rows``: row paths acsd added in a session
    that ended before it set their fields (memory's ``blankRows``)."""
    key_field = spec.fields[spec.key]
    if "enable" not in spec.fields:
        # A row switched off where the CPE's rows have no Enable (a vendor's reservation
        # table): written, it would be as live as the others. Left out, it is not there,
        # which is what "off" asks (and one acsd made earlier goes).
        rows = [row for row in rows if row.get("enable", True) is not False]

    def _key_of(row: Mapping[str, str]) -> str:
        return row.get(key_field.param, "").strip()

    def delete(instance: int) -> None:
        # Named by the key the CPE holds there (the reservation's MAC as the router shows
        # it; a row without one by its table alone): the row is gone from the record.
        path = f"{spec.object}{instance}."
        name = row_name(table, existing[instance].get(key_field.param, "").strip())
        plan.deleting[path] = name
        # a DeleteObject the CPE refused waits for its back-off like any other fault
        if not _held_back(plan, faults, name, path, "", now, max_attempts):
            plan.deletes.append(path)

    if reason := _unowned(spec, existing):
        if rows:
            plan.unsupported.append({"setting": table, "reason": reason})
        return
    wanted_keys = {row_key(spec, row[spec.key]) for row in rows}
    # what acsd manages from now on: what it is asked for, and its rows still to delete
    managed = wanted_keys | (owned or set())
    by_key: dict[str, int] = {}
    #: (field, value) -> the key value of the customer's row that holds it
    theirs: dict[tuple[str, str], str] = {}
    for instance in sorted(existing):
        if f"{spec.object}{instance}." in blank_rows and not _key_of(existing[instance]):
            # Still as its AddObject left it: without the values `only` tests (a route's
            # Interface) it would pass for the CPE's own and stay for good, one more
            # after every session a reboot cuts short between AddObject and its fields.
            delete(instance)
            continue
        if not _ours(existing[instance], spec.only) or (
            spec.ipv4_keys and not _is_ipv4(existing[instance].get(key_field.param, ""))
        ):
            continue  # the CPE's own row (made by its DHCP client, an IPv6 server)
        key = row_key(spec, existing[instance].get(key_field.param, ""))
        if owned is not None and key and key not in managed:
            # the customer's own (a reservation made on the router's web page)
            for name in spec.unique:
                value = existing[instance].get(spec.fields[name].param, "").strip()
                theirs.setdefault((name, value), existing[instance][key_field.param])
            continue
        if key in by_key or not key:
            delete(instance)  # duplicate or empty row
        else:
            by_key[key] = instance
    if owned is not None:
        plan.owned[table] = sorted(wanted_keys | (owned & by_key.keys()))
    held = plan.rows.setdefault(table, {})
    for row in rows:
        key = row_key(spec, row[spec.key])
        instance = by_key.get(key)
        if clash := _clash(spec, row, theirs):
            # Two rows of one address: the CPE refuses the second or, worse, hands the
            # address to both clients. The customer's row stays; the job says why.
            setting = row_name(table, row[spec.key])
            plan.refused.append({"setting": setting, "message": clash, "attempts": 0})
            if instance is not None:
                held[key] = instance
            continue
        if instance is None:
            # a row the CPE refused (AddObject, or its fields) waits for its back-off
            setting = row_name(table, row[spec.key])
            fault_path = row_fault_path(spec.object, key)
            if not _held_back(
                plan, faults, setting, fault_path, row_signature(row), now, max_attempts
            ):
                plan.adds.append(RowAdd(table, spec.object, key, row))
            continue
        held[key] = instance
        current = existing[instance]
        for change in row_changes(table, spec, instance, row):
            leaf = change.path.rsplit(".", 1)[1]
            if leaf == key_field.param:
                continue  # the row was found by this very value (CPEs differ in MAC case)
            if (
                not force
                and leaf in current
                and same_value(change.type, current[leaf], change.value)
            ):
                continue
            if _held_back(
                plan, faults, change.setting, change.path, change.value, now, max_attempts
            ):
                continue
            if not force and _bounced(
                plan,
                bounces,
                change.setting,
                change.path,
                change.value,
                current.get(leaf),
                max_attempts,
            ):
                continue
            plan.changes.append(change)
    for key, instance in by_key.items():
        if key not in wanted_keys:
            delete(instance)


def _clash(spec: TableSpec, row: Mapping[str, Any], theirs: Mapping[tuple[str, str], str]) -> str:
    """Why ``row`` cannot go into the table beside the CPE's own rows, or ""."""
    for name in spec.unique:
        value = str(row.get(name, "")).strip()
        if other := theirs.get((name, value)):
            return (
                f"{value} is reserved on the router for {other} (a reservation made there, "
                "which acsd leaves alone): not sent"
            )
    return ""


def instance_numbers(table: str, paths: Iterable[str]) -> set[int]:
    """The instance numbers of ``table`` ("...IPv4Forwarding.") that ``paths`` name."""
    pattern = re.compile(re.escape(table) + r"([0-9]{1,10})\.")
    return {int(m.group(1)) for path in paths if (m := pattern.match(path))}


def _existing_rows(spec: TableSpec, values: Mapping[str, str]) -> dict[int, dict[str, str]]:
    """Instance number -> leaf -> value of the rows of ``spec`` the CPE reported."""
    # ASCII digits, unsignedInt-sized: int() of what a CPE sends must not raise
    pattern = re.compile(re.escape(spec.object) + r"([0-9]{1,10})\.([^.]+)$")
    existing: dict[int, dict[str, str]] = {}
    for path, value in values.items():
        match = pattern.match(path)
        if match:
            existing.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return existing


def _unowned(spec: TableSpec, existing: Mapping[int, Mapping[str, str]]) -> str | None:
    """Why acsd cannot tell its rows from the CPE's (a row without a leaf ``only`` tests),
    or None. Guessing would add a row every session, or delete the CPE's own."""
    for instance, row in sorted(existing.items()):
        for leaf, _ in spec.only:
            if leaf not in row:
                return (
                    f"{spec.object}{instance}.{leaf} is not on this CPE: "
                    "its own entries and acsd's cannot be told apart"
                )
    return None


def _ours(row: Mapping[str, str], only: tuple[tuple[str, tuple[str, ...]], ...]) -> bool:
    """Whether a row read from the CPE holds one of the values the profile's ``only``
    names for each leaf: booleans as the CPE spells them (1 or true), other values in any
    case (``static``), references with or without their trailing dot."""
    for leaf, wanted in only:
        current = row[leaf].strip()  # _unowned() made sure every row has it
        if not any(_same_word(current, value) for value in wanted):
            return False
    return True


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text.strip())
    except ValueError:
        return False
    return True


def _same_word(current: str, wanted: str) -> bool:
    if wanted in ("true", "false"):
        return same_value("xsd:boolean", current, wanted)
    # as for a value acsd sets, and an enumeration in any case ("static")
    return same_value("xsd:string", current, wanted) or current.lower() == wanted.lower()
