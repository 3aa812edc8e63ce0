"""A CPE driven step by step over :class:`wire.Wire` (HTTP or HTTPS), for tests that must do
something between two messages of one session: send a signal, reload, shut down, or race
the router with the operator's API (:class:`SteppedCpe`, a simulated router with its whole
tree)."""

from __future__ import annotations

import ssl
from collections.abc import Callable

from acsd.cwmp import rpc
from acsd.cwmp.soap import Envelope, parse_envelope, render_envelope
from acsd.sim.cpe import Cpe
from wire import Answer, Wire, envelope, inform_body

NS = "urn:dslforum-org:cwmp-1-2"

TREE = {
    "Device.DeviceInfo.UpTime": ("77", "xsd:unsignedInt"),
    "Device.DeviceInfo.ModelName": ("StepBox", "xsd:string"),
    "Device.IP.Interface.1.IPv4Address.1.IPAddress": ("192.168.9.1", "xsd:string"),
    "Device.ManagementServer.PeriodicInformInterval": ("600", "xsd:unsignedInt"),
}


def wire_for(url: str, context: ssl.SSLContext | None = None) -> Wire:
    """A Wire to ``url``; over TLS with ``context`` for an https URL (reconnects too)."""
    return Wire(url, context=context)


def inform(wire: Wire, serial: str) -> Answer:
    """Open a session: the Inform, answered by InformResponse."""
    answer = wire.post(envelope(inform_body(serial), ns=NS))
    assert answer.status == 200, answer.text
    assert isinstance(parse_envelope(answer.body).body, rpc.InformResponse)
    return answer


def answer_request(request: rpc.Message, tree: dict) -> rpc.Message:
    if isinstance(request, rpc.GetParameterValues):
        out = []
        for name in request.names:
            hits = [
                rpc.ParameterValue(path, value, typ)
                for path, (value, typ) in tree.items()
                if path == name or (name.endswith(".") and path.startswith(name))
            ]
            if not hits:
                return rpc.cpe_fault(9005, name)
            out.extend(hits)
        return rpc.GetParameterValuesResponse(parameters=out)
    if isinstance(request, rpc.SetParameterValues):
        unknown = [p.name for p in request.parameters if p.name not in tree]
        if unknown:
            faults = [rpc.SetParameterValuesFault(n, 9005, "no such parameter") for n in unknown]
            return rpc.cpe_fault(9003, spv_faults=faults)
        for p in request.parameters:
            tree[p.name] = (p.value, tree[p.name][1])
        return rpc.SetParameterValuesResponse(status=0)
    return rpc.cpe_fault(9000, request.METHOD)


def answer_until_done(
    wire: Wire,
    reply: Callable[[rpc.Message], rpc.Message],
    *,
    ns: str | None = None,
    limit: int = 200,
) -> list[rpc.Message]:
    """After the Inform: the empty POST, then each ACS request answered with
    ``reply(request)`` until the ACS's 204. Returns the requests, in order."""
    asked: list[rpc.Message] = []
    answer = wire.post(None)
    for _ in range(limit):
        if answer.status == 204:
            return asked
        assert answer.status == 200, (answer.status, answer.text)
        env = parse_envelope(answer.body)
        asked.append(env.body)
        out = Envelope(body=reply(env.body), id=env.id, **({"cwmp_ns": ns} if ns else {}))
        answer = wire.post(render_envelope(out))
    raise AssertionError("the session did not end")


def finish(wire: Wire, limit: int = 60) -> list[str]:
    """After the Inform: the empty POST, then answer the ACS until its 204. Returns the
    methods the ACS asked for."""
    tree = dict(TREE)
    asked = answer_until_done(wire, lambda r: answer_request(r, tree), ns=NS, limit=limit)
    return [request.METHOD for request in asked]


class SteppedCpe:
    """A simulated router's sessions one message at a time: :meth:`inform`, then
    :meth:`until` the ACS asks for some RPC (not answered yet: the test acts in between),
    then :meth:`finish`. The router answers every request from its own tree."""

    def __init__(self, url: str, cpe: Cpe) -> None:
        self.cpe = cpe
        self.wire = Wire(url)
        #: the ACS request the router has yet to answer (None before the empty POST)
        self.request: Envelope | None = None

    def inform(self, trigger: list[str] | None = None) -> None:
        answer = self.wire.post(render_envelope(Envelope(self.cpe.begin_session(trigger))))
        assert answer.status == 200, answer.text
        assert isinstance(parse_envelope(answer.body).body, rpc.InformResponse)
        self.cpe.inform_acknowledged()
        self.request = None

    def _step(self) -> bool:
        """The router's answer to the request held (the empty POST at first); False once
        the ACS ends the session."""
        if self.request is None:
            answer = self.wire.post(None)
        else:
            reply = self.cpe.handle(self.request.body)
            answer = self.wire.post(render_envelope(Envelope(reply, id=self.request.id)))
        if answer.status == 204:
            self.request = None
            self.cpe.end_session(True)
            return False
        assert answer.status == 200, (answer.status, answer.text)
        self.request = parse_envelope(answer.body)
        return True

    def until(self, kind: type[rpc.Message]) -> rpc.Message:
        """Answer the ACS until it asks for a ``kind``; that request, unanswered."""
        while self._step():
            assert self.request is not None
            if isinstance(self.request.body, kind):
                return self.request.body
        raise AssertionError(f"the session ended without a {kind.__name__}")

    def finish(self) -> None:
        """Answer the ACS to the end of the session."""
        while self._step():
            pass

    def session(self, trigger: list[str] | None = None) -> None:
        """One whole session."""
        self.inform(trigger)
        self.finish()

    def close(self) -> None:
        self.wire.close()
