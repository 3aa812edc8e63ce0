"""The wire form of the APN API (seed 003): contracts, request models, the error catalogue,
content negotiation and the ``PBPRReturnOf...`` wrapper every answer comes in.

Formats: JSON (``application/json``, ``text/json``; enums by number) and DataContract XML
(``application/xml``, ``text/xml``; enums by name, :mod:`acsd.api.apn_xml`). The request's
Content-Type chooses how its body is read, Accept how the answer is written (for ``*/*``,
none, or none acsd speaks: the body's format, else JSON, as ASP.NET Web API does).

Errors: HTTP status = ``Code``; ``ErrorCode`` is the status times ten plus a detail
(4000 malformed body, 4001 invalid member, 4010 no or unknown token, 4030 another account,
4040 no such route, 4041 account, 4042 network, 4043 device, 4044 operation, 4050 method,
4090 duplicate, 4130 too large, 4150 media type, 5000 internal); ``ErrorSubCode`` says which
format (4000: 1 JSON, 2 XML, 3 no body) or member (4001/4090: :data:`FIELD_CODES`, 98 an
unknown member, 99 any other).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from acsd.api import apn_xml
from acsd.api.answer import dumps
from acsd.api.apn_values import as_dotnet_reads
from acsd.api.apn_xml import Contract, Enum
from acsd.api.body import BodyNotReceived, field_path, parse_json, receive_body, utf8_charset
from acsd.api.errors import (
    ApiError,
    come_back_later,
    media_type_hint,
    request_id,
    retry_after,
)
from acsd.api.openapi import DocumentedToo
from acsd.api.paths import spelled_request
from acsd.charsets import is_transform
from acsd.hostaddr import is_host_address
from acsd.inflate import InflateError, content_encoding, inflate
from acsd.log import get_logger, peer_text
from acsd.provisioning import apn as rules
from acsd.rules import WHITESPACE, BlankIsOmitted, Rule, any_case, none_of, whole
from acsd.simkeys import CLI_PATTERN, parse_cli

log = get_logger("acsd.api")

MAX_BODY = 1024 * 1024

# --- contracts (JSON member order as the seed writes it) -------------------------------------

STATUS = Enum("StatusValues", rules.STATUS_VALUES)
ACTOR_STATUS = Enum("ActorStatusValues", rules.ACTOR_STATUS_VALUES)
NETWORK_STATUS = Enum("NetworkStatusValues", rules.NETWORK_STATUS_VALUES)
OPERATION_STATUS = Enum("OperationStatusValues", {"pending": 0, "complete": 1, "failed": 2})
#: an operation's state -> its ActorStatusValues name (the seed's: stable, pending, stalled)
OPERATION_ACTOR_STATUS = {"complete": "stable", "pending": "pending", "failed": "stalled"}

HINTS = Contract(
    "AccountHints", (("BillingCycleDay", "int"), ("EmailContact", "str"), ("TenantId", "str"))
)
DEVICE = Contract(
    "APNDevice",
    (
        ("CLI", "str"), ("SIMNumber", "str"), ("SOC", "str"), ("InternalSOC", "str"),
        ("Description", "str"), ("IPAddress", "str"), ("StartDate", "date"),
        ("EndDate", "date"), ("FriendlyName", "str"), ("Hints", HINTS),
        ("ProvisioningMetaData", "dict"), ("Status", STATUS), ("Version", "int"),
        ("ActorStatus", ACTOR_STATUS), ("NetworkStatus", NETWORK_STATUS), ("Enabled", "bool"),
        ("LockIMEI", "bool"), ("IMEI", "str"), ("LastSync", "date"),
        ("LastConnected_Start", "date"), ("LastConnected_End", "date"),
        ("LastConnected_MCC", "str"), ("LastConnected_MNC", "str"),
    ),
)  # fmt: skip
NETWORK = Contract("AccountNetwork", (("ForeignKey", "str"), ("APN", "str")))
OPERATION = Contract(
    "OperationStatus",
    (
        ("Id", "str"), ("Operation", "str"), ("Status", OPERATION_STATUS),
        ("ActorStatus", ACTOR_STATUS), ("ResourceUrl", "str"), ("Created", "date"),
        ("Completed", "date"),
    ),
)  # fmt: skip

# --- validation ------------------------------------------------------------------------------

_ICCID = re.compile(r"[0-9]{18,22}")
#: a label of a DNS name, as TS 23.003 makes an APN of them: at most 63 octets each
_APN_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_APN = re.compile(rf"{_APN_LABEL}(?:\.{_APN_LABEL})*")
# and what XML cannot carry: the same record is read back in both JSON and XML
_CONTROL_CHARS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff"
_CONTROL = re.compile(f"[{_CONTROL_CHARS}]")
#: an e-mail address: one @, a dotted domain, no blanks or control characters
_EMAIL_CHAR = f"[^@{WHITESPACE}{_CONTROL_CHARS}]"
_EMAIL_LABEL = f"[^@.{WHITESPACE}{_CONTROL_CHARS}]"
_EMAIL = re.compile(f"{_EMAIL_CHAR}+@{_EMAIL_LABEL}+(?:\\.{_EMAIL_LABEL}+)+")
#: the longest EmailContact taken (RFC 5321's path limit)
_EMAIL_TEXT = 254
#: what the document says of printable text
_PRINTABLE = {
    "pattern": none_of(_CONTROL_CHARS),
    "description": "No control characters but tab and line breaks",
}


def printable(value: str) -> bool:
    return _CONTROL.search(value) is None


#: what a key may not hold: any control character (tabs and line breaks too)
def _printable(value: str) -> str:
    if not printable(value):
        raise ValueError("control characters are not allowed")
    return value


def _text(limit: int) -> Any:
    return Annotated[str, StringConstraints(max_length=limit), Rule(_printable, _PRINTABLE)]


def _cli(value: str) -> str:
    if parse_cli(value) is None:
        raise ValueError(
            "must be an MSISDN as (+CC)NUMBER, e.g. (+45)12345678, or an IMSI of 14 to 16 digits"
        )
    return value


def _iccid(value: str) -> str:
    if not _ICCID.fullmatch(value):
        raise ValueError("must be an ICCID: 18 to 22 digits")
    return value


def _day(value: int) -> int:
    if not 1 <= value <= 31:
        raise ValueError("must be a day of the month, 1 to 31")
    return value


def _email(value: str) -> str:
    if len(value) > _EMAIL_TEXT or not _EMAIL.fullmatch(value):
        raise ValueError("must be an e-mail address, e.g. billing@example.com")
    return value


_NO_SIM_ADDRESS = (
    r"^(?:(?:0|127|22[4-9]|2[3-5][0-9])\.|169\.254\.|::1?$|[fF][eE][89aAbB][0-9a-fA-F]:"
    r"|[fF][fF][0-9a-fA-F]{0,2}:)"
)


def _ip(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None
    # A scope id ("fe80::1%eth0") names an interface of the host that wrote it: nothing
    # the APN's core or a router could use for the device's address. JSON Schema's ipv6
    # format (RFC 4291's text form) has none either.
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise ValueError("must be an IPv4 or IPv6 address without a scope id (%zone)")
    # The address the APN's core gives the SIM: never "this network", loopback, a group,
    # link-local or reserved (the operator API refuses the same for a line's addresses).
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # (::ffff:127.0.0.1 is 127.0.0.1)
    if isinstance(address, ipaddress.IPv4Address):
        usable = is_host_address(address)
    else:
        usable = not (address.is_unspecified or address.is_loopback or address.is_multicast
                      or address.is_link_local)  # fmt: skip
    if not usable:
        raise ValueError(f"{value} is no address a device on an APN can have")
    return value


#: the JSON date .NET's DataContractJsonSerializer writes (and Json.NET reads by default):
#: milliseconds since 1970, an optional offset ("\/Date(1454284800000+0000)\/" in JSON
#: text, "/Date(...)/" once decoded)
_MS_DATE = re.compile(r"/Date\((-?[0-9]{1,15})([+-][0-9]{4})?\)/", re.ASCII)


def _date(value: str) -> str:
    if _MS_DATE.fullmatch(value):
        return value  # (a date the device's own fields replace: taken, and ignored)
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            "must be a date, e.g. 2024-04-19T05:50:03.1147245+00:00 (or .NET's "
            "/Date(1713505803114+0000)/)"
        ) from None
    return value


#: the longest APN name taken: what a router holds (TR-181 Device.Cellular.AccessPoint.{i}.
#: APN is string(64)), under 3GPP's 100 octets (TS 23.003). A longer one was taken and sent,
#: refused by the router (9007) or cut short to another APN, while the device read active.
_APN_NAME = 64


def _apn_name(value: str) -> str:
    if not _APN.fullmatch(value):
        raise ValueError(
            "must be an APN name: labels of letters, digits and '-' (1 to 63 each) joined by '.'"
        )
    if len(value) > _APN_NAME:
        raise ValueError(
            f"must be at most {_APN_NAME} characters: routers hold no longer APN name "
            "(TR-181 Device.Cellular.AccessPoint.{i}.APN)"
        )
    return value


def _metadata(value: dict[str, str | None]) -> dict[str, str | None]:
    if len(value) > _METADATA_ENTRIES:
        raise ValueError(f"at most {_METADATA_ENTRIES} entries")
    for key, item in value.items():
        if not key or len(key) > _METADATA_KEY or _CONTROL.search(key):
            raise ValueError(f"keys are 1 to {_METADATA_KEY} printable characters")
        if item is not None and (len(item) > _METADATA_VALUE or _CONTROL.search(item)):
            raise ValueError(f"values are up to {_METADATA_VALUE} printable characters")
    return value


def _enum(kind: Enum) -> Any:
    def check(value: int | str) -> int:
        for name, number in kind.values.items():
            if value == number or (isinstance(value, str) and value.lower() == name):
                return number
        raise ValueError(
            f"must be one of {', '.join(f'{n} ({v})' for n, v in kind.values.items())}"
        )

    names = "|".join(any_case(name) for name in kind.values)
    stated = {
        "anyOf": [
            {"type": "integer", "enum": list(kind.values.values())},
            {"type": "string", "pattern": f"^(?:{names})$"},
        ],
        "description": "The number, or the name in any case: "
        + ", ".join(f"{number} {name}" for name, number in kind.values.items()),
    }
    return Annotated[int | str, Rule(check, stated)]


DateText = Annotated[
    str,
    Rule(
        _date,
        {"description": "An ISO 8601 date or date-time, e.g. 2024-04-19T05:50:03.1147245+00:00"},
    ),
]
#: a date member the API reports (taken in a request, and ignored): empty or blank is left
#: out, as a client echoing a device it holds with no such date writes it ("", <EndDate/>)
ReportedDate = Annotated[DateText | None, BlankIsOmitted()]
#: ProvisioningMetaData's bounds (``_metadata``)
_METADATA_ENTRIES, _METADATA_KEY, _METADATA_VALUE = 64, 128, 1024


class AccountHints(BaseModel):
    """Seed 003 AccountHints: what creates the API account when it does not exist yet.
    Once it exists, a device's Hints are ignored and only their members and types are
    checked (a client may send the same Hints, or a .NET client's defaults, BillingCycleDay
    0 and no EmailContact, with every device)."""

    model_config = ConfigDict(extra="forbid")
    BillingCycleDay: int | None = None
    EmailContact: str | None = None
    TenantId: str | None = None


class NewAccountHints(BaseModel):
    """Hints that create the API account: a device's Hints must be these when its account
    does not exist yet (400 4001 naming the member otherwise)."""

    model_config = ConfigDict(extra="forbid")
    BillingCycleDay: Annotated[
        int, Rule(_day, {"minimum": 1, "maximum": 31, "description": "A day of the month"})
    ]
    EmailContact: Annotated[
        str,
        Rule(
            _email,
            {
                "maxLength": _EMAIL_TEXT,
                "pattern": whole(_EMAIL),
                "description": "An e-mail address, e.g. billing@example.com",
            },
        ),
    ]
    TenantId: _text(128) | None = None  # type: ignore[valid-type]


class _NewAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    Hints: NewAccountHints


def new_account_hints(hints: AccountHints) -> AccountHints:
    """``hints`` once they can create an account: BillingCycleDay 1-31 and an
    EmailContact required, a printable TenantId (400 naming the member, as any other)."""
    document = {"Hints": hints.model_dump(exclude_none=True)}
    for name in ("BillingCycleDay", "EmailContact"):
        if name not in document["Hints"]:
            raise invalid(f"Hints.{name}", "is required to create the account")
    validated(_NewAccount, document)
    return hints


class APNDevice(BaseModel):
    """Seed 003 APNDevice. In a request, the members the API reports (StartDate, EndDate,
    Status, Version, ActorStatus, NetworkStatus, IMEI, LastSync, LastConnected_*) are
    accepted, as the seed's sample sends them, and ignored."""

    model_config = ConfigDict(extra="forbid")
    CLI: Annotated[
        str,
        Rule(
            _cli,
            {
                "pattern": whole(CLI_PATTERN),
                "description": "An MSISDN as (+CC)NUMBER, e.g. (+45)12345678, or an IMSI of "
                "14 to 16 digits",
            },
        ),
    ]
    # (empty or blank is taken as left out, as a .NET client's empty string)
    SIMNumber: Annotated[
        Annotated[
            str,
            Rule(_iccid, {"pattern": whole(_ICCID), "description": "An ICCID: 18 to 22 digits"}),
        ]
        | None,
        BlankIsOmitted(),
    ] = None
    SOC: _text(64) | None = None  # type: ignore[valid-type]
    InternalSOC: _text(64) | None = None  # type: ignore[valid-type]
    Description: _text(1024) | None = None  # type: ignore[valid-type]
    IPAddress: Annotated[
        Annotated[
            str,
            Rule(
                _ip,
                {
                    "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}],
                    # (the usual spellings of what _ip refuses beyond the formats)
                    "not": {"pattern": _NO_SIM_ADDRESS},
                    "description": "An IPv4 or IPv6 address, without a scope id (%zone); "
                    "not unspecified, loopback, link-local, multicast or reserved",
                },
            ),
        ]
        | None,
        BlankIsOmitted(),
    ] = None
    StartDate: ReportedDate = None
    EndDate: ReportedDate = None
    FriendlyName: _text(256) | None = None  # type: ignore[valid-type]
    Hints: (
        Annotated[
            AccountHints,
            DocumentedToo(
                NewAccountHints,
                "NewAccountHints when the account does not exist yet (they create it), "
                "else AccountHints of any values (ignored)",
            ),
        ]
        | None
    ) = None
    ProvisioningMetaData: (
        Annotated[
            dict[str, str | None],
            Rule(
                _metadata,
                {
                    "maxProperties": _METADATA_ENTRIES,
                    "propertyNames": {
                        "minLength": 1,
                        "maxLength": _METADATA_KEY,
                        "pattern": _PRINTABLE["pattern"],
                    },
                    "additionalProperties": {
                        "anyOf": [
                            {"type": "string", "maxLength": _METADATA_VALUE, **_PRINTABLE},
                            {"type": "null"},
                        ]
                    },
                },
            ),
        ]
        | None
    ) = None
    Status: _enum(STATUS) | None = None  # type: ignore[valid-type]
    Version: int | None = None
    ActorStatus: _enum(ACTOR_STATUS) | None = None  # type: ignore[valid-type]
    NetworkStatus: _enum(NETWORK_STATUS) | None = None  # type: ignore[valid-type]
    Enabled: bool | None = None
    LockIMEI: bool | None = None
    IMEI: _text(256) | None = None  # type: ignore[valid-type]
    LastSync: ReportedDate = None
    LastConnected_Start: ReportedDate = None
    LastConnected_End: ReportedDate = None
    LastConnected_MCC: _text(256) | None = None  # type: ignore[valid-type]
    LastConnected_MNC: _text(256) | None = None  # type: ignore[valid-type]


class AccountNetwork(BaseModel):
    """A network of an API account and the APN name acsd pushes to its routers (acsd)."""

    model_config = ConfigDict(extra="forbid")
    ForeignKey: _text(128) | None = None  # type: ignore[valid-type]
    APN: (
        Annotated[
            str,
            Rule(
                _apn_name,
                {
                    "maxLength": _APN_NAME,
                    "pattern": whole(_APN),
                    "description": "An APN name: labels of letters, digits and '-' joined by '.'",
                },
            ),
        ]
        | None
    ) = None


class OperationStatus(BaseModel):
    Id: str
    Operation: str
    #: acsd's own resource (the seed has none): not ActorStatus, whose 1 is "pending"
    Status: int = Field(
        description="0 pending, 1 complete, 2 failed (JSON: the number; XML: the name)"
    )
    #: the same in the seed's terms, for a client that knows only its ActorStatusValues
    #: ("pending = an operation is long running") and read Status 1 as pending for ever
    ActorStatus: int = Field(
        description="The seed's ActorStatusValues: 0 stable (the command is done), 1 pending, "
        "10 stalled (it failed) (JSON: the number; XML: the name)"
    )
    ResourceUrl: str | None = None
    Created: str
    Completed: str | None = None


class _Wrapper(BaseModel):
    Success: bool
    Meta: dict[str, str] | None = None
    Code: int
    ErrorCode: int
    ErrorSubCode: int
    ErrorDescription: str | None = None
    StatusUrl: str | None = None
    ContinuationToken: str | None = None


class PBPRReturnOfAPNDevice(_Wrapper):
    Data: APNDevice | None = None


class PBPRReturnOfArrayOfAPNDevice(_Wrapper):
    Data: list[APNDevice] | None = None


class PBPRReturnOfAccountNetwork(_Wrapper):
    Data: AccountNetwork | None = None


class PBPRReturnOfOperationStatus(_Wrapper):
    Data: OperationStatus | None = None


# --- errors ----------------------------------------------------------------------------------

#: ErrorCode values; ErrorCode // 10 is the HTTP status
MALFORMED, INVALID = 4000, 4001
UNAUTHORIZED, FORBIDDEN = 4010, 4030
NO_ROUTE, NO_ACCOUNT, NO_NETWORK, NO_DEVICE, NO_OPERATION = 4040, 4041, 4042, 4043, 4044
NOT_ALLOWED, TIMEOUT, DUPLICATE, TOO_LARGE = 4050, 4080, 4090, 4130
MEDIA_TYPE, INTERNAL = 4150, 5000
UNAVAILABLE = 5030
#: ErrorSubCode of MALFORMED
BAD_JSON, BAD_XML, NO_BODY = 1, 2, 3
#: ErrorSubCode of INVALID (by member path) and of DUPLICATE
FIELD_CODES = {
    "CLI": 1, "SIMNumber": 2, "Hints.BillingCycleDay": 3, "Hints.EmailContact": 4,
    "Hints.TenantId": 5, "IPAddress": 6, "ProvisioningMetaData": 7, "APN": 8,
    "ContinuationToken": 9, "PageSize": 10,
}  # fmt: skip
UNKNOWN_FIELD, OTHER_FIELD = 98, 99


class ApnError(Exception):
    """An error answered in the wrapper: HTTP ``status``, ``code`` (ErrorCode), ``sub``."""

    def __init__(
        self,
        status: int,
        code: int,
        description: str,
        sub: int = 0,
        headers: dict[str, str] | None = None,
        meta: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}.{sub}: {description}")
        self.status, self.code, self.sub = status, code, sub
        self.description = description
        self.headers = dict(headers or {})
        #: the answer's Meta (a 503's Cause)
        self.meta = meta


def invalid(path: str, message: str) -> ApnError:
    sub = next((c for p, c in FIELD_CODES.items() if path == p or path.startswith(p + ".")), 0)
    return ApnError(400, INVALID, f"{path}: {message}", sub or OTHER_FIELD)


_GENERIC = {400: MALFORMED, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NO_ROUTE}
_GENERIC.update({405: NOT_ALLOWED, 413: TOO_LARGE, 415: MEDIA_TYPE})


def _from_api_error(exc: ApiError) -> ApnError:
    return ApnError(
        exc.status, _GENERIC.get(exc.status, exc.status * 10), exc.description, 0, exc.headers
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def apn_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer of ``/v1`` in the wrapper, errors of the router included."""
    try:
        return await handler(request)
    except ApnError as exc:
        error = exc
    except ApiError as exc:
        error = _from_api_error(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status >= 500:
            error = _internal(request)
        else:
            text = f"No resource at {request.path}" if exc.status == 404 else exc.reason
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            error = ApnError(
                exc.status, _GENERIC.get(exc.status, exc.status * 10), text, 0, headers
            )
    except Exception as exc:
        if (found := come_back_later(exc, request)) is not None:
            # the cause's key where the wrapper has room for a key and a value
            error = ApnError(
                503, UNAVAILABLE, found.text, headers=retry_after(found),
                meta={"Cause": found.cause},
            )  # fmt: skip
        else:
            error = _internal(request)
    contract, many = getattr(request.match_info.handler, "apn_answers", (None, False))
    if contract is None:
        # aiohttp's own 405 has no handler of ours: the wrapper of the resource the path
        # names, as its other methods answer (a client typed for the network's wrapper
        # fails to read the device's, and never sees ErrorCode 4050); a 404 the device's
        contract, many = await _answers_of_path(request)
    return reply(
        request, contract, None, many=many, status=error.status, meta=error.meta, error=error
    )


async def _answers_of_path(request: web.Request) -> tuple[Contract, bool]:
    """The wrapper the resource at ``request.path`` answers in: its GET's (a resource's
    reads are what a client is typed for: the device list's POST creates one device)."""
    # (a path the route forgives, /devices/apns/ or /Devices/APNs, as the route's own)
    probe = spelled_request(request)
    for resource in request.app.router.resources():
        _match, allowed = await resource.resolve(probe)  # type: ignore[arg-type]
        if allowed:
            routes = sorted(resource, key=lambda route: route.method != "GET")
            for route in routes:
                if (found := getattr(route.handler, "apn_answers", None)) is not None:
                    return found
    return DEVICE, False


def _internal(request: web.Request) -> ApnError:
    rid = request_id(request)
    log.exception("api_internal_error", request_id=rid, method=request.method, path=request.path)
    return ApnError(500, INTERNAL, f"Internal error; the server log has it under request id {rid}")


def answers(contract: Contract, many: bool = False) -> Callable[[Handler], Handler]:
    """Which wrapper a handler answers in (its errors too)."""

    def mark(handler: Handler) -> Handler:
        handler.apn_answers = (contract, many)  # type: ignore[attr-defined]
        return handler

    return mark


# --- formats ---------------------------------------------------------------------------------

JSON_TYPES = ("application/json", "text/json")
XML_TYPES = ("application/xml", "text/xml")


def _media_type(value: str | None) -> str | None:
    """The media type without parameters; ``application/*+json`` and ``*+xml`` (RFC 6839
    suffixes) read as the JSON and XML types, as the device API takes them."""
    if not value:
        return None
    media = value.split(";", 1)[0].strip().lower()
    if media.startswith("application/") and media.endswith("+json"):
        return "application/json"
    if media.startswith("application/") and media.endswith("+xml"):
        return "application/xml"
    return media


_XML_DECLARATION = re.compile(r"\A\ufeff?\s*<\?xml[^>]*\?>")


def _xml_in_utf8(raw: bytes, charset: str | None) -> bytes:
    """An XML body in UTF-8: read in the charset its Content-Type names, which wins over
    its declaration (RFC 7303): decoded, its declaration dropped, handed on as UTF-8."""
    if charset is None or utf8_charset(charset):
        return raw
    if is_transform(charset):
        # (punycode would take minutes of the event loop over a large body)
        text = f"the body cannot be read as {charset} (not a character set)"
        raise ApnError(400, MALFORMED, text, BAD_XML)
    try:
        text = raw.decode(charset)
    except LookupError:
        raise ApnError(415, MEDIA_TYPE, f"unknown charset {charset}") from None
    except UnicodeDecodeError as exc:
        text = f"the body is not {charset} (byte {exc.start})"
        raise ApnError(400, MALFORMED, text, BAD_XML) from None
    except UnicodeError as exc:  # not a UnicodeDecodeError: "undefined", idna, punycode
        text = f"the body cannot be read as {charset} ({exc})"
        raise ApnError(400, MALFORMED, text, BAD_XML) from None
    try:
        return _XML_DECLARATION.sub("", text, count=1).encode("utf-8")
    except UnicodeEncodeError as exc:  # unicode_escape and the like decode "\\ud800" to one
        text = f"the body holds a lone surrogate (character {exc.start}), which XML cannot carry"
        raise ApnError(400, MALFORMED, text, BAD_XML) from None


def answer_type(request: web.Request) -> str:
    """The media type of the answer: the best of Accept that acsd speaks; for */*, none
    given or none spoken, the request body's type, else JSON (as ASP.NET Web API does)."""
    sent = _media_type(request.headers.get("Content-Type"))
    default = sent if sent in JSON_TYPES + XML_TYPES else "application/json"
    ranges = []
    for n, part in enumerate(request.headers.get("Accept", "").split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media and q > 0:
            ranges.append((-q, n, media.lower()))
    for _, _, media in sorted(ranges):
        if media in JSON_TYPES + XML_TYPES:
            return media
        if media == "*/*":
            return default
        if media.endswith("/*"):
            major = media[:-1]
            if default.startswith(major):
                return default
            for known in JSON_TYPES + XML_TYPES:
                if known.startswith(major):
                    return known
    return default


def reply(
    request: web.Request,
    contract: Contract,
    data: Any,
    *,
    many: bool = False,
    status: int = 200,
    meta: dict[str, str] | None = None,
    status_url: str | None = None,
    continuation: str | None = None,
    error: ApnError | None = None,
) -> web.Response:
    if data is not None:
        data = [contract.answered(d) for d in data] if many else contract.answered(data)
    envelope = {
        "Success": error is None,
        "Meta": meta,
        "Code": status,
        "ErrorCode": error.code if error else 0,
        "Data": data,
        "ErrorSubCode": error.sub if error else 0,
        "ErrorDescription": error.description if error else None,
        "StatusUrl": status_url,
        "ContinuationToken": continuation,
    }
    media = answer_type(request)
    xml = media in XML_TYPES
    body = apn_xml.wrapper_xml(envelope, contract, many) if xml else dumps(envelope)
    headers = dict(error.headers) if error else {}
    if status_url:
        headers["Location"] = status_url
    headers.update({"Cache-Control": "no-store", "Vary": "Accept"})
    return web.Response(
        body=body, status=status, content_type=media, charset="utf-8", headers=headers
    )


async def read_document(request: web.Request, contract: Contract) -> dict[str, Any]:
    """The request body (JSON or DataContract XML) as a JSON-like document; JSON values
    converted to their member's type where Json.NET converts them (:mod:`.apn_values`)."""
    if not request.body_exists:
        raise ApnError(400, MALFORMED, "a request body is required", NO_BODY)
    media = _media_type(request.headers.get("Content-Type"))
    if media not in JSON_TYPES + XML_TYPES:
        got = request.headers.get("Content-Type")
        shown = peer_text(got or "none")
        raise ApnError(
            415, MEDIA_TYPE, f"Content-Type must be JSON or XML (application/json, text/json, "
            f"application/xml, text/xml); got {shown}{media_type_hint(got)}",
        )  # fmt: skip
    try:
        encoding = content_encoding(request.headers)
    except InflateError as exc:
        raise ApnError(415, MEDIA_TYPE, exc.reason) from None
    if media in JSON_TYPES and not utf8_charset(request.charset):  # before reading it
        raise ApnError(415, MEDIA_TYPE, f"JSON must be UTF-8 (got charset {request.charset})")
    limit_text = f"Request body exceeds the limit of {MAX_BODY} bytes"
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApnError(413, TOO_LARGE, limit_text)
    try:
        raw = inflate(await receive_body(request), encoding, MAX_BODY)
    except BodyNotReceived as exc:
        if exc.timeout is not None:
            raise ApnError(408, TIMEOUT, str(exc), 0, {"Connection": "close"}) from None
        raise ApnError(400, MALFORMED, str(exc), NO_BODY) from None
    except web.HTTPRequestEntityTooLarge:
        raise ApnError(413, TOO_LARGE, limit_text) from None
    except InflateError as exc:
        if exc.status == 413:
            raise ApnError(413, TOO_LARGE, limit_text) from None
        sub = BAD_XML if media in XML_TYPES else BAD_JSON
        raise ApnError(400, MALFORMED, exc.reason, sub) from None
    except RequestPayloadError as exc:
        sub = BAD_XML if media in XML_TYPES else BAD_JSON
        raise ApnError(400, MALFORMED, f"the body could not be read: {exc}", sub) from None
    if not raw.strip():
        raise ApnError(400, MALFORMED, "a request body is required", NO_BODY)
    if media in XML_TYPES:
        try:
            return apn_xml.parse(_xml_in_utf8(raw, request.charset), contract)
        except apn_xml.XmlBodyError as exc:
            raise ApnError(400, MALFORMED, f"malformed XML: {exc}", BAD_XML) from None
        except apn_xml.XmlFieldError as exc:
            raise invalid(exc.path, exc.message) from None
    try:
        data = parse_json(raw.decode("utf-8-sig"), number_text=True)
    except UnicodeDecodeError as exc:
        raise ApnError(400, MALFORMED, f"JSON is not UTF-8 (byte {exc.start})", BAD_JSON) from None
    except ApiError as exc:
        raise ApnError(400, MALFORMED, f"malformed JSON: {exc.description}", BAD_JSON) from None
    if not isinstance(data, dict):
        raise ApnError(
            400, MALFORMED, f"the body must be a JSON object ({contract.name})", BAD_JSON
        )
    # (after the names: the conversion goes by the member's type)
    return as_dotnet_reads(member_names(data, contract), contract)


def member_names(data: dict[str, Any], contract: Contract, at: str = "") -> dict[str, Any]:
    """``data`` with its member names spelt as the contract spells them. The seed's API
    is ASP.NET Web API, whose JSON reader (Json.NET) matches member names in any case:
    a client written against it may send ``cli`` or ``simNumber``. (XML is read as
    DataContractSerializer reads it, by exact name.) Two spellings of one member are
    refused, as one member given twice."""
    canonical = {name.lower(): (name, kind) for name, kind in contract.members}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name, kind = canonical.get(key.lower(), (key, None))
        if name in out:
            raise invalid(f"{at}{name}", "given more than once (member names match in any case)")
        if isinstance(kind, Contract) and isinstance(value, dict):
            value = member_names(value, kind, f"{at}{name}.")
        out[name] = value
    return out


_RANK = {"extra_forbidden": 0, "missing": 1}


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: dict[str, Any]) -> M:
    # strict: read_document already converted what the seed's service converts (apn_values)
    try:
        return model.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        errors = sorted(enumerate(exc.errors(include_url=False)), key=lambda e: (
            _RANK.get(e[1]["type"], 2), e[0]))  # fmt: skip
        error = errors[0][1]
        path = field_path(error["loc"], data, missing=error["type"] == "missing") or model.__name__
        if error["type"] == "extra_forbidden":
            raise ApnError(400, INVALID, f"{path}: unknown member", UNKNOWN_FIELD) from None
        message = str(error["msg"]).removeprefix("Value error, ")
        raise invalid(path, "is required" if error["type"] == "missing" else message) from None
