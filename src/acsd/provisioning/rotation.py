"""The shared password a router that came with the previous one is given ([cwmp.auth]
previous_password; see ``ProvisioningDriver._give_acs_password``), kept out of what a
session holds.

The fleet's password is no router's own: no record keeps it, and a session parked for
another worker (``workers = N``: its driver's state pickled into the database) must not
carry it either, or it lands in the SQLite file, its WAL and free pages. So the desired
settings, the plan and its changes hold :data:`ROTATION_DUE` in its place; the password
itself is only in the driver's ``_acs_password`` (never parked: the worker that takes
the session up fills in its own, as it has it then) and in the SetParameterValues on the
wire, which is parked without its values (``CwmpSession.freeze``)."""

from __future__ import annotations

from dataclasses import replace

from acsd.cwmp import rpc
from acsd.log import MASK

#: the setting that gives a router the current shared password ([cwmp.auth] password):
#: only in a session it opened with the previous one
ACS_PASSWORD = "management.acs_password"

#: what the session's state holds for the password: never sent (the SetParameterValues
#: is given the password instead, ApplyPhase._spv) and never a password anyone would
#: choose, so nothing mistakes it for one
ROTATION_DUE = "(rotation due: the current shared password, filled in when sent)"


#: what a withheld fault text reads (see :func:`withheld`)
WITHHELD = "(withheld: the request carried the shared password)"


def withheld(fault: rpc.Fault) -> rpc.Fault:
    """``fault`` without its texts (codes and parameter names kept): the answer to a
    SetParameterValues that carried the shared password. Masking needs the value the CPE
    may quote, and a session taken up by another worker after a reload changed the
    password knows only the new one: the CPE's words about the old one would reach the
    job, the log and the parked session as it wrote them."""
    return replace(
        fault,
        string=WITHHELD if fault.string else "",
        spv_faults=[replace(f, string=WITHHELD if f.string else "") for f in fault.spv_faults],
    )


def masked(fault: rpc.Fault, password: str) -> rpc.Fault:
    """``fault`` with ``password`` masked in its texts. A CPE's fault string may quote
    the value it refused; the changes hold ROTATION_DUE, not the password, so the job's
    masking of refused secrets (jobs.masked_faults) cannot find it there, and the text
    would reach the job, the log and a parked session as the CPE wrote it."""
    if password not in fault.string and not any(password in f.string for f in fault.spv_faults):
        return fault
    return replace(
        fault,
        string=fault.string.replace(password, MASK),
        spv_faults=[replace(f, string=f.string.replace(password, MASK)) for f in fault.spv_faults],
    )
