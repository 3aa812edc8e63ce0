"""Which session a request belongs to, when routers share an address (NAT, CGNAT), send
two Informs at once, or send a body acsd refuses mid-session."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable

from acsd.cwmp import rpc
from acsd.cwmp.soap import Envelope, parse_envelope, render_envelope
from conftest import wait_for
from test_cwmp_protocol import answer_request, drive_to_end
from wire import Answer, Wire, envelope, inform_body

NS = "urn:dslforum-org:cwmp-1-2"


def _gpv_answer(names: list[str], values: dict[str, str], cwmp_id: str | None) -> bytes:
    body = "".join(
        f"<ParameterValueStruct><Name>{name}</Name><Value>{values.get(name, '')}</Value>"
        "</ParameterValueStruct>"
        for name in names
        if not name.endswith(".")
    )
    return envelope(
        f"<cwmp:GetParameterValuesResponse><ParameterList>{body}</ParameterList>"
        "</cwmp:GetParameterValuesResponse>",
        ns=NS,
        cwmp_id=cwmp_id,
    )


def test_another_router_behind_the_same_address_cannot_step_into_a_session(daemon):
    # Router A keeps no cookies and opens a new connection for every message, so only its
    # address finds its session. Router B, behind the same NAT, is out of step (its own
    # session is gone) and posts an answer and an empty POST on connections of its own.
    router_a = Wire(daemon.cwmp_url, cookies=False)

    def post_a(body: bytes | None) -> Answer:
        router_a.reconnect()
        return router_a.post(body)

    assert post_a(envelope(inform_body("NATROUTA1"), ns=NS)).status == 200
    asked = post_a(None)
    assert asked.status == 200
    request = parse_envelope(asked.body)
    assert isinstance(request.body, rpc.GetParameterValues)

    router_b = Wire(daemon.cwmp_url, cookies=False)
    names = list(request.body.names)
    stray = router_b.post(
        _gpv_answer(names, {"Device.DeviceInfo.UpTime": "1"}, cwmp_id=f"{request.id}0")
    )
    assert stray.status == 400 and b"keep the session cookie" in stray.body
    router_b.reconnect()
    assert router_b.post(None).status == 400  # would have ended A's session
    router_b.reconnect()
    unasked = Envelope(body=rpc.GetRPCMethods(), cwmp_ns=NS, id="b-1")
    assert router_b.post(render_envelope(unasked)).status == 400
    # (the daemon's stderr is read by a thread of the test: lines may lag the answers)
    refused = wait_for(lambda: len(e := daemon.events("cwmp.address_match_refused")) >= 3 and e)
    assert len(refused) == 3 and {e["serial"] for e in refused} == {"NATROUTA1"}
    assert all(e["level"] == "warning" for e in refused)

    # A's session is untouched: it answers its own request and completes with its values.
    answer = post_a(render_envelope(Envelope(answer_request(request.body), NS, id=request.id)))
    for _ in range(50):
        if answer.status == 204:
            break
        assert answer.status == 200, answer.text
        env = parse_envelope(answer.body)
        answer = post_a(render_envelope(Envelope(answer_request(env.body), NS, id=env.id)))
    assert answer.status == 204
    assert daemon.device_json("NATROUTA1")["status"]["upTime"] == 4242


def test_a_router_that_omits_the_cwmp_id_still_reconnects_into_its_session(daemon):
    # cwmp-reference: some CPEs leave out the cwmp:ID; found by address, such an answer is
    # still taken (only a different ID marks another session's answer).
    router = Wire(daemon.cwmp_url, cookies=False)
    assert router.post(envelope(inform_body("NOIDCPE01"), ns=NS)).status == 200
    router.reconnect()
    answer = router.post(None)
    for _ in range(50):
        if answer.status == 204:
            break
        assert answer.status == 200, answer.text
        env = parse_envelope(answer.body)
        router.reconnect()
        answer = router.post(render_envelope(Envelope(answer_request(env.body), NS, id=None)))
    assert answer.status == 204
    assert daemon.device_json("NOIDCPE01")["status"]["upTime"] == 4242
    assert not daemon.events("cwmp.address_match_refused")


def test_a_router_that_reuses_its_inform_id_reconnects_into_its_session(daemon):
    # A CPE that keeps no cookies, opens a new connection for every message and stamps each
    # with its Inform's cwmp:ID: found by address, its answers carry that ID, not ours.
    router = Wire(daemon.cwmp_url, cookies=False)
    inform = envelope(inform_body("SAMEIDCPE1"), ns=NS, cwmp_id="cpe-77")
    assert router.post(inform).status == 200
    router.reconnect()
    answer = router.post(None)
    answered = 0
    for _ in range(50):
        if answer.status == 204:
            break
        assert answer.status == 200, answer.text
        env = parse_envelope(answer.body)
        assert env.id != "cpe-77"
        router.reconnect()
        answer = router.post(render_envelope(Envelope(answer_request(env.body), NS, id="cpe-77")))
        answered += 1
    assert answer.status == 204 and answered >= 1
    assert daemon.device_json("SAMEIDCPE1")["status"]["upTime"] == 4242
    refused = daemon.events("cwmp.address_match_refused")
    refused = [e for e in refused if e.get("serial") == "SAMEIDCPE1"]
    assert not refused


def test_two_sessions_have_different_cwmp_ids(daemon):
    ids = []
    for serial in ("IDSESS001", "IDSESS002"):
        wire = Wire(daemon.cwmp_url)
        assert wire.post(envelope(inform_body(serial), ns=NS)).status == 200
        asked = wire.post(None)
        ids.append(parse_envelope(asked.body).id)
        drive_to_end(
            wire,
            wire.post(
                render_envelope(
                    Envelope(answer_request(parse_envelope(asked.body).body), NS, id=ids[-1])
                )
            ),
            NS,
        )
    assert ids[0] != ids[1]


def test_informs_of_one_router_at_once_leave_one_session(daemon):
    # A router retrying its Inform on several connections at once (a short HTTP timeout):
    # each new Inform ends the session before it, so one session is left, not several
    # provisioning runs whose commits overwrite each other.
    count = 6
    wires = [Wire(daemon.cwmp_url) for _ in range(count)]
    start = threading.Barrier(count)
    informed: list[int] = [0] * count

    def inform(i: int) -> None:
        start.wait()
        informed[i] = wires[i].post(envelope(inform_body("TWICE0001"), ns=NS)).status

    threads = [threading.Thread(target=inform, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert informed == [200] * count
    answers = [(w, w.post(None)) for w in wires]
    going_on = [(w, a) for w, a in answers if a.status == 200]
    assert len(going_on) == 1, [a.status for _, a in answers]
    drive_to_end(*going_on[0], NS)

    def ended() -> list[dict] | None:
        # (a session whose result was dropped says so in its session.end too)
        found = [e for e in daemon.events("session.end") if e["serial"] == "TWICE0001"]
        return found if len(found) >= count else None

    ends = wait_for(ended)
    assert len(ends) == count
    assert [e["reason"] for e in ends if e.get("complete")] == ["done"]


def test_a_body_over_max_body_mid_session_ends_the_session_and_names_the_router(daemon):
    wire = Wire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body("BIGANSW01"), ns=NS)).status == 200
    asked = parse_envelope(wire.post(None).body)
    assert isinstance(asked.body, rpc.GetParameterValues)
    # 2 MiB once inflated: past the default max_body of 1 MiB
    huge = _gpv_answer(list(asked.body.names), {}, asked.id).replace(
        b"</ParameterList>", b" " * (2 * 1024 * 1024) + b"</ParameterList>"
    )
    answer = wire.post(gzip.compress(huge), headers={"Content-Encoding": "gzip"})
    assert answer.status == 413 and answer.headers["Connection"] == "close"
    refused = wait_for(
        lambda: [e for e in daemon.events("cwmp.refused") if e.get("serial") == "BIGANSW01"]
    )
    assert len(refused) == 1 and refused[0]["answering"] == "GetParameterValues"
    ends = wait_for(
        lambda: [e for e in daemon.events("session.end") if e.get("serial") == "BIGANSW01"]
    )
    assert len(ends) == 1 and not ends[0]["complete"] and "max_body" in ends[0]["reason"]
    # ended now, not at session_timeout: the cookie names no session any more
    wire.reconnect()
    assert wire.post(None).status == 400
    assert daemon.device_json("BIGANSW01")["cpe"]["softwareVersion"] == "1.0.0"


def _answer_everything(request: rpc.Message) -> rpc.Message:
    from cpe_steps import answer_request

    if isinstance(request, rpc.GetParameterValues):  # every name, as a router would
        return rpc.GetParameterValuesResponse(
            parameters=[
                rpc.ParameterValue(n, "", "xsd:string")
                for n in request.names
                if not n.endswith(".")
            ]
        )
    return answer_request(request, {})


def _upper_on_a_line(cwmp_id: str) -> str:
    # (echoed as some stacks do: upper-cased, on a line of its own)
    return f"\n  {cwmp_id.upper()}\n"


def _late_answer(
    daemon,
    serial: str,
    late: Callable[[Envelope, Envelope], rpc.Message],
    echo: Callable[[str], str] = _upper_on_a_line,
) -> None:
    """Start a session, answer its first request, then post ``late(first, second)`` with
    the first request's cwmp:ID (as ``echo`` writes it) on a second connection while the
    second is outstanding: refused alone, and the session completes on the first
    connection."""
    wire = Wire(daemon.cwmp_url)
    assert wire.post(envelope(inform_body(serial), ns=NS)).status == 200
    first = parse_envelope(wire.post(None).body)
    answer = wire.post(
        render_envelope(Envelope(body=_answer_everything(first.body), cwmp_ns=NS, id=first.id))
    )
    assert answer.status == 200, answer.text
    second = parse_envelope(answer.body)
    other = Wire(daemon.cwmp_url)
    other.cookie = wire.cookie
    stale_id = echo(first.id)
    again = other.post(render_envelope(Envelope(late(first, second), cwmp_ns=NS, id=stale_id)))
    assert again.status == 400 and b"repeat of an earlier answer" in again.body
    out = Envelope(body=_answer_everything(second.body), cwmp_ns=NS, id=second.id)
    answer = wire.post(render_envelope(out))
    while answer.status == 200:
        env = parse_envelope(answer.body)
        out = Envelope(body=_answer_everything(env.body), cwmp_ns=NS, id=env.id)
        answer = wire.post(render_envelope(out))
    assert answer.status == 204
    repeated = wait_for(
        lambda: [e for e in daemon.events("cwmp.repeated_answer") if e.get("serial") == serial]
    )
    assert repeated[0]["waiting_for"] == second.body.METHOD
    ends = wait_for(lambda: [e for e in daemon.events("session.end") if e.get("serial") == serial])
    assert ends[-1]["complete"] and ends[-1]["reason"] == "done"


def test_an_earlier_answer_sent_again_is_refused_alone_and_the_session_goes_on(daemon):
    # A CPE client that resends its answer on a second connection: the copy, carrying an
    # earlier request's cwmp:ID, was taken for the answer to the request outstanding (a
    # SetParameterValues: every setting failed 8003 while the router applied them).
    _late_answer(
        daemon, "REPEATED01", lambda first, second: _answer_everything(first.body), echo=str
    )
    assert not [e for e in daemon.events("cwmp.wrong_response") if e.get("serial") == "REPEATED01"]


def test_a_late_fault_with_an_earlier_cwmp_id_is_not_taken_for_the_outstanding_request(daemon):
    # A Fault carrying the ID of a request acsd already has the answer to: taken for the
    # request outstanding, it failed that one (a SetParameterValues the CPE then applied).
    _late_answer(daemon, "LATEFAULT1", lambda first, second: rpc.Fault(9002, "internal error"))


def test_a_late_answer_of_the_right_type_with_an_earlier_cwmp_id_is_not_taken(daemon):
    # The previous batch's GetParameterValuesResponse sent again while the next batch is
    # outstanding: taken, the next batch's names read as absent.
    _late_answer(
        daemon,
        "LATERIGHT1",
        lambda first, second: (
            second.body.RESPONSE()
            if not isinstance(second.body, rpc.GetParameterValues)
            else rpc.GetParameterValuesResponse(parameters=[])
        ),
    )


def test_an_answer_echoing_the_cwmp_id_upper_cased_and_padded_is_taken(daemon):
    wire = Wire(daemon.cwmp_url, cookies=False)
    assert wire.post(envelope(inform_body("UPPERID01"), ns=NS)).status == 200
    wire.reconnect()
    answer = wire.post(None)
    for _ in range(50):
        if answer.status == 204:
            break
        assert answer.status == 200, answer.text
        env = parse_envelope(answer.body)
        wire.reconnect()  # found by address alone: the ID is what tells it is this CPE's
        out = Envelope(_answer_everything(env.body), NS, id=f" {env.id.upper()}\n")
        answer = wire.post(render_envelope(out))
    assert answer.status == 204
    assert not [
        e for e in daemon.events("cwmp.address_match_refused") if e.get("serial") == "UPPERID01"
    ]
