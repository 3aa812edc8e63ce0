"""The profile file format: what keys a profile may hold and what their values must look like.

Every table is closed (``extra="forbid"``), so a typo is an error at load, never a silently
ignored key. The abstract settings a profile can map are listed once, in :data:`SETTINGS`
and :data:`TABLES`; later issues add ``wan.*`` / ``apn.*`` there and nowhere else.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from acsd.models import REPORTED_STATUS_FIELDS, DeviceStatus

ROOTS: tuple[str, ...] = ("Device.", "InternetGatewayDevice.")

#: identity values acsd keeps about a CPE (not seed status), with their output types
IDENTITY_FIELDS: dict[str, str] = {
    "macAddress": "str",
    "periodicInterval": "int",
    "connectionRequestUrl": "str",
    # where a router behind NAT takes a UDP Connection Request (TR-069 Annex G)
    "udpConnectionRequestAddress": "str",
    "parameterKey": "str",
    "softwareVersion": "str",
    "hardwareVersion": "str",
    "modelName": "str",
    # The cellular modem and its SIM (APN devices, seed 003, are matched on the SIM); mcc/mnc
    # are the serving network's where a firmware reports it (else derived from the IMSI).
    "imei": "str",
    "imsi": "str",
    "iccid": "str",
    "msisdn": "str",
    "mcc": "str",
    "mnc": "str",
}

#: output type of each status field, taken from the seed model so the two cannot drift
STATUS_TYPES: dict[str, str] = {
    name: "int" if DeviceStatus.model_fields[name].annotation == (int | None) else "str"
    for name in REPORTED_STATUS_FIELDS
}


@dataclass(frozen=True, slots=True)
class Kind:
    """The abstract value of a setting or table field: "bool", "int", "str" or "mac" (a MAC
    address, which a table field may `format`); ``choices`` for enumerations."""

    value: Literal["bool", "int", "str", "mac"]
    choices: tuple[str, ...] = ()

    @property
    def canonical(self) -> tuple[str, ...] | None:
        """The abstract values a `map` may name (None: any)."""
        if self.value == "bool":
            return ("true", "false")
        return self.choices or None


BOOL = Kind("bool")
INT = Kind("int")
TEXT = Kind("str")
MAC = Kind("mac")
SECURITY = Kind("str", ("open", "wpa2-psk", "wpa3-sae"))

#: every abstract setting a profile may map, with its value kind (lease_time in MINUTES)
SETTINGS: dict[str, Kind] = {
    "wifi.2g.enable": BOOL,
    "wifi.2g.ssid": TEXT,
    "wifi.2g.password": TEXT,
    "wifi.2g.security": SECURITY,
    "wifi.5g.enable": BOOL,
    "wifi.5g.ssid": TEXT,
    "wifi.5g.password": TEXT,
    "wifi.5g.security": SECURITY,
    "wifi.6g.enable": BOOL,
    "wifi.6g.ssid": TEXT,
    "wifi.6g.password": TEXT,
    "wifi.6g.security": SECURITY,
    "wifi.bandsteering": BOOL,
    "dhcp.enable": BOOL,
    "dhcp.pool_start": TEXT,
    "dhcp.pool_end": TEXT,
    "dhcp.lease_time": INT,
    "dhcp.dns": TEXT,
    # What acsd sets on every CPE from its first session (TR-069 §3.2.2, cwmp-reference
    # App. A): per-device Connection Request credentials and the periodic Inform.
    "management.cr_username": TEXT,
    "management.cr_password": TEXT,
    # The shared password of [cwmp.auth], given to a router that authenticated with the
    # previous one (previous_password): a password rotation without a lockout
    "management.acs_password": TEXT,
    "management.periodic_enable": BOOL,
    "management.periodic_interval": INT,
    # With acsd's STUN server on (config [stun]): the router's STUN client, towards it, so
    # a router behind NAT takes UDP Connection Requests (TR-069 Annex G)
    "management.stun_enable": BOOL,
    "management.stun_server_address": TEXT,
    "management.stun_server_port": INT,
    "management.stun_keepalive": INT,
    # An internet account's line (seed 002), once its start date has come: the static WAN
    # address, the additional LAN range (a second address on the LAN side, the router's own
    # address in that range) and mobile failover with its SIM's number (vendor-only: no BBF
    # model standardises failover).
    "wan.static.enable": BOOL,
    "wan.static.ip": TEXT,
    "wan.static.mask": TEXT,
    "wan.static.gateway": TEXT,
    # the line's DNS servers, a comma list (the router's DHCP lease brought them before)
    "wan.static.dns": TEXT,
    "lan.extra.enable": BOOL,
    "lan.extra.ip": TEXT,
    "lan.extra.mask": TEXT,
    "wan.failover.enable": BOOL,
    "wan.failover.number": TEXT,
    # The APN name of the network the router's SIM belongs to (seed 003 APN devices).
    "apn.name": TEXT,
}


@dataclass(frozen=True, slots=True)
class TableKind:
    """A table of rows (AddObject/DeleteObject): its abstract fields and the one naming a row.

    Most tables take their rows from the device record (``Desired.tables``). A table with
    ``when`` holds one row made of settings instead: the row is wanted while the setting
    ``when`` is true (and removed when it is false), its fields taken from the settings
    ``row_from`` names. A profile maps such settings either as parameters at fixed paths
    (TR-098's WANIPConnection.1) or as this row (TR-181, where the static WAN address and
    default route are entries the ACS creates beside the ones DHCP made).
    """

    key: str
    fields: dict[str, Kind]
    when: str | None = None
    row_from: dict[str, str] | None = None
    #: the key's setting is a comma list: one row per item
    split: bool = False
    #: rows whose key is no IPv4 address are not acsd's (a static IPv6 DNS server)
    ipv4_keys: bool = False
    #: fields no single row makes sense without, besides the key (a reservation's
    #: address: a row of the MAC alone would reserve nothing)
    required: tuple[str, ...] = ()
    #: fields no two rows may share (two reservations of one address)
    unique: tuple[str, ...] = ()


_WAN_STATIC = "wan.static.enable"

#: every abstract table a profile may map
TABLES: dict[str, TableKind] = {
    "dhcp.reservations": TableKind(
        "mac", {"mac": MAC, "ip": TEXT, "enable": BOOL}, required=("ip",), unique=("ip",)
    ),
    # TR-181 IP.Interface.{i}.IPv4Address.{i}.: the static WAN address
    "wan.static.address": TableKind(
        "ip",
        {"ip": TEXT, "mask": TEXT, "enable": BOOL},
        when=_WAN_STATIC,
        row_from={"ip": "wan.static.ip", "mask": "wan.static.mask"},
        ipv4_keys=True,
    ),
    # TR-181 Routing.Router.{i}.IPv4Forwarding.{i}.: the static default route
    "wan.static.route": TableKind(
        "gateway",
        {"gateway": TEXT, "enable": BOOL, "interface": TEXT, "dest": TEXT, "dest_mask": TEXT},
        when=_WAN_STATIC,
        row_from={"gateway": "wan.static.gateway"},
        ipv4_keys=True,
    ),
    # TR-181 DNS.Client.Server.{i}.: the line's DNS servers, one row each
    "wan.static.dns_servers": TableKind(
        "server",
        {"server": TEXT, "enable": BOOL, "interface": TEXT},
        when=_WAN_STATIC,
        row_from={"server": "wan.static.dns"},
        split=True,
        ipv4_keys=True,
    ),
}

#: `match` keys -> the CpeIdentity attribute each one tests
MATCH_KEYS: dict[str, str] = {
    "oui": "oui",
    "productClass": "product_class",
    "manufacturer": "manufacturer",
    "modelName": "model_name",
    "hardwareVersion": "hardware_version",
    "softwareVersion": "software_version",
}

XSD_TYPES: tuple[str, ...] = (
    "xsd:string",
    "xsd:boolean",
    "xsd:int",
    "xsd:unsignedInt",
    "xsd:long",
    "xsd:unsignedLong",
    "xsd:dateTime",
    "xsd:base64",
    "xsd:hexBinary",
    "xsd:decimal",
)
_KIND_TYPES = {"bool": "xsd:boolean", "int": "xsd:int", "str": "xsd:string", "mac": "xsd:string"}

# Leaves the BBF models mark secured (TR-181) or hidden (TR-098): they read back "" over GPV.
# Matched on the last segment, with a vendor prefix (X_<OUI or name>_) dropped, so vendor
# copies such as X_ACME_PreSharedKey count too.
_SECRET_NAMES = frozenset(
    {"KeyPassphrase", "PreSharedKey", "SAEPassphrase", "WEPKey", "PIN", "RadiusSecret",
     "SecondaryRadiusSecret", "Secret", "SecondarySecret", "SharedSecret", "EncryptionKey",
     "CertPrivateKey"}
)  # fmt: skip
_VENDOR_PREFIX = re.compile(r"^X_[A-Za-z0-9-]+?_")


def default_type(kind: Kind) -> str:
    """The wire type of a target that names none: what its abstract value is.

    The BBF model agrees for every standard path the built-in profiles use, and
    ``acsd profile check`` reports any path where it does not (the model is not needed at
    run time, so it cannot be the source here)."""
    return _KIND_TYPES[kind.value]


def is_secret_name(path: str) -> bool:
    leaf = _VENDOR_PREFIX.sub("", path.rstrip(".").rsplit(".", 1)[-1])
    return leaf in _SECRET_NAMES or leaf.endswith("Password")


def is_vendor_path(path: str) -> bool:
    """A path with an ``X_`` segment is vendor-specific: the BBF models cannot vouch for it."""
    return any(seg.startswith("X_") for seg in path.split("."))


class ProfileError(ValueError):
    """A profile file that cannot be used: names the file, the key and, when known, the line.

    ``problems`` are (key, message) pairs; ``places`` the (file, line) of each, which may be
    another file than ``file`` (a base profile, the other end of an ``extends`` cycle).
    """

    def __init__(
        self,
        file: str,
        problems: list[tuple[str, str]],
        line: int | None = None,
        *,
        places: list[tuple[str, int | None]] | None = None,
    ):
        self.file = file
        self.problems = problems
        self.places = places if places is not None else [(file, line)] * len(problems)
        if line is None:
            line = next((n for f, n in self.places if f == file and n is not None), None)
        self.line = line
        super().__init__("; ".join(self.messages()))

    def messages(self) -> list[str]:
        """One "FILE:LINE: key: message" per problem."""
        out = []
        for (file, line), (key, msg) in zip(self.places, self.problems, strict=True):
            where = f"{file}:{line}" if line is not None else file
            out.append(f"{where}: {key}: {msg}" if key else f"{where}: {msg}")
        return out


def unknown(key: str, known: Iterable[str], what: str) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {key!r}{hint}"


# --- status and identity selectors ------------------------------------------------------

_SEGMENT = r"[A-Za-z0-9_-]+"
_OBJECT_PATH = re.compile(rf"(?:(?:{_SEGMENT}|\*)\.)+")
_LEAF_PATH = re.compile(rf"(?:(?:{_SEGMENT}|\*)\.)*{_SEGMENT}")
PLAIN_PATH = re.compile(rf"(?:{_SEGMENT}\.)*{_SEGMENT}\.?")
_REF_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _as_text(value: Any) -> list[str]:
    """TOML scalars in conditions -> the CWMP strings they stand for."""
    if isinstance(value, bool):
        # xsd:boolean reads back as "true"/"false" or "1"/"0" depending on the firmware
        return ["true", "1"] if value else ["false", "0"]
    if isinstance(value, int | float):
        return [str(value)]
    return [value]


def _text_list(value: Any) -> Any:
    if isinstance(value, list):
        return [text for item in value for text in _as_text(item)]
    return _as_text(value)


TextList = Annotated[list[str], BeforeValidator(_text_list)]


def _condition_shorthand(value: Any) -> Any:
    # `Type = "DHCPv6"` and `Type = ["DHCPv6", "Static"]` mean `Type = { in = [...] }`
    return value if isinstance(value, dict) else {"in": value}


class ConditionSpec(_Spec):
    """A test on one parameter's value; missing and empty values both read as ""."""

    in_: TextList | None = Field(None, alias="in")
    not_in: TextList | None = None
    glob: TextList | None = None

    @model_validator(mode="after")
    def _one_test(self) -> ConditionSpec:
        given = [v for v in (self.in_, self.not_in, self.glob) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `in`, `not_in`, `glob`")
        return self


Condition = Annotated[ConditionSpec, BeforeValidator(_condition_shorthand)]


def _check_selector(text: str) -> str:
    rest = text
    if text.startswith("{"):
        close = text.find("}")
        inner = text[1:close] if close > 0 else ""
        if not (_REF_NAME.fullmatch(inner) or _LEAF_PATH.fullmatch(inner)):
            raise ValueError(f"{text!r}: `{{...}}` must hold a ref name or a parameter path")
        rest = text[close + 1 :]
        if rest and not rest.startswith("."):
            raise ValueError(f"{text!r}: `{{...}}` must be followed by `.` or end the path")
        rest = rest[1:]
        if not rest:
            return text
    if rest.endswith("*"):
        raise ValueError(f"{text!r}: `*` stands for instance numbers; end the object path with `.`")
    if not (_LEAF_PATH.fullmatch(rest) or _OBJECT_PATH.fullmatch(rest)):
        raise ValueError(
            f"{text!r} is not a path (segments of letters, digits, `_`, `-`, or `*`; "
            "`{...}` only first; a trailing `.` selects objects)"
        )
    return text


def _check_when(text: str) -> str:
    if _check_selector(text).endswith("."):
        raise ValueError(f"{text!r}: `when` tests a parameter, not an object")
    return text


def _check_fetch(text: str) -> str:
    if not PLAIN_PATH.fullmatch(text):
        raise ValueError(f"{text!r}: fetch names are plain parameter or object paths")
    return text


def _check_relative(text: str) -> str:
    if not PLAIN_PATH.fullmatch(text) or text.endswith("."):
        raise ValueError(f"{text!r}: a `where` key names a parameter of the matched object")
    return text


def _check_status_name(text: str) -> str:
    if text not in STATUS_TYPES:
        raise ValueError(unknown(text, STATUS_TYPES, "status field"))
    return text


def _check_ref_name(text: str) -> str:
    if not _REF_NAME.fullmatch(text):
        raise ValueError(f"ref name {text!r}: letters, digits and `_` only")
    return text


SelectorText = Annotated[str, AfterValidator(_check_selector)]
WhenPath = Annotated[str, AfterValidator(_check_when)]
FetchName = Annotated[str, AfterValidator(_check_fetch)]
RelativeName = Annotated[str, AfterValidator(_check_relative)]
StatusName = Annotated[str, AfterValidator(_check_status_name)]
RefName = Annotated[str, AfterValidator(_check_ref_name)]


class ScaleSpec(_Spec):
    """Linear map of [min, max] onto 0..100, clamped (e.g. RSRP -140..-44 dBm)."""

    min: float = Field(allow_inf_nan=False)
    max: float = Field(allow_inf_nan=False)

    @model_validator(mode="after")
    def _range(self) -> ScaleSpec:
        if self.min == self.max:
            raise ValueError("`min` and `max` must differ")
        return self


class SelectionSpec(_Spec):
    """Which values to collect: ordered candidate paths, filtered and split."""

    paths: list[SelectorText] = Field(min_length=1)
    where: dict[RelativeName, Condition] = {}
    when: dict[WhenPath, Condition] = {}
    ignore: TextList = []
    split: str | None = None
    family: Literal["ipv4", "ipv6", "ipv6-global"] | None = None
    pick: StrictInt | None = Field(None, ge=0)

    @field_validator("split")
    @classmethod
    def _split(cls, value: str | None) -> str | None:
        if value is not None and (not value or value.isalnum()):
            raise ValueError('`split` lists separator characters, e.g. ","')
        return value


class FieldRuleSpec(SelectionSpec):
    """A selection plus how its value becomes the field's value."""

    map: dict[str, str] | None = None
    default: str | None = None
    scale: ScaleSpec | None = None
    # (finite: inf or nan passed every check, and every session of a matching router
    # failed converting it)
    multiply: float | None = Field(None, allow_inf_nan=False)
    type: Literal["str", "int"] | None = None

    @model_validator(mode="after")
    def _conversions(self) -> FieldRuleSpec:
        if self.default is not None and self.map is None:
            raise ValueError("`default` is the value for unmapped input: it needs `map`")
        if (self.scale or self.multiply is not None) and self.type == "str":
            raise ValueError('`scale`/`multiply` produce numbers: use type = "int"')
        return self

    @property
    def output_type(self) -> str:
        if self.type is not None:
            return self.type
        return "int" if self.scale or self.multiply is not None else "str"


def _one_or_many(value: Any) -> Any:
    # `[x]` (one entry) and `[[x]]` (several) both work
    return [value] if isinstance(value, dict) else value


Rules = Annotated[list[FieldRuleSpec], BeforeValidator(_one_or_many), Field(min_length=1)]
Selections = Annotated[list[SelectionSpec], BeforeValidator(_one_or_many), Field(min_length=1)]


class StatusSpec(_Spec):
    fetch: list[FetchName] = []
    fields: dict[StatusName, Rules] = {}


class IdentitySpec(_Spec):
    fetch: list[FetchName] = []
    macAddress: Rules | None = None
    periodicInterval: Rules | None = None
    connectionRequestUrl: Rules | None = None
    udpConnectionRequestAddress: Rules | None = None
    parameterKey: Rules | None = None
    softwareVersion: Rules | None = None
    hardwareVersion: Rules | None = None
    modelName: Rules | None = None
    imei: Rules | None = None
    imsi: Rules | None = None
    iccid: Rules | None = None
    msisdn: Rules | None = None
    mcc: Rules | None = None
    mnc: Rules | None = None

    def rules(self) -> Iterator[tuple[str, list[FieldRuleSpec]]]:
        for name in IDENTITY_FIELDS:
            rules = getattr(self, name)
            if rules is not None:
                yield name, rules


# --- match, settings, tables ----------------------------------------------------------------


def _one_glob_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _check_glob(text: str) -> str:
    if not text.strip():
        raise ValueError("an empty glob matches nothing; leave the key out to match anything")
    return text


Globs = Annotated[
    list[Annotated[str, AfterValidator(_check_glob)]],
    BeforeValidator(_one_glob_or_many),
    Field(min_length=1),
]


class MatchSpec(_Spec):
    """Globs (fnmatch, case-insensitive) on the CPE's identity; every key given must match.

    Base profiles leave it empty: their root alone selects them."""

    oui: Globs | None = None
    productClass: Globs | None = None
    manufacturer: Globs | None = None
    modelName: Globs | None = None
    hardwareVersion: Globs | None = None
    softwareVersion: Globs | None = None

    def given(self) -> dict[str, tuple[str, ...]]:
        return {k: tuple(getattr(self, k)) for k in MATCH_KEYS if getattr(self, k) is not None}

    @property
    def empty(self) -> bool:
        return not self.given()


def _check_leaf(text: str) -> str:
    if not PLAIN_PATH.fullmatch(text) or text.endswith("."):
        raise ValueError(f"{text!r}: a parameter path (no `*`, no trailing `.`)")
    return text


def _check_object(text: str) -> str:
    if not PLAIN_PATH.fullmatch(text) or not text.endswith("."):
        raise ValueError(f"{text!r}: an object path ending in `.`")
    if text.rstrip(".").rsplit(".", 1)[-1].isdigit():
        raise ValueError(f"{text!r}: the table itself, not one of its instances")
    return text


def _check_setting_key(text: str) -> str:
    if text not in SETTINGS:
        raise ValueError(unknown(text, SETTINGS, "setting"))
    return text


def _check_table_key(text: str) -> str:
    if text not in TABLES:
        raise ValueError(unknown(text, TABLES, "table"))
    return text


LeafPath = Annotated[str, AfterValidator(_check_leaf)]
ObjectPath = Annotated[str, AfterValidator(_check_object)]
SettingKey = Annotated[str, AfterValidator(_check_setting_key)]
TableKey = Annotated[str, AfterValidator(_check_table_key)]
XsdType = Literal[XSD_TYPES]  # type: ignore[valid-type]
Booleans = tuple[Annotated[str, Field(min_length=1)], Annotated[str, Field(min_length=1)]]


#: abstract settings that only work together: a static WAN address without the default
#: route that goes with it, or put on an interface the route does not use (the cellular
#: one, on a mobile router), cuts the router off. When the CPE lacks a parameter of such a
#: group, nothing of the group is sent (acsd.provisioning.plan).
WHOLE_GROUPS = ("wan.static.", "lan.extra.")


class TargetSpec(_Spec):
    """One parameter an abstract setting writes."""

    path: LeafPath
    type: XsdType | None = None
    map: dict[str, str] | None = None
    #: abstract value -> other wire values the CPE may hold that count as holding it (a
    #: router in WPA2/WPA3 transition mode serves WPA2-PSK: it is left so, not downgraded)
    also: dict[str, TextList] | None = None
    multiply: StrictInt | None = Field(None, ge=1)
    booleans: Booleans | None = None
    # strict: TOML has booleans, and a profile with secret = "yes" means a typo
    secret: StrictBool | None = None
    reboot: StrictBool = False
    #: the form of WPA password this parameter takes: a passphrase (8-63 characters) or
    #: the raw 64-hex-digit key; a password of the other form is not written here
    form: Literal["passphrase", "hex-key"] | None = None
    #: tests on other parameters of the CPE (read with the settings): written only where
    #: they pass (a 6 GHz SSID only where its radio is a 6 GHz one)
    when: dict[LeafPath, Condition] = {}
    #: the CPE's comma-separated list of the values this parameter takes (TR-181
    #: ModeEnabled's ModesSupported), read with the settings: a wire value it does not
    #: list is not written, the setting is listed as unsupported (a CPE without the list,
    #: or with it empty, is written to as any other)
    supported: LeafPath | None = None
    #: a CPE without this parameter lacks nothing the setting needs: the setting's other
    #: parameters are written and nothing is reported
    optional: StrictBool = False
    #: written only on a CPE that lacks every parameter of the setting listed before it
    #: (of the same `form`): the leaf other firmware of the model has instead (ZTE's V9
    #: passphrase at WLANConfiguration.{i}.KeyPassphrase, not PreSharedKey.1.)
    fallback: StrictBool = False
    #: the value replaces the first entry of the CPE's comma-separated list, the entries
    #: after it kept (a primary DNS server leaves the secondary as it is)
    list_head: StrictBool = False
    #: the most characters the parameter holds (TR-098's DNSServers: a list of 64): a
    #: `list_head` list that would be longer loses its last entries, the CPE's own, and
    #: the job says which (16 at least: the head, an address, always fits)
    max_length: StrictInt | None = Field(None, ge=16)
    #: the one wire value of this parameter, whatever the setting's value
    value: str | None = None
    #: settings (globs such as "dhcp.*") whenever one of which is written, this parameter
    #: is written too, with `value`, even when its own setting is not given (a switch that
    #: makes a CPE use the others)
    written_with: TextList = []


Targets = Annotated[list[TargetSpec], BeforeValidator(_one_or_many), Field(min_length=1)]


class FieldSpec(_Spec):
    """One abstract field of a table row: the parameter under each instance."""

    param: LeafPath
    type: XsdType | None = None
    format: Literal["mac-colon-upper", "mac-colon-lower"] | None = None
    booleans: Booleans | None = None
    #: the wire value of every row acsd keeps (e.g. the route's Interface): the profile's
    #: to say, not the record's
    value: str | None = None


def _name_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _key_list(value: Any) -> Any:
    """``unsupported`` is a list; one string is taken as a list of that one key (profiles
    written so load as they did before)."""
    return [value] if isinstance(value, str) else value


class TableObjectSpec(_Spec):
    object: ObjectPath
    key: str | None = None
    fields: dict[str, FieldSpec] = Field(min_length=1)
    #: leaf -> wire value (or values): the rows acsd keeps. Others (the address and route
    #: a DHCP client made) are the CPE's: never matched, changed or deleted.
    only: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")],
        Annotated[list[str], BeforeValidator(_name_list), Field(min_length=1)],
    ] = {}


#: a label of an APN name (letters, digits, '-' inside)
_APN_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"


class ProfileSpec(_Spec):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    #: given by base profiles; a profile that `extends` takes its base's
    root: Literal["Device.", "InternetGatewayDevice."] | None = None
    extends: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    match: MatchSpec = MatchSpec()
    #: inherited settings/tables (keys or globs such as "wifi.6g.*") this profile drops
    unsupported: Annotated[list[str], BeforeValidator(_key_list)] = []
    #: false: the CPE answers a partial path in GetParameterValues with the object alone
    #: (or fails on it) instead of the parameters below it; acsd lists them with
    #: GetParameterNames and reads them by name
    partial_paths: StrictBool = True  # ("no" or 0 is a typo, as elsewhere in the format)
    #: the APN name a router gets in place of the one acsd set for its SIM (``apn.name``)
    #: once the SIM's APN device is removed or disabled: the operator's public APN, or ""
    #: (the network gives the SIM its default APN); left out, the router keeps the name
    apn_fallback: str | None = Field(
        None, max_length=64, pattern=rf"^(?:{_APN_LABEL}(?:\.{_APN_LABEL})*)?$"
    )
    refs: dict[RefName, Selections] = {}
    status: StatusSpec = StatusSpec()
    identity: IdentitySpec = IdentitySpec()
    settings: dict[SettingKey, Targets] = {}
    tables: dict[TableKey, TableObjectSpec] = {}


# every key the format knows, for "did you mean" hints
KNOWN_KEYS = sorted(
    {
        field.alias or name
        for model in (
            ProfileSpec,
            StatusSpec,
            IdentitySpec,
            FieldRuleSpec,
            ConditionSpec,
            TargetSpec,
            FieldSpec,
            TableObjectSpec,
        )
        for name, field in model.model_fields.items()
    }
    | set(ScaleSpec.model_fields)
    | set(MatchSpec.model_fields)
)


def key_path(loc: tuple[Any, ...], raw: Any) -> str:
    """pydantic's error location -> the key as the file spells it (`a.b[1].c`)."""
    out = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            if isinstance(node, list):
                out += f"[{part}]"
                node = node[part] if part < len(node) else None
            # else: a single table (or glob) we wrapped into a list; the file has no index
            continue
        if part == "in_":
            part = "in"
        # "[key]" marks an error in a table's key, which the path already names
        if part == "[key]":
            continue
        node = node.get(part) if isinstance(node, dict) else None
        # keys that hold dots (paths in `when`, setting names) are quoted, as TOML writes them
        part = f'"{part}"' if "." in str(part) else str(part)
        out += f".{part}" if out else part
    return out
