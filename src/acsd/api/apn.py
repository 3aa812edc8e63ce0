"""``/v1``: the Passbridge-style APN device API (seed 003), in JSON and DataContract XML.

Routes (all under ``/v1``, a sub-application with its own error form):

- ``POST /accounts/{foreignaccountkey}/networks/{foreignkey}/devices/apns``: create an APN
  device; 202 with a StatusUrl. An unknown account is created from the body's Hints; an
  unknown network of the account is created with its first device.
- ``GET .../devices/apns`` (paged: ``PageSize``, ``ContinuationToken``, ``IncludeEnded``),
  ``GET .../devices/apns/{device}`` and ``DELETE .../devices/apns/{device}`` (sets EndDate);
  ``{device}`` is the device's id (``Meta.Id`` of every answer about one device) or its CLI.
- ``GET|PUT /accounts/{foreignaccountkey}/networks/{foreignkey}``: the network and its APN
  name (an acsd extension: ``{"APN": "..."}``), pushed to the routers of its SIMs.
- ``GET /operations/{id}``: what a StatusUrl reports.

Every answer, errors included, is the seed's ``PBPRReturnOf...`` wrapper, in the format the
request's Content-Type and Accept headers choose (JSON: application/json, text/json, enums
by number; XML: application/xml, text/xml, enums by name; see :mod:`acsd.api.apn_xml`).
Callers: ADMIN tokens, and tokens scoped to the URL's API account (``--apn-account``).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from aiohttp import web

from acsd import clock
from acsd.api.apn_wire import (
    ACTOR_STATUS,
    DEVICE,
    DUPLICATE,
    FIELD_CODES,
    FORBIDDEN,
    INVALID,
    MAX_BODY,
    NETWORK,
    NO_ACCOUNT,
    NO_DEVICE,
    NO_NETWORK,
    NO_OPERATION,
    OPERATION,
    OPERATION_ACTOR_STATUS,
    OPERATION_STATUS,
    OTHER_FIELD,
    UNKNOWN_FIELD,
    AccountHints,
    AccountNetwork,
    APNDevice,
    ApnError,
    PBPRReturnOfAccountNetwork,
    PBPRReturnOfAPNDevice,
    PBPRReturnOfArrayOfAPNDevice,
    PBPRReturnOfOperationStatus,
    answers,
    apn_errors,
    invalid,
    new_account_hints,
    read_document,
    reply,
    validated,
)
from acsd.api.auth import Caller
from acsd.api.context import CONTEXT, ApiContext, audit_record, caller, context
from acsd.api.devices import _poke as poke_router
from acsd.api.openapi import describe
from acsd.api.paths import forgive_paths
from acsd.ids import is_id, new_id, normal_id
from acsd.listen_socket import client_address
from acsd.log import get_logger, peer_text
from acsd.provisioning import apn as rules
from acsd.rules import key_problem
from acsd.simkeys import parse_cli
from acsd.store.base import (
    ApnAccountRecord,
    ApnDeviceRecord,
    ApnNetworkRecord,
    ApnOperationRecord,
    ConflictError,
    DuplicateError,
    log_store_failure,
)

log = get_logger("acsd.apn")

PREFIX = "/v1"
ROLES = "ADMIN; a token scoped to the API account (acsd token create --apn-account KEY)"

# --- who may call ----------------------------------------------------------------------------


def may_manage(who: Caller, account: str) -> bool:
    return who.is_admin or who.token.apn_account == account


def require(who: Caller, account: str) -> None:
    if not may_manage(who, account):
        raise ApnError(
            403, FORBIDDEN, f"this token may not manage API account {peer_text(account)!r}"
        )


def _keys(request: web.Request) -> tuple[str, str]:
    account = request.match_info["foreignaccountkey"]
    network = request.match_info["foreignkey"]
    # /v1/accounts/{foreignaccountkey}/networks/{foreignkey}: escapes that are no UTF-8
    # reach match_info as their own text ("x%ffy"), so that x%ffy and x%25ffy named one
    # network, under a key nobody typed
    # (rel_url: a request target in absolute form, http://host/v1/..., has its own parts)
    raw = request.rel_url.raw_path.split("/")
    for name, value, sent in (
        ("foreignaccountkey", account, raw[3]),
        ("foreignkey", network, raw[5]),
    ):
        try:
            unquote_to_bytes(sent).decode("utf-8")
        except UnicodeDecodeError:
            problem = "not UTF-8: percent-encode the UTF-8 bytes of the key"
        else:
            problem = key_problem(value)
        if problem is not None:
            raise ApnError(400, INVALID, f"{name}: {problem}", OTHER_FIELD)
    return account, network


# --- documents -------------------------------------------------------------------------------


def dotnet_date(ts: float | None) -> str | None:
    """POSIX seconds -> the seed's form, 2024-04-19T05:50:03.1147245+00:00."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0+00:00"


def hints_doc(account: ApnAccountRecord | None) -> dict[str, Any] | None:
    if account is None:
        return None
    return {
        "BillingCycleDay": account.billing_cycle_day,
        "EmailContact": account.email_contact,
        "TenantId": account.tenant_id,
    }


def device_doc(d: ApnDeviceRecord, account: ApnAccountRecord | None) -> dict[str, Any]:
    return {
        "CLI": d.cli,
        "SIMNumber": d.sim_number,
        "SOC": d.soc,
        "InternalSOC": d.internal_soc,
        "Description": d.description,
        "IPAddress": d.ip_address,
        "StartDate": dotnet_date(d.start_date),
        "EndDate": dotnet_date(d.end_date),
        "FriendlyName": d.friendly_name,
        "Hints": hints_doc(account),
        "ProvisioningMetaData": d.metadata,
        "Status": d.status,
        "Version": d.version,
        "ActorStatus": d.actor_status,
        "NetworkStatus": d.network_status,
        "Enabled": d.enabled,
        "LockIMEI": d.lock_imei,
        "IMEI": d.imei,
        "LastSync": dotnet_date(d.last_sync),
        "LastConnected_Start": dotnet_date(d.last_connected_start),
        "LastConnected_End": dotnet_date(d.last_connected_end),
        "LastConnected_MCC": d.last_connected_mcc,
        "LastConnected_MNC": d.last_connected_mnc,
    }


def device_meta(d: ApnDeviceRecord) -> dict[str, str]:
    meta = {"Id": d.id}
    if d.refused_imei:
        meta["RefusedIMEI"] = d.refused_imei
    if d.router:
        meta["Router"] = d.router
    return meta


def _audit_view(d: ApnDeviceRecord) -> dict[str, Any]:
    doc = device_doc(d, None)
    del doc["Hints"]
    return {"account": d.account, "network": d.network, **doc}


def _origin(request: web.Request) -> str:
    # The Host header is the client's to write: behind a proxy, or where that matters,
    # [api] public_url says where the API is.
    if public := context(request).public_url:
        return public
    host = request.headers.get("Host", "")  # none (HTTP/1.0): aiohttp drops the port
    if _HOST.fullmatch(host):
        try:
            return str(request.url.origin())
        except ValueError:  # a port that is no port ("x:abc")
            pass
    # The address the client reached: a URL that works, where the Host makes none (the
    # answer is sent after the write; it must not turn into a 500 for a stored device).
    address = request.transport.get_extra_info("sockname") if request.transport else None
    if not address:
        return ""  # (gone already: nobody reads the answer) a URL relative to the API
    # an IPv6 literal in brackets, its zone ("%eth0") escaped as RFC 6874 writes it
    shown = client_address(address[0])  # (a dual-stack listener's IPv4 address as such)
    host = shown if ":" not in shown else f"[{shown.replace('%', '%25')}]"
    return f"{request.scheme}://{host}:{address[1]}"


#: a Host header that makes a URL as it is: a name or IPv4 address, or an IPv6 literal in
#: brackets, and a port (aiohttp takes anything, e.g. "<x>", "a/b", "[zz]", "x,y")
_HOST = re.compile(r"(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def device_url(request: web.Request, d: ApnDeviceRecord) -> str:
    account, network = quote(d.account, safe=""), quote(d.network, safe="")
    return f"{_origin(request)}{PREFIX}/accounts/{account}/networks/{network}/devices/apns/{d.id}"


def operation_url(request: web.Request, op: ApnOperationRecord) -> str:
    return f"{_origin(request)}{PREFIX}/operations/{op.id}"


def _operation(account: str, kind: str, resource_id: str | None) -> ApnOperationRecord:
    # acsd's work is done when the record is stored: the operation completes at once.
    now = clock.now()
    return ApnOperationRecord(new_id(), account, kind, resource_id, "complete", now, now)


# --- handlers --------------------------------------------------------------------------------

#: a key the API takes (acsd.rules.key_problem): 1 to 128 characters, not all blank, no
#: control character or '/', not '.' or '..'
_KEY = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "pattern": r"^(?!\.\.?$)(?=.*\S)[^/\x00-\x1f\x7f-\x9f]+$",
}
_PATHS = {
    "foreignaccountkey": ("The API account", _KEY),
    "foreignkey": ("The network of the account", _KEY),
    "device": "The APN device: its id (Meta.Id) or its CLI; 14 to 16 digits alone are an "
    "IMSI, other digits alone an MSISDN in international form (4512345678), and so are "
    "digits after a + (+4512345678)",
}


# Every answer, errors too, is the operation's wrapper in the format Accept chooses; the
# error lists below are all an operation has (ErrorCode, not acsd's error keys).
MEDIA_TYPES = ("application/json", "text/json", "application/xml", "text/xml")
_AUTH_ERRORS = [
    (401, "4010", "No bearer token, or one that is unknown, revoked or expired"),
    (403, "4030", "A token that may not manage the URL's API account"),
]
_KEY_ERRORS = [(400, "4001", "A foreignaccountkey or foreignkey that is no key (ErrorSubCode 99)")]
_BODY_ERRORS = [
    (400, "4000", "Malformed body (ErrorSubCode 1 JSON, 2 XML, 3 none)"),
    (400, "4001", "A member is invalid (ErrorSubCode names it; 98 an unknown member)"),
    (408, "4080", "The body did not arrive within the server's body timeout"),
    (413, "4130", "Request body beyond the server's limit"),
    (415, "4150", "A Content-Type, charset or Content-Encoding the API does not read"),
]
_ALWAYS_ERRORS = [
    (500, "5000", "Unexpected error; the description names the request id"),
    (
        503,
        "5030",
        "The database cannot take the write now: try again after Retry-After "
        "(Meta.Cause names the trouble: disk, read_only, busy, ...)",
    ),
]


def _errors(*specific: tuple[int, str, str], body: bool = False) -> list[tuple[int, str, str]]:
    return [*_AUTH_ERRORS, *_KEY_ERRORS, *(_BODY_ERRORS if body else ()), *specific,
            *_ALWAYS_ERRORS]  # fmt: skip


@describe(
    summary="Create an APN device on the network (seed 003)", body=APNDevice,
    response=PBPRReturnOfAPNDevice, status=202, roles=ROLES, path_params=_PATHS,
    description="JSON or DataContract XML, by Content-Type and Accept. Errors come in the "
    "same wrapper (ErrorCode, ErrorSubCode), not in acsd's error form.",
    error_body=PBPRReturnOfAPNDevice, media_types=MEDIA_TYPES,
    errors=_errors((404, "4041", "Unknown account, no Hints"),
                   (409, "4090", "CLI or SIMNumber in a network of the account"), body=True),
)  # fmt: skip
@answers(DEVICE)
async def create_apn_device(request: web.Request) -> web.Response:
    ctx, who, account_key, network_key = await _scope(request)
    body = validated(APNDevice, await read_document(request, DEVICE))
    account = await ctx.store.get_apn_account(account_key)
    new_account = None
    if account is None:
        new_account = _account_from_hints(account_key, body.Hints)
    cli_key, imsi, msisdn = parse_cli(body.CLI) or ("", None, None)
    now = clock.now()
    record = ApnDeviceRecord(
        id=new_id(), account=account_key, network=network_key, cli=body.CLI, cli_key=cli_key,
        sim_number=body.SIMNumber, soc=body.SOC, internal_soc=body.InternalSOC,
        description=body.Description, ip_address=body.IPAddress,
        friendly_name=body.FriendlyName, metadata=body.ProvisioningMetaData, start_date=now,
        enabled=True if body.Enabled is None else body.Enabled, lock_imei=bool(body.LockIMEI),
        imsi=imsi, iccid=rules.digits(body.SIMNumber), msisdn=msisdn,
    )  # fmt: skip
    operation = _operation(account_key, "create", record.id)
    audit = audit_record(
        request, who, "apn.device.create", "apn_device", record.id, after=_audit_view(record)
    )
    account_audit = None
    if new_account is not None:
        account_audit = audit_record(
            request, who, "apn.account.create", "apn_account", account_key,
            after={"key": account_key, **(hints_doc(new_account) or {})},
        )  # fmt: skip
    try:
        stored = await ctx.store.create_apn_device(
            record, account=new_account, operation=operation, audit=audit,
            account_audit=account_audit,
        )  # fmt: skip
    except DuplicateError as exc:
        # (the message names the network of the account that has it)
        raise ApnError(409, DUPLICATE, str(exc), FIELD_CODES.get(exc.field, OTHER_FIELD)) from None
    await _give_routers_jobs(ctx, stored)
    account = account or await ctx.store.get_apn_account(account_key)
    return reply(
        request, DEVICE, device_doc(stored, account), status=202, meta=device_meta(stored),
        status_url=operation_url(request, operation),
    )  # fmt: skip


async def _give_routers_jobs(ctx: ApiContext, device: ApnDeviceRecord) -> None:
    """A device made for a SIM already in a router of the account (one removed and made
    again, e.g. to turn it back on), or removed: the router lacks the network's APN name,
    or holds the name of a network the SIM left (the profile's ``apn_fallback`` replaces
    it), and takes the change now, as a job (PROVISIONING) and a Connection Request, not
    at its next periodic Inform."""
    try:
        for router in await rules.routers_lacking_apn(ctx.store, ctx.profiles, device):
            given = await ctx.store.give_apn_job(router.id, device.account)
            if given is not None:
                await poke_router(ctx, given)
    except Exception as exc:  # the device is stored: its router takes it at its next Inform
        log_store_failure(log, "apn.router_job_failed", exc, apn_device=device.id)


def _account_from_hints(key: str, hints: AccountHints | None) -> ApnAccountRecord:
    if hints is None:
        raise ApnError(
            404, NO_ACCOUNT,
            f"API account {peer_text(key)!r} does not exist; give Hints (BillingCycleDay, "
            "EmailContact) to create it with this device", 1,
        )  # fmt: skip
    hints = new_account_hints(hints)
    return ApnAccountRecord(
        key=key,
        billing_cycle_day=hints.BillingCycleDay,
        email_contact=hints.EmailContact,
        tenant_id=hints.TenantId,
        created=clock.now(),
    )


async def _scope(request: web.Request) -> tuple[ApiContext, Caller, str, str]:
    """The context, the caller and the URL's account and network keys, once the caller
    may act on that account."""
    ctx = context(request)
    who = await caller(request)
    account_key, network_key = _keys(request)
    require(who, account_key)
    return ctx, who, account_key, network_key


async def _account(ctx: ApiContext, key: str) -> ApnAccountRecord:
    account = await ctx.store.get_apn_account(key)
    if account is None:
        raise ApnError(404, NO_ACCOUNT, f"API account {peer_text(key)!r} does not exist")
    return account


async def _network(ctx: ApiContext, account: str, key: str) -> ApnNetworkRecord:
    network = await ctx.store.get_apn_network(account, key)
    if network is None:
        raise ApnError(
            404,
            NO_NETWORK,
            f"network {peer_text(key)!r} of API account {peer_text(account)!r} does not exist",
        )
    return network


async def _device(request: web.Request, ctx: ApiContext) -> ApnDeviceRecord:
    account, network = _keys(request)
    ref = request.match_info["device"]
    found = None
    if is_id(device_id := normal_id(ref)):  # ids in any case, as everywhere in the API
        found = await ctx.store.get_apn_device(device_id)
        if found is not None and (found.account, found.network) != (account, network):
            found = None
    cli = parse_cli(ref)
    if found is None:
        key = cli[0] if cli else _bare_msisdn(ref)
        if key is not None:
            found = await ctx.store.find_apn_device(account, network, key)
    if found is None:
        await _network(ctx, account, network)  # 4042 when it is the network that is not there
        said = f"no APN device {peer_text(ref)!r} in network {peer_text(network)!r}"
        if cli is not None and cli[1] is not None:
            # The seed's pattern reads 14 to 16 digits alone as an IMSI, never an MSISDN:
            # say so, rather than leave a client that meant a phone number guessing.
            said += (
                " (14 to 16 digits alone are an IMSI; write an MSISDN as (+CC)NUMBER or +NUMBER)"
            )
        raise ApnError(404, NO_DEVICE, said)
    return found


def _bare_msisdn(ref: str) -> str | None:
    """acsd's extension beyond the seed's pattern: other digits alone are an MSISDN in
    international form, as routers report them (``4512345678``; ``004512345678`` too), and
    so are digits after a ``+``, as E.164 writes it (``+4512345678``, or ``%2B...``: no
    IMSI starts with one, so any number of digits)."""
    number = ref.removeprefix("+")
    if not (number.isdigit() and number.isascii()):
        return None
    digits = rules.msisdn_key(number)
    return f"msisdn:{digits}" if digits else None


@describe(
    summary="One APN device", response=PBPRReturnOfAPNDevice, roles=ROLES, path_params=_PATHS,
    error_body=PBPRReturnOfAPNDevice, media_types=MEDIA_TYPES,
    errors=_errors((404, "4041/4042/4043", "Unknown account, network or device")),
)  # fmt: skip
@answers(DEVICE)
async def get_apn_device(request: web.Request) -> web.Response:
    ctx, _who, account_key, _ = await _scope(request)
    account = await _account(ctx, account_key)
    device = await _device(request, ctx)
    return reply(request, DEVICE, device_doc(device, account), meta=device_meta(device))


_LIST_PARAMS = {"continuationtoken": "ContinuationToken", "pagesize": "PageSize"}
_LIST_PARAMS["includeended"] = "IncludeEnded"


def _list_query(request: web.Request) -> tuple[str | None, int, bool]:
    given: dict[str, str] = {}
    for name in request.query:
        canonical = _LIST_PARAMS.get(name.lower())
        if canonical is None:
            raise ApnError(400, INVALID, f"{name}: unknown query parameter", UNKNOWN_FIELD)
        if canonical in given or len(request.query.getall(name)) > 1:
            raise invalid(canonical, "given more than once")
        given[canonical] = request.query[name]
    # Empty is left out (?PageSize=&ContinuationToken=, a client's query template with no
    # value for them): ASP.NET binds it so to an int? or bool?, and the token was so already.
    given = {name: value for name, value in given.items() if value.strip()}
    after = None
    if given.get("ContinuationToken"):
        after = _decode_token(given["ContinuationToken"])
    size = given.get("PageSize", "100")
    # (leading zeros are a number still; past 4,300 digits int() itself refuses)
    number = int(size.lstrip("0")[:5] or 0) if size.isascii() and size.isdigit() else 0
    if not 1 <= number <= 1000:
        raise invalid("PageSize", "must be a whole number from 1 to 1000")
    ended = given.get("IncludeEnded", "false").lower()
    if ended not in ("true", "false"):
        raise invalid("IncludeEnded", "must be true or false")
    return after, number, ended == "true"


def _encode_token(device_id: str) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(device_id)).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 12:
        raise invalid("ContinuationToken", "is not a token this API gave")
    return raw.hex()


@describe(
    summary="The network's APN devices, a page at a time", response=PBPRReturnOfArrayOfAPNDevice,
    roles=ROLES, path_params=_PATHS,
    description="Query: PageSize (1-1000, default 100), ContinuationToken (from the previous "
    "page; none on the last), IncludeEnded (devices removed by DELETE; default false).",
    error_body=PBPRReturnOfArrayOfAPNDevice, media_types=MEDIA_TYPES,
    errors=_errors((400, "4001", "A bad PageSize, ContinuationToken or IncludeEnded"),
                   (404, "4041/4042", "Unknown account or network")),
)  # fmt: skip
@answers(DEVICE, many=True)
async def list_apn_devices(request: web.Request) -> web.Response:
    ctx, _who, account_key, network_key = await _scope(request)
    after, size, ended = _list_query(request)
    account = await _account(ctx, account_key)
    await _network(ctx, account_key, network_key)
    if after is not None:
        # a token of another network's (or account's) list would page through this one
        # from a place that is not in it: refused as any token not given for this list
        last = await ctx.store.get_apn_device(after)
        if last is None or (last.account, last.network) != (account_key, network_key):
            raise invalid("ContinuationToken", "is not a token this list gave")
    found = await ctx.store.list_apn_devices(
        account_key, network_key, after=after, limit=size + 1, include_ended=ended
    )
    page = found[:size]
    token = _encode_token(page[-1].id) if len(found) > size else None
    return reply(
        request, DEVICE, [device_doc(d, account) for d in page], many=True, continuation=token
    )


@describe(
    summary="Remove an APN device (sets its EndDate)", response=PBPRReturnOfAPNDevice,
    status=202, roles=ROLES, path_params=_PATHS,
    description="202 with a StatusUrl; a device already removed answers 200 as it is. The "
    "router the SIM is in, if it holds the network's APN name, is given its profile's "
    "fallback APN (apn_fallback) as a job, and asked to connect.",
    error_body=PBPRReturnOfAPNDevice, media_types=MEDIA_TYPES,
    also=[(200, "Already removed: the device as it is, no StatusUrl")],
    errors=_errors((404, "4041/4042/4043", "Unknown account, network or device")),
)  # fmt: skip
@answers(DEVICE)
async def delete_apn_device(request: web.Request) -> web.Response:
    ctx, who, account_key, _ = await _scope(request)
    account = await _account(ctx, account_key)
    device = await _device(request, ctx)
    if device.end_date is not None:
        return reply(request, DEVICE, device_doc(device, account), meta=device_meta(device))
    operation = _operation(account_key, "delete", device.id)
    ended_here = False

    def end(current: ApnDeviceRecord) -> tuple[ApnDeviceRecord | None, Any]:
        nonlocal ended_here
        # Set on every run: the store may run this again after a rolled-back batch, and
        # only the run that commits tells whether this request ended the device.
        ended_here = current.end_date is None
        if not ended_here:
            return None, None
        now = clock.now()
        ended = replace(
            current, end_date=now, status=rules.DELETED, version=current.version + 1,
            network_status=rules.DISCONNECTED,
        )  # fmt: skip
        audit = audit_record(
            request, who, "apn.device.delete", "apn_device", current.id,
            before=_audit_view(current), after=_audit_view(ended),
        )  # fmt: skip
        return ended, audit

    stored = await ctx.store.update_apn_device(device.id, end, operation=operation)
    if stored is None:
        raise ApnError(404, NO_DEVICE, f"no APN device {peer_text(device.id)!r}")
    if not ended_here:
        # A DELETE running alongside ended it first: this one found it removed, as if it
        # had come second, and has no operation of its own to point a StatusUrl at.
        return reply(request, DEVICE, device_doc(stored, account), meta=device_meta(stored))
    # The SIM is off the network: its router, left dialing the network's private APN,
    # would be cut off. It takes its profile's fallback now, as a job and a CR.
    await _give_routers_jobs(ctx, stored)
    return reply(
        request, DEVICE, device_doc(stored, account), status=202, meta=device_meta(stored),
        status_url=operation_url(request, operation),
    )  # fmt: skip


def _network_doc(network: ApnNetworkRecord) -> dict[str, Any]:
    return {"ForeignKey": network.key, "APN": network.apn}


@describe(
    summary="A network of the account and its APN name (acsd)",
    response=PBPRReturnOfAccountNetwork, roles=ROLES, path_params=_PATHS,
    error_body=PBPRReturnOfAccountNetwork, media_types=MEDIA_TYPES,
    errors=_errors((404, "4041/4042", "Unknown account or network")),
)  # fmt: skip
@answers(NETWORK)
async def get_apn_network(request: web.Request) -> web.Response:
    ctx, _who, account_key, network_key = await _scope(request)
    await _account(ctx, account_key)
    return reply(request, NETWORK, _network_doc(await _network(ctx, account_key, network_key)))


@describe(
    summary="Create a network or set its APN name (acsd extension)", body=AccountNetwork,
    response=PBPRReturnOfAccountNetwork, roles=ROLES, path_params=_PATHS,
    description='Body {"APN": "internet.example"} (or AccountNetwork in XML); null stops the '
    "push. Routers bound to the account (their record's mvnoAccount) whose SIM belongs to a "
    "device of the network get the APN name at their next session; a new name is a job of "
    "each (state PROVISIONING until a session sets it) and acsd asks them to connect now.",
    error_body=PBPRReturnOfAccountNetwork, media_types=MEDIA_TYPES,
    errors=_errors((404, "4041", "Unknown account"), body=True),
)  # fmt: skip
@answers(NETWORK)
async def put_apn_network(request: web.Request) -> web.Response:
    ctx, who, account_key, network_key = await _scope(request)
    body = validated(AccountNetwork, await read_document(request, NETWORK))
    if body.ForeignKey is not None and body.ForeignKey != network_key:
        raise invalid(
            "ForeignKey", f"must be the URL's network {peer_text(network_key)!r} or left out"
        )
    await _account(ctx, account_key)
    before = await ctx.store.get_apn_network(account_key, network_key)
    audit = audit_record(
        request, who, "apn.network.update", "apn_network", f"{account_key}/{network_key}",
        before=_network_doc(before) if before else None,
        after={"ForeignKey": network_key, "APN": body.APN},
    )  # fmt: skip
    try:
        stored, routers = await ctx.store.put_apn_network(
            ApnNetworkRecord(account=account_key, key=network_key, apn=body.APN), audit=audit
        )
    except ConflictError:
        raise ApnError(
            404, NO_ACCOUNT, f"API account {peer_text(account_key)!r} does not exist"
        ) from None
    for router in routers:
        # each has the new name as a job (a new revision, PROVISIONING): asked to connect
        # now rather than at its next periodic Inform, as for a change of its own record
        await poke_router(ctx, router)
    return reply(request, NETWORK, _network_doc(stored))


@describe(
    summary="What became of an accepted command (a StatusUrl)",
    response=PBPRReturnOfOperationStatus, roles=ROLES,
    path_params={"id": "The operation, as in the StatusUrl"},
    error_body=PBPRReturnOfOperationStatus, media_types=MEDIA_TYPES,
    errors=[_AUTH_ERRORS[0], (404, "4044", "Unknown operation, or another account's"),
            *_ALWAYS_ERRORS],
)  # fmt: skip
@answers(OPERATION)
async def get_operation(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    op_id = normal_id(request.match_info["id"])
    op = await ctx.store.get_apn_operation(op_id) if is_id(op_id) else None
    # Another account's operation is "no operation" for this token: a 403 would name that
    # account, and the ids are predictable (a device's id + 1).
    if op is None or not may_manage(who, op.account):
        raise ApnError(404, NO_OPERATION, f"no operation {peer_text(op_id)!r}")
    device = await ctx.store.get_apn_device(op.resource_id) if op.resource_id else None
    data = {
        "Id": op.id,
        "Operation": op.kind,
        "Status": OPERATION_STATUS.values.get(op.state, 0),
        "ActorStatus": ACTOR_STATUS.values[OPERATION_ACTOR_STATUS.get(op.state, "pending")],
        "ResourceUrl": device_url(request, device) if device else None,
        "Created": dotnet_date(op.created),
        "Completed": dotnet_date(op.done),
    }
    return reply(request, OPERATION, data)


def setup(app: web.Application) -> None:
    sub = web.Application(client_max_size=MAX_BODY, middlewares=[apn_errors])
    sub[CONTEXT] = app[CONTEXT]
    base = "/accounts/{foreignaccountkey}/networks/{foreignkey}"
    sub.router.add_post(base + "/devices/apns", create_apn_device)
    sub.router.add_get(base + "/devices/apns", list_apn_devices)
    sub.router.add_get(base + "/devices/apns/{device}", get_apn_device)
    sub.router.add_delete(base + "/devices/apns/{device}", delete_apn_device)
    sub.router.add_get(base, get_apn_network)
    sub.router.add_put(base, put_apn_network)
    sub.router.add_get("/operations/{id}", get_operation)
    forgive_paths(sub)  # (a sub-application's own: see acsd.api.paths)
    app.add_subapp(PREFIX, sub)


__all__ = ["ApnError", "setup"]
