"""The README's file examples are pasted as they stand: each must load as acsd reads it.

A new operator copies the custom profile into `[profiles] dir` and the credentials file next
to the config; an example that acsd refuses (a profile `acsd profile check` rejects, hashes
elided with "...") teaches nothing but an error. Both checks run in-process: no daemon."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from acsd.cwmp.auth import ha1, load_credentials
from acsd.provisioning.profile_check import check_profiles

README = Path(__file__).resolve().parents[1] / "README.md"


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
    # It gave wifi.5g.* again without the `when` its base tests the band with, which
    # `acsd profile check` (and `serve`) refuse: the README's own rule.
    (tmp_path / "huawei.toml").write_text(_toml_block('name = "huawei"'), encoding="utf-8")
    report = check_profiles(tmp_path)
    assert report.errors == []
    assert any(line.startswith("huawei  extends tr098") for line in report.lines)


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
