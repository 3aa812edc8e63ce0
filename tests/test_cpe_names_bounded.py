"""Parameter names are CPE input: the daemon shares one copy of each among the sessions it
holds, in a table of bounded size, so a CPE that invents new names in every message does
not grow the memory of a daemon that runs for months."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from acsd import shared_names
from acsd.cwmp import rpc
from acsd.cwmp.soap import Envelope, parse_envelope, render_envelope
from acsd.provisioning.status import ReadPlan


def _inform(serial: str, names: list[str]) -> bytes:
    inform = rpc.Inform(
        device_id=rpc.DeviceId("Example", "00AA00", "Box", serial),
        events=[rpc.EventStruct("2 PERIODIC")],
        parameters=[rpc.ParameterValue(name, "1") for name in names],
    )
    return render_envelope(Envelope(body=inform, cwmp_ns=rpc.DEFAULT_NAMESPACE, id="1"))


def _names(envelope: Envelope) -> list[str]:
    assert isinstance(envelope.body, rpc.Inform)
    return [p.name for p in envelope.body.parameters]


def test_two_cpes_reporting_a_name_share_one_copy_of_it() -> None:
    first = _names(parse_envelope(_inform("SN1", ["Device.DeviceInfo.UpTime"])))
    second = _names(parse_envelope(_inform("SN2", ["Device.DeviceInfo.UpTime"])))
    assert first == second and first[0] is second[0]
    # A read plan loaded from the store holds the same copy as what CPEs send.
    plan = ReadPlan.from_json(
        {"profile": "tr181", "reads": "1", "paths": ["Device.DeviceInfo.UpTime"], "refs": {},
         "at": 0.0}
    )  # fmt: skip
    assert plan is not None and plan.paths[0] is first[0]


def test_names_a_cpe_invents_do_not_pile_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared_names, "MAX_NAMES", 1000)
    per_message = 100
    for n in range(50):
        names = [f"Device.X_INVENTED_{n}.Name{i}" for i in range(per_message)]
        parse_envelope(_inform(f"SN{n}", names))
        assert shared_names.shared_count() <= 1000


def test_names_of_finished_messages_are_freed(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the test above proves of the table, for the process as a whole: sys.intern
    # (Python 3.12) kept every one of these names for the life of the process.
    monkeypatch.setattr(shared_names, "MAX_NAMES", 1000)
    parse_envelope(_inform("SN0", ["Device.X_WARM.Parameter"]))  # the codec's own caches
    bodies = [
        _inform(f"SN{n}", [f"Device.X_ONCE_{n}.Parameter{i}" for i in range(200)])
        for n in range(50)
    ]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for body in bodies:
            parse_envelope(body)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 10,000 names of ~35 characters: about 800 kB had they stayed; the table holds 1,000
    assert kept < 300_000
