"""`acsd profile check` as an operator runs it."""

from __future__ import annotations

from conftest import DATAMODELS, run_cli


def test_builtin_profiles_pass_and_show_what_they_match():
    proc = run_cli("profile", "check", "--datamodels", str(DATAMODELS))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("huawei") and "huawei-hg8245" in line for line in lines)
    assert any(line.startswith("tplink-tr181") and "tplink-tr181" in line for line in lines)
    assert lines[-1].endswith("profiles OK")


def test_typo_bad_path_and_cycle_are_reported_with_file_and_line(tmp_path):
    (tmp_path / "typo.toml").write_text(
        'name = "typo"\nextends = "tr098"\n\n[match]\nmanufacturer = "Typo*"\n\n'
        '[settings."wifi.2g.sssid"]\n'
        'path = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"\n'
    )
    (tmp_path / "badpath.toml").write_text(
        'name = "badpath"\nextends = "tr181"\n[match]\nmanufacturer = "Bad*"\n'
        '[settings."wifi.2g.ssid"]\npath = "Device.WiFi.SSID.1.SSIDD"\n'
    )
    (tmp_path / "a.toml").write_text('name = "a"\nextends = "b"\n[match]\nmanufacturer = "A*"\n')
    (tmp_path / "b.toml").write_text('name = "b"\nextends = "a"\n[match]\nmanufacturer = "B*"\n')
    proc = run_cli("profile", "check", str(tmp_path), "--datamodels", str(DATAMODELS))
    assert proc.returncode == 2  # the profiles are configuration: wrong, as serve says
    err = proc.stderr
    assert "typo.toml:7:" in err and "wifi.2g.ssid" in err  # "did you mean"
    assert "badpath.toml:6:" in err and "SSIDD" in err
    assert "a.toml" in err and "b.toml" in err and "cycle" in err


def test_a_missing_directory_is_the_only_thing_said(tmp_path):
    missing = tmp_path / "profiles"
    proc = run_cli("profile", "check", str(missing), "--datamodels", str(DATAMODELS))
    assert proc.returncode == 2  # the profiles are configuration: wrong, as serve says
    assert proc.stdout == ""  # not the built-in profiles' listing, as if DIR had been read
    assert proc.stderr.strip() == f"{missing}: profile directory not found"


def test_a_broken_data_model_file_is_one_line_naming_it(tmp_path):
    """A malformed XML file ended in an lxml XMLSyntaxError traceback."""
    import shutil

    from acsd.provisioning.profile_datamodel import MODEL_FILES

    tr098, tr181 = MODEL_FILES["InternetGatewayDevice."], MODEL_FILES["Device."]
    shutil.copy(DATAMODELS / tr098, tmp_path / tr098)
    (tmp_path / tr181).write_text("<bad\n")
    proc = run_cli("profile", "check", "--datamodels", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    broken = [line for line in proc.stderr.splitlines() if tr181 in line]
    assert len(broken) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert broken[0].startswith(f"{tmp_path / tr181}:") and "not well-formed XML" in broken[0]
    assert proc.stdout.splitlines()[-1] == "1 error"


def test_strict_booleans_and_a_list_for_unsupported(tmp_path):
    """secret = "yes" and reboot = "true" were taken as true; unsupported = "wifi.6g.*"
    (no list) is the list of that one key, as it always was."""
    from conftest import REPO

    huawei = (REPO / "src" / "acsd" / "profiles" / "huawei.toml").read_text()
    huawei = huawei.replace('name = "huawei"', 'name = "myhuawei"')
    huawei = huawei.replace('manufacturer = "Huawei*"', 'manufacturer = "MyHuawei*"')
    assert "secret = true" in huawei and 'unsupported = ["wifi.6g.*"]' in huawei
    cases = {
        huawei.replace("secret = true", 'secret = "yes"', 1): (
            ".secret: Input should be a valid boolean"
        ),
        huawei.replace("secret = true", 'secret = true\nreboot = "true"', 1): (
            ".reboot: Input should be a valid boolean"
        ),
    }
    for text, message in cases.items():
        (tmp_path / "my.toml").write_text(text)
        proc = run_cli("profile", "check", str(tmp_path), "--datamodels", str(DATAMODELS))
        assert proc.returncode == 2, message
        [line] = [e for e in proc.stderr.splitlines() if "my.toml" in e]
        assert line.endswith(message), (message, line)
    for ok in (huawei, huawei.replace('unsupported = ["wifi.6g.*"]', 'unsupported = "wifi.6g.*"')):
        (tmp_path / "my.toml").write_text(ok)
        check = run_cli("profile", "check", str(tmp_path), "--datamodels", str(DATAMODELS))
        assert check.returncode == 0, check.stderr


def test_a_warning_is_said_once_on_stderr(tmp_path):
    (tmp_path / "acme.toml").write_text(
        'name = "acme"\nextends = "tr181"\n[match]\nmanufacturer = "Acme*"\nmodelName = "*"\n'
    )
    proc = run_cli("profile", "check", str(tmp_path), "--datamodels", str(DATAMODELS))
    assert proc.returncode == 0, proc.stderr
    [warning] = [line for line in proc.stderr.splitlines() if "acme.toml" in line]
    assert "a glob of only '*' tests nothing" in warning
    assert "acme.toml" not in proc.stdout  # printed there too, it read as two findings
    assert proc.stdout.splitlines()[-1].endswith("profiles OK")
