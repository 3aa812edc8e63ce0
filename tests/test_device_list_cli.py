"""`acsd device list`: what an operator sees of many devices."""

from __future__ import annotations


def _serials(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines() if "LIMIT" in line]


def test_device_list_says_when_the_limit_hides_devices(daemon):
    for n in range(3):
        daemon.apply({"serialNumber": f"LIMIT{n:04d}"})
    shown = daemon.cli("device", "list", "--limit", "2")
    assert _serials(shown.stdout) == ["LIMIT0000", "LIMIT0001"]
    assert shown.stderr.strip() == "acsd: devices 1-2 of 3 shown; --offset 2 shows the next 1"
    whole = daemon.cli("device", "list")
    assert len(_serials(whole.stdout)) == 3 and whole.stderr == ""
    for bad in ("0", "-1", "x", "99999999999999999999"):
        refused = daemon.cli("device", "list", "--limit", bad, check=False)
        assert refused.returncode == 2 and "--limit" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert "no devices yet" not in refused.stdout


def test_device_list_pages_with_offset(daemon):
    for n in range(3):
        daemon.apply({"serialNumber": f"LIMIT{n:04d}"})
    page = daemon.cli("device", "list", "--limit", "2", "--offset", "2")
    assert _serials(page.stdout) == ["LIMIT0002"]
    assert page.stderr.strip() == "acsd: devices 3-3 of 3 shown"
    past = daemon.cli("device", "list", "--offset", "5")
    assert "no devices yet" not in past.stdout  # there are: only not this far
    assert past.stderr.strip() == "acsd: no devices at --offset 5: there are 3"
    refused = daemon.cli("device", "list", "--offset", "-1", check=False)
    assert refused.returncode == 2 and "--offset" in refused.stderr
