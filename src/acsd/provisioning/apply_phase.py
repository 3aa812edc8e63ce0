"""The apply phase of a session: the plan of what differs, and the DeleteObject, AddObject,
SetParameterValues and Reboot requests that put it right; a CPE's refusals (named
parameters, bare faults, broken groups) narrowed down so the rest still goes through."""

from __future__ import annotations

from typing import Any

from acsd import clock
from acsd.cwmp import rpc
from acsd.cwmp.session import CwmpSession
from acsd.cwmp.soap import sendable
from acsd.devices import DeviceInputError, check_lan
from acsd.log import get_logger
from acsd.provisioning import line_off, param_key
from acsd.provisioning.apn import apn_for_another_sim, apn_not_withdrawn, apn_refused_here
from acsd.provisioning.desired import Desired
from acsd.provisioning.internet import (
    acs_host_name,
    needs_line_dns,
    on_router_lan,
    reported_dns,
    with_line_dns,
)
from acsd.provisioning.jobs import AFTER_REBOOT, REBOOT_REFUSED, is_provisioned, refused_for_good
from acsd.provisioning.plan import (
    LINE_SWITCH,
    STATIC_LINE,
    Change,
    along_targets,
    drop_groups,
    group_of,
    instance_numbers,
    needed_by_group,
    plan_changes,
    row_changes,
    row_fault_path,
    row_name,
    row_signature,
    stopped_groups,
    table_at,
)
from acsd.provisioning.read_phase import UNKNOWN_NAME, ReadPhase
from acsd.provisioning.rotation import ACS_PASSWORD
from acsd.provisioning.session_state import Apply
from acsd.provisioning.status import fields_read_at

log = get_logger("acsd.session")

#: SetParameterValues attempts in one session (each drops the parameters the CPE named).
MAX_SPV_TRIES = 3
#: times one session halves a SetParameterValues the CPE refused without naming a
#: parameter (enough to find one culprit among 2**8 blocks of settings)
MAX_SPV_SPLITS = 8
#: the job's note for the Reboot a changed value needed, once the CPE accepted it
REBOOTED = "rebooted: a changed value needs it"


class ApplyPhase(ReadPhase):
    """Putting right what the read found different from the operator's settings."""

    #: the current shared password, in a session that gives it to the router (see
    #: acsd.provisioning.rotation): its changes hold ROTATION_DUE, and only the
    #: SetParameterValues on the wire holds this. Never parked: a worker that takes the
    #: session up fills in its own (ProvisioningDriver._resume_rotation). A class
    #: default: no memory of the sessions that give none.
    _acs_password: str | None = None

    def _plan(self) -> Apply:
        assert self.profile is not None
        flat = self._flat()
        desired = self.desired
        if "apn.name" in desired.settings:  # (only then is the identity worked out here)
            ident = self._status_and_identity(flat, shared=False)[1]
            if (
                apn_refused_here(desired, ident)
                or apn_for_another_sim(desired, ident)
                or apn_not_withdrawn(desired, self.profile, flat)
            ):
                desired = desired.without("apn.name")
        held: list[dict[str, Any]] = []  # for Plan.refused
        unread: list[dict[str, Any]] = []  # for Plan.unread
        if desired.settings.get(LINE_SWITCH) is False:
            line = line_off.stored(self.memory)
            if line is None or not line_off.holds_line(self.profile, flat, line):
                # The router holds none of acsd's line any more (taken off by hand, a
                # reset, or replaced by a static line of the customer's): what it holds
                # is not acsd's to change, and acsd forgets its line.
                desired = desired.without("wan.static.")
                self.memory.pop(STATIC_LINE, None)
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
                if needs_line_dns(desired) and (held_line := self._line_without_dns(flat)):
                    desired = desired.without("wan.static.")
                    held.append(held_line)
        if (
            desired.settings.get("wan.static.enable") or desired.settings.get("lan.extra.enable")
        ) and (lan := self._status_fields(flat, ("lanIp", "subnetMask"))):
            # A line confirmed before its router reported its LAN (or since renumbered)
            # that overlaps it: that part of the line waits, and the job says why.
            for prefix, setting, message in on_router_lan(desired.settings, lan):
                desired = desired.without(prefix)
                held.append({"setting": setting, "message": message, "attempts": 0})
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
        self._claim_lost_adds(desired, flat)
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
        if self.record is None or not is_provisioned(self.memory, self.record.revision):
            # Settings still to apply that a fault kept from being checked or compared:
            # the job is not done and says why (the next session tries again, so the job
            # is pending, not failed). A drift check of applied ones leaves the job as it is.
            plan.pending.extend(plan.unread)
        # Blank rows (an AddObject's, never set) hold no old line: they go first, as they
        # may be what fills the table the new line's rows are to go into.
        blank = set(self.memory.get("blankRows") or ())
        late = [d for d in plan.deletes if self._of_settings(d) and d not in blank]
        apply = Apply(
            plan=plan,
            adds=list(plan.adds),
            changes=list(plan.changes),
            deletes=[d for d in plan.deletes if d not in late],
            late=late,
        )
        apply.outcome.notes.extend(self.desired.notes)
        apply.outcome.notes.extend(plan.notes)
        for note in plan.notes:
            log.warning(
                "session.list_cut",
                serial=self.identity.serial_number if self.identity else "",
                note=note,
            )
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
                drift=self.record is not None and is_provisioned(self.memory, self.record.revision),
            )
        return apply

    def _claim_lost_adds(self, desired: Desired, flat: dict[str, str]) -> None:
        """Rows of AddObjects whose answer was lost (``lostAdds``, see the end phase),
        found in the tables this session plans: those of instance numbers the table did
        not hold then join the blank rows, which the plan deletes while still blank."""
        assert self.profile is not None
        lost = self.memory.get("lostAdds")
        if not lost:
            return
        planned = {
            spec.object
            for name, spec in self.profile.tables.items()
            if name in desired.tables or spec.when in desired.settings
        }
        blank = set(self.memory.get("blankRows") or ())
        for table, held in list(lost.items()):
            if table not in planned:
                continue  # not read this session: its rows wait for one that plans them
            new = instance_numbers(table, flat) - set(held)
            blank.update(f"{table}{n}." for n in new)
            del lost[table]
        if blank:
            self.memory["blankRows"] = sorted(blank)
        if not lost:
            self.memory.pop("lostAdds", None)

    def _line_without_dns(self, flat: dict[str, str]) -> dict[str, Any] | None:
        """The job's entry that holds a static line back for want of DNS servers (none
        configured, none reported) where the router reaches acsd by name: the line turns
        its DHCP client off, and with it the only resolver it had, so after the push it
        could never call in again. None: its ACS URL is an IP address (the line goes, the
        router stays reachable to receive DNS servers later), or unknown."""
        assert self.profile is not None
        host = acs_host_name(flat.get(self.profile.root + "ManagementServer.URL"))
        if host is None:
            return None
        message = (
            "no DNS servers for the static line: the router reports none and [provisioning] "
            f"static_wan_dns is empty, and its ACS URL names a host ({host}) that it could "
            "not resolve once the line turns DHCP off: the static line is not sent"
        )
        log.warning(
            "session.line_without_dns",
            serial=self.identity.serial_number if self.identity else "",
            acs_host=host,
        )
        return {"setting": "wan.static.dns", "message": message, "attempts": 0}

    def _outside_lan(self, flat: dict[str, str]) -> DeviceInputError | None:
        """What of the operator's DHCP settings lies outside the LAN the CPE reported in
        this session, or None (also when it reported no LAN: nothing to hold it against)."""
        assert self.profile is not None
        dhcp = self.record.dhcp if self.record else None
        if not dhcp or not self._dhcp_wanted():
            return None
        status = self._status_fields(flat, ("lanIp", "subnetMask"))
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
        if apply.new_rows:
            return rpc.GetParameterNames(path=apply.new_rows[0], next_level=True)
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
            self._queue_read(names)
            if self.fetch.listing:
                path, next_level = self.fetch.listing[0]
                return rpc.GetParameterNames(path=path, next_level=next_level)
            if self.fetch.queue:
                return rpc.GetParameterValues(names=self.fetch.queue[0])
        if apply.reboot:
            apply.reboot = False
            apply.outcome.notes.append(REBOOTED)
            return rpc.Reboot(command_key=f"acsd-{self._key()}")
        return None

    def _spv(self, changes: list[Change]) -> rpc.SetParameterValues:
        params = [
            rpc.ParameterValue(c.path, self._wire_value(c), self._wire_type(c)) for c in changes
        ]
        return rpc.SetParameterValues(parameters=params, parameter_key=self._key())

    def _wire_value(self, change: Change) -> str:
        if change.setting != ACS_PASSWORD:
            return change.value
        # (never the placeholder: a session without the password drops the change first;
        # an explicit check, not an assert, which python -O would strip)
        if self._acs_password is None:
            raise RuntimeError("a password change without the password")
        return self._acs_password

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
            setting = row_name(row.table, row.row[self.profile.tables[row.table].key])
            number = getattr(response, "instance_number", None)
            if isinstance(response, rpc.AddObjectResponse):
                param_key.written(self.memory, self._key() if response.status == 0 else None)
            if isinstance(response, rpc.AddObjectResponse) and self._new_instance(row, number):
                spec = self.profile.tables[row.table]
                self.fetch.emptied -= {row.object}  # it has a row now: read as usual
                apply.reshaped.add(row.table)
                apply.plan.rows.setdefault(row.table, {})[row.key] = response.instance_number
                apply.added[f"{row.object}{number}."] = (row.table, row.key)
                fields = row_changes(row.table, spec, response.instance_number, row.row)
                for field in fields:  # a refused field is the row's fault, not the number's
                    field.fault_path = row_fault_path(row.object, row.key)
                    field.fault_value = row_signature(row.row)
                optional = group_of(row.table) and not needed_by_group(row.table)
                (apply.deferred if optional else apply.changes).extend(fields)
                if self._shallow():
                    apply.new_rows.append(f"{row.object}{number}.")
            elif isinstance(response, rpc.AddObjectResponse):
                # 0, -1, a number already in use: setting the row's fields there would
                # write over another row. The row is tried again after the back-off.
                change = self._row_fault(setting, row)
                reason = f"AddObject answered instance {number}, which is not a new one"
                apply.outcome.faulted.append((change, 9002, reason))
                self._drop_broken_groups()
            elif isinstance(response, rpc.Fault) and self._table_lacking(row, response.code):
                pass
            elif isinstance(response, rpc.Fault):
                change = self._row_fault(setting, row)
                apply.outcome.faulted.append((change, response.code, response.string))
                self._drop_broken_groups()
        elif isinstance(request, rpc.GetParameterNames):
            self._on_row_listed(apply.new_rows.pop(0), response)
        elif isinstance(request, rpc.SetParameterValues):
            self._on_spv(response)
        elif isinstance(request, rpc.Reboot):
            if isinstance(response, rpc.Fault):
                self._reboot_refused(response)
        elif isinstance(request, rpc.DeleteObject):
            path = apply.deletes.pop(0)
            if isinstance(response, rpc.Fault):
                name = apply.plan.deleting.get(path) or row_name(table_at(self.profile, path), "")
                apply.outcome.faulted.append(
                    (Change(name, path, "", "object"), response.code, response.string)
                )
            else:
                status = getattr(response, "status", 0)
                param_key.written(self.memory, self._key() if status == 0 else None)
                apply.deleted.add(path)
                if table := table_at(self.profile, path):
                    apply.reshaped.add(table)
                # Gone: a CPE may hand its instance number out again this very session.
                for name in [n for n in self.values if n.startswith(path)]:
                    del self.values[name]
                self._flat_values = None

    def _on_row_listed(self, row: str, response: rpc.Message) -> None:
        """A row just added on a CPE that does not expand partial paths, listed: one
        without every field acsd writes there (genieacs-sim's AddObject copies the fields
        of the table's other rows, and an empty table has none) gets none of them set,
        which such a CPE may die of, and is deleted again; the row's fault says why."""
        apply = self.apply
        assert apply is not None
        names = set()
        if isinstance(response, rpc.GetParameterNamesResponse):
            names = {p.name for p in response.parameters}
        fields = [c for c in (*apply.changes, *apply.deferred) if c.path.startswith(row)]
        missing = [c for c in fields if c.path not in names]
        if not missing:
            return
        apply.changes = [c for c in apply.changes if not c.path.startswith(row)]
        apply.deferred = [c for c in apply.deferred if not c.path.startswith(row)]
        table, key = apply.added.pop(row, (None, None))
        if table is not None:
            apply.plan.rows.get(table, {}).pop(key, None)
        reason = f"the CPE made row {row} without {missing[0].path[len(row) :]}"
        apply.outcome.faulted.append((missing[0], 9005, reason))
        apply.deletes.append(row)
        log.warning(
            "session.row_without_fields",
            serial=self.identity.serial_number if self.identity else "",
            row=row,
            missing=len(missing),
        )

    def _reboot_refused(self, fault: rpc.Fault) -> None:
        """A CPE that refuses the Reboot (one without the method answers 9000, as
        genieacs-sim does) has not rebooted: the job says so instead of "rebooted", and
        the changed values wait for its next reboot (the note goes at its next BOOT)."""
        apply = self.apply
        assert apply is not None
        notes = apply.outcome.notes
        if REBOOTED in notes:
            notes.remove(REBOOTED)
        notes.append(f"{REBOOT_REFUSED}{fault.code} {fault.string}): not rebooted")
        if AFTER_REBOOT not in notes:
            notes.insert(0, AFTER_REBOOT)
        log.warning(
            "session.reboot_refused",
            serial=self.identity.serial_number if self.identity else "",
            code=fault.code,
            reason=fault.string,
        )

    def _table_lacking(self, row: Any, code: int) -> bool:
        """Whether a refused AddObject shows the CPE really lacks a table it faulted 9005
        on when read (taken as empty, see ReadPhase._empty_table): then it is lacking, as
        a name faulted alone is (remembered until a BOOTSTRAP or new firmware), the job
        lists the table as not on this CPE, and no other row is tried there."""
        apply = self.apply
        assert apply is not None
        if code not in UNKNOWN_NAME or row.object not in self.fetch.emptied:
            return False
        self.fetch.emptied -= {row.object}
        self.fetch.absent.add(row.object)
        apply.adds = [a for a in apply.adds if a.object != row.object]
        reason = f"{row.object} is not on this CPE"
        apply.plan.unsupported.append({"setting": row.table, "reason": reason})
        return True

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
            # (status 1: the values, and maybe the key, only after a reboot)
            param_key.written(self.memory, self._key() if response.status == 0 else None)
            apply.outcome.applied.extend(sent)
            apply.changes = [c for c in apply.changes if c not in sent]
            if any(c.reboot for c in sent):
                apply.reboot = True
            if response.status == 1 and AFTER_REBOOT not in apply.outcome.notes:
                apply.outcome.notes.append(AFTER_REBOOT)
            return
        assert isinstance(response, rpc.Fault)
        named = _named_faults(sent, response.spv_faults)
        blocks = _blocks(sent)
        # Firmware that lists every parameter of a refused SetParameterValues (all or
        # nothing: it applied none of them) singles none out: such a batch of several
        # blocks is halved as for a bare fault, until the refused block is alone.
        singled = named if len(named) < len(sent) or len(blocks) < 2 else {}
        culprits = [c for c in sent if c.path in singled]
        if culprits and apply.spv_tries < MAX_SPV_TRIES:
            for c in culprits:
                self._refused(c, named[c.path])
            # SetParameterValues is all or nothing: send the others again without the culprits.
            apply.changes = [c for c in apply.changes if c not in culprits]
            if apply.spv_splits:  # the rest of this part goes next, on its own
                apply.spv_parts.insert(0, [c for c in sent if c not in culprits])
        elif (
            not singled
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
        apply.plan.deleting[base] = row_name(table, key)
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
        # a row the CPE would not delete breaks nothing (see plan._hold_groups)
        broken = stopped_groups(
            c.setting for c, _, _ in apply.outcome.faulted if c.path not in apply.plan.deleting
        )
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
