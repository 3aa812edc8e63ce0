"""Validated profile spec -> the compiled :class:`Profile` that sessions run.

Status/identity selectors become :class:`Rule` objects for :mod:`acsd.provisioning.status`;
abstract settings become :class:`Target` tuples and reservation tables :class:`TableSpec` for
the planner. ``extends`` is resolved here too (:func:`inherit`): a vendor profile is its base
with the vendor's keys laid over it, one key at a time.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acsd.models import REPORTED_STATUS_FIELDS
from acsd.provisioning.profile_schema import (
    IDENTITY_FIELDS,
    MATCH_KEYS,
    SETTINGS,
    STATUS_TYPES,
    TABLES,
    WHOLE_GROUPS,
    ConditionSpec,
    FieldRuleSpec,
    IdentitySpec,
    Kind,
    ProfileError,
    ProfileSpec,
    SelectionSpec,
    StatusSpec,
    TableObjectSpec,
    TargetSpec,
    default_type,
    is_secret_name,
    unknown,
)
from acsd.store.base import CpeIdentity

# references may hold a comma list (LowerLayers); whitespace is tolerated around items
_LIST_SPLIT = re.compile(r"[,\s]+")
_TRUE_FALSE = ("true", "false")


# --- compiled form: status selectors (run by status.py) ------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """A compiled condition. Comparisons ignore case: firmware spells enums inconsistently."""

    values: frozenset[str] | None
    negate: bool
    pattern: re.Pattern[str] | None

    def __call__(self, value: str) -> bool:
        if self.pattern is not None:
            return self.pattern.fullmatch(value) is not None
        assert self.values is not None
        return (value.strip().lower() in self.values) != self.negate


@dataclass(frozen=True, slots=True)
class Selector:
    """A compiled selector: optional ref, then literal chunks joined by instance numbers."""

    text: str
    ref: str | None
    chunks: tuple[str, ...]
    is_object: bool


@dataclass(frozen=True, slots=True)
class Rule:
    paths: tuple[Selector, ...]
    where: tuple[tuple[str, Check], ...]
    when: tuple[tuple[Selector, Check], ...]
    ignore: frozenset[str]
    split: re.Pattern[str] | None
    family: str | None
    pick: int | None
    map: Mapping[str, str] | None
    default: str | None
    scale: tuple[float, float] | None
    multiply: float | None
    type: str  # "str", "int", or "ref" (a list of object paths)


# --- compiled form: settings and tables (run by the planner) -------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """One parameter an abstract setting writes."""

    path: str  # full parameter path, instance numbers resolved
    type: str  # "xsd:string" | "xsd:boolean" | "xsd:unsignedInt" | "xsd:int" | ...
    map: dict[str, str] | None  # canonical abstract value -> wire value; unmapped: skip target
    multiply: int | None  # abstract unit -> wire unit (lease minutes -> seconds: 60)
    booleans: tuple[str, str]  # wire (true, false)
    secret: bool  # reads back "": compare by the hash of what acsd last applied
    reboot: bool  # a change takes effect only after a Reboot
    form: str | None = None  # "passphrase" | "hex-key": the only passwords written here
    when: tuple[tuple[str, Check], ...] = ()  # other parameters that must pass first
    supported: str | None = None  # the CPE's list of the values the parameter takes
    optional: bool = False  # a CPE without it lacks nothing: written where it is
    fallback: bool = False  # written only where the earlier ones of its form are absent
    list_head: bool = False  # replaces the first of the CPE's comma list, the rest kept
    max_length: int | None = None  # the list's most characters: its last entries go
    value: str | None = None  # the one wire value, whatever the setting's
    written_with: tuple[str, ...] = ()  # setting globs whose writes take this one along
    #: wire value -> other wire values that count as holding it (TargetSpec.also)
    also: dict[str, frozenset[str]] | None = None

    @property
    def readback(self) -> bool:
        return not self.secret


@dataclass(frozen=True, slots=True)
class TableField:
    param: str  # leaf name under the instance, e.g. "Chaddr"
    type: str
    format: str | None  # "mac-colon-upper" | "mac-colon-lower" | None (as given)
    booleans: tuple[str, str]
    value: str | None = None  # the profile's constant wire value (None: the row's)


@dataclass(frozen=True, slots=True)
class TableSpec:
    object: str  # ends with "."; the AddObject/DeleteObject target
    key: str  # abstract field that identifies a row, e.g. "mac"
    fields: dict[str, TableField]
    #: leaf -> wire values a row must hold one of to be acsd's (empty: rows of the keys acsd
    #: was asked for are, see plan._plan_table)
    only: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: a table of one row made of settings (TableKind.when / row_from); None: rows come
    #: from the device record
    when: str | None = None
    row_from: Mapping[str, str] = field(default_factory=dict)
    split: bool = False  # the key's setting is a comma list: a row per item
    ipv4_keys: bool = False  # rows keyed by anything but an IPv4 address are not acsd's
    key_is_mac: bool = False  # rows are named by a MAC (matched case- and separator-blind)
    unique: tuple[str, ...] = ()  # abstract fields no two rows may share


#: xsd:boolean's lexical values (XML Schema 1.0: case-sensitive)
XSD_BOOLEANS = frozenset({"true", "false", "1", "0"})

#: what every Inform carries (TR-069 Annex: the forced Inform parameters), below the root:
#: kept in the stored tree like what a profile reads, so an ordinary Inform has nothing to
#: leave out (TR-098's WAN ExternalIPAddress sits under an instance and is not here)
INFORM_FORCED = (
    "DeviceSummary",
    "RootDataModelVersion",
    "DeviceInfo.SpecVersion",
    "DeviceInfo.HardwareVersion",
    "DeviceInfo.SoftwareVersion",
    "DeviceInfo.ProvisioningCode",
    "ManagementServer.ConnectionRequestURL",
    "ManagementServer.ParameterKey",
    "ManagementServer.AliasBasedAddressing",
)


@dataclass(frozen=True, slots=True)
class Profile:
    """A loaded, validated and compiled profile (``extends`` already resolved)."""

    name: str
    description: str
    root: str
    source: str
    spec: ProfileSpec  # after `extends`: the base's keys with this profile's laid over them
    #: named refs and inline `{Param.Path}` references, by name or path
    refs: Mapping[str, tuple[Rule, ...]]
    status: tuple[tuple[str, tuple[Rule, ...]], ...]
    identity: tuple[tuple[str, tuple[Rule, ...]], ...]
    #: the names of the one GetParameterValues per session (status + identity, in order)
    fetch: tuple[str, ...]
    settings: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    tables: dict[str, TableSpec] = field(default_factory=dict)
    extends: str | None = None
    #: `match` key -> its globs (this profile's own; `match` is not inherited)
    match: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    matchers: tuple[tuple[str, re.Pattern[str]], ...] = ()
    #: top-level keys (`settings."wifi.2g.ssid"`, `status.fields.lanIp`) that came from
    #: another file (a base profile) -> that file; everything else is from `source`
    origins: Mapping[str, str] = field(default_factory=dict)
    #: version of the reading rules (root, refs, status, identity): a read plan made under
    #: other rules is not used (see status.ReadPlan)
    reads: str = ""
    #: what status extraction worked out from sets of parameter names this profile read
    #: (status._Shape), by those names; lives and goes with the profile
    shapes: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    #: the same for whole trees (a first session's, a drift check's)
    tree_shapes: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    #: the names this profile reads (status, identity, settings), and the objects it reads
    #: whole: what a device's stored tree keeps (see keeps)
    _read_names: frozenset[str] = field(init=False, compare=False, repr=False)
    _read_objects: tuple[str, ...] = field(init=False, compare=False, repr=False)
    #: setting_names(), and the tables among them (see writes_at)
    _written: tuple[str, ...] = field(init=False, compare=False, repr=False)
    _written_tables: tuple[str, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        forced = (self.root + name for name in INFORM_FORCED)
        written = tuple(self.setting_names())
        names = (*self.fetch, *written, *forced)
        object.__setattr__(self, "_read_names", frozenset(names))
        object.__setattr__(self, "_read_objects", tuple(n for n in names if n.endswith(".")))
        object.__setattr__(self, "_written", written)
        object.__setattr__(self, "_written_tables", tuple(n for n in written if n.endswith(".")))

    def writes_at(self, name: str) -> bool:
        """Whether a setting is written at or below ``name`` (a parameter or an object), or
        ``name`` lies in a table whose rows the profile writes."""
        return name.startswith(self._written_tables) or any(
            path.startswith(name) for path in self._written
        )

    def written_at(self, name: str) -> list[str]:
        """The setting paths and table objects (see setting_names) at or below ``name``,
        and the tables ``name`` lies in."""
        return [p for p in self._written if p.startswith(name) or (
            p.endswith(".") and name.startswith(p)
        )]  # fmt: skip

    def keeps(self, name: str) -> bool:
        """Whether a device's stored tree keeps a value of ``name``: one this profile
        reads, or under an object it reads whole. A CPE may report any other name (an
        Inform's value changes, an answer's additions), which serves its session only."""
        return name in self._read_names or name.startswith(self._read_objects)

    @property
    def is_base(self) -> bool:
        return not self.match

    @property
    def specificity(self) -> int:
        """How many identity keys `match` tests: the more, the more specific the profile."""
        return len(self.match)

    def matches(self, identity: CpeIdentity) -> bool:
        """Every `match` key holds; a key whose identity value is unknown (None) fails."""
        for attr, pattern in self.matchers:
            value = getattr(identity, attr)
            if value is None or pattern.match(value) is None:
                return False
        return True

    def setting_names(self) -> list[str]:
        """The GPV names that compare desired with actual: every target path (secret ones
        too: a CPE lacking one faults 9005, which is how a setting turns out unsupported)
        and every table object."""
        names = [t.path for targets in self.settings.values() for t in targets]
        names += [t.object for t in self.tables.values()]
        return list(dict.fromkeys(names))

    def origin(self, key: str) -> str:
        """The file that defined ``key`` (any key below a top-level one)."""
        return origin_of(self.origins, key, self.source)


def origin_of(origins: Mapping[str, str], key: str, default: str) -> str:
    for prefix, file in origins.items():
        if key == prefix or key.startswith((prefix + ".", prefix + "[")):
            return file
    return default


def quote(key: str) -> str:
    """A key as TOML (and error keys) spell it: dotted names in quotes."""
    return f'"{key}"' if "." in key else key


def _compile_check(spec: ConditionSpec) -> Check:
    if spec.glob is not None:
        pattern = "|".join(f"(?:{fnmatch.translate(g)})" for g in spec.glob)
        return Check(None, False, re.compile(pattern, re.IGNORECASE | re.DOTALL))
    items = spec.in_ if spec.in_ is not None else spec.not_in
    assert items is not None
    return Check(frozenset(v.strip().lower() for v in items), spec.in_ is None, None)


def _glob_pattern(globs: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs), re.IGNORECASE)


# --- extends ----------------------------------------------------------------------------


def inherit(
    base: Profile, spec: ProfileSpec
) -> tuple[ProfileSpec, dict[str, str], list[tuple[str, str]]]:
    """Lay ``spec`` over its base: each key the child gives replaces the base's whole key.

    Returns the merged spec, the origins of inherited keys and the problems found.
    """
    problems: list[tuple[str, str]] = []
    b = base.spec
    if spec.root is not None and spec.root != base.root:
        problems.append(("root", f"{spec.root!r} differs from {base.name!r}'s {base.root!r}"))
    origins: dict[str, str] = {}

    def keep(prefix: str, mine: bool) -> None:
        if not mine:
            origins[prefix] = base.origin(prefix)

    dropped = _unsupported(spec, problems)
    settings = {k: v for k, v in b.settings.items() if k not in dropped}
    tables = {k: v for k, v in b.tables.items() if k not in dropped}
    for key in settings:
        keep(f"settings.{quote(key)}", key in spec.settings)
    for key in tables:
        keep(f"tables.{quote(key)}", key in spec.tables)
    for key in b.refs:
        keep(f"refs.{key}", key in spec.refs)
    for key in b.status.fields:
        keep(f"status.fields.{key}", key in spec.status.fields)
    for key, _ in b.identity.rules():
        keep(f"identity.{key}", key in spec.identity.model_fields_set)
    status_fetch = "fetch" in spec.status.model_fields_set
    identity_fetch = "fetch" in spec.identity.model_fields_set
    keep("status.fetch", status_fetch)
    keep("identity.fetch", identity_fetch)

    identity = {name: getattr(b.identity, name) for name in IDENTITY_FIELDS}
    identity.update({k: getattr(spec.identity, k) for k in spec.identity.model_fields_set})
    identity["fetch"] = spec.identity.fetch if identity_fetch else b.identity.fetch
    merged = spec.model_copy(
        update={
            "root": base.root,
            "partial_paths": spec.partial_paths
            if "partial_paths" in spec.model_fields_set
            else b.partial_paths,
            "apn_fallback": spec.apn_fallback
            if "apn_fallback" in spec.model_fields_set
            else b.apn_fallback,
            "refs": {**b.refs, **spec.refs},
            "status": StatusSpec(
                fetch=spec.status.fetch if status_fetch else b.status.fetch,
                fields={**b.status.fields, **spec.status.fields},
            ),
            "identity": IdentitySpec(**identity),
            "settings": {**settings, **spec.settings},
            "tables": {**tables, **spec.tables},
        }
    )
    return merged, origins, problems


def _unsupported(spec: ProfileSpec, problems: list[tuple[str, str]]) -> set[str]:
    """The setting/table keys named by `unsupported` (globs allowed)."""
    known = [*SETTINGS, *TABLES]
    dropped: set[str] = set()
    for i, pattern in enumerate(spec.unsupported):
        hits = fnmatch.filter(known, pattern)
        if not hits:
            problems.append((f"unsupported[{i}]", unknown(pattern, known, "setting")))
        for key in hits:
            if key in spec.settings or key in spec.tables:
                problems.append((f"unsupported[{i}]", f"{key!r} is both mapped and unsupported"))
        dropped.update(hits)
    return dropped


# --- the compiler -----------------------------------------------------------------------


class Compiler:
    """One merged spec -> one :class:`Profile`; raises :class:`ProfileError` (keys, no lines:
    the loader knows the text and adds them)."""

    def __init__(self, spec: ProfileSpec, file: str):
        if spec.root is None:
            raise ProfileError(file, [("root", "a profile that extends no other names its root")])
        self.spec = spec
        self.root: str = spec.root
        self.file = file
        self.refs: dict[str, tuple[Rule, ...]] = {}
        self.edges: dict[str, set[str]] = {}
        self.problems: list[tuple[str, str]] = []

    def fail(self, key: str, msg: str) -> None:
        self.problems.append((key, msg))

    def path(self, text: str, key: str, owner: str | None) -> Selector:
        ref = None
        rest = text
        if text.startswith("{"):
            close = text.index("}")
            ref = text[1:close]
            rest = text[close + 2 :]
            if "." in ref:
                self.inline_ref(ref, key)
            elif ref not in self.spec.refs:
                self.fail(key, unknown(ref, self.spec.refs, "ref"))
            if owner is not None:
                self.edges.setdefault(owner, set()).add(ref)
        elif not text.startswith(self.root):
            self.fail(key, f"{text!r} is outside this profile's root {self.root!r}")
        return Selector(text, ref, tuple(rest.split("*")), text.endswith("."))

    def inline_ref(self, path: str, key: str) -> None:
        # `{Param.Path}`: an anonymous ref (its path holds no `{...}`, so no loops)
        if path not in self.refs:
            self.refs[path] = (self.rule(SelectionSpec(paths=[path]), key, path, ref=True),)

    def rule(self, spec: SelectionSpec, key: str, owner: str | None, *, ref: bool) -> Rule:
        paths = tuple(self.path(p, f"{key}.paths[{i}]", owner) for i, p in enumerate(spec.paths))
        when = tuple(
            (self.path(p, f"{key}.when", owner), _compile_check(c)) for p, c in spec.when.items()
        )
        split = spec.split
        if ref and split is None:
            split_re: re.Pattern[str] | None = _LIST_SPLIT
        elif split is not None:
            split_re = re.compile(f"[{re.escape(split)}\\s]+")
        else:
            split_re = None
        conv = spec if isinstance(spec, FieldRuleSpec) else None
        return Rule(
            paths=paths,
            where=tuple((k, _compile_check(c)) for k, c in spec.where.items()),
            when=when,
            ignore=frozenset(v.lower() for v in spec.ignore),
            split=split_re,
            family=spec.family,
            pick=spec.pick,
            map={k.lower(): v for k, v in conv.map.items()}
            if conv and conv.map is not None
            else None,
            default=conv.default if conv else None,
            scale=(conv.scale.min, conv.scale.max) if conv and conv.scale else None,
            multiply=conv.multiply if conv else None,
            type="ref" if ref else (conv.output_type if conv else "str"),
        )

    def field(
        self, name: str, rules: list[FieldRuleSpec], key: str, want: str
    ) -> tuple[str, tuple[Rule, ...]]:
        compiled = []
        for i, spec in enumerate(rules):
            rkey = f"{key}[{i}]" if len(rules) > 1 else key
            if spec.output_type != want:
                self.fail(rkey, f"{name} is a{'n' if want == 'int' else ''} {want} field")
            compiled.append(self.rule(spec, rkey, None, ref=False))
        return name, tuple(compiled)

    def fetch(self, names: list[str], key: str) -> list[str]:
        for i, name in enumerate(names):
            if not name.startswith(self.root):
                self.fail(f"{key}[{i}]", f"{name!r} is outside root {self.root!r}")
        return names

    def cycles(self) -> None:
        state: dict[str, int] = {}

        def visit(node: str, trail: list[str]) -> None:
            if state.get(node) == 2:
                return
            if state.get(node) == 1:
                self.fail("refs", "refs refer to each other in a loop: " + " -> ".join(trail))
                return
            state[node] = 1
            for nxt in sorted(self.edges.get(node, ())):
                visit(nxt, [*trail, nxt])
            state[node] = 2

        for name in sorted(self.edges):
            visit(name, [name])

    # --- settings and tables ------------------------------------------------------------

    def settings(self) -> dict[str, tuple[Target, ...]]:
        out: dict[str, tuple[Target, ...]] = {}
        written: dict[str, str] = {}  # path -> the setting that writes it
        for name, specs in self.spec.settings.items():
            key = f"settings.{quote(name)}"
            out[name] = tuple(
                self.target(name, spec, f"{key}[{i}]" if len(specs) > 1 else key, written)
                for i, spec in enumerate(specs)
            )
            for i, spec in enumerate(specs):
                if spec.fallback and not any(s.form == spec.form for s in specs[:i]):
                    self.fail(
                        f"{key}[{i}].fallback" if len(specs) > 1 else f"{key}.fallback",
                        "a fallback stands in for a parameter listed before it (of the same "
                        "`form`): there is none",
                    )
        return out

    def target(self, name: str, spec: TargetSpec, key: str, written: dict[str, str]) -> Target:
        kind = SETTINGS[name]
        if not spec.path.startswith(self.root):
            self.fail(f"{key}.path", f"{spec.path!r} is outside this profile's root {self.root!r}")
        other = written.get(spec.path)
        if other is not None:
            # two writes of one parameter would undo each other every session
            also = f"also written by {other}" if other != name else f"written twice by {name}"
            self.fail(f"{key}.path", f"{spec.path!r} is {also}")
        written[spec.path] = name
        wire = spec.type or default_type(kind)
        self.value_map(name, kind, spec.map, key)
        fixed = spec.value is not None
        if spec.map is None and not fixed and kind.choices:
            choices = ", ".join(kind.choices)
            self.fail(key, f"{name} takes {choices}: `map` says how this CPE spells them")
        if spec.map is None and not fixed and kind.value == "bool" and wire != "xsd:boolean":
            self.fail(key, f"a bool on a {wire} parameter needs `map` (true/false -> wire)")
        if spec.multiply is not None and kind.value != "int":
            self.fail(f"{key}.multiply", f"only numbers scale; {name} is a {kind.value}")
        if spec.booleans is not None and wire != "xsd:boolean":
            self.fail(f"{key}.booleans", f"`booleans` spell xsd:boolean values, not {wire}")
        if wire == "xsd:boolean":
            # (the wire's xsd:boolean is these four, case and all: "TRUE" faults 9007 on
            # firmware that follows it, every session)
            for field, values in (
                ("booleans", spec.booleans or ()),
                ("map", (spec.map or {}).values()),
                ("value", () if spec.value is None else (spec.value,)),
            ):
                if odd := sorted({str(v) for v in values} - XSD_BOOLEANS):
                    self.fail(
                        f"{key}.{field}",
                        f"{odd} is no xsd:boolean: write true, false, 1 or 0 (or give "
                        f"`type` if {spec.path} is no boolean)",
                    )
        if spec.form is not None and not name.endswith(".password"):
            self.fail(f"{key}.form", f"`form` is the form of a wifi password, not of {name}")
        if spec.list_head and (kind.value != "str" or spec.map is not None):
            self.fail(f"{key}.list_head", "only a text value without `map` heads a list")
        if spec.max_length is not None and not spec.list_head:
            # (a value of acsd's own is refused at the API, never cut)
            self.fail(f"{key}.max_length", "`max_length` cuts a `list_head` list only")
        if (spec.when or spec.optional or spec.fallback) and name.startswith(WHOLE_GROUPS):
            # a group goes whole or not at all: a part that may be skipped would send the
            # rest of a static line without it
            self.fail(
                key, f"`when`, `optional` and `fallback` are not for {name}: its group goes whole"
            )
        for path in spec.when:
            if not path.startswith(self.root):
                self.fail(f"{key}.when", f"{path!r} is outside this profile's root {self.root!r}")
        if spec.supported is not None and not spec.supported.startswith(self.root):
            msg = f"{spec.supported!r} is outside this profile's root {self.root!r}"
            self.fail(f"{key}.supported", msg)
        if spec.supported is not None and spec.map is None:
            # (what it checks is a value the profile chose: a password or an SSID is not)
            self.fail(f"{key}.supported", "checks the values of a `map`: give one")
        if spec.value is not None and (spec.map is not None or spec.multiply is not None):
            self.fail(f"{key}.value", "`value` is the one wire value: no `map` or `multiply`")
        also = None
        if spec.also is not None and spec.list_head:
            # (one or the other is how a value the CPE holds is judged, not both)
            self.fail(f"{key}.also", "`also` and `list_head` exclude each other")
        if spec.also is not None:
            self.value_map(name, kind, spec.also, key, field="also")
            if spec.map is not None and (odd := sorted(set(spec.also) - set(spec.map))):
                self.fail(f"{key}.also", f"{odd} not in `map`: no wire value to stand for")
            also = {
                (spec.map or {}).get(value, value): frozenset(others)
                for value, others in spec.also.items()
            }
        if spec.written_with and spec.value is None:
            self.fail(f"{key}.written_with", "needs `value`: what to write along with them")
        for glob in spec.written_with:
            # a table's rows are written too (`dhcp.reservations`)
            if not any(fnmatch.fnmatchcase(other, glob) for other in [*SETTINGS, *TABLES]):
                self.fail(
                    f"{key}.written_with", unknown(glob, [*SETTINGS, *TABLES], "setting or table")
                )
        return Target(
            path=spec.path,
            type=wire,
            map=dict(spec.map) if spec.map is not None else None,
            multiply=spec.multiply,
            booleans=spec.booleans or _TRUE_FALSE,
            secret=spec.secret if spec.secret is not None else is_secret_name(spec.path),
            reboot=spec.reboot,
            form=spec.form,
            when=tuple((p, _compile_check(c)) for p, c in spec.when.items()),
            supported=spec.supported,
            optional=spec.optional,
            fallback=spec.fallback,
            list_head=spec.list_head,
            max_length=spec.max_length,
            value=spec.value,
            written_with=tuple(spec.written_with),
            also=also,
        )

    def value_map(
        self, name: str, kind: Kind, map: Mapping[str, Any] | None, key: str, field: str = "map"
    ) -> None:
        canonical = kind.canonical
        if map is None or canonical is None:
            return
        for value in map:
            if value not in canonical:
                self.fail(
                    f"{key}.{field}.{quote(value)}",
                    f"{value!r} is not a value of {name} ({', '.join(canonical)})",
                )

    def tables(self) -> dict[str, TableSpec]:
        return {
            name: self.table(name, spec, f"tables.{quote(name)}")
            for name, spec in self.spec.tables.items()
        }

    def table(self, name: str, spec: TableObjectSpec, key: str) -> TableSpec:
        kind = TABLES[name]
        if not spec.object.startswith(self.root):
            self.fail(f"{key}.object", f"{spec.object!r} is outside this profile's root")
        row_key = spec.key or kind.key
        if row_key not in kind.fields:
            self.fail(f"{key}.key", unknown(row_key, kind.fields, f"field of {name}"))
        elif row_key not in spec.fields:
            self.fail(f"{key}.fields", f"the row key {row_key!r} must be one of the fields")
        row_from = kind.row_from or {}
        if row_from and not spec.only:
            # acsd adds such rows beside the CPE's own: without `only` it would take the
            # DHCP client's address and route for its own, and delete them
            self.fail(f"{key}.only", f"{name} needs `only`: what tells acsd's rows apart")
        if row_from and row_key not in row_from:
            self.fail(f"{key}.key", f"the row of {name} is named by one of {', '.join(row_from)}")
        for fname in row_from:
            if fname not in spec.fields:
                self.fail(f"{key}.fields", f"{name} needs field {fname!r} ({row_from[fname]})")
        for fname in kind.required:
            # a field left out is not written: rows of the key alone (a reservation of no
            # address) would be added, and the job done
            if fname not in spec.fields:
                self.fail(f"{key}.fields", f"{name} needs field {fname!r}: where its rows hold it")
        fields = {}
        for fname, fspec in spec.fields.items():
            fkey = f"{key}.fields.{fname}"
            fkind = kind.fields.get(fname)
            if fkind is None:
                self.fail(fkey, unknown(fname, kind.fields, f"field of {name}"))
                continue
            wire = fspec.type or default_type(fkind)
            if fspec.format is not None and fkind.value != "mac":
                self.fail(f"{fkey}.format", f"formats apply to MAC fields; {fname} is not one")
            if fspec.booleans is not None and wire != "xsd:boolean":
                self.fail(f"{fkey}.booleans", f"`booleans` spell xsd:boolean values, not {wire}")
            if wire == "xsd:boolean" and (
                odd := sorted(
                    {*(fspec.booleans or ()), *(() if fspec.value is None else (fspec.value,))}
                    - XSD_BOOLEANS
                )
            ):
                self.fail(fkey, f"{odd} is no xsd:boolean: write true, false, 1 or 0")
            if fspec.value is not None and (fname == row_key or fname in row_from):
                self.fail(f"{fkey}.value", f"{fname} comes from the row, not the profile")
            elif fspec.value is None and row_from and fname not in row_from:
                self.fail(fkey, f"{fname} needs a `value`: no setting gives it")
            fields[fname] = TableField(
                fspec.param, wire, fspec.format, fspec.booleans or _TRUE_FALSE, fspec.value
            )
        return TableSpec(
            spec.object,
            row_key,
            fields,
            only=tuple((leaf, tuple(values)) for leaf, values in spec.only.items()),
            when=kind.when,
            row_from=dict(row_from),
            split=kind.split,
            ipv4_keys=kind.ipv4_keys,
            key_is_mac=row_key in kind.fields and kind.fields[row_key].value == "mac",
            unique=tuple(f for f in kind.unique if f in fields),
        )

    # --- all of it ----------------------------------------------------------------------

    def compile(self, origins: Mapping[str, str] | None = None) -> Profile:
        spec = self.spec
        for name, selections in spec.refs.items():
            rules = []
            for i, sel in enumerate(selections):
                rkey = f"refs.{name}[{i}]" if len(selections) > 1 else f"refs.{name}"
                rules.append(self.rule(sel, rkey, name, ref=True))
            self.refs[name] = tuple(rules)
        status = tuple(
            self.field(name, spec.status.fields[name], f"status.fields.{name}", STATUS_TYPES[name])
            for name in REPORTED_STATUS_FIELDS
            if name in spec.status.fields
        )
        identity = tuple(
            self.field(name, rules, f"identity.{name}", IDENTITY_FIELDS[name])
            for name, rules in spec.identity.rules()
        )
        fetch = self.fetch(spec.status.fetch, "status.fetch")
        fetch += self.fetch(spec.identity.fetch, "identity.fetch")
        self.cycles()
        settings = self.settings()
        tables = self.tables()
        match = spec.match.given()
        if self.problems:
            raise ProfileError(self.file, self.problems)
        return Profile(
            name=spec.name,
            description=spec.description,
            root=self.root,
            source=self.file,
            spec=spec,
            refs=self.refs,
            status=status,
            identity=identity,
            fetch=tuple(dict.fromkeys(fetch)),
            settings=settings,
            tables=tables,
            extends=spec.extends,
            match=match,
            matchers=tuple((MATCH_KEYS[k], _glob_pattern(g)) for k, g in match.items()),
            origins=dict(origins or {}),
            reads=_reads_version(self.root, spec, tuple(dict.fromkeys(fetch))),
        )


def _reads_version(root: str, spec: ProfileSpec, fetch: tuple[str, ...]) -> str:
    # The compiled fetch list: an extending profile's spec repeats its base's names.
    reading = spec.model_dump(
        mode="json",
        include={"refs": True, "status": {"fields"}, "identity": True},
        exclude={"identity": {"fetch"}},
    )
    text = json.dumps([root, reading, fetch], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
