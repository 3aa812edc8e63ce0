"""One CWMP session as a state machine: Inform -> CPE requests -> ACS requests -> 204.

The session knows the protocol and nothing else. What to ask the CPE, and what to keep of
its answers, is the business of a :class:`SessionDriver` (see ``acsd.provisioning.driver``).
The HTTP layer (``server.py``) feeds each POST's envelope (or None for an empty POST) to
:meth:`CwmpSession.handle` and sends back the :class:`Reply`.
"""

from __future__ import annotations

import enum
import pickle
import random
import secrets
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

from acsd.cwmp import rpc
from acsd.cwmp.duplicates import one_per_name
from acsd.cwmp.log_budget import LogBudget
from acsd.cwmp.soap import Envelope, render_envelope
from acsd.log import MASK, get_logger, is_secret_name, peer_text

log = get_logger("acsd.cwmp")


class State(enum.Enum):
    AWAIT_INFORM = "await-inform"
    CPE_REQUESTS = "cpe-requests"
    ACS_REQUESTS = "acs-requests"
    DONE = "done"


@dataclass(slots=True)
class Reply:
    """What the HTTP layer sends: 200 with an envelope, 204 to end, or an HTTP error."""

    status: int
    body: bytes | None = None
    close: bool = False
    reason: str = ""


class RetryLater(Exception):
    """Raised by a driver when the session cannot be completed now for a reason that
    passes (its database is unavailable): the CPE is answered 503 + Retry-After and comes
    back, instead of a 500 that reads as a bug."""

    def __init__(
        self, reason: str, retry_after: int, text: str | None = None, cause: str = "unavailable"
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        #: the 503's body: what is wrong and what to check, for a capture's reader
        self.text = text or f"{reason}; retry later"
        #: which trouble it is, a short key (the refusals metric's label)
        self.cause = cause


class SessionDriver(Protocol):
    """What a session needs from the rest of acsd. Every method may be awaited on I/O."""

    async def inform(self, session: CwmpSession, inform: rpc.Inform) -> rpc.Fault | None:
        """Record the Inform; a returned Fault refuses the session (the CPE retries later)."""

    async def cpe_request(self, session: CwmpSession, request: rpc.CpeRequest) -> rpc.Message:
        """Answer TransferComplete, GetRPCMethods, ...: the response, or a Fault."""

    async def next_request(self, session: CwmpSession) -> rpc.AcsRequest | None:
        """The next RPC to send, or None when the ACS has nothing more."""

    async def response(
        self, session: CwmpSession, request: rpc.AcsRequest, response: rpc.Message
    ) -> None:
        """The CPE's answer (its Response or a Fault) to ``request``."""

    async def finish(self, session: CwmpSession, *, complete: bool, reason: str) -> None:
        """The session is over (204 sent, or abandoned): commit what it learned."""

    def answer_too_large(self, session: CwmpSession, request: rpc.AcsRequest) -> None:
        """The CPE's answer to ``request`` was over ``max_body`` and was not read (the
        session ends next): a driver may ask for less from then on."""


class ParkableDriver(SessionDriver, Protocol):
    """A driver whose session can move to another worker process (``workers = N``)."""

    def export_state(self) -> dict[str, Any]:
        """Everything the driver learned so far, picklable (no store, no profiles)."""

    def import_state(self, state: dict[str, Any]) -> None:
        """Go on from ``export_state``'s result (on a fresh driver of this process)."""


#: session.context key: the shared password a router that authenticated with the previous
#: one ([cwmp.auth] previous_password) is to be given, set by the listener at its Inform
#: and taken (popped) by the driver there: only such a session carries it, and never in
#: what it parks (see acsd.provisioning.rotation)
ROTATE_TO = "acsd.auth.rotate_to"


#: bumped whenever what freeze() writes changes shape: a worker never thaws a foreign shape
#: (10: sets held as frozensets, the stored memory as JSON: an older worker would call
#: set methods on them and compare the memory with the emptied record field)
PARKED_FORMAT = 13
#: (13: the shared password a rotation session gives is parked as a placeholder, and an
#: outstanding SetParameterValues without its values: an older worker would send the
#: placeholder as the router's ManagementServer.Password)
#: (12: duplicates_told, whether the session has logged a name the CPE listed twice)
#: (11: created and last_active parked as ages, with the wall clock's time of parking:
#: monotonic stamps count from the boot of the host that took them, and a session thawed
#: on another host of a PostgreSQL fleet read as ended "too long" ago or never ending)


#: names (and their values) a cwmp.duplicate_parameter line shows
_DUPLICATES_SHOWN = 10

#: requests whose effect a CPE may have made without answering them
_CHANGES = (rpc.SetParameterValues, rpc.AddObject, rpc.DeleteObject)


def _parked_request(cwmp_id: str, request: rpc.AcsRequest) -> tuple[str, rpc.AcsRequest]:
    """The outstanding request as parked: a SetParameterValues without its values. It
    has been sent; its answer is told by its type, and what it set the driver knows of
    its own (the changes it sent). Its values would put secrets in the database that no
    record holds: the fleet's shared password, in a session that gives it to a router."""
    if isinstance(request, rpc.SetParameterValues):
        request = replace(request, parameters=[replace(p, value="") for p in request.parameters])
    return cwmp_id, request


class ParkError(Exception):
    """A parked session that cannot be taken up here (another acsd version wrote it)."""


@dataclass(slots=True)
class Limits:
    max_requests: int = 255
    max_seconds: float = 600.0
    hold_requests: bool = False


@dataclass
class CwmpSession:
    driver: SessionDriver
    remote_ip: str
    limits: Limits = field(default_factory=Limits)
    id: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    state: State = State.AWAIT_INFORM
    cwmp_ns: str = rpc.DEFAULT_NAMESPACE
    #: the CPE's serial number, from its Inform ("" until then). Not the Inform itself:
    #: its parameters and events are the driver's once handed over, and a session held
    #: open keeps a copy of neither.
    serial: str = ""
    #: the cwmp:ID of the CPE's Inform ("" if it sent none): a CPE that stamps every
    #: message of its session with it is told by it from a stranger behind the same NAT
    inform_id: str = ""
    created: float = field(default_factory=time.monotonic)
    last_active: float = field(default_factory=time.monotonic)
    rpc_count: int = 0
    outstanding: tuple[str, rpc.AcsRequest] | None = None
    #: bytes of the CPE's latest answer to an ACS request (what cwmp.max_body limits)
    answer_size: int = 0
    #: free space for the driver (device record, values read, ...)
    context: dict[str, Any] = field(default_factory=dict)
    #: log lines written about the CPE's own requests (see :meth:`may_log`); made by the
    #: first such line (every open session holds this object: ~20 KB each is the budget)
    log_budget: LogBudget | None = None
    #: a name listed twice with different values was logged (once per session: a CPE that
    #: does it does it in every message)
    duplicates_told: bool = False
    _next_id: int = 0
    #: the start of acsd's cwmp:IDs in this session: IDs differ between sessions, so an
    #: answer meant for another one (a CPE behind the same NAT, found by address alone) is
    #: told apart. Not a secret (the cookie binds a CPE to its session): not from the OS.
    _id_base: str = field(default_factory=lambda: f"acsd-{random.getrandbits(32):08x}")

    @property
    def finished(self) -> bool:
        return self.state is State.DONE

    # --- moving between workers ---------------------------------------------------------

    def freeze(self) -> bytes:
        """The session as bytes for the store, to be thawed by another worker. Pickle: the
        bytes go to acsd's own database and back, never to or from a CPE."""
        export = getattr(self.driver, "export_state", None)
        if export is None:
            raise ParkError(f"{type(self.driver).__name__} cannot be parked")
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "driver"}
        if self.outstanding is not None:
            own["outstanding"] = _parked_request(*self.outstanding)
        now = time.monotonic()
        own["created"], own["last_active"] = now - self.created, now - self.last_active
        # (three items, as every format had: an older acsd reads the format number and
        # says which it is, rather than failing to unpack)
        parked = (PARKED_FORMAT, own, (export(), time.time()))
        return pickle.dumps(parked, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def thaw(cls, data: bytes, driver: ParkableDriver) -> CwmpSession:
        """The session that :meth:`freeze` wrote, driven by ``driver`` of this process."""
        try:
            shape, own, state = pickle.loads(data)
        except Exception as exc:
            raise ParkError(f"unreadable parked session: {exc!r}") from None
        if shape != PARKED_FORMAT:
            raise ParkError(f"parked session format {shape!r}, this acsd reads {PARKED_FORMAT}")
        state, parked_at = state
        # Ages again stamps of this host's clock, the time parked counted in (by the wall
        # clocks of two hosts: NTP keeps them close; a step back counts as no time).
        now, parked = time.monotonic(), max(0.0, time.time() - parked_at)
        own["created"] = now - own["created"] - parked
        own["last_active"] = now - own["last_active"] - parked
        driver.import_state(state)
        return cls(driver=driver, **own)

    # --- entry point -------------------------------------------------------------------

    async def handle(self, env: Envelope | None) -> Reply:
        """Advance the session by one HTTP exchange."""
        self.last_active = time.monotonic()
        if self.state is State.DONE:
            return Reply(400, close=True, reason="session already ended; send an Inform")
        if self.state is State.AWAIT_INFORM:
            if env is None or not isinstance(env.body, rpc.Inform):
                return Reply(400, close=True, reason="a session must start with an Inform")
            return await self._on_inform(env)
        if env is None:
            return await self._on_empty_post()
        body = env.body
        if isinstance(body, rpc.UnknownMessage):
            if self._answers_outstanding(body):
                return await self._on_cpe_answer(env)
            if self._too_long():  # (as for a known request: see _on_cpe_request)
                return await self._end(complete=False, reason="session too long")
            if self.may_log("cwmp.unknown_method", body.name):
                log.warning("cwmp.unknown_method", method=body.name, serial=self.serial)
            return self._answer(env, rpc.acs_fault(8000, body.name))
        if isinstance(body, rpc.Inform):
            # The server starts a new session for a second Inform; reaching here is a bug.
            return Reply(400, close=True, reason="Inform inside a session")
        if isinstance(body, rpc.CpeRequest):
            return await self._on_cpe_request(env, body)
        return await self._on_cpe_answer(env)

    def foreign(self, env: Envelope | None) -> str | None:
        """Why ``env`` (None: an empty POST) cannot be the next message of this session's
        CPE, or None. Used when only the remote address ties a request to the session: a
        message for a request other than the one outstanding, or one that would break off
        an exchange the CPE is in the middle of, is some other CPE's."""
        waiting = self.outstanding
        if env is None:
            if waiting is not None:
                return f"an empty POST while {waiting[1].METHOD} {waiting[0]} awaits its answer"
            return None
        body = env.body
        if isinstance(body, rpc.CpeRequest | rpc.UnknownMessage) and not (
            isinstance(body, rpc.UnknownMessage) and self._answers_outstanding(body)
        ):
            if waiting is not None:
                return f"a request while {waiting[1].METHOD} {waiting[0]} awaits its answer"
            return None
        if waiting is None:
            return f"a {body.METHOD} when nothing was asked"
        # A CPE that omits the cwmp:ID is tolerated (cwmp-reference), and so is one that
        # reuses its Inform's for every message; one that sends another answers a request
        # of some other session.
        got = (env.id or "").strip()
        if (
            got
            and got != waiting[0]
            and got.casefold() not in (waiting[0].casefold(), self.inform_id.casefold())
        ):
            return f"an answer to cwmp:ID {got[:40]!r}, not to {waiting[0]}"
        return None

    def _answers_outstanding(self, body: rpc.UnknownMessage) -> bool:
        """Whether an unknown Body element is the CPE's (misspelt or vendor-prefixed) answer
        to the outstanding request, e.g. GetParameterValueResponse: no CPE request ends in
        "Response", and answering it with 8000 would leave our request unanswered until
        the session times out. It is then a wrong answer, as one of another method is."""
        return self.outstanding is not None and body.name.endswith("Response")

    def may_log(self, event: str, method: str) -> bool:
        """Whether to write an ``event`` line about the CPE's own ``method`` request: only
        the first few per session are, the rest are counted and summed up at its end."""
        if self.log_budget is None:
            self.log_budget = LogBudget()
        return self.log_budget.allow(event, method)

    def answer_too_large(self) -> None:
        """The CPE's answer to the outstanding request was over ``max_body`` and is not
        read: the driver is told which request it answered."""
        if self.outstanding is not None:
            self.driver.answer_too_large(self, self.outstanding[1])

    async def abandon(self, reason: str) -> None:
        """End without 204: the CPE went away, timed out or broke the protocol."""
        if self.state is State.DONE:
            return
        self.state = State.DONE
        await self._finish(complete=False, reason=reason)

    # --- the states ----------------------------------------------------------------------

    async def _on_inform(self, env: Envelope) -> Reply:
        inform = env.body
        assert isinstance(inform, rpc.Inform)
        self.serial = inform.device_id.serial_number
        self.inform_id = (env.id or "").strip()
        self.cwmp_ns = env.cwmp_ns
        inform.parameters = self._one_per_name(inform.parameters, inform.METHOD)
        fault = await self.driver.inform(self, inform)
        if fault is not None:
            self.state = State.DONE
            await self._finish(complete=False, reason=f"refused: {fault.string}")
            return self._answer(env, fault)
        self.state = State.CPE_REQUESTS
        answer = Envelope(body=rpc.InformResponse(max_envelopes=1), cwmp_ns=self.cwmp_ns, id=env.id)
        # A CWMP 1.4 CPE lists its versions; the ACS names the one the session uses.
        answer.use_version = rpc.use_version(env.supported_versions, env.cwmp_ns)
        return Reply(200, render_envelope(answer))

    async def _on_cpe_request(self, env: Envelope, request: rpc.CpeRequest) -> Reply:
        # A CPE may send requests after its empty POST unless HoldRequests is set; answer
        # them either way (tolerance beats a failed session), but note the violation.
        if (
            self.state is State.ACS_REQUESTS
            and self.limits.hold_requests
            and self.may_log("cwmp.request_despite_hold", request.METHOD)
        ):
            log.warning("cwmp.request_despite_hold", method=request.METHOD, serial=self.serial)
        if self._too_long():
            # Checked here too: a CPE that only ever sends requests of its own (a stack in
            # a retry loop) gives acsd no turn to check it, and held its session, and a
            # slot of max_sessions, for as long as it went on.
            return await self._end(complete=False, reason="session too long")
        answer = await self.driver.cpe_request(self, request)
        return self._answer(env, answer)

    async def _on_cpe_answer(self, env: Envelope) -> Reply:
        if self.outstanding is None:
            return await self._end_broken(f"unexpected {type(env.body).__name__}: nothing asked")
        sent_id, request = self.outstanding
        got_id = (env.id or "").strip()
        # (the ID sent back as it was sent, what nearly every answer carries, is no other)
        other_id = got_id and got_id != sent_id and got_id.casefold() != sent_id.casefold()
        if other_id:
            # Some CPEs reuse one ID for everything; only one request is ever outstanding,
            # so the order is what correlates.
            log.debug("cwmp.id_mismatch", sent=sent_id, got=env.id, serial=self.serial)
        body = env.body
        if other_id and self._earlier_id(got_id):
            # The answer to an earlier request of this session, which acsd has already
            # taken: a client that resends on a second connection, or a late copy. Taken
            # for the answer to this request (whatever its type: a Fault, or the
            # GetParameterValuesResponse of the previous batch), it failed every setting
            # of a SetParameterValues the CPE then applied, or read a batch's names as
            # absent. The repeat is refused alone; the session waits for the real answer.
            # (An ID acsd never gave in this session, the CPE's own or a constant, is
            # still taken: then only the order correlates, as cwmp-reference asks.)
            log.info(
                "cwmp.repeated_answer", serial=self.serial, id=peer_text(env.id or ""),
                waiting_for=request.METHOD,
            )  # fmt: skip
            return Reply(
                400,
                close=True,
                reason=f"a repeat of an earlier answer; {request.METHOD} waits for its own",
            )
        if not isinstance(body, rpc.Fault) and not isinstance(body, request.RESPONSE):
            got = body.name if isinstance(body, rpc.UnknownMessage) else body.METHOD
            log.warning(
                "cwmp.wrong_response",
                expected=request.RESPONSE.METHOD,
                got=got,
                serial=self.serial,
            )
            body = rpc.Fault(code=8003, string=f"answered {request.METHOD} with {got}")
        if isinstance(body, rpc.GetParameterValuesResponse):
            body.parameters = self._one_per_name(body.parameters, body.METHOD)
        self.outstanding = None
        self.answer_size = env.size
        await self.driver.response(self, request, body)
        return await self._send_next()

    def _one_per_name(
        self, params: list[rpc.ParameterValue], method: str
    ) -> list[rpc.ParameterValue]:
        """``params`` with each name once, the last value listed winning (see
        acsd.cwmp.duplicates); names listed with different values are logged, values
        masked for secrets as in any log line."""
        params, conflicts = one_per_name(params)
        if conflicts and not self.duplicates_told:
            self.duplicates_told = True
            shown = list(conflicts.items())[:_DUPLICATES_SHOWN]
            log.warning(
                "cwmp.duplicate_parameter",
                serial=self.serial,
                message=method,
                count=len(conflicts),
                names=[peer_text(name, 256) for name, _ in shown],
                values=[
                    [MASK] if is_secret_name(name) else [peer_text(v) for v in values]
                    for name, values in shown
                ],
                kept="last",
            )
        return params

    def _earlier_id(self, cwmp_id: str | None) -> bool:
        """Whether ``cwmp_id`` is one acsd gave an earlier request of this session."""
        if not cwmp_id:
            return False
        # (case aside: a stack that upper-cases what it echoes still names the same one)
        base, _, number = cwmp_id.strip().casefold().rpartition("-")
        return (
            base == self._id_base.casefold()
            and number.isascii()
            and number.isdigit()
            and int(number) < self._next_id
        )

    async def _on_empty_post(self) -> Reply:
        if self.state is State.CPE_REQUESTS:
            self.state = State.ACS_REQUESTS
            return await self._send_next()
        if self.outstanding is not None:
            # The CPE gave up on our request without a word; don't ask again this session.
            _sent_id, request = self.outstanding
            if isinstance(request, _CHANGES):
                # A change it may well have made: left outstanding, the session ends as
                # one whose answer was lost (the driver re-sends it, no fault counted);
                # read as a refusal, it held the settings back and failed the job.
                return await self._end(complete=True, reason="cpe ended without answering")
            self.outstanding = None
            await self.driver.response(
                self, request, rpc.Fault(code=8002, string="CPE sent an empty POST instead")
            )
        return await self._end(complete=True, reason="cpe ended")

    async def _send_next(self) -> Reply:
        if self.rpc_count >= self.limits.max_requests:
            return await self._end(complete=False, reason="too many requests in one session")
        if self._too_long():
            return await self._end(complete=False, reason="session too long")
        request = await self.driver.next_request(self)
        if request is None:
            return await self._end(complete=True, reason="done")
        self.rpc_count += 1
        self._next_id += 1
        cwmp_id = f"{self._id_base}-{self._next_id}"
        self.outstanding = (cwmp_id, request)
        env = Envelope(
            body=request,
            cwmp_ns=self.cwmp_ns,
            id=cwmp_id,
            hold_requests=True if self.limits.hold_requests else None,
        )
        return Reply(200, render_envelope(env))

    def _too_long(self) -> bool:
        return time.monotonic() - self.created > self.limits.max_seconds

    async def _end(self, *, complete: bool, reason: str) -> Reply:
        self.state = State.DONE
        await self._finish(complete=complete, reason=reason)
        return Reply(204)

    async def _finish(self, *, complete: bool, reason: str) -> None:
        if self.log_budget is not None and self.log_budget.skipped:
            log.warning(
                "cwmp.requests_not_logged", count=self.log_budget.skipped, serial=self.serial
            )
        await self.driver.finish(self, complete=complete, reason=reason)

    async def _end_broken(self, reason: str) -> Reply:
        await self.abandon(reason)
        return Reply(400, close=True, reason=reason)

    def _answer(self, env: Envelope, body: rpc.Message) -> Reply:
        # Answers to the CPE's own requests echo its cwmp:ID (GenieACS does the same).
        out = Envelope(body=body, cwmp_ns=self.cwmp_ns, id=env.id)
        return Reply(200, render_envelope(out))
