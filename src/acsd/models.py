"""The operator's view of a router: the seed-000 device object, defined once.

The API, the CLI and the OpenAPI description all use these models. Field names are the
contract of seed 000 (including its spelling ``ssSingnalStrength``). Properties holding no
value are omitted from output, as the seed allows.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from acsd.hostaddr import is_host_address
from acsd.ids import is_id, normal_id
from acsd.macs import MAC_SEPARATORS
from acsd.rules import (
    CONTROL,
    SPACE,
    TEXT_CONTROL,
    Rule,
    key_problem,
    none_of,
    serial_problem,
)

DeviceState = Literal["ACTIVE", "PROVISIONING", "DELETING"]


class AtField(ValueError):
    """A model's check of several fields that is about one of them: the 400 names it, not
    the model. ``at``: its paths within the model, the first the client sent is named
    (after a PATCH, the other field of a pair may be the stored one)."""

    def __init__(self, message: str, *at: tuple[int | str, ...]) -> None:
        super().__init__(message)
        self.at = at


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


_MAC = re.compile(r"^[0-9a-fA-F]{2}([-:.]?)(?:[0-9a-fA-F]{2}\1){4}[0-9a-fA-F]{2}\Z")
_MAC_DOTTED = re.compile(r"^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\Z")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}\Z")
# Control characters, surrogates and the two non-characters: nothing a person types in a
# network name, and most of them cannot travel in the XML of a SetParameterValues.
_SSID_UNSENDABLE_CHARS = CONTROL + r"\ud800-\udfff\ufffe\uffff"
_SSID_UNSENDABLE = re.compile(f"[{_SSID_UNSENDABLE_CHARS}]")


def _mac(value: str, info: ValidationInfo) -> str:
    if not (_MAC.match(value) or _MAC_DOTTED.match(value)):
        raise ValueError("not a MAC address (12 hex digits, optionally separated by : - or .)")
    if info.context and info.context.get("stored"):
        return value
    # A router's or a LAN client's own address: no router has, and no DHCP server leases
    # to, the all-zero address or a group one (the first octet odd: multicast, broadcast).
    number = int(MAC_SEPARATORS.sub("", value), 16)
    if number == 0:
        raise ValueError("00:00:00:00:00:00 is no device's MAC address")
    if number >> 40 & 1:
        raise ValueError(
            f"{value} is a multicast or broadcast MAC address (its first octet is odd), "
            "no device's own"
        )
    return value


def _ipv4(value: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError("not an IPv4 address") from None
    return value


#: validation context for records read back from the store: rules added to an input check
#: later must not make a stored record impossible to show
STORED = {"stored": True}


def _host(value: str, info: ValidationInfo) -> str:
    """An address a LAN host can have or use: not 0.0.0.0/8, loopback, link-local (which
    no DHCP server may lease, RFC 3927, and no router forwards to), multicast, the reserved
    240/4 or the limited broadcast."""
    if info.context and info.context.get("stored"):
        return value
    if not is_host_address(ipaddress.IPv4Address(value)):
        raise ValueError(
            f"{value} is no address a LAN host can have (0/8, 127/8, 169.254/16 or 224 and up)"
        )
    return value


def _ssid(value: str, info: ValidationInfo) -> str:
    if info.context and info.context.get("stored"):
        return value
    if _SSID_UNSENDABLE.search(value):
        raise ValueError("SSID must not contain control characters")
    # An SSID is 1-32 octets on the air (IEEE 802.11), not 32 characters.
    if not 1 <= len(value.encode()) <= 32:
        raise ValueError("SSID must be 1 to 32 bytes")
    return value


def is_raw_wpa_key(value: str) -> bool:
    """The 64-hex-digit form of a WPA password: the PSK itself, not a passphrase."""
    return _HEX64.match(value) is not None


def _passphrase(value: str, *, wpa3: bool = False) -> str:
    # Empty = an open network. WPA-PSK: 8-63 printable ASCII, or the 64-hex-digit raw key
    # (which WPA3 refuses with a reason of its own, _sae_passphrase: not offered here).
    if value == "" or is_raw_wpa_key(value):
        return value
    if not 8 <= len(value) <= 63 or not all(32 <= ord(c) <= 126 for c in value):
        if wpa3:
            raise ValueError("WPA3 passphrase must be 8-63 printable ASCII characters")
        raise ValueError("WPA passphrase must be 8-63 printable ASCII characters or 64 hex digits")
    return value


_CONTROL = re.compile(f"[{CONTROL}]")
#: what a one-line text must not hold: control characters and the Unicode line breaks
_ONE_LINE_NOT = CONTROL + r"\u2028\u2029"
_NOT_ONE_LINE = re.compile(f"[{_ONE_LINE_NOT}]")


def _serial(value: str) -> str:
    if problem := serial_problem(value):
        raise ValueError(problem)
    return value


def _reservation_id(value: str, info: ValidationInfo) -> str:
    """A reservation's id, as a router assigns it (an instance number, a short token)."""
    if info.context and info.context.get("stored"):
        return value
    if len(value) > 64 or _CONTROL.search(value):
        raise ValueError("a reservation id is one line of at most 64 characters")
    return value


def _one_line(value: str, info: ValidationInfo) -> str:
    """Names, references, searches: one line of text, no control characters (nor the line
    and paragraph separators U+2028 and U+2029, which end a line as a line feed does; a
    value stored before they were refused is shown as it is)."""
    stored = info.context and info.context.get("stored")
    if (_CONTROL if stored else _NOT_ONE_LINE).search(value):
        raise ValueError("must not hold control characters or line breaks")
    return value


#: control characters free text may not hold: all but tab and line breaks (an escape
#: sequence stored by one token would reach the terminal of whoever lists the record)
_TEXT_CONTROL = re.compile(f"[{TEXT_CONTROL}]")


def _free_text(value: str) -> str:
    if _TEXT_CONTROL.search(value):
        raise ValueError("must not hold control characters (tab and line breaks are fine)")
    return value


#: one character of a serial number's ends, and one of its middle
_SERIAL_END, _SERIAL_INNER = f"[^{SPACE}{CONTROL}]", f"[^{CONTROL}]"
_SERIAL_RULE = Rule(
    _serial,
    {
        "pattern": f"^{_SERIAL_END}(?:{_SERIAL_INNER}*{_SERIAL_END})?$",
        "description": "No control characters, no spaces at either end (a router's Inform "
        "has none: a record with them would never meet its router)",
    },
)
#: one line of text (names, references, searches)
_ONE_LINE = Rule(
    _one_line,
    {
        "pattern": none_of(_ONE_LINE_NOT),
        "description": "One line of text: no control characters (no tab, no line break, "
        "nor U+2028 / U+2029)",
    },
)
Serial = Annotated[str, Field(min_length=1, max_length=64), _SERIAL_RULE]
#: a name an operator gives a record: what a list shows on one line
Name = Annotated[str, Field(min_length=1, max_length=200), _ONE_LINE]
#: a reference to a record by its id, taken in any case
RecordRef = Annotated[str, AfterValidator(normal_id)]


def _an_id(value: str) -> str:
    if not is_id(value := normal_id(value)):
        raise ValueError("must be a record id: 24 hex digits")
    return value


#: a record id in a list's filter: a body's bad reference is the seed's 404 (no such
#: record), but a filter that can match nothing is a mistake worth telling the caller
IdFilter = Annotated[
    str, AfterValidator(_an_id), WithJsonSchema({"type": "string", "pattern": "^[0-9a-fA-F]{24}$"})
]
#: a device's name is optional, and "" clears it
DeviceName = Annotated[str, Field(max_length=200), _ONE_LINE]
#: characters a device's notes may hold: a page of text. Bounded so that a page of the
#: device list stays a few MB (1,000 devices of 1 MB notes, what the body limit let in,
#: made one answer of a GB, built in the daemon's memory, for any token that may list)
NOTES_MAX = 10_000
#: free text (a device's notes): on several lines
Notes = Annotated[
    str,
    Field(max_length=NOTES_MAX),
    Rule(
        _free_text,
        {
            "pattern": none_of(TEXT_CONTROL),
            "description": "Text on any number of lines: no control characters but tab "
            f"and line breaks; at most {NOTES_MAX:,} characters",
        },
    ),
]


#: a reference into another system (an order, a circuit): one line, no control characters
ForeignRef = Annotated[str, Field(max_length=128), _ONE_LINE]


def _account_key(value: str) -> str:
    if (problem := key_problem(value)) is not None:
        raise ValueError(f"no APN account's key: {problem} (null unlinks the router)")
    return value


_KEY_CHAR = r"[^\x00-\x1f\x7f-\x9f/]"
#: an APN account a router is linked to (mvnoAccount): a key such an account can have
#: (acsd.rules.key_problem); an empty one would link the router to no account at all
AccountRef = Annotated[
    str,
    Rule(
        _account_key,
        {
            "pattern": rf"^(?!\.{{1,2}}$){_KEY_CHAR}*[^\s\x00-\x1f\x7f-\x9f/]{_KEY_CHAR}*$",
            "maxLength": 128,
            "description": "An APN account's key: 1 to 128 printable characters, not all "
            "blank, no '/', not '.' or '..'",
        },
    ),
]
#: a search text: one line, as long as the longest field it may be found in
Search = Annotated[str, Field(max_length=4000), _ONE_LINE]
#: what the document tells clients (requests only: a stored value is shown as it is)
_MAC_SCHEMA = {
    "type": "string",
    "pattern": _MAC.pattern.replace(r"\Z", "$") + "|" + _MAC_DOTTED.pattern.replace(r"\Z", "$"),
    "description": "12 hex digits, optionally separated by : - or . (0200.5e10.0001); a "
    "device's own address: not all zeros, nor a multicast or broadcast one (first octet odd)",
}
Mac = Annotated[str, AfterValidator(_mac), WithJsonSchema(_MAC_SCHEMA, mode="validation")]
IPv4 = Annotated[str, AfterValidator(_ipv4)]
#: an IPv4 address a LAN host can have or use (DHCP pools, reservations, DNS)
HostIPv4 = Annotated[
    str,
    AfterValidator(_ipv4),
    AfterValidator(_host),
    WithJsonSchema(
        {
            "type": "string",
            "format": "ipv4",
            # the first octet 1-126 or 128-223 (the rest is format's to check); spelt
            # without a lookahead, which regex engines of some generators lack
            "pattern": r"^([1-9]|[1-9][0-9]|1[01][0-9]|12[0-689]|1[3-9][0-9]|2[01][0-9]|22[0-3])\.",
            "not": {"pattern": r"^169\.254\."},
            "description": "An IPv4 address a LAN host can have: not in 0.0.0.0/8, "
            "127.0.0.0/8, 169.254.0.0/16 (link-local), nor 224.0.0.0 and up (multicast, "
            "reserved, broadcast)",
        },
        mode="validation",
    ),
]
Ssid = Annotated[
    str,
    Rule(
        _ssid,
        {
            # maxLength counts characters: 32 of them is only a bound; the rule is bytes
            "minLength": 1,
            "maxLength": 32,
            "pattern": none_of(_SSID_UNSENDABLE_CHARS),
            "description": "1 to 32 bytes in UTF-8 (an SSID is 32 octets on the air, so "
            "fewer characters outside ASCII), no control characters",
        },
    ),
]
Passphrase = Annotated[
    str,
    AfterValidator(_passphrase),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(|[ -~]{8,63}|[0-9a-fA-F]{64})$",
            "description": "WPA passphrase: 8 to 63 printable ASCII characters, or the "
            "64-hex-digit key itself; empty for an open network",
        },
        mode="validation",
    ),
]


def _sae_passphrase(value: str, info: ValidationInfo) -> str:
    if info.context and info.context.get("stored"):
        return value  # (what passed the rules of its day is shown)
    if is_raw_wpa_key(value):
        raise ValueError(_SIX_GHZ_KEY)
    return _passphrase(value, wpa3=True)


_SIX_GHZ_KEY = "6 GHz takes a WPA3 passphrase (8 to 63 characters), not a 64-hex-digit key"
#: a 6 GHz password: WPA3 (SAE) alone, which takes a passphrase, never the raw key
SaePassphrase = Annotated[
    str,
    Rule(
        _sae_passphrase,
        {
            "pattern": r"^(|[ -~]{8,63})$",
            "description": "WPA3 passphrase: 8 to 63 printable ASCII characters (6 GHz is "
            "WPA3 alone, which takes no 64-hex-digit key); empty for a network without "
            "password, which on 6 GHz is Enhanced Open (OWE): 6 GHz allows no open network",
        },
    ),
]


def _active_unless_false(value: object) -> object:
    if value is None:
        return True  # a property holding no value (seed 000): the default
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


#: seed 000 types reservedClients[].enable as a String ("True if reservation is active")
#: and writes it as the boolean true in its example: both are taken, and null is active.
#: The description says so too: a client generated from it must be able to send the seed's
#: String (answers always carry the boolean).
ReservationEnable = Annotated[
    bool,
    BeforeValidator(_active_unless_false),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "boolean"},
                {"type": "string", "pattern": r"^\s*([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])\s*$"},
                {"type": "null"},
            ],
            "description": 'true, false, the text "true"/"false" (seed 000 types it as a '
            "String), or null (active)",
        },
        mode="validation",
    ),
]


def _integral(value: object) -> object:
    # JSON has one number type: 10.0 is 10 to most clients (Python's json writes a float
    # so); 10.5 stays what it is and is refused.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class ReservedClient(_Strict):
    mac: Mac
    ip: HostIPv4
    enable: ReservationEnable = True
    id: (
        Annotated[
            str,
            Rule(
                _reservation_id,
                {
                    "maxLength": 64,
                    "pattern": none_of(CONTROL),
                    "description": "As the router assigned it: one line of at most 64 characters",
                },
            ),
        ]
        | None
    ) = None


class Wifi(_Strict):
    """A router's wifi. 6 GHz is WPA3 (SAE) alone, which takes a passphrase: no raw
    64-hex-digit key for it, given in password6G or, with band steering and enabled6G,
    handed to it in password."""

    enabled: bool | None = None
    ssid: Ssid | None = None
    password: Passphrase | None = None
    enabled5G: bool | None = None
    ssid5G: Ssid | None = None
    password5G: Passphrase | None = None
    enabled6G: bool | None = None
    ssid6G: Ssid | None = None
    password6G: SaePassphrase | None = None
    bandsteering: bool | None = None

    @model_validator(mode="after")
    def _six_ghz_takes_a_passphrase(self, info: ValidationInfo) -> Wifi:
        if info.context and info.context.get("stored"):
            return self  # (what passed the rules of its day is shown)
        steered = self.bandsteering and self.enabled6G
        if steered and self.password and is_raw_wpa_key(self.password):
            # (band steering gives every band this password)
            raise AtField(f"{_SIX_GHZ_KEY}: band steering gives it this password", ("password",))
        return self


class Dhcp(_Strict):
    """The router's DHCP server. ipPoolStart is not after ipPoolEnd, and no MAC address
    nor IP address is reserved twice in reservedClients."""

    enable: bool | None = None
    ipPoolStart: HostIPv4 | None = None
    ipPoolEnd: HostIPv4 | None = None
    #: minutes (the router gets seconds)
    # The bounds before the validator: after it (or on the Optional) pydantic writes them
    # into the JSON schema as "ge"/"le", which no JSON Schema reader knows.
    leaseTime: Annotated[int, Field(ge=1, le=5256000), BeforeValidator(_integral)] | None = None
    primaryDnsServer: HostIPv4 | None = None
    #: more than any router's DHCP server holds (tens to a few hundred), and a bound on
    #: the work of one request
    reservedClients: list[ReservedClient] | None = Field(None, max_length=1024)

    @model_validator(mode="after")
    def _consistent(self) -> Dhcp:
        start, end = self.ipPoolStart, self.ipPoolEnd
        if start and end and ipaddress.IPv4Address(start) > ipaddress.IPv4Address(end):
            # both named: after a PATCH of one of them, the other may be the stored one
            raise AtField(
                f"ipPoolStart {start} is after ipPoolEnd {end}", ("ipPoolStart",), ("ipPoolEnd",)
            )
        seen_mac: set[str] = set()
        seen_ip: set[str] = set()
        for n, client in enumerate(self.reservedClients or []):
            key = re.sub(r"[-:.]", "", client.mac).lower()
            if key in seen_mac:
                raise AtField(f"MAC {client.mac} is reserved twice", ("reservedClients", n, "mac"))
            if client.ip in seen_ip:
                raise AtField(f"IP {client.ip} is reserved twice", ("reservedClients", n, "ip"))
            seen_mac.add(key)
            seen_ip.add(client.ip)
        return self


class DeviceStatus(_Strict):
    """What the router reported (plus ``online`` and ``lastComm``, derived by acsd)."""

    provisioned: bool | None = None
    lastComm: str | None = None
    online: bool | None = None
    lanIp: str | None = None
    subnetMask: str | None = None
    gateway: str | None = None
    wanIp: str | None = None
    publicIp: str | None = None
    upTime: int | None = None
    dns: str | None = None
    dns2: str | None = None
    ipv6: str | None = None
    ipv6Dns: str | None = None
    ipv6Dns2: str | None = None
    simStatus: str | None = None
    networkType: str | None = None
    signalStrength: int | None = None
    ssSingnalStrength: int | None = None
    uplinkRate: int | None = None
    downlinkRate: int | None = None
    connectionTime: int | None = None


#: The status fields a CPE reports (everything but the ones acsd derives itself).
REPORTED_STATUS_FIELDS: tuple[str, ...] = tuple(
    name
    for name in DeviceStatus.model_fields
    if name not in ("provisioned", "lastComm", "online", "publicIp")
)


class CpeInfo(_Strict):
    """acsd's extension to the seed object: who the router says it is."""

    oui: str | None = None
    productClass: str | None = None
    manufacturer: str | None = None
    modelName: str | None = None
    softwareVersion: str | None = None
    hardwareVersion: str | None = None
    profile: str | None = None
    connectionRequestUrl: str | None = None
    #: where the router takes a UDP Connection Request (behind NAT: its NAT's public
    #: mapping, learnt through acsd's STUN server)
    udpConnectionRequestAddress: str | None = None


class JobFault(_Strict):
    setting: str
    parameter: str | None = None
    code: int | None = None
    message: str = ""
    attempts: int = 0
    nextRetry: str | None = None


class JobUnsupported(_Strict):
    setting: str
    reason: str


class Job(_Strict):
    """acsd's extension: the provisioning job of the device's current revision. A change
    of what the router must hold (a create or PATCH with wifi or DHCP settings, a retry,
    `acsd device apply`) is a PENDING job of the new revision from the moment it is
    accepted (attempts 0, no updated) until the router's session takes it up and settles
    it: DONE, FAILED, or PENDING with faults and the next retry. No job: nothing was ever
    asked of the router (no operator settings), or it is being deleted."""

    revision: int = Field(description="The record revision the job is for.")
    state: Literal["PENDING", "DONE", "FAILED"]
    attempts: int = Field(0, description="Sessions that tried it (0: waiting for the router).")
    faults: list[JobFault] = Field(default_factory=list)
    unsupported: list[JobUnsupported] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    updated: str | None = Field(
        None,
        description="When a session last changed the job; absent while the job waits for "
        "the router's first session of it (the audit log has the change's time).",
    )


class DeviceInput(_Strict):
    """The body an operator sends to create or update a device (seed 000)."""

    name: DeviceName | None = None
    model: RecordRef | None = None
    customer: RecordRef | None = None
    macAddress: Mac | None = None
    serialNumber: Serial
    mvnoAccount: AccountRef | None = None
    notes: Notes | None = None
    wifi: Wifi | None = None
    dhcp: Dhcp | None = None
    #: acsd extension: put back values changed on the router by hand (default true)
    driftCheck: bool | None = None


class Device(_Strict):
    id: str = Field(alias="_id")
    state: DeviceState = "ACTIVE"
    name: str | None = None
    model: str | None = None
    modelType: str | None = None
    modelBrand: str | None = None
    modelDescription: str | None = None
    modelPicture: str | None = None
    customer: str | None = None
    macAddress: str | None = None
    serialNumber: str | None = None
    mvnoAccount: str | None = None
    jobs: int = 0
    notes: str | None = None
    wifi: Wifi | None = None
    dhcp: Dhcp | None = None
    status: DeviceStatus = Field(default_factory=DeviceStatus)
    cpe: CpeInfo | None = None
    job: Job | None = None
    driftCheck: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """The seed-000 object: aliases (``_id``), no null properties."""
        return self.model_dump(by_alias=True, exclude_none=True)
