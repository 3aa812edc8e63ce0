"""``/network/device``: seed 000's Network Device Create, plus get, list, update, delete."""

from __future__ import annotations

import asyncio
import copy
import random
import weakref
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, ClassVar, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator
from structlog.contextvars import bound_contextvars

from acsd import clock
from acsd.api.answer import json_response, page_response
from acsd.api.auth import Caller
from acsd.api.body import (
    no_body,
    parse_query,
    read_json,
    read_model,
    validate,
)
from acsd.api.context import ApiContext, audit_record, caller, context, created
from acsd.api.errors import ApiError, access_denied, field_error, not_found
from acsd.api.openapi import DocumentedAs, describe
from acsd.api.paging import IdPageQuery
from acsd.audit import device_view as audit_device_view
from acsd.cwmp.connreq import target_of
from acsd.device_view import seed_device
from acsd.devices import (
    DeviceInputError,
    ask_to_provision,
    check_lan,
    desired_changed,
    keep_reservation_ids,
    mac_owner,
)
from acsd.ids import is_id, normal_id
from acsd.log import get_logger, peer_text
from acsd.models import (
    AccountRef,
    Device,
    DeviceInput,
    DeviceName,
    Dhcp,
    IdFilter,
    Mac,
    Notes,
    RecordRef,
    Search,
    Serial,
    Wifi,
)
from acsd.provisioning import line_off
from acsd.provisioning.jobs import failed_at
from acsd.provisioning.status import is_online
from acsd.store.base import (
    ABSENT,
    ChangedError,
    ConflictError,
    DeviceQuery,
    DeviceRecord,
    MacChange,
    ModelRecord,
)

#: tries of a read-modify-write that keeps finding the device changed under it. Each try
#: lost is another request's write won, so N requests at once need at most N tries.
MAX_ATTEMPTS = 32

log = get_logger("acsd.api")


#: fields of the device object that acsd sets, which a client that edits what it read
#: and sends it back includes: told so, not "unknown field"
_SET_BY_ACSD = "read-only: acsd sets it (leave it out of the body)"
READ_ONLY_FIELDS = {
    name: _SET_BY_ACSD
    for name in (
        "_id", "state", "jobs", "job", "status", "cpe", "modelType", "modelBrand",
        "modelDescription", "modelPicture",
    )
}  # fmt: skip


class DeviceCreate(DeviceInput):
    """Seed 000 request body: a device always belongs to a customer and a model."""

    READ_ONLY: ClassVar[dict[str, str]] = READ_ONLY_FIELDS
    model: RecordRef  # type: ignore[assignment]
    customer: RecordRef  # type: ignore[assignment]


class DevicePatch(BaseModel):
    """Partial update; ``wifi`` and ``dhcp`` merge into what is stored (RFC 7386: a null
    removes a field), ``reservedClients`` is replaced as a whole."""

    model_config = ConfigDict(extra="forbid")
    READ_ONLY: ClassVar[dict[str, str]] = {
        **READ_ONLY_FIELDS,
        "customer": "not changed by PATCH: a device stays its customer's (leave it out)",
    }
    name: DeviceName | None = None
    notes: Notes | None = None
    mvnoAccount: AccountRef | None = None
    # Taken as they come (a null removes a stored field), then checked merged: the document
    # shows the models, whose every field is optional and nullable, as a client sends them.
    wifi: Annotated[dict[str, Any], DocumentedAs(Wifi)] | None = None
    dhcp: Annotated[dict[str, Any], DocumentedAs(Dhcp)] | None = None
    driftCheck: bool | None = None
    #: the router was replaced: the record (settings, customer, internet line) moves to
    #: the new one; what the old one reported is dropped
    #: left out (None) or a serial number: not null, which the document must not offer
    serialNumber: Serial = Field(None, json_schema_extra=lambda schema: schema.pop("default"))
    macAddress: Mac | None = None
    #: the catalog model, as in the create (a router replaced by another model takes the
    #: new one's); left out or an id, not null: a device always names a model
    model: RecordRef = Field(None, json_schema_extra=lambda schema: schema.pop("default"))

    @field_validator("serialNumber", mode="before")
    @classmethod
    def _serial_stays(cls, value: object) -> object:
        # (RFC 7386's null removes; a record without a serial number matches no router)
        if value is None:
            raise ValueError("a device's serial number cannot be removed; give the new one")
        return value

    @field_validator("model", mode="before")
    @classmethod
    def _model_stays(cls, value: object) -> object:
        if value is None:
            raise ValueError("a device's model cannot be removed; give the new one")
        return value


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wifi: Wifi | None = None
    dhcp: Dhcp | None = None


class DeviceListQuery(IdPageQuery):
    customer: IdFilter | None = None
    state: Literal["ACTIVE", "PROVISIONING", "DELETING"] | None = None
    online: bool | None = None
    #: searched in serial number, name, notes and MAC; a control character (NUL ended
    #: SQLite's LIKE pattern, and matched every device) is no search anyone means
    q: Search | None = None
    #: named as the device's ``job.state``; a device without a job (no operator settings)
    #: matches none. A change no session has taken up yet is PENDING (device_view.waiting_job)
    job: Literal["PENDING", "DONE", "FAILED"] | None = Field(
        None,
        description="Only devices whose current job (the device's job object) is in this "
        "state. PENDING: a change waiting for the router (from the moment it was accepted, "
        "attempts 0) or one its sessions are still applying or retrying. FAILED: acsd gave "
        "up on a setting the router refused past its retries; the device reads ACTIVE with "
        "jobs 0, as one whose job is DONE.",
    )


class DeviceList(BaseModel):
    items: list[Device]
    total: int
    limit: int
    offset: int


def _view(ctx: ApiContext, record: DeviceRecord, model: ModelRecord | None) -> dict[str, Any]:
    # The seed joins the model catalog into every device object.
    return seed_device(record, model, default_interval=ctx.default_interval, grace=ctx.grace)


async def _load(request: web.Request, who: Caller) -> DeviceRecord:
    device_id = normal_id(request.match_info["id"])
    record = await context(request).store.get_device(device_id) if is_id(device_id) else None
    # Another tenant's device is answered as one that does not exist: ids are predictable
    # (time and a counter), and a 403 would tell which exist and when they were made.
    if record is None or record.id != device_id or not who.may_see(record.customer):
        raise not_found("not_found", f"no device {peer_text(device_id)}")
    return record


async def _model(ctx: ApiContext, model_id: str | None) -> ModelRecord | None:
    return await ctx.store.get_model(model_id) if model_id and is_id(model_id) else None


async def _catalog_model(ctx: ApiContext, model_id: str) -> ModelRecord:
    """The model a create or an update names: one of the catalog whose profile acsd knows."""
    model = await _model(ctx, model_id)
    if model is None:
        raise not_found("model", "Network device model not found")
    if model.profile and model.profile not in ctx.profiles.names():
        raise ApiError(409, "profile", f"model's profile {model.profile!r} is not known")
    return model


async def _poke(ctx: ApiContext, record: DeviceRecord) -> None:
    """A change for the router: ask it to connect now rather than at its next Inform."""
    if ctx.requester is None:
        return
    # the record as stored: the username the router reported is a column, no tree read
    target = target_of(record)
    if target is not None:
        # The request runs in a task of its own, which takes this context along: its lines
        # (connreq.done) name the router as a session's do, for an operator who searches
        # the log by serial number.
        with bound_contextvars(serial=record.serial_number):
            ctx.requester.poke(record.id, *target)


_NOT_FOUND = (404, "not_found", "No such device")
_CONFLICT = (409, "conflict", "The device kept changing while this request ran; retry")


@describe(
    "POST", "/network/device", summary="Create a network device on a customer",
    body=DeviceCreate, response=Device, status=201,
    errors=[(404, "customer", "Customer not found"),
            (404, "model", "Network device model not found"),
            (409, "serialNumber", "Serial number is already in use"),
            (409, "profile", "The model's profile is not one acsd knows"),
            _CONFLICT,
            (422, "macAddress", "MAC address is already in use."),
            (422, "state", "A device of that serial number is being deleted")],
    roles="MANAGER or OWNER of the customer; RESELLER of it (any depth); ADMIN",
)  # fmt: skip
async def create_device(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    body = await read_model(request, DeviceCreate)
    return await _until_unchanged(
        f"serial:{body.serialNumber}", lambda: _create(request, ctx, who, body)
    )


#: one turn at a time per device (or serial number) for this process's writes: parallel
#: requests for one record then wait rather than lose to each other again and again
_turns: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


async def _until_unchanged(
    key: str, attempt: Callable[[], Awaitable[web.Response]]
) -> web.Response:
    """A read-modify-write, done again from the read when the record changed under it (a
    CPE's session, another worker's request): two requests never both win, nor half each.
    Requests of this process for the same ``key`` take turns; a retry waits a random
    moment, so that writers in other processes do not collide in step."""
    turn = _turns.setdefault(key.lower(), asyncio.Lock())
    async with turn:
        for attempt_no in range(MAX_ATTEMPTS):
            try:
                return await attempt()
            except ChangedError:
                await asyncio.sleep(random.uniform(0, 0.001 * min(attempt_no + 1, 10)))
    raise ApiError(409, "conflict", "The device kept changing while this request ran; retry")


async def _create(
    request: web.Request, ctx: ApiContext, who: Caller, body: DeviceCreate
) -> web.Response:
    customer = await who.customer(ctx.store, body.customer)
    model = await _catalog_model(ctx, body.model)
    existing = await ctx.store.find_device_for_cpe(body.serialNumber)
    _claimable(existing, "create it again")
    owner = await mac_owner(ctx.store, body.macAddress, existing)
    if owner is not None:
        if owner.serial_number.lower() == body.serialNumber.lower():
            # created by a request that raced this one since the serial was looked up
            raise ApiError(409, "serialNumber", "Serial number is already in use")
        raise ApiError(422, "macAddress", "MAC address is already in use.")
    _may_link(who, body.mvnoAccount, None)
    # An unclaimed CPE (it informed before the operator created it) is claimed here.
    seen = copy.deepcopy(existing) if existing else None
    record = existing or DeviceRecord(id="", serial_number=body.serialNumber, created=clock.now())
    _fill(record, body.model_dump(exclude_none=True))
    _check_lan(record, record.dhcp)
    record.customer = customer.id
    record.model = model.id
    if record.wifi or record.dhcp or (existing and line_off.stored(existing.provisioning)):
        # (a router released with acsd's static line on it: the line is taken off for
        # the new owner, a job of its own that says how that went)
        ask_to_provision(record)
    audit = audit_record(request, who, "device.create", "device", None, customer=customer.id)
    stored = await ctx.store.write_device(
        record,
        audit=audit,
        audit_after=audit_device_view,
        expect=seen or ABSENT,
        mac="set" if body.macAddress else "keep",
    )
    await _poke(ctx, stored)
    return created(_view(ctx, stored, model), f"/network/device/{stored.id}")


def _may_link(who: Caller, account: str | None, before: str | None) -> None:
    """A router named as an APN account's (mvnoAccount) takes that account's SIMs, IMEI lock
    and private APN: naming an account needs a say over it (ADMIN, or a token of that
    account), whether or not it exists yet. A name taken as given while the account did
    not exist bound the router once its owner made it: another tenant's router took the
    SIM's IMEI lock and private APN. (The same answer either way: no telling which
    accounts exist.) Unlinking, or keeping the link there is, needs only the device."""
    if account is None or account == before or who.is_admin or who.token.apn_account == account:
        return
    raise access_denied(
        f"Insufficient access level: linking a router to APN account {account} needs "
        "ADMIN or a token of that account",
    )


def _claimable(found: DeviceRecord | None, then: str) -> None:
    """The record of the serial number a POST or a PATCH gives a device may be taken in:
    only what an unknown router reported of itself is. One being deleted is 422 state (its
    router's next session releases it and the record goes: taken in now, the device would
    go with it, or the delete would be lost); a customer's, or one staged by `acsd device
    apply`, 409 (what it holds is not this request's to drop)."""
    if found is None:
        return
    if found.state == "DELETING":
        raise ApiError(
            422, "state",
            f"The router of serial number {found.serial_number} is being deleted: its next "
            f"session releases it; {then} once it is gone",
        )  # fmt: skip
    if found.made_by_operator:
        raise ApiError(409, "serialNumber", "Serial number is already in use")


def _check_lan(record: DeviceRecord, dhcp: dict[str, Any] | None) -> None:
    try:
        check_lan(record.status, dhcp)
    except DeviceInputError as exc:
        raise ApiError(400, exc.field, exc.message) from None


def _fill(record: DeviceRecord, data: dict[str, Any]) -> None:
    record.name = data.get("name")
    record.notes = data.get("notes")
    record.mvno_account = data.get("mvnoAccount")
    if data.get("macAddress"):
        record.mac_address, record.mac_from_router = data["macAddress"], False
    keep_reservation_ids(data.get("dhcp"), record.dhcp)
    record.wifi = data.get("wifi")
    record.dhcp = data.get("dhcp")
    if data.get("driftCheck") is not None:
        record.drift_check = data["driftCheck"]


@describe(
    "GET", "/network/device/{id}", summary="One network device", response=Device,
    errors=[_NOT_FOUND],
    roles="as create (another tenant's device is 404, as a missing one)",
)  # fmt: skip
async def get_device(request: web.Request) -> web.Response:
    ctx = context(request)
    record = await _load(request, await caller(request))
    return json_response(_view(ctx, record, await _model(ctx, record.model)))


@describe(
    "GET", "/network/device", summary="Network devices the caller may see, filtered and paged",
    query=DeviceListQuery, response=DeviceList, roles="any token",
    errors=[(409, "<parameter>", "Value is not one of the permitted values")],
)  # fmt: skip
async def list_devices(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    query = parse_query(request, DeviceListQuery)
    if query.customer is not None:
        who.require(query.customer)
    records, total = await ctx.store.query_devices(
        DeviceQuery(
            customers=who.tenancy,
            customer=query.customer,
            state=query.state,
            online=query.online,
            now=clock.now(),
            default_interval=ctx.default_interval,
            grace=ctx.grace,
            q=query.q,
            job=query.job,
            limit=query.limit,
            offset=query.offset,
            after=query.after,
        )
    )
    models: dict[str, ModelRecord | None] = {}
    items = []
    for record in records:
        if record.model and record.model not in models:
            models[record.model] = await _model(ctx, record.model)
        items.append(_view(ctx, record, models.get(record.model or "")))
        # A view is checked as it is shown: a record at the limits (1024 reservations)
        # takes milliseconds, a page of a thousand seconds. Routers' sessions and other
        # requests go on between the items, not after the page.
        await asyncio.sleep(0)
    return page_response(items, total, query)


def _known_keys(raw: dict[str, Any]) -> None:
    """A null in a PATCH removes a field (RFC 7386), so it never reaches validation: a
    misspelt key with a null would be taken silently (and remove nothing)."""
    for section, model in (("wifi", Wifi), ("dhcp", Dhcp)):
        patch = raw.get(section)
        if isinstance(patch, dict):
            known = {info.alias or name for name, info in model.model_fields.items()}
            for key in patch:
                if key not in known:
                    raise field_error(f"{section}.{key}", "unknown field")


def _merge(base: dict[str, Any] | None, patch: dict[str, Any]) -> dict[str, Any] | None:
    out = copy.deepcopy(base) if base else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out or None


@describe(
    "PATCH", "/network/device/{id}",
    summary="Change name, notes, wifi, dhcp, mvnoAccount or model, or move the record to a new "
    "router",
    body=DevicePatch, response=Device, roles="as create",
    errors=[_NOT_FOUND, (404, "model", "Network device model not found"),
            (409, "profile", "The model's profile is not one acsd knows"),
            (409, "serialNumber", "Serial number is already another device's"),
            _CONFLICT, (422, "macAddress", "MAC address is already in use."),
            (422, "state", "Device (or the router of the new serialNumber) is being deleted"),
            (422, "customer", "A router that called in unclaimed: POST its serial first")],
)  # fmt: skip
async def patch_device(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    await _load(request, who)  # 404/403 before the body's 400s
    patch = await read_model(request, DevicePatch)
    raw = await read_json(request)
    return await _until_unchanged(
        request.match_info["id"], lambda: _patch(request, ctx, who, patch, raw)
    )


async def _patch(
    request: web.Request, ctx: ApiContext, who: Caller, patch: DevicePatch, raw: dict[str, Any]
) -> web.Response:
    record = await _load(request, who)
    if record.state == "DELETING":
        raise ApiError(422, "state", "Device is being deleted")
    if not record.made_by_operator:
        # A router that called in before its record was made is claimed by the POST of its
        # serial number, which gives it a customer; written to here first, it would be an
        # operator's record of no customer, which a POST refuses (409) and a PATCH cannot
        # give one.
        raise ApiError(
            422, "customer",
            "Device has no customer yet: claim it with POST /network/device (its "
            "serialNumber and a customer) before changing it",
        )  # fmt: skip
    seen = copy.deepcopy(record)
    before = audit_device_view(record)
    fields = patch.model_fields_set
    if "name" in fields:
        record.name = patch.name
    if "notes" in fields:
        record.notes = patch.notes
    if "mvnoAccount" in fields:
        _may_link(who, patch.mvnoAccount, record.mvno_account)
        record.mvno_account = patch.mvnoAccount
    if "driftCheck" in fields:
        record.drift_check = patch.driftCheck is not False  # null: back to the default, on
    if patch.model is not None:
        record.model = (await _catalog_model(ctx, patch.model)).id
    # (serial numbers are case-insensitive: another case is the same router)
    new_router = (
        patch.serialNumber is not None
        and patch.serialNumber.lower() != record.serial_number.lower()
    )
    if patch.serialNumber is not None:
        record.serial_number = patch.serialNumber
    incoming = None
    if new_router:
        # The new router may have called in already (an unclaimed record of its serial):
        # what it reported, its LAN included, is the record's from now on; nothing the old
        # router reported holds for it.
        incoming = await ctx.store.find_device_for_cpe(record.serial_number)
        _claimable(incoming, "give it to this device")
        record.status = incoming.status if incoming else {}
    # (on a swap the old router's reported MAC goes and the new one's comes, unless the
    # operator writes or removes one: the store decides it in the write, see MacChange)
    mac: MacChange = "keep"
    if patch.macAddress is not None:
        if patch.macAddress != record.mac_address:
            other = await mac_owner(ctx.store, patch.macAddress, record)
            if other is not None and (incoming is None or other.id != incoming.id):
                raise ApiError(422, "macAddress", "MAC address is already in use.")
        # written (or confirmed) by the operator: the record's own from now on
        record.mac_address, record.mac_from_router = patch.macAddress, False
        mac = "set"
    elif "macAddress" in fields and patch.macAddress is None:
        mac = "remove"  # RFC 7386: null removes
    _known_keys(raw)
    wifi, dhcp = record.wifi, record.dhcp
    if "wifi" in fields:
        wifi = None if raw.get("wifi") is None else _merge(record.wifi, raw["wifi"])
    if "dhcp" in fields:
        dhcp = None if raw.get("dhcp") is None else _merge(record.dhcp, raw["dhcp"])
    # What results from the merge must be valid as a whole (e.g. pool start <= end). A
    # section the request leaves alone is kept as stored: a rule added since it was
    # written (STORED) must not turn a change of the name into a 400 about the wifi.
    merged = validate(
        _Settings, {k: v for k, v in (("wifi", wifi), ("dhcp", dhcp)) if k in fields}, sent=raw
    )
    if "wifi" in fields:
        wifi = merged.wifi.model_dump(exclude_none=True) if merged.wifi else None
    if "dhcp" in fields:
        dhcp = merged.dhcp.model_dump(exclude_none=True) if merged.dhcp else None
    keep_reservation_ids(dhcp, record.dhcp)
    if "dhcp" in fields or new_router:
        # Only what this request changes: a pool the router's LAN (reported after it was
        # written) left outside is the job's fault, and must not block a name or a wifi.
        _check_lan(record, dhcp)
    # A new router gets all the record holds: settings and the internet line.
    if desired_changed(wifi, dhcp, record.wifi, record.dhcp) or (
        new_router and (wifi or dhcp or record.internet_account)
    ):
        ask_to_provision(record)
    record.wifi, record.dhcp = wifi, dhcp
    audit = audit_record(
        request, who, "device.update", "device", record.id, customer=record.customer,
        before=before,
    )  # fmt: skip
    try:
        stored = await ctx.store.write_device(
            record,
            audit=audit,
            audit_after=audit_device_view,
            expect=seen,
            mac=mac,
            new_router=new_router,
        )
    except ConflictError:
        # (DuplicateError, or the row of the new serial found in the write itself: another
        # process gave it to a record between this request's look-up and its write)
        raise ApiError(409, "serialNumber", "Serial number is already in use") from None
    await _poke(ctx, stored)
    return json_response(_view(ctx, stored, await _model(ctx, stored.model)))


@describe(
    "POST", "/network/device/{id}/retry",
    summary="Try again the settings a FAILED job gave up on",
    description="acsd's own: a job gives up on a setting after its retries (the router "
    "refused it); once the cause is fixed on the router, this tries every setting again at "
    "its next session (a Connection Request asks for one now); the device's job is PENDING, "
    "of the new revision, from the answer on. Sending the same settings "
    "again is no change, and retries nothing, so that a client that writes its settings "
    "again and again does not make routers retry for ever.",
    response=Device, roles="as create",
    errors=[_NOT_FOUND, _CONFLICT,
            (409, "job", "The device's job did not fail: nothing to try again"),
            (422, "state", "Device is being deleted")],
)  # fmt: skip
async def retry_device(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    await no_body(request, "retry takes no body: it tries the device's settings again")
    return await _until_unchanged(request.match_info["id"], lambda: _retry(request, ctx, who))


async def _retry(request: web.Request, ctx: ApiContext, who: Caller) -> web.Response:
    record = await _load(request, who)
    if record.state == "DELETING":
        raise ApiError(422, "state", "Device is being deleted")
    if failed_at(record.provisioning) != record.revision or not record.revision:
        raise ApiError(409, "job", "The device's job did not fail: nothing to try again")
    seen = copy.deepcopy(record)
    audit = audit_record(
        request, who, "device.retry", "device", record.id, customer=record.customer,
        before=audit_device_view(record),
    )  # fmt: skip
    # A revision of its own: the router's next session finds the FAILED job behind it and
    # forgets what it gave up (provisioning.driver).
    ask_to_provision(record)
    stored = await ctx.store.write_device(
        record, audit=audit, audit_after=audit_device_view, expect=seen, mac="keep"
    )
    await _poke(ctx, stored)
    return json_response(_view(ctx, stored, await _model(ctx, stored.model)))


@describe(
    "DELETE", "/network/device/{id}", summary="Release and remove a network device",
    response=Device, status=202, errors=[_NOT_FOUND, _CONFLICT], roles="as create",
    description="202 with the device in state DELETING: its router's next session releases "
    "it, then the record goes (a router never seen goes at once).",
)  # fmt: skip
async def delete_device(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    return await _until_unchanged(request.match_info["id"], lambda: _delete(request, ctx, who))


async def _delete(request: web.Request, ctx: ApiContext, who: Caller) -> web.Response:
    record = await _load(request, who)
    # A router that stopped calling in (returned, dead, replaced) may never come back to be
    # released: its record would stay DELETING for good, holding its serial number and MAC
    # from the replacement. Its next Inform, if any, registers it as unclaimed.
    gone = not is_online(
        record.last_inform, record.periodic_interval, clock.now(),
        default_interval=ctx.default_interval, grace=ctx.grace,
    )  # fmt: skip
    if record.state == "DELETING" and not gone:
        # Asked again: nothing new to store (no revision, no audit entry); the router is
        # only reminded, which the Connection Request client rate-limits per router.
        await _poke(ctx, record)
        return json_response(_view(ctx, record, await _model(ctx, record.model)), status=202)
    seen = copy.deepcopy(record)
    before = audit_device_view(record)
    audit = audit_record(
        request, who, "device.delete", "device", record.id, customer=record.customer,
        before=before,
    )  # fmt: skip
    view = None
    if gone:
        # Never seen by acsd, or not online: nothing to wait for.
        record.state = "DELETING"
        view = _view(ctx, record, await _model(ctx, record.model))
        await ctx.store.delete_device(record.id, audit=audit, expect=seen)
    else:
        # The router's next session releases it, then the record goes. The new revision
        # keeps a session already under way from writing its state over DELETING.
        record.state = "DELETING"
        record.revision += 1
        stored = await ctx.store.write_device(record, audit=audit, expect=seen, mac="keep")
        await _poke(ctx, stored)
        view = _view(ctx, stored, await _model(ctx, stored.model))
    return json_response(view, status=202)


def setup(app: web.Application) -> None:
    app.router.add_post("/network/device", create_device)
    app.router.add_get("/network/device", list_devices)
    app.router.add_get("/network/device/{id}", get_device)
    app.router.add_patch("/network/device/{id}", patch_device)
    app.router.add_delete("/network/device/{id}", delete_device)
    app.router.add_post("/network/device/{id}/retry", retry_device)
