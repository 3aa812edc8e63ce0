"""A router is online while its sessions keep coming: within 2 x its periodic interval + grace."""

from __future__ import annotations

import pytest

from acsd.provisioning.status import is_online

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("age", "interval", "online"),
    [
        (0, 300, True),
        (299, 300, True),
        (600 + 60, 300, True),  # one missed Inform is tolerated
        (600 + 61, 300, False),
        (7200 + 60, 3600, True),
        (7200 + 61, 3600, False),
    ],
)
def test_online_within_twice_the_interval_plus_grace(age, interval, online):
    assert is_online(NOW - age, interval, NOW, default_interval=300, grace=60) is online


def test_never_seen_is_offline():
    assert is_online(None, 300, NOW, default_interval=300, grace=60) is False


@pytest.mark.parametrize("interval", [None, 0, -5])
def test_unknown_interval_uses_the_default(interval):
    assert is_online(NOW - 900, interval, NOW, default_interval=600, grace=0) is True
    assert is_online(NOW - 1201, interval, NOW, default_interval=600, grace=0) is False


def test_a_session_stamped_slightly_in_the_future_is_online():
    assert is_online(NOW + 5, 300, NOW, default_interval=300, grace=60) is True
