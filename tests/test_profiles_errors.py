"""A bad profile file is refused at load with an error naming the file, the key and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from acsd.provisioning.profiles import ProfileError, load_profiles, parse_profile
from conftest import wait_for

BASE = """\
name = "acme"
root = "Device."

[status.fields.lanIp]
paths = ["Device.IP.Interface.1.IPv4Address.1.IPAddress"]
"""
# a vendor profile: `match` keeps it from competing with tr181 as the Device. base profile
GOOD = BASE.replace('root = "Device."\n', 'root = "Device."\n[match]\nmanufacturer = "Acme*"\n')


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str, name: str = "acme.toml") -> ProfileError:
    path = write(tmp_path, name, text)
    with pytest.raises(ProfileError) as caught:
        load_profiles(tmp_path)
    err = caught.value
    assert err.file == str(path)
    assert str(path) in str(err)
    return err


def keys(err: ProfileError) -> list[str]:
    return [key for key, _ in err.problems]


def test_a_good_extra_profile_loads_beside_the_built_ins(tmp_path):
    write(tmp_path, "acme.toml", GOOD)
    profiles = load_profiles(tmp_path)
    assert "acme" in profiles
    assert "tr181" in profiles


def test_a_typo_in_a_key_is_refused_with_a_hint(tmp_path):
    err = load_error(tmp_path, GOOD + 'wher = { Status = "Enabled" }\n')
    assert keys(err) == ["status.fields.lanIp.wher"]
    assert "did you mean 'where'" in str(err)


def test_a_typo_in_a_top_level_table_is_refused(tmp_path):
    err = load_error(tmp_path, GOOD.replace("[status.fields", "[statsu.fields"))
    assert keys(err) == ["statsu"]


def test_a_status_field_the_seed_does_not_have_is_refused(tmp_path):
    # the seed spells it ssSingnalStrength; the "correct" spelling is the typo here
    text = GOOD + '[status.fields.ssSignalStrength]\npaths = ["Device.Cellular.Interface.1.RSRP"]\n'
    err = load_error(tmp_path, text)
    assert keys(err) == ["status.fields.ssSignalStrength"]
    assert "did you mean 'ssSingnalStrength'" in str(err)


def test_a_misspelt_condition_operator_is_refused(tmp_path):
    err = load_error(tmp_path, GOOD + 'where = { Status = { nin = ["Disabled"] } }\n')
    assert keys(err) == ["status.fields.lanIp.where.Status.nin"]


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('pick = "first"\n', "status.fields.lanIp.pick"),
        ("pick = -1\n", "status.fields.lanIp.pick"),
        ('family = "ipv5"\n', "status.fields.lanIp.family"),
        ("ignore = [[]]\n", "status.fields.lanIp.ignore[0]"),
        ('scale = { min = -44, max = "x" }\n', "status.fields.lanIp.scale.max"),
    ],
)
def test_a_value_of_the_wrong_type_names_its_key(tmp_path, extra, key):
    err = load_error(tmp_path, GOOD + extra)
    assert keys(err) == [key]


def test_fetch_must_be_a_list(tmp_path):
    err = load_error(
        tmp_path, GOOD.replace("\n[status.", '\n[status]\nfetch = "Device.X"\n[status.')
    )
    assert keys(err) == ["status.fetch"]


def test_map_values_must_be_strings_like_the_seed_codes(tmp_path):
    text = GOOD + (
        '[status.fields.simStatus]\npaths = ["Device.Cellular.Interface.1.USIM.Status"]\n'
        "map = { Valid = 1 }\n"
    )
    err = load_error(tmp_path, text)
    assert keys(err) == ["status.fields.simStatus.map.Valid"]


def test_an_int_field_read_as_text_is_refused(tmp_path):
    text = GOOD + '[status.fields.upTime]\npaths = ["Device.DeviceInfo.UpTime"]\n'
    err = load_error(tmp_path, text)
    assert keys(err) == ["status.fields.upTime"]
    assert "int field" in str(err)


def test_the_index_of_a_bad_fallback_rule_is_named(tmp_path):
    text = GOOD + (
        '[[status.fields.dns]]\npaths = ["Device.DNS.Client.Server.*.DNSServer"]\n'
        '[[status.fields.dns]]\npaths = ["Device.DHCPv4.Client.*.DNSServers"]\nsplit = 3\n'
    )
    err = load_error(tmp_path, text)
    assert keys(err) == ["status.fields.dns[1].split"]


def test_bad_toml_syntax_gives_the_line(tmp_path):
    text = 'name = "acme"\nroot = "Device."\n\n[status\nfetch = []\n'
    err = load_error(tmp_path, text)
    assert err.line == 4
    assert f"{err.file}:4:" in str(err)


def test_a_duplicate_key_is_a_syntax_error_with_its_line(tmp_path):
    err = load_error(tmp_path, BASE + 'paths = ["Device.X"]\n')
    assert err.line == 6


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("Device..IP", "is not a path"),
        ("Device.IP.Interface.*", "end the object path with `.`"),
        ("Device.IP.{x}.Name", "is not a path"),
        ("InternetGatewayDevice.DeviceInfo.UpTime", "outside this profile's root"),
        ("{nowhere}.IPv4Address.1.IPAddress", "unknown ref 'nowhere'"),
        ("{Device.DHCPv4.Server.Pool.1.Interface", "must hold a ref name or a parameter path"),
    ],
)
def test_a_bad_path_is_refused_with_its_position(tmp_path, path, fragment):
    err = load_error(tmp_path, GOOD.replace("Device.IP.Interface.1.IPv4Address.1.IPAddress", path))
    assert keys(err) == ["status.fields.lanIp.paths[0]"]
    assert fragment in str(err)


def test_a_fetch_name_with_a_wildcard_is_refused(tmp_path):
    err = load_error(
        tmp_path, 'name = "acme"\nroot = "Device."\n[status]\nfetch = ["Device.A.*.B"]\n'
    )
    assert keys(err) == ["status.fetch[0]"]


def test_refs_that_refer_to_each_other_in_a_loop_are_refused(tmp_path):
    text = GOOD + '[refs.a]\npaths = ["{b}.LowerLayers"]\n[refs.b]\npaths = ["{a}.LowerLayers"]\n'
    err = load_error(tmp_path, text)
    assert keys(err) == ["refs"]
    assert "a -> b -> a" in str(err)


def test_default_without_map_is_refused(tmp_path):
    err = load_error(tmp_path, GOOD + 'default = "7"\n')
    assert keys(err) == ["status.fields.lanIp"]


def test_two_files_with_one_name_are_refused(tmp_path):
    write(tmp_path, "a.toml", GOOD)
    err = load_error(tmp_path, GOOD, name="b.toml")
    assert "also in" in str(err) and "a.toml" in str(err)


def test_a_second_base_profile_for_a_root_is_refused(tmp_path):
    # no `match`: it would compete with tr181 for every Device. CPE
    err = load_error(tmp_path, BASE)
    assert "second base profile" in str(err)
    assert "tr181.toml" in str(err)


def test_an_extra_profile_of_the_same_name_replaces_the_built_in(tmp_path):
    write(tmp_path, "mine.toml", BASE.replace('"acme"', '"tr181"'))
    profiles = load_profiles(tmp_path)
    tr181 = profiles.for_root("Device.")
    assert tr181.source == str(tmp_path / "mine.toml")
    assert [name for name, _ in tr181.status] == ["lanIp"]


def test_a_missing_extra_directory_is_an_error(tmp_path):
    with pytest.raises(ProfileError, match="not found"):
        load_profiles(tmp_path / "nope")


def test_parse_profile_names_the_given_file():
    # schema errors carry the line of their key, like syntax errors
    with pytest.raises(ProfileError, match=r"^inline\.toml:1: name: "):
        parse_profile('name = "Bad Name"\nroot = "Device."\n', "inline.toml")


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "acme.toml"
    path.write_bytes(b'name = "\xff"\n')
    with pytest.raises(ProfileError) as caught:
        load_profiles(tmp_path)
    assert caught.value.file == str(path)
    # what to do, not Python's codec message ("'utf-8' codec can't decode byte 0xff ...")
    assert str(caught.value) == (
        f"{path}: cannot read: not UTF-8 text (byte 8); TOML files are UTF-8"
    )


def test_a_file_saved_with_a_byte_order_mark_is_read_as_meant(tmp_path):
    # tomllib alone answers "Invalid statement (at line 1, column 1)", which names nothing
    # the operator sees; Windows editors save UTF-8 so.
    path = tmp_path / "acme.toml"
    path.write_bytes(b'\xef\xbb\xbfname = "acme"\nextends = "tr181"\n[match]\noui = "ACME01"\n')
    assert load_profiles(tmp_path).get("acme").name == "acme"


def test_an_apn_fallback_is_inherited_replaced_or_refused_when_no_apn_name(tmp_path):
    """``apn_fallback`` (what a router gets in place of a removed SIM's private APN) comes
    from the base unless the profile gives its own; a value no APN takes is refused at
    load, not sent to routers."""
    child = 'name = "acme"\nextends = "tr181"\n[match]\nmanufacturer = "Acme*"\n'
    write(tmp_path, "acme.toml", child)
    assert load_profiles(tmp_path).get("acme").spec.apn_fallback == ""
    write(tmp_path, "acme.toml", child.replace("[match]", 'apn_fallback = "internet"\n[match]'))
    assert load_profiles(tmp_path).get("acme").spec.apn_fallback == "internet"
    err = load_error(tmp_path, child.replace("[match]", 'apn_fallback = "pub lic"\n[match]'))
    assert keys(err) == ["apn_fallback"]


@pytest.mark.parametrize("factor", ["inf", "nan", "-inf"])
def test_a_status_factor_that_is_no_finite_number_is_refused(tmp_path, factor):
    # it passed every check, and every session of a matching router failed with a 500
    # converting a reading (OverflowError)
    text = GOOD + f"multiply = {factor}\n"
    err = load_error(tmp_path, text)
    assert keys(err) == ["status.fields.lanIp.multiply"], err


def test_a_reading_too_large_for_a_figure_is_no_figure():
    from acsd.provisioning.profiles import Rule
    from acsd.provisioning.status import _convert

    def rule(multiply: float) -> Rule:
        return Rule(paths=(), where=(), when=(), ignore=frozenset(), split=None, family=None,
                    pick=None, map=None, default=None, scale=None, multiply=multiply,
                    type="int")  # fmt: skip

    assert _convert(rule(1e300), ["1e300"]) is None  # (inf)
    assert _convert(rule(1e300), ["2"]) is None  # 2e300: no int64
    assert _convert(rule(10.0), ["2.5"]) == 25


@pytest.mark.parametrize("value", ['"no"', '"false"', "0"])
def test_partial_paths_is_a_toml_boolean_as_every_other(tmp_path, value):
    err = load_error(
        tmp_path,
        GOOD.replace('root = "Device."\n', f'root = "Device."\npartial_paths = {value}\n', 1),
    )
    assert keys(err) == ["partial_paths"], err


def test_serve_warns_of_two_profiles_tied_on_match(tmp_path, daemon_factory):
    # profile check refuses them; serve runs them in the order the files load, which no
    # one means: it says so at the start
    (tmp_path / "profiles").mkdir()
    write(tmp_path / "profiles", "acme.toml", GOOD)
    write(tmp_path / "profiles", "acme2.toml", GOOD.replace('name = "acme"', 'name = "acme2"'))
    daemon = daemon_factory(profiles={"dir": str(tmp_path / "profiles")})
    [line] = wait_for(lambda: daemon.events("profiles.match_tie"))
    assert {line["profile"], line["other"]} == {"acme", "acme2"} and line["level"] == "warning"


def test_a_base_replaced_with_less_is_warned_of(tmp_path, daemon_factory):
    # a profile of the base's name replaces it whole: one with a name and a root alone
    # left every router of that data model unmanaged, reading provisioned, and the check
    # said OK
    from acsd.provisioning.profile_check import check_profiles

    (tmp_path / "profiles").mkdir()
    write(tmp_path / "profiles", "tr181.toml", 'name = "tr181"\nroot = "Device."\n')
    report = check_profiles(tmp_path / "profiles")
    assert report.errors == []
    [said] = [line for line in report.lines if "replaces the built-in one whole" in line]
    assert "management.acs_password" in said and " more " in said
    daemon = daemon_factory(profiles={"dir": str(tmp_path / "profiles")})
    [line] = wait_for(lambda: daemon.events("profiles.replaced_with_less"))
    assert line["profile"] == "tr181" and line["count"] > 20


@pytest.mark.parametrize(
    ("setting", "path", "extra", "fragment"),
    [
        ("security", "InternetGatewayDevice.X.ModeEnabled", 'map = { open = "None" }', "outside"),
        ("ssid", "Device.WiFi.SSID.1.SSID", "", "`map`"),
    ],
)
def test_a_supported_list_outside_the_root_or_without_a_map_is_refused(
    tmp_path, setting, path, extra, fragment
):
    # `supported` checks the values a profile's map chose against the router's list (an
    # SSID is the operator's, checked at the API)
    text = (
        f'[settings."wifi.2g.{setting}"]\n'
        f'path = "Device.WiFi.{setting}"\n'
        f'supported = "{path.rsplit(".", 1)[0]}.ModesSupported"\n{extra}\n'
    )
    err = load_error(tmp_path, GOOD + text)
    assert keys(err) == [f'settings."wifi.2g.{setting}".supported'], err.problems
    assert fragment in str(err)
