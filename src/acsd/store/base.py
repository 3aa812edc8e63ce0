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
    #: the Connection Request credentials acsd set on this CPE (written by sessions only;
    #: an operator update keeps them)
    cr_username: str | None = None
    cr_password: str | None = None


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
    #: Connection Request credentials acsd set on the CPE this session; None keeps the stored
    cr_username: str | None = None
    cr_password: str | None = None


@dataclass(slots=True)
class CustomerRecord:
    id: str
    name: str
    type: str = "CUSTOMER"  # CUSTOMER | RESELLER
    #: the reseller this customer (or sub-reseller) belongs to; None = top level
    reseller: str | None = None
    created: float = 0.0
    updated: float = 0.0


@dataclass(slots=True)
class TokenRecord:
    id: str
    #: sha256 hex of the token; the token itself is shown once and never stored
    hash: str
    role: str  # ADMIN | RESELLER | OWNER | MANAGER
    customer: str | None = None
    name: str = ""
    created: float = 0.0
    revoked: float | None = None


@dataclass(slots=True)
class ModelRecord:
    id: str
    name: str
    type: str  # ROUTER, MOBILE_ROUTER, ONT, ...
    brand: str | None = None
    description: str | None = None
    picture: str | None = None
    #: the acsd profile for routers of this model (must be one `acsd profile check` knows)
    profile: str | None = None
    created: float = 0.0
    updated: float = 0.0


@dataclass(slots=True)
class AuditRecord:
    id: str
    at: float
    action: str  # e.g. "device.create", "device.update", "customer.create"
    resource: str  # "device", "customer", "model", "token"
    resource_id: str | None = None
    token_id: str | None = None
    token_name: str | None = None
    role: str | None = None
    customer: str | None = None
    #: the resource before and after, secrets masked by the caller
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    request_id: str | None = None


@dataclass(slots=True)
class DeviceQuery:
    """Filters of ``GET /network/device``; None = no filter."""

    #: only devices of these customers (a token's tenancy); None = all (ADMIN)
    customers: set[str] | None = None
    customer: str | None = None
    state: str | None = None
    #: online as defined by acsd (a session within 2 x interval + grace); needs the two below
    online: bool | None = None
    now: float = 0.0
    default_interval: int = 300
    grace: int = 60
    #: case-insensitive substring of name, serial number, MAC (any separators), notes
    q: str | None = None
    limit: int = 100
    offset: int = 0


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

    # -- additions (REST API issue) ------------------------------------------------------
    # Every operator write takes an optional AuditRecord committed in the SAME transaction.

    async def query_devices(self, query: DeviceQuery) -> tuple[list[DeviceRecord], int]:
        """One page of devices ordered by creation (id), and the total matching count."""

    async def find_device_by_mac(self, mac_address: str) -> DeviceRecord | None:
        """Any record whose MAC is this one, whatever its separators and case."""

    async def write_device(
        self, record: DeviceRecord, *, audit: AuditRecord | None = None
    ) -> DeviceRecord:
        """upsert_device plus an audit entry in the same transaction."""

    async def delete_device(self, device_id: str, *, audit: AuditRecord | None = None) -> bool:
        """Remove the record; False if there was none."""

    async def create_customer(
        self, record: CustomerRecord, *, audit: AuditRecord | None = None
    ) -> CustomerRecord: ...

    async def get_customer(self, customer_id: str) -> CustomerRecord | None: ...

    async def list_customers(
        self, *, ids: set[str] | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[CustomerRecord], int]:
        """Ordered by id; ``ids`` restricts to a tenancy (None = all)."""

    async def customer_tree(self, customer_id: str) -> set[str]:
        """The customer itself plus, for a reseller, every customer and sub-reseller below
        it at any depth (recursive)."""

    async def create_token(
        self, record: TokenRecord, *, audit: AuditRecord | None = None
    ) -> TokenRecord: ...

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        """An unrevoked token by its hash."""

    async def list_tokens(self) -> list[TokenRecord]: ...

    async def revoke_token(self, token_id: str, *, audit: AuditRecord | None = None) -> bool: ...

    async def create_model(
        self, record: ModelRecord, *, audit: AuditRecord | None = None
    ) -> ModelRecord: ...

    async def get_model(self, model_id: str) -> ModelRecord | None: ...

    async def list_models(
        self, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[ModelRecord], int]: ...

    async def list_audit(
        self, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[AuditRecord], int]:
        """Newest first."""


class StoreError(Exception):
    """A persistence failure that callers may want to tell apart from bugs."""


class StoreClosedError(StoreError):
    """A write was submitted after ``close()`` (or before ``open()``)."""


class SchemaError(StoreError):
    """The database schema cannot be used: written by a newer acsd, or a broken migration."""


class ConflictError(StoreError):
    """A write would give two records the same unique key (e.g. serial number)."""
