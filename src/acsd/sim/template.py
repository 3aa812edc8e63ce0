"""Parameter-tree templates of the simulated routers (``sim/trees/*.json``).

A template is data: per leaf ``[value, xsd type, writable]``, the multi-instance tables that
AddObject may extend (with the children of a new instance), the Inform's parameters, the
DeviceId paths and the values that vary per router (``{placeholder}`` strings filled in by
:mod:`acsd.sim.identity`). Each file is parsed once per process and shared, read-only, by
every router built from it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

PLACEHOLDER = re.compile(r"\{(\w+)\}")

TYPES = frozenset(
    {
        "string",
        "boolean",
        "int",
        "unsignedInt",
        "long",
        "unsignedLong",
        "dateTime",
        "base64",
        "hexBinary",
    }
)

# Leaves that read back "" over GetParameterValues (TR-181 syntax@secured / TR-098 @hidden);
# matched on the last path segment so vendor copies (X_..._Password) are covered too.
_SECURED_NAMES = frozenset(
    {"KeyPassphrase", "PreSharedKey", "SAEPassphrase", "PIN", "WEPKey", "RadiusSecret",
     "SecondaryRadiusSecret", "Secret", "SecondarySecret"}
)  # fmt: skip

DYNAMIC_KINDS = frozenset({"uptime", "link_uptime", "now"})


def object_paths(path: str) -> list[str]:
    """Every object above ``path`` (and ``path`` itself when it ends in "."), outermost first:
    ``Device.IP.Interface.1.Name`` -> ``Device.``, ``Device.IP.``, ``Device.IP.Interface.``,
    ``Device.IP.Interface.1.``."""
    out = []
    i = path.find(".")
    while i != -1:
        out.append(path[: i + 1])
        i = path.find(".", i + 1)
    return out


def is_secured(path: str) -> bool:
    name = path.rsplit(".", 1)[-1]
    return name.endswith("Password") or name in _SECURED_NAMES


@dataclass(frozen=True, slots=True)
class Leaf:
    """What a parameter is (shared by every router): type, writability, secrecy."""

    type: str
    writable: bool
    secured: bool

    @property
    def xsd(self) -> str:
        return "xsd:" + self.type


@dataclass(frozen=True, slots=True)
class Table:
    """A multi-instance object AddObject may extend; ``child`` maps a path relative to the
    new instance (``Enable``, ``Security.ModeEnabled``) to its default and leaf."""

    path: str
    max_instances: int
    child: dict[str, tuple[str, Leaf]]
    count: str | None  # the ...NumberOfEntries parameter kept in step, if the tree has one


class TemplateError(ValueError):
    pass


class Template:
    """One router model, parsed once. Read-only after construction."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.name: str = data["name"]
        self.description: str = data.get("description", "")
        self.root: str = data["root"]
        self.serial_prefix: str = data.get("serial_prefix", "SIM")
        self.device_id: dict[str, str] = dict(data["device_id"])
        self.inform: tuple[str, ...] = tuple(data.get("inform", ()))
        self.dynamic: dict[str, str] = dict(data.get("dynamic", {}))
        self.drift: dict[str, tuple[int, int, int]] = {
            k: (int(v[0]), int(v[1]), int(v[2])) for k, v in data.get("drift", {}).items()
        }
        self.links: dict[str, tuple[str, ...]] = {}
        for group in data.get("links", []):
            for path in group:
                self.links[path] = tuple(p for p in group if p != path)
        self._interned: dict[tuple[str, bool, bool], Leaf] = {}
        self.leaves: dict[str, Leaf] = {}
        self.defaults: dict[str, str] = {}
        for path, raw in data["parameters"].items():
            value, leaf = self._leaf(path, raw)
            self.leaves[path] = leaf
            self.defaults[path] = value
        self.templated: tuple[str, ...] = tuple(
            p for p, v in self.defaults.items() if PLACEHOLDER.search(v)
        )
        self.tables: dict[str, Table] = {}
        for tpath, spec in data.get("tables", {}).items():
            if not tpath.endswith("."):
                raise TemplateError(f"{self.name}: table {tpath!r} must end with '.'")
            child = {rel: self._leaf(tpath + "1." + rel, raw) for rel, raw in spec["child"].items()}
            # usually "<Table>NumberOfEntries" beside the table; TR-098 has irregular ones
            # (Layer3Forwarding.Forwarding. is counted by ForwardNumberOfEntries)
            count = spec.get("count", tpath[:-1] + "NumberOfEntries")
            count = count if count in self.leaves or "count" in spec else None
            self.tables[tpath] = Table(tpath, int(spec.get("max_instances", 32)), child, count)
        self.objects: dict[str, None] = {}
        for path in (*self.leaves, *self.tables):
            self.objects.update(dict.fromkeys(object_paths(path)))
        self._check()

    def _leaf(self, path: str, raw: list[Any]) -> tuple[str, Leaf]:
        if not (isinstance(raw, list) and len(raw) == 3):
            raise TemplateError(f"{self.name}: {path}: expected [value, type, writable]")
        value, typ, writable = raw
        if typ not in TYPES:
            raise TemplateError(f"{self.name}: {path}: unknown type {typ!r}")
        key = (typ, bool(writable), is_secured(path))
        leaf = self._interned.get(key)
        if leaf is None:
            leaf = self._interned[key] = Leaf(*key)
        return str(value), leaf

    def _check(self) -> None:
        from acsd.sim.identity import PLACEHOLDERS  # identity imports nothing from here

        for path in (*self.inform, *self.device_id.values(), *self.dynamic, *self.drift):
            if path not in self.leaves:
                raise TemplateError(f"{self.name}: {path} is referenced but not defined")
        for path, kind in self.dynamic.items():
            if kind not in DYNAMIC_KINDS:
                raise TemplateError(f"{self.name}: {path}: unknown dynamic kind {kind!r}")
        for path in self.templated:
            for name in PLACEHOLDER.findall(self.defaults[path]):
                if name not in PLACEHOLDERS:
                    raise TemplateError(f"{self.name}: {path}: unknown placeholder {{{name}}}")
        for table in self.tables.values():
            # a new instance's defaults are literal: AddObject happens long after identity
            if any(PLACEHOLDER.search(v) for v, _ in table.child.values()):
                raise TemplateError(f"{self.name}: {table.path}: placeholders in a table child")
            if table.count and table.count not in self.leaves:
                raise TemplateError(f"{self.name}: {table.count} is referenced but not defined")

    def table_of(self, path: str) -> tuple[Table, str] | None:
        """The table a path of an added instance belongs to and the path relative to the
        instance (``...StaticAddress.7.Chaddr`` -> (StaticAddress table, ``Chaddr``))."""
        for tpath, table in self.tables.items():
            if path.startswith(tpath):
                rest = path[len(tpath) :]
                number, _, rel = rest.partition(".")
                if number.isdigit():
                    return table, rel
        return None

    def leaf_for(self, path: str) -> Leaf | None:
        leaf = self.leaves.get(path)
        if leaf is None:
            found = self.table_of(path)
            if found and found[1] in found[0].child:
                leaf = found[0].child[found[1]][1]
        return leaf


def _tree_files() -> dict[str, Any]:
    folder = resources.files("acsd.sim") / "trees"
    return {f.name[: -len(".json")]: f for f in folder.iterdir() if f.name.endswith(".json")}


def list_templates() -> list[tuple[str, str]]:
    """(name, description) of every shipped template, sorted by name."""
    return [(name, load_template(name).description) for name in sorted(_tree_files())]


@cache
def load_template(name: str) -> Template:
    """Parse ``sim/trees/NAME.json`` once; later calls return the same object."""
    files = _tree_files()
    if name not in files:
        known = ", ".join(sorted(files))
        raise KeyError(f"unknown simulator profile {name!r} (known: {known})")
    return Template(json.loads(files[name].read_text(encoding="utf-8")))
