"""The CPE side of one CWMP session, over real HTTP:

    POST Inform              -> 200 InformResponse (in the CPE's namespace)
    POST TransferComplete    -> 200 TransferCompleteResponse   (if one is pending)
    POST (empty)             -> 200 <ACS request> -> POST <response> -> ... -> 204

plus the wire quirks real CPEs show (``--quirks``).
"""

from __future__ import annotations

import ssl as _ssl
import time
from dataclasses import dataclass, field, replace

from acsd.cwmp import rpc
from acsd.cwmp.soap import Envelope, SoapError, parse_envelope, render_envelope
from acsd.sim.cpe import Cpe
from acsd.sim.http import HttpClient, HttpError, Response

CWMP_1_0 = "urn:dslforum-org:cwmp-1-0"

MAX_MESSAGES = 1000  # per session: an ACS stuck in a loop must not keep a router forever
#: what a router with one of these quirks answers instead of 9005 for a name it lacks
_UNKNOWN_NAME_CODES = {"unknown-9003": 9003, "unknown-9002": 9002}
#: names a GetParameterValues may hold for a router with the small-gpv quirk
SMALL_GPV = 16


@dataclass(slots=True)
class SessionResult:
    ok: bool
    reason: str = ""
    events: list[str] = field(default_factory=list)
    messages: int = 0  # HTTP exchanges
    retry_after: float | None = None  # from a 503, seconds
    seconds: float = 0.0


class _Failed(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Session:
    """One session of one router. Use :func:`run_session`."""

    def __init__(
        self,
        cpe: Cpe,
        url: str,
        *,
        quirks: frozenset[str] = frozenset(),
        ssl: _ssl.SSLContext | None = None,
        timeout: float = 30.0,
        max_messages: int = MAX_MESSAGES,
    ) -> None:
        self.cpe = cpe
        self.quirks = quirks
        self.ns = CWMP_1_0 if "cwmp-1-0" in quirks else rpc.DEFAULT_NAMESPACE
        self.prefix = (
            "soap"
            if "prefix-soap" in quirks
            else "SOAP-ENV"
            if "prefix-SOAP-ENV" in quirks
            else "soap-env"
        )
        self.typed = "untyped-values" not in quirks
        self.max_messages = max_messages
        root = cpe.template.root + "ManagementServer."
        tree = cpe.tree
        credentials = (
            (tree.get(root + "Username"), tree.get(root + "Password"))
            if (root + "Username" in tree and root + "Password" in tree)
            else None
        )
        self.client = HttpClient(
            url,
            ssl=ssl,
            cookies="no-cookies" not in quirks,
            reconnect="new-connection" in quirks,
            timeout=timeout,
            credentials=credentials,
        )
        self.messages = 0
        self._next_id = 0

    def _id(self, echo: str | None = None) -> str | None:
        if "reused-id" in self.quirks:
            return "1"  # some stacks stamp every message with the same ID
        if echo is not None:
            return echo
        self._next_id += 1
        return f"{self.cpe.serial}-{self._next_id}"

    async def _post(self, message: rpc.Message | None, echo_id: str | None = None) -> Response:
        if self.messages >= self.max_messages:
            raise _Failed(f"more than {self.max_messages} messages in one session")
        self.messages += 1
        if message is None:
            body = b""
        else:
            envelope = Envelope(message, cwmp_ns=self.ns, id=self._id(echo_id))
            body = render_envelope(envelope, prefix=self.prefix, typed_values=self.typed)
            if "latin1-values" in self.quirks:
                body = body.decode().encode("latin-1", "xmlcharrefreplace")
        keep_length = not (message is None and "empty-post-no-length" in self.quirks)
        return await self.client.post(body, content_length=keep_length)

    def _envelope(self, response: Response, expecting: str) -> Envelope | None:
        """The envelope of a 200 answer; None for the end of the session (204, or 200 with
        an empty body, which TR-069 also allows)."""
        if response.status == 204:
            return None
        if response.status != 200:
            retry_after = None
            value = response.header("retry-after")
            if value.isdigit():
                retry_after = float(value)
            reason = f"HTTP {response.status} {response.reason}".rstrip()
            raise _Failed(f"{reason} while waiting for {expecting}", retry_after)
        if not response.body.strip():
            return None
        try:
            envelope = parse_envelope(response.body)
        except SoapError as exc:
            raise _Failed(
                f"unparseable answer while waiting for {expecting}: {exc.reason}"
            ) from None
        if envelope.cwmp_ns != self.ns:
            raise _Failed(f"ACS answered in {envelope.cwmp_ns}, the CPE speaks {self.ns}")
        return envelope

    async def run(self, trigger: list[str] | None) -> SessionResult:
        started = time.monotonic()
        cpe = self.cpe
        inform = cpe.begin_session(trigger)
        result = SessionResult(ok=False, events=inform.event_codes())
        try:
            await self._exchange(inform)
            result.ok = True
        except _Failed as failed:
            result.reason, result.retry_after = failed.reason, failed.retry_after
        except HttpError as exc:
            result.reason = str(exc)
        finally:
            await self.client.close()
            cpe.end_session(result.ok)
        result.messages = self.messages
        result.seconds = time.monotonic() - started
        return result

    async def inform_only(self, trigger: list[str] | None = None) -> bool:
        """Send the Inform and stop: the session stays open on the ACS, the connection
        with it, until :meth:`close` (what load tests use to measure an open session)."""
        try:
            answer = self._envelope(await self._post(self.cpe.begin_session(trigger)), "Inform")
        except (_Failed, HttpError):
            return False
        return answer is not None and isinstance(answer.body, rpc.InformResponse)

    async def close(self) -> None:
        await self.client.close()

    async def _exchange(self, inform: rpc.Inform) -> None:
        cpe = self.cpe
        answer = self._envelope(await self._post(inform), "InformResponse")
        if answer is None or not isinstance(answer.body, rpc.InformResponse):
            raise _Failed(f"Inform answered with {_describe(answer)}")
        cpe.inform_acknowledged()

        while (transfer := cpe.next_transfer()) is not None:
            answer = self._envelope(await self._post(transfer), "TransferCompleteResponse")
            if answer is not None and isinstance(answer.body, rpc.TransferCompleteResponse):
                cpe.transfer_acknowledged(transfer)
            elif answer is not None and isinstance(answer.body, rpc.Fault):
                break  # e.g. 8005 "retry": keep it for the next session
            else:
                raise _Failed(f"TransferComplete answered with {_describe(answer)}")

        answer = self._envelope(await self._post(None), "an ACS request or 204")
        while answer is not None:
            request = answer.body
            if not isinstance(request, rpc.AcsRequest | rpc.UnknownMessage):
                raise _Failed(f"expected an ACS request, got {_describe(answer)}")
            if (
                "small-gpv" in self.quirks
                and isinstance(request, rpc.GetParameterValues)
                and len(request.names) > SMALL_GPV
            ):
                response: rpc.Message = cpe.handle(
                    request, rpc.cpe_fault(9004, f"more than {SMALL_GPV} names")
                )
            else:
                response = cpe.handle(request)
            if (
                isinstance(request, rpc.GetParameterValues)
                and isinstance(response, rpc.Fault)
                and response.code == 9005
                and (code := _UNKNOWN_NAME_CODES.keys() & self.quirks)
            ):
                response = replace(response, code=_UNKNOWN_NAME_CODES[min(code)])
            if "echo-values" in self.quirks and isinstance(response, rpc.Fault):
                response = _echoed(request, response)
            if (
                "soap-faults" in self.quirks
                and isinstance(request, rpc.SetParameterValues)
                and isinstance(response, rpc.Fault)
            ):
                response = rpc.Fault(code=0, string="Internal Error", faultcode="Server")
            elif "bare-faults" in self.quirks and isinstance(response, rpc.Fault):
                response = replace(response, spv_faults=[])
            elif "object-faults" in self.quirks and isinstance(response, rpc.Fault):
                objects = [
                    replace(f, name=f.name[: f.name.rfind(".") + 1]) for f in response.spv_faults
                ]
                response = replace(response, spv_faults=objects)
            answer = self._envelope(await self._post(response, answer.id), "an ACS request or 204")


def _echoed(request: rpc.Message, fault: rpc.Fault) -> rpc.Fault:
    """The fault as firmware that quotes what it refused writes it (secrets included)."""
    if not isinstance(request, rpc.SetParameterValues) or not fault.spv_faults:
        return fault
    sent = {pv.name: pv.value for pv in request.parameters}
    named = [replace(f, string=f"{f.string}: invalid value '{sent.get(f.name, '')}'")
             for f in fault.spv_faults]  # fmt: skip
    quoted = ", ".join(f"{f.name}='{sent.get(f.name, '')}'" for f in fault.spv_faults)
    return replace(fault, string=f"{fault.string} ({quoted})", spv_faults=named)


def _describe(envelope: Envelope | None) -> str:
    if envelope is None:
        return "an empty answer"
    body = envelope.body
    if isinstance(body, rpc.Fault):
        return f"fault {body.code} {body.string}".rstrip()
    return type(body).__name__ if not isinstance(body, rpc.UnknownMessage) else body.name


async def run_session(
    cpe: Cpe,
    url: str,
    *,
    trigger: list[str] | None = None,
    quirks: frozenset[str] = frozenset(),
    ssl: _ssl.SSLContext | None = None,
    timeout: float = 30.0,
    max_messages: int = MAX_MESSAGES,
) -> SessionResult:
    """Run one complete session of ``cpe`` against the ACS at ``url``."""
    session = Session(cpe, url, quirks=quirks, ssl=ssl, timeout=timeout, max_messages=max_messages)
    return await session.run(trigger)
