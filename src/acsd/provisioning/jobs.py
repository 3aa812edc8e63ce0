"""A device's provisioning memory and its job: what was applied, what faulted, when to retry.

The memory is one JSON object on the device record:

- ``appliedRevision``: the record revision the CPE was last seen holding in full;
- ``secrets``: parameter path -> hash of the secret acsd last applied (they read back empty);
- ``faults``: parameter path -> the CPE's fault, attempts and the back-off's next retry;
- ``job``: what the operator sees: revision, state (PENDING / DONE / FAILED), faults and
  settings the profile cannot do;
- ``faultedAlone``: names this CPE faulted on when read alone (not 9005): asked apart from
  the rest of a read, until one answers;
- ``lineDns``: the DNS servers a static line without configured ones keeps (see
  provisioning.internet.with_line_dns);
- ``ownedRows``: table -> keys (MACs) of the rows acsd manages in a table that cannot
  tell acsd's rows from the CPE's (DHCP reservations): rows of other keys are the
  customer's, and acsd never deletes them;
- ``udpNotify``: the active notification acsd set on UDPConnectionRequestAddress (with
  STUN on), or the router's refusal of it (:mod:`acsd.provisioning.udp_notify`); a
  BOOTSTRAP or new firmware forgets it;
- ``stunPushed``: the STUN values (server address, port, keepalive) of the last session that
  planned with STUN on: a router whose values are others (a reload changed them) has its
  settings read and compared at its next session, whatever its drift check says;
- ``staticLine``: the static line acsd put on the router (account, address, gateway, DNS
  servers), which it takes off again once no line of the router's record is in effect
  (:mod:`acsd.provisioning.line_off`); a released router's unclaimed record keeps it;
- ``apnSet``: the APN name acsd last wrote to the router (taken back, as the profile's
  ``apn_fallback``, once no live device of the router's SIM names one);
- ``refusedOptional``: parameter path -> the CPE's fault (setting, code, message) for an
  optional parameter it refused writes to (9008 not writable, 9005 lacking, or 9001
  denied in two sessions, named in its SetParameterValuesFault): its setting is written
  without it from then on, and the job lists it as unsupported. A factory reset
  (0 BOOTSTRAP) or new firmware forgets it.

Back-off is exponential (``retry_base`` x 2^(attempts-1)) and stops after ``max_attempts``:
a fault can cost a few sessions, never a loop. A denial (9001) may be a busy CPE's: it is
retried once after its back-off, and given up when it comes again (its entry's ``denied``
counts the denials of the value in a row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from acsd import clock
from acsd.log import MASK, is_secret_name
from acsd.provisioning import param_key
from acsd.provisioning.line_off import stored as line_off_stored
from acsd.provisioning.plan import (
    DENIED,
    STATIC_LINE,
    WRITE_REFUSED_FOR_GOOD,
    Change,
    Plan,
    given_up,
    refused_reason,
    value_hash,
)

PENDING, DONE, FAILED = "PENDING", "DONE", "FAILED"
#: the memory's key of the STUN values last planned with
STUN_PUSHED = "stunPushed"
#: the memory's key of the APN name acsd last wrote to the router: the name to take back
#: once the SIM's device is gone, whatever its network is called by then
APN_SET = "apnSet"


@dataclass(slots=True)
class RetryPolicy:
    base: float = 300.0
    max_attempts: int = 5
    cap: float = 86400.0


@dataclass(slots=True)
class Outcome:
    """What the CPE did with this session's changes."""

    applied: list[Change] = field(default_factory=list)
    faulted: list[tuple[Change, int, str]] = field(default_factory=list)
    #: optional parameters the CPE refused for good (refused_for_good): dropped for this
    #: CPE (``refusedOptional``), no fault of the job
    refused_optional: list[tuple[Change, int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the session ended before it sent all it planned (rows to add or delete): the job
    #: is not done, whatever was refused
    incomplete: bool = False


def _entries(stored: Any, kind: type) -> dict[str, Any]:
    """The entries of a stored path -> entry mapping whose entry is a ``kind``."""
    if not isinstance(stored, dict):
        return {}
    return {k: v for k, v in stored.items() if type(k) is str and isinstance(v, kind)}


def _stored_job(job: Any) -> dict[str, Any] | None:
    """The stored job as close_job reads it back: one of another shape (``"job": "FAILED"``
    in a hand-edited row) is none, so the session writes a new one rather than failing on
    it in every session; a count or notes of another type start anew."""
    if not isinstance(job, dict):
        return None
    out = dict(job)
    if type(out.get("attempts")) is not int:
        out.pop("attempts", None)
    notes = out.get("notes")
    if notes is not None and not (type(notes) is list and all(type(n) is str for n in notes)):
        out.pop("notes")
    return out


#: provisioning memory: sessions in a row that ended without the answer to a read of
#: partial paths (read_phase._partial_paths_unanswered)
UNANSWERED_KEY = "partialPathsUnanswered"


def new_memory(memory: dict[str, Any] | None, *, bootstrap: bool) -> dict[str, Any]:
    out = {
        "appliedRevision": None,
        "secrets": {},
        "faults": {},
        "job": None,
        "faultedAlone": [],
        "lineDns": None,
        #: most names per GetParameterValues: an answer to more was over cwmp.max_body
        "readChunk": None,
        #: path -> hash of a value written there and in how many planning sessions in a
        #: row (count_writes; plan._bounced gives up a value the CPE does not keep)
        "bounces": {},
        "ownedRows": {},
        "refusedOptional": {},
    }
    if memory:
        out.update({k: v for k, v in memory.items() if k in out})
        # Entries of another shape (a hand-edited row) are dropped rather than failing
        # every session of the router: a secret is a hash, a fault or a bounce an object.
        out["secrets"] = _entries(out["secrets"], str)
        out["faults"] = _entries(out["faults"], dict)
        out["bounces"] = _entries(out["bounces"], dict)
        out["refusedOptional"] = _entries(out["refusedOptional"], dict)
        alone = out["faultedAlone"]
        out["faultedAlone"] = [n for n in alone if type(n) is str] if type(alone) is list else []
        owned = out["ownedRows"] if isinstance(out["ownedRows"], dict) else {}
        out["ownedRows"] = {
            table: [k for k in keys if isinstance(k, str)]
            for table, keys in owned.items()
            if isinstance(keys, list)
        }
        out["job"] = _stored_job(out["job"])
        # the line's DNS servers are sent to the router as they are: a list of addresses
        dns = out["lineDns"]
        if not (type(dns) is list and all(type(a) is str for a in dns)):
            out["lineDns"] = None
        # Absent unless they say something (as blankRows): every open session holds its
        # router's memory, and two keys more grow a dict past its smaller table.
        # partialPaths: False once the CPE answered a partial path with the object alone
        # (read_phase); held: on such a CPE, names outside the objects it reads that
        # GetParameterNames showed it holds, read by name without listing them again; on
        # any CPE, names that faulted alone (9002) and that a listing showed there
        # (read_phase._check_listed): not listed again.
        if memory.get("partialPaths") is False:
            out["partialPaths"] = False
        # sessions in a row that ended without the answer to a read of partial paths
        # (read_phase._partial_paths_unanswered)
        if type(lost := memory.get(UNANSWERED_KEY)) is int and lost > 0:
            out[UNANSWERED_KEY] = lost
        if type(held := memory.get("held")) is list and (
            names := [n for n in held if type(n) is str]
        ):
            out["held"] = names
        chunk = out["readChunk"]
        # a stored value that is no count of names (a hand-edited row) reads as none
        if type(chunk) is not int or chunk < 1:
            out["readChunk"] = None
        # the active notification on the UDP Connection Request address (udp_notify);
        # absent until set, and one of another shape (a hand-edited row) is set again
        if type(notify := memory.get("udpNotify")) is dict and type(notify.get("path")) is str:
            out["udpNotify"] = notify
        # the STUN values last planned with (absent with STUN off, or until then)
        if type(pushed := memory.get(STUN_PUSHED)) is list and len(pushed) == 3:
            out[STUN_PUSHED] = pushed
        # when the settings were last checked (drift_check_interval); absent until then
        if type(at := memory.get("checkedAt")) is int:
            out["checkedAt"] = at
        # when the names the router lacks were last found by a read of everything
        # (absent_recheck_interval); absent while it lacks none
        if type(at := memory.get("absentAt")) is int:
            out["absentAt"] = at
        # most leaf names per GetParameterValues: a read of more failed 9004 (read_phase
        # _limit_reads); absent unless set
        if type(most := memory.get("gpvLimit")) is int and most >= 1:
            out["gpvLimit"] = most
        # the APN name acsd last wrote to the router (apn.take_back); absent until then
        if type(apn := memory.get(APN_SET)) is str:
            out[APN_SET] = apn
        # whether the read split (readChunk) came from a read of whole objects
        if out["readChunk"] is not None and type(whole := memory.get("readChunkWhole")) is bool:
            out["readChunkWhole"] = whole
        # rows a session added and ended before setting (end_phase); absent when none. A
        # BOOTSTRAP keeps them too: the next plan deletes only those still blank.
        if type(blank := memory.get("blankRows")) is list and (
            rows := [p for p in blank if type(p) is str]
        ):
            out["blankRows"] = rows
        # tables of AddObjects whose answer was lost -> the instance numbers they held
        # then (end_phase); absent when none
        if type(lost := memory.get("lostAdds")) is dict and (
            marks := {
                t: [n for n in held if type(n) is int]
                for t, held in lost.items()
                if type(t) is str and type(held) is list
            }
        ):
            out["lostAdds"] = marks
        # the switches of OWNED_SWITCHES acsd turned on; absent until it does
        if type(on := memory.get(SWITCHED_ON)) is list and (
            owned := [name for name in on if name in OWNED_SWITCHES]
        ):
            out[SWITCHED_ON] = owned
        # the static line acsd put on the router (line_off); absent until it does. A
        # BOOTSTRAP keeps it: a reset router no longer holds it, which its next plan sees.
        if (line := line_off_stored(memory)) is not None:
            out[STATIC_LINE] = line
        # the ParameterKey acsd last wrote, and whether the router echoes it (param_key);
        # absent until acsd writes
        if (key := param_key.stored(memory)) is not None:
            out[param_key.MEMORY_KEY] = key
    if bootstrap:
        # A factory reset forgets everything the CPE held; faults may not hold any more.
        out["secrets"] = {}
        out["faults"] = {}
        out["bounces"] = {}
        out["appliedRevision"] = None
        # a reset may well bring back firmware defaults that take them: tried again
        out["refusedOptional"] = {}
        # a reset may bring another data model: what it holds is listed again
        out.pop("held", None)
        # a factory reset forgets parameter attributes: the notification is set again
        out.pop("udpNotify", None)
        # its ParameterKey is the factory's now (whether it echoes acsd's is kept)
        if (key := out.get(param_key.MEMORY_KEY)) is not None:
            key["written"] = None
        # ownedRows stays: a reset table has none of those rows (they drop out at the
        # next read), and a CPE that says BOOTSTRAP without a reset still holds them
    return out


def _is_secret(change: Change) -> bool:
    # a row's fields carry no secret flag of their own: their names say it
    return change.secret or "password" in change.setting or is_secret_name(change.path)


def masked_faults(
    outcome: Outcome, faults: list[tuple[Change, int, str]] | None = None
) -> list[tuple[Change, int, str]]:
    """``faults`` (``outcome.faulted`` by default) with every secret value of the session
    taken out of the messages. Some firmware repeats the refused value in its FaultString
    ("invalid key 'hunter22'"), and the message is stored on the job, which every token
    of the customer reads; a refusal of a whole batch may name another parameter's
    secret."""
    faults = outcome.faulted if faults is None else faults
    if not faults:
        # (every session that applies changes ends here: testing each applied path's name
        # for a secret was a fiftieth of a boot storm's CPU, for no message at all)
        return faults
    refused = [f[0] for f in [*outcome.faulted, *outcome.refused_optional]]
    values = {
        change.value
        for change in [*outcome.applied, *refused]
        if change.value and _is_secret(change)
    }
    if not values:
        return faults
    out = []
    for change, code, message in faults:
        for value in sorted(values, key=len, reverse=True):  # a value inside another
            message = message.replace(value, MASK)
        out.append((change, code, message))
    return out


#: switches a line turns off again only where a line of acsd's turned them on (memory
#: SWITCHED_ON, kept from the session that asks for them on until one turns them off): a
#: router's second LAN address or backup line that its customer set up is theirs
OWNED_SWITCHES = ("lan.extra.enable", "wan.failover.enable")
SWITCHED_ON = "switchedOn"


def _switched_on(wire: str) -> bool:
    return wire.strip().lower() in ("1", "true", "on", "enable", "enabled", "yes")


def record_outcome(
    memory: dict[str, Any], outcome: Outcome, now: float, policy: RetryPolicy
) -> None:
    for change in outcome.applied:
        memory["faults"].pop(change.path, None)
        if change.fault_path is not None:
            memory["faults"].pop(change.fault_path, None)
        if change.setting == "apn.name":
            memory[APN_SET] = change.value
        if change.setting in OWNED_SWITCHES and not _switched_on(change.value):
            # turned off: the customer's to turn on again, and acsd's no more
            on = [name for name in memory.get(SWITCHED_ON) or () if name != change.setting]
            if on:
                memory[SWITCHED_ON] = on
            else:
                memory.pop(SWITCHED_ON, None)
        for path in change.clears:
            memory["secrets"].pop(path, None)
        if change.secret:
            memory["secrets"][change.path] = value_hash(change.path, change.value)
    for change, code, message in masked_faults(outcome, outcome.refused_optional):
        memory["faults"].pop(change.path, None)  # what an earlier session counted
        memory["refusedOptional"][change.path] = {
            "setting": change.setting,
            "code": code,
            "message": message,
        }
    counted: set[str] = set()
    for change, code, message in masked_faults(outcome):
        memory["secrets"].pop(change.path, None)
        key = fault_key(change)
        if key in counted:
            continue  # two refused fields of one new row: one attempt of that row
        counted.add(key)
        previous = memory["faults"].get(key)
        digest = _fault_hash(change)
        attempts, denied = 1, 0
        if previous and previous.get("hash") == digest:
            attempts = int(previous.get("attempts", 0)) + 1
            denied = int(previous.get("denied", 0))
        delay = min(policy.cap, policy.base * 2 ** (attempts - 1))
        entry = {
            "setting": change.setting,
            "code": code,
            "message": message,
            "attempts": attempts,
            "nextRetry": now + delay,
            # (how far off nextRetry was set: one further off than that was set before the
            # clock went back, see plan._held_back)
            "delay": delay,
            "hash": digest,
        }
        if code == DENIED:  # another fault between two denials starts the count again
            entry["denied"] = denied + 1
        if key != change.path:
            entry["parameter"] = change.path  # what the CPE refused, for the job
        memory["faults"][key] = entry


def fault_key(change: Change) -> str:
    """Where the fault of ``change`` is kept in the memory's ``faults``."""
    return change.path if change.fault_path is None else change.fault_path


def _fault_hash(change: Change) -> str:
    """The value a fault of ``change`` is kept for: another value is tried afresh."""
    value = change.value if change.fault_path is None else change.fault_value or ""
    return value_hash(fault_key(change), value)


def refused_for_good(memory: dict[str, Any], change: Change, code: int) -> bool:
    """Whether an optional parameter the CPE refused with ``code``, naming it, is dropped
    for this CPE (``refusedOptional``): not writable (9008) or lacking (9005) at once;
    denied (9001) when the retry after a denial of this value is denied too. A first
    denial may be a busy CPE's: it is a fault of the job, retried after its back-off."""
    if code in WRITE_REFUSED_FOR_GOOD:
        return True
    if code != DENIED:
        return False
    previous = memory["faults"].get(fault_key(change)) or {}
    return previous.get("code") == DENIED and previous.get("hash") == _fault_hash(change)


#: the job's note after a SetParameterValues answered with Status 1
AFTER_REBOOT = "the CPE applies some values after its next reboot"
#: how the note of a Reboot the CPE refused begins (apply_phase)
REBOOT_REFUSED = "reboot refused ("
#: the start of the job's note after a session whose read failed (nothing applied)
READ_FAILED = "not applied: the router's values could not be read"


def note_read_failed(memory: dict[str, Any], *, revision: int, why: str, now: float) -> bool:
    """A session of the job's revision whose read failed applied nothing (a plan without
    the CPE's values would be guesswork): the job stays pending and its note says why,
    until a session that reads plans again (close_job writes the notes anew). True when
    the job changed."""
    previous = memory.get("job") or {}
    same = previous.get("revision") == revision
    if same and previous.get("state") != PENDING:
        return False  # done (or given up) already: a drift check that could not read
    note = f"{READ_FAILED} ({why}); the next session reads again"
    job = {
        "revision": revision,
        "state": PENDING,
        "attempts": previous.get("attempts", 0) if same else 0,
        "faults": previous.get("faults", []) if same else [],
        "unsupported": previous.get("unsupported", []) if same else [],
        "notes": [n for n in previous.get("notes", []) if same and not n.startswith(READ_FAILED)]
        + [note],
        "updated": clock.iso(now),
    }
    if {**job, "updated": None} == {**previous, "updated": None}:
        return False
    memory["job"] = job
    return True


#: settings whose lack on a router fails its job (an internet line's static address); the
#: rest of what a profile or router cannot take is listed on the job as unsupported
LINE_SETTINGS = ("wan.static.",)


def close_job(
    memory: dict[str, Any],
    *,
    revision: int,
    plan: Plan,
    outcome: Outcome,
    policy: RetryPolicy,
    now: float,
    rebooted: bool = False,
) -> tuple[str, int]:
    """Settle the job after a session that planned; returns (device state, jobs).
    ``rebooted``: the CPE (re)booted before this session, which puts in effect what it
    said it would apply after a reboot."""
    count_writes(memory, plan, outcome)
    # tables not planned this session (not read, held back) keep what was known of them
    memory["ownedRows"] = {**(memory.get("ownedRows") or {}), **plan.owned}
    faults = list(plan.refused)  # final: only a change of the record or the CPE helps
    # An internet line (a billed static address) that the router cannot take is no done
    # job with a note: the line's settings it lacks are final faults, and the job FAILED.
    faults += [
        {"setting": u["setting"], "message": u["reason"], "attempts": 0}
        for u in plan.unsupported
        if u["setting"].startswith(LINE_SETTINGS)
    ]
    faults += plan.pending
    # given up (failed), or to be retried later (waiting)
    faults += plan.failed + plan.waiting
    exhausted = not plan.pending and not plan.waiting
    for change, code, message in masked_faults(outcome):
        fault = memory["faults"][fault_key(change)]
        over = given_up(fault, policy.max_attempts)
        faults.append(
            {
                "setting": change.setting,
                "parameter": change.path,
                "code": code,
                "message": message,
                "attempts": fault["attempts"],
                # given up: no retry is coming (only a change of the record or the CPE)
                "nextRetry": None if over else fault["nextRetry"],
            }
        )
        exhausted = exhausted and over
    if not faults and not outcome.incomplete:
        state = DONE
        memory["appliedRevision"] = revision
    else:
        state = FAILED if faults and exhausted else PENDING
    for fault in faults:
        if fault.get("nextRetry"):
            fault["nextRetry"] = clock.iso(fault["nextRetry"])
    previous = memory.get("job") or {}
    same = previous.get("revision") == revision
    attempts = previous.get("attempts", 0) if same else 0
    notes = list(outcome.notes)
    # Values waiting for a reboot stay so until the CPE has rebooted, whatever later
    # sessions find (they read the new values back before they are in effect).
    waiting = same and not rebooted and AFTER_REBOOT in previous.get("notes", ())
    if waiting and AFTER_REBOOT not in notes:
        notes.append(AFTER_REBOOT)
    unsupported = [u for u in plan.unsupported if not u["setting"].startswith(LINE_SETTINGS)]
    for change, code, message in masked_faults(outcome, outcome.refused_optional):
        # refused this session (later sessions plan without it and list it so themselves)
        reason = refused_reason(change.path, code, message)
        unsupported.append({"setting": change.setting, "reason": reason})
    job = {
        "revision": revision,
        "state": state,
        "attempts": attempts + (1 if not plan.empty or outcome.faulted else 0),
        "faults": faults,
        "unsupported": unsupported,
        "notes": notes,
        "updated": previous.get("updated"),
    }
    # "updated" is when the job last changed: a session that found everything in place
    # (most of them, with drift checks) leaves the job, and so the stored record, as it is.
    if job != previous:
        job["updated"] = clock.iso(now)
        memory["job"] = job
    if state == PENDING:
        return "PROVISIONING", 1
    return "ACTIVE", 0


def count_writes(memory: dict[str, Any], plan: Plan, outcome: Outcome) -> None:
    """``bounces``: in how many planning sessions in a row each value was written (and
    taken). A session that does not write a value again, because the CPE holds it, ends
    its count; values given up for not being kept (Plan.bounced) stay counted. So only
    the values of the last planning session are kept, a few dozen at most."""
    previous = memory.get("bounces") or {}
    counts = {path: previous[path] for path in plan.bounced if path in previous}
    for change in outcome.applied:
        if change.secret or change.fault_path is not None:
            continue  # secrets read back empty; a new row's instance is new every time
        digest = value_hash(change.path, change.value)
        entry = previous.get(change.path)
        count = 1
        if entry and entry.get("hash") == digest:
            count = int(entry.get("count", 0)) + 1
        counts[change.path] = {"hash": digest, "count": count}
    memory["bounces"] = counts


def forget_reboot_note(memory: dict[str, Any], now: float) -> bool:
    """Take the AFTER_REBOOT note off the job, and the refused Reboot's that led to it (the
    CPE rebooted, in a session that did not plan: drift checks off, or its read failed);
    True when there was one."""
    job = memory.get("job")
    if not job or AFTER_REBOOT not in job.get("notes", ()):
        return False
    job["notes"] = [
        note
        for note in job["notes"]
        if note != AFTER_REBOOT and not note.startswith(REBOOT_REFUSED)
    ]
    job["updated"] = clock.iso(now)
    return True


def failed_at(memory: dict[str, Any]) -> int | None:
    """The record revision whose job FAILED (gave up on a setting), if the last job did."""
    job = memory.get("job")
    if isinstance(job, dict) and job.get("state") == FAILED and type(job.get("revision")) is int:
        return job["revision"]
    return None


def is_provisioned(memory: dict[str, Any], revision: int) -> bool:
    """The router was last seen holding every setting of record revision ``revision`` (the
    device's ``status.provisioned``); an operator's write bumps the revision, so this is
    false again until a session has applied and read back the new settings."""
    return memory.get("appliedRevision") == revision
