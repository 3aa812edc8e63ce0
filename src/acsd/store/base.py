"""The one interface to persistence. Nothing outside ``store/`` knows which backend runs.

Records are plain dataclasses; JSON-shaped fields (wifi, dhcp, status, params) are dicts.
Times are POSIX seconds (float) from :mod:`acsd.clock`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class CpeIdentity:
    """Who a CPE says it is in its Inform (DeviceId plus forced DeviceInfo values)."""

    oui: str
    product_class: str
    serial_number: str
    manufacturer: str = ""
    model_name: str | None = None
    software_version: str | None = None
    hardware_version: str | None = None


@dataclass(slots=True)
class DeviceRecord:
    id: str
    serial_number: str
    mac_address: str | None = None
    oui: str | None = None
    product_class: str | None = None
    manufacturer: str | None = None
    model_name: str | None = None
    software_version: str | None = None
    hardware_version: str | None = None
    profile: str | None = None
    name: str | None = None
    notes: str | None = None
    customer: str | None = None
    model: str | None = None
    mvno_account: str | None = None
    wifi: dict[str, Any] | None = None
    dhcp: dict[str, Any] | None = None
    state: str = "ACTIVE"
    revision: int = 0
    jobs: int = 0
    #: reported status fields (seed-000 names); ``online``/``lastComm`` are derived on read
    status: dict[str, Any] = field(default_factory=dict)
    public_ip: str | None = None
    last_inform: float | None = None
    periodic_interval: int | None = None
    #: last values read from the CPE: path -> [value, xsi type or None]
    params: dict[str, list[Any]] = field(default_factory=dict)
    #: paths this CPE answered 9005 for; not asked again until it BOOTSTRAPs
    absent_paths: list[str] = field(default_factory=list)
    connection_request_url: str | None = None
    created: float = 0.0
    updated: float = 0.0
    #: what acsd remembers of provisioning this CPE: applied revision, hashes of secrets it
    #: set, faults with their back-off, and the current job (written by sessions only)
    provisioning: dict[str, Any] = field(default_factory=dict)
    #: put back values changed on the router by hand (BOOT/PERIODIC sessions)
    drift_check: bool = True


@dataclass(slots=True)
class SessionResult:
    """Everything one CWMP session learned, committed in one transaction at its end."""

    identity: CpeIdentity
    at: float
    #: the record this CPE is bound to; None registers a new one
    device_id: str | None = None
    remote_ip: str | None = None
    events: list[str] = field(default_factory=list)
    #: values read this session, merged over the stored ``params`` (path -> [value, type])
    params: dict[str, list[Any]] = field(default_factory=dict)
    #: True on 0 BOOTSTRAP: stored params and absent paths are forgotten before the merge
    reset_params: bool = False
    #: the new reported status (replaces the stored one; omitted fields were not reported)
    status: dict[str, Any] = field(default_factory=dict)
    mac_address: str | None = None
    profile: str | None = None
    periodic_interval: int | None = None
    connection_request_url: str | None = None
    absent_paths: list[str] | None = None
    #: the record revision the session worked from; state/jobs/dhcp below are written only
    #: if the record still has it (an operator change during the session wins)
    revision: int | None = None
    provisioning: dict[str, Any] | None = None
    state: str | None = None
    jobs: int | None = None
    dhcp: dict[str, Any] | None = None


class Store(Protocol):
    async def open(self) -> None:
        """Connect, run pending migrations, start the writer."""

    async def close(self) -> None:
        """Flush every queued write, then disconnect."""

    async def ping(self) -> bool:
        """True when the database answers and migrations are done."""

    async def find_device_for_cpe(
        self, serial_number: str, mac_address: str | None = None
    ) -> DeviceRecord | None:
        """The record a CPE binds to: serial number (case-insensitive), else MAC."""

    async def get_device(self, key: str) -> DeviceRecord | None:
        """By id, or by serial number (case-insensitive)."""

    async def list_devices(self, *, limit: int = 1000, offset: int = 0) -> list[DeviceRecord]:
        """Ordered by serial number."""

    async def save_session(self, result: SessionResult) -> str:
        """Commit a session's results (batched with other sessions'); returns the device id
        once the transaction holding it has committed."""

    # -- additions (store issue): operator writes and counting --------------------------

    async def upsert_device(self, record: DeviceRecord) -> DeviceRecord:
        """Create or update an operator's record, matched by id, else serial number
        (case-insensitive); queued behind session writes. CPE-reported fields of an existing
        record are kept. Returns the record as stored."""

    async def count_devices(self) -> int:
        """How many device records there are."""


class StoreError(Exception):
    """A persistence failure that callers may want to tell apart from bugs."""


class StoreClosedError(StoreError):
    """A write was submitted after ``close()`` (or before ``open()``)."""


class SchemaError(StoreError):
    """The database schema cannot be used: written by a newer acsd, or a broken migration."""


class ConflictError(StoreError):
    """A write would give two records the same unique key (e.g. serial number)."""
