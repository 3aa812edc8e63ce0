"""The read phase of a session: which names to ask a CPE for, in which calls, and what its
answers (and faults) teach: what it lacks, what its kind lacks (:mod:`acsd.provisioning.absent`),
which names fault alone, how large an answer it can build, whether it expands partial paths
(else its names are listed with GetParameterNames first)."""

from __future__ import annotations

import functools
from typing import Any

from acsd import clock
from acsd.cwmp import rpc
from acsd.cwmp.session import CwmpSession
from acsd.log import Once, get_logger, peer_text
from acsd.provisioning.absent import Kind, kind_of
from acsd.provisioning.internet import needs_line_dns
from acsd.provisioning.jobs import UNANSWERED_KEY
from acsd.provisioning.plan import along_targets
from acsd.provisioning.profile_schema import is_secret_name
from acsd.provisioning.session_state import NOTHING, SessionState
from acsd.provisioning.status import Extraction, ReadPlan, fetch_names, untyped
from acsd.store.base import DeviceRecord

log = get_logger("acsd.session")

#: times one session halves a GetParameterValues the CPE failed as a whole (9002 internal
#: error, 9004 resources exceeded: weak CPEs that cannot build a large answer); enough to
#: read ~100 names ten at a time
MAX_GPV_SPLITS = 32
#: faults a CPE answers for a name it does not have: 9005 as TR-069 says, 9003 (invalid
#: arguments) as some firmware does
UNKNOWN_NAME = frozenset({9005, 9003})
#: the fault of a CPE that cannot answer that many names at once (TR-069 A.5.1)
RESOURCES_EXCEEDED = 9004
#: names kept per CPE as listed by GetParameterNames (memory "held"): more than any
#: profile reads outside its objects
MAX_HELD = 512


#: routers and names session.gpv_incomplete was logged for
_LEFT_OUT_TOLD = Once()


#: sessions in a row without the answer to a read of partial paths that show a CPE dies
#: of them (ReadPhase._partial_paths_unanswered)
UNANSWERED_LIMIT = 2


class ReadPhase(SessionState):
    """Reading the CPE: the GetParameterValues of a session and what their answers say."""

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
        self._queue_read(self._read_names())

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
            keys = list(self.desired.settings)
            if needs_line_dns(self.desired):
                # the line's DNS servers join the settings after this read, from what it
                # reports: what they are written at is compared with it then
                keys.append("wan.static.dns")
            targets = [t for key in keys for t in self.profile.settings.get(key, ())]
            targets += [t for _key, t in along_targets(self.profile, self.desired.names)]
            wanted = [t.path for t in targets]
            if needs_line_dns(self.desired):
                # without DNS servers to give the line, how the router reaches acsd (by
                # name or by address) decides whether the line may go
                wanted.append(self.profile.root + "ManagementServer.URL")
            wanted += [path for t in targets for path, _test in t.when]
            wanted += [t.supported for t in targets if t.supported is not None]
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
        """Names this CPE may well lack: what CPEs of its kind lacked and, on a bootstrap,
        a firmware change or a re-check (which forget the record's list), what it lacked."""
        kind = self._kind()
        suspects = self.hints.get(kind) if kind is not None else frozenset()
        # This CPE's own: a sibling that answers a name must not make it fail the read
        # of this one again (and the hints do not outlive the process)
        suspects = suspects.union(self.memory.get("faultedAlone", ()))
        forgot = self.bootstrap or self.new_firmware or self.recheck_absent
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
        self._on_gpv_answer(session, response)
        self._judge_now()
        if not self.fetch.queue and self.fetch.probe is None:
            self._read_over(session)

    def _judge_now(self) -> None:
        """The names _listed_apart left for a listing of the root: listed once the read's
        first call is answered (its values first, whatever the listing costs), unless
        another listing is on its way (then after it) or the read failed."""
        fetch = self.fetch
        if fetch.judge is None or fetch.probe is not None:
            return
        names, fetch.judge = fetch.judge, None
        if not fetch.failed and self.profile is not None:
            self._probe(self.profile.root, names)

    def _read_over(self, session: CwmpSession) -> None:
        """The read is over: what faulted alone is taught to the CPE's kind, unless no name
        of the read answered at all. Such a CPE (one answering 9005 to everything, as some
        do while their data model loads after a boot) proves nothing about its kind, nor
        about itself: its read failed, nothing is applied or remembered as lacking, and
        the next session asks again."""
        lacking, self.fetch.lacking = self.fetch.lacking, []
        if not lacking and not self.fetch.emptied:
            return
        if not self.fetch.ok:
            refused = [*lacking, *sorted(self.fetch.emptied)]
            self.fetch.absent.difference_update(lacking)
            self.fetch.emptied = NOTHING  # an empty table, as little as a lacking name
            self.fetch.skipped.clear()
            alone = self.memory.get("faultedAlone")
            if alone:
                self.memory["faultedAlone"] = [n for n in alone if n not in refused]
            self.fetch.failed = True
            self.fetch.failure = f"it refused every name asked for ({len(refused)})"
            log.warning("session.read_refused", serial=session.serial, names=len(refused))
        elif lacking and (kind := self._kind()) is not None:
            self.hints.absent(kind, lacking)

    def _on_gpv_answer(self, session: CwmpSession, response: rpc.Message) -> None:
        names = self.fetch.queue.pop(0) if self.fetch.queue else []
        if isinstance(response, rpc.GetParameterValuesResponse):
            self.fetch.largest = max(self.fetch.largest, session.answer_size)
            objects = tuple(name for name in names if name.endswith("."))
            if objects and self._unexpanded(response, objects):
                self._partial_paths_unexpanded(session, names)
                return
            if objects:
                # answered as TR-069 says: a session that died of one before was not its fault
                self.memory.pop(UNANSWERED_KEY, None)
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
                    value = p.value
                    if value and _is_secret(p.name):
                        # Firmware that reads a passphrase back in clear (TR-069 says
                        # ""): acsd compares what it applied by hash and needs none of
                        # it, and the stored tree is no place for the router's secrets.
                        value = ""
                    self.values[p.name] = [value, p.type]
            # (a steady session's read, of leaves alone, pays one comparison for this)
            if objects or len(response.parameters) < len(names):
                self._left_out(session, names, response)
            self._flat_values = None
            self.fetch.ok.extend(names)
            if self.fetch.skipped or self.fetch.unreadable:
                self._read_after_all(names)
            if len(names) == 1 and (kind := self._kind()) is not None:
                self.hints.present(kind, names)
            if len(names) == 1:
                self._no_longer_faulting(names[0])
            if self.plan is not None and not self.fetch.queue:
                self._plan_read_over(session)
            return
        assert isinstance(response, rpc.Fault)
        self._on_gpv_fault(session, names, response)

    def _left_out(
        self, session: CwmpSession, names: list[str], response: rpc.GetParameterValuesResponse
    ) -> None:
        """An answer without a value for some names asked (TR-069 wants one for each):
        no refusal, and none of the reads that a fault starts; what it leaves out holds
        no value this session, so a setting there is written as to a value lost. Said
        once per router and names: otherwise only the job's fault, sessions later."""
        got = {p.name for p in response.parameters}
        missing = [n for n in names if n not in got and not n.endswith(".")]
        if missing and _LEFT_OUT_TOLD.first((session.serial, tuple(missing))):
            log.warning(
                "session.gpv_incomplete",
                serial=session.serial,
                count=len(missing),
                missing=missing[:20],
                reason="the GetParameterValuesResponse holds no value for names asked",
            )

    def _on_gpv_fault(self, session: CwmpSession, names: list[str], response: rpc.Fault) -> None:
        unknown = response.code in UNKNOWN_NAME
        if response.code == RESOURCES_EXCEEDED and len(names) == 1:
            # 9004 for one name alone is about that name, not about how many a call
            # holds: the halving that led here taught no limit (one set now would come
            # down to a name a call, for good)
            self.memory.pop("gpvLimit", None)
        if unknown and len(names) == 1 and self._empty_table(names[0]):
            # TR-069 answers a partial path of an object without instances with an empty
            # list; some firmware faults 9005 on an empty table instead. A table of the
            # operator's rows that the data model defines is taken as empty, not lacking
            # (which would be remembered until a BOOTSTRAP): its rows are added, and an
            # AddObject refused with 9005 too shows it really lacking (apply phase).
            # Asked apart from now on: one call, not a search by halves, per session;
            # and no leaf of a read plan is gone for it (no read of everything).
            self.fetch.emptied |= {names[0]}
            self._faulted_alone(names[0])
            if self.plan is not None and not self.fetch.queue:
                self._plan_read_over(session)
        elif unknown and self.plan is not None:
            # A leaf of the plan is gone (new firmware, a removed object): read it all, which
            # also finds out what exactly is missing.
            self.fetch.queue.clear()
            self._read_whole(session, "a leaf of the read plan is gone")
        elif unknown and len(names) > 1:
            # One unknown name fails the whole call: find out which. Names that another
            # CPE of this kind lacked meanwhile go apart. Else, once a session, the data
            # model's top-level objects are listed (_on_probe): a router without a modem
            # lacks all of Device.Cellular., and one listing finds that where a search
            # costs calls. What is still unknown after it is searched by halves (_split),
            # so k unknown names among n cost about 2k*log2(n/k) calls, not n (2n-1 at
            # worst, a CPE that knows none of them: ~80 for the longest list, within
            # max_requests_per_session).
            assert self.profile is not None
            apart = self._apart(names)
            if apart:
                self.fetch.queue[:0] = apart
            elif self.profile.root not in self.fetch.probed:
                self._probe(self.profile.root, names)
            elif named := self._named(names, response):
                self._take_apart(names, named)
            else:
                self.fetch.queue[:0] = self._split(names)
        elif unknown and names:
            self.fetch.absent.update(names)
            self._no_longer_faulting(names[0])  # lacked, not faulting: never asked again
            self.fetch.lacking.extend(names)
        elif len(names) == 1 and (listing := self._to_list(names[0])) is not None:
            # One name faulting alone with another code (9002 "internal error"): firmware
            # that answers so for a name it lacks, or one that cannot read a name it has.
            # Its object's listing tells which: a name not listed is lacking, as after a
            # 9005 (remembered, not asked again); one listed is handled as below.
            # Otherwise a router that faults 9002 for each 6 GHz leaf it lacks would have
            # its settings wait on them for good.
            self._probe(listing, names)
            self.fetch.probe_fault = (response.code, response.string)
        elif len(names) > 1 and self.fetch.splits < MAX_GPV_SPLITS:
            # A CPE that cannot build the whole answer (9002/9004: its memory, its buffer)
            # answers smaller questions; one that faults a name it lacks with another code
            # gets it narrowed down the same way: names that failed alone before go apart,
            # the rest in halves.
            self.fetch.splits += 1
            if response.code == RESOURCES_EXCEEDED:
                self._limit_reads(session, names)
            # (not by the fault's text, as after a 9005: a 9002 naming one name may still
            # be one the CPE has but cannot read, which a search by halves tells apart)
            self.fetch.queue[:0] = self._apart(names) or _halves(names)
        elif len(names) == 1 and self.profile is not None and not self.profile.writes_at(names[0]):
            self.fetch.skipped.append(names[0])
            self._faulted_alone(names[0])
            # One name the CPE cannot answer for (an internal error, a vendor code) that
            # only status comes from: left out of this session, asked apart from now on (a
            # hint, not a verdict: an answer clears it), and the rest goes on. Failing the
            # whole read would leave such a router unprovisioned for good.
            self.fetch.lacking.extend(names)
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
                self.fetch.lacking.extend(names)
            # Without the CPE's values a plan would be guesswork (a table it could not
            # read is not an empty one, a leaf not one it lacks): apply nothing this time.
            self.fetch.queue.clear()
            self.fetch.failed = True
            on = names[0] if len(names) == 1 else f"{len(names)} names"
            self.fetch.failure = f"fault {response.code} on {on}"

    def _named(self, names: list[str], fault: rpc.Fault) -> str | None:
        """The one name of ``names`` the fault's text names (many stacks write "Invalid
        parameter name: NAME"), or None when it names none or several. A name the CPE
        lacks then costs two or three calls (see _take_apart) where a search by halves
        costs ~2*log2(n/k) (a first session of a router lacking nine names scattered over
        the Wi-Fi objects took 35 requests). The text is only a hint, followed at most
        MAX_GPV_SPLITS times a session: a CPE whose texts mislead costs a call each."""
        if len(names) < 3 or not fault.string or self.fetch.splits >= MAX_GPV_SPLITS:
            return None
        hits = [n for n in names if _mentions(fault.string, n)]
        if len(hits) != 1:
            return None
        self.fetch.splits += 1
        return hits[0]

    def _take_apart(self, names: list[str], named: str) -> None:
        """Ask ``names`` again without ``named``, and find out about ``named`` by listing
        its object (once a session; it judges the object's other names too, see
        _check_listed), or else by asking for it alone."""
        assert self.profile is not None
        self.fetch.queue.insert(0, [n for n in names if n != named])
        listing = _parent(named.rstrip("."))
        if len(listing) > len(self.profile.root) and listing not in self.fetch.probed:
            self._probe(listing, [named])
        else:
            self.fetch.queue.insert(1, [named])

    def _listed_lacking(self, session: CwmpSession, gone: list[str]) -> None:
        """A listing showed the CPE lacks ``gone``."""
        log.debug("session.read_probed", serial=session.serial, lacking=len(gone))
        self.fetch.absent.update(gone)
        for name in gone:
            self._no_longer_faulting(name)  # lacked, not faulting: never asked again
        self.fetch.lacking.extend(gone)

    def _probe(self, path: str, names: list[str]) -> None:
        """List ``path`` (NextLevel true) to find what of ``names`` the CPE lacks (and, of
        the root, what _listed_apart left for it)."""
        if self.fetch.judge is not None and self.profile is not None and path == self.profile.root:
            names, self.fetch.judge = [*names, *self.fetch.judge], None
        self.fetch.probe, self.fetch.probing = names, path
        self.fetch.probed += (path,)

    def _to_list(self, name: str) -> str | None:
        """The object whose listing tells whether the CPE has ``name`` (which faulted alone
        with another code than an unknown name's), or None when no listing would tell
        more: the object was listed this session (what it showed is judged then), or a
        listing showed ``name`` before (memory "held")."""
        assert self.profile is not None
        listing = _parent(name.rstrip("."))
        if len(listing) <= len(self.profile.root) or listing in self.fetch.probed:
            return None
        return None if name in self._held() else listing

    def _check_listed(
        self,
        session: CwmpSession,
        names: list[str],
        response: rpc.Message,
        fault: tuple[int, str] | None,
    ) -> None:
        """The listing (NextLevel true) of the object ``names`` are in: a name of that
        object it does not show is lacking, every name below it if the object is not there
        (9005), and that goes for the names still to be asked too (one listing serves
        them all); the names it shows are kept as held. ``fault``: ``names`` is the one
        name that faulted alone so (9002), handled as usual (_on_gpv_fault) if it is
        there. Otherwise the names that are there, or all when the listing tells nothing
        (another fault, or an empty one), are asked again (by halves if none went)."""
        path = self.fetch.probing
        listed: set[str] = set()
        if isinstance(response, rpc.GetParameterNamesResponse):
            listed = {p.name for p in response.parameters if p.name.startswith(path)}
        missing = isinstance(response, rpc.Fault) and response.code == 9005

        def lacking(n: str) -> bool:
            if missing:
                return n.startswith(path)  # the object is not there, nor anything in it
            # (an empty listing, or another fault, tells nothing)
            return bool(listed) and _parent(n.rstrip(".")) == path and n not in listed

        asked = [*names, *(n for call in self.fetch.queue for n in call)]
        gone = list(dict.fromkeys(n for n in asked if lacking(n)))
        if gone:
            self._listed_lacking(session, gone)
            drop = set(gone)
            queue = [[n for n in call if n not in drop] for call in self.fetch.queue]
            self.fetch.queue[:] = [call for call in queue if call]
        # what the listing showed of the names asked: not listed again in later sessions
        there = {n for n in asked if n in listed}
        held = set(self.memory.get("held") or ())
        if not there <= held:
            self.memory["held"] = sorted(held | there)[:MAX_HELD]
        rest = [n for n in names if n not in gone]
        if fault is not None:
            code, text = fault
            if not rest:
                # said as any fault is (the code is the CPE's), and what acsd made of it
                _log_gpv_fault(session, rpc.Fault(code=code, string=text), names, lacking=True)
            else:
                self._on_gpv_fault(session, rest, rpc.Fault(code=code, string=text))
        elif rest:
            self.fetch.queue[:0] = [rest] if gone else self._split(rest)

    def _split(self, names: list[str]) -> list[list[str]]:
        """A batch with a name the CPE lacks, in halves that keep the leaves of one object
        together (a missing object takes them all with it: the search is over objects,
        not names); the leaves of one object are listed with it instead (_on_probe), once
        a session, then halved."""
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(name if name.endswith(".") else _parent(name), []).append(name)
        if len(groups) > 1:
            units = list(groups.values())
            half = len(units) // 2
            return [[n for u in units[:half] for n in u], [n for u in units[half:] for n in u]]
        [path] = groups
        if len(names) == 1:
            return [names]
        if path in self.fetch.probed or (path.endswith(".") and names == [path]):
            return _halves(names)
        self._probe(path, names)
        return []

    def _on_probe(self, session: CwmpSession, response: rpc.Message) -> None:
        """A listing (GetParameterNames, NextLevel true) for a batch that faulted. Of the
        root: the names under a top-level object not listed are lacking (a router without
        a modem, without PPP). Of the one object all the batch's leaves are in: those not
        listed are lacking, all of them if the object is not there (9005). The rest is
        asked again. Another fault, or a listing that shows nothing to go by (none of the
        objects of the batch, or nothing at all), leaves the batch to the search by
        halves. Also the listing for one name a fault's text named, or that faulted alone
        with another code (see _check_listed)."""
        assert self.profile is not None
        names, self.fetch.probe = self.fetch.probe or [], None
        fault, self.fetch.probe_fault = self.fetch.probe_fault, None
        path, root = self.fetch.probing, self.profile.root
        if path != root:
            self._check_listed(session, names, response, fault)
        else:
            gone: list[str] = []
            if isinstance(response, rpc.GetParameterNamesResponse):
                # by their top-level objects: firmware that ignores NextLevel lists deeper
                there = {_top(root, p.name) for p in response.parameters if p.name.startswith(root)}
                judged = [n for n in names if n.startswith(root) and len(n) > len(root)]
                gone = [n for n in judged if _top(root, n) not in there]
                # A listing that shows none of the objects read (the rest of the read too:
                # a first read lists its suspects alone) is not believed.
                queued = (n for call in self.fetch.queue for n in call)
                reading = [*judged, *self.fetch.ok, *queued]
                read_tops = {_top(root, n) for n in reading if n.startswith(root)}
                if read_tops.isdisjoint(there):
                    gone = []
                elif (kind := self._kind()) is not None:
                    self.hints.listed_tops(
                        kind, {_top(root, n) for n in gone}, read_tops.intersection(there)
                    )
            if not gone:
                self.fetch.queue[:0] = self._split(names)
            else:
                self._listed_lacking(session, gone)
                lacking = set(gone)
                rest = [n for n in names if n not in lacking]
                if rest:
                    self.fetch.queue.insert(0, rest)
        self._judge_now()
        if not self.fetch.queue and self.fetch.probe is None:
            self._read_over(session)

    # --- CPEs that do not expand partial paths ---------------------------------------------

    def _shallow(self) -> bool:
        """Whether this CPE answers a partial path with the object alone (or dies of it,
        as genieacs-sim does) instead of the parameters below it: its profile says so
        (``partial_paths = false``), or it or a CPE of its kind showed it."""
        if self.profile is None:
            return False
        if not self.profile.spec.partial_paths or self.memory.get("partialPaths") is False:
            return True
        kind = self._kind()
        return kind is not None and self.hints.is_shallow(kind)

    def _queue_read(self, names: list[str], *, apart: bool = False) -> None:
        """Queue the read of ``names``: one GetParameterValues (``apart``: with what CPEs
        of this kind lack apart), or on a CPE that does not expand partial paths, first the
        GetParameterNames that say what there is to read."""
        if not names:
            return
        if self._shallow():
            self._list_first(names)
        elif apart:
            names = self._listed_apart(names)
            self.fetch.queue.extend(self._chunked(self._apart(names) or [names]))
        else:
            self.fetch.queue.extend(self._chunked([names]))

    def _listed_apart(self, names: list[str]) -> list[str]:
        """``names`` but for suspects (see _suspects) that one listing of the root judges
        after the rest is read: all of them while no CPE of this kind was listed, then
        those whose top-level object CPEs of the kind lacked. Two or more: one listing
        costs less than a call for each (a fixed-line router lacks Device.Cellular. and
        Device.PPP.: its first read is one GetParameterValues and a listing, not three
        GetParameterValues)."""
        assert self.profile is not None
        kind, root = self._kind(), self.profile.root
        if kind is None or self.plan is not None or root in self.fetch.probed:
            return names
        suspects = self._suspects()
        if suspects.isdisjoint(names):
            return names
        tops = self.hints.tops_lacking(kind)
        judged = [
            n
            for n in names
            if n in suspects
            and n.startswith(root)
            and len(n) > len(root)
            and (tops is None or _top(root, n) in tops)
        ]
        if len(judged) < 2:
            return names
        self.fetch.judge = judged
        listed = set(judged)
        return [n for n in names if n not in listed]

    def _list_first(self, names: list[str]) -> None:
        """List what ``names`` stand for before reading: each partial path whole
        (NextLevel false), and the object of each other name that is not known to be
        there (NextLevel true): such a CPE may die of a name it does not hold (genieacs-sim
        does), so every name it is asked for is one it listed."""
        partials = [n for n in names if n.endswith(".")]
        held = self._held()
        listing = [(p, False) for p in partials]
        for name in names:
            if name.endswith(".") or name in held or name.startswith(tuple(partials)):
                continue
            if (_parent(name), True) not in listing:
                listing.append((_parent(name), True))
        fetch = self.fetch
        if fetch.listing is None or fetch.listed is None or fetch.unlisted is None:
            fetch.listing, fetch.listed, fetch.unlisted = [], set(), []
        fetch.unlisted.extend(names)
        fetch.listing.extend(listing)
        if not listing:
            self._listed(None)

    def _held(self) -> set[str]:
        """Names this CPE holds without listing them again: what listings showed before
        (memory "held") and the leaves of its read plan (read by name before)."""
        held = set(self.memory.get("held") or ())
        return held.union(self.plan.paths) if self.plan is not None else held

    def _on_gpn(self, session: CwmpSession, response: rpc.Message) -> None:
        fetch = self.fetch
        assert fetch.listing and fetch.listed is not None and fetch.unlisted is not None
        path, _next_level = fetch.listing.pop(0)
        if isinstance(response, rpc.GetParameterNamesResponse):
            # only what was asked for: what else a CPE lists would pile up unbounded
            fetch.listed.update(p.name for p in response.parameters if p.name.startswith(path))
        elif isinstance(response, rpc.Fault) and response.code not in UNKNOWN_NAME:
            _log_gpv_fault(session, response, [path])
            fetch.listing.clear()
            fetch.unlisted.clear()
            self.fetch.failed = True
            self.fetch.failure = f"fault {response.code} on {path} (GetParameterNames)"
            return
        # (9005 and the like: nothing there, so nothing below it to read)
        if not self.fetch.listing:
            self._listed(session)

    def _listed(self, session: CwmpSession | None) -> None:
        """The listings are in: read by name what they showed, and take the rest as
        lacking (never asked for, never set)."""
        fetch = self.fetch
        names, fetch.unlisted = fetch.unlisted or [], []
        listed, fetch.listed = fetch.listed or set(), set()
        covered = tuple(n for n in names if n.endswith("."))
        held = self._held()
        # the objects _list_first listed for names not known to be there
        parents = {
            _parent(n)
            for n in names
            if not n.endswith(".") and n not in held and not n.startswith(covered)
        }
        reading: list[str] = []
        for name in names:
            if name.endswith("."):
                below = sorted(n for n in listed if n.startswith(name) and not n.endswith("."))
                if below or name in listed:
                    reading.extend(below)
                    fetch.ok.append(name)  # read whole, as far as reading goes
                    if self.apply is not None and self.apply.reread:
                        for old in [n for n in self.values if n.startswith(name)]:
                            del self.values[old]
                else:
                    fetch.absent.add(name)
                    fetch.lacking.append(name)
            elif name in listed or (
                # held, and not listed again this time: there still
                name in held and not name.startswith(covered) and _parent(name) not in parents
            ):
                reading.append(name)
            else:
                fetch.absent.add(name)
                fetch.lacking.append(name)
        self._flat_values = None
        found = {
            n for n in names if not n.endswith(".") and n in reading and not n.startswith(covered)
        }
        lost = {n for n in names if n in fetch.absent}
        kept = set(self.memory.get("held") or ()) - lost
        self.memory["held"] = sorted(kept | found)[:MAX_HELD]
        reading = list(dict.fromkeys(reading))
        if reading:
            fetch.queue.extend(self._chunked([reading]))
        elif session is not None:
            self._read_over(session)

    def _unexpanded(
        self, response: rpc.GetParameterValuesResponse, objects: tuple[str, ...]
    ) -> bool:
        """Whether the answer shows the CPE does not expand partial paths: an object
        answered alone that cannot be empty (a table of the operator's rows can: the
        object's name and no row is what firmware that names objects answers for it)."""
        return any(not self._empty_table(o) for o in _echoed(response, objects))

    def _partial_paths_unexpanded(self, session: CwmpSession, names: list[str]) -> None:
        """The CPE answered a partial path with a parameter of that very name (the
        object alone), as genieacs-sim's older releases do: nothing below it was read.
        This CPE, and CPEs of its kind, are listed with GetParameterNames from now on;
        this read starts over that way (what else the call answered is read again)."""
        log.info("session.partial_paths_unexpanded", serial=session.serial)
        self.memory["partialPaths"] = False
        if (kind := self._kind()) is not None:
            self.hints.shallow(kind)
        rest = [n for call in self.fetch.queue for n in call]
        self.fetch.queue.clear()
        self._list_first(list(dict.fromkeys([*names, *rest])))

    def _partial_paths_unanswered(self, session: CwmpSession) -> None:
        """The session ends without the answer to a GetParameterValues of partial paths:
        the current genieacs-sim dies of one (its process starts again and Informs anew,
        the request never answered), and a CPE asked the same in every session would
        never be read. The second such session in a row makes this CPE and its kind
        listed with GetParameterNames, as one that answers the object alone is; one lost
        answer alone (a dropped line) proves nothing, and an answer in between clears it."""
        outstanding = session.outstanding
        if outstanding is None or not isinstance(outstanding[1], rpc.GetParameterValues):
            return
        if self.answer_too_large_seen:
            return  # answered, only too large to read (answer_too_large splits the read)
        if not any(name.endswith(".") for name in outstanding[1].names) or self._shallow():
            return
        lost = self.memory.get(UNANSWERED_KEY, 0) + 1
        if lost < UNANSWERED_LIMIT:
            self.memory[UNANSWERED_KEY] = lost
            return
        log.warning("session.partial_paths_unanswered", serial=session.serial, sessions=lost)
        self.memory.pop(UNANSWERED_KEY, None)
        self.memory["partialPaths"] = False
        if (kind := self._kind()) is not None:
            self.hints.shallow(kind)

    def _plan_read_over(self, session: CwmpSession) -> None:
        """The read plan's leaves are in: read everything after all when the CPE left
        some out or a ref points elsewhere now."""
        assert self.profile is not None and self.plan is not None
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

    def _empty_table(self, name: str) -> bool:
        """Whether ``name`` is the object of a table whose rows come from the operator's
        record (not from settings: a static line's entries), which a 9005 alone on may
        mean empty (see _on_gpv_answer)."""
        assert self.profile is not None
        return any(s.object == name and s.when is None for s in self.profile.tables.values())

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

    def _limit_reads(self, session: CwmpSession, names: list[str]) -> None:
        """The CPE answered 9004 (resources exceeded) to a read of ``names``, leaves
        alone: later sessions ask for at most half as many per call (memory
        ``gpvLimit``), instead of failing the read of every session once or more before
        its halves go through. Firmware's limit, kept through a factory reset and
        forgotten with new firmware. Not for a read of objects: how many values
        those hold says nothing of how many names the CPE can take in one call."""
        if any(name.endswith(".") for name in names):
            return
        limit = (len(names) + 1) // 2
        known = self.memory.get("gpvLimit")
        if known is not None and known <= limit:
            return
        self.memory["gpvLimit"] = limit
        log.info("session.read_limited", serial=session.serial, names=len(names), per_call=limit)

    def _chunked(self, calls: list[list[str]]) -> list[list[str]]:
        """``calls`` with none longer than this CPE's ``readChunk`` or ``gpvLimit``, if it
        has either."""
        limits = [n for n in (self.memory.get("readChunk"), self.memory.get("gpvLimit")) if n]
        limit = min(limits, default=None)
        if not limit:
            return calls
        self.fetch.widest = max(self.fetch.widest, *(len(names) for names in calls))
        if all(len(names) <= limit for names in calls):
            return calls
        return [names[i : i + limit] for names in calls for i in range(0, len(names), limit)]

    def _status_fields(self, flat: dict[str, str], names: tuple[str, ...]) -> dict[str, Any]:
        """Only ``names`` of the status over ``flat``, for a check that needs no more (the
        LAN a DHCP pool must lie in): a first session's status is extracted whole at its
        end, from its read plan's work, and need not be twice."""
        assert self.profile is not None
        if self._extracted is not None and self._extracted[0] is flat:
            status = self._extracted[1]
            return {name: status[name] for name in names if name in status}
        return self._extraction_over(flat, shared=False).status_fields(names)

    def _status_and_identity(
        self, flat: dict[str, str], *, shared: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Status and identity over ``flat``, worked out once per set of values: the plan's
        checks and the session's result read the same ones (``shared``: see Extraction)."""
        assert self.profile is not None
        if self._extracted is not None and self._extracted[0] is flat:
            return self._extracted[1], self._extracted[2]
        status, ident = self._extraction_over(flat, shared=shared).status_and_identity()
        self._extracted = (flat, status, ident)
        return status, ident

    def _extraction_over(self, flat: dict[str, str], *, shared: bool) -> Extraction:
        """The session's extraction over ``flat``: the one made last if it is over these
        values, else a new one that reuses its work on the names (``like``)."""
        assert self.profile is not None
        extraction = self._extraction
        if extraction is None or extraction.values is not flat:
            extraction = self._extraction = Extraction(
                self.profile, flat, shared=shared, like=extraction
            )
        return extraction


def _mentions(text: str, name: str) -> bool:
    """Whether ``text`` holds ``name`` whole (not as part of a longer name)."""
    start = text.find(name)
    while start >= 0:
        end = start + len(name)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not _name_char(before) and not _name_char(after):
            return True
        start = text.find(name, start + 1)
    return False


def _name_char(char: str) -> bool:
    return char.isalnum() or char in "._-{}"


#: whether a parameter holds a secret, by name (the same few hundred names come from
#: every CPE: a cache look-up, not a pattern match, per value read)
_is_secret = functools.lru_cache(maxsize=20_000)(is_secret_name)


def _halves(names: list[str]) -> list[list[str]]:
    half = len(names) // 2
    return [names[:half], names[half:]]


def _top(root: str, name: str) -> str:
    """The top-level object ``name`` is in (``Device.Cellular.`` for
    ``Device.Cellular.Interface.``), or ``name`` itself if it is a parameter of the root,
    as a GetParameterNames of ``root`` with NextLevel true lists them."""
    dot = name.find(".", len(root))
    return name if dot < 0 else name[: dot + 1]


def _parent(name: str) -> str:
    """The object a parameter is in: ``A.B.`` for ``A.B.C``."""
    return name[: name.rindex(".") + 1]


def _echoed(response: rpc.GetParameterValuesResponse, objects: tuple[str, ...]) -> set[str]:
    """The partial paths asked for that an answer holds a parameter named as, and
    nothing below (TR-069 has the parameters below a partial path answered, never the
    path itself); none at all when one of them has something below: firmware that adds
    the object's own name beside its parameters does expand them."""
    echoed = {p.name for p in response.parameters if p.name.endswith(".") and p.name in objects}
    if echoed and any(
        p.name != o and p.name.startswith(o) for p in response.parameters for o in echoed
    ):
        return set()
    return echoed


def _log_gpv_fault(
    session: CwmpSession, response: rpc.Fault, names: list[str], **extra: Any
) -> None:
    log.warning(
        "session.gpv_fault",
        serial=session.serial,
        code=response.code,
        fault=peer_text(response.string, 256),  # (the CPE's text: of any length)
        name=names[0] if len(names) == 1 else None,
        **extra,
    )
