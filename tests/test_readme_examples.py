"""The README's file examples are pasted as they stand: each must load as acsd reads it.

A new operator copies the custom profile into `[profiles] dir` and the credentials file next
to the config; an example that acsd refuses (a profile `acsd profile check` rejects, hashes
elided with "...") teaches nothing but an error. Both checks run in-process: no daemon."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from acsd.cwmp.credentials_file import load_credentials
from acsd.cwmp.passwords import ha1
from acsd.provisioning.profile_check import check_profiles
from acsd.provisioning.profiles import load_profiles
from acsd.store.base import CpeIdentity

README = Path(__file__).resolve().parents[1] / "README.md"
DATAMODELS = Path(__file__).resolve().parents[2] / "shared" / "datamodels"


def _toml_block(containing: str) -> str:
    """The one ```toml block of the README that holds ``containing``, dedented."""
    text = README.read_text(encoding="utf-8")
    blocks = [
        textwrap.dedent(body)
        for body in re.findall(r"^ *```toml\n(.*?)^ *```", text, flags=re.M | re.S)
        if containing in body
    ]
    assert len(blocks) == 1, f"{len(blocks)} toml blocks hold {containing!r}"
    return blocks[0]


def test_the_custom_profile_example_passes_profile_check(tmp_path: Path) -> None:
    # It once gave wifi.5g.* again without the `when` its base tests the band with, which
    # `acsd profile check` (and `serve`) refuse: the README's own rule.
    block = _toml_block('name = "huawei-hg8145"')
    (tmp_path / "huawei-hg8145.toml").write_text(block, encoding="utf-8")
    report = check_profiles(tmp_path, datamodels=DATAMODELS)
    assert report.errors == []
    assert any(line.startswith("huawei-hg8145  extends huawei") for line in report.lines)


@pytest.mark.parametrize(
    ("product_class", "profile"), [("HG8145V5", "huawei-hg8145"), ("HG8245H", "huawei")]
)
def test_the_custom_profile_example_serves_its_model_alone(
    tmp_path: Path, product_class: str, profile: str
) -> None:
    # Its name once was the built-in's, so that dropping it in replaced `huawei` for every
    # Huawei router, which the text around it does not say.
    (tmp_path / "custom.toml").write_text(_toml_block("huawei-hg8145"), encoding="utf-8")
    cpe = CpeIdentity(
        oui="00E0FC", product_class=product_class, serial_number="HW0001", manufacturer="Huawei"
    )
    chosen = load_profiles(tmp_path).select(cpe, "InternetGatewayDevice.")
    assert chosen.name == profile
    (target,) = chosen.settings["wifi.2g.password"]
    assert target.path.endswith(".KeyPassphrase") is (profile == "huawei-hg8145")


def test_the_credentials_file_example_loads_with_the_hashes_of_its_password(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cpe-credentials.toml"
    path.write_text(_toml_block("[devices]"), encoding="utf-8")
    for scheme in ("digest", "basic"):
        entries = load_credentials(path, scheme=scheme, realm="acsd", algorithms=["MD5", "SHA-256"])
    hashed = entries["simmob000002"]
    # the password the README says the entry was made for
    assert hashed.password is None
    assert hashed.ha1_md5 == ha1("MD5", "SIMMOB000002", "acsd", "another password")
    assert hashed.ha1_sha256 == ha1("SHA-256", "SIMMOB000002", "acsd", "another password")
    assert hashed.pbkdf2 is not None and hashed.pbkdf2.verify("another password")
    assert entries["simmob000001"].password == "a clear password"


def test_the_configuration_examples_load_as_acsd_reads_them(tmp_path: Path) -> None:
    # Each settings block an operator pastes into acsd.toml ([stun], TLS, CPE auth,
    # workers, PostgreSQL): one that acsd refused (a renamed key, a value out of bounds)
    # would stop the daemon with exit 2 at the next start.
    from acsd.config import load_config

    text = README.read_text(encoding="utf-8")
    blocks = [
        textwrap.dedent(body)
        for body in re.findall(r"^ *```toml\n(.*?)^ *```", text, flags=re.M | re.S)
    ]
    # (the profile and the CPE credentials file are checked above)
    settings = [b for b in blocks if re.match(r"\[(cwmp|api|store|stun)[].]|workers = ", b)]
    assert len(settings) >= 5, settings
    credentials = tmp_path / "cpe-credentials.toml"
    credentials.write_text(_toml_block("[devices]"), encoding="utf-8")
    for number, block in enumerate(settings):
        path = tmp_path / f"example-{number}.toml"
        path.write_text(block.replace("/etc/acsd/cpe-credentials.toml", str(credentials)))
        load_config(path)  # raises ConfigError naming the key


def test_every_setting_of_the_example_config_is_named_in_the_readme() -> None:
    # config.example.toml lists every setting; one the README never names (it missed
    # cwmp.max_requests_per_session) is a limit an operator meets without having read of it.
    import tomllib

    example = tomllib.loads((README.parent / "config.example.toml").read_text(encoding="utf-8"))
    text = README.read_text(encoding="utf-8")

    def settings(table: dict, prefix: str = "") -> list[str]:
        out = []
        for key, value in table.items():
            if isinstance(value, dict):
                out += settings(value, f"{prefix}{key}.")
            else:
                out.append(prefix + key)
        return out

    # named in code markup, alone or with its section (`[cwmp] x`, `cwmp.x`, `x = 5`), or
    # in a fenced example
    fenced = re.findall(r"^ *```.*?^ *```", text, flags=re.M | re.S)
    for block in fenced:
        text = text.replace(block, "")
    code = " ".join(fenced + re.findall(r"`[^`]+`", text))
    unnamed = [
        name
        for name in settings(example)
        if not re.search(rf"\b{re.escape(name.rsplit('.', 1)[-1])}\b", code)
    ]
    assert not unnamed, unnamed
