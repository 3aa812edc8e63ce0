"""Store records -> the seed-000 device object that the CLI and the API show."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from yarl import URL

from acsd import clock
from acsd.cwmp.connreq import shown_url
from acsd.log import is_secret_name
from acsd.models import STORED, CpeInfo, Device, DeviceStatus, Dhcp, Job, Wifi
from acsd.provisioning.jobs import PENDING, is_provisioned
from acsd.provisioning.status import is_online
from acsd.store.base import DeviceRecord, ModelRecord
from acsd.store.records import warn_damaged


def without_password(url: str | None) -> str | None:
    """A URL a router reported, its password (firmware that writes its own credentials
    into the ConnectionRequestURL, in its user part or as a query parameter such as
    ``?password=``) replaced by ``***``: operators see where it is. Parsed as the
    Connection Request parses it; in what is no URL, all before the last "@"."""
    if not url or ("@" not in url and "?" not in url):
        return url
    try:
        parsed = URL(url)
    except (ValueError, UnicodeError):
        return shown_url(url) if "@" in url else url
    shown = parsed
    if parsed.password is not None:
        shown = shown.with_password("***")
    if any(is_secret_name(name) for name in parsed.query):
        query = [(k, "***" if is_secret_name(k) else v) for k, v in parsed.query.items()]
        shown = shown.with_query(query)
    return url if shown is parsed else str(shown)


def _stored(model: type[BaseModel], value: Any, record: DeviceRecord, column: str) -> Any:
    """``value`` as ``model``, or None (with one warning) where what is stored does not fit
    it (a row edited by hand, an older release's): the rest of the device is still shown,
    and the next write of the part replaces it."""
    if value is None:
        return None
    try:
        return model.model_validate(value, context=STORED)
    except ValidationError as exc:
        warn_damaged("devices", record.id, column, f"{exc.error_count()} invalid values")
        return None


def _status(status: dict[str, Any], record: DeviceRecord) -> DeviceStatus:
    """The status shown: a stored field of another type than this release's is left out."""
    known = {k: v for k, v in status.items() if k in DeviceStatus.model_fields}
    try:
        return DeviceStatus(**known)
    except ValidationError as exc:
        bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        warn_damaged("devices", record.id, "status", "invalid " + ", ".join(sorted(bad)))
        return DeviceStatus(**{k: v for k, v in known.items() if k not in bad})


def waiting_job(revision: int) -> Job:
    """The job a device shows from the moment an operator's change is accepted until a
    session of its router takes it up (the record PROVISIONING at ``revision``, its memory
    holding no job of that revision): pending, tried 0 times. Sessions write the jobs, and
    a change waits for the router's next session (or the one after a session under way):
    until then an operator must be able to tell it from "nothing to do". Not stored:
    whichever way the revision moved (the API, ``acsd device apply``, a new APN name, an
    internet line), the record says so alone, and the list's ``job=PENDING`` finds it by
    the same rule (acsd.store.sqlite.filters, acsd.store.postgres.rows). ``updated`` stays
    null: the record keeps no time of the change (its audit entry has it)."""
    return Job(revision=revision, state=PENDING)


def device_view(
    record: DeviceRecord, *, default_interval: int, grace: int, now: float | None = None
) -> Device:
    now = clock.now() if now is None else now
    status = dict(record.status)
    if record.last_inform is not None:
        status["lastComm"] = clock.iso(record.last_inform)
    status["online"] = is_online(
        record.last_inform,
        record.periodic_interval,
        now,
        default_interval=default_interval,
        grace=grace,
    )
    if record.public_ip:
        status["publicIp"] = record.public_ip
    memory = record.provisioning
    if record.revision > 0:
        # The CPE holds the current revision in full (acknowledged, or found so on compare).
        status["provisioned"] = is_provisioned(memory, record.revision)
    elif record.last_inform is not None:
        # Nothing was ever asked of it (no wifi or DHCP settings): a router that has called
        # in holds all of it. A client testing `!status.provisioned` must not see every such
        # router as waiting for something.
        status["provisioned"] = True
    job = memory.get("job")
    if job is not None and not isinstance(job, dict):
        warn_damaged("devices", record.id, "provisioning.job", type(job).__name__)
        job = None
    # Revision 0 = no operator settings; what acsd sets on its own is not a job.
    current = job if job and record.revision and job.get("revision") == record.revision else None
    shown_job = _stored(Job, current, record, "provisioning.job")
    if (current is None or current.get("state") is None) and (
        record.revision > 0 and record.state == "PROVISIONING"
    ):
        # A change no session has taken up yet (the list's job= decides alike: a job of
        # the revision without a state is none)
        shown_job = waiting_job(record.revision)
    # Validated as stored data (STORED): what passed the input rules of its day is shown,
    # even where those rules have tightened since.
    return Device.model_validate(
        {
            "_id": record.id,
            "state": record.state,
            "name": record.name,
            "model": record.model,
            "customer": record.customer,
            "macAddress": record.mac_address,
            "serialNumber": record.serial_number,
            "mvnoAccount": record.mvno_account,
            "jobs": record.jobs,
            "notes": record.notes,
            "wifi": _stored(Wifi, record.wifi, record, "wifi"),
            "dhcp": _stored(Dhcp, record.dhcp, record, "dhcp"),
            "status": _status(status, record),
            "cpe": CpeInfo(
                oui=record.oui,
                productClass=record.product_class,
                manufacturer=record.manufacturer,
                modelName=record.model_name,
                softwareVersion=record.software_version,
                hardwareVersion=record.hardware_version,
                profile=record.profile,
                connectionRequestUrl=without_password(record.connection_request_url),
                udpConnectionRequestAddress=record.udp_connection_request_address or None,
            ),
            "job": shown_job,
            "driftCheck": record.drift_check,
        },
        context=STORED,
    )


def seed_device(
    record: DeviceRecord,
    model: ModelRecord | None,
    *,
    default_interval: int,
    grace: int,
) -> dict[str, Any]:
    """The seed-000 device object: the record's view with its model's catalog entry joined
    in (modelType, modelBrand, ...), as the API answers it and `acsd device list|show
    --json` prints it: a script reading either sees one shape."""
    out = device_view(record, default_interval=default_interval, grace=grace).to_json()
    if model is not None:
        out["modelType"] = model.type
        for key, value in (
            ("modelBrand", model.brand),
            ("modelDescription", model.description),
            ("modelPicture", model.picture),
        ):
            if value is not None:
                out[key] = value
    return _ordered(out)


_ORDER = [
    "_id", "state", "name", "model", "modelType", "modelBrand", "modelDescription",
    "modelPicture", "customer", "macAddress", "serialNumber", "mvnoAccount", "jobs", "notes",
    "wifi", "dhcp", "status",
]  # fmt: skip


def _ordered(out: dict[str, Any]) -> dict[str, Any]:
    """Seed order first (humans read these), acsd's extensions after."""
    ordered = {k: out[k] for k in _ORDER if k in out}
    ordered.update({k: v for k, v in out.items() if k not in ordered})
    return ordered
