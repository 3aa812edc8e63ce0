"""Store records <-> table rows, for both backends: JSON columns, the device table's
columns, the other tables' codecs, the keys that match serial numbers and MACs, and the
audit row every operator write adds. No statement that binds values lives here: the
backends' placeholders differ (see ``sqlite.rows`` and ``postgres.rows``)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields, replace
from operator import contains, itemgetter
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import orjson

from acsd import clock
from acsd.ids import new_id
from acsd.log import Once, get_logger
from acsd.macs import mac_key
from acsd.models import DeviceState
from acsd.store.base import (
    INTERNET_STATES,
    ApnAccountRecord,
    ApnDeviceRecord,
    ApnNetworkRecord,
    ApnOperationRecord,
    AuditRecord,
    CustomerRecord,
    DeviceRecord,
    InternetAccountRecord,
    MacChange,
    ModelRecord,
    TokenRecord,
)


def dumps(value: Any) -> str:
    # allow_nan=False: NaN/Infinity are not JSON and would poison json_patch for the row.
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def dumps_plan(plan: dict[str, Any]) -> str:
    """A read plan (ReadPlan.to_json: names, refs, the clock's time: no NaN), written by
    every first session: the largest JSON column of its save after the tree, so orjson
    as :func:`dumps_params` (the json module took 3 % of a boot storm's CPU)."""
    return dumps_params(plan)


def dumps_params(params: dict[str, list[Any]]) -> str:
    """The CPE's parameter tree (name -> [value, type], strings only): written every
    session, several KB, so orjson (ten times faster here). orjson would turn a NaN into
    null silently, but a CPE's values are strings; anything else falls back to :func:`dumps`."""
    try:
        return orjson.dumps(params).decode()
    except TypeError:
        return dumps(params)


def loads(text: str) -> Any:
    return orjson.loads(text)


def restate(value: Any) -> str:
    """What :func:`loads` decoded, as JSON text again (a session's snapshot of its stored
    memory): by orjson, which decoded no NaN and only string keys, so it round-trips; as a
    str, because orjson's bytes keep a 4 KB buffer each, and a str what it holds."""
    return orjson.dumps(value).decode()


log = get_logger("acsd.store")

# (table, record id, column) already warned about: a damaged row is read on every look-up,
# its warning is wanted once.
_WARNED = Once()


def warn_damaged(
    table: str, record_id: Any, column: str, found: str, read_as: str = "absent"
) -> None:
    if not _WARNED.first((table, str(record_id), column)):
        return
    # the stored value is not logged: it may hold a secret (a wifi key, a password)
    log.warning("store_column_damaged", table=table, record=str(record_id), column=column,
                found=found, read_as=read_as)  # fmt: skip


def json_column(
    text: Any, kind: type, *, table: str, record_id: Any, column: str, nullable: bool
) -> Any:
    """A JSON column's stored text as this release reads it: text that is no JSON, or JSON
    of another shape than ``kind`` (a row edited by hand, an older release's, a half
    restored backup), reads as absent (None, or an empty ``kind`` where the column holds
    no null) with one warning, rather than failing every look-up, list and session of the
    record. The next write of the column replaces it."""
    if text is None:
        return None if nullable else kind()
    try:
        value = loads(text) if isinstance(text, str | bytes) else text
    except orjson.JSONDecodeError:
        warn_damaged(table, record_id, column, "invalid JSON")
        return None if nullable else kind()
    if value is None and nullable:
        return None
    if not isinstance(value, kind):
        warn_damaged(table, record_id, column, type(value).__name__)
        return None if nullable else kind()
    return value


# What a column of a record field's type may hold as the database gives it back: SQLite's
# column types are affinities, not constraints, so an UPDATE by hand keeps text in an
# INTEGER or REAL column, a BLOB in any, a fraction in an INTEGER one. (Booleans are 0/1.)
_HOLDS: dict[type, tuple[type, ...]] = {
    str: (str,), int: (int,), float: (float, int), bool: (int, bool)
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Scalar:
    """A column of a record field of one scalar type (str, int, float, bool)."""

    index: int
    name: str
    kind: type
    holds: tuple[type, ...]
    nullable: bool
    #: what a value of another type reads as: None where the field holds it, else the
    #: field's default (the value of a new record), else the type's empty value
    default: Any
    #: the values the column may hold, where they are few (a state): another reads as
    #: ``default`` too
    allowed: frozenset[Any] | None = None
    #: another column of the row whose value, where it holds this one's type, is a
    #: better reading than ``default`` (a damaged creation time: the row's last change)
    fallback: _Scalar | None = None


class Scalars:
    """The columns of a record class whose fields hold one scalar type (or None), with the
    values allowed in some of them; checked first all at once (a list page reads 1000
    rows of 30 such columns), then one by one only in a row that fails that."""

    def __init__(self, columns: Sequence[_Scalar]) -> None:
        self.columns = tuple(columns)
        indexes = [column.index for column in self.columns]
        if len(indexes) < 2:  # itemgetter of one index gives the value, not a tuple
            raise ValueError("a record of fewer than two scalar columns")
        self.pick: Callable[[Sequence[Any]], tuple[Any, ...]] = itemgetter(*indexes)
        self.types = tuple(
            frozenset((*column.holds, type(None)) if column.nullable else column.holds)
            for column in self.columns
        )
        self.bools = tuple(column.index for column in self.columns if column.kind is bool)
        self.enums = tuple(column for column in self.columns if column.allowed is not None)

    def named(self, name: str) -> _Scalar:
        return next(column for column in self.columns if column.name == name)


def shown_as(column: _Scalar, value: Any, placeholder: str) -> str:
    """The term of a list's WHERE that finds the rows whose ``column`` (one of few
    values: a state) is shown as ``value``, ``placeholder`` binding it: a stored value
    this release does not know, or of another type, is shown as a new record's
    (scalar_values), so the filter for that one finds it too, as the list shows it. The
    known values are this release's constants, never input."""
    term = f"{column.name} = {placeholder}"
    if value != column.default or column.allowed is None:
        return term
    known = ", ".join(f"'{known}'" for known in sorted(column.allowed))
    return f"({term} OR {column.name} NOT IN ({known}))"


def scalar_columns(
    cls: type,
    skip: Collection[str] = (),
    allowed: Mapping[str, Collection[Any]] | None = None,
    fallbacks: Mapping[str, str] | None = None,
) -> Scalars:
    """The columns of record class ``cls`` whose fields hold one scalar type (or None),
    with the values ``allowed`` in some of them, and the column each of ``fallbacks``
    reads as when damaged (a time of the same type) rather than as its default."""
    allowed = allowed or {}
    hints = get_type_hints(cls)
    out = []
    for index, field in enumerate(fields(cls)):
        hint = hints[field.name]
        union = get_origin(hint) in (Union, UnionType)  # X | None
        kinds = [arg for arg in get_args(hint) if arg is not type(None)] if union else [hint]
        if field.name in skip or len(kinds) != 1 or kinds[0] not in _HOLDS:
            continue
        kind = kinds[0]
        nullable = union and type(None) in get_args(hint)
        default = field.default if field.default is not MISSING else kind()
        values = allowed.get(field.name)
        out.append(_Scalar(index, field.name, kind, _HOLDS[kind], nullable,
                           None if nullable else default,
                           None if values is None else frozenset(values)))  # fmt: skip
    named = {column.name: column for column in out}
    for name, other in (fallbacks or {}).items():
        out[out.index(named[name])] = replace(named[name], fallback=named[other])
    return Scalars(out)


def scalar_values(values: list[Any], columns: Scalars, *, table: str, record_id: Any) -> None:
    """A row's scalar columns as this release reads them, in place: a value of another type
    (a row edited by hand, a half restored backup) reads as absent, or as a new record's
    value where the field holds no None, with one warning, rather than failing every
    look-up, list and session of the record. The next write of the column replaces it."""
    if not all(map(contains, columns.types, map(type, columns.pick(values)))):
        for column in columns.columns:
            value = values[column.index]
            if type(value) in column.holds or (value is None and column.nullable):
                continue
            found = "null" if value is None else type(value).__name__
            _reset(values, column, table, record_id, found)
    for index in columns.bools:
        values[index] = bool(values[index])
    for column in columns.enums:
        value = values[column.index]
        if value not in column.allowed and not (value is None and column.nullable):  # type: ignore[operator]
            # (not which value: the warning names none that is stored)
            _reset(values, column, table, record_id, "unknown value")


def _reset(values: list[Any], column: _Scalar, table: str, record_id: Any, found: str) -> None:
    other = column.fallback
    if other is not None and type(values[other.index]) in column.holds:
        warn_damaged(table, record_id, column.name, found, other.name)
        values[column.index] = values[other.index]
        return
    read_as = "absent" if column.nullable else dumps(column.default)
    warn_damaged(table, record_id, column.name, found, read_as)
    values[column.index] = column.default


def search_fold(text: str) -> str:
    """A device search's text (``q=``) and what it is looked for in, as compared: case
    folded (capitals as small letters, Greek final sigma as sigma) and composed.
    Keyboards differ in how they write an accent (macOS and some phones send é as e +
    U+0301): an operator who types either means the same name."""
    if text.isascii():  # most names and serials; SQLite folds every row of a search
        return text.lower()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


def serial_key(serial_number: str) -> str:
    return serial_number.lower()


def warn_rekeyed(device_id: str) -> None:
    """A record whose serial_key was not its serial number's key (edited by hand, a bad
    migration in another tool: wrong case, spaces, a BLOB) was found by its serial number
    (index devices_serial_lower) and its key repaired: else its router's Informs missed
    it, and bound by MAC or made a second record of the serial."""
    warn_damaged("devices", device_id, "serial_key", "not its serial number's key", "repaired")


# -- rows <-> records ---------------------------------------------------------------------

DEVICE_FIELDS = [f.name for f in fields(DeviceRecord)]
DEVICE_COLUMNS = ", ".join(DEVICE_FIELDS)
DEVICE_SELECT = f"SELECT {DEVICE_COLUMNS} FROM devices"
# The same columns for a session's look-up: the parameter tree and the status left out
# ('{}' in their place). A session writes a new status and seldom needs the tree, and an
# open session would otherwise hold both, decoded, for as long as it runs.
_SESSION_LEFT_OUT = ("params", "status")
DEVICE_SELECT_FOR_SESSION = "SELECT {} FROM devices".format(
    ", ".join(f"'{{}}' AS {name}" if name in _SESSION_LEFT_OUT else name for name in DEVICE_FIELDS)
)
# The same for a page of the device list, whose answer shows no parameter tree: a page of
# 1000 routers with large trees (100k parameters, several MB of JSON each) took GBs and
# seconds of the event loop to decode.
DEVICE_LIST_COLUMNS = ", ".join(
    "'{}' AS params" if name == "params" else name for name in DEVICE_FIELDS
)
# One record without its tree, as every look-up but a session's reads it (get_device, the
# checks of operator writes, the record a write returns): a router's 100k parameters took
# ~140 ms of the event loop to decode for callers that need one value of them at most
# (Store.device_values reads those; the Connection Request username has a column).
DEVICE_SELECT_NO_TREE = f"SELECT {DEVICE_LIST_COLUMNS} FROM devices"
_JSON_FIELDS = (
    "wifi", "dhcp", "status", "params", "absent_paths", "provisioning", "read_plan", "sim"
)  # fmt: skip
# each JSON column's shape and whether it holds null (DeviceRecord's types)
_JSON_SHAPES = {
    "wifi": (dict, True), "dhcp": (dict, True), "status": (dict, False),
    "params": (dict, False), "absent_paths": (list, False), "provisioning": (dict, False),
    "read_plan": (dict, True), "sim": (dict, True),
}  # fmt: skip
_JSON_COLUMNS = tuple(
    (DEVICE_FIELDS.index(name), name, *_JSON_SHAPES[name]) for name in _JSON_FIELDS
)
_DEVICE_ID = DEVICE_FIELDS.index("id")


_ABSENT_PATHS = DEVICE_FIELDS.index("absent_paths")
# A creation time that is damaged reads as the last change's: not the creation, but a time
# the record existed at, which keeps "the oldest" (binding by MAC) near the truth.
DEVICE_SCALARS = scalar_columns(
    DeviceRecord, allowed={"state": get_args(DeviceState)}, fallbacks={"created": "updated"}
)
DEVICE_STATE = DEVICE_SCALARS.named("state")


def device_record(row: Sequence[Any]) -> DeviceRecord:
    values = list(row)
    device_id = values[_DEVICE_ID]
    for index, name, kind, nullable in _JSON_COLUMNS:
        values[index] = json_column(
            values[index], kind, table="devices", record_id=device_id, column=name,
            nullable=nullable,
        )  # fmt: skip
    paths = values[_ABSENT_PATHS]
    if not all(type(path) is str for path in paths):
        warn_damaged("devices", device_id, "absent_paths", "list of non-strings")
        values[_ABSENT_PATHS] = [path for path in paths if type(path) is str]
    scalar_values(values, DEVICE_SCALARS, table="devices", record_id=device_id)
    return DeviceRecord(*values)


def tree_column(text: Any, device_id: str) -> dict[str, list[Any]]:
    """A router's stored parameter tree (Store.device_params): one that is no JSON object
    reads as empty, as the other JSON columns do, so that its sessions go on and write
    the tree anew from what the router reports."""
    tree: dict[str, list[Any]] = json_column(
        text, dict, table="devices", record_id=device_id, column="params", nullable=False
    )
    return tree


def tree_paths(paths: Sequence[str]) -> list[str]:
    """The paths of a Store.device_values call, checked: a double quote would end the key
    of SQLite's JSON path early, and no CWMP parameter name holds one."""
    out = list(dict.fromkeys(paths))
    for path in out:
        if not isinstance(path, str) or '"' in path:
            raise ValueError(f"not a parameter path: {path!r}")
    return out


# -- operator writes ----------------------------------------------------------------------

# Fields that the CPE reports (or the session engine derives); an operator update keeps them.
_REPORTED = frozenset(
    {
        "oui",
        "product_class",
        "manufacturer",
        "model_name",
        "software_version",
        "hardware_version",
        "profile",
        "status",
        "public_ip",
        "last_inform",
        "periodic_interval",
        "params",
        "absent_paths",
        "connection_request_url",
        "provisioning",
        "cr_username",
        "cr_password",
        # written by the internet account calls only (create_internet_account)
        "internet_account",
        "read_plan",
        "sim",
        "reported_cr_username",
        "udp_connection_request_address",
    }
)
OPERATOR = [name for name in DEVICE_FIELDS if name not in _REPORTED | {"id", "created", "updated"}]
# What belongs to the router in the field rather than to the record: a new router (its
# serial number changed) starts with none of the old one's.
ROUTER_FIELDS = tuple(sorted(_REPORTED - {"internet_account"}))
INSERT_COLUMNS = [*DEVICE_FIELDS, "serial_key", "mac_key"]


def column_value(record: DeviceRecord, name: str) -> Any:
    if name == "serial_key":
        return serial_key(record.serial_number)
    if name == "mac_key":
        return mac_key(record.mac_address)
    value = getattr(record, name)
    if name in _JSON_FIELDS and value is not None:
        return dumps(value)
    return value


# -- customers, tokens, models, audit -----------------------------------------------------


class Table:
    """A table whose columns are exactly the fields of a record dataclass, in order. The
    statements that bind values are each backend's (their placeholders differ)."""

    def __init__(
        self,
        name: str,
        cls: type,
        json_fields: frozenset[str] = frozenset(),
        key: tuple[str, ...] = ("id",),
        allowed: Mapping[str, Collection[Any]] | None = None,
        fallbacks: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.cls = cls
        self.names = [f.name for f in fields(cls)]
        self.json_indexes = [i for i, n in enumerate(self.names) if n in json_fields]
        # the columns that name a record in a store_column_damaged warning, joined by "/"
        self.key_indexes = [self.names.index(n) for n in key]
        self.scalars = scalar_columns(cls, json_fields, allowed, fallbacks)
        # quoted: audit has columns named "before" and "after"
        self.columns = ", ".join(f'"{n}"' for n in self.names)
        self.select = f"SELECT {self.columns} FROM {name}"

    def values(self, record: Any) -> list[Any]:
        out = [getattr(record, n) for n in self.names]
        for i in self.json_indexes:
            if out[i] is not None:
                out[i] = dumps(out[i])
        return out

    def record(self, row: Sequence[Any]) -> Any:
        values = list(row)
        record_id = "/".join(str(values[i]) for i in self.key_indexes)
        for i in self.json_indexes:
            # every JSON column of these tables holds an object or null
            values[i] = json_column(
                values[i], dict, table=self.name, record_id=record_id, column=self.names[i],
                nullable=True,
            )  # fmt: skip
        scalar_values(values, self.scalars, table=self.name, record_id=record_id)
        return self.cls(*values)


CUSTOMERS = Table("customers", CustomerRecord)
TOKENS = Table("tokens", TokenRecord)
MODELS = Table("models", ModelRecord)
AUDIT = Table("audit", AuditRecord, frozenset({"before", "after"}))
AUDIT_RESOURCE_ID = AUDIT.names.index("resource_id")
AUDIT_AT = AUDIT.names.index("at")
AUDIT_AFTER = AUDIT.names.index("after")
INTERNET_ACCOUNTS = Table(
    "internet_accounts", InternetAccountRecord, frozenset({"confirm"}),
    allowed={"state": INTERNET_STATES}, fallbacks={"created": "updated"},
)  # fmt: skip
INTERNET_STATE = INTERNET_ACCOUNTS.scalars.named("state")


APN_ACCOUNTS = Table("apn_accounts", ApnAccountRecord, key=("key",))
APN_NETWORKS = Table("apn_networks", ApnNetworkRecord, key=("account", "key"))
# (a device starts when it is made, unless its client said otherwise)
APN_DEVICES = Table(
    "apn_devices", ApnDeviceRecord, frozenset({"metadata"}),
    fallbacks={"start_date": "created", "created": "updated"},
)  # fmt: skip
APN_OPERATIONS = Table("apn_operations", ApnOperationRecord)
#: the unique values of a network's active devices, as the client names them
APN_UNIQUE = (("CLI", "cli_key"), ("SIMNumber", "iccid"))


def apn_device(row: Sequence[Any]) -> ApnDeviceRecord:
    record: ApnDeviceRecord = APN_DEVICES.record(row)  # (enabled, lock_imei: bools there)
    return record


def audit_values(audit: AuditRecord | None) -> list[Any] | None:
    """The audit row, encoded in the caller (a value that is not JSON fails it at once and
    later changes to its dicts cannot leak in). An empty id gets a new one, ``at`` 0 the
    commit time, ``resource_id`` None the id of the record written (see write_audit)."""
    if audit is None:
        return None
    values = AUDIT.values(replace(audit, id=audit.id or new_id()))
    if not audit.at:
        values[AUDIT_AT] = None
    return values


def mac_change(record: DeviceRecord) -> MacChange:
    """What a write that does not say does with the MAC: what the record holds replaces the
    stored one (as the other operator fields do), unless it is the router's report."""
    if record.mac_from_router:
        return "keep"
    return "set" if record.mac_address else "remove"


def check_device(record: DeviceRecord) -> None:
    if not record.serial_number:
        raise ValueError("DeviceRecord.serial_number is empty")
    for name in _JSON_FIELDS:  # fail fast, in the caller, on values that are not JSON
        value = getattr(record, name)
        if value is not None:
            dumps(value)


def stamped_copy(record: Any) -> Any:
    """A copy of a new record with ``created`` (unless given) now and ``updated`` = created."""
    created = record.created or clock.now()
    return replace(record, created=created, updated=record.updated or created)
