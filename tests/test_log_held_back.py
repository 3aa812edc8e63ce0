"""Throttled warnings (one line per kind a while, ``since_last`` counting the ones held back)
tell the count of the last ones held back once they stop: a closing line of the same
event with ``held_back: true``, and at the stop before the daemon's last line."""

from __future__ import annotations

import asyncio
import time

from apiclient import Api
from conftest import wait_for
from test_cwmp_bad_input import bad_post

#: every throttle's window in these daemons, in seconds (instead of 10)
WINDOW = 0.5
SHORT_WINDOWS = f"import acsd.throttle; acsd.throttle.WINDOW_LIMIT = {WINDOW}"


def _lines(daemon, event: str, count: int) -> list[dict]:
    """The first ``count`` lines of ``event``, once there are that many."""
    return wait_for(lambda: len(got := daemon.events(event)) >= count and got[:count])


def _refuse(daemon, times: int) -> None:
    for _ in range(times):
        status, _body = bad_post(daemon.cwmp_url, b"{}", content_type="application/json")
        assert status == 415


def test_the_refusals_held_back_at_the_end_of_a_burst_are_told_once_it_stops(daemon_factory):
    """A scan's last refusals were never told: the count rode on the next line, and after
    the scan there was none. A window after the last one, a closing line tells them."""
    daemon = daemon_factory(prelude=SHORT_WINDOWS)
    _refuse(daemon, 30)
    first, closing = wait_for(
        lambda: len(daemon.events("cwmp.refused")) == 2 and daemon.events("cwmp.refused")
    )
    assert first["since_last"] == 0 and "held_back" not in first
    # the same event and fields as the last one held back, and its count
    assert closing["held_back"] is True and closing["since_last"] == 29, closing
    assert closing["level"] == "warning" and closing["status"] == 415
    assert closing["remote"] == first["remote"] and closing["reason"] == first["reason"]
    time.sleep(3 * WINDOW)  # (one closing line: nothing more is held back)
    assert len(daemon.events("cwmp.refused")) == 2
    # the episode is over: the next refusal is told at once, as the first one was
    _refuse(daemon, 1)
    third = wait_for(lambda: daemon.events("cwmp.refused")[2:])[0]
    assert third["since_last"] == 0 and "held_back" not in third
    time.sleep(3 * WINDOW)  # (nothing was held back since: no closing line)
    assert len(daemon.events("cwmp.refused")) == 3


def test_a_steady_flood_gets_one_line_a_window_and_the_closing_line_only_at_its_end(
    daemon_factory,
):
    """While refusals keep coming, the next line carries the count (no closing line in
    between); the closing line comes a window after the last one."""
    daemon = daemon_factory(prelude=SHORT_WINDOWS)
    sent, until = 0, time.monotonic() + 4 * WINDOW
    while time.monotonic() < until:
        _refuse(daemon, 1)
        sent += 1
        time.sleep(0.02)
    lines = wait_for(
        lambda: (ls := daemon.events("cwmp.refused")) and ls[-1].get("held_back") and ls
    )
    closing = [line for line in lines if line.get("held_back")]
    assert len(closing) == 1 and lines[-1] is closing[0], lines
    # every refusal is in a count: each line that is no closing line stands for one
    assert sum(line["since_last"] for line in lines) + len(lines) - 1 == sent, (sent, lines)
    assert 3 <= len(lines) <= 7, lines


def test_api_token_guesses_held_back_are_told_with_their_count(daemon_factory):
    daemon = daemon_factory(prelude=SHORT_WINDOWS)
    api = Api(daemon.api_url, "acsd_" + "0" * 40)
    for _ in range(5):
        assert api.get("/network/device").status == 401
    first, closing = wait_for(
        lambda: len(daemon.events("api.auth_failed")) == 2 and daemon.events("api.auth_failed")
    )
    assert first["since_last"] == 0
    assert closing["held_back"] is True and closing["since_last"] == 4
    assert closing["remote"] == "127.0.0.1" and closing["reason"] == first["reason"]


def test_what_is_held_back_at_the_stop_is_told_before_the_last_line(daemon_factory):
    """The stop does not wait out a window (10 s here) and writes nothing after
    "stopped": the closing lines due come just before it."""
    daemon = daemon_factory()
    _refuse(daemon, 6)
    wait_for(lambda: daemon.events("cwmp.refused"))
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 8
    events = [e.get("event") for e in map(_parsed, daemon.lines) if e]
    assert events[-1] == "stopped", events[-5:]
    first, closing = daemon.events("cwmp.refused")
    assert first["since_last"] == 0
    assert closing["held_back"] is True and closing["since_last"] == 5
    assert events.index("cwmp.refused", events.index("cwmp.refused") + 1) > events.index("stopping")


def _parsed(line: str) -> dict | None:
    import json

    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


class _Lines:
    """A logger that keeps what it is told (event and fields)."""

    def __init__(self) -> None:
        self.told: list[tuple[str, dict]] = []

    def warning(self, event: str, **fields: object) -> None:
        self.told.append((event, fields))


def test_keys_forgotten_past_the_bound_tell_what_they_held_back_in_one_line():
    """A client inventing a key per refusal (a serial each) fills the throttle: the keys
    are forgotten, and what they held back is said in one line first, not dropped unsaid."""
    from acsd.throttle import Throttle

    async def flood() -> list[tuple[str, dict]]:
        lines = _Lines()
        throttle = Throttle(60.0, most=3)
        for key in ("a", "a", "a", "b", "b", "c"):
            throttle.tell(key, lines, "warning", "cwmp.refused", reason="bad", serial=key)
        throttle.tell("d", lines, "warning", "cwmp.refused", reason="bad", serial="d")
        throttle.close()
        return lines.told

    told = asyncio.run(flood())
    events = [event for event, _ in told]
    assert events == ["cwmp.refused"] * 3 + ["log.held_back_forgotten", "cwmp.refused"]
    summary = told[3][1]
    assert summary["since_last"] == 3 and summary["keys"] == 2
    assert summary["events"] == ["cwmp.refused"]
