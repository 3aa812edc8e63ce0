"""One virtual router: its tree, its CWMP state and what it does with each ACS request.

Nothing here does I/O or sleeps: the session code (:mod:`acsd.sim.session`) moves the
messages and the runner decides when sessions happen. Time comes from an injected monotonic
clock, so tests can move it forward.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from acsd.cwmp import rpc
from acsd.sim.identity import prefix_salt, router_values
from acsd.sim.template import PathRules, Template
from acsd.sim.tree import CwmpFault, Tree, iso_time

log = logging.getLogger(__name__)

BOOTSTRAP = "0 BOOTSTRAP"
BOOT = "1 BOOT"
PERIODIC = "2 PERIODIC"
SCHEDULED = "3 SCHEDULED"
VALUE_CHANGE = "4 VALUE CHANGE"
CONNECTION_REQUEST = "6 CONNECTION REQUEST"
TRANSFER_COMPLETE = "7 TRANSFER COMPLETE"

FIRMWARE = "1 Firmware Upgrade Image"
MAX_EVENTS = 64  # EventStruct[64] in the CWMP schema
# RouterStats keeps this many sessions (and SPVs, faults) of history; counters count them all
STATS_HISTORY = 256

SUPPORTED_METHODS = [
    "GetRPCMethods", "SetParameterValues", "GetParameterValues", "GetParameterNames",
    "SetParameterAttributes", "GetParameterAttributes", "AddObject", "DeleteObject",
    "Reboot", "Download", "Upload", "FactoryReset", "ScheduleInform",
]  # fmt: skip


@dataclass(slots=True)
class _Timer:
    """Something that happens on its own later: a ScheduleInform expiring, a transfer
    finishing."""

    due: float
    events: list[rpc.EventStruct]
    transfer: rpc.TransferComplete | None = None
    reboot: bool = False


@dataclass(slots=True)
class FaultRecord:
    """A fault the router answered an ACS request with."""

    session: int  # 1-based number of the session (RouterStats.sessions at the time)
    method: str
    code: int
    string: str
    parameters: list[tuple[str, int]] = field(default_factory=list)  # SPV: (name, code)

    def to_json(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "method": self.method,
            "code": self.code,
            "string": self.string,
            "parameters": [{"name": n, "code": c} for n, c in self.parameters],
        }


@dataclass(slots=True)
class RouterStats:
    """What one router saw, for tests: ``rpcs[i]`` are the method names of the ACS requests
    in session i (0-based, failed sessions included), ``events[i]`` that session's Inform
    events, ``spv`` every SetParameterValues received as (name, value) pairs, ``gpv`` the
    names of every GetParameterValues, ``faults`` the faults answered."""

    sessions: int = 0
    ok: int = 0
    failed: int = 0
    rpcs: list[list[str]] = field(default_factory=list)
    events: list[list[str]] = field(default_factory=list)
    spv: list[list[tuple[str, str]]] = field(default_factory=list)
    gpv: list[list[str]] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    #: wall-clock time (time.time()) the current or last session began, and the last one
    #: that ended with 204 (its Inform was committed before that 204: tests compare the two)
    started: float | None = None
    last_ok_started: float | None = None

    def begin(self, events: list[str]) -> None:
        self.sessions += 1
        self.started = time.time()
        self.rpcs.append([])
        self.events.append(events)
        _trim(self.rpcs)
        _trim(self.events)

    def session_gpvs(self, session: int) -> list[list[str]]:
        """The names of each GetParameterValues of session ``session`` (an index into
        ``rpcs``; exact while neither history has been trimmed to STATS_HISTORY)."""
        before = sum(r.count("GetParameterValues") for r in self.rpcs[:session])
        return self.gpv[before : before + self.rpcs[session].count("GetParameterValues")]

    def to_json(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "ok": self.ok,
            "failed": self.failed,
            "events": self.events,
            "rpcs": self.rpcs,
            "spv": [[[name, value] for name, value in params] for params in self.spv],
            "gpv": self.gpv,
            "faults": [f.to_json() for f in self.faults],
            "last_ok_started": self.last_ok_started,
        }


def _trim(history: list[Any]) -> None:
    if len(history) > STATS_HISTORY:
        del history[: len(history) - STATS_HISTORY]


#: the ManagementServer leaves a router authenticates to the ACS with
_CREDENTIAL_LEAVES = frozenset({"Username", "Password"})


@dataclass(slots=True)
class _AfterSession:
    reboot_keys: list[str] = field(default_factory=list)
    factory_reset: bool = False


class Cpe:
    """A simulated router. ``index`` (1-based) makes its identity; ``serial`` names it."""

    def __init__(
        self,
        template: Template,
        index: int,
        serial: str,
        *,
        acs_url: str = "",
        cr_url: str = "",
        clock: Callable[[], float] = time.monotonic,
        delay_scale: float = 1.0,
        transfer_seconds: float = 1.0,
        faults: Mapping[str, int] | None = None,
    ) -> None:
        self.template = template
        self.index = index
        self.serial = serial
        self.clock = clock
        self.delay_scale = delay_scale
        self.transfer_seconds = transfer_seconds
        oui_path = template.device_id["oui"]
        # (a serial prefix other than the profile's own gets identities of its own)
        prefix = serial.rstrip("0123456789")
        salt = prefix_salt(prefix) if prefix != template.serial_prefix else 0
        self.ident = router_values(
            template.name, template.defaults[oui_path], index, serial, acs_url, cr_url, salt
        )
        self.tree = Tree.from_template(template, self.ident, clock=clock)
        self.bootstrapped = False
        self.events: list[rpc.EventStruct] = [rpc.EventStruct(BOOTSTRAP), rpc.EventStruct(BOOT)]
        # an event arrived since the last Inform: call in now. Events merely kept for a
        # retry (a TransferComplete the ACS refused) wait for the next regular session.
        self.fresh = True
        self.transfers: list[rpc.TransferComplete] = []
        self.timers: list[_Timer] = []
        self.retry_count = 0
        self.in_session = False
        self.active_change = False  # an active-notification parameter changed: inform soon
        self.cr_requested = False
        self.on_wake: Callable[[], None] | None = None  # set by the runner
        self._after = _AfterSession()
        self._rng: random.Random | None = None  # made on first drift (2.5 kB each)
        self._session_events: list[rpc.EventStruct] = []
        self._reported: list[str] = []
        self.stats = RouterStats()
        # SetParameterValues on one of these (PathRules selectors) fails with the code
        self.faults: dict[str, int] = dict(faults or {})
        # a GetParameterValues naming one of these (exactly as asked) fails with the code:
        # firmware with an internal error on a name it has
        self.read_faults: dict[str, int] = {}
        # a SetParameterAttributes naming one of these (exactly) fails with the code:
        # firmware that refuses a notification (9009) on a parameter of its own choosing
        self.attribute_faults: dict[str, int] = {}
        self.pending_reboot = False  # an SPV answered Status 1; cleared by a reboot
        #: ManagementServer leaves (Username, Password) as the router came with them
        #: (--acs-username/--acs-password), and those the ACS has set since: a router
        #: authenticates with what its ManagementServer holds, as a real one does, so
        #: the ACS's values win over the factory's until a factory reset
        self.factory_credentials: dict[str, str] = {}
        self.acs_credentials: set[str] = set()

    @property
    def profile(self) -> str:
        return self.template.name

    @property
    def cpe(self) -> Cpe:
        """The router itself, so that ``sim.router(serial).cpe.set_local(...)`` reads well."""
        return self

    # --- state between runs (--state) ---------------------------------------------------

    def save_state(self) -> dict[str, Any]:
        return {
            "format": 1,
            "profile": self.template.name,
            "index": self.index,
            "serial": self.serial,
            "bootstrapped": self.bootstrapped,
            "tree": self.tree.snapshot(),
            "acsCredentials": sorted(self.acs_credentials),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Become the router saved in ``state``, powered on again: its next Inform carries
        "1 BOOT" (or "0 BOOTSTRAP" if it never completed one)."""
        url_path = self.template.root + "ManagementServer.ConnectionRequestURL"
        cr_url = self.tree.values.get(url_path, "")
        self.tree = Tree.restore(self.template, state["tree"], clock=self.clock)
        if url_path in self.tree.values:
            self.tree.values[url_path] = cr_url  # the listener's port changes between runs
        self.bootstrapped = bool(state.get("bootstrapped"))
        # (a state saved before these were kept: none set by the ACS)
        self.acs_credentials = {
            leaf for leaf in state.get("acsCredentials") or () if leaf in _CREDENTIAL_LEAVES
        }
        acs_path = self.template.root + "ManagementServer.URL"
        if acs_path in self.tree.values and self.tree.values[acs_path] != self.ident["acs_url"]:
            # pointed at another ACS: TR-069 calls that first contact again (BOOTSTRAP)
            self.tree.values[acs_path] = self.ident["acs_url"]
            self.bootstrapped = False
        self.events = [] if self.bootstrapped else [rpc.EventStruct(BOOTSTRAP)]
        self.events.append(rpc.EventStruct(BOOT))
        self.fresh = True

    def set_factory_credentials(self, values: Mapping[str, str]) -> None:
        """The ManagementServer ``Username``/``Password`` (leaf -> value) the router came
        with: in force but where the ACS has set its own (kept across runs by --state);
        a factory reset brings them back."""
        self.factory_credentials = {k: v for k, v in values.items() if k in _CREDENTIAL_LEAVES}
        ms = self.template.root + "ManagementServer."
        for leaf, value in self.factory_credentials.items():
            if leaf not in self.acs_credentials and ms + leaf in self.tree:
                self.tree.values[ms + leaf] = value

    def set_connection_request_url(self, url: str) -> None:
        self.ident["cr_url"] = url
        path = self.template.root + "ManagementServer.ConnectionRequestURL"
        if path in self.tree.values:
            self.tree.values[path] = url

    # --- events -------------------------------------------------------------------------

    def add_event(self, code: str, command_key: str = "") -> None:
        self.fresh = True
        for e in self.events:
            if e.code == code and e.command_key == command_key:
                return
        self.events.append(rpc.EventStruct(code, command_key))

    def poll(self) -> bool:
        """Fire due timers; True when the router wants a session now."""
        now = self.clock()
        due = [t for t in self.timers if t.due <= now]
        if due:
            self.timers = [t for t in self.timers if t.due > now]
            for timer in due:
                if timer.reboot:
                    self.tree.boot_at = now
                if timer.transfer is not None:
                    self.transfers.append(timer.transfer)
                for e in timer.events:
                    self.add_event(e.code, e.command_key)
        return self.fresh or self.active_change or self.cr_requested

    def next_timer(self) -> float | None:
        return min((t.due for t in self.timers), default=None)

    def _wake(self) -> None:
        if self.on_wake is not None:
            self.on_wake()

    def request_connection(self) -> bool:
        """A Connection Request arrived; False (answer 503) while a session is running."""
        if self.in_session:
            return False
        self.cr_requested = True
        self._wake()
        return True

    def set_local(self, path: str, value: str) -> None:
        """Change a value as the router itself would (not the ACS): notified parameters go
        into the next Inform with "4 VALUE CHANGE"; active ones make the router inform soon."""
        if self.tree.set_local(path, value) == 2:
            self.active_change = True
            self._wake()

    def drift(self) -> None:
        """Let the radio values wander a little, as a real modem's do between Informs."""
        if not self.template.drift:
            return
        if self._rng is None:
            self._rng = random.Random(f"{self.template.name}:{self.index}:drift")
        for path, (step, low, high) in self.template.drift.items():
            try:
                current = int(self.tree.get(path))
            except (KeyError, ValueError):
                continue
            value = max(low, min(high, current + self._rng.randint(-step, step)))
            self.set_local(path, str(value))

    # --- the session, seen from the router ----------------------------------------------

    def begin_session(self, trigger: list[str] | None = None) -> rpc.Inform:
        """The Inform that opens a session. ``trigger`` holds the runner's reasons
        ("2 PERIODIC", "6 CONNECTION REQUEST"); pending events are always included."""
        self.poll()
        self.in_session = True
        for code in trigger or ():
            self.add_event(code)
        if self.cr_requested:
            self.add_event(CONNECTION_REQUEST)
            self.cr_requested = False
        self.active_change = False
        tree = self.tree
        if tree.changed:
            self.add_event(VALUE_CHANGE)
        if not self.events:
            # an Inform needs at least one event; a retry whose events were delivered
            # already carries its original reason again
            self.events.append(rpc.EventStruct(PERIODIC))
        self._session_events = self.events[:MAX_EVENTS]
        self.stats.begin([e.code for e in self._session_events])
        self.fresh = False
        codes = {e.code for e in self._session_events}
        names = list(self.template.inform)
        if VALUE_CHANGE in codes:
            names += [p for p in tree.changed if p not in names and p in tree]
        names += [p for p in self._inform_parameters(codes) if p not in names]
        self._reported = list(tree.changed)
        dev = self.template.device_id
        return rpc.Inform(
            device_id=rpc.DeviceId(
                manufacturer=tree.get(dev["manufacturer"]),
                oui=tree.get(dev["oui"]),
                product_class=tree.get(dev["product_class"]),
                serial_number=tree.get(dev["serial_number"]),
            ),
            events=list(self._session_events),
            max_envelopes=1,
            current_time=iso_time(time.time()),
            retry_count=self.retry_count,
            parameters=[tree.wire_value(p) for p in names],
        )

    def _inform_parameters(self, codes: set[str]) -> list[str]:
        """Parameters the ACS asked for via ManagementServer.InformParameter.{i} (TR-181)."""
        table = self.template.root + "ManagementServer.InformParameter."
        if table not in self.template.tables:
            return []
        tree = self.tree
        out: list[str] = []
        for number in tree.instances(table):
            base = f"{table}{number}."
            if tree.values.get(base + "Enable") not in ("1", "true"):
                continue
            name = tree.values.get(base + "ParameterName", "")
            wanted = {c.strip() for c in tree.values.get(base + "EventList", "").split(",")}
            wanted.discard("")
            if wanted and not wanted & codes:
                continue
            if not wanted and not codes - {VALUE_CHANGE}:
                continue  # empty list: every event except "4 VALUE CHANGE"
            out += _match(tree, name)
        return out

    def inform_acknowledged(self) -> None:
        """InformResponse received: the events are delivered, except the transfer ones,
        which stay until their TransferComplete is acknowledged (TR-069 3.7.1.5)."""
        delivered = self._session_events
        if any(e.code == BOOTSTRAP for e in delivered):
            self.bootstrapped = True
        keep = {TRANSFER_COMPLETE, "M Download", "M Upload"} if self.transfers else set()
        self.events = [e for e in self.events if e not in delivered or e.code in keep]
        for p in self._reported:
            self.tree.changed.pop(p, None)

    def next_transfer(self) -> rpc.TransferComplete | None:
        return self.transfers[0] if self.transfers else None

    def transfer_acknowledged(self, tc: rpc.TransferComplete) -> None:
        self.transfers = [t for t in self.transfers if t is not tc]
        self.events = [
            e
            for e in self.events
            if not (e.code in ("M Download", "M Upload") and e.command_key == tc.command_key)
        ]
        if not self.transfers:
            self.events = [e for e in self.events if e.code != TRANSFER_COMPLETE]

    def end_session(self, ok: bool) -> None:
        """The session is over (204, or failed). Reboots and resets happen now, as on a
        real CPE, whether or not the session ended cleanly."""
        self.in_session = False
        self.retry_count = 0 if ok else self.retry_count + 1
        if ok:
            self.stats.ok += 1
            self.stats.last_ok_started = self.stats.started
        else:
            self.stats.failed += 1
        after, self._after = self._after, _AfterSession()
        if after.factory_reset:
            self.factory_reset()
        elif after.reboot_keys:
            self.reboot(after.reboot_keys)

    def reboot(self, command_keys: list[str] | None = None) -> None:
        self.pending_reboot = False
        self.tree.boot_at = self.clock()
        self.tree.changed.clear()
        self.add_event(BOOT)
        for key in command_keys or ():
            self.add_event("M Reboot", key)

    def factory_reset(self) -> None:
        self.tree = Tree.from_template(self.template, self.ident, clock=self.clock)
        self.bootstrapped = False
        self.events = [rpc.EventStruct(BOOTSTRAP), rpc.EventStruct(BOOT)]
        self.fresh = True
        self.transfers.clear()
        self.timers.clear()
        self.retry_count = 0
        self.pending_reboot = False
        self.acs_credentials.clear()
        self.set_factory_credentials(self.factory_credentials)

    # --- ACS requests -------------------------------------------------------------------

    def handle(self, request: rpc.Message, fault: rpc.Fault | None = None) -> rpc.Message:
        """Answer one ACS request with its response or a CPE fault (never raises);
        ``fault``: answered with it instead (a quirk's, decided before the request is
        looked at), counted in the statistics as any answer."""
        name = request.METHOD or getattr(request, "name", "") or type(request).__name__
        stats = self.stats
        if stats.rpcs:
            stats.rpcs[-1].append(name)
        if isinstance(request, rpc.SetParameterValues):
            stats.spv.append([(p.name, p.value) for p in request.parameters])
            _trim(stats.spv)
        elif isinstance(request, rpc.GetParameterValues):
            stats.gpv.append(list(request.names))
            _trim(stats.gpv)
        response = self._answer(request, name) if fault is None else fault
        if isinstance(response, rpc.Fault):
            spv = [(f.name, f.code) for f in response.spv_faults]
            stats.faults.append(
                FaultRecord(stats.sessions, name, response.code, response.string, spv)
            )
            _trim(stats.faults)
        return response

    def _answer(self, request: rpc.Message, name: str) -> rpc.Message:
        method = _HANDLERS.get(type(request))
        if method is None:
            return rpc.cpe_fault(9000, name)
        try:
            return method(self, request)
        except CwmpFault as fault:
            return fault.to_rpc()
        except Exception:  # a simulator bug must not kill the session loop
            log.exception("%s: internal error handling %s", self.serial, name)
            return rpc.cpe_fault(9002)

    def _get_rpc_methods(self, req: rpc.GetRPCMethods) -> rpc.Message:
        return rpc.GetRPCMethodsResponse(methods=list(SUPPORTED_METHODS))

    def _gpv(self, req: rpc.GetParameterValues) -> rpc.Message:
        for asked in req.names:
            if asked in self.read_faults:
                raise CwmpFault(self.read_faults[asked], asked)
        return rpc.GetParameterValuesResponse(parameters=self.tree.get_values(req.names))

    def _gpn(self, req: rpc.GetParameterNames) -> rpc.Message:
        return rpc.GetParameterNamesResponse(
            parameters=self.tree.get_names(req.path, req.next_level)
        )

    def _spv(self, req: rpc.SetParameterValues) -> rpc.Message:
        refuse = PathRules(self.faults) if self.faults else None
        status = self.tree.set_values(req.parameters, req.parameter_key, refuse)
        if status:
            self.pending_reboot = True
        ms = self.template.root + "ManagementServer."
        for pv in req.parameters:
            # (the next session authenticates with them: SimSession reads the tree)
            if pv.name.startswith(ms) and pv.name[len(ms) :] in _CREDENTIAL_LEAVES:
                self.acs_credentials.add(pv.name[len(ms) :])
        return rpc.SetParameterValuesResponse(status=status)

    def _gpa(self, req: rpc.GetParameterAttributes) -> rpc.Message:
        return rpc.GetParameterAttributesResponse(parameters=self.tree.get_attributes(req.names))

    def _spa(self, req: rpc.SetParameterAttributes) -> rpc.Message:
        for struct in req.parameters:
            if struct.name in self.attribute_faults:
                raise CwmpFault(self.attribute_faults[struct.name], struct.name)
        self.tree.set_attributes(req.parameters)
        return rpc.SetParameterAttributesResponse()

    def _add(self, req: rpc.AddObject) -> rpc.Message:
        number = self.tree.add_object(req.object_name, req.parameter_key)
        return rpc.AddObjectResponse(instance_number=number, status=0)

    def _delete(self, req: rpc.DeleteObject) -> rpc.Message:
        self.tree.delete_object(req.object_name, req.parameter_key)
        return rpc.DeleteObjectResponse(status=0)

    def _reboot(self, req: rpc.Reboot) -> rpc.Message:
        self._after.reboot_keys.append(req.command_key)
        return rpc.RebootResponse()

    def _factory_reset(self, req: rpc.FactoryReset) -> rpc.Message:
        self._after.factory_reset = True
        return rpc.FactoryResetResponse()

    def _transfer(self, key: str, method: str, url: str, delay: int, firmware: bool) -> None:
        if not url:
            raise CwmpFault(9003, "URL is empty")
        start = self.clock() + max(0, delay) * self.delay_scale
        done = start + self.transfer_seconds
        wall = time.time() - self.clock()  # monotonic -> epoch, for the reported times
        tc = rpc.TransferComplete(
            command_key=key,
            fault=rpc.FaultStruct(0, ""),
            start_time=iso_time(wall + start),
            complete_time=iso_time(wall + done),
        )
        events = [rpc.EventStruct(TRANSFER_COMPLETE), rpc.EventStruct(method, key)]
        if firmware:
            events.insert(0, rpc.EventStruct(BOOT))  # a new image means a restart
        self.timers.append(_Timer(done, events, tc, reboot=firmware))

    def _download(self, req: rpc.Download) -> rpc.Message:
        firmware = req.file_type == FIRMWARE
        self._transfer(req.command_key, "M Download", req.url, req.delay_seconds, firmware)
        # Status 1: the file is fetched after the session; TransferComplete reports it
        return rpc.DownloadResponse(status=1)

    def _upload(self, req: rpc.Upload) -> rpc.Message:
        self._transfer(req.command_key, "M Upload", req.url, req.delay_seconds, False)
        return rpc.UploadResponse(status=1)

    def _schedule_inform(self, req: rpc.ScheduleInform) -> rpc.Message:
        if req.delay_seconds <= 0:
            raise CwmpFault(9003, "DelaySeconds must be greater than 0")
        due = self.clock() + req.delay_seconds * self.delay_scale
        events = [rpc.EventStruct(SCHEDULED), rpc.EventStruct("M ScheduleInform", req.command_key)]
        self.timers.append(_Timer(due, events))
        return rpc.ScheduleInformResponse()


_HANDLERS: dict[type, Callable[[Cpe, Any], rpc.Message]] = {
    rpc.GetRPCMethods: Cpe._get_rpc_methods,
    rpc.GetParameterValues: Cpe._gpv,
    rpc.GetParameterNames: Cpe._gpn,
    rpc.SetParameterValues: Cpe._spv,
    rpc.GetParameterAttributes: Cpe._gpa,
    rpc.SetParameterAttributes: Cpe._spa,
    rpc.AddObject: Cpe._add,
    rpc.DeleteObject: Cpe._delete,
    rpc.Reboot: Cpe._reboot,
    rpc.FactoryReset: Cpe._factory_reset,
    rpc.Download: Cpe._download,
    rpc.Upload: Cpe._upload,
    rpc.ScheduleInform: Cpe._schedule_inform,
}


def _match(tree: Tree, name: str) -> list[str]:
    """InformParameter.ParameterName: a full name, a partial path, or "*" in instance
    positions (Device.WiFi.SSID.*.SSID)."""
    if "*" in name:
        pattern = re.compile(
            re.escape(name).replace(r"\*", r"\d+") + ("" if name.endswith(".") else "$")
        )
        return [p for p in tree.values if pattern.match(p)]
    if name.endswith("."):
        return [p for p in tree.values if p.startswith(name)]
    return [name] if name in tree.values else []
