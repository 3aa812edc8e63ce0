"""The one interface to persistence. Nothing outside ``store/`` knows which backend runs.

Records are plain dataclasses; JSON-shaped fields (wifi, dhcp, status, params) are dicts.
Times are POSIX seconds (float) from :mod:`acsd.clock`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from acsd.log import log_failure
from acsd.store.retention import Group

if TYPE_CHECKING:
    from acsd.store.outages import Outage  # (which imports this module)

#: the longest SoftwareVersion / HardwareVersion kept from a CPE (TR-181 and TR-098 both
#: define them as string(64)); the Inform's DeviceId fields are checked to the same length
VERSION_CHARS = 64


@dataclass(slots=True)
class CpeIdentity:
    """Who a CPE says it is in its Inform (DeviceId plus forced DeviceInfo values). The
    versions are at most :data:`VERSION_CHARS` long."""

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
    #: last values read from the CPE: path -> [value, xsi type or None]. Only written
    #: through the record (a new one's first tree); the store's look-ups leave it empty:
    #: Store.device_params reads the tree, Store.device_values some of its values
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
    #: the latest internet account naming this router (set by the store when one is
    #: created; an operator update keeps it). None: sessions need not look accounts up.
    internet_account: str | None = None
    #: the exact leaves a session reads between reads of the whole tree (written by
    #: sessions only; see acsd.provisioning.status.ReadPlan)
    read_plan: dict[str, Any] | None = None
    #: the SIM numbers the router last reported (imsi, iccid, msisdn); {} = none, None =
    #: not known yet (written by sessions only)
    sim: dict[str, str] | None = None
    #: the MAC address is the one the router reported (it filled in a record without
    #: one); False once an operator writes one
    mac_from_router: bool = False
    #: the Connection Request username the router last reported holding (its
    #: ManagementServer.ConnectionRequestUsername), kept apart from the tree so that a
    #: Connection Request reads no tree (written by sessions only)
    reported_cr_username: str | None = None
    #: where the router takes a UDP Connection Request (its
    #: ManagementServer.UDPConnectionRequestAddress, host:port: with STUN on, its NAT's
    #: public mapping); "" once it reports none (written by sessions only)
    udp_connection_request_address: str | None = None

    @property
    def made_by_operator(self) -> bool:
        """A customer's record or one an operator filled in (`acsd device apply` may leave
        out the customer), not only what an unknown router reported of itself. (A MAC
        address alone does not tell: records of routers that registered before
        mac_from_router existed hold theirs as an operator's.)"""
        return bool(
            self.customer
            or self.wifi
            or self.dhcp
            or self.name
            or self.notes
            or self.mvno_account
            or self.model
            or not self.drift_check
        )

    @property
    def mac_is_routers_own(self) -> bool:
        """The MAC is only what an unclaimed router reported of itself: an operator who
        writes it for a device takes it from this record."""
        return self.mac_from_router and not self.made_by_operator


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
    #: True: ``params`` replaces the stored tree (and absent paths are forgotten unless
    #: given); False: it is merged over it
    reset_params: bool = False
    #: the new reported status (replaces the stored one; omitted fields were not reported)
    status: dict[str, Any] = field(default_factory=dict)
    mac_address: str | None = None
    profile: str | None = None
    periodic_interval: int | None = None
    connection_request_url: str | None = None
    #: the UDPConnectionRequestAddress reported ("" for none); None keeps the stored one
    udp_connection_request_address: str | None = None
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
    #: a new read plan (after a read of the whole tree); None keeps the stored one
    read_plan: dict[str, Any] | None = None
    #: the SIM numbers reported ({} = no SIM); None keeps the stored ones
    sim: dict[str, str] | None = None
    #: the record's ``last_inform`` when the session read it (None: not checked, unless
    #: ``bound_serial`` is given: then the record had none yet). When the
    #: record has another one at commit, a later session of the CPE committed first (it
    #: rebooted mid-session and this one ended at its timeout, maybe in another worker):
    #: this older result is dropped with :class:`StaleResultError` instead of written over it.
    since: float | None = None
    #: the record's serial number when the session read it (None: not checked). A record
    #: whose serial changed meanwhile was moved to another router (PATCH serialNumber):
    #: the old router's result is dropped with :class:`StaleResultError`.
    bound_serial: str | None = None
    #: set by :meth:`Store.save_session` once written: the record had another revision
    #: than ``revision`` (the operator changed it during the session, which applied the
    #: one before), so the router is to be asked to call in again
    revision_moved: bool = False


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
    #: the APN API account (seed 003 foreign key) the token may manage; None = none
    apn_account: str | None = None
    #: POSIX seconds from which the token is refused (401, as a revoked one); None = never
    expires: float | None = None
    #: when it last authenticated a request, to the minute or so (acsd.api.token_uses);
    #: None = not since acsd keeps it
    last_used: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires


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
    #: the state (PENDING, DONE, FAILED) of the device's job, the one its ``job`` object
    #: shows: of the record's revision, so devices without operator settings have none;
    #: PENDING also finds a PROVISIONING record no session has written a job of yet (the
    #: change waits for its router: acsd.device_view.waiting_job)
    job: str | None = None
    limit: int = 100
    offset: int = 0
    #: only records whose id sorts after this one (the previous page's last): a walk that
    #: pages this way neither skips nor repeats a record when others come and go
    after: str | None = None


#: what an internet account's state is stored as (the API shows these; a CONFIRMED one
#: whose start date has passed as ACTIVE)
INTERNET_STATES = ("ORDERED", "CONFIRMED", "ACTIVE", "ENDED")


@dataclass(slots=True)
class InternetAccountRecord:
    """An Internet line (seed 002): ordered for a customer, confirmed by the provider."""

    id: str
    customer: str
    name: str
    #: the router the line ends at; its WAN settings come from the confirmed account
    device: str | None = None
    #: ORDERED, CONFIRMED (start date still to come) or ACTIVE, as stored; a CONFIRMED
    #: account whose start date has passed reads as ACTIVE (see ``effective_state``)
    state: str = "ORDERED"
    #: the confirm body as the API accepted it (JSON object); None until confirmed
    confirm: dict[str, Any] | None = None
    #: the confirm's startDate, POSIX seconds
    start_date: float | None = None
    #: the confirmed net.ipAddress: unique among accounts
    ip_address: str | None = None
    created: float = 0.0
    updated: float = 0.0
    #: the router's line this one was confirmed to replace (an upgrade's predecessor), set
    #: at the confirm: the upgrade ends it at its start even when the router's record was
    #: deleted meanwhile, when neither names the router any more
    replaces: str | None = None

    def effective_state(self, now: float) -> str:
        if self.state == "CONFIRMED" and self.start_date is not None and self.start_date <= now:
            return "ACTIVE"
        return self.state


@dataclass(slots=True)
class InternetAccountQuery:
    """Filters of ``GET /internet/account``; None = no filter."""

    customers: set[str] | None = None
    customer: str | None = None
    device: str | None = None
    #: the effective state at ``now`` (ACTIVE includes CONFIRMED accounts that are due)
    state: str | None = None
    now: float = 0.0
    limit: int = 100
    offset: int = 0
    #: only records whose id sorts after this one (the previous page's last): a walk that
    #: pages this way neither skips nor repeats a record when others come and go
    after: str | None = None


@dataclass(slots=True)
class ApnAccountRecord:
    """A Passbridge-style API account (seed 003), known by the caller's foreign key."""

    key: str
    billing_cycle_day: int | None = None
    email_contact: str | None = None
    tenant_id: str | None = None
    created: float = 0.0


@dataclass(slots=True)
class ApnNetworkRecord:
    """A network of an API account; ``apn`` is the APN name acsd pushes to its routers."""

    account: str
    key: str
    apn: str | None = None
    created: float = 0.0
    updated: float = 0.0


@dataclass(slots=True)
class ApnDeviceRecord:
    """An APN device (seed 003 APNDevice) plus the keys acsd matches CPE SIMs on."""

    id: str
    account: str
    network: str
    cli: str
    #: "msisdn:<digits>" or "imsi:<digits>": unique among a network's active devices
    cli_key: str
    sim_number: str | None = None
    soc: str | None = None
    internal_soc: str | None = None
    description: str | None = None
    ip_address: str | None = None
    friendly_name: str | None = None
    metadata: dict[str, Any] | None = None
    start_date: float = 0.0
    #: set by DELETE; an ended device is kept, never matched to a CPE again
    end_date: float | None = None
    status: int = 0  # StatusValues: 0 pending, 1 active, 2 refused, 3 deleted
    version: int = 1
    actor_status: int = 0  # ActorStatusValues: 0 stable, 1 pending, 10 stalled
    network_status: int = 0  # NetworkStatusValues: 0 disconnected, 1 connected, 10 activation
    enabled: bool = True
    lock_imei: bool = False
    imei: str | None = None
    #: the IMEI last refused by the lock (None when the locked modem is the one seen)
    refused_imei: str | None = None
    last_sync: float | None = None
    last_connected_start: float | None = None
    last_connected_end: float | None = None
    last_connected_mcc: str | None = None
    last_connected_mnc: str | None = None
    #: digits only; matched against what routers report (indexed)
    imsi: str | None = None
    iccid: str | None = None
    msisdn: str | None = None
    #: the device record (``devices.id``) of the router last seen with this SIM
    router: str | None = None
    created: float = 0.0
    updated: float = 0.0


@dataclass(slots=True)
class ApnOperationRecord:
    """An accepted APN API command, reported at its StatusUrl."""

    id: str
    account: str
    kind: str  # "create" | "delete"
    resource_id: str | None = None
    state: str = "complete"  # "pending" | "complete" | "failed"
    created: float = 0.0
    done: float | None = None


class Store(Protocol):
    #: the schema versions that open() applied (empty when the schema was up to date)
    migrations_applied: list[int]

    async def open(self) -> None:
        """Connect, run pending migrations, start the writer."""

    async def close(self) -> None:
        """Flush every queued write, then disconnect."""

    async def check_writable(self) -> None:
        """Raise StoreError unless the database takes a write (checked once at start)."""

    async def ping(self) -> bool:
        """True when the database answers, migrations are done and writes go through."""

    async def readiness(self) -> Outage | None:
        """None when :meth:`ping` is true, else why not (``/readyz`` names its ``cause``);
        a probe's answer stands for ``ping_every`` seconds, as :meth:`ping`'s."""

    async def find_device_for_cpe(
        self, serial_number: str, mac_address: str | None = None, *, for_session: bool = False
    ) -> DeviceRecord | None:
        """The record a CPE binds to: serial number (case-insensitive), else MAC, without
        its tree (as :meth:`get_device`). ``for_session=True`` leaves ``status`` empty too:
        a session writes a new status, and reads the tree (several KB) with
        :meth:`device_params` only when it needs it."""

    async def get_device(self, key: str) -> DeviceRecord | None:
        """By id, or by serial number (case-insensitive). The record holds no parameter
        tree (``params`` is empty), as no record the store returns does: a router's tree
        may hold 100k values. :meth:`device_values` reads the few a caller needs (the
        Connection Request username is a field of its own: ``reported_cr_username``)."""

    async def device_holder(self, device_id: str) -> tuple[Any, Any] | None:
        """(state, serial number) of a device by id as stored, or None when there is none:
        what a session checks before it sends a record's settings (deleted or given to
        another router meanwhile?) without reading and building the whole record."""

    async def device_params(self, device_id: str) -> dict[str, list[Any]]:
        """The stored parameter tree of one device alone ({} if there is none)."""

    async def device_values(self, device_id: str, paths: Sequence[str]) -> dict[str, list[Any]]:
        """Those of ``paths`` (full parameter names) that the device's stored tree holds,
        as there (path -> [value, type]), read without loading the tree; the others are
        left out. ValueError for a path with a double quote (no parameter has one)."""

    async def list_devices(
        self, *, limit: int = 1000, offset: int = 0, after: str | None = None
    ) -> list[DeviceRecord]:
        """Ordered by serial number. The records hold no parameter tree (``params`` is
        empty), as in :meth:`query_devices`. ``after``: a serial number (any case, a device
        of it or not); the list starts past it, so a walk that gives each page's last serial
        number sees each device that exists throughout once, while others come and go."""

    async def save_session(self, result: SessionResult) -> str:
        """Commit a session's results (batched with other sessions'); returns the device id
        once the transaction holding it has committed, and sets ``result.revision_moved``."""

    # -- additions (store issue): operator writes and counting --------------------------

    async def upsert_device(
        self, record: DeviceRecord, *, mac: MacChange | None = None
    ) -> DeviceRecord:
        """Create or update an operator's record, matched by id, else serial number
        (case-insensitive); queued behind session writes. CPE-reported fields of an existing
        record are kept. ``mac``: what becomes of the MAC (:data:`MacChange`; None: "keep"
        a router's report the record holds, else "set" its MAC or "remove" if it has none);
        a MAC set here may stay on a router's own record too. Returns the record as
        stored (without its tree, as :meth:`get_device`)."""

    async def count_devices(self) -> int:
        """How many device records there are."""

    # -- additions (REST API issue) ------------------------------------------------------
    # Every operator write takes an optional AuditRecord committed in the SAME transaction.

    async def query_devices(self, query: DeviceQuery) -> tuple[list[DeviceRecord], int]:
        """One page of devices ordered by creation (id), and the total matching count. The
        records hold no parameter tree (``params`` is empty): the list shows none."""

    async def find_device_by_mac(self, mac_address: str) -> DeviceRecord | None:
        """Any record whose MAC is this one, whatever its separators and case."""

    async def write_device(
        self,
        record: DeviceRecord,
        *,
        audit: AuditRecord | None = None,
        audit_after: Callable[[DeviceRecord], dict[str, Any]] | None = None,
        expect: DeviceRecord | str | None = None,
        mac: MacChange | None = None,
        new_router: bool = False,
    ) -> DeviceRecord:
        """upsert_device plus an audit entry in the same transaction (``audit_after``: its
        ``after``, from the record as stored).

        ``expect``: the record as the caller read it (its operator fields must be unchanged)
        or :data:`ABSENT` (no record with this serial may exist); ``mac="set"``: no device
        but a router's own record may hold this MAC. Otherwise :class:`ChangedError`, and
        nothing is written.
        ``new_router``: the record's serial number changed (the router was replaced): what
        the old router reported is dropped and, when the new one already called in, the
        unclaimed record it made is merged in (:class:`DuplicateError` on ``serialNumber``
        when a claimed record has that serial)."""

    async def delete_device(
        self,
        device_id: str,
        *,
        audit: AuditRecord | None = None,
        expect: DeviceRecord | None = None,
    ) -> bool:
        """Remove the record; False if there was none. ``expect`` as for write_device."""

    async def create_customer(
        self, record: CustomerRecord, *, audit: AuditRecord | None = None
    ) -> CustomerRecord: ...

    async def get_customer(self, customer_id: str) -> CustomerRecord | None: ...

    async def list_customers(
        self,
        *,
        ids: set[str] | None = None,
        limit: int = 100,
        offset: int = 0,
        after: str | None = None,
    ) -> tuple[list[CustomerRecord], int]:
        """Ordered by id; ``ids`` restricts to a tenancy (None = all); ``after`` as in
        :class:`DeviceQuery` (the total counts them all)."""

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

    async def note_token_uses(self, uses: Mapping[str, float]) -> None:
        """When tokens (by id) last authenticated a request (acsd.api.token_uses): a time
        later than the stored one replaces it, so processes sharing the database may write
        theirs in any order. Not audited: no operator wrote anything."""

    async def create_model(
        self, record: ModelRecord, *, audit: AuditRecord | None = None
    ) -> ModelRecord: ...

    async def get_model(self, model_id: str) -> ModelRecord | None: ...

    async def list_models(
        self, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[ModelRecord], int]: ...

    async def list_audit(
        self, *, limit: int = 100, offset: int = 0, before: str | None = None
    ) -> tuple[list[AuditRecord], int]:
        """Newest first; ``before`` (an entry's id, the last a walk saw): only the entries
        after it in that order, i.e. older (new entries come first, so an offset would
        move on under a walk). The total counts them all. LookupError when there is no
        entry ``before``."""

    # -- additions (internet accounts, seed 002) ---------------------------------------------

    async def create_internet_account(
        self, record: InternetAccountRecord, *, audit: AuditRecord | None = None
    ) -> InternetAccountRecord:
        """Store a new (ORDERED) account; marks its device (``internet_account``). Raises
        :class:`StateError` when that device is being deleted (or is gone)."""

    async def get_internet_account(self, account_id: str) -> InternetAccountRecord | None: ...

    async def query_internet_accounts(
        self, query: InternetAccountQuery
    ) -> tuple[list[InternetAccountRecord], int]:
        """One page ordered by id, and the total matching count."""

    async def confirm_internet_account(
        self,
        account_id: str,
        *,
        confirm: dict[str, Any],
        start_date: float,
        ip_address: str,
        now: float,
        audit: AuditRecord | None = None,
    ) -> tuple[InternetAccountRecord, DeviceRecord | None]:
        """ORDERED -> CONFIRMED, or straight to ACTIVE when ``start_date`` <= ``now``; then
        the account's device gets a new revision and PROVISIONING, in the same transaction,
        and is returned (to be woken). The lines it replaces (the router's earlier ones, the
        customer's routerless lines whose addresses it takes) are ENDED, each with an
        ``internet.end`` entry whose author is ``audit``'s. Raises :class:`StateError` when
        the account is not
        ORDERED, :class:`ConflictError` when another account has ``ip_address``, KeyError
        when there is no such account."""

    async def activate_internet_accounts(self, now: float) -> list[DeviceRecord]:
        """CONFIRMED accounts whose start date has come become ACTIVE and their devices get a
        new revision and PROVISIONING; returns those devices. The lines they replace are ENDED
        (``internet.end`` entries by "internet activation"), found through the router, or
        by ``replaces`` for an account whose router's record was deleted since its confirm."""

    async def end_internet_account(
        self, account_id: str, *, now: float, audit: AuditRecord | None = None
    ) -> InternetAccountRecord:
        """ENDED, with an ``internet.end`` entry whose author is ``audit``'s; an ENDED
        account is returned as it is (nothing written). Raises :class:`StateError` when the
        account names a router (the router holds its line: a later line ends it), KeyError
        when there is no such account."""

    async def next_internet_start(self) -> float | None:
        """The earliest start date of a CONFIRMED account (None: nothing pending)."""

    async def internet_account_for_device(
        self, device_id: str, now: float
    ) -> InternetAccountRecord | None:
        """The device's effective account: CONFIRMED or ACTIVE with the latest start date
        that has come; None when there is none."""

    # -- additions (APN API, seed 003) ------------------------------------------------------

    async def get_apn_account(self, key: str) -> ApnAccountRecord | None: ...

    async def get_apn_network(self, account: str, key: str) -> ApnNetworkRecord | None: ...

    async def put_apn_network(
        self, record: ApnNetworkRecord, *, audit: AuditRecord | None = None
    ) -> tuple[ApnNetworkRecord, list[DeviceRecord]]:
        """Create the network or set its APN name; the account must exist (ConflictError).
        A new APN name is a job of the routers that take it (see
        :func:`acsd.store.apn_rules.routers_due`), in the same transaction: a new
        revision, PROVISIONING, until a session sets it. Returns the network and those
        routers (to ask to connect)."""

    async def create_apn_device(
        self,
        record: ApnDeviceRecord,
        *,
        account: ApnAccountRecord | None = None,
        operation: ApnOperationRecord | None = None,
        audit: AuditRecord | None = None,
        account_audit: AuditRecord | None = None,
    ) -> ApnDeviceRecord:
        """In one transaction: the account (when given and still missing), the network
        (when missing), the device, its operation and audit entries. Raises
        :class:`DuplicateError` naming ``CLI`` or ``SIMNumber`` when an active device of the
        account has it, in this network or another (its message names that network)."""

    async def get_apn_device(self, device_id: str) -> ApnDeviceRecord | None: ...

    async def find_apn_device(
        self, account: str, network: str, cli_key: str
    ) -> ApnDeviceRecord | None:
        """By CLI key: the active device, else the latest ended one."""

    async def list_apn_devices(
        self,
        account: str,
        network: str,
        *,
        after: str | None = None,
        limit: int = 100,
        include_ended: bool = False,
    ) -> list[ApnDeviceRecord]:
        """Ordered by id, those after ``after`` (keyset paging)."""

    async def find_apn_devices_for_sim(
        self,
        *,
        imsi: str | None,
        iccid: str | None,
        msisdn: str | None,
        include_ended: bool = False,
    ) -> list[ApnDeviceRecord]:
        """Active devices whose IMSI, ICCID or MSISDN is one of these (oldest first);
        ``include_ended``: removed ones too (the routers the SIM was seen in)."""

    async def find_apn_devices_on_router(self, router: str) -> list[ApnDeviceRecord]:
        """Active devices whose SIM was last seen in this router (devices.id)."""

    async def give_apn_job(self, router: str, account: str) -> DeviceRecord | None:
        """The router (devices.id) has an APN name to take that it does not hold: a new
        revision and PROVISIONING, as put_apn_network gives its routers; only while its
        record still names ``account`` as its mvnoAccount and is not being released
        (else None, nothing written)."""

    async def update_apn_device(
        self,
        device_id: str,
        change: Callable[[ApnDeviceRecord], tuple[ApnDeviceRecord | None, AuditRecord | None]],
        *,
        operation: ApnOperationRecord | None = None,
        steers: tuple[str, str] | None = None,
    ) -> ApnDeviceRecord | None:
        """Run ``change`` on the stored device inside the write transaction (it may run more
        than once, so it must be pure) and store what it returns with its audit entry; a
        None record writes nothing. Returns the device as stored (None: no such device).
        ``steers`` (router device id, API account): change it only while that router's
        record still names the account as its mvnoAccount, else write nothing and return
        None (a session decided on the record as it began; the operator may have unlinked
        the router, or deleted its record, since)."""

    async def get_apn_operation(self, operation_id: str) -> ApnOperationRecord | None: ...

    async def park_session(
        self,
        session_id: str,
        state: bytes,
        at: float,
        remote_ip: str | None = None,
        serial: str | None = None,
    ) -> None:
        """Keep an open CWMP session's state for another worker (``workers = N``).
        ``remote_ip``: the address of a CPE that keeps no cookies, to be found by;
        ``serial``: its CPE's serial number (a new Inform of it ends the session)."""

    async def claim_session(self, session_id: str) -> bytes | None:
        """Take a parked session: its state, removed from the store so that only one
        worker goes on with it; None when no such session is parked."""

    async def claim_session_from(self, remote_ip: str) -> bytes | None:
        """Take the parked session of a cookieless CPE at this address, when exactly one
        is parked for it (CPEs behind one NAT address cannot be told apart); else None."""

    async def parked_sessions(self, parked_before: float) -> list[str]:
        """Ids of sessions parked before this time (their CPE may never come back)."""

    async def restamp_parked(self, now: float) -> int:
        """Sessions parked later than ``now`` (the clock was set back) count as parked
        ``now``; how many they were."""

    async def parked_of(self, serial: str) -> list[str]:
        """Ids of the sessions parked for the CPE with this serial number (any case)."""

    def unavailable(self, exc: BaseException) -> str | None:
        """Why the database cannot be used right now, when that is what ``exc`` says
        (:func:`store_unavailable`); None for any other error."""

    async def touch_parked(
        self, now: float, *, session_id: str | None = None, remote_ip: str | None = None
    ) -> bool:
        """The CPE of a parked session has begun to send its next message: the session
        counts as parked ``now``, so that no worker ends it at its timeout under the
        upload. Found as :meth:`claim_session` or :meth:`claim_session_from` would find
        it; whether one was."""

    async def prune(self, group: Group, before: float, limit: int) -> int:
        """Delete up to ``limit`` of the group's oldest rows from before ``before`` (the
        audit log's entries, the APN operations done then; never one still pending), in
        one write; how many went (acsd.store.retention, acsd.retention)."""

    async def claim_connection_request(self, device_id: str, seconds: float) -> bool:
        """Take, for ``seconds``, the right to ask the device's router to connect (a
        Connection Request): True when no process on this database (worker, instance)
        holds it or its hold has run out, on the database's clock; False while another
        holds it, or when there is no such device. One conditional write: of processes
        asking at once, exactly one gets True. The claim goes with its device."""


class StoreError(Exception):
    """A persistence failure that callers may want to tell apart from bugs."""


#: SQLite's own trouble, which passes: another process holds the lock, the file is
#: read-only or its disk full or failing. Anything else (a bad statement) is a bug.
_UNAVAILABLE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_FULL",
                "SQLITE_CANTOPEN", "SQLITE_CORRUPT", "SQLITE_NOTADB")  # fmt: skip

#: PostgreSQL's SQLSTATEs of the same kind: the connection (08), resources such as disk
#: or connection slots (53), a server shutting down or starting (57P), a read-only standby
#: (25006), and the limits an operator sets on the role or database so that no client
#: holds the server up: a statement cancelled at its statement_timeout (57014), a lock not
#: granted within lock_timeout (55P03: held by another client, as SQLITE_BUSY is), a
#: connection ended at idle_in_transaction_session_timeout (25P03)
PG_CUT_SHORT = ("57014", "55P03")  # (statement_timeout, lock_timeout: see postgres.core)
_PG_UNAVAILABLE = ("08", "53", "57P", "25006", *PG_CUT_SHORT, "25P03")

#: seconds a client is asked to wait when the database is unavailable
RETRY_UNAVAILABLE = 10


def store_unavailable(exc: BaseException) -> str | None:
    """What makes the database unavailable right now, when ``exc`` (or its cause) is that;
    None for anything else. Callers answer 503 + Retry-After instead of 500."""
    while exc is not None:
        name = getattr(exc, "sqlite_errorname", None)
        if isinstance(name, str) and name.startswith(_UNAVAILABLE):
            return str(exc)
        state = getattr(exc, "sqlstate", None)  # PostgreSQL's (asyncpg)
        if isinstance(state, str) and state.startswith(_PG_UNAVAILABLE):
            return str(exc)
        if isinstance(exc, ConnectionError | StoreUnavailableError):
            return str(exc)  # the server is gone (restarting, unreachable)
        exc = exc.__cause__  # type: ignore[assignment]
    return None


#: set on a write's error once the store's writer has logged its cause (store_writes_failing)
_REPORTED = "acsd_store_reported"


def mark_reported(exc: BaseException) -> None:
    """``exc``'s cause is in the log already (the writer's one line for an outage): the
    lines of each request it fails need not be warnings too."""
    # (an exception type without a __dict__ is logged as before)
    with contextlib.suppress(AttributeError):
        setattr(exc, _REPORTED, True)


def reported(exc: BaseException) -> bool:
    """Whether :func:`mark_reported` was called on ``exc`` (or what it was raised from)."""
    while exc is not None:
        if getattr(exc, _REPORTED, False):
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


def log_store_failure(logger: Any, event: str, exc: BaseException, **fields: Any) -> None:
    """:func:`acsd.log.log_failure` for a failed store call: a warning while the database is
    unavailable (:func:`store_unavailable`), else the traceback."""
    log_failure(logger, event, store_unavailable(exc), **fields)


class StoreUnavailableError(StoreError):
    """The database cannot be reached right now (its server is down or unreachable, the
    connection was lost): a backend raises it for its driver's errors of that kind that
    carry no code of their own (a missing socket file, a connect timeout)."""


class RestartNeededError(StoreUnavailableError):
    """Every write is refused until acsd restarts (the database's files were replaced
    underneath it): retrying does not help, unlike the other unavailable errors."""


class StoreClosedError(StoreError):
    """A write was submitted after ``close()`` (or before ``open()``)."""


class SchemaError(StoreError):
    """The database schema cannot be used: written by a newer acsd, or a broken migration."""


class ConflictError(StoreError):
    """A write would give two records the same unique key (e.g. serial number)."""


class LaterLineError(ConflictError):
    """Confirming an internet account whose device already has a line (confirmed or
    active) that takes effect at the same time or later: the new one would never apply."""


class StateError(StoreError):
    """A write the record's state does not allow (e.g. confirming an account twice)."""


class StaleResultError(StoreError):
    """A session's result was not written: a later session of the same CPE committed
    first (see ``SessionResult.since``), or the record it worked on was deleted and none
    of its serial made since (:class:`RecordDeletedError`)."""


class RecordDeletedError(StaleResultError):
    """A session's result was not written: the operator deleted the record during the
    session, and a result must not make it again (a later Inform registers the router,
    as an unclaimed one)."""


class ChangedError(StoreError):
    """A read-modify-write found the record changed since it was read (another request,
    a CPE's session): read it again and redo the change."""


#: What an operator's write does with the record's MAC address, decided by the store in
#: the write's transaction: "set" the one the record holds (the operator wrote it), "keep"
#: the one stored (also one the router reported meanwhile), or "remove" the operator's (a
#: MAC the router reported of itself stays: its next session would report it again)
MacChange = Literal["set", "remove", "keep"]

#: ``write_device(..., expect=ABSENT)``: the write creates; no record has this serial yet
ABSENT = "absent"


class DuplicateError(ConflictError):
    """A unique value already taken; ``field`` names it as the client sent it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
