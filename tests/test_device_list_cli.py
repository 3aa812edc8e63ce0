"""`acsd device list`: what an operator sees of many devices."""

from __future__ import annotations


def test_device_list_says_when_the_limit_hides_devices(daemon):
    for n in range(3):
        daemon.apply({"serialNumber": f"LIMIT{n:04d}"})
    shown = daemon.cli("device", "list", "--limit", "2")
    assert sum("LIMIT" in line for line in shown.stdout.splitlines()) == 2
    assert "2 of 3 devices shown; --limit 3 shows all" in shown.stderr
    whole = daemon.cli("device", "list")
    assert "devices shown" not in whole.stderr
    for bad in ("0", "-1", "x"):
        refused = daemon.cli("device", "list", "--limit", bad, check=False)
        assert refused.returncode == 2 and "--limit" in refused.stderr
        assert "no devices yet" not in refused.stdout
