"""Drives each CWMP session for acsd: identify the CPE, read it, put right what differs,
keep what it said.

This is the seam between the protocol (``cwmp/``), the vendor knowledge (``profiles``) and
the records (``store/``). A session runs in two phases:

1. read: one GetParameterValues for the profile's status names and, when the device has
   wifi/DHCP settings to hold, the setting paths. A CPE that lacks some names (fault 9005
   fails the whole call) is asked again by halves down to single names; what it lacks is
   remembered, and so is what CPEs of its kind lack (:mod:`acsd.provisioning.absent`),
   which the next one of that kind is then asked for apart.
   The status names are partial paths (whole objects, ~100 values). Such a read also
   yields the CPE's read plan: the ~40 leaves status actually comes from. Until the plan
   is ``full_read_interval`` old (or the CPE boots, a leaf is gone, a ref moved) sessions
   read just those leaves, and their values are merged into the stored tree by the store.
2. apply: :func:`plan_changes` compares; DeleteObject for rows that should not be there,
   AddObject for missing table rows, ONE SetParameterValues with every difference
   (ParameterKey = the record's revision), Reboot only if a profile says a changed value
   needs it. A fault on some parameters is recorded on them (with back-off) and the
   rest is sent again, so one bad value does not hold back the others.
"""

from __future__ import annotations

import copy
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from acsd import clock
from acsd.cwmp import rpc
from acsd.cwmp.session import CwmpSession, RetryLater
from acsd.cwmp.soap import sendable
from acsd.devices import DeviceInputError, check_lan
from acsd.log import get_logger, log_failure
from acsd.provisioning.absent import AbsentHints, Kind, kind_of
from acsd.provisioning.apn import (
    SIM_KEYS,
    add_apn_name,
    apn_for_another_sim,
    apn_refused_here,
    record_apn_session,
    sim_numbers,
    sim_report,
)
from acsd.provisioning.desired import Desired, desired_state
from acsd.provisioning.internet import (
    add_internet_settings,
    needs_line_dns,
    reported_dns,
    with_line_dns,
)
from acsd.provisioning.jobs import (
    AFTER_REBOOT,
    PENDING,
    Outcome,
    RetryPolicy,
    close_job,
    forget_reboot_note,
    new_memory,
    record_outcome,
    refused_for_good,
)
from acsd.provisioning.plan import (
    Change,
    Plan,
    along_targets,
    drop_groups,
    group_of,
    mac_key,
    needed_by_group,
    plan_changes,
    row_changes,
    row_fault_path,
    row_signature,
    stopped_groups,
    table_at,
)
from acsd.provisioning.profiles import Profile, ProfileSet, detect_root
from acsd.provisioning.status import (
    Extraction,
    ReadPlan,
    fetch_names,
    fields_read_at,
    read_plan,
    untyped,
)
from acsd.store.base import (
    RETRY_UNAVAILABLE,
    VERSION_CHARS,
    CpeIdentity,
    DeviceRecord,
    SessionResult,
    StaleResultError,
    Store,
    log_store_failure,
    store_unavailable,
)

log = get_logger("acsd.session")

#: the settings that carry acsd's Connection Request credentials
_CR_SETTINGS = frozenset({"management.cr_username", "management.cr_password"})

#: SetParameterValues attempts in one session (each drops the parameters the CPE named).
MAX_SPV_TRIES = 3
#: times one session halves a SetParameterValues the CPE refused without naming a
#: parameter (enough to find one culprit among 2**8 blocks of settings)
MAX_SPV_SPLITS = 8
#: times one session halves a GetParameterValues the CPE failed as a whole (9002 internal
#: error, 9004 resources exceeded: weak CPEs that cannot build a large answer); enough to
#: read ~100 names ten at a time
MAX_GPV_SPLITS = 32
#: faults that say the answer was too much for the CPE, not that a name is wrong
TOO_LARGE = frozenset({9002, 9004})
#: faults a CPE answers for a name it does not have: 9005 as TR-069 says, 9003 (invalid
#: arguments) as some firmware does
UNKNOWN_NAME = frozenset({9005, 9003})
#: What acsd answers to a CPE's GetRPCMethods.
ACS_METHODS = [
    "Inform",
    "GetRPCMethods",
    "TransferComplete",
    "AutonomousTransferComplete",
    "DUStateChangeComplete",
    "AutonomousDUStateChangeComplete",
]


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
    #: cwmp.max_body: a read split for an answer over it grows back while answers stay
    #: far below it
    max_body: int = 1024 * 1024


@dataclass
class _Fetch:
    """The read of one session: first one batch (and the names the CPE's kind lacks, one
    per call), then by halves after a 9005."""

    queue: list[list[str]] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)
    absent: set[str] = field(default_factory=set)
    #: names that faulted alone and that the session went on without
    skipped: list[str] = field(default_factory=list)
    #: setting paths and table objects under a name that faulted alone again (see _on_gpv)
    #: -> why: not written this session, and the job says so
    unreadable: dict[str, str] = field(default_factory=dict)
    started: bool = False
    failed: bool = False
    splits: int = 0
    #: with a read split (readChunk): the most names one call would have had without it,
    #: and the largest answer of those calls in bytes
    widest: int = 0
    largest: int = 0


@dataclass
class _Apply:
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
    reread: bool = False


class ProvisioningDriver:
    """One per session (see :class:`acsd.cwmp.session.SessionDriver`)."""

    def __init__(
        self,
        store: Store,
        profiles: ProfileSet,
        settings: DriverSettings | None = None,
        hints: AbsentHints | None = None,
    ) -> None:
        self.store = store
        self.profiles = profiles
        self.settings = settings or DriverSettings()
        #: what CPEs of each kind lack, shared by the sessions of this process
        self.hints = hints if hints is not None else AbsentHints()
        self.record: DeviceRecord | None = None
        self.profile: Profile | None = None
        self.identity: CpeIdentity | None = None
        self.values: dict[str, list[Any]] = {}
        #: names of the Inform outside the profile's: read this session, not stored
        self.unkept: set[str] = set()
        self.events: list[str] = []
        self.bootstrap = False
        #: the CPE reports another SoftwareVersion than its record holds (an upgrade)
        self.new_firmware = False
        self.desired = Desired()
        self.memory: dict[str, Any] = {}
        self.read_settings = False
        #: the operator asked for wifi/DHCP (beyond what acsd sets on every CPE)
        self.operator_settings = False
        #: Connection Request credentials made up this session, to keep on the record
        self.new_cr: tuple[str, str] | None = None
        self.fetch = _Fetch()
        self.apply: _Apply | None = None
        #: the leaves this session reads instead of the whole objects (None: the whole)
        self.plan: ReadPlan | None = None
        # Derived from ``values`` and rebuilt after a worker handoff (see _TRANSIENT).
        self._flat_values: dict[str, str] | None = None
        self._extraction: Extraction | None = None
        #: (flat values, status, identity) of the last extraction
        self._extracted: tuple[dict[str, str], dict[str, Any], dict[str, Any]] | None = None

    # --- moving between workers ----------------------------------------------------------

    #: references to this process's services, not state: a thawing worker supplies its own
    _SERVICES = frozenset({"store", "profiles", "settings", "hints"})
    #: caches of what ``values`` holds: not worth their bytes in a parked session
    _TRANSIENT = frozenset({"_flat_values", "_extraction", "_extracted"})

    def export_state(self) -> dict[str, Any]:
        skip = self._SERVICES | self._TRANSIENT
        state = {k: v for k, v in vars(self).items() if k not in skip}
        state["profile"] = self.profile.name if self.profile is not None else None
        return state

    def import_state(self, state: dict[str, Any]) -> None:
        state = dict(state)
        name = state.pop("profile", None)
        for key, value in state.items():
            setattr(self, key, value)
        self.profile = None
        if name is not None:
            try:
                self.profile = self.profiles.get(name)
            except KeyError:  # reloaded away meanwhile: choose again, as a new session would
                root = _root_of(self.values) or "Device."
                self.profile = self.profiles.select(self.identity, root)

    # --- SessionDriver -------------------------------------------------------------------

    async def inform(self, session: CwmpSession, inform: rpc.Inform) -> rpc.Fault | None:
        dev = inform.device_id
        self.events = inform.event_codes()
        self.bootstrap = "0 BOOTSTRAP" in self.events
        for p in inform.parameters:
            self.values[p.name] = [p.value, p.type]
        self._flat_values = None
        try:
            # Without the parameter tree: a session seldom needs it (see finish()).
            self.record = await self.store.find_device_for_cpe(dev.serial_number, for_session=True)
        except Exception as exc:
            if (why := store_unavailable(exc)) is not None:
                # The database's trouble, which passes: the CPE is told when to come back
                # (503 + Retry-After), as at a session's end, rather than sent a fault.
                log.warning("session.lookup_failed", serial=dev.serial_number, error=why)
                raise RetryLater("database unavailable", RETRY_UNAVAILABLE) from exc
            log.exception("session.lookup_failed", serial=dev.serial_number)
            return rpc.acs_fault(8002, "device lookup failed; retry later")
        root = _root_of(self.values)
        if root is None and self.record is not None and self.record.profile:
            # an Inform without a DeviceInfo path: the root of the profile it had
            known = self.record.profile
            root = self.profiles.get(known).root if known in self.profiles else None
        self.identity = CpeIdentity(
            oui=dev.oui,
            product_class=dev.product_class,
            serial_number=dev.serial_number,
            manufacturer=dev.manufacturer,
            software_version=self._version(root, "DeviceInfo.SoftwareVersion"),
            hardware_version=self._version(root, "DeviceInfo.HardwareVersion"),
            model_name=self.record.model_name if self.record else None,
        )
        if self.record is not None and self.record.oui and self.record.oui != dev.oui:
            # TR-069 makes a serial number unique per OUI and product class only, and acsd
            # keys records by serial number: another maker's router with the same serial
            # (a default one some firmware ships) would take this record's settings.
            log.warning(
                "session.oui_changed",
                serial=dev.serial_number,
                device=self.record.id,
                before=self.record.oui,
                after=dev.oui,
                product_class=dev.product_class,
            )
        if root is None:
            # No parameter and no profile of its own to tell the root by: the vendor
            # profiles it matches may (a Huawei gateway's are all TR-098).
            root = self.profiles.vendor_root(self.identity)
        self.profile = await self._profile_for(root or "Device.")
        # An Inform may carry any number of names (value changes, a hostile CPE's
        # inventions), and the stored tree keeps every name it is given until a read
        # replaces it: what the profile does not read serves this session only.
        keeps = self.profile.keeps
        self.unkept = {p.name for p in inform.parameters if not keeps(p.name)}
        record = self.record
        self.memory = new_memory(record.provisioning if record else None, bootstrap=self.bootstrap)
        self.new_firmware = (
            record is not None
            and record.software_version is not None
            and self.identity.software_version is not None
            and self.identity.software_version != record.software_version
        )
        if self.new_firmware:
            # and may take what the old one refused
            self.memory["refusedOptional"] = {}
        # New firmware may have what the old one lacked: the record's list is then only a
        # list of suspects (asked for apart), as on a bootstrap.
        if record is not None and not self.bootstrap and not self.new_firmware:
            self.fetch.absent = set(record.absent_paths)
            if record.absent_paths and (kind := self._kind()) is not None:
                # What this CPE is known to lack, CPEs of its kind likely lack too: after a
                # restart, periodic sessions teach the hints before a storm of BOOTSTRAPs.
                self.hints.absent(kind, record.absent_paths)
        # A device being deleted gets nothing new: its session only releases it.
        if record is None or record.state != "DELETING":
            self.desired = desired_state(record.wifi, record.dhcp) if record else Desired()
            if record is not None and record.internet_account:
                # Only routers an internet account names pay for this lookup.
                try:
                    dns = list(self.settings.static_wan_dns)
                    await add_internet_settings(
                        self.store, record.id, self.desired, clock.now(), dns=dns
                    )
                except Exception:
                    log.exception("session.account_lookup_failed", serial=dev.serial_number)
                    return rpc.acs_fault(8002, "internet account lookup failed; retry later")
            self.operator_settings = not self.desired.empty
            self._add_management(dev.serial_number)
        held = record is not None and self.memory.get("appliedRevision") == record.revision
        drift = (
            self.settings.drift_check
            and (record is None or record.drift_check)
            and self._drift_check_due()
        )
        # New firmware may have reset settings, or have what the old one lacked.
        fresh = self.bootstrap or self.new_firmware
        self.read_settings = not self.desired.empty and (fresh or drift or not held)
        self.plan = self._usable_plan(record)
        # With its settings read anyway, the session need not compare its stored APN.
        compare = not self.read_settings
        if await add_apn_name(
            self.store,
            self.profile,
            record,
            self.values,
            self.desired,
            compare=compare,
        ):
            self.read_settings = True  # the router's APN is not its SIM's network's (yet)
        # TR-069 allows 64 EventStructs; a CPE sending thousands must not get a log line
        # of megabytes at every session.
        extra = {"more_events": len(self.events) - 64} if len(self.events) > 64 else {}
        log.info(
            "session.inform",
            serial=dev.serial_number,
            events=self.events[:64],
            profile=self.profile.name,
            known=record is not None,
            retry=inform.retry_count,
            **extra,
        )
        return None

    def _save_failed(self, session: CwmpSession, exc: Exception, complete: bool) -> None:
        """A session's result that could not be saved (or its stored tree read for it),
        from the ``except`` block. A session that ran to its end must not look done to the
        CPE: while the database is unavailable it is told to come back (503 + Retry-After:
        its next session redoes this), on any other error the session fails (raised) and
        the CPE retries it. An unfinished one's result is only lost."""
        passing = store_unavailable(exc)
        log_failure(log, "session.save_failed", passing, serial=session.serial)
        if complete:
            if passing is not None:
                raise RetryLater("database unavailable", RETRY_UNAVAILABLE) from exc
            raise exc

    async def _profile_for(self, root: str) -> Profile:
        """The profile that serves this CPE: the most specific vendor profile whose [match]
        takes it; else the one its record's model names (a router under an operator's own
        brand, which no [match] knows); else the base profile of its root."""
        assert self.identity is not None
        found = self.profiles.matching(self.identity, root)
        if found:
            return found[0]
        return await self._model_profile(root) or self.profiles.for_root(root)

    async def _model_profile(self, root: str) -> Profile | None:
        record = self.record
        if record is None or not record.model:
            return None
        # Only routers no profile matches get here: no look-up on a session that has one.
        try:
            model = await self.store.get_model(record.model)
        except Exception as exc:
            log_store_failure(log, "session.model_lookup_failed", exc, serial=record.serial_number)
            return None
        if model is None or not model.profile or model.profile not in self.profiles:
            return None  # the API checks the name; a reload may have taken it away since
        profile = self.profiles.get(model.profile)
        if profile.root != root:
            log.warning(
                "session.model_profile_unusable",
                serial=record.serial_number,
                model=model.id,
                profile=profile.name,
                profile_root=profile.root,
                root=root,
            )
            return None
        return profile

    async def cpe_request(self, session: CwmpSession, request: rpc.CpeRequest) -> rpc.Message:
        if isinstance(request, rpc.GetRPCMethods):
            return rpc.GetRPCMethodsResponse(methods=list(ACS_METHODS))
        if isinstance(request, rpc.TransferComplete | rpc.AutonomousTransferComplete):
            log.info(
                "session.transfer_complete",
                serial=session.serial,
                method=request.METHOD,
                fault=request.fault.code,
            )
            return request.RESPONSE()
        if isinstance(request, rpc.DUStateChangeComplete | rpc.AutonomousDUStateChangeComplete):
            log.info(
                "session.du_state_change_complete", serial=session.serial, method=request.METHOD
            )
            return request.RESPONSE()
        if isinstance(request, rpc.RequestDownload):
            return rpc.acs_fault(8001, "acsd offers no files to download")
        return rpc.acs_fault(8000, request.METHOD)

    async def next_request(self, session: CwmpSession) -> rpc.AcsRequest | None:
        if self.profile is None:
            return None
        if not self.fetch.started:
            self.fetch.started = True
            names = self._read_names()
            if names:
                self.fetch.queue.extend(self._chunked(self._apart(names) or [names]))
        if self.fetch.queue:
            return rpc.GetParameterValues(names=self.fetch.queue[0])
        if self.read_settings and not self.fetch.failed and self.apply is None:
            self.apply = self._plan()
            if self.settings.drift_check_interval > 0:
                self.memory["checkedAt"] = int(clock.now())
        if self.apply is not None:
            return self._next_apply_request()
        return None

    def answer_too_large(self, session: CwmpSession, request: rpc.AcsRequest) -> None:
        """The CPE's answer to ``request`` was over ``max_body`` (the session ends): a read
        of several names is asked for in calls of half as many from the next session on
        (kept in the device's memory), so one large table does not stop every session."""
        if not isinstance(request, rpc.GetParameterValues) or len(request.names) < 2:
            return  # one name alone: only a larger cwmp.max_body helps
        # rounded up: an odd count is still two calls, and one doubling covers it again
        limit = (len(request.names) + 1) // 2
        if limit < (self.memory.get("readChunk") or limit + 1):
            self.memory["readChunk"] = limit
            # what was too large: whole objects, or only the read plan's leaves
            self.memory["readChunkWhole"] = self.plan is None
            log.warning(
                "session.read_split",
                serial=session.serial,
                names=len(request.names),
                per_call=limit,
            )

    def _grow_read_chunk(self) -> None:
        """A read split once (readChunk) doubles again while every answer of a session is
        at most a quarter of ``max_body`` (the doubled calls then answer at most half of
        it), and goes once calls need no split: one large table must not cost the router
        more calls for good."""
        chunk = self.memory.get("readChunk")
        fetch = self.fetch
        if not chunk or fetch.failed or not fetch.largest or fetch.queue:
            return
        if self.plan is not None and self.memory.get("readChunkWhole", True):
            # The leaves a session reads between full reads answer far less than the
            # whole objects that were too large: they say nothing about those.
            return
        if fetch.largest * 4 > self.settings.max_body:
            return
        grown = chunk * 2 if chunk * 2 < fetch.widest else None
        self.memory["readChunk"] = grown
        if grown is None:
            self.memory.pop("readChunkWhole", None)
        log.info(
            "session.read_grown",
            serial=self.identity.serial_number if self.identity else "",
            per_call=grown,
            largest_answer=fetch.largest,
        )

    def _chunked(self, calls: list[list[str]]) -> list[list[str]]:
        """``calls`` with none longer than this CPE's ``readChunk``, if it has one."""
        limit = self.memory.get("readChunk")
        if not limit:
            return calls
        self.fetch.widest = max(self.fetch.widest, *(len(names) for names in calls))
        if all(len(names) <= limit for names in calls):
            return calls
        return [names[i : i + limit] for names in calls for i in range(0, len(names), limit)]

    async def response(
        self, session: CwmpSession, request: rpc.AcsRequest, response: rpc.Message
    ) -> None:
        if isinstance(request, rpc.GetParameterValues):
            self._on_gpv(session, response)
        elif self.apply is not None:
            self._on_apply_response(session, request, response)

    async def finish(self, session: CwmpSession, *, complete: bool, reason: str) -> None:
        if self.identity is None or self.profile is None:
            return
        now = clock.now()
        new_plan = None
        leaves_only = self._leaves_only()
        if leaves_only:
            # Everything status needs was read this session: no need for the stored tree,
            # the store merges these values into it.
            params, reset = self._session_params(), False
            flat = self._flat() if params is self.values else untyped(params)
        else:
            try:
                params, reset = await self._merged_params(), True
            except Exception as exc:
                self._save_failed(session, exc, complete)
                return
            flat = untyped(params)
            if self.plan is None and self.fetch.started and not self.fetch.failed:
                new_plan = read_plan(self.profile, flat, now).to_json()
        status, ident = self._status_and_identity(flat, shared=leaves_only)
        sim_read = self._sim_read(flat)
        if self.unkept:
            params = {k: v for k, v in params.items() if k not in self.unkept}
        if ident.get("modelName"):
            self.identity.model_name = ident["modelName"]
        # A session that ends without its CPE (silence, timeout) last heard from it then,
        # not now: lastComm and online say when the router last spoke.
        heard = now if complete else now - max(0.0, time.monotonic() - session.last_active)
        result = SessionResult(
            identity=self.identity,
            at=heard,
            device_id=self.record.id if self.record else None,
            remote_ip=session.remote_ip,
            events=self.events,
            params=params,
            reset_params=reset,
            read_plan=new_plan,
            # none (the stored ones kept) unless read: a session that ends before its
            # read would otherwise say the router has no SIM
            sim=sim_numbers(ident) if sim_read else None,
            status=status,
            mac_address=ident.get("macAddress"),
            profile=self.profile.name,
            periodic_interval=_int_or_none(ident.get("periodicInterval")),
            connection_request_url=ident.get("connectionRequestUrl"),
            absent_paths=self._absent_to_save(reset),
            since=self.record.last_inform if self.record is not None else None,
            bound_serial=self.record.serial_number if self.record is not None else None,
        )
        if self.record is not None and self.record.state == "DELETING":
            # Released: the record goes; a later Inform registers the CPE as unclaimed.
            await self.store.delete_device(self.record.id)
            log.info("session.released", serial=session.serial, device=self.record.id)
            return
        # a SetParameterValues the CPE got but never answered may well be applied
        unanswered = session.outstanding is not None and isinstance(
            session.outstanding[1], rpc.SetParameterValues
        )
        self._settle(result, unanswered=unanswered)
        try:
            device_id = await self.store.save_session(result)
        except StaleResultError:
            # The CPE started over (a reboot) and that session committed first: what this
            # one learned is older, and nothing of it is written.
            log.info("session.result_dropped", serial=session.serial, reason="newer session")
            return
        except Exception as exc:
            self._save_failed(session, exc, complete)
            return
        # The APN device with this router's SIM: a second, small write (seed 003).
        await record_apn_session(
            self.store,
            sim_report(
                ident,
                status,
                at=result.at,
                router=device_id,
                serial=session.serial,
                mvno_account=self.record.mvno_account if self.record is not None else None,
                sim_changed=result.sim is not None
                and (self.record is None or self.record.sim != result.sim),
                sim_read=sim_read,
            ),
        )
        log.info(
            "session.end",
            serial=session.serial,
            device=device_id,
            complete=complete,
            reason=reason,
            rpcs=session.rpc_count,
            state=result.state,
        )

    def _add_management(self, serial: str) -> None:
        """What acsd sets on every CPE: its own Connection Request credentials (username =
        serial, a random password kept per device) and the periodic Inform."""
        record = self.record
        username = (record.cr_username if record else None) or serial
        password = record.cr_password if record else None
        if not password:
            password = secrets.token_urlsafe(18)
            self.new_cr = (username, password)
        self.desired.settings.update(
            {
                "management.cr_username": username,
                "management.cr_password": password,
                "management.periodic_enable": True,
                "management.periodic_interval": self.settings.periodic_interval,
            }
        )

    def _drift_check_due(self) -> bool:
        """Whether this session checks applied settings (``drift_check_interval``)."""
        interval = self.settings.drift_check_interval
        if interval <= 0:
            return True
        # A reboot may bring back an older configuration, and a value change may be a user
        # at the router's web page: neither waits for the interval.
        if "1 BOOT" in self.events or "4 VALUE CHANGE" in self.events:
            return True
        # A repair the CPE refused (or left pending) is retried on the retry policy's
        # schedule (retry_base), not the interval's: its faults say when.
        job = self.memory.get("job") or {}
        if self.memory.get("faults") or job.get("state") == PENDING:
            return True
        at = self.memory.get("checkedAt")
        return at is None or not 0 <= clock.now() - at < interval

    # --- read phase ------------------------------------------------------------------------

    def _usable_plan(self, record: DeviceRecord | None) -> ReadPlan | None:
        """The record's read plan if this session may read just its leaves."""
        interval = self.settings.full_read_interval
        if record is None or not record.read_plan or interval <= 0 or self.profile is None:
            return None
        # A boot may bring new firmware, interfaces or a changed WAN: read it all.
        if self.bootstrap or self.new_firmware or "1 BOOT" in self.events:
            return None
        plan = ReadPlan.from_json(record.read_plan)
        record.read_plan = None  # the session holds the plan, not its JSON as well
        if plan is None or (plan.profile, plan.reads) != (self.profile.name, self.profile.reads):
            return None
        age = clock.now() - plan.at
        return plan if 0 <= age < interval else None

    def _read_whole(self, session: CwmpSession, reason: str) -> None:
        """Give up the plan for this session: read the whole objects after all."""
        log.debug("session.read_whole", serial=session.serial, reason=reason)
        self.plan = None
        names = self._read_names()
        if names:
            self.fetch.queue.extend(self._chunked([names]))

    def _flat(self) -> dict[str, str]:
        """``values`` without the types, built once per change of ``values``."""
        if self._flat_values is None:
            self._flat_values = untyped(self.values)
        return self._flat_values

    def _read_names(self) -> list[str]:
        assert self.profile is not None
        flat = self._flat()
        if self.plan is not None:
            absent = self.fetch.absent
            names = [p for p in self.plan.paths if p not in flat and p not in absent]
        else:
            names = fetch_names(self.profile, absent=self.fetch.absent, already=flat)
        if self.read_settings:
            partials = [n for n in names if n.endswith(".")]
            targets = [
                t for key in self.desired.settings for t in self.profile.settings.get(key, ())
            ]
            targets += [t for _key, t in along_targets(self.profile, self.desired.names)]
            wanted = [t.path for t in targets]
            wanted += [path for t in targets for path, _test in t.when]
            wanted += [
                spec.object
                for name, spec in self.profile.tables.items()
                if name in self.desired.tables or spec.when in self.desired.settings
            ]
            for name in wanted:
                if name in self.fetch.absent or name in names:
                    continue
                if any(name.startswith(p) for p in partials):
                    continue
                names.append(name)
        return names

    def _kind(self) -> Kind | None:
        if self.profile is None or self.identity is None:
            return None
        return kind_of(self.profile.name, self.identity)

    def _suspects(self) -> frozenset[str]:
        """Names this CPE may well lack: what CPEs of its kind lacked and, on a bootstrap
        or a firmware change (which forget the record's list), what it lacked."""
        kind = self._kind()
        suspects = self.hints.get(kind) if kind is not None else frozenset()
        # This CPE's own: a sibling that answers a name must not make it fail the read
        # of this one again (and the hints do not outlive the process)
        suspects = suspects.union(self.memory.get("faultedAlone", ()))
        forgot = self.bootstrap or self.new_firmware
        if forgot and self.record is not None and self.record.absent_paths:
            suspects = suspects.union(self.record.absent_paths)
        return suspects

    def _apart(self, names: list[str]) -> list[list[str]]:
        """``names`` as calls in which a suspect cannot fail the others: the rest in one,
        each suspect in its own. Empty when none of ``names`` is a suspect."""
        suspects = self._suspects()
        if suspects.isdisjoint(names):
            return []
        rest = [n for n in names if n not in suspects]
        return ([rest] if rest else []) + [[n] for n in names if n in suspects]

    def _on_gpv(self, session: CwmpSession, response: rpc.Message) -> None:
        names = self.fetch.queue.pop(0) if self.fetch.queue else []
        if isinstance(response, rpc.GetParameterValuesResponse):
            self.fetch.largest = max(self.fetch.largest, session.answer_size)
            objects = tuple(name for name in names if name.endswith("."))
            if objects and self.apply is not None and self.apply.reread:
                # The read after the changes replaces what was known below its objects:
                # rows the CPE no longer has must not outlive it (see _reread_names).
                for name in [n for n in self.values if n.startswith(objects)]:
                    del self.values[name]
            asked = set(names)
            for p in response.parameters:
                # Only what was asked: names a CPE adds on its own would pile up in the
                # stored tree, session after session (a hostile one could fill the disk).
                if p.name in asked or p.name.startswith(objects):
                    self.values[p.name] = [p.value, p.type]
            self._flat_values = None
            self.fetch.ok.extend(names)
            if self.fetch.skipped or self.fetch.unreadable:
                self._read_after_all(names)
            if len(names) == 1 and (kind := self._kind()) is not None:
                self.hints.present(kind, names)
            if len(names) == 1:
                self._no_longer_faulting(names[0])
            if self.plan is not None and not self.fetch.queue:
                assert self.profile is not None
                flat = self._flat()
                # every part of a read asked in halves, not only the last
                if any(name not in flat and not name.endswith(".") for name in self.fetch.ok):
                    # Some firmware leaves out a name it lacks instead of faulting 9005.
                    self._read_whole(session, "the CPE left out leaves of the read plan")
                    return
                # kept: unless a change is applied, finish() extracts from the same values
                self._extraction = Extraction(self.profile, flat, shared=True)
                if not self._extraction.refs_hold(self.plan):
                    self._read_whole(session, "a ref points elsewhere now")
            return
        assert isinstance(response, rpc.Fault)
        unknown = response.code in UNKNOWN_NAME
        if unknown and self.plan is not None:
            # A leaf of the plan is gone (new firmware, a removed object): read it all, which
            # also finds out what exactly is missing.
            self.fetch.queue.clear()
            self._read_whole(session, "a leaf of the read plan is gone")
        elif unknown and len(names) > 1:
            # One unknown name fails the whole call: find out which. Names that another
            # CPE of this kind lacked meanwhile go apart; else by halves, so k unknown names
            # among n cost about 2k*log2(n/k) calls, not n (2n-1 at worst, a CPE that knows
            # none of them: ~80 for the longest list, within max_requests_per_session).
            half = len(names) // 2
            self.fetch.queue[:0] = self._apart(names) or [names[:half], names[half:]]
        elif unknown and names:
            self.fetch.absent.update(names)
            self._no_longer_faulting(names[0])  # lacked, not faulting: never asked again
            if (kind := self._kind()) is not None:
                self.hints.absent(kind, names)
        elif len(names) > 1 and self.fetch.splits < MAX_GPV_SPLITS:
            # A CPE that cannot build the whole answer (9002/9004: its memory, its buffer)
            # answers smaller questions; one that faults a name it lacks with another code
            # gets it narrowed down the same way: names that failed alone before go apart,
            # the rest in halves.
            self.fetch.splits += 1
            half = len(names) // 2
            self.fetch.queue[:0] = self._apart(names) or [names[:half], names[half:]]
        elif len(names) == 1 and self.profile is not None and not self.profile.writes_at(names[0]):
            self.fetch.skipped.append(names[0])
            self._faulted_alone(names[0])
            # One name the CPE cannot answer for (an internal error, a vendor code) that
            # only status comes from: left out of this session, asked apart from now on (a
            # hint, not a verdict: an answer clears it), and the rest goes on. Failing the
            # whole read would leave such a router unprovisioned for good.
            if (kind := self._kind()) is not None:
                self.hints.absent(kind, names)
            _log_gpv_fault(session, response, names)
        elif len(names) == 1 and self.fetch.ok and names[0] in self._suspects():
            # A name a setting is written at that faulted alone before (on this CPE or one
            # of its kind: a hint) and does again while the rest of the read answers:
            # firmware that cannot read it (a dual-band model faulting 9002, not 9005, for
            # a 6 GHz leaf). What is written at it waits, the job says why and is not done,
            # the rest is applied, and the next session asks again; failing the read every
            # session instead would leave the router unprovisioned for good.
            assert self.profile is not None
            self.fetch.skipped.append(names[0])  # status read there is unknown too
            why = f"fault {response.code}" + (f" on {names[0]}" if names[0].endswith(".") else "")
            for path in self.profile.written_at(names[0]):
                self.fetch.unreadable[path] = why
            _log_gpv_fault(session, response, names, unreadable=True)
        else:
            _log_gpv_fault(session, response, names)
            if len(names) == 1:
                # asked apart from now on: if it faults alone again, it is taken as
                # unreadable (above) instead of failing the read again
                self._faulted_alone(names[0])
                if (kind := self._kind()) is not None:
                    self.hints.absent(kind, names)
            # Without the CPE's values a plan would be guesswork (a table it could not
            # read is not an empty one, a leaf not one it lacks): apply nothing this time.
            self.fetch.queue.clear()
            self.fetch.failed = True

    def _read_after_all(self, names: list[str]) -> None:
        """A name that faulted alone and was read after all (within an object read whole,
        the fallback of a plan) is no longer unknown this session: what is written there is
        planned as usual."""
        objects = tuple(n for n in names if n.endswith("."))

        def read(path: str) -> bool:
            return path in self.values if not path.endswith(".") else path.startswith(objects)

        self.fetch.skipped = [n for n in self.fetch.skipped if not read(n)]
        self.fetch.unreadable = {p: w for p, w in self.fetch.unreadable.items() if not read(p)}

    def _no_longer_faulting(self, name: str) -> None:
        """``name`` answered alone, or is one the CPE lacks: not a faulting name now."""
        alone = self.memory.get("faultedAlone")
        if alone and name in alone:
            alone.remove(name)

    def _faulted_alone(self, name: str) -> None:
        if name not in self.memory.setdefault("faultedAlone", []):
            self.memory["faultedAlone"].append(name)

    # --- apply phase -----------------------------------------------------------------------

    def _plan(self) -> _Apply:
        assert self.profile is not None
        flat = self._flat()
        desired = self.desired
        if "apn.name" in desired.settings:  # (only then is the identity worked out here)
            ident = self._status_and_identity(flat, shared=False)[1]
            if apn_refused_here(desired, ident) or apn_for_another_sim(desired, ident):
                desired = desired.without("apn.name")
        held: list[dict[str, Any]] = []  # for Plan.refused
        unread: list[dict[str, Any]] = []  # for Plan.unread
        if needs_line_dns(desired):
            status = self._status_and_identity(flat, shared=False)[0]
            if (
                not self.memory.get("lineDns")
                and not reported_dns(status)
                and self._unread(flat, ("dns", "dns2"))
            ):
                # The line turns the router's DHCP client off, and with it the DNS servers
                # it got there: sent without the ones a fault hid, the line would leave the
                # customer without name service. It waits for a session that reads them.
                desired = desired.without("wan.static.")
                message = self._unread_message("DNS servers") + ": the static line is not sent"
                unread.append({"setting": "wan.static.dns", "message": message, "attempts": 0})
            else:
                desired = with_line_dns(desired, self.memory, status)
        if self._dhcp_wanted() and self._unread(flat, ("lanIp", "subnetMask")):
            # The LAN the pool must lie in is unknown this session (a fault hid it): the
            # DHCP settings wait for a session that reads it.
            desired = desired.without("dhcp.")
            message = self._unread_message("LAN address") + ": no DHCP setting sent"
            unread.append({"setting": "dhcp", "message": message, "attempts": 0})
        elif (outside := self._outside_lan(flat)) is not None:
            # A pool or reservation outside the LAN the router reports now (the record
            # was written before it reported, or its LAN changed since): the router would
            # refuse it or, worse, hand out addresses its LAN cannot route. Nothing of the
            # DHCP settings is sent, and the job says why.
            desired = desired.without("dhcp.")
            message = f"{outside.message}: no DHCP setting sent"
            held.append({"setting": outside.field, "message": message, "attempts": 0})
        plan = plan_changes(
            self.profile,
            desired,
            flat,
            absent=self.fetch.absent | self._not_below_reads(flat),
            unreadable=self.fetch.unreadable,
            memory=self.memory,
            force=self.bootstrap,
            now=clock.now(),
            max_attempts=self.settings.retry.max_attempts,
        )
        plan.refused.extend(held)
        plan.unread.extend(unread)
        if self.record is None or self.memory.get("appliedRevision") != self.record.revision:
            # Settings still to apply that a fault kept from being checked or compared:
            # the job is not done and says why (the next session tries again, so the job
            # is pending, not failed). A drift check of applied ones leaves the job as it is.
            plan.pending.extend(plan.unread)
        late = [d for d in plan.deletes if self._of_settings(d)]
        apply = _Apply(
            plan=plan,
            adds=list(plan.adds),
            changes=list(plan.changes),
            deletes=[d for d in plan.deletes if d not in late],
            late=late,
        )
        apply.outcome.notes.extend(self.desired.notes)
        for change in [c for c in apply.changes if not sendable(c.value)]:
            # A record written before the API refused such text: one value must not fail
            # every session of the router; it fails alone, as a CPE's 9007 would.
            apply.changes.remove(change)
            apply.outcome.faulted.append((change, 9007, "value not representable in XML 1.0"))
        if not plan.empty:
            log.info(
                "session.plan",
                serial=self.identity.serial_number if self.identity else "",
                set=len(plan.changes),
                add=len(plan.adds),
                delete=len(plan.deletes),
                drift=self.record is not None
                and self.memory.get("appliedRevision") == self.record.revision,
            )
        return apply

    def _sim_read(self, flat: dict[str, str]) -> bool:
        """This session's read completed, the paths the SIM numbers come from included:
        SIM numbers absent from ``flat`` are then absent from the router."""
        assert self.profile is not None
        fetch = self.fetch
        if not fetch.started or fetch.failed or fetch.queue:
            return False
        return not fields_read_at(self.profile, flat, SIM_KEYS, fetch.skipped)

    def _status_and_identity(
        self, flat: dict[str, str], *, shared: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Status and identity over ``flat``, worked out once per set of values: the plan's
        checks and the session's result read the same ones (``shared``: see Extraction)."""
        assert self.profile is not None
        if self._extracted is not None and self._extracted[0] is flat:
            return self._extracted[1], self._extracted[2]
        extraction = self._extraction
        if extraction is None or extraction.values is not flat:
            extraction = self._extraction = Extraction(self.profile, flat, shared=shared)
        status, ident = extraction.status_and_identity()
        self._extracted = (flat, status, ident)
        return status, ident

    def _outside_lan(self, flat: dict[str, str]) -> DeviceInputError | None:
        """What of the operator's DHCP settings lies outside the LAN the CPE reported in
        this session, or None (also when it reported no LAN: nothing to hold it against)."""
        assert self.profile is not None
        dhcp = self.record.dhcp if self.record else None
        if not dhcp or not self._dhcp_wanted():
            return None
        status = self._status_and_identity(flat, shared=False)[0]
        if "lanIp" not in status:
            return None
        try:
            check_lan(status, dhcp)
        except DeviceInputError as exc:
            return exc
        except ValueError:
            # A record from before the API checked addresses: the CPE's own fault on the
            # value says what is wrong with it, as for any other value it refuses.
            return None
        return None

    def _dhcp_wanted(self) -> bool:
        return bool(self.record and self.record.dhcp) and any(
            k.startswith("dhcp.") for k in self.desired.settings
        )

    def _unread(self, flat: dict[str, str], fields: tuple[str, ...]) -> list[str]:
        """Which of the status ``fields`` this session lacks because a name it went on
        without (a fault) could have held them: unknown, not absent."""
        if not self.fetch.skipped:
            return []
        assert self.profile is not None
        status = self._status_and_identity(flat, shared=False)[0]
        missing = tuple(f for f in fields if f not in status)
        return fields_read_at(self.profile, flat, missing, self.fetch.skipped) if missing else []

    def _unread_message(self, what: str) -> str:
        names = ", ".join(self.fetch.skipped[:3])
        return f"the router's {what} could not be read (it faulted on {names})"

    def _not_below_reads(self, flat: dict[str, Any]) -> set[str]:
        """Setting paths under an object read whole this session that the CPE did not
        report: it lacks them (a second LAN address, a WAN IP connection on a PPPoE-only
        gateway), so they are unsupported here rather than a 9005 on every SetParameterValues."""
        assert self.profile is not None
        read = [name for name in self.fetch.ok if name.endswith(".")]
        targets = [t for key in self.desired.settings for t in self.profile.settings.get(key, ())]
        targets += [t for _key, t in along_targets(self.profile, self.desired.names)]
        return {
            target.path
            for target in targets
            if target.path not in flat and any(target.path.startswith(p) for p in read)
        }

    def _key(self) -> str:
        # ParameterKey: the record revision the CPE now holds (0 = acsd's own settings only).
        return str(self.record.revision if self.record else 0)

    def _next_apply_request(self) -> rpc.AcsRequest | None:
        apply = self.apply
        assert apply is not None
        # Rows that should not be there go first: a full table (routers hold a few dozen
        # reservations) has room for the new rows then, and empty rows left by a session
        # that ended before its SetParameterValues are gone before more are added.
        if apply.deletes:
            return rpc.DeleteObject(object_name=apply.deletes[0], parameter_key=self._key())
        if apply.adds:
            return rpc.AddObject(object_name=apply.adds[0].object, parameter_key=self._key())
        while apply.spv_parts:
            part = [c for c in apply.spv_parts.pop(0) if c in apply.changes]
            if part:
                apply.spv_sent = part
                return self._spv(part)
        if not apply.changes and apply.deferred:
            apply.changes, apply.deferred, apply.spv_tries = apply.deferred, [], 0
        if apply.changes and apply.spv_tries < MAX_SPV_TRIES:
            apply.spv_sent = list(apply.changes)
            apply.spv_tries += 1
            return self._spv(apply.spv_sent)
        if apply.late:
            apply.deletes, apply.late = apply.late, []
            return rpc.DeleteObject(object_name=apply.deletes[0], parameter_key=self._key())
        if apply.reshaped and not apply.reread and (names := self._reread_names()):
            apply.reread = True
            self.plan = None  # instance numbers changed: finish() makes a new read plan
            self.fetch.queue.extend(self._chunked([names]))
            return rpc.GetParameterValues(names=self.fetch.queue[0])
        if apply.reboot:
            apply.reboot = False
            apply.outcome.notes.append("rebooted: a changed value needs it")
            return rpc.Reboot(command_key=f"acsd-{self._key()}")
        return None

    def _spv(self, changes: list[Change]) -> rpc.SetParameterValues:
        params = [rpc.ParameterValue(c.path, c.value, self._wire_type(c)) for c in changes]
        return rpc.SetParameterValues(parameters=params, parameter_key=self._key())

    def _reread_names(self) -> list[str]:
        """The objects status reads, again, when rows were added to or deleted from one of
        them: what the CPE did besides (the address and route a DHCP client took away when
        acsd turned it off) is known only by reading, and the status this session reports
        must not show an address the router no longer has."""
        apply = self.apply
        assert apply is not None and self.profile is not None
        objects = [n for n in self.profile.fetch if n.endswith(".") and n not in self.fetch.absent]
        touched = [self.profile.tables[t].object for t in apply.reshaped]
        return objects if any(t.startswith(o) for t in touched for o in objects) else []

    def _wire_type(self, change: Change) -> str:
        # Strict CPEs fault 9006 on a type other than their own: reuse what they reported.
        reported = self.values.get(change.path)
        return reported[1] if reported and reported[1] else change.type

    def _on_apply_response(
        self, session: CwmpSession, request: rpc.AcsRequest, response: rpc.Message
    ) -> None:
        apply = self.apply
        assert apply is not None and self.profile is not None
        if isinstance(request, rpc.AddObject):
            row = apply.adds.pop(0)
            setting = f"{row.table}[{row.row[self.profile.tables[row.table].key]}]"
            number = getattr(response, "instance_number", None)
            if isinstance(response, rpc.AddObjectResponse) and self._new_instance(row, number):
                spec = self.profile.tables[row.table]
                apply.reshaped.add(row.table)
                apply.plan.rows.setdefault(row.table, {})[row.key] = response.instance_number
                apply.added[f"{row.object}{number}."] = (row.table, row.key)
                fields = row_changes(row.table, spec, response.instance_number, row.row)
                for field in fields:  # a refused field is the row's fault, not the number's
                    field.fault_path = row_fault_path(row.object, row.key)
                    field.fault_value = row_signature(row.row)
                optional = group_of(row.table) and not needed_by_group(row.table)
                (apply.deferred if optional else apply.changes).extend(fields)
            elif isinstance(response, rpc.AddObjectResponse):
                # 0, -1, a number already in use: setting the row's fields there would
                # write over another row. The row is tried again after the back-off.
                change = self._row_fault(setting, row)
                reason = f"AddObject answered instance {number}, which is not a new one"
                apply.outcome.faulted.append((change, 9002, reason))
                self._drop_broken_groups()
            elif isinstance(response, rpc.Fault):
                change = self._row_fault(setting, row)
                apply.outcome.faulted.append((change, response.code, response.string))
                self._drop_broken_groups()
        elif isinstance(request, rpc.SetParameterValues):
            self._on_spv(response)
        elif isinstance(request, rpc.DeleteObject):
            path = apply.deletes.pop(0)
            if isinstance(response, rpc.Fault):
                apply.outcome.faulted.append(
                    (Change("delete", path, "", "object"), response.code, response.string)
                )
            else:
                if table := table_at(self.profile, path):
                    apply.reshaped.add(table)
                # Gone: a CPE may hand its instance number out again this very session.
                for name in [n for n in self.values if n.startswith(path)]:
                    del self.values[name]
                self._flat_values = None

    @staticmethod
    def _row_fault(setting: str, row: Any) -> Change:
        """What an AddObject the CPE refused is remembered as: a fault of the row."""
        change = Change(setting, row.object, str(row.row), "object")
        change.fault_path = row_fault_path(row.object, row.key)
        change.fault_value = row_signature(row.row)
        return change

    def _new_instance(self, row: Any, number: int) -> bool:
        """True for an instance number a CPE can have just created (unsignedInt, not 0,
        not one of the table's rows read or added this session)."""
        apply = self.apply
        assert apply is not None
        if not 1 <= number < 2**32:
            return False
        prefix = f"{row.object}{number}."
        if prefix in apply.added:
            return False
        return not any(name.startswith(prefix) for name in self.values)

    def _on_spv(self, response: rpc.Message) -> None:
        apply = self.apply
        assert apply is not None
        sent = apply.spv_sent
        if isinstance(response, rpc.SetParameterValuesResponse):
            apply.outcome.applied.extend(sent)
            apply.changes = [c for c in apply.changes if c not in sent]
            if any(c.reboot for c in sent):
                apply.reboot = True
            if response.status == 1 and AFTER_REBOOT not in apply.outcome.notes:
                apply.outcome.notes.append(AFTER_REBOOT)
            return
        assert isinstance(response, rpc.Fault)
        named = _named_faults(sent, response.spv_faults)
        culprits = [c for c in sent if c.path in named]
        blocks = [] if named else _blocks(sent)
        if culprits and apply.spv_tries < MAX_SPV_TRIES:
            for c in culprits:
                self._refused(c, named[c.path])
            # SetParameterValues is all or nothing: send the others again without the culprits.
            apply.changes = [c for c in apply.changes if c not in culprits]
            if apply.spv_splits:  # the rest of this part goes next, on its own
                apply.spv_parts.insert(0, [c for c in sent if c not in culprits])
        elif (
            not named
            and rpc.is_cpe_fault(response.code)
            and len(blocks) > 1
            and apply.spv_splits < MAX_SPV_SPLITS
        ):
            # Many stacks refuse a whole SetParameterValues for one bad value without
            # saying which (a bare 9003 or 9002): halve it, by blocks of settings that
            # belong together, until the refused block is alone; the rest goes through.
            apply.spv_splits += 1
            apply.bare_fault = (response.code, response.string)
            half = len(blocks) // 2
            apply.spv_parts[:0] = [_joined(blocks[:half]), _joined(blocks[half:])]
            return
        else:
            # No per-parameter detail for one block, or still failing: what was sent waits
            # for its back-off (the other parts of a split batch still go).
            for c in sent:
                if f := named.get(c.path):
                    self._refused(c, f)
                else:
                    apply.outcome.faulted.append((c, response.code, response.string))
            apply.changes = [c for c in apply.changes if c not in sent]
        self._drop_broken_groups()
        self._drop_orphans()

    def _refused(self, change: Change, fault: rpc.SetParameterValuesFault) -> None:
        """A parameter the CPE named in its SetParameterValuesFault. An optional one it
        refuses for good (not writable; denied again after a retry: firmware that locks a
        radio's switch) is dropped for this CPE, and its setting goes without it; anything
        else is a fault of the job, retried with back-off. Only a fault naming the
        parameter itself counts: one naming its object may be about any parameter in it."""
        apply = self.apply
        assert apply is not None
        if (
            change.optional
            and fault.name.strip().casefold() == change.path.casefold()
            and refused_for_good(self.memory, change, fault.code)
        ):
            apply.outcome.refused_optional.append((change, fault.code, fault.string))
            log.info(
                "session.optional_refused",
                serial=self.identity.serial_number if self.identity else "",
                parameter=change.path,
                code=fault.code,
            )
        else:
            apply.outcome.faulted.append((change, fault.code, fault.string))

    def _drop_orphans(self) -> None:
        """A row created this session whose fields the CPE refused is deleted again, so the
        table does not fill up with empty rows (which later faults 9004)."""
        apply = self.apply
        assert apply is not None
        faulted = {c.path for c, _, _ in apply.outcome.faulted}
        for base, (_table, _key) in list(apply.added.items()):
            if any(path.startswith(base) for path in faulted):
                self._undo_row(base)

    def _undo_row(self, base: str) -> None:
        apply = self.apply
        assert apply is not None
        table, key = apply.added.pop(base)
        apply.changes = [c for c in apply.changes if not c.path.startswith(base)]
        apply.deferred = [c for c in apply.deferred if not c.path.startswith(base)]
        apply.deletes.append(base)
        apply.plan.rows.get(table, {}).pop(key, None)

    def _drop_broken_groups(self) -> None:
        """A part of an WHOLE_GROUPS group the CPE refused takes the rest of the group
        with it: nothing more of it is sent, rows made for it this session go again, and
        the rows of the line it was to replace stay. Turning the DHCP client off with no
        static address or route to follow cuts the router off."""
        apply = self.apply
        assert apply is not None and self.profile is not None
        broken = stopped_groups(c.setting for c, _, _ in apply.outcome.faulted)
        if not broken:
            return
        profile = self.profile
        apply.changes = drop_groups(apply.changes, broken, profile)
        apply.deferred = drop_groups(apply.deferred, broken, profile)
        apply.adds = drop_groups(apply.adds, broken, profile)
        apply.late = drop_groups(apply.late, broken, profile)
        for base, (table, _key) in list(apply.added.items()):
            if group_of(table) in broken:
                self._undo_row(base)

    def _of_settings(self, path: str) -> bool:
        """A row of a table made of settings (the static line's address, route, DNS)."""
        assert self.profile is not None
        table = table_at(self.profile, path)
        return bool(table) and self.profile.tables[table].when is not None

    # --- the end -----------------------------------------------------------------------------

    def _rebooted(self) -> bool:
        return self.bootstrap or "1 BOOT" in self.events

    def _settle(self, result: SessionResult, *, unanswered: bool = False) -> None:
        """Provisioning memory, job, state, reservation ids and CR credentials."""
        record = self.record
        self._grow_read_chunk()
        if self.new_cr is not None:
            result.cr_username, result.cr_password = self.new_cr
        if record is not None:
            result.revision = record.revision
        if self.apply is None:
            if self._rebooted() and forget_reboot_note(self.memory, clock.now()):
                # values the CPE applies after a reboot are in effect now, planned or not
                result.provisioning = self.memory
            if record and not self.operator_settings and record.state == "PROVISIONING":
                # The operator took every setting away: nothing left to apply.
                self.memory["appliedRevision"] = record.revision
                result.provisioning, result.state, result.jobs = self.memory, "ACTIVE", 0
            elif self.bootstrap or self._reads_changed():
                # forgotten secrets must stay forgotten; names that faulted alone are
                # asked apart next time, whichever router of the kind answers them, and
                # an answer too large is asked for in smaller calls
                result.provisioning = self.memory
            return
        self._unsent(unanswered)
        self._cr_refused(result)
        now = clock.now()
        record_outcome(self.memory, self.apply.outcome, now, self.settings.retry)
        state, jobs = close_job(
            self.memory,
            revision=record.revision if record else 0,
            plan=self.apply.plan,
            outcome=self.apply.outcome,
            policy=self.settings.retry,
            now=now,
            rebooted=self._rebooted(),
        )
        # Unchanged (a session that found everything in place): not written again.
        if record is None or self.memory != record.provisioning:
            result.provisioning = self.memory
        if record is None or (record.revision == 0 and record.state != "PROVISIONING"):
            return  # no operator job: what acsd sets on its own does not make a state
        result.state, result.jobs = state, jobs
        rows = self.apply.plan.rows.get("dhcp.reservations")
        if rows is not None and record.dhcp and record.dhcp.get("reservedClients"):
            dhcp = copy.deepcopy(record.dhcp)
            for client in dhcp["reservedClients"]:
                instance = rows.get(mac_key(str(client.get("mac", ""))))
                if instance is not None:
                    client["id"] = str(instance)
            result.dhcp = dhcp

    def _cr_refused(self, result: SessionResult) -> None:
        """A CPE that refuses acsd's Connection Request credentials keeps its own. A
        username it reports is then the one acsd's Connection Requests name (ISP-locked
        firmware refuses a new one, 9008), and its refusal holds up no job: acsd stops
        asking. A refused password stays on the job; either way the log says so (names and
        codes, never values), also for a device without an operator job to show it on."""
        apply = self.apply
        assert apply is not None
        refused = [
            (change, code) for change, code, _ in apply.outcome.faulted
            if change.setting in _CR_SETTINGS
        ]  # fmt: skip
        if not refused:
            return
        kept = None
        for change, _code in refused:
            if change.setting == "management.cr_username":
                kept = self._flat().get(change.path, "").strip() or None
        if kept is not None:
            result.cr_username = kept
            apply.outcome.faulted = [
                f for f in apply.outcome.faulted if f[0].setting != "management.cr_username"
            ]
        log.warning(
            "session.cr_credentials_refused",
            serial=self.identity.serial_number if self.identity else "",
            parameters=[change.path for change, _ in refused],
            codes=[code for _, code in refused],
            username_kept=kept is not None,
        )

    def _reads_changed(self) -> bool:
        """Whether what this session learned about reading the CPE is new (also for a CPE
        without a record yet: its first session makes one)."""
        before = (self.record.provisioning if self.record is not None else None) or {}
        return set(before.get("faultedAlone") or ()) != set(
            self.memory.get("faultedAlone", ())
        ) or before.get("readChunk") != self.memory.get("readChunk")

    def _unsent(self, unanswered: bool) -> None:
        """Changes the session ended before sending (its request limit, a CPE that broke
        off after refusing a batch): not applied, so the job cannot be done. They wait
        for the back-off like a refusal, under the code of the refusal that held them up.
        A batch the CPE got but never answered (``unanswered``) may well be applied: the
        job stays pending without a back-off, and the next session reads and sees."""
        apply = self.apply
        assert apply is not None
        in_flight = {id(c) for c in apply.spv_sent} if unanswered else set()
        code, why = apply.bare_fault or (0, "")
        text = "not sent: the session ended first" + (f" ({why})" if why else "")
        for change in [*apply.changes, *apply.deferred]:
            if id(change) in in_flight:
                apply.outcome.incomplete = True
            else:
                apply.outcome.faulted.append((change, code, text))
        rows = len(apply.adds) + len(apply.deletes) + len(apply.late)
        if rows:
            apply.outcome.incomplete = True
            apply.outcome.notes.append(
                f"{rows} table row(s) not added or deleted: the session ended first"
            )

    def _absent_to_save(self, reset: bool) -> list[str] | None:
        """What the CPE lacks, or None (keep the stored list) when that has not changed
        and the session does not replace the stored tree (which resets the list too)."""
        absent = sorted(self.fetch.absent)
        if not reset and self.record is not None and absent == self.record.absent_paths:
            return None
        return absent

    def _leaves_only(self) -> bool:
        """True when this session read its plan's leaves and nothing that replaces or
        removes part of the stored tree (a whole object, a deleted row)."""
        if self.plan is None or self.fetch.failed or self.bootstrap:
            return False
        if any(name.endswith(".") for name in self.fetch.ok):
            return False
        return self.apply is None or not self.apply.plan.deletes

    def _session_params(self) -> dict[str, list[Any]]:
        """What this session read, with what the CPE acknowledged laid over it: that is
        what it now holds (secrets as it reports them)."""
        applied = self.apply.outcome.applied if self.apply is not None else []
        if all(change.secret for change in applied):
            return self.values  # what was read is what it holds (secrets are not kept)
        params = dict(self.values)
        for change in applied:
            if not change.secret:
                params[change.path] = [change.value, self._wire_type(change)]
        return params

    async def _merged_params(self) -> dict[str, list[Any]]:
        base: dict[str, list[Any]] = {}
        if self.record is not None and not self.bootstrap:
            # Failing here fails the save: merging over nothing would lose the stored tree.
            base = await self.store.device_params(self.record.id)
        # A partial path read this session replaces everything below it: objects the CPE
        # no longer has must not live on in the record.
        replaced = tuple(name for name in self.fetch.ok if name.endswith("."))
        if replaced and base:
            base = {k: v for k, v in base.items() if not k.startswith(replaced)}
        # So does a name the CPE answers 9005 for: it lacks it now (a modem unplugged), and
        # the values stored from when it had it would stay in its status for ever.
        gone = tuple(name for name in self.fetch.absent if name.endswith("."))
        gone_leaves = {name for name in self.fetch.absent if not name.endswith(".")}
        if (gone or gone_leaves) and base:
            base = {
                k: v
                for k, v in base.items()
                if k not in gone_leaves and not (gone and k.startswith(gone))
            }
        base.update(self._session_params())
        if self.apply is not None:
            for path in self.apply.plan.deletes:
                if path not in self.apply.deletes:
                    for key in [k for k in base if k.startswith(path)]:
                        del base[key]
        return base

    def _value(self, root: str | None, suffix: str) -> str | None:
        if root is None:
            return None
        entry = self.values.get(root + suffix)
        return entry[0] if entry and entry[0] != "" else None

    def _version(self, root: str | None, suffix: str) -> str | None:
        """A version the Inform reports, as the record keeps it: free text from the CPE,
        which only the body limit bounds, cut to the data models' string(64). Cut, not
        refused: a router with a long firmware name is still managed."""
        value = self._value(root, suffix)
        if value is not None:
            # Firmware that pretty-prints its SOAP indents values; a version has no spaces
            # at its ends, and with them it would match neither profiles nor hints.
            value = value.strip() or None
        if value is not None and len(value) > VERSION_CHARS:
            log.warning("session.version_cut", parameter=suffix, length=len(value))
            value = value[:VERSION_CHARS]
        return value


def _root_of(names: dict[str, Any]) -> str | None:
    try:
        return detect_root(names) if names else None
    except ValueError:
        return None


def _int_or_none(value: Any) -> int | None:
    """An integer a CPE reported, if it is one the store can hold (64-bit signed)."""
    try:
        number = int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return number if number is None or -(2**63) <= number < 2**63 else None


def _block_of(change: Change) -> str:
    """Settings that go into one SetParameterValues when a refused one is split: a group
    that must not be half set (the static line), else a table row, else the settings
    of one thing (a band's SSID, security and passphrase; the DHCP pool's bounds)."""
    group = group_of(change.setting)
    if group is not None:
        return group
    if "[" in change.setting:
        return change.setting.split("]", 1)[0]
    return change.setting.rsplit(".", 1)[0]


def _named_faults(
    sent: list[Change], faults: list[rpc.SetParameterValuesFault]
) -> dict[str, rpc.SetParameterValuesFault]:
    """The per-parameter faults of a SetParameterValues by the path acsd sent. Firmware
    names the object a refused parameter is in, or the name in another case: those stand
    for what was sent there. A name that stands for nothing sent counts as no name (the
    batch is then split until the refused part is alone), not as a fault of everything."""
    paths = {c.path for c in sent}
    by_case = {c.path.casefold(): c.path for c in sent}
    named: dict[str, rpc.SetParameterValuesFault] = {}
    for fault in faults:
        name = fault.name.strip()
        if name in paths:
            named[name] = fault
        elif name.endswith(".") and len(name) > 1:
            for path in paths:
                if path.startswith(name):
                    named.setdefault(path, fault)
        elif (path := by_case.get(name.casefold())) is not None:
            named.setdefault(path, fault)
    return named


def _blocks(changes: list[Change]) -> list[list[Change]]:
    blocks: dict[str, list[Change]] = {}
    for change in changes:
        blocks.setdefault(_block_of(change), []).append(change)
    return list(blocks.values())


def _joined(blocks: list[list[Change]]) -> list[Change]:
    return [change for block in blocks for change in block]


def _log_gpv_fault(
    session: CwmpSession, response: rpc.Fault, names: list[str], **extra: Any
) -> None:
    log.warning(
        "session.gpv_fault",
        serial=session.serial,
        code=response.code,
        fault=response.string,
        name=names[0] if len(names) == 1 else None,
        **extra,
    )
