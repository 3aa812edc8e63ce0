"""The end of a session: what it leaves on the record (the provisioning memory, the job and
the device's state, reservation ids, Connection Request credentials) and the parameter tree
it stores."""

from __future__ import annotations

import copy
from typing import Any

from acsd import clock
from acsd.log import get_logger
from acsd.macs import mac_digits
from acsd.provisioning import line_off, param_key
from acsd.provisioning.apn import SIM_KEYS
from acsd.provisioning.apply_phase import ApplyPhase
from acsd.provisioning.jobs import (
    STUN_PUSHED,
    UNANSWERED_KEY,
    close_job,
    forget_reboot_note,
    is_provisioned,
    note_read_failed,
    record_outcome,
)
from acsd.provisioning.plan import STATIC_LINE, group_of, instance_numbers
from acsd.provisioning.rotation import ACS_PASSWORD
from acsd.provisioning.status import fields_read_at
from acsd.provisioning.udp_notify import MEMORY_KEY
from acsd.store.base import SessionResult
from acsd.store.records import loads

log = get_logger("acsd.session")
#: refused settings named in one session's log line (a batch refused whole names them all)
MAX_LOGGED_FAULTS = 20

#: the settings that carry acsd's Connection Request credentials
_CR_SETTINGS = frozenset({"management.cr_username", "management.cr_password"})


class EndPhase(ApplyPhase):
    """What a session's result holds besides the CPE's values: memory, job, state."""

    #: this session gave the device's job up (FAILED, once per revision) and its result
    #: was stored: acsd.metrics counts it, for an alert
    job_given_up: bool = False
    #: the router authenticated with the previous shared password: this session gives
    #: it the current one (class defaults: no memory of the sessions that do not)
    acs_password_due: bool = False
    #: the line of the record in effect this session (an account id), and whether the
    #: session takes off the static line acsd put on the router (line_off)
    line_account: str | None = None
    taking_line_off: bool = False
    #: what became of that: "rotated", "refused" or "not_sent" (acsd.metrics counts it)
    acs_password_result: str | None = None
    #: the worker that took the session up had no password to give any more (a reload
    #: removed previous_password after the session began): what was not sent is dropped
    acs_password_dropped: bool = False

    def _sim_read(self, flat: dict[str, str]) -> bool:
        """This session's read completed, the paths the SIM numbers come from included:
        SIM numbers absent from ``flat`` are then absent from the router."""
        assert self.profile is not None
        fetch = self.fetch
        if not fetch.answered():
            return False
        return not fields_read_at(self.profile, flat, SIM_KEYS, fetch.skipped)

    def _rebooted(self) -> bool:
        return self.bootstrap or "1 BOOT" in self.events

    def _settle(
        self, result: SessionResult, *, unanswered: bool = False, lost_add: str | None = None
    ) -> None:
        """Provisioning memory, job, state, reservation ids and CR credentials.
        ``lost_add``: the table of an AddObject the CPE got but never answered."""
        record = self.record
        self._grow_read_chunk()
        if self.new_cr is not None:
            result.cr_username, result.cr_password = self.new_cr
        if record is not None:
            result.revision = record.revision
        if self.apply is None:
            if self.acs_password_due:
                self._rotation()
            if (
                self.fetch.failed
                and record is not None
                and record.revision
                and not is_provisioned(self.memory, record.revision)
                and note_read_failed(
                    self.memory, revision=record.revision, why=self.fetch.failure, now=clock.now()
                )
            ):
                # The job is not done and the operator sees why (the log alone said so).
                result.provisioning = self.memory
            if self._rebooted() and forget_reboot_note(self.memory, clock.now()):
                # values the CPE applies after a reboot are in effect now, planned or not
                result.provisioning = self.memory
            if record and not self.operator_settings and record.state == "PROVISIONING":
                # The operator took every setting away: nothing left to apply.
                self.memory["appliedRevision"] = record.revision
                result.provisioning, result.state, result.jobs = self.memory, "ACTIVE", 0
            elif self.bootstrap or self._reads_changed(self._stored_memory() or {}):
                # forgotten secrets must stay forgotten; names that faulted alone are
                # asked apart next time, whichever router of the kind answers them, and
                # an answer too large is asked for in smaller calls
                result.provisioning = self.memory
            return
        self._unsent(unanswered)
        self._remember_blank_rows()
        if lost_add is not None:
            self._remember_lost_add(lost_add)
        self._cr_refused(result)
        if self.acs_password_due:
            self._rotation()  # (before the refusal could be recorded as the job's)
        now = clock.now()
        before = self.memory.get("job") or {}
        record_outcome(self.memory, self.apply.outcome, now, self.settings.retry)
        self._settle_line(unanswered)
        if self.acs_password_due:
            # no hash of the fleet's password on every router's record: it is written in
            # the sessions that show the router lacks it, whatever the memory says
            for change in self.apply.outcome.applied:
                if change.setting == ACS_PASSWORD:
                    self.memory["secrets"].pop(change.path, None)
        state, jobs = close_job(
            self.memory,
            revision=record.revision if record else 0,
            plan=self.apply.plan,
            outcome=self.apply.outcome,
            policy=self.settings.retry,
            now=now,
            rebooted=self._rebooted(),
        )
        self._log_refused()
        self._log_job_failed(before)
        settings = self.desired.settings
        if "management.stun_server_address" in settings and not (
            self.apply.outcome.incomplete or unanswered
        ):
            # planned with these STUN values (those of the Inform's time: a reload since
            # is compared at the next session): compared again only once they change
            self.memory[STUN_PUSHED] = [
                settings["management.stun_server_address"],
                settings["management.stun_server_port"],
                settings["management.stun_keepalive"],
            ]
        # Unchanged (a session that found everything in place): not written again.
        if record is None or self.memory != self._stored_memory():
            result.provisioning = self.memory
        if record is None or (record.revision == 0 and record.state != "PROVISIONING"):
            return  # no operator job: what acsd sets on its own does not make a state
        result.state, result.jobs = state, jobs
        rows = self.apply.plan.rows.get("dhcp.reservations")
        if rows is not None and record.dhcp and record.dhcp.get("reservedClients"):
            dhcp = copy.deepcopy(record.dhcp)
            for client in dhcp["reservedClients"]:
                instance = rows.get(mac_digits(str(client.get("mac", ""))))
                if instance is not None:
                    client["id"] = str(instance)
            result.dhcp = dhcp

    def _settle_line(self, unanswered: bool) -> None:
        """The memory's word on the static line acsd put on the router (line_off): kept
        from the session that sets it, and forgotten once a session took all of it off."""
        apply = self.apply
        assert apply is not None
        outcome = apply.outcome
        if not self.taking_line_off:
            line_off.remember(
                self.memory, self.desired.settings, self.line_account, outcome.applied
            )
            return
        if STATIC_LINE not in self.memory:
            return  # (the router held none of it any more: see ApplyPhase._plan)
        faulted = [change for change, _, _ in outcome.faulted]
        finished = not (outcome.incomplete or unanswered or apply.deletes or apply.late)
        if not line_off.taken_off(apply.plan, faulted, finished=finished):
            if any(group_of(c.setting) == "wan.static." for c in outcome.applied):
                # (DHCP is on again, or some of the entries went: the rest follows)
                self.memory[STATIC_LINE][line_off.GOING] = True
        else:
            self.memory.pop(STATIC_LINE, None)
            # (the DNS servers it reported on DHCP then: a later line takes today's)
            self.memory["lineDns"] = None
            log.info(
                "session.line_taken_off",
                serial=self.identity.serial_number if self.identity else "",
                device=self.record.id if self.record else None,
            )

    def _log_job_failed(self, before: dict[str, Any]) -> None:
        """A job acsd gives up on leaves the device ACTIVE with no job counted, like a done
        one: without this line the operator would find it only in each device's record.
        Once per revision."""
        job = self.memory.get("job") or {}
        if job.get("state") != "FAILED":
            return
        if before.get("state") == "FAILED" and before.get("revision") == job.get("revision"):
            return
        log.warning(
            "session.job_failed",
            serial=self.identity.serial_number if self.identity else "",
            device=self.record.id if self.record else None,
            revision=job.get("revision"),
            # no messages: a CPE's may quote the refused value, a clash the addresses
            faults=[{k: f[k] for k in ("setting", "code") if k in f} for f in job["faults"]],
        )
        self.job_given_up = True

    def _log_refused(self) -> None:
        """What the router refused this session, named: the job shows it too, but an
        operator looking for why a router stays PROVISIONING reads the log. Codes and
        names, no messages (a CPE's may quote the refused value)."""
        apply = self.apply
        assert apply is not None
        faulted = apply.outcome.faulted
        if not faulted:
            return
        log.info(
            "session.settings_refused",
            serial=self.identity.serial_number if self.identity else "",
            count=len(faulted),
            faults=[
                {"setting": change.setting, "parameter": change.path, "code": code}
                for change, code, _message in faulted[:MAX_LOGGED_FAULTS]
            ],
        )

    def _rotation(self) -> None:
        """A session opened with the previous shared password: whether the router took
        the current one, said once per router and session (names and codes, never the
        password). A refusal holds up no job and waits for no back-off: the router comes
        with the previous password again, and its next session asks again."""
        apply = self.apply
        serial = self.identity.serial_number if self.identity else ""
        device = self.record.id if self.record else None
        if apply is not None:
            if [c for c in apply.outcome.applied if c.setting == ACS_PASSWORD]:
                self.acs_password_result = "rotated"
                log.info("session.acs_password_rotated", serial=serial, device=device)
                return
            refused = [f for f in apply.outcome.faulted if f[0].setting == ACS_PASSWORD]
            if refused:
                apply.outcome.faulted = [
                    f for f in apply.outcome.faulted if f[0].setting != ACS_PASSWORD
                ]
                self.acs_password_result = "refused"
                log.warning(
                    "session.acs_password_refused",
                    serial=serial,
                    device=device,
                    parameters=[change.path for change, _, _ in refused],
                    codes=[code for _, code, _ in refused],
                    message="the router keeps the previous shared password: it is asked "
                    "again at its next session",
                )
                return
        self.acs_password_result = "not_sent"
        log.warning(
            "session.acs_password_not_sent",
            serial=serial,
            device=device,
            reason=self._acs_password_unsent(),
        )

    def _acs_password_unsent(self) -> str:
        """Why a session opened with the previous shared password did not send the
        current one."""
        profile = self.profile
        if profile is None or not profile.settings.get(ACS_PASSWORD):
            name = profile.name if profile is not None else "none"
            return f"profile {name} maps no management.acs_password"
        if self.fetch.failed:
            return "the read of the router's settings failed"
        paths = [t.path for t in profile.settings[ACS_PASSWORD]]
        if any(path in self.fetch.absent for path in paths):
            return f"the router lacks {', '.join(paths)}"
        if self.acs_password_dropped:
            return "previous_password was removed (a reload) before the password was sent"
        return "the session ended first"

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

    def _stored_memory(self) -> dict[str, Any] | None:
        """The record's provisioning memory as the session found it stored (None without
        a record): see SessionState.stored_memory."""
        if self.record is None:
            return None
        if self.stored_memory is None:
            return self.record.provisioning
        return loads(self.stored_memory)

    def _reads_changed(self, before: dict[str, Any]) -> bool:
        """Whether what this session learned about reading the CPE is new against the
        memory as stored (``before``; also for a CPE without a record yet: its first
        session makes one), or, with STUN on, whether the router set or refused the UDP
        address's notification (acsd.provisioning.udp_notify): remembered, so that no
        later session asks again."""
        memory = self.memory
        return (
            set(before.get("faultedAlone") or ()) != set(memory.get("faultedAlone", ()))
            or before.get("readChunk") != memory.get("readChunk")
            or before.get("gpvLimit") != memory.get("gpvLimit")
            or before.get("held") != memory.get("held")
            or before.get("absentAt") != memory.get("absentAt")
            or before.get("partialPaths") != memory.get("partialPaths")
            or before.get(UNANSWERED_KEY) != memory.get(UNANSWERED_KEY)
            or before.get(param_key.MEMORY_KEY) != memory.get(param_key.MEMORY_KEY)
            or (self.settings.stun is not None and before.get(MEMORY_KEY) != memory.get(MEMORY_KEY))
        )

    def _unsent(self, unanswered: bool) -> None:
        """Changes the session ended before sending (its request limit, a CPE that broke
        off after refusing a batch): not applied, so the job cannot be done. After a
        refusal they wait for the back-off like it, under its code. With no refusal (the
        CPE went away: a power cut, a reboot between two requests) nothing was refused,
        and waiting would strand what a static line sent in two steps: its DHCP client
        off, its DNS servers to follow. So the job stays pending without a back-off and
        the next session sends them, as it does for a batch the CPE got but never
        answered (``unanswered``: it may well be applied; the next session reads and
        sees)."""
        apply = self.apply
        assert apply is not None
        in_flight = {id(c) for c in apply.spv_sent} if unanswered else set()
        code, why = apply.bare_fault or (0, "")
        text = "not sent: the session ended first" + (f" ({why})" if why else "")
        unsent = 0
        for change in [*apply.changes, *apply.deferred]:
            if id(change) in in_flight:
                apply.outcome.incomplete = True
            elif apply.bare_fault is None:
                apply.outcome.incomplete = True
                unsent += 1
            else:
                apply.outcome.faulted.append((change, code, text))
        if unsent:
            apply.outcome.notes.append(
                f"{unsent} setting(s) not sent: the session ended first; the next session"
                " sends them"
            )
        rows = len(apply.adds) + len(apply.deletes) + len(apply.late)
        if rows:
            apply.outcome.incomplete = True
            apply.outcome.notes.append(
                f"{rows} table row(s) not added or deleted: the session ended first"
            )

    def _remember_blank_rows(self) -> None:
        """Rows this session added but never set (it ended between the AddObject and the
        fields' SetParameterValues), and blank rows of earlier sessions whose deletion is
        still to come: the next session deletes those still blank (``blankRows``)."""
        apply = self.apply
        assert apply is not None
        applied = {change.path for change in apply.outcome.applied}
        blank = {base for base in apply.added if not any(path.startswith(base) for path in applied)}
        planned = set(apply.plan.deletes)
        for base in self.memory.get("blankRows") or ():
            if base in planned and base not in apply.deleted:
                blank.add(base)
        if blank:
            self.memory["blankRows"] = sorted(blank)
        else:
            self.memory.pop("blankRows", None)

    def _remember_lost_add(self, table: str) -> None:
        """An AddObject whose answer never came (the connection dropped once the CPE had
        made the row): acsd knows no instance number to delete or set, and the row, still
        blank, passes for the CPE's own (a TR-181 address entry without an IPv4 address, a
        route without its interface), so every such session leaves one more until the
        table is full. Remembered as the instance numbers the table held then (a CPE may
        hand out a freed number again): the next session that plans the table deletes the
        blank rows of other numbers (``lostAdds``)."""
        apply = self.apply
        assert apply is not None
        held = instance_numbers(table, [*self.values, *apply.added])
        held -= instance_numbers(table, apply.deleted)
        lost = dict(self.memory.get("lostAdds") or {})
        if table in lost:
            # lost again before a session planned the table: a row is a candidate if
            # either session did not know it
            held &= set(lost[table])
        lost[table] = sorted(held)
        self.memory["lostAdds"] = lost

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
        # A factory reset's session replaces the stored tree with what it reads, once it
        # has read it: cut short, what it did not read stays as last known (its status
        # would otherwise lose its addresses until the next whole read).
        if self.record is not None and (not self.bootstrap or not self.fetch.answered()):
            # Failing here fails the save: merging over nothing would lose the stored tree.
            base = await self.store.device_params(self.record.id)
        # A partial path read this session replaces everything below it: objects the CPE
        # no longer has must not live on in the record.
        # (a table taken as empty too: it has no rows left to keep)
        replaced = tuple(name for name in self.fetch.ok if name.endswith("."))
        replaced += tuple(self.fetch.emptied)
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
