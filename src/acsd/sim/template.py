"""Parameter-tree templates of the simulated routers (``sim/trees/*.json``).

A template is data: per leaf ``[value, xsd type, writable]``, the multi-instance tables that
AddObject may extend (with the children of a new instance), the Inform's parameters, the
DeviceId paths and the values that vary per router (``{placeholder}`` strings filled in by
:mod:`acsd.sim.identity`), and the firmware's habits (:class:`PathRules` keyed options:
``store``/``report`` value forms, ``set_faults``, ``needs_reboot``, ``secured``). Each file is
parsed once per process and shared, read-only, by every router built from it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")

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

_SECURED_SUFFIXES = ("Password", "Passphrase", "PreSharedKey")

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
    # vendor copies too: X_TP_PreSharedKey, X_HW_KeyPassphrase, X_..._Password
    return name.endswith(_SECURED_SUFFIXES) or name in _SECURED_NAMES


class PathRules(Generic[T]):
    """Values attached to parameters by selectors, as the tree options and ``--fault`` use
    them. A selector is one of

    - a full parameter name (``InternetGatewayDevice.DeviceInfo.SerialNumber``);
    - a path with ``*`` for instance numbers (``...WLANConfiguration.*.KeyPassphrase``), or
      ending in "." for everything below it (``...DHCPStaticAddress.``);
    - a bare leaf name (``Chaddr``), matching that last segment anywhere;
    - ``xsd:TYPE`` (``xsd:boolean``), matching every leaf of that type.

    The most specific kind wins, in that order (of two patterns, the longer).
    """

    def __init__(self, rules: Mapping[str, T] | None = None) -> None:
        self.exact: dict[str, T] = {}
        self.patterns: list[tuple[re.Pattern[str], T]] = []
        self.names: dict[str, T] = {}
        self.types: dict[str, T] = {}
        for selector, value in (rules or {}).items():
            if not isinstance(selector, str) or not selector:
                raise ValueError(f"bad parameter selector {selector!r}")
            if selector.startswith("xsd:"):
                self.types[selector[4:]] = value
            elif "." not in selector:
                self.names[selector] = value
            elif "*" in selector or selector.endswith("."):
                regex = re.escape(selector).replace(r"\*", r"\d+")
                self.patterns.append(
                    (re.compile(regex + ("" if selector.endswith(".") else "$")), value)
                )
            else:
                self.exact[selector] = value
        # of several matching patterns the longest (most specific) wins
        self.patterns.sort(key=lambda item: -len(item[0].pattern))
        self._cache: dict[tuple[str, str], T | None] = {}

    def __bool__(self) -> bool:
        return bool(self.exact or self.patterns or self.names or self.types)

    def get(self, path: str, xsd_type: str = "") -> T | None:
        """The value for parameter ``path`` (of type ``xsd_type``, e.g. "boolean"), or None."""
        if not self:
            return None
        key = (path, xsd_type)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = self.exact.get(path)
        if found is None:
            found = next((v for rx, v in self.patterns if rx.match(path)), None)
        if found is None:
            found = self.names.get(path.rsplit(".", 1)[-1])
        if found is None:
            found = self.types.get(xsd_type)
        if len(self._cache) > 100_000:  # instance numbers only grow: keep it bounded
            self._cache.clear()
        self._cache[key] = found
        return found


def _mac(value: str, upper: bool) -> str:
    digits = re.sub(r"[:\-. ]", "", value.strip())
    if len(digits) == 12 and all(c in "0123456789abcdefABCDEF" for c in digits):
        value = ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    return value.upper() if upper else value.lower()


def _boolean(value: str, true: str, false: str) -> str:
    return true if value in ("1", "true") else false if value in ("0", "false") else value


# How a firmware stores ("store") or shows over GetParameterValues/Inform ("report") a value.
VALUE_FORMS: dict[str, Callable[[str], str]] = {
    "boolean": lambda v: _boolean(v, "true", "false"),
    "boolean_numeric": lambda v: _boolean(v, "1", "0"),
    "mac_lower": lambda v: _mac(v, upper=False),
    "mac_upper": lambda v: _mac(v, upper=True),
    "lower": str.lower,
    "upper": str.upper,
    "strip": str.strip,
}


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
    # instance numbers AddObject hands out: start, start+step, ... (some firmware skips)
    instance_start: int = 1
    instance_step: int = 1


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
        try:
            # the firmware's habits, see PathRules for the selectors
            self.store: PathRules[str] = PathRules(data.get("store"))
            self.report: PathRules[str] = PathRules(data.get("report"))
            self.set_faults: PathRules[int] = PathRules(
                {k: int(v) for k, v in data.get("set_faults", {}).items()}
            )
            self.needs_reboot: PathRules[bool] = PathRules(
                dict.fromkeys(data.get("needs_reboot", ()), True)
            )
            self._secured: PathRules[bool] = PathRules(dict.fromkeys(data.get("secured", ()), True))
        except (ValueError, TypeError, AttributeError) as exc:
            raise TemplateError(f"{self.name}: {exc}") from None
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
            self.tables[tpath] = Table(
                tpath,
                int(spec.get("max_instances", 32)),
                child,
                count,
                instance_start=int(spec.get("instance_start", 1)),
                instance_step=int(spec.get("instance_step", 1)),
            )
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
        key = (typ, bool(writable), is_secured(path) or bool(self._secured.get(path, typ)))
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
            if table.instance_start < 1 or table.instance_step < 1:
                raise TemplateError(f"{self.name}: {table.path}: instance_start/step must be >= 1")
        for form in (*_all_values(self.store), *_all_values(self.report)):
            if form not in VALUE_FORMS:
                raise TemplateError(f"{self.name}: unknown value form {form!r}")
        for code in _all_values(self.set_faults):
            if not 9000 <= code <= 9899:
                raise TemplateError(f"{self.name}: set_faults code {code} is not a CPE fault")
        # defaults are written in the stored (canonical) form
        for path, (value, leaf) in self._all_defaults():
            if not PLACEHOLDER.search(value) and self.stored(path, leaf.type, value) != value:
                raise TemplateError(f"{self.name}: {path}: default {value!r} is not stored form")

    def _all_defaults(self) -> Iterable[tuple[str, tuple[str, Leaf]]]:
        for path, leaf in self.leaves.items():
            yield path, (self.defaults[path], leaf)
        for tpath, table in self.tables.items():
            for rel, pair in table.child.items():
                yield f"{tpath}{table.instance_start}.{rel}", pair

    def stored(self, path: str, xsd_type: str, value: str) -> str:
        """``value`` as the router stores it (e.g. a MAC in lower case)."""
        form = self.store.get(path, xsd_type)
        return VALUE_FORMS[form](value) if form else value

    def reported(self, path: str, xsd_type: str, value: str) -> str:
        """A stored value as GetParameterValues and Inform show it (e.g. booleans as 1/0)."""
        form = self.report.get(path, xsd_type)
        return VALUE_FORMS[form](value) if form else value

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


def _all_values(rules: PathRules[T]) -> list[T]:
    return [*rules.exact.values(), *(v for _, v in rules.patterns), *rules.names.values(),
            *rules.types.values()]  # fmt: skip


def _tree_files() -> dict[str, Any]:
    folder = resources.files("acsd.sim") / "trees"
    return {f.name[: -len(".json")]: f for f in folder.iterdir() if f.name.endswith(".json")}


def _tree_file(path: Path) -> Template:
    """The template in the tree file at ``path``; TemplateError says what is wrong with it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # (UnicodeDecodeError too)
        raise TemplateError(f"{path}: not a JSON tree file: {exc}") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: not a JSON tree file: an object is expected")
    try:
        return Template(data)
    except KeyError as exc:
        raise TemplateError(f"{path}: {exc.args[0]!r} is missing") from None
    except (TypeError, AttributeError, IndexError, ValueError) as exc:
        raise TemplateError(f"{path}: {exc}") from None


def list_templates() -> list[tuple[str, str]]:
    """(name, description) of every shipped template, sorted by name."""
    return [(name, load_template(name).description) for name in sorted(_tree_files())]


@cache
def load_template(name: str) -> Template:
    """Parse ``sim/trees/NAME.json`` once; later calls return the same object. A name
    ending in ``.json`` is a tree file of the operator's (one of the shipped trees copied
    and changed into the router a profile of theirs is for), read from that path."""
    if name.endswith(".json"):
        return _tree_file(Path(name))
    files = _tree_files()
    if name not in files:
        known = ", ".join(sorted(files))
        raise KeyError(f"unknown simulator profile {name!r} (known: {known})")
    return Template(json.loads(files[name].read_text(encoding="utf-8")))
