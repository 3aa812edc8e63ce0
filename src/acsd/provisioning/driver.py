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

The driver runs the session (:class:`ProvisioningDriver`: the Inform, the choice of
profile, the next request, the end); each phase is a module of its own, the one built on
the one before: :mod:`~acsd.provisioning.session_state` (what a session holds),
:mod:`~acsd.provisioning.read_phase`, :mod:`~acsd.provisioning.apply_phase` and
:mod:`~acsd.provisioning.end_phase` (the result it leaves on the record).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from acsd import clock
from acsd.cwmp import rpc
from acsd.cwmp.session import ROTATE_TO, CwmpSession, RetryLater
from acsd.log import Once, get_logger, log_failure, peer_text
from acsd.provisioning import line_off, param_key, udp_notify
from acsd.provisioning.apn import (
    add_apn_name,
    apn_due,
    record_apn_session,
    sim_numbers,
    sim_report,
)
from acsd.provisioning.desired import Desired, desired_state
from acsd.provisioning.end_phase import EndPhase
from acsd.provisioning.internet import add_internet_settings
from acsd.provisioning.jobs import (
    AFTER_REBOOT,
    OWNED_SWITCHES,
    PENDING,
    STUN_PUSHED,
    SWITCHED_ON,
    UNANSWERED_KEY,
    failed_at,
    is_provisioned,
    new_memory,
)
from acsd.provisioning.plan import STATIC_LINE
from acsd.provisioning.profiles import Profile, detect_root
from acsd.provisioning.rotation import ACS_PASSWORD, ROTATION_DUE, masked, withheld
from acsd.provisioning.session_state import NOTHING, Apply
from acsd.provisioning.status import plan_and_extraction, untyped
from acsd.store.base import (
    VERSION_CHARS,
    CpeIdentity,
    RecordDeletedError,
    SessionResult,
    StaleResultError,
    log_store_failure,
    reported,
    store_unavailable,
)
from acsd.store.outages import OTHER, outage
from acsd.store.records import restate

log = get_logger("acsd.session")
#: (device, model, profile) whose model profile was found unusable (another data model)
_UNUSABLE_TOLD = Once()


#: What acsd answers to a CPE's GetRPCMethods.
ACS_METHODS = [
    "Inform",
    "GetRPCMethods",
    "TransferComplete",
    "AutonomousTransferComplete",
    "DUStateChangeComplete",
    "AutonomousDUStateChangeComplete",
]


class ProvisioningDriver(EndPhase):
    """One per session (see :class:`acsd.cwmp.session.SessionDriver`)."""

    # --- moving between workers ----------------------------------------------------------

    #: references to this process's services, not state: a thawing worker supplies its own
    _SERVICES = frozenset({"store", "profiles", "settings", "hints", "wake"})
    #: caches of what ``values`` holds: not worth their bytes in a parked session
    _TRANSIENT = frozenset({"_flat_values", "_extraction", "_extracted"})
    #: the fleet's shared password (see acsd.provisioning.rotation): never in the database
    _SECRETS = frozenset({"_acs_password"})

    def export_state(self) -> dict[str, Any]:
        skip = self._SERVICES | self._TRANSIENT | self._SECRETS
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
        if self.acs_password_due:
            self._resume_rotation()

    def _resume_rotation(self) -> None:
        """A session taken up from another worker that gives the router the current
        shared password: parked with ROTATION_DUE in its place, it gets this process's
        password, as this process has it now (a reload since changed it, maybe). With
        none (a reload removed previous_password meanwhile) what is not sent yet is
        dropped, and the end says so (session.acs_password_not_sent). An answer to a
        SetParameterValues that carried it still counts: the router had it."""
        source = self.settings.rotate_to
        password = source() if source is not None else None
        if password is not None:
            self._acs_password = password
            return
        self.acs_password_dropped = True
        self.desired.settings.pop(ACS_PASSWORD, None)
        if self.apply is not None:
            apply = self.apply
            apply.changes = [c for c in apply.changes if c.setting != ACS_PASSWORD]
            apply.deferred = [c for c in apply.deferred if c.setting != ACS_PASSWORD]
            # (a part of a split batch is sent with what is left of it in ``changes``)

    # --- SessionDriver -------------------------------------------------------------------

    async def inform(self, session: CwmpSession, inform: rpc.Inform) -> rpc.Fault | None:
        dev = inform.device_id
        # (None but in a session opened with the previous shared password; popped: it
        # is no part of the session's state, parked or not: see _give_acs_password)
        rotate_to = session.context.pop(ROTATE_TO, None)
        self.events = inform.event_codes()
        self.bootstrap = "0 BOOTSTRAP" in self.events
        for p in inform.parameters:
            self.values[p.name] = [p.value, p.type]
        self._flat_values = None
        try:
            # Without the parameter tree: a session seldom needs it (see finish()).
            self.record = await self.store.find_device_for_cpe(dev.serial_number, for_session=True)
        except Exception as exc:
            why = store_unavailable(exc)
            log_failure(log, "session.lookup_failed", why, serial=dev.serial_number)
            if why is not None:
                # The database's trouble, which passes: the CPE is told when to come back
                # (503 + Retry-After), as at a session's end, rather than sent a fault.
                raise _retry_later(exc) from exc
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
        self.unkept = frozenset(p.name for p in inform.parameters if not keeps(p.name)) or NOTHING
        record = self.record
        key = self.values.get(self.profile.root + "ManagementServer.ParameterKey")
        reported = key[0] if key is not None else None
        if (
            not self.bootstrap
            and record is not None
            and param_key.lost_writes(record.provisioning, reported)
        ):
            log.info(
                "session.configuration_lost",
                serial=dev.serial_number,
                parameter_key=reported,
                reason="the router reports another ParameterKey than acsd last wrote",
            )
            self.bootstrap = True  # provisioned as after a reset: everything again
        self.memory = new_memory(record.provisioning if record else None, bootstrap=self.bootstrap)
        param_key.echoed(self.memory, reported)
        if record is not None:
            self.stored_memory = restate(record.provisioning)
            record.provisioning = {}
        self.new_firmware = (
            record is not None
            and record.software_version is not None
            and self.identity.software_version is not None
            and self.identity.software_version != record.software_version
        )
        if self.new_firmware:
            # and may take what the old one refused, and answer partial paths as TR-069 says
            self.memory["refusedOptional"] = {}
            self.memory.pop("partialPaths", None)
            self.memory.pop(UNANSWERED_KEY, None)
            self.memory.pop("held", None)
            self.memory.pop(udp_notify.MEMORY_KEY, None)  # (it may take it now, or lost it)
            self.memory.pop("gpvLimit", None)  # (its limit of names per call, too)
        failed = failed_at(self.memory)
        if self.new_firmware or (record is not None and failed not in (None, record.revision)):
            # What was given up is tried again: new firmware may take what the old refused,
            # and an operator who changes the device's settings after a FAILED job, or asks
            # for it (POST .../retry, see api.devices), wants another try.
            self.memory["faults"] = {}
        # New firmware may have what the old one lacked: the record's list is then only a
        # list of suspects (asked for apart), as on a bootstrap.
        if (
            record is not None
            and not self.bootstrap
            and not self.new_firmware
            and not _lacks_everything(self.profile, record.absent_paths)
        ):
            self.fetch.absent = set(record.absent_paths)
            if record.absent_paths and (kind := self._kind()) is not None:
                # What this CPE is known to lack, CPEs of its kind likely lack too: after a
                # restart, periodic sessions teach the hints before a storm of BOOTSTRAPs.
                self.hints.absent(kind, record.absent_paths)
        # A device being deleted gets nothing new: its session only releases it.
        if record is None or record.state != "DELETING":
            self.desired = desired_state(record.wifi, record.dhcp) if record else Desired()
            if record is not None and (record.internet_account or STATIC_LINE in self.memory):
                # Only routers an internet account names (or that hold acsd's line) pay
                # for this lookup.
                try:
                    dns = list(self.settings.static_wan_dns)
                    account = await add_internet_settings(
                        self.store, record.id, self.desired, clock.now(), dns=dns
                    )
                    if account is not None:
                        self.line_account = account.id  # (kept in the memory: line_off)
                    else:
                        await self._line_left()
                    self._leave_theirs_on()
                except Exception:
                    log.exception("session.account_lookup_failed", serial=dev.serial_number)
                    return rpc.acs_fault(8002, "internet account lookup failed; retry later")
            self.operator_settings = not self.desired.empty
            self._add_management(dev.serial_number)
        held = (
            record is not None
            and is_provisioned(self.memory, record.revision)
            and not self.taking_line_off  # (what the router holds is read before it goes)
        )
        drift = (
            self.settings.drift_check
            and (record is None or record.drift_check)
            and self._drift_check_due()
        )
        # New firmware may have reset settings, or have what the old one lacked.
        fresh = self.bootstrap or self.new_firmware
        self.read_settings = not self.desired.empty and (fresh or drift or not held)
        if (
            self.settings.stun is not None  # (STUN off: one test on a steady session's path)
            and not self.read_settings
            and not self.desired.empty
            and self.memory.get(STUN_PUSHED) != list(self.settings.stun)
        ):
            # acsd's STUN values changed (a reload) since this router was given them: its
            # STUN client follows now, not at its next drift check (or never, without one)
            self.read_settings = True
        self.plan = self._usable_plan(record)
        if self.fetch.absent and self.plan is None and self._absent_recheck_due():
            # Asked for again, apart (as after new firmware): what a listing left out, or
            # 9005 answered for a while (a module plugged in later), is the CPE's word of
            # then, and a buggy one must not hide a name until the next BOOTSTRAP.
            self.fetch.absent = set()
            self.recheck_absent = True
        # With its settings read anyway, the session need not compare its stored APN.
        compare = not self.read_settings
        if await add_apn_name(
            self.store,
            self.profile,
            record,
            self.values,
            self.desired,
            compare=compare,
            memory=self.memory,
        ):
            self.read_settings = True  # the router's APN is not its SIM's network's (yet)
        if rotate_to is not None and (record is None or record.state != "DELETING"):
            self._give_acs_password(rotate_to)
        # TR-069 allows 64 EventStructs; a CPE sending thousands must not get a log line
        # of megabytes at every session.
        extra = {"more_events": len(self.events) - 64} if len(self.events) > 64 else {}
        events = self.events[:64]
        if any(len(code) > _EVENT_CODE_MAX for code in events):
            # (TR-069's EventCode is at most 64 characters; one of a megabyte made a line
            # of a megabyte)
            events = [peer_text(code, _EVENT_CODE_MAX) for code in events]
        log.info(
            "session.inform",
            serial=dev.serial_number,
            events=events,
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
        if passing is not None and reported(exc):  # the writer named the cause once
            log.info("session.save_failed", error=passing, serial=session.serial)
        else:
            log_failure(log, "session.save_failed", passing, serial=session.serial)
        if complete:
            if passing is not None:
                raise _retry_later(exc) from exc
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
            # once per router, model and profile (a process's lifetime): every session of
            # the router would say it again until the operator changes the model
            told = _UNUSABLE_TOLD.first((record.id, model.id, profile.name))
            (log.warning if told else log.debug)(
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
        # (bounded per session: a CPE may send these in a loop, see CwmpSession.may_log)
        if isinstance(request, rpc.TransferComplete | rpc.AutonomousTransferComplete):
            if session.may_log("session.transfer_complete", request.METHOD):
                log.info(
                    "session.transfer_complete",
                    serial=session.serial,
                    method=request.METHOD,
                    fault=request.fault.code,
                )
            return request.RESPONSE()
        if isinstance(request, rpc.DUStateChangeComplete | rpc.AutonomousDUStateChangeComplete):
            if session.may_log("session.du_state_change_complete", request.METHOD):
                log.info(
                    "session.du_state_change_complete",
                    serial=session.serial,
                    method=request.METHOD,
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
            self._queue_read(self._read_names(), apart=True)
        if self.fetch.probe is not None:
            return rpc.GetParameterNames(path=self.fetch.probing, next_level=True)
        if self.fetch.listing:
            path, next_level = self.fetch.listing[0]
            return rpc.GetParameterNames(path=path, next_level=next_level)
        if self.fetch.queue:
            return rpc.GetParameterValues(names=self.fetch.queue[0])
        # (STUN off: one test, nothing more on a steady session's path)
        if self.settings.stun is not None and (notify := self._udp_notify_due()) is not None:
            return udp_notify.notify_request(notify)
        if self.read_settings and not self.fetch.failed and self.apply is None:
            apply = self._plan()
            # (only a plan that sends something re-reads the record: a steady session's
            # drift check finds nothing to send, and pays no look-up)
            if _sends(apply) and await self._released_meanwhile(session):
                self.read_settings = False
                return None
            self.apply = apply
            if self.settings.drift_check_interval > 0:
                self.memory["checkedAt"] = int(clock.now())
        if self.apply is not None:
            return self._next_apply_request()
        return None

    async def _keep_unclaimed(self, session: CwmpSession, result: SessionResult) -> None:
        """What a released router reported, kept as an unclaimed record at once (as its
        next Inform would make it): with its Connection Request address and the credentials
        it holds, a device made for it again right away (a customer's router given to
        another customer is a delete and a create) reaches it within seconds, not at its
        next periodic Inform, which a factory reset may have put at hours."""
        assert self.record is not None
        kept = replace(
            result,
            device_id=None,
            since=None,
            bound_serial=None,
            cr_username=self.record.cr_username,
            cr_password=self.record.cr_password,
            # that acsd's static line is on the router: taken off once the line leaves it,
            # whoever claims the router then (line_off)
            provisioning=line_off.carried(self.memory),
        )
        try:
            device_id = await self.store.save_session(kept)
        except Exception as exc:  # (its next Inform registers it, as before)
            log_store_failure(log, "session.unclaimed_failed", exc, serial=session.serial)
            return
        # A POST of the serial between the delete and this save made a record with no
        # address to reach the router at (its Connection Request had nowhere to go); this
        # save gave it one: ask the router in now, as a session that read no record does.
        if kept.connection_request_url or kept.udp_connection_request_address:
            await self._wake_for_changes(device_id, 0)

    async def _released_meanwhile(self, session: CwmpSession) -> bool:
        """Whether the operator deleted the record since the Inform read it (or gave it to
        another router), checked once, before the session sends any setting: the record's
        settings must not reach a router that is no longer its. A record being deleted is
        released at this session's end, as its next session would; one that went at once
        (its router never seen) is not made again by the save. A record changed in other
        ways keeps this session's plan: its end asks the router to call in again."""
        record = self.record
        if record is None:
            return False
        try:
            # (two columns: a boot storm makes this check for every router)
            stored = await self.store.device_holder(record.id)
        except Exception as exc:  # the settings read at the Inform stay this session's
            log_store_failure(log, "session.recheck_failed", exc, device=record.id)
            return False
        deleting = stored is None or stored[0] == "DELETING"
        serial = None if stored is None else stored[1]
        if (
            not deleting
            and isinstance(serial, str)
            and serial.lower() == record.serial_number.lower()
        ):
            return False
        log.info(
            "session.settings_withdrawn",
            serial=session.serial,
            device=record.id,
            reason="deleted" if deleting else "moved",
        )
        if stored is not None and deleting:
            self.record = replace(record, state="DELETING")
        return True

    def _udp_notify_due(self) -> str | None:
        """The UDPConnectionRequestAddress to set active notification on in this session
        (acsd.provisioning.udp_notify), or None: set already, refused, the router lacks
        it, or it is being released."""
        if self.profile is None or (self.record is not None and self.record.state == "DELETING"):
            return None
        path = udp_notify.udp_address_path(self.profile, self.values)
        if path is None:
            return None
        if not udp_notify.notify_due(self.memory, path, clock.now(), self.settings.retry):
            return None
        return path

    def _on_udp_notify(
        self, session: CwmpSession, request: rpc.SetParameterAttributes, response: rpc.Message
    ) -> None:
        path = request.parameters[0].name
        policy = self.settings.retry
        fault = udp_notify.record_answer(self.memory, path, response, clock.now(), policy)
        if fault is None:
            log.info("session.udp_notification_set", serial=session.serial, parameter=path)
        else:
            # the router is still reached, its new mappings read at its periodic sessions
            log.warning(
                "session.udp_notification_refused",
                serial=session.serial,
                parameter=path,
                code=fault.code,
                reason=peer_text(fault.string, 200),
                retry=self.memory[udp_notify.MEMORY_KEY].get("retryAt"),
            )

    def answer_too_large(self, session: CwmpSession, request: rpc.AcsRequest) -> None:
        """The CPE's answer to ``request`` was over ``max_body`` (the session ends): a read
        of several names is asked for in calls of half as many from the next session on
        (kept in the device's memory), so one large table does not stop every session."""
        self.answer_too_large_seen = True
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

    async def response(
        self, session: CwmpSession, request: rpc.AcsRequest, response: rpc.Message
    ) -> None:
        if type(response) is rpc.Fault:
            response = rpc.cpe_coded(response)  # (one without a CWMP code: the CPE's 9002)
            if self._acs_password:
                response = masked(response, self._acs_password)
            if self.acs_password_due and self._carries_acs_password(request):
                response = withheld(response)
        if isinstance(request, rpc.GetParameterValues):
            self._on_gpv(session, response)
        elif isinstance(request, rpc.GetParameterNames) and self.fetch.probe is not None:
            self._on_probe(session, response)
        elif isinstance(request, rpc.GetParameterNames) and self.fetch.listing:
            self._on_gpn(session, response)
        elif isinstance(request, rpc.SetParameterAttributes):
            self._on_udp_notify(session, request, response)
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
            # (a plan made of part of a read would hold part of status's leaves, and
            # the sessions after it would read only those until the next whole read)
            if self.plan is None and self.fetch.answered():
                plan, extraction = plan_and_extraction(
                    self.profile, flat, now, like=self._extraction
                )
                new_plan = plan.to_json()
                self._extraction = extraction
                self._extracted = (flat, *extraction.status_and_identity())
                if self.recheck_absent or self.bootstrap or self.new_firmware:
                    # what it lacks was found again: the next re-check is an interval away
                    self._absent_found(now)
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
            udp_connection_request_address=_udp_address(ident, flat),
            absent_paths=self._absent_to_save(reset),
            since=self.record.last_inform if self.record is not None else None,
            bound_serial=self.record.serial_number if self.record is not None else None,
        )
        if self.record is not None and self.record.state == "DELETING":
            # Released: the record goes, and the router stays known as an unclaimed one.
            # Only by the session whose delete took the record: another of the router's
            # sessions (a reboot's, in another worker) released it first and kept what it
            # reported, which is newer than what this one, begun before it, holds.
            if await self.store.delete_device(self.record.id):
                log.info("session.released", serial=session.serial, device=self.record.id)
                await self._keep_unclaimed(session, result)
            _log_end(session, self.record.id, complete, reason, outcome="released")
            return
        if not complete:
            self._partial_paths_unanswered(session)
        # a SetParameterValues the CPE got but never answered may well be applied
        unanswered = session.outstanding is not None and isinstance(
            session.outstanding[1], rpc.SetParameterValues
        )
        # an AddObject the CPE got but never answered may well have made its row
        lost_add = None
        if session.outstanding is not None and isinstance(session.outstanding[1], rpc.AddObject):
            lost_add = session.outstanding[1].object_name
        if session.outstanding is not None and isinstance(session.outstanding[1], _WRITES):
            param_key.written(self.memory, None)  # whether the key was set is unknown
        self._settle(result, unanswered=unanswered, lost_add=lost_add)
        # counted once stored: a result not written gives the job up again next session
        given_up, self.job_given_up = self.job_given_up, False
        try:
            device_id = await self.store.save_session(result)
        except RecordDeletedError:
            # The operator deleted the record meanwhile: the save must not make it again.
            log.info("session.result_dropped", serial=session.serial, reason="record deleted")
            _log_end(session, self.record.id if self.record else None, complete, reason,
                     outcome="record deleted")  # fmt: skip
            return
        except StaleResultError:
            # The CPE started over (a reboot) and that session committed first: what this
            # one learned is older, and nothing of it is written.
            log.info("session.result_dropped", serial=session.serial, reason="newer session")
            _log_end(session, self.record.id if self.record else None, complete, reason,
                     outcome="newer session")  # fmt: skip
            return
        except Exception as exc:
            self._save_failed(session, exc, complete)
            return
        self.job_given_up = given_up
        # A session that read its record learns from the save whether the operator changed
        # it meanwhile (the change's Connection Request came while the router was busy, or
        # went to an old address): this session holds none of it. One that read no record
        # (the operator made it during the session, before acsd knew where to reach the
        # router) looks it up once it can reach the router.
        reachable = bool(result.connection_request_url or result.udp_connection_request_address)
        if result.revision_moved or (reachable and self.record is None):
            await self._wake_for_changes(device_id, result.revision or 0)
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
        if result.sim and self.record is not None and self.record.sim != result.sim:
            await self._apn_job(device_id, params, result.sim)
        # The operator changed the record meanwhile (a PATCH, a DELETE): the state stored
        # is theirs (PROVISIONING, DELETING), not the one this session worked out.
        ended = {"revision_moved": True} if result.revision_moved else {"state": result.state}
        _log_end(session, device_id, complete, reason, **ended)

    async def _apn_job(
        self, device_id: str, held: dict[str, list[Any]], sim: dict[str, str]
    ) -> None:
        """The router reported another SIM, whose network's APN name it does not hold: a
        job of the router (PROVISIONING) and a Connection Request, so that it takes the
        name now (see apn.apn_due). Only a router bound to an API account, in a session
        that read a new SIM, pays for the look-up."""
        record, profile = self.record, self.profile
        if record is None or profile is None or not record.mvno_account:
            return
        if record.state == "DELETING":
            return
        faults = self.memory.get("faults") or {}
        if any(t.path in faults for t in profile.settings.get("apn.name", ())):
            # The router refused the name before: its job retries it on its back-off, not
            # at every session that finds another SIM (a modem that reports its MSISDN one
            # session in two would have it asked to connect again and again).
            return
        try:
            if not await apn_due(self.store, profile, replace(record, sim=sim), held):
                return
            router = await self.store.give_apn_job(device_id, record.mvno_account)
        except Exception as exc:  # the name waits for the next Inform, as it did
            log_store_failure(log, "session.apn_job_failed", exc, device=device_id)
            return
        if router is not None:
            log.info("session.apn_due", device=device_id, revision=router.revision)
            if self.wake is not None:
                self.wake(router)

    async def _wake_for_changes(self, device_id: str, revision: int) -> None:
        """Ask the router to connect again when its record was made, or changed, while
        this session ran (after its Inform read ``revision``): this session holds none of
        the change, and the operator's write sent no Connection Request (acsd did not know
        where to reach the router yet: its first session, or a new address), sent it to
        the old URL, or sent it while the router was in this session, which many CPEs
        answer 200 and then forget. Otherwise the router would wait for its next periodic
        Inform. Only a session whose save found another revision, or that read no record
        and reports an address, pays for the look-up."""
        if self.wake is None:
            return
        try:
            stored = await self.store.get_device(device_id)
        except Exception as exc:  # the change waits for the next Inform, as it did
            log_store_failure(log, "session.wake_lookup_failed", exc, device=device_id)
            return
        if (
            stored is not None
            and stored.revision != revision
            and stored.state in ("PROVISIONING", "DELETING")
        ):
            self.wake(stored)

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
        if self.settings.stun is not None:
            address, port, keepalive = self.settings.stun
            self.desired.settings.update(
                {
                    "management.stun_enable": True,
                    "management.stun_server_address": address,
                    "management.stun_server_port": port,
                    "management.stun_keepalive": keepalive,
                }
            )

    def _carries_acs_password(self, request: rpc.AcsRequest) -> bool:
        """Whether ``request`` is a SetParameterValues that wrote the shared password (its
        values may be blanked, parked: its names tell)."""
        if not isinstance(request, rpc.SetParameterValues) or self.profile is None:
            return False
        paths = {target.path for target in self.profile.settings.get(ACS_PASSWORD, ())}
        return any(p.name in paths for p in request.parameters)

    def _give_acs_password(self, password: str) -> None:
        """The router authenticated with the previous shared password ([cwmp.auth]
        previous_password): it is given the current one (ManagementServer.Password) in
        this session, and comes with it from then on. Only such a session writes it (the
        parameter reads back empty: written at every session, it would be a write per
        session of every router). The memory's word that the router holds it is no proof
        against its own (it came with the previous one): it is written whatever that says,
        and no hash of it is kept (EndPhase._settle). A session that would plan nothing
        else (the router's settings held, no drift check due, or none wanted: driftCheck
        false) plans the password alone: a rotation is no drift check the operator did not
        ask for."""
        assert self.profile is not None
        if not self.read_settings:
            self.desired = Desired()
        # (the session's state holds a placeholder: see acsd.provisioning.rotation)
        self._acs_password = password
        self.desired.settings[ACS_PASSWORD] = ROTATION_DUE
        # (acsd's own addition: a profile without it is said at the end, not on the job)
        self.desired.implied |= {ACS_PASSWORD}
        held = self.memory.get("secrets")
        if held:
            for target in self.profile.settings.get(ACS_PASSWORD, ()):
                held.pop(target.path, None)
        self.acs_password_due = True
        self.read_settings = True

    def _absent_recheck_due(self) -> bool:
        """Whether the names the record says this CPE lacks are due to be asked for again
        (``absent_recheck_interval`` since they were last found). A record without the
        time (kept by a release before this) starts counting now: not all at once."""
        interval = self.settings.absent_recheck_interval
        if interval <= 0:
            return False
        at = self.memory.get("absentAt")
        if at is None:
            self.memory["absentAt"] = int(clock.now())
            return False
        return not 0 <= clock.now() - at < interval

    def _absent_found(self, now: float) -> None:
        """The read just found what the CPE lacks: when, kept while it lacks something."""
        if self.fetch.absent:
            self.memory["absentAt"] = int(now)
        else:
            self.memory.pop("absentAt", None)

    async def _line_left(self) -> None:
        """No line of the record is in effect: a static line acsd put on the router is
        taken off (line_off), unless it still waits there for its replacement router."""
        assert self.record is not None
        line = line_off.stored(self.memory)
        if line is None or await line_off.waits_for_router(self.store, line, self.record.customer):
            return
        self.desired.settings.update(line_off.LINE_OFF)
        self.desired.notes.append(line_off.NOTE)
        self.taking_line_off = True

    def _leave_theirs_on(self) -> None:
        """A line that turns off a second LAN address or a backup line turns off only one
        that acsd turned on (an earlier line's): one the customer set up is theirs."""
        settings = self.desired.settings
        on = set(self.memory.get(SWITCHED_ON) or ())
        for name in OWNED_SWITCHES:
            if settings.get(name) is True:
                on.add(name)  # acsd's from now on (a range the customer had is taken over)
            elif settings.get(name) is False and name not in on:
                del settings[name]
        if on:
            self.memory[SWITCHED_ON] = sorted(on)

    def _drift_check_due(self) -> bool:
        """Whether this session checks applied settings (``drift_check_interval``)."""
        interval = self.settings.drift_check_interval
        # A reboot may bring back an older configuration, and a value change may be a user
        # at the router's web page: neither waits for the interval.
        if "1 BOOT" in self.events or "4 VALUE CHANGE" in self.events:
            return True
        job = self.memory.get("job") or {}
        if AFTER_REBOOT in job.get("notes", ()):
            # The CPE answered a write "applied after a reboot" (status 1): until it has
            # rebooted it reads back the values before. Checked, they were written again
            # at every session and the job failed as values the CPE refuses.
            return False
        if interval <= 0:
            return True
        # A repair the CPE refused (or left pending) is retried on the retry policy's
        # schedule (retry_base), not the interval's: its faults say when.
        if self.memory.get("faults") or job.get("state") == PENDING:
            return True
        at = self.memory.get("checkedAt")
        return at is None or not 0 <= clock.now() - at < interval

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


def _retry_later(exc: BaseException) -> RetryLater:
    """The router's 503 for the database's trouble ``exc``: the same words and Retry-After
    as an API client's (acsd.store.outages), for whoever reads a capture."""
    found = outage(exc) or OTHER
    return RetryLater(
        f"database unavailable ({found.cause})", found.retry_after, found.text, found.cause
    )


def _lacks_everything(profile: Profile, absent: list[str]) -> bool:
    """Whether ``absent`` leaves nothing of the profile to read: a list stored by a release
    that took a read refused whole (9005 for every name) as the CPE lacking them all. It
    proves nothing: the CPE is read in full again. (On every Inform of a router that lacks
    something: stops at the first name the list leaves, rather than list them all.)"""
    if not absent:
        return False
    gone = set(absent)
    objects = tuple(name for name in gone if name.endswith("."))
    return all(name in gone or name.startswith(objects) for name in profile.fetch)


def _root_of(names: dict[str, Any]) -> str | None:
    try:
        return detect_root(names) if names else None
    except ValueError:
        return None


#: where both data models keep the UDP Connection Request address
_UDP_PATHS = tuple(
    root + "ManagementServer.UDPConnectionRequestAddress"
    for root in ("InternetGatewayDevice.", "Device.")
)


def _log_end(
    session: CwmpSession, device: str | None, complete: bool, reason: str, **outcome: Any
) -> None:
    """``session.end``: every session that got as far as its result says how it ended, its
    result saved or not (a dashboard counts them against ``session.inform``)."""
    log.info(
        "session.end", serial=session.serial, device=device, complete=complete,
        reason=reason, rpcs=session.rpc_count, **outcome,
    )  # fmt: skip


def _udp_address(ident: Mapping[str, Any], flat: Mapping[str, str]) -> str | None:
    """The UDPConnectionRequestAddress to store: the one reported; "" when the router
    reports an empty one (its STUN client off: a stored mapping is stale); None when the
    session did not see it (the stored one is kept). Identity leaves empty values out."""
    udp = ident.get("udpConnectionRequestAddress")
    if udp is None and any(flat.get(path) == "" for path in _UDP_PATHS):
        return ""
    return udp


#: characters of an EventCode (TR-069: string(64)) that a log line shows
_EVENT_CODE_MAX = 64

#: the requests that carry a ParameterKey
_WRITES = (rpc.SetParameterValues, rpc.AddObject, rpc.DeleteObject)


def _int_or_none(value: Any) -> int | None:
    """An integer a CPE reported, if it is one the store can hold (64-bit signed)."""
    try:
        number = int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return number if number is None or -(2**63) <= number < 2**63 else None


def _sends(apply: Apply) -> bool:
    """Whether a plan has anything to send the router (a row to add or delete, a value to
    set)."""
    return bool(
        apply.deletes
        or apply.adds
        or apply.new_rows
        or apply.changes
        or apply.deferred
        or apply.late
    )
