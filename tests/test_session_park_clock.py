"""A parked session taken up by another host of a PostgreSQL fleet: its age and idle time
go with it, not the parking host's monotonic stamps (which count from that host's boot)."""

from __future__ import annotations

import time

import pytest

from acsd.cwmp.session import CwmpSession, Limits, ParkError


class _Driver:
    def export_state(self) -> dict:
        return {}

    def import_state(self, state: dict) -> None:
        pass


def test_a_session_thawed_on_a_host_booted_at_another_time_keeps_its_age(monkeypatch):
    session = CwmpSession(driver=_Driver(), remote_ip="127.0.0.1", limits=Limits(max_seconds=600))
    session.created = time.monotonic() - 30  # 30 s old, idle 2 s
    session.last_active = time.monotonic() - 2
    data = session.freeze()
    # the other host booted a day earlier (its monotonic clock a day ahead), 5 s later
    real_monotonic, real_time = time.monotonic, time.time
    monkeypatch.setattr(time, "monotonic", lambda: real_monotonic() + 86400)
    monkeypatch.setattr(time, "time", lambda: real_time() + 5)
    thawed = CwmpSession.thaw(data, _Driver())
    now = time.monotonic()
    assert 34 <= now - thawed.created < 40
    assert 6 <= now - thawed.last_active < 12
    assert not thawed._too_long()  # ("session too long" on its first request, it was)
    # a clock stepped back meanwhile counts as no time parked, not as a younger session
    monkeypatch.setattr(time, "time", lambda: real_time() - 3600)
    again = CwmpSession.thaw(data, _Driver())
    assert 29 <= time.monotonic() - again.created < 35


def test_a_session_parked_by_an_older_acsd_is_refused_not_misread():
    import pickle

    session = CwmpSession(driver=_Driver(), remote_ip="127.0.0.1")
    _shape, own, (state, _parked) = pickle.loads(session.freeze())
    older = pickle.dumps((10, own, state))
    with pytest.raises(ParkError, match="format 10"):
        CwmpSession.thaw(older, _Driver())


def test_an_older_acsd_reads_the_format_number_of_a_newer_parked_session():
    # (it unpacks three items, then compares the format: four failed with "too many values")
    import pickle

    session = CwmpSession(driver=_Driver(), remote_ip="127.0.0.1")
    shape, _own, _state = pickle.loads(session.freeze())
    assert shape == 13


def test_an_outstanding_set_parameter_values_is_parked_without_its_values():
    # Sent already, it is answered by its type; its values (the fleet's shared password in
    # a rotation session) have no business in the database.
    from acsd.cwmp import rpc

    session = CwmpSession(driver=_Driver(), remote_ip="127.0.0.1")
    sent = rpc.SetParameterValues(
        parameters=[rpc.ParameterValue("Device.ManagementServer.Password", "fleet-secret")],
        parameter_key="3",
    )
    session.outstanding = ("acsd-1", sent)
    data = session.freeze()
    assert b"fleet-secret" not in data
    assert session.outstanding[1].parameters[0].value == "fleet-secret"  # (still open here)
    _id, parked = CwmpSession.thaw(data, _Driver()).outstanding
    assert isinstance(parked, rpc.SetParameterValues) and parked.parameter_key == "3"
    assert [p.name for p in parked.parameters] == ["Device.ManagementServer.Password"]
