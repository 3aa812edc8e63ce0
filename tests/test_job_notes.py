"""The job's note that values wait for a reboot stays until the CPE has rebooted: later
sessions read the new values back (the CPE holds them) before they are in effect."""

from __future__ import annotations

import pytest

from acsd.provisioning.jobs import (
    AFTER_REBOOT,
    DONE,
    PENDING,
    Outcome,
    RetryPolicy,
    close_job,
    new_memory,
    note_read_failed,
)
from acsd.provisioning.plan import Plan


def _close(memory: dict, outcome: Outcome, *, revision: int = 1, rebooted: bool = False) -> dict:
    close_job(
        memory, revision=revision, plan=Plan(), outcome=outcome, policy=RetryPolicy(),
        now=1000.0, rebooted=rebooted,
    )  # fmt: skip
    return memory["job"]


def test_the_reboot_note_stays_until_the_cpe_reboots():
    memory = new_memory(None, bootstrap=True)
    job = _close(memory, Outcome(notes=[AFTER_REBOOT]))
    assert job["state"] == DONE and job["notes"] == [AFTER_REBOOT]
    # a periodic session finds everything in place: still waiting for the reboot
    assert _close(memory, Outcome())["notes"] == [AFTER_REBOOT]
    assert _close(memory, Outcome())["notes"] == [AFTER_REBOOT]
    # the CPE rebooted (1 BOOT): the values are in effect
    assert _close(memory, Outcome(), rebooted=True)["notes"] == []
    assert _close(memory, Outcome())["notes"] == []


def test_a_new_revision_starts_a_new_job_without_the_old_note():
    memory = new_memory(None, bootstrap=True)
    _close(memory, Outcome(notes=[AFTER_REBOOT]))
    assert _close(memory, Outcome(), revision=2)["notes"] == []


def test_what_later_sessions_need_outlives_the_session():
    # The line's DNS servers (the router loses them with its DHCP client) and the names it
    # faulted on alone are read back from the stored memory by the next session; a factory
    # reset forgets what the CPE held, not these.
    stored = {"lineDns": ["192.0.2.53"], "faultedAlone": ["Device.WiFi.SSID.2.SSID"]}
    for bootstrap in (False, True):
        memory = new_memory(stored, bootstrap=bootstrap)
        assert memory["lineDns"] == ["192.0.2.53"]
        assert memory["faultedAlone"] == ["Device.WiFi.SSID.2.SSID"]
        assert memory["faultedAlone"] is not stored["faultedAlone"]


@pytest.mark.parametrize(("stored", "kept"), [(4, 4), (0, None), (-2, None), ("8", None),
                                              (True, None), (None, None)])  # fmt: skip
def test_a_stored_read_chunk_that_is_no_count_of_names_reads_as_none(stored, kept):
    # readChunk splits every read of the router: a row edited by hand must not crash one
    assert new_memory({"readChunk": stored}, bootstrap=False)["readChunk"] == kept


@pytest.mark.parametrize(("stored", "kept"), [(16, 16), (0, None), (-2, None), ("8", None),
                                              (True, None), (None, None)])  # fmt: skip
def test_a_stored_limit_of_names_per_read_that_is_no_count_reads_as_none(stored, kept):
    # gpvLimit (a router that answered 9004 to more names) splits every read of it; a
    # firmware's limit, it outlives a factory reset
    for bootstrap in (False, True):
        assert new_memory({"gpvLimit": stored}, bootstrap=bootstrap).get("gpvLimit") == kept


@pytest.mark.parametrize("bounces", [["x"], "x", {"Device.WiFi.SSID.1.SSID": 3}, None])
def test_a_hand_edited_bounce_memory_reads_as_none_rather_than_failing_the_session(bounces):
    # the stored memory is the device row's JSON: a value of another shape must not fail
    # every later session of the router in close_job
    memory = new_memory({"bounces": bounces}, bootstrap=False)
    assert memory["bounces"] == {}
    job = _close(memory, Outcome())
    assert job["state"] == DONE


@pytest.mark.parametrize(
    "stored",
    [
        {"secrets": ["x"], "faults": "x", "faultedAlone": {"a": 1}},
        {"secrets": {"Device.X": 3}, "faults": {"Device.X": [1]}, "faultedAlone": [3, None]},
    ],
)
def test_a_hand_edited_memory_of_another_shape_reads_as_empty_rather_than_failing(stored):
    memory = new_memory(stored, bootstrap=False)
    assert (memory["secrets"], memory["faults"], memory["faultedAlone"]) == ({}, {}, [])


def test_well_formed_memory_entries_are_kept():
    fault = {"setting": "wifi.2g.ssid", "attempts": 2, "hash": "h"}
    stored = {
        "secrets": {"Device.X": "h"},
        "faults": {"Device.Y": fault},
        "faultedAlone": ["Device.Z"],
    }
    memory = new_memory(stored, bootstrap=False)
    assert memory["secrets"] == {"Device.X": "h"}
    assert memory["faults"] == {"Device.Y": fault}
    assert memory["faultedAlone"] == ["Device.Z"]


def test_a_read_that_failed_is_noted_on_a_pending_job_only():
    memory = new_memory(None, bootstrap=True)
    assert note_read_failed(memory, revision=1, why="fault 9002 on X.", now=1000.0)
    note = "not applied: the router's values could not be read (fault 9002 on X.); the next "
    assert memory["job"]["state"] == PENDING
    assert memory["job"]["notes"] == [note + "session reads again"]
    # the same again changes nothing (the record is not written for it)
    assert not note_read_failed(memory, revision=1, why="fault 9002 on X.", now=2000.0)
    # a session that reads and plans writes the notes anew
    job = _close(memory, Outcome())
    assert job["state"] == DONE and job["notes"] == []
    # a drift check that cannot read does not reopen a job that is done
    assert not note_read_failed(memory, revision=1, why="fault 9002 on X.", now=3000.0)
    assert memory["job"]["state"] == DONE
    # a new revision's job starts pending, with the note
    assert note_read_failed(memory, revision=2, why="fault 9002 on X.", now=4000.0)
    assert memory["job"]["revision"] == 2 and memory["job"]["attempts"] == 0


@pytest.mark.parametrize(
    "job",
    ["FAILED", 3, ["DONE"], {"revision": 1, "state": DONE, "attempts": "2", "notes": 5}],
)
def test_a_stored_job_of_another_shape_is_replaced_by_the_sessions_job(job):
    # "job": "FAILED" in a hand-edited row failed close_job in every session of the router
    memory = new_memory({"job": job, "appliedRevision": 1}, bootstrap=False)
    closed = _close(memory, Outcome(notes=[AFTER_REBOOT]))
    assert (closed["revision"], closed["state"], closed["notes"]) == (1, DONE, [AFTER_REBOOT])
    assert closed["attempts"] == 0


@pytest.mark.parametrize("dns", ["192.0.2.53", 5, [1], {"a": "192.0.2.53"}])
def test_stored_line_dns_of_another_shape_reads_as_none(dns):
    # sent to the router as a comma-separated list: "192.0.2.53" would go as "1,9,2,..."
    assert new_memory({"lineDns": dns}, bootstrap=False)["lineDns"] is None
