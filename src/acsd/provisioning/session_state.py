"""What one session's provisioning driver holds: the services it runs with, what the CPE
said and what the session decided. The phases work on it (:mod:`read_phase`,
:mod:`apply_phase`, :mod:`end_phase`); :class:`acsd.provisioning.driver.ProvisioningDriver`
runs them. A session parked for another worker is this state, pickled (see
``export_state``): a change of its shape bumps ``acsd.cwmp.session.PARKED_FORMAT``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from acsd.provisioning.absent import AbsentHints
from acsd.provisioning.desired import Desired
from acsd.provisioning.jobs import Outcome, RetryPolicy
from acsd.provisioning.plan import Change, Plan
from acsd.provisioning.profiles import Profile, ProfileSet
from acsd.provisioning.status import Extraction, ReadPlan
from acsd.store.base import CpeIdentity, DeviceRecord, Store

#: the empty set the sets that most sessions leave empty start as (see Fetch.emptied)
NOTHING: frozenset[str] = frozenset()


@dataclass(slots=True)
class DriverSettings:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: default for devices; each record has its own switch
    drift_check: bool = True
    #: seconds between drift checks of one CPE (0 = every session)
    drift_check_interval: float = 0.0
    #: DNS servers of static lines (empty: the ones each router reported)
    static_wan_dns: tuple[str, ...] = ()
    #: PeriodicInformInterval acsd sets on every CPE (seconds)
    periodic_interval: int = 300
    #: seconds between reads of the whole status objects; between them sessions read the
    #: CPE's read plan (0 = read the whole objects every session)
    full_read_interval: float = 3600.0
    #: seconds after which the names a CPE lacks are asked for again (apart), at its next
    #: read of the whole objects: a listing that left out a name the CPE has (or a module
    #: plugged in later) must not hide it until a BOOTSTRAP or new firmware (0 = never)
    absent_recheck_interval: float = 7 * 86400.0
    #: cwmp.max_body: a read split for an answer over it grows back while answers stay
    #: far below it
    max_body: int = 1024 * 1024
    #: acsd's STUN server as routers reach it, set on every router: (STUNServerAddress,
    #: STUNServerPort, keepalive seconds); None: STUN is off and left as routers have it
    stun: tuple[str, int, int] | None = None
    #: the shared password a router that came with the previous one is given, as this
    #: process has it now (CpeAuthenticator.rotate_to, reloaded on SIGHUP; None when no
    #: previous_password is set): read when a session that gives it is taken up from
    #: another worker, whose parked state holds none (acsd.provisioning.rotation)
    rotate_to: Callable[[], str | None] | None = None


@dataclass
class Fetch:
    """The read of one session: first one batch (and the names the CPE's kind lacks, one
    per call), then by halves after a 9005."""

    queue: list[list[str]] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)
    absent: set[str] = field(default_factory=set)
    #: names that faulted alone and that the session went on without
    skipped: list[str] = field(default_factory=list)
    #: names that faulted alone, taught to the CPE's kind once the read is over, and only
    #: if some name answered (see ReadPhase._read_over)
    lacking: list[str] = field(default_factory=list)
    #: setting paths and table objects under a name that faulted alone again (see _on_gpv)
    #: -> why: not written this session, and the job says so
    unreadable: dict[str, str] = field(default_factory=dict)
    #: table objects of the operator's rows (DHCP reservations) that faulted 9005 alone:
    #: taken as empty (ReadPhase._empty_table) until an AddObject there says otherwise
    #: (a frozenset, replaced when it changes: an empty set is 216 bytes of every open
    #: session, and this one, as ``unkept`` and ``Desired.implied``, stays empty in most)
    emptied: frozenset[str] = NOTHING
    #: on a CPE that does not expand partial paths: the GetParameterNames still to send
    #: (path, NextLevel), the names they listed, and the read's names waiting for them;
    #: None until such a read starts (ReadPhase._list_first): every open session holds a
    #: Fetch, and empty containers are ~330 bytes of each
    listing: list[tuple[str, bool]] | None = None
    listed: set[str] | None = None
    unlisted: list[str] | None = None
    #: a batch that faulted for a name the CPE lacks, waiting for the listing (NextLevel
    #: true) of ``probing``: the data model's root, or the one object all its names are
    #: in (ReadPhase._on_probe); None when none is
    probe: list[str] | None = None
    probing: str = ""
    #: when ``probe`` is one name that faulted alone with another code than an unknown
    #: name's (9002): that fault (code, string), handled as usual if the listing shows
    #: the name there (ReadPhase._check_listed)
    probe_fault: tuple[int, str] | None = None
    #: the objects listed so for this session (once each is enough: they do not change)
    probed: tuple[str, ...] = ()
    #: names the CPE's kind lacked with their top-level object, for a listing of the root
    #: to judge once the read's first call is answered (ReadPhase._listed_apart)
    judge: list[str] | None = None
    started: bool = False
    failed: bool = False
    #: why the read failed (for the job's note): the fault, and the name when one alone
    failure: str = ""
    splits: int = 0
    #: with a read split (readChunk): the most names one call would have had without it,
    #: and the largest answer of those calls in bytes
    widest: int = 0
    largest: int = 0

    def answered(self) -> bool:
        """The read was answered to its end: nothing is left to ask, and it did not fail.
        A session cut before then (the CPE rebooted, went silent, sent garbage) read part
        of what it asked for, or none of it."""
        return (
            self.started
            and not self.failed
            and not self.queue
            and self.probe is None
            and self.judge is None
            and not self.listing
        )


@dataclass
class Apply:
    """The apply phase: the plan, the RPCs still to send and what came of those sent."""

    plan: Plan
    adds: list[Any]
    changes: list[Change]
    deletes: list[str]
    reboot: bool = False
    spv_sent: list[Change] = field(default_factory=list)
    spv_tries: int = 0
    #: after a fault that named no parameter: the parts of the refused batch, to send one
    #: SetParameterValues each (halved again while a part is refused the same way)
    spv_parts: list[list[Change]] = field(default_factory=list)
    spv_splits: int = 0
    #: the code and text of the last refusal that named no parameter: what the changes
    #: of a split batch that the session could not send any more are recorded with
    bare_fault: tuple[int, str] | None = None
    #: rows created this session: row path ("...IPv4Forwarding.4.") -> (table, key)
    added: dict[str, tuple[str, str]] = field(default_factory=dict)
    outcome: Outcome = field(default_factory=Outcome)
    #: deletes sent after the SetParameterValues: rows made of settings (the old static
    #: line's address and route stay until the new one's are in place)
    late: list[str] = field(default_factory=list)
    #: fields of new rows a group can do without (the line's DNS servers), set in a
    #: SetParameterValues of their own once the group's is done: a DNS entry equal to
    #: one the DHCP client still holds breaks the table's unique key on a strict CPE
    deferred: list[Change] = field(default_factory=list)
    #: tables the CPE added rows to or deleted rows from this session
    reshaped: set[str] = field(default_factory=set)
    #: rows the CPE deleted this session (row paths)
    deleted: set[str] = field(default_factory=set)
    reread: bool = False
    #: rows added on a CPE that does not expand partial paths, whose fields are listed
    #: before any is set (an AddObject may make a row without them)
    new_rows: list[str] = field(default_factory=list)


class SessionState:
    """The state of one session's driver (one per session)."""

    def __init__(
        self,
        store: Store,
        profiles: ProfileSet,
        settings: DriverSettings | None = None,
        hints: AbsentHints | None = None,
        wake: Callable[[DeviceRecord], None] | None = None,
    ) -> None:
        self.store = store
        self.profiles = profiles
        self.settings = settings or DriverSettings()
        #: what CPEs of each kind lack, shared by the sessions of this process
        self.hints = hints if hints is not None else AbsentHints()
        #: asks the router of a record (as stored) to connect: a Connection Request
        self.wake = wake
        self.record: DeviceRecord | None = None
        self.profile: Profile | None = None
        self.identity: CpeIdentity | None = None
        self.values: dict[str, list[Any]] = {}
        #: names of the Inform outside the profile's: read this session, not stored
        self.unkept: frozenset[str] = NOTHING
        self.events: list[str] = []
        self.bootstrap = False
        #: the CPE reports another SoftwareVersion than its record holds (an upgrade)
        self.new_firmware = False
        #: what the record says the CPE lacks is asked for again this session, apart
        #: (DriverSettings.absent_recheck_interval)
        self.recheck_absent = False
        self.desired = Desired()
        self.memory: dict[str, Any] = {}
        #: the record's provisioning memory as stored, as JSON (records.restate; None: no
        #: record, or it is still on the record): ``memory`` is compared with it at the
        #: end only, so an open session holds this text rather than a second decoded copy
        #: (~0.7 KB of the ~20 an open session may take)
        self.stored_memory: str | None = None
        self.read_settings = False
        #: the operator asked for wifi/DHCP (beyond what acsd sets on every CPE)
        self.operator_settings = False
        #: Connection Request credentials made up this session, to keep on the record
        self.new_cr: tuple[str, str] | None = None
        self.fetch = Fetch()
        #: the CPE answered the outstanding request, over cwmp.max_body (not read)
        self.answer_too_large_seen = False
        self.apply: Apply | None = None
        #: the leaves this session reads instead of the whole objects (None: the whole)
        self.plan: ReadPlan | None = None
        # Derived from ``values`` and rebuilt after a worker handoff (see _TRANSIENT).
        self._flat_values: dict[str, str] | None = None
        self._extraction: Extraction | None = None
        #: (flat values, status, identity) of the last extraction
        self._extracted: tuple[dict[str, str], dict[str, Any], dict[str, Any]] | None = None
