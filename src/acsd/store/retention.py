"""What the retention prune may delete, on both backends: the tables that only ever grow
(one row per write or command) and the time column each is aged by.

The other tables hold records an operator or a client still reads as current (devices,
lines, APN devices, removed ones too: a CLI's look-up finds the last removed), or rows
that go by themselves (parked sessions are claimed or ended within minutes, a Connection
Request claim goes with its device). A device's jobs are no history: its record holds the
current one only (``devices.provisioning``), and ``devices.jobs`` is a counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: the table groups a retention setting is given for ([store] *_retention_days)
Group = Literal["audit", "operations"]

#: rows one prune statement deletes at most: a few ms of the SQLite writer's lock at a
#: time, so the sessions' saves queued behind it wait no longer than behind a busy batch
BATCH = 1000


@dataclass(frozen=True, slots=True)
class Prunable:
    table: str
    #: POSIX seconds the row's age counts from (indexed: audit_at, apn_operations_done)
    column: str
    #: what else a row must be to go ("" for nothing more)
    also: str = ""

    def where(self, mark: str) -> str:
        """The rows older than the cutoff, ``mark`` its placeholder (``?`` or ``$1``).
        NULL in ``column`` (an operation not done yet) never compares: never pruned."""
        condition = f"{self.column} < {mark}"
        return f"{condition} AND {self.also}" if self.also else condition


PRUNABLE: dict[Group, Prunable] = {
    # Every write's entry, aged from when it was made.
    "audit": Prunable("audit", "at"),
    # An APN command's StatusUrl, aged from when it completed or failed: one still pending
    # has no done time, and is kept however old (the state check says so twice).
    "operations": Prunable("apn_operations", "done", "state != 'pending'"),
}
