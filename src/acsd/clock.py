"""The one clock. Tests and the simulator may replace ``now`` to move time."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    return time.time()


def iso(ts: float) -> str:
    """POSIX seconds -> the seed's timestamp form, e.g. ``2025-01-01T00:00:00.000Z``."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
