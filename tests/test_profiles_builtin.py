"""The built-in profiles load, and every standard path they name exists in the BBF data model.

The BBF XML (Device:2.17 and InternetGatewayDevice:1.14) lives in ``shared/datamodels`` beside
the repository. Paths are compared with instance numbers and ``*`` turned into ``{i}``, the
way the XML names its objects; ``{ref}`` paths are followed through the reference's
``pathRef`` target (or, for TR-098's untyped DefaultConnectionService, any object).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from acsd.provisioning.profiles import (
    FieldRuleSpec,
    ProfileSpec,
    SelectionSpec,
    detect_root,
    load_profiles,
)
from acsd.provisioning.status import fetch_names

REPO = Path(__file__).resolve().parents[1]
DATAMODELS = Path(__file__).resolve().parents[2] / "shared" / "datamodels"
MODEL_FILES = {
    "Device.": "tr-181-2-17-0-cwmp-full.xml",
    "InternetGatewayDevice.": "tr-098-1-8-0-full.xml",
}


@dataclass
class Param:
    enum: frozenset[str] | None = None
    boolean: bool = False
    forced: bool = False
    #: reference targets (object names); None when the model does not say
    targets: frozenset[str] | None = None


@dataclass
class DataModel:
    root: str
    objects: set[str] = field(default_factory=set)
    params: dict[str, Param] = field(default_factory=dict)


def _levels(obj: str) -> list[str]:
    # "Device.DHCPv4.Client.{i}." -> ["Device.", "DHCPv4.", "Client.{i}."]: BBF's "#" counts
    # a table and its instance as one level
    return re.findall(r"[^.{}]+\.(?:\{i\}\.)?", obj)


def _ref_targets(root: str, obj: str, syntax: ET.Element) -> frozenset[str] | None:
    ref = next(syntax.iter("pathRef"), None)
    if ref is None or not ref.get("targetParent"):
        return None
    row = ref.get("targetType") == "row"
    out = set()
    for parent in ref.get("targetParent", "").split():
        ups = len(parent) - len(parent.lstrip("#"))
        rest = parent[ups:]
        base = root[:-1] + rest if ups == 0 else "".join(_levels(obj)[:-ups]) + rest[1:]
        out.add(base + "{i}." if row else base)
    return frozenset(out)


def _load_model(root: str) -> DataModel:
    path = DATAMODELS / MODEL_FILES[root]
    if not path.exists():
        pytest.fail(f"BBF data model not found: {path} (shared/ must sit beside the repo)")
    model = next(ET.parse(path).getroot().iter("model"))
    dm = DataModel(root)
    enum_refs: list[tuple[str, str]] = []
    for obj in model.findall("object"):
        oname = obj.get("name", "")
        dm.objects.add(oname)
        for param in obj.findall("parameter"):
            name = oname + param.get("name", "")
            syntax = param.find("syntax")
            info = Param(forced=param.get("forcedInform") == "true")
            if syntax is not None:
                values = [e.get("value", "") for e in syntax.iter("enumeration")]
                info.enum = frozenset(v.lower() for v in values) or None
                info.boolean = syntax.find("boolean") is not None
                info.targets = _ref_targets(root, oname, syntax)
                for ref in syntax.iter("enumerationRef"):
                    enum_refs.append((name, oname + ref.get("targetParam", "")))
            dm.params[name] = info
    for name, source in enum_refs:
        # e.g. CurrentAccessTechnology takes the values of SupportedAccessTechnologies
        if source in dm.params:
            dm.params[name].enum = dm.params[source].enum
    return dm


@pytest.fixture(scope="module")
def models() -> dict[str, DataModel]:
    return {root: _load_model(root) for root in MODEL_FILES}


@pytest.fixture(scope="module")
def profiles():
    return load_profiles()


def norm(path: str) -> str:
    return ".".join("{i}" if s == "*" or s.isdigit() else s for s in path.split("."))


def parent(name: str) -> str:
    return name if name.endswith(".") else name[: name.rfind(".") + 1]


class Checker:
    """Resolves one profile's selectors in the data model and collects what is wrong."""

    def __init__(self, spec: ProfileSpec, dm: DataModel):
        self.spec = spec
        self.dm = dm
        self.fetch = [norm(n) for n in [*spec.status.fetch, *spec.identity.fetch]]
        self.errors: list[str] = []

    def ref_targets(self, ref: str) -> set[str] | None:
        """Objects a ref may point to; None = the model does not say (any object)."""
        if "." in ref:
            param = self.dm.params.get(norm(ref))
            return set(param.targets) if param and param.targets else None
        out: set[str] = set()
        for sel in self.spec.refs[ref]:
            for path in sel.paths:
                for name in self.resolve(path):
                    if name.endswith("."):
                        out.add(name)
                    else:
                        targets = self.dm.params[name].targets
                        if targets is None:
                            return None
                        out |= targets
        return out

    def resolve(self, path: str) -> list[str]:
        """Data-model names (with {i}) that a selector may denote."""
        if path.startswith("{"):
            close = path.index("}")
            bases = self.ref_targets(path[1:close])
            rest = norm(path[close + 2 :])
            found = [b + rest for b in (self.dm.objects if bases is None else bases)]
        else:
            found = [norm(path)]
        return [n for n in found if n in self.dm.objects or n in self.dm.params]

    def covered(self, name: str) -> bool:
        if name in self.dm.params and self.dm.params[name].forced:
            return True  # comes with every Inform
        return any(name == f or (f.endswith(".") and name.startswith(f)) for f in self.fetch)

    def check_values(self, where: str, name: str, values: list[str] | None) -> None:
        param = self.dm.params.get(name)
        if param is None or values is None:
            return
        allowed = {"true", "false", "1", "0"} if param.boolean else param.enum
        if allowed is None:
            return
        for value in values:
            if value and value.lower() not in allowed:
                self.errors.append(f"{where}: {value!r} is not a value of {name}")

    def check_selection(self, key: str, sel: SelectionSpec) -> None:
        for path in sel.paths:
            names = self.resolve(path)
            if not names:
                self.errors.append(f"{key}: {path!r} is not in the data model")
                continue
            if not any(self.covered(n) for n in names):
                self.errors.append(f"{key}: {path!r} is neither fetched nor forced in Inform")
            for wkey, cond in sel.where.items():
                params = [parent(n) + wkey for n in names if parent(n) + wkey in self.dm.params]
                if not params:
                    self.errors.append(f"{key}.where: {path!r} has no sibling {wkey!r}")
                for name in params:
                    self.check_values(f"{key}.where.{wkey}", name, cond.in_ or cond.not_in)
            if isinstance(sel, FieldRuleSpec) and sel.map is not None:
                for name in names:
                    self.check_values(f"{key}.map", name, list(sel.map))
        for path, cond in sel.when.items():
            names = [n for n in self.resolve(path) if n in self.dm.params]
            if not names:
                self.errors.append(f"{key}.when: {path!r} is not a parameter of the model")
            elif not any(self.covered(n) for n in names):
                self.errors.append(f"{key}.when: {path!r} is neither fetched nor forced")
            for name in names:
                self.check_values(f"{key}.when", name, cond.in_ or cond.not_in)

    def run(self) -> list[str]:
        for name in self.fetch:
            exists = (
                name in self.dm.params
                if not name.endswith(".")
                else name in self.dm.objects or name + "{i}." in self.dm.objects
            )
            if not exists:
                self.errors.append(f"fetch: {name!r} is not in the data model")
        for ref, sels in self.spec.refs.items():
            for i, sel in enumerate(sels):
                self.check_selection(f"refs.{ref}[{i}]", sel)
        for fname, rules in self.spec.status.fields.items():
            for i, rule in enumerate(rules):
                self.check_selection(f"status.fields.{fname}[{i}]", rule)
        for fname, rules in self.spec.identity.rules():
            for i, rule in enumerate(rules):
                self.check_selection(f"identity.{fname}[{i}]", rule)
        return self.errors


def test_both_base_profiles_load(profiles):
    assert profiles.for_root("Device.").name == "tr181"
    assert profiles.for_root("InternetGatewayDevice.").name == "tr098"
    assert {p.name for p in profiles} >= {"tr181", "tr098"}
    assert all(p.is_base for p in profiles if p.name in ("tr181", "tr098"))


def test_select_gives_the_base_profile_of_the_cpe_root(profiles):
    assert profiles.select(None, "Device.").name == "tr181"
    assert profiles.select(None, "InternetGatewayDevice.").name == "tr098"


@pytest.mark.parametrize("name", ["tr181", "tr098"])
def test_every_path_exists_in_the_bbf_data_model(profiles, models, name):
    profile = profiles.get(name)
    errors = Checker(profile.spec, models[profile.root]).run()
    assert errors == []


@pytest.mark.parametrize("name", ["tr181", "tr098"])
def test_fetch_list_is_small_and_free_of_duplicates(profiles, name):
    fetch = profiles.get(name).fetch
    # (13 since DHCPv6.Client.1.Interface: the IPv6 address of a DS-Lite or IPv6-only line)
    assert 0 < len(fetch) <= 13
    assert len(set(fetch)) == len(fetch)
    # a name and an object above it would ask for the same values twice
    for a in fetch:
        assert not any(b != a and b.endswith(".") and a.startswith(b) for b in fetch), a


def test_optional_subtrees_are_names_of_their_own(profiles):
    # a CPE without a cellular modem faults 9005 on this name alone; the mandatory ones
    # (UpTime above all) must not share a name with it
    fetch = profiles.get("tr181").fetch
    assert "Device.DeviceInfo.UpTime" in fetch
    assert "Device.Cellular.Interface." in fetch
    assert not any(n in ("Device.", "Device.DeviceInfo.", "Device.Cellular.") for n in fetch)


def test_fetch_names_leaves_out_absent_and_already_reported_names(profiles):
    tr181 = profiles.get("tr181")
    names = fetch_names(
        tr181,
        absent=["Device.Cellular.", "Device.PPP.Interface."],
        already={"Device.DeviceInfo.UpTime": "12"},
    )
    assert names == [
        n
        for n in tr181.fetch
        if n
        not in ("Device.Cellular.Interface.", "Device.PPP.Interface.", "Device.DeviceInfo.UpTime")
    ]
    assert fetch_names(tr181) == list(tr181.fetch)


def test_the_repo_profiles_directory_shows_the_built_ins():
    link = REPO / "profiles"
    assert (link / "tr181.toml").is_file()
    assert (link / "tr098.toml").is_file()


@pytest.mark.parametrize(
    ("names", "root"),
    [
        (["Device.RootDataModelVersion", "Device.ManagementServer.ParameterKey"], "Device."),
        (
            ["InternetGatewayDevice.DeviceSummary", "InternetGatewayDevice.ManagementServer.URL"],
            "InternetGatewayDevice.",
        ),
        # a TR-098 gateway that also carries a Device. services tree, listed first
        (
            [
                "Device.Services.VoiceServiceNumberOfEntries",
                "InternetGatewayDevice.ManagementServer.URL",
            ],
            "InternetGatewayDevice.",
        ),
        (["Device.DeviceInfo.UpTime"], "Device."),
    ],
)
def test_detect_root_picks_the_root_holding_management_server(names, root):
    assert detect_root(names) == root


def test_detect_root_without_any_root_name_is_an_error():
    with pytest.raises(ValueError):
        detect_root(["Foo.Bar"])
