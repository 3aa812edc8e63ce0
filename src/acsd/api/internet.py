"""``/internet/account``: Internet lines (seed 002 "Internet Account Confirm", plus create,
get and list).

An account is ORDERED for a customer, optionally naming the router the line ends at. The
provider's confirmation (ADMIN only: it comes from the billing system) sets the delivery
date and the line's addresses; the account is CONFIRMED, and ACTIVE from its startDate on.

When an account takes effect (at confirm when its startDate has passed, otherwise at the
startDate) its router gets a new revision, state PROVISIONING and a Connection Request; the
session that follows pushes the static WAN settings through the router's profile
(:mod:`acsd.provisioning.internet`). Future start dates are kept by :class:`Activator`, a
task of this application that sleeps until the next one is due (or a confirm wakes it).

A line that names no router, which no other line takes over, is ended by an ADMIN (``POST
.../end``). Every line that ends has an ``internet.end`` audit entry saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from acsd import clock
from acsd.api.answer import json_response, page_response
from acsd.api.auth import Caller
from acsd.api.body import no_body, parse_query, read_json, read_model
from acsd.api.context import CONTEXT, ApiContext, audit_record, caller, context, created
from acsd.api.devices import _poke as poke_device
from acsd.api.errors import ApiError, access_denied, not_found
from acsd.api.openapi import describe
from acsd.api.paging import IdPageQuery
from acsd.devices import reported_lan
from acsd.eventloop import stop_task
from acsd.hostaddr import is_host_address
from acsd.ids import is_id, normal_id
from acsd.log import get_logger, peer_text
from acsd.models import ForeignRef, IdFilter, Name, RecordRef
from acsd.rules import Stated, whole
from acsd.store.base import (
    ConflictError,
    DuplicateError,
    InternetAccountQuery,
    InternetAccountRecord,
    LaterLineError,
    StateError,
    StoreClosedError,
    log_store_failure,
)

log = get_logger("acsd.internet")

#: ENDED: replaced by a later line of the same router, a line naming no router whose
#: addresses the customer's line for a router took, or one an ADMIN ended (POST .../end);
#: its addresses are free again
State = Literal["ORDERED", "CONFIRMED", "ACTIVE", "ENDED"]
_PHONE = re.compile(r"^\+?[0-9]{3,20}\Z")
#: the subnet masks (as prefix lengths) of a line: a /31 (RFC 3021) has no network or
#: broadcast address; a /32 has no room for a gateway
WAN_PREFIXES = (1, 31)
#: of an additional range: /30 at most, the router takes the first host address and the
#: rest is the customer's; /20 at least, a range is checked against every other line's
#: addresses, and a mistyped 255.0.0.0 would take a whole /8 from everyone else
LAN_PREFIXES = (20, 30)


def _mask(prefixes: tuple[int, int]) -> Any:
    """A mask field as the document states it: the masks check_net takes, one by one."""
    low, high = prefixes
    masks = [str(ipaddress.IPv4Network(f"0.0.0.0/{n}").netmask) for n in range(low, high + 1)]
    return Annotated[str, Stated({"enum": masks})]


#: an address check_net takes as a host's (``_address``), as the document states it
_Host = Annotated[str, Stated({"format": "ipv4"})]
_HOST_TEXT = "an IPv4 address a host can have: not in 0.0.0.0/8, loopback, link-local, \
multicast or reserved"


# --- bodies and answers -------------------------------------------------------------------


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: RecordRef
    device: RecordRef | None = None
    name: Name


class Net(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Checked by check_net (the rules need the stored records and the router's LAN); the
    # document states the part a schema can: tests/test_api_body_rules.py holds the two
    # together.
    ipAddress: _Host = Field(
        description=f"Assigned IP address: {_HOST_TEXT}; not the network or broadcast "
        "address of its subnet"
    )
    subnet: _mask(WAN_PREFIXES) = Field(  # type: ignore[valid-type]
        description=f"Assigned subnet mask, e.g. 255.255.255.0: /{WAN_PREFIXES[0]} to "
        f"/{WAN_PREFIXES[1]}"
    )
    gateway: _Host = Field(
        description=f"Assigned default gateway: {_HOST_TEXT}; inside the subnet, not the "
        "line's own address nor the subnet's network or broadcast address"
    )
    lanNet: _Host | None = Field(
        None,
        description=f"First IP address of an additional range (with lanSubnet): {_HOST_TEXT}",
    )
    lanSubnet: _mask(LAN_PREFIXES) | None = Field(  # type: ignore[valid-type]
        None,
        description=f"Subnet mask of the additional range (with lanNet): /{LAN_PREFIXES[0]} "
        f"to /{LAN_PREFIXES[1]}",
    )
    failover: bool | None = Field(None, description="True if the line has 3G/4G failover")
    failoverNumber: Annotated[str, Stated({"pattern": whole(_PHONE)})] | None = Field(
        None,
        description="Phone number of the failover SIM: 3 to 20 digits, optionally after a +; "
        "required when failover is true",
    )


class AccountConfirm(BaseModel):
    """Seed 002's body. ``circuitId`` (the seed's example) is accepted for ``circuit``."""

    model_config = ConfigDict(extra="forbid")
    providerOrderId: ForeignRef | None = None
    providerName: ForeignRef | None = None
    startDate: str = Field(
        description="When the line goes live: a date (midnight UTC) or an RFC 3339 "
        "date-time (UTC if no zone)",
        examples=["2016-02-01T00:00:00Z"],
    )
    circuit: ForeignRef | None = Field(None, validation_alias=AliasChoices("circuit", "circuitId"))
    installTime: ForeignRef | None = None
    net: Net

    @field_validator("startDate")
    @classmethod
    def _date(cls, value: str) -> str:
        start_of(value)
        return value


class InternetAccount(BaseModel):
    """An account: what was ordered, then every field of the confirm body."""

    id: str = Field(alias="_id")
    customer: str
    device: str | None
    name: str
    state: State
    providerOrderId: str | None = None
    providerName: str | None = None
    startDate: str | None = None
    circuit: str | None = None
    installTime: str | None = None
    net: Net | None = None


class Success(BaseModel):
    success: bool


class AccountListQuery(IdPageQuery):
    customer: IdFilter | None = None
    device: IdFilter | None = None
    state: State | None = None


class AccountList(BaseModel):
    items: list[InternetAccount]
    total: int
    limit: int
    offset: int


#: RFC 3339's date-time (T or a space between, Z or z, a fraction of a second) or a calendar
#: date alone: what clients send. Python's fromisoformat would also take week dates
#: ("2026-W01-1"), the basic format ("20260101T000000Z") and an hour alone, which no client
#: means to send and which the account would echo back as sent.
_START_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:\d{2})?)?",
    re.ASCII,
)
#: the widest offset any zone has (UTC+14, Kiribati; UTC-12)
_MOST_OFFSET = 14 * 3600


def _leap_second(text: str) -> datetime | None:
    """A leap second (RFC 3339 allows :60 in the last minute of a UTC day), which datetime
    cannot hold: the second after :59, the first of the next minute; None elsewhere."""
    try:
        last = datetime.fromisoformat(f"{text[:17]}59{text[19:]}".upper())
        utc = last if last.tzinfo is None else last.astimezone(UTC)
        if (utc.hour, utc.minute) != (23, 59):
            return None
        return last + timedelta(seconds=1)
    except (ValueError, OverflowError):  # no such day; the second after 9999-12-31
        return None


def start_of(text: str) -> float:
    """startDate -> POSIX seconds; a date alone is midnight UTC, no zone means UTC."""
    when = None
    if _START_DATE.fullmatch(text):
        # (RFC 3339's lower-case t and z, which fromisoformat does not take; it takes a
        # space for the T, and a fraction finer than microseconds, cut to them)
        with contextlib.suppress(ValueError):  # no such day, hour...
            when = datetime.fromisoformat(text.upper())
        if when is None and text[17:19] == "60":
            when = _leap_second(text)
    if when is None:
        raise ValueError(
            f"{peer_text(text)!r} is not a date (2016-02-01) or an RFC 3339 date-time "
            "(2016-02-01T00:00:00Z)"
        )
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    offset = when.utcoffset()
    if offset is not None and abs(offset.total_seconds()) > _MOST_OFFSET:
        raise ValueError(
            f"{peer_text(text)!r} has an offset from UTC no time zone has (at most ±14:00)"
        )
    return when.timestamp()


def _in_order(data: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    return {**{k: data[k] for k in order if k in data}, **data}


#: the seed's order (humans read these): PostgreSQL keeps the confirm body as jsonb,
#: whose objects come back with their keys ordered by length
_CONFIRM_ORDER = tuple(AccountConfirm.model_fields)
_NET_ORDER = tuple(Net.model_fields)


def _view(record: InternetAccountRecord, now: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "_id": record.id,
        "customer": record.customer,
        "device": record.device,
        "name": record.name,
        "state": record.effective_state(now),
    }
    confirm = dict(record.confirm or {})
    if isinstance(confirm.get("net"), dict):
        confirm["net"] = _in_order(confirm["net"], _NET_ORDER)
    out.update(_in_order(confirm, _CONFIRM_ORDER))
    return out


# --- the line's addresses -----------------------------------------------------------------


def _address(path: str, text: str) -> ipaddress.IPv4Address:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise ApiError(400, path, f"{peer_text(text)!r} is not an IPv4 address") from None
    if not is_host_address(address):
        raise ApiError(400, path, f"{address} is not an address a host can have")
    return address


def _prefix(path: str, text: str, *, longest: int, shortest: int = 1) -> int:
    """A dotted subnet mask -> its prefix length (``shortest`` to ``longest``)."""
    try:
        value = int(ipaddress.IPv4Address(text))
    except ValueError:
        raise ApiError(
            400, path, f"{peer_text(text)!r} is not a subnet mask such as 255.255.255.0"
        ) from None
    hosts = ~value & 0xFFFFFFFF
    if hosts & (hosts + 1):  # the one bits must come first, then only zeros
        raise ApiError(400, path, f"{text} is not a subnet mask: its one bits are not contiguous")
    prefix = 32 - hosts.bit_length()
    if not shortest <= prefix <= longest:
        raise ApiError(
            400, path, f"{text} (/{prefix}) is not a usable mask here (/{shortest} to /{longest})"
        )
    return prefix


def check_net(net: Net, status: dict[str, Any] | None = None) -> ipaddress.IPv4Address:
    """Refuse what a router could not use; returns the WAN address. ``status``: what the
    router reported, whose LAN neither the line nor the additional range may overlap."""
    ip = _address("net.ipAddress", net.ipAddress)
    low, high = WAN_PREFIXES
    prefix = _prefix("net.subnet", net.subnet, longest=high, shortest=low)
    wan = ipaddress.IPv4Network((ip, prefix), strict=False)
    ends = {wan.network_address, wan.broadcast_address} if wan.prefixlen <= 30 else set()
    if ip in ends:
        raise ApiError(400, "net.ipAddress", f"{ip} is the network or broadcast address of {wan}")
    gateway = _address("net.gateway", net.gateway)
    if gateway not in wan:
        raise ApiError(
            400, "net.gateway", f"{gateway} is not in {wan}, the network of the line's address"
        )
    if gateway == ip:
        raise ApiError(400, "net.gateway", f"{gateway} is the line's own address (net.ipAddress)")
    if gateway in ends:
        raise ApiError(
            400, "net.gateway", f"{gateway} is the network or broadcast address of {wan}"
        )
    if (net.lanNet is None) != (net.lanSubnet is None):
        missing = "net.lanSubnet" if net.lanSubnet is None else "net.lanNet"
        raise ApiError(400, missing, "net.lanNet and net.lanSubnet go together: give both or none")
    if net.lanNet is not None and net.lanSubnet is not None:
        first = _address("net.lanNet", net.lanNet)
        low, high = LAN_PREFIXES
        lan_prefix = _prefix("net.lanSubnet", net.lanSubnet, longest=high, shortest=low)
        lan = ipaddress.IPv4Network((first, lan_prefix), strict=False)
        if first != lan.network_address:
            raise ApiError(
                400, "net.lanNet",
                f"{first} is not the first address of its range: {lan} starts at "
                f"{lan.network_address}",
            )  # fmt: skip
        if lan.overlaps(wan):
            raise ApiError(400, "net.lanNet", f"{lan} overlaps the line's network {wan}")
    _, router_lan = reported_lan(status or {})
    if router_lan is not None:
        # The router would hold the same network on two sides (WAN and LAN), or its own
        # LAN address twice: its routing breaks.
        if wan.overlaps(router_lan):
            raise ApiError(400, "net.ipAddress", f"{wan} overlaps the router's LAN {router_lan}")
        if net.lanNet is not None and lan.overlaps(router_lan):
            raise ApiError(400, "net.lanNet", f"{lan} overlaps the router's LAN {router_lan}")
    if net.failover and not net.failoverNumber:
        raise ApiError(400, "net.failoverNumber", "required when net.failover is true")
    if net.failoverNumber is not None and not _PHONE.match(net.failoverNumber):
        raise ApiError(
            400, "net.failoverNumber", "a phone number: 3 to 20 digits, optionally after a +"
        )
    return ip


# --- handlers -----------------------------------------------------------------------------


async def _load(request: web.Request, who: Caller) -> InternetAccountRecord:
    account_id = normal_id(request.match_info["id"])
    record = (
        await context(request).store.get_internet_account(account_id) if is_id(account_id) else None
    )
    if record is None or not who.may_see(record.customer):  # (another tenant's: as devices')
        raise not_found("not_found", "Internet account not found")
    return record


@describe(
    "POST", "/internet/account", summary="Order an Internet account for a customer",
    body=AccountCreate, response=InternetAccount, status=201,
    errors=[(404, "customer"), (404, "device"), (409, "device", "Another customer's router"),
            (422, "state", "The device is being deleted")],
    roles="ADMIN; RESELLER of the customer (any depth); OWNER of the customer",
)  # fmt: skip
async def create_internet_account(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    if who.role == "MANAGER":
        raise access_denied()
    body = await read_model(request, AccountCreate)
    customer = await who.customer(ctx.store, body.customer)
    if body.device is not None:
        device = await ctx.store.get_device(body.device) if is_id(body.device) else None
        if device is None or device.id != body.device or not who.may_see(device.customer):
            raise not_found("device", "Network device not found")
        if device.customer is None:
            raise ApiError(
                409, "device",
                f"device {device.id} is a router that called in unclaimed: give it to the "
                "customer first (POST /network/device with its serialNumber)",
            )  # fmt: skip
        if device.customer != customer.id:
            raise ApiError(409, "device", f"device {device.id} belongs to another customer")
        if device.state == "DELETING":
            raise _being_deleted(device.id)
    now = clock.now()
    record = InternetAccountRecord(
        id="", customer=customer.id, name=body.name, device=body.device, created=now, updated=now
    )
    audit = audit_record(
        request, who, "internet.create", "internet_account", None, customer=customer.id,
        after={"customer": customer.id, "device": body.device, "name": body.name,
               "state": "ORDERED"},
    )  # fmt: skip
    try:
        stored = await ctx.store.create_internet_account(record, audit=audit)
    except StateError:
        # deleted meanwhile: the account would name a record that is gone
        raise _being_deleted(body.device or "") from None
    return created(_view(stored, now), f"/internet/account/{stored.id}")


def _being_deleted(device: str) -> ApiError:
    # The record goes at its router's next session and takes the account's link with it:
    # the line would be ordered for no router (as a PATCH of the device is refused).
    return ApiError(
        422, "state", f"device {device} is being deleted: order the line for another device"
    )


@describe(
    "POST", "/internet/account/{id}/confirm",
    summary="Confirm an ordered Internet account: delivery date and the line's addresses",
    description="Seed 002. The account is CONFIRMED, and ACTIVE from startDate on; then the "
    "router it names gets the static WAN settings.",
    body=AccountConfirm, response=Success,
    errors=[
        (404, "not_found", "Internet account not found"),
        (422, "state", "Account must be in ORDERED state"),
        (409, "net.ipAddress", "IP address is already in use by another Internet account"),
        (409, "net.lanNet", "The additional range holds or overlaps another account's addresses"),
        (409, "net.gateway", "The gateway is another account's address, or in its range"),
        (409, "startDate", "The device has a line taking effect at that time or later"),
    ],
    roles="ADMIN",
)  # fmt: skip
async def confirm_internet_account(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    who.require_admin()
    account = await _load(request, who)
    raw = await read_json(request)
    if isinstance(raw, dict) and "circuit" in raw and "circuitId" in raw:
        raise ApiError(400, "circuitId", "circuitId is another name for circuit: give one")
    if account.state != "ORDERED":
        # before the body's fields: confirmed is confirmed, whatever this body lacks
        raise ApiError(422, "state", "Account must be in ORDERED state")
    body = await read_model(request, AccountConfirm)
    # The LAN its router reported, which the line must not overlap.
    router = await ctx.store.get_device(account.device) if account.device else None
    ip = check_net(body.net, router.status if router else None)
    now = clock.now()
    start = start_of(body.startDate)
    confirm = body.model_dump(exclude_none=True)
    before = _view(account, now)
    after = {**before, "state": "ACTIVE" if start <= now else "CONFIRMED", **confirm}
    audit = audit_record(
        request, who, "internet.confirm", "internet_account", account.id,
        customer=account.customer, before=before, after=after,
    )  # fmt: skip
    try:
        stored, device = await ctx.store.confirm_internet_account(
            account.id,
            confirm=confirm,
            start_date=start,
            ip_address=str(ip),
            now=now,
            audit=audit,
        )
    except StateError:
        raise ApiError(422, "state", "Account must be in ORDERED state") from None
    except LaterLineError as exc:
        raise ApiError(409, "startDate", str(exc)) from None
    except DuplicateError as exc:
        raise ApiError(409, exc.field, str(exc)) from None
    except ConflictError:
        raise ApiError(
            409, "net.ipAddress", "IP address is already in use by another Internet account"
        ) from None
    log.info(
        "internet.confirmed", account=stored.id, device=stored.device, state=stored.state,
        start=body.startDate,
    )  # fmt: skip
    if device is not None:
        await poke_device(ctx, device)
    else:
        request.app[ACTIVATOR].wake()
    return json_response({"success": True})


@describe(
    "POST", "/internet/account/{id}/end",
    summary="End an Internet line no router holds: its addresses are free again",
    description="For a line whose router's record was deleted (or that was ordered without "
    "one) and that no other line takes over, or a router's line that has not started "
    "(ORDERED, or CONFIRMED for a date still ahead): it is ENDED and its address and "
    "additional range may be confirmed for another line. Ending an ENDED line again "
    "changes nothing (200). A router's line that has started is ended by the router's next "
    "line, or once the router's record is deleted.",
    response=Success,
    errors=[
        (404, "not_found", "Internet account not found"),
        (422, "state", "The line has started for its router (which holds it or gets it next)"),
    ],
    roles="ADMIN",
)  # fmt: skip
async def end_internet_account(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    who.require_admin()
    # It ends the line now: a body (an end date, say) that was ignored would end it
    # sooner than its sender meant. Nothing, or {}, is what it takes.
    await no_body(request, "end takes no body: it ends the line now")
    account = await _load(request, who)
    # the author of the store's internet.end entry (which says what the line was)
    author = audit_record(
        request, who, "internet.end", "internet_account", account.id, customer=account.customer
    )
    try:
        ended = await ctx.store.end_internet_account(account.id, now=clock.now(), audit=author)
    except KeyError:
        raise not_found("not_found", "Internet account not found") from None
    except StateError as exc:
        router = await ctx.store.get_device(account.device) if account.device else None
        # (what the router holds is not known here: it has the line, or gets it at its
        # next session; one that never called in has nothing of it yet)
        if router is not None and router.state == "DELETING":
            then = "its record is being deleted: once its next session releases it, end the line"
        elif router is not None and router.last_inform is None:
            then = (
                "the router has never called in: delete its record (it goes at once), then"
                " end the line"
            )
        else:
            then = "the router's next line ends it, or delete the router's record first"
        raise ApiError(
            422, "state", f"{exc}: it has started, and its router holds it or gets it at its"
            f" next session; {then}"
        ) from None  # fmt: skip
    if account.state != "ENDED":  # (ended before: nothing changed, nothing to say)
        log.info("internet.ended", account=ended.id, customer=ended.customer)
    return json_response({"success": True})


@describe(
    "GET", "/internet/account/{id}", summary="One Internet account", response=InternetAccount,
    errors=[(404, "not_found", "Internet account not found")],
    roles="any token within the account's customer",
)  # fmt: skip
async def get_internet_account(request: web.Request) -> web.Response:
    record = await _load(request, await caller(request))
    return json_response(_view(record, clock.now()))


@describe(
    "GET", "/internet/account", summary="Internet accounts the caller may see, filtered and paged",
    query=AccountListQuery, response=AccountList, roles="any token",
    errors=[(409, "<parameter>", "Value is not one of the permitted values")],
)  # fmt: skip
async def list_accounts(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    query = parse_query(request, AccountListQuery)
    if query.customer is not None:
        who.require(query.customer)
    now = clock.now()
    records, total = await ctx.store.query_internet_accounts(
        InternetAccountQuery(
            customers=who.tenancy,
            customer=query.customer,
            device=query.device,
            state=query.state,
            now=now,
            limit=query.limit,
            offset=query.offset,
            after=query.after,
        )
    )
    return page_response([_view(r, now) for r in records], total, query)


# --- start dates --------------------------------------------------------------------------


class Activator:
    """Makes confirmed accounts take effect on their start date, within the daemon.

    It sleeps until the earliest pending start date (at most ``longest_sleep``, so a clock
    step is noticed), or until a confirm with a future date wakes it; then the store turns
    due accounts ACTIVE and their routers PROVISIONING in one transaction, and each router
    is woken with a Connection Request (a router that cannot be reached picks it up at its
    next periodic Inform). Accounts that came due while acsd was down take effect at start.
    """

    longest_sleep = 60.0
    retry_after = 30.0

    def __init__(self) -> None:
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, ctx: ApiContext) -> None:
        while True:
            self._wake.clear()
            delay = self.longest_sleep
            try:
                for device in await ctx.store.activate_internet_accounts(clock.now()):
                    log.info("internet.active", device=device.id, revision=device.revision)
                    await poke_device(ctx, device)
                due = await ctx.store.next_internet_start()
                if due is not None:
                    delay = min(self.longest_sleep, max(0.05, due - clock.now()))
            except StoreClosedError:
                return
            except Exception as exc:
                log_store_failure(log, "internet.activation_failed", exc)
                delay = self.retry_after
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)


ACTIVATOR = web.AppKey("acsd_internet_activator", Activator)


async def _activation(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[ACTIVATOR].run(app[CONTEXT]), name="acsd-internet-activator")
    yield
    await stop_task(task)


def setup(app: web.Application) -> None:
    app[ACTIVATOR] = Activator()
    app.cleanup_ctx.append(_activation)
    app.router.add_post("/internet/account", create_internet_account)
    app.router.add_get("/internet/account", list_accounts)
    app.router.add_get("/internet/account/{id}", get_internet_account)
    app.router.add_post("/internet/account/{id}/confirm", confirm_internet_account)
    app.router.add_post("/internet/account/{id}/end", end_internet_account)
