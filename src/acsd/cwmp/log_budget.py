"""How many log lines one session writes about the CPE's own requests.

A CPE may send thousands of requests of its own (TransferComplete, unknown methods) per
second until max_session_seconds ends its session; one line each would flood the journal
or get acsd rate-limited by it. The first few lines per event and method are written, the
rest only counted, and the count is logged once when the session ends."""

from __future__ import annotations

from dataclasses import dataclass, field

#: lines written per (event, method) in one session
PER_KIND = 5
#: distinct (event, method) pairs tracked: unknown method names are the CPE's to choose,
#: so a CPE naming a new one each time must not grow the table (or the journal) either
MAX_KINDS = 16


@dataclass(slots=True)
class LogBudget:
    written: dict[tuple[str, str], int] = field(default_factory=dict)
    #: lines not written since the budget of their kind was spent
    skipped: int = 0

    def allow(self, event: str, method: str) -> bool:
        """Whether to write one more ``event`` line about a ``method`` request."""
        key = (event, method)
        n = self.written.get(key, 0)
        if n >= PER_KIND or (n == 0 and len(self.written) >= MAX_KINDS):
            self.skipped += 1
            return False
        self.written[key] = n + 1
        return True
