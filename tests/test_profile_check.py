"""`acsd profile check [DIR]`: every profile validated, errors as FILE:LINE, sim trees listed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from acsd.provisioning.profile_check import (
    MODEL_FILES,
    check_profiles,
    load_datamodel,
    main,
    norm,
    simulator_trees,
)
from acsd.provisioning.profile_schema import is_vendor_path
from acsd.provisioning.profiles import load_profiles

DATAMODELS = Path(__file__).resolve().parents[2] / "shared" / "datamodels"
needs_models = pytest.mark.skipif(
    not all((DATAMODELS / f).is_file() for f in MODEL_FILES.values()),
    reason=f"BBF data models not found in {DATAMODELS}",
)

VENDOR = """\
name = "acme"
extends = "tr181"

[match]
manufacturer = "Acme*"

[settings."wifi.2g.ssid"]
path = "Device.WiFi.SSID.1.SSID"
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def check(directory: Path | None):
    return check_profiles(directory, datamodels=DATAMODELS)


@needs_models
def test_the_builtin_profiles_pass():
    report = check(None)
    assert report.errors == []
    assert report.lines[-1] == f"{len(load_profiles())} profiles OK"
    assert not any("warning" in line for line in report.lines), report.lines


@needs_models
def test_each_profile_line_names_its_base_and_the_trees_it_serves():
    report = check(None)
    lines = {line.split()[0]: line for line in report.lines if not line.startswith(" ")}
    assert lines["tr181"].startswith("tr181  base of Device.  matches: ")
    assert lines["huawei"].startswith("huawei  extends tr098  matches: ")
    trees = {t.name for t in simulator_trees()}
    expected = {
        "tplink-tr181": "tplink-tr181",
        "tplink-tr098": "tplink-tr098",
        "huawei": "huawei-hg8245",
        "zte": "zte-f670l",
        "zyxel": "zyxel-vmg8825",
        "nokia": "nokia-g240w",
        "tr098": "tr098-dsl",
        "tr181": "tr181-mobile",
    }
    for profile, tree in expected.items():
        if tree in trees:
            assert lines[profile].endswith(tree) or f" {tree}," in lines[profile], lines[profile]


@needs_models
def test_a_good_extra_profile_passes(tmp_path):
    write(tmp_path, "acme.toml", VENDOR)
    report = check(tmp_path)
    assert report.errors == []
    assert "acme  extends tr181  matches: -" in report.lines


@needs_models
def test_a_typo_in_a_key_fails_with_file_and_line(tmp_path):
    path = write(tmp_path, "acme.toml", VENDOR.replace('"wifi.2g.ssid"', '"wifi.2g.sssid"'))
    report = check(tmp_path)
    assert report.errors == [
        f"{path}:7: settings.\"wifi.2g.sssid\": unknown setting 'wifi.2g.sssid' "
        "(did you mean 'wifi.2g.ssid'?)"
    ]
    assert report.lines[-1] == "1 error"


@needs_models
def test_a_bad_standard_path_fails_with_file_and_line(tmp_path):
    path = write(tmp_path, "acme.toml", VENDOR.replace("SSID.1.SSID", "SSID.1.SSSID"))
    report = check(tmp_path)
    assert len(report.errors) == 1
    error = report.errors[0]
    assert error.startswith(f'{path}:8: settings."wifi.2g.ssid".path: ')
    assert "'Device.WiFi.SSID.1.SSSID' is not a parameter of Device:2.17" in error
    assert "did you mean 'Device.WiFi.SSID.1.SSID'" in error


@needs_models
def test_a_when_test_on_a_parameter_the_model_lacks_fails(tmp_path):
    text = VENDOR + 'when = { "Device.WiFi.Radio.3.OperatingFrequencyBnd" = "6GHz" }\n'
    path = write(tmp_path, "acme.toml", text)
    report = check(tmp_path)
    assert len(report.errors) == 1, report.errors
    error = report.errors[0]
    assert error.startswith(f'{path}:9: settings."wifi.2g.ssid".when: ')
    assert "'Device.WiFi.Radio.3.OperatingFrequencyBnd' is not a parameter of Device:2.17" in error


@needs_models
def test_a_vendor_path_is_not_held_against_the_model(tmp_path):
    text = VENDOR + '[settings."wifi.bandsteering"]\npath = "Device.WiFi.X_ACME_Steer.On"\n'
    write(tmp_path, "acme.toml", text)
    assert check(tmp_path).errors == []


@needs_models
@pytest.mark.parametrize(
    ("extra", "line", "fragment"),
    [
        (
            '[settings."wifi.2g.password"]\n'
            'path = "Device.WiFi.AccesPoint.1.Security.X_ACME_KeyPassphrase"\n',
            11,
            "'Device.WiFi.AccesPoint.1.Security.X_ACME_KeyPassphrase': its standard part "
            "'Device.WiFi.AccesPoint.1.Security.' is not an object of Device:2.17 "
            "(did you mean 'Device.WiFi.AccessPoint.1.Security.'?)",
        ),
        (
            '[settings."wifi.5g.ssid"]\npath = "Device.WiFi.SSID.2.SSID"\n'
            'when = { "Device.WiFi.Radios.2.X_ACME_Band" = "5G" }\n',
            12,
            "(did you mean 'Device.WiFi.Radio.2.'?)",
        ),
        (
            '[tables."dhcp.reservations"]\n'
            'object = "Device.DHCPv4.Server.Pol.1.X_ACME_Lease."\n'
            '[tables."dhcp.reservations".fields]\nmac = { param = "MAC" }\nip = { param = "IP" }\n',
            11,
            "(did you mean 'Device.DHCPv4.Server.Pool.1.'?)",
        ),
        (
            '[settings."wifi.bandsteering"]\npath = "Device.WiFi.Radio.X_ACME_Steer"\n',
            11,
            "'Device.WiFi.Radio.' is a table of Device:2.17: its vendor part goes below an "
            "instance number",
        ),
        (
            '[status.fields.lanIp]\npaths = ["Device.LAN.X_ACME_Address"]\n',
            11,
            "its standard part 'Device.LAN.' is not an object of Device:2.17",
        ),
    ],
)
def test_a_vendor_path_must_hang_from_an_object_of_the_model(tmp_path, extra, line, fragment):
    # The vendor's own names are not the model's to check, but what they hang from is: a
    # typo there faults 9005 in every session, and passed for a vendor name.
    path = write(tmp_path, "acme.toml", VENDOR + "\n" + extra)
    report = check(tmp_path)
    assert len(report.errors) == 1, report.errors
    assert report.errors[0].startswith(f"{path}:{line}: ")
    assert fragment in report.errors[0]


@needs_models
@pytest.mark.parametrize(
    ("extra", "line", "fragment"),
    [
        (
            '[settings."wifi.2g.enable"]\npath = "Device.WiFi.SSID.1.Status"\ntype = "xsd:string"\n'
            'map = { true = "Up", false = "Down" }\n',
            10,
            "read-only in Device:2.17",
        ),
        (
            '[settings."wifi.2g.enable"]\npath = "Device.WiFi.SSID.1.LowerLayers"\n',
            10,
            "type defaults to xsd:boolean but Device:2.17 says xsd:string",
        ),
        (
            '[settings."wifi.2g.password"]\n'
            'path = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"\nsecret = false\n',
            10,
            "secured",
        ),
        (
            '[tables."dhcp.reservations"]\nobject = "Device.DHCPv4.Server.Pool.1.StaticAdress."\n'
            '[tables."dhcp.reservations".fields]\nmac = { param = "Chaddr" }\n'
            'ip = { param = "Yiaddr" }\n',
            11,
            "did you mean 'Device.DHCPv4.Server.Pool.1.StaticAddress.'",
        ),
        (
            '[tables."dhcp.reservations"]\nobject = "Device.DHCPv4.Server.Pool.1.StaticAddress."\n'
            '[tables."dhcp.reservations".fields]\nmac = { param = "Chadr" }\n'
            'ip = { param = "Yiaddr" }\n',
            13,
            "'Device.DHCPv4.Server.Pool.1.StaticAddress.1.Chadr' is not a parameter",
        ),
    ],
)
def test_what_the_model_refuses_is_an_error(tmp_path, extra, line, fragment):
    path = write(tmp_path, "acme.toml", VENDOR + "\n" + extra)
    report = check(tmp_path)
    assert len(report.errors) == 1, report.errors
    assert report.errors[0].startswith(f"{path}:{line}: ")
    assert fragment in report.errors[0]


@needs_models
def test_a_stated_type_the_model_disagrees_with_is_a_warning(tmp_path):
    text = VENDOR + '[settings."dhcp.pool_end"]\npath = "Device.DHCPv4.Server.Pool.1.MaxAddress"\n'
    write(tmp_path, "acme.toml", text + 'type = "xsd:int"\n')
    report = check(tmp_path)
    assert report.errors == []
    assert any("warning: type xsd:int differs" in line for line in report.lines)


def test_an_extends_cycle_fails_naming_both_files(tmp_path):
    a = write(tmp_path, "a.toml", 'name = "a"\nextends = "b"\n[match]\noui = "AAAAAA"\n')
    b = write(tmp_path, "b.toml", 'name = "b"\n# loops back\nextends = "a"\n[match]\noui = "B"\n')
    report = check(tmp_path)
    assert len(report.errors) == 1
    assert report.errors[0].startswith(f"{a}:2: extends: profiles extend each other in a loop")
    assert f"a ({a}:2) -> b ({b}:3) -> a" in report.errors[0]


def test_an_unknown_base_fails(tmp_path):
    path = write(tmp_path, "acme.toml", VENDOR.replace('"tr181"', '"tr-181"'))
    report = check(tmp_path)
    assert report.errors == [
        f"{path}:2: extends: unknown base profile 'tr-181' (did you mean 'tr181'?)"
    ]


def test_a_profile_of_a_broken_base_reports_only_the_base(tmp_path):
    write(tmp_path, "base.toml", VENDOR.replace('"acme"', '"base"').replace("SSID.1", "SSID.*"))
    write(tmp_path, "acme.toml", VENDOR.replace('"tr181"', '"base"'))
    report = check(tmp_path)
    assert len(report.errors) == 1
    assert "base.toml:8:" in report.errors[0]


def test_two_profiles_with_the_same_match_tie(tmp_path):
    write(tmp_path, "acme.toml", VENDOR)
    other = write(tmp_path, "other.toml", VENDOR.replace('"acme"', '"other"').replace("#", ""))
    report = check(tmp_path)
    assert len(report.errors) == 1
    assert report.errors[0].startswith(f"{other}:4: match: the same `match` as acme (")


def test_globs_that_overlap_on_the_same_keys_tie(tmp_path):
    write(tmp_path, "acme.toml", VENDOR)
    text = VENDOR.replace('"acme"', '"acme-pro"').replace('"Acme*"', '["Acme Pro*", "X*"]')
    write(tmp_path, "pro.toml", text)
    report = check(tmp_path)
    assert len(report.errors) == 1
    assert "overlapping acme's" in report.errors[0]


def test_more_keys_make_no_tie(tmp_path):
    write(tmp_path, "acme.toml", VENDOR)
    text = VENDOR.replace('"acme"', '"acme-pro"').replace(
        'manufacturer = "Acme*"', 'manufacturer = "Acme*"\nmodelName = "Pro*"'
    )
    write(tmp_path, "pro.toml", text)
    assert check(tmp_path).errors == []


def test_a_profile_that_matches_every_cpe_fails(tmp_path):
    # Three keys outrank every built-in vendor profile: it would take every TR-181 CPE.
    text = 'name = "mine"\nextends = "tr181"\n[match]\noui = "*"\nproductClass = "**"\n'
    path = write(tmp_path, "mine.toml", text + 'manufacturer = ["*", "Acme*"]\n')
    report = check(tmp_path)
    assert len(report.errors) == 1, report.errors
    assert report.errors[0].startswith(f"{path}:3: match: matches every Device. CPE")
    assert "name the profile after the base profile" in report.errors[0]


def test_a_key_that_matches_anything_is_a_warning(tmp_path):
    text = VENDOR.replace('manufacturer = "Acme*"', 'manufacturer = "Acme*"\nmodelName = "*"')
    path = write(tmp_path, "acme.toml", text)
    report = check(tmp_path)
    assert report.errors == []
    [warning] = [w for w in report.warnings if "modelName" in w]
    assert warning.startswith(f"{path}:")
    assert "a glob of only '*' tests nothing" in warning


def test_a_tie_on_a_simulator_tree_fails(tmp_path):
    # both match the TP-Link TR-181 tree with one key each, on different keys
    text = 'name = "mine"\nextends = "tr181"\n[match]\noui = "50C7BF"\n'
    path = write(tmp_path, "mine.toml", text)
    report = check(tmp_path)
    if "tplink-tr181" not in {t.name for t in simulator_trees()}:
        pytest.fail("no tplink-tr181 simulator tree")
    assert len(report.errors) == 1
    assert report.errors[0].startswith(f"{path}:3: match: simulator tree tplink-tr181 matches ")
    assert "equally (tie)" in report.errors[0]


def test_without_the_models_the_path_check_is_skipped_with_a_warning(tmp_path, monkeypatch):
    import acsd.provisioning.profile_check as module

    monkeypatch.setattr(module, "find_datamodels", lambda given=None: None)
    write(tmp_path, "acme.toml", VENDOR.replace("SSID.1.SSID", "SSID.1.SSSID"))
    report = check_profiles(tmp_path)
    assert report.errors == []
    assert any(line.startswith("warning: BBF data models not found") for line in report.lines)


def test_a_named_models_directory_without_the_files_is_an_error(tmp_path):
    report = check_profiles(None, datamodels=tmp_path)
    assert report.errors and "no BBF data model files" in report.errors[0]


def test_a_missing_profile_directory_is_an_error(tmp_path):
    report = check(tmp_path / "nope")
    assert report.errors == [f"{tmp_path / 'nope'}: profile directory not found"]
    assert report.lines == []  # no listing of the built-in profiles alongside
    (tmp_path / "file.toml").write_text("")
    assert check(tmp_path / "file.toml").errors == [f"{tmp_path / 'file.toml'}: not a directory"]


@needs_models
def test_every_builtin_path_is_in_the_bbf_model_unless_it_is_a_vendor_path():
    models = {root: load_datamodel(DATAMODELS / f) for root, f in MODEL_FILES.items()}
    checked = 0
    for profile in load_profiles():
        dm = models[profile.root]
        for key, targets in profile.settings.items():
            for target in targets:
                # read before writing: a standard `when` path must exist, whether the
                # target it guards is a standard or a vendor (X_...) parameter
                for path, _test in target.when:
                    if not is_vendor_path(path):
                        assert norm(path) in dm.params, (profile.name, key, path)
                        checked += 1
                if is_vendor_path(target.path):
                    continue
                param = dm.params.get(norm(target.path))
                assert param is not None, (profile.name, key, target.path)
                assert param.writable, (profile.name, target.path)
                # types come from the model: stated or defaulted, they agree with it
                assert target.type == param.type, (profile.name, target.path)
                assert target.secret or not param.secured, (profile.name, target.path)
                checked += 1
        for table in profile.tables.values():
            assert dm.objects.get(norm(table.object) + "{i}.") is True, table.object
            for f in table.fields.values():
                param = dm.params[norm(table.object) + "{i}." + f.param]
                assert param.type == f.type, (profile.name, f.param)
                checked += 1
    assert checked > 100


@needs_models
def test_main_prints_the_report_and_exits_1_on_errors(tmp_path, capsys):
    assert main(["--datamodels", str(DATAMODELS)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("profiles OK")
    write(tmp_path, "acme.toml", VENDOR.replace('"tr181"', '"tr18"'))
    assert main([str(tmp_path), "--datamodels", str(DATAMODELS)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(str(tmp_path / "acme.toml") + ":2: extends")
    assert out[-1] == "1 error"


def test_the_module_runs_as_a_program_without_pulling_in_aiohttp(tmp_path):
    code = (
        "import sys, acsd.provisioning.profile_check, acsd.provisioning.profiles;"
        "sys.exit(any(m.split('.')[0] == 'aiohttp' for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
    write(tmp_path, "acme.toml", VENDOR.replace("SSID.1", "SSID.*"))
    run = subprocess.run(
        [sys.executable, "-m", "acsd.provisioning.profile_check", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert f"{tmp_path / 'acme.toml'}:8:" in run.stdout


@needs_models
def test_values_a_row_table_fixes_must_be_values_of_the_model(tmp_path):
    # `only` with a value AddressingType never has would add a row every session
    def text(enable: str) -> str:
        return VENDOR + (
            '[tables."wan.static.address"]\nobject = "Device.IP.Interface.2.IPv4Address."\n'
            'only = { AddressingType = "Manual" }\n[tables."wan.static.address".fields]\n'
            'ip = { param = "IPAddress" }\nmask = { param = "SubnetMask" }\n'
            f'enable = {{ param = "Enable", value = "{enable}" }}\n'
        )

    path = write(tmp_path, "acme.toml", text("true"))
    report = check(tmp_path)
    table, first = 'tables."wan.static.address"', len(VENDOR.splitlines())
    assert report.errors == [
        f"{path}:{first + 3}: {table}.only.AddressingType: 'Manual' is not a value of "
        "Device.IP.Interface.2.IPv4Address.1.AddressingType in Device:2.17 "
        "(AutoIP, DHCP, IKEv2, IPCP, Static)",
    ]  # fmt: skip
    # a field's fixed xsd:boolean that is none: refused as the profile loads
    write(tmp_path, "acme.toml", text("yes"))
    [error] = check(tmp_path).errors
    assert f"{table}.fields.enable: ['yes'] is no xsd:boolean" in error, error


def test_a_band_key_given_again_without_the_bands_test_fails(tmp_path):
    # The profiles of TP-Link's TR-098 firmware once looked like this: the 5 GHz password
    # at a vendor leaf, the rest of 5 GHz from the base, which writes it only where .2 is a
    # 5 GHz radio. The password alone would go to a 2.4 GHz guest network.
    path = write(
        tmp_path,
        "acme.toml",
        'name = "acme"\nextends = "tr098"\n\n[match]\nmanufacturer = "Acme*"\n\n'
        '[settings."wifi.5g.password"]\n'
        'path = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.2.X_ACME_Key"\n',
    )
    report = check(tmp_path)
    assert len(report.errors) == 1, report.errors
    assert report.errors[0].startswith(f'{path}:7: settings."wifi.5g.password": ')
    assert (
        "tr098 writes this only where `when` holds for InternetGatewayDevice.LANDevice"
        in (report.errors[0])
    )
    fixed = path.read_text() + (
        'when = { "InternetGatewayDevice.LANDevice.1.WLANConfiguration.2.PossibleChannels" = '
        '{ glob = ["*3[2-9]*", "*[4-9][0-9]*", "*1[0-9][0-9]*"] } }\n'
    )
    path.write_text(fixed)
    assert check(tmp_path).errors == []


def test_a_tree_with_the_fallback_alone_lacks_nothing_of_the_setting():
    # A ZTE F670L V9-like tree (the passphrase at the WLAN level only) was reported to
    # lack wifi.2g.password, which the daemon writes there.
    from acsd.provisioning.profile_check import _lacks

    targets = load_profiles().get("zte").settings["wifi.2g.password"]
    w = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1."
    v9 = frozenset({w + "KeyPassphrase", w + "PreSharedKey.1.PreSharedKey"})
    assert not _lacks(targets, v9)
    assert not _lacks(targets, frozenset({w + "PreSharedKey.1.KeyPassphrase",
                                          w + "PreSharedKey.1.PreSharedKey"}))  # fmt: skip
    assert _lacks(targets, frozenset({w + "PreSharedKey.1.PreSharedKey"}))


def test_a_fixed_value_the_parameter_cannot_hold_is_warned_of(tmp_path):
    # `value` was checked for table fields only: "wpa2-personal" (ModeEnabled's values are
    # capitalised) would fault 9007 on every router, every session
    (tmp_path / "acme.toml").write_text(
        'name = "acme"\nextends = "tr181"\n'
        '[settings."wifi.2g.security"]\n'
        'path = "Device.WiFi.AccessPoint.1.Security.ModeEnabled"\nvalue = "wpa2-personal"\n'
        '[match]\nmanufacturer = "Acme*"\n'
    )
    report = check(tmp_path)
    said = [line for line in report.lines if "['wpa2-personal'] not among the values" in line]
    assert said and "warning" in said[0], report.lines


@needs_models
def test_a_when_value_the_model_never_holds_is_warned_of_once(tmp_path):
    # "5 GHz" for 5GHz would make every 5 GHz setting "not on this CPE"; firmware that
    # reports a spelling of its own ("5G") is why it is a warning, and one spelling
    # repeated on each setting of the band is one finding.
    band = 'when = { "Device.WiFi.Radio.2.OperatingFrequencyBand" = "5 GHz" }\n'
    text = (
        VENDOR
        + '[settings."wifi.5g.ssid"]\npath = "Device.WiFi.SSID.2.SSID"\n'
        + band
        + '[settings."wifi.5g.password"]\n'
        + 'path = "Device.WiFi.AccessPoint.2.Security.KeyPassphrase"\n'
        + band
        # the case does not matter to the comparison, nor to the check
        + '[settings."wifi.6g.ssid"]\npath = "Device.WiFi.SSID.3.SSID"\n'
        + 'when = { "Device.WiFi.Radio.3.OperatingFrequencyBand" = "6ghz" }\n'
    )
    path = write(tmp_path, "acme.toml", text)
    report = check(tmp_path)
    assert report.errors == []
    assert report.warnings == [
        f'{path}:11: settings."wifi.5g.ssid".when: warning: '
        "Device.WiFi.Radio.2.OperatingFrequencyBand: ['5 GHz'] not among the values "
        "Device:2.17 allows (2.4GHz, 5GHz, 6GHz)"
    ]


@needs_models
def test_a_when_value_of_a_list_parameter_is_checked_item_by_item(tmp_path):
    # SupportedFrequencyBands and OperatingStandards are lists: "2.4GHz,5GHz" is what a
    # dual-band radio reports, not a value outside the model's; an item no radio has is.
    text = (
        VENDOR
        + '[settings."wifi.5g.ssid"]\npath = "Device.WiFi.SSID.2.SSID"\n'
        + 'when = { "Device.WiFi.Radio.2.SupportedFrequencyBands" = "2.4GHz,5GHz" }\n'
        + '[settings."wifi.6g.ssid"]\npath = "Device.WiFi.SSID.3.SSID"\n'
        + 'when = { "Device.WiFi.Radio.3.OperatingStandards" = ["ax, be", "n,5GHz"] }\n'
    )
    path = write(tmp_path, "acme.toml", text)
    report = check(tmp_path)
    assert report.errors == []
    assert report.warnings == [
        f'{path}:14: settings."wifi.6g.ssid".when: warning: '
        "Device.WiFi.Radio.3.OperatingStandards: ['5GHz'] not among the values "
        "Device:2.17 allows (a, ac, ax, b, be, g, n)"
    ]


@needs_models
def test_a_password_at_a_vendor_leaf_of_no_secret_name_must_say_whether_it_reads_back(tmp_path):
    # X_ACME_WiFiKey: the model cannot say it is secured, nor can its name. Taken as
    # readable, a router that reads it back empty got the password again in every session.
    text = (
        VENDOR
        + '[settings."wifi.2g.password"]\n'
        + 'path = "Device.WiFi.AccessPoint.1.Security.X_ACME_WiFiKey"\n'
    )
    path = write(tmp_path, "acme.toml", text)
    report = check(tmp_path)
    assert report.errors == []
    [warning] = report.warnings
    assert warning.startswith(f'{path}:9: settings."wifi.2g.password": warning: ')
    assert "give `secret = true` if it reads back empty" in warning
    for said in ("secret = true", "secret = false"):
        write(tmp_path, "acme.toml", text + said + "\n")
        assert check(tmp_path).warnings == []
    # a name acsd knows as secret (X_ACME_KeyPassphrase) needs no word
    write(tmp_path, "acme.toml", text.replace("X_ACME_WiFiKey", "X_ACME_KeyPassphrase"))
    assert check(tmp_path).warnings == []


@needs_models
def test_a_path_below_a_service_model_not_shipped_is_a_warning_not_an_error(tmp_path):
    # TR-181 and TR-098 declare Services. empty: VoiceService is TR-104's, which acsd does
    # not ship. Its paths were errors that no profile could make pass.
    device = write(
        tmp_path,
        "acme.toml",
        VENDOR
        + 'when = { "Device.Services.VoiceService.1.X_ACME_Lines" = "1" }\n\n'
        + "[identity.msisdn]\n"
        + 'paths = ["Device.Services.VoiceService.1.VoiceProfile.1.Line.1.DirectoryNumber"]\n',
    )
    igd = write(
        tmp_path,
        "igd.toml",
        'name = "igd-voice"\nextends = "tr098"\n\n[match]\nmanufacturer = "Igd*"\n\n'
        "[identity.msisdn]\n"
        'paths = ["InternetGatewayDevice.Services.VoiceService.1.VoiceProfile.1.Line.1.'
        'DirectoryNumber"]\n',
    )
    report = check(tmp_path)
    assert report.errors == []
    said = [w for w in report.warnings if "not checked" in w]
    # once per profile and service, at its first path
    assert len(said) == 2, said
    assert said[0].startswith(f"{device}:9: ") or said[1].startswith(f"{device}:9: ")
    assert any(w.startswith(f"{igd}:8: ") for w in said)
    assert all("the TR-104 model of" in w and "is not shipped" in w for w in said)


@needs_models
def test_a_service_name_that_is_no_bbf_service_stays_an_error(tmp_path):
    # a typo of VoiceService is no model acsd lacks, and would fault 9005 on every CPE
    path = write(
        tmp_path,
        "acme.toml",
        VENDOR + "\n[identity.msisdn]\n"
        'paths = ["Device.Services.VoiceSevice.1.VoiceProfile.1.Line.1.DirectoryNumber"]\n',
    )
    report = check(tmp_path)
    assert len(report.errors) == 1, report.errors
    assert report.errors[0].startswith(f"{path}:11: ")
    assert "(did you mean 'VoiceService'?)" in report.errors[0]


@needs_models
def test_standard_objects_beside_services_stay_checked(tmp_path):
    write(tmp_path, "acme.toml", VENDOR + '\n[identity.msisdn]\npaths = ["Device.Servces.X"]\n')
    assert len(check(tmp_path).errors) == 1
