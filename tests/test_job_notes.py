"""The job's note that values wait for a reboot stays until the CPE has rebooted: later
sessions read the new values back (the CPE holds them) before they are in effect."""

from __future__ import annotations

from acsd.provisioning.jobs import (
    AFTER_REBOOT,
    DONE,
    Outcome,
    RetryPolicy,
    close_job,
    new_memory,
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
