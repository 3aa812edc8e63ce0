"""Profiles: what a router's data model calls things, as data (TOML), never as code.

A profile names the parameters acsd reads from a CPE and says how their values become the
seed-000 ``status`` fields and the identity values acsd keeps. The built-in base profiles
(``tr181``, ``tr098``) ship inside the package (``acsd/profiles/*.toml``); an operator may add
a directory of their own, whose profiles replace built-ins of the same ``name``.

Files are validated with pydantic (unknown keys are errors, so typos surface at load) and their
selectors are compiled once here; :mod:`acsd.provisioning.status` runs them for every session.

The selector language of ``paths`` (see the comment block in ``profiles/tr181.toml``):

- ``Device.IP.Interface.1.IPv4Address.1.IPAddress`` a parameter;
- ``*`` as a whole segment: every instance number present, in numeric order;
- ``{X}`` as the first segment: the object(s) that parameter ``X`` refers to (a TR-181
  reference or TR-098 ``DefaultConnectionService``), or the values of the named ref ``X``;
- a trailing ``.``: the object itself (its value is its own path), so ``where`` can test it.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from acsd.models import REPORTED_STATUS_FIELDS, DeviceStatus
from acsd.store.base import CpeIdentity

ROOTS: tuple[str, ...] = ("Device.", "InternetGatewayDevice.")

#: identity values acsd keeps about a CPE (not seed status), with their output types
IDENTITY_FIELDS: dict[str, str] = {
    "macAddress": "str",
    "periodicInterval": "int",
    "connectionRequestUrl": "str",
    "parameterKey": "str",
    "softwareVersion": "str",
    "hardwareVersion": "str",
    "modelName": "str",
}

#: output type of each status field, taken from the seed model so the two cannot drift
STATUS_TYPES: dict[str, str] = {
    name: "int" if DeviceStatus.model_fields[name].annotation == (int | None) else "str"
    for name in REPORTED_STATUS_FIELDS
}

_SEGMENT = r"[A-Za-z0-9_-]+"
_OBJECT_PATH = re.compile(rf"(?:(?:{_SEGMENT}|\*)\.)+")
_LEAF_PATH = re.compile(rf"(?:(?:{_SEGMENT}|\*)\.)*{_SEGMENT}")
_PLAIN_PATH = re.compile(rf"(?:{_SEGMENT}\.)*{_SEGMENT}\.?")
_REF_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# references may hold a comma list (LowerLayers); whitespace is tolerated around items
_LIST_SPLIT = re.compile(r"[,\s]+")


class ProfileError(ValueError):
    """A profile file that cannot be used: names the file, the key and, when known, the line."""

    def __init__(self, file: str, problems: list[tuple[str, str]], line: int | None = None):
        self.file = file
        self.problems = problems
        self.line = line
        where = f"{file}:{line}" if line is not None else file
        text = "; ".join(f"{key}: {msg}" if key else msg for key, msg in problems)
        super().__init__(f"{where}: {text}")


# --- the file format (pydantic, every table closed with extra="forbid") ---------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _as_text(value: Any) -> list[str]:
    """TOML scalars in conditions -> the CWMP strings they stand for."""
    if isinstance(value, bool):
        # xsd:boolean reads back as "true"/"false" or "1"/"0" depending on the firmware
        return ["true", "1"] if value else ["false", "0"]
    if isinstance(value, int | float):
        return [str(value)]
    return [value]


def _text_list(value: Any) -> Any:
    if isinstance(value, list):
        return [text for item in value for text in _as_text(item)]
    return _as_text(value)


TextList = Annotated[list[str], BeforeValidator(_text_list)]


def _condition_shorthand(value: Any) -> Any:
    # `Type = "DHCPv6"` and `Type = ["DHCPv6", "Static"]` mean `Type = { in = [...] }`
    return value if isinstance(value, dict) else {"in": value}


class ConditionSpec(_Spec):
    """A test on one parameter's value; missing and empty values both read as ""."""

    in_: TextList | None = Field(None, alias="in")
    not_in: TextList | None = None
    glob: TextList | None = None

    @model_validator(mode="after")
    def _one_test(self) -> ConditionSpec:
        given = [v for v in (self.in_, self.not_in, self.glob) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `in`, `not_in`, `glob`")
        return self


Condition = Annotated[ConditionSpec, BeforeValidator(_condition_shorthand)]


def _check_selector(text: str) -> str:
    rest = text
    if text.startswith("{"):
        close = text.find("}")
        inner = text[1:close] if close > 0 else ""
        if not (_REF_NAME.fullmatch(inner) or _LEAF_PATH.fullmatch(inner)):
            raise ValueError(f"{text!r}: `{{...}}` must hold a ref name or a parameter path")
        rest = text[close + 1 :]
        if rest and not rest.startswith("."):
            raise ValueError(f"{text!r}: `{{...}}` must be followed by `.` or end the path")
        rest = rest[1:]
        if not rest:
            return text
    if rest.endswith("*"):
        raise ValueError(f"{text!r}: `*` stands for instance numbers; end the object path with `.`")
    if not (_LEAF_PATH.fullmatch(rest) or _OBJECT_PATH.fullmatch(rest)):
        raise ValueError(
            f"{text!r} is not a path (segments of letters, digits, `_`, `-`, or `*`; "
            "`{...}` only first; a trailing `.` selects objects)"
        )
    return text


def _check_when(text: str) -> str:
    if _check_selector(text).endswith("."):
        raise ValueError(f"{text!r}: `when` tests a parameter, not an object")
    return text


def _check_fetch(text: str) -> str:
    if not _PLAIN_PATH.fullmatch(text):
        raise ValueError(f"{text!r}: fetch names are plain parameter or object paths")
    return text


def _check_relative(text: str) -> str:
    if not _PLAIN_PATH.fullmatch(text) or text.endswith("."):
        raise ValueError(f"{text!r}: a `where` key names a parameter of the matched object")
    return text


def _check_status_name(text: str) -> str:
    if text not in STATUS_TYPES:
        raise ValueError(_unknown(text, STATUS_TYPES, "status field"))
    return text


def _check_ref_name(text: str) -> str:
    if not _REF_NAME.fullmatch(text):
        raise ValueError(f"ref name {text!r}: letters, digits and `_` only")
    return text


SelectorText = Annotated[str, AfterValidator(_check_selector)]
WhenPath = Annotated[str, AfterValidator(_check_when)]
FetchName = Annotated[str, AfterValidator(_check_fetch)]
RelativeName = Annotated[str, AfterValidator(_check_relative)]
StatusName = Annotated[str, AfterValidator(_check_status_name)]
RefName = Annotated[str, AfterValidator(_check_ref_name)]


class ScaleSpec(_Spec):
    """Linear map of [min, max] onto 0..100, clamped (e.g. RSRP -140..-44 dBm)."""

    min: float
    max: float

    @model_validator(mode="after")
    def _range(self) -> ScaleSpec:
        if self.min == self.max:
            raise ValueError("`min` and `max` must differ")
        return self


class SelectionSpec(_Spec):
    """Which values to collect: ordered candidate paths, filtered and split."""

    paths: list[SelectorText] = Field(min_length=1)
    where: dict[RelativeName, Condition] = {}
    when: dict[WhenPath, Condition] = {}
    ignore: TextList = []
    split: str | None = None
    family: Literal["ipv4", "ipv6", "ipv6-global"] | None = None
    pick: int | None = Field(None, ge=0)

    @field_validator("split")
    @classmethod
    def _split(cls, value: str | None) -> str | None:
        if value is not None and (not value or value.isalnum()):
            raise ValueError('`split` lists separator characters, e.g. ","')
        return value


class FieldRuleSpec(SelectionSpec):
    """A selection plus how its value becomes the field's value."""

    map: dict[str, str] | None = None
    default: str | None = None
    scale: ScaleSpec | None = None
    multiply: float | None = None
    type: Literal["str", "int"] | None = None

    @model_validator(mode="after")
    def _conversions(self) -> FieldRuleSpec:
        if self.default is not None and self.map is None:
            raise ValueError("`default` is the value for unmapped input: it needs `map`")
        if (self.scale or self.multiply is not None) and self.type == "str":
            raise ValueError('`scale`/`multiply` produce numbers: use type = "int"')
        return self

    @property
    def output_type(self) -> str:
        if self.type is not None:
            return self.type
        return "int" if self.scale or self.multiply is not None else "str"


def _one_or_many(value: Any) -> Any:
    # `[status.fields.x]` (one rule) and `[[status.fields.x]]` (fallback rules) both work
    return [value] if isinstance(value, dict) else value


Rules = Annotated[list[FieldRuleSpec], BeforeValidator(_one_or_many), Field(min_length=1)]
Selections = Annotated[list[SelectionSpec], BeforeValidator(_one_or_many), Field(min_length=1)]


class MatchSpec(_Spec):
    """Globs on the CPE's identity. Base profiles leave it empty: their root selects them.

    Vendor matching (most specific wins) arrives with `extends`; these keys are reserved for it.
    """

    oui: str | None = None
    productClass: str | None = None
    manufacturer: str | None = None
    modelName: str | None = None
    hardwareVersion: str | None = None
    softwareVersion: str | None = None

    @property
    def empty(self) -> bool:
        return all(v is None for v in self.model_dump().values())


class StatusSpec(_Spec):
    fetch: list[FetchName] = []
    fields: dict[StatusName, Rules] = {}


class IdentitySpec(_Spec):
    fetch: list[FetchName] = []
    macAddress: Rules | None = None
    periodicInterval: Rules | None = None
    connectionRequestUrl: Rules | None = None
    parameterKey: Rules | None = None
    softwareVersion: Rules | None = None
    hardwareVersion: Rules | None = None
    modelName: Rules | None = None

    def rules(self) -> Iterator[tuple[str, list[FieldRuleSpec]]]:
        for name in IDENTITY_FIELDS:
            rules = getattr(self, name)
            if rules is not None:
                yield name, rules


class ProfileSpec(_Spec):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    root: Literal["Device.", "InternetGatewayDevice."]
    match: MatchSpec = MatchSpec()
    refs: dict[RefName, Selections] = {}
    status: StatusSpec = StatusSpec()
    identity: IdentitySpec = IdentitySpec()


def _unknown(key: str, known: Iterable[str], what: str) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {key!r}{hint}"


# --- compiled form: what status.py runs ----------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class Profile:
    """A loaded, validated and compiled profile."""

    name: str
    description: str
    root: str
    source: str
    spec: ProfileSpec
    #: named refs and inline `{Param.Path}` references, by name or path
    refs: Mapping[str, tuple[Rule, ...]]
    status: tuple[tuple[str, tuple[Rule, ...]], ...]
    identity: tuple[tuple[str, tuple[Rule, ...]], ...]
    #: the names of the one GetParameterValues per session (status + identity, in order)
    fetch: tuple[str, ...]

    @property
    def is_base(self) -> bool:
        return self.spec.match.empty


def _compile_check(spec: ConditionSpec) -> Check:
    if spec.glob is not None:
        pattern = "|".join(f"(?:{fnmatch.translate(g)})" for g in spec.glob)
        return Check(None, False, re.compile(pattern, re.IGNORECASE | re.DOTALL))
    items = spec.in_ if spec.in_ is not None else spec.not_in
    assert items is not None
    return Check(frozenset(v.strip().lower() for v in items), spec.in_ is None, None)


class _Compiler:
    def __init__(self, spec: ProfileSpec, file: str):
        self.spec = spec
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
                self.fail(key, _unknown(ref, self.spec.refs, "ref"))
            if owner is not None:
                self.edges.setdefault(owner, set()).add(ref)
        elif not text.startswith(self.spec.root):
            self.fail(key, f"{text!r} is outside this profile's root {self.spec.root!r}")
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
            if not name.startswith(self.spec.root):
                self.fail(f"{key}[{i}]", f"{name!r} is outside root {self.spec.root!r}")
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

    def compile(self) -> Profile:
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
        if self.problems:
            raise ProfileError(self.file, self.problems)
        return Profile(
            name=spec.name,
            description=spec.description,
            root=spec.root,
            source=self.file,
            spec=spec,
            refs=self.refs,
            status=status,
            identity=identity,
            fetch=tuple(dict.fromkeys(fetch)),
        )


# --- loading --------------------------------------------------------------------------------


def _key_path(loc: tuple[Any, ...], raw: Any) -> str:
    """pydantic's error location -> the key as the file spells it (`a.b[1].c`)."""
    out = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            if isinstance(node, list):
                out += f"[{part}]"
                node = node[part] if part < len(node) else None
            # else: a single table we wrapped into a one-rule list; the file has no index
            continue
        if part == "in_":
            part = "in"
        # "[key]" marks an error in a table's key, which the path already names
        if part == "[key]":
            continue
        node = node.get(part) if isinstance(node, dict) else None
        # keys that hold dots (paths in `when`) are quoted, as TOML writes them
        part = f'"{part}"' if "." in str(part) else str(part)
        out += f".{part}" if out else part
    return out


# every key the format knows, for "did you mean" hints
_KEYS = sorted(
    {
        field.alias or name
        for model in (ProfileSpec, StatusSpec, IdentitySpec, FieldRuleSpec, ConditionSpec)
        for name, field in model.model_fields.items()
    }
    | set(ScaleSpec.model_fields)
    | set(MatchSpec.model_fields)
)


def parse_profile(text: str, file: str) -> Profile:
    """Validate and compile one profile's TOML text; ``file`` names it in errors."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        raise ProfileError(
            file, [("", f"TOML syntax: {exc}")], int(found.group(1)) if found else None
        ) from None
    try:
        spec = ProfileSpec.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = _key_path(err["loc"], raw)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = _unknown(str(err["loc"][-1]), _KEYS, "key")
            problems.append((key, msg))
        raise ProfileError(file, problems) from None
    return _Compiler(spec, file).compile()


def _read_dir(entries: Iterable[Traversable | Path]) -> list[Profile]:
    loaded: dict[str, Profile] = {}
    for entry in sorted(entries, key=lambda e: e.name):
        if not entry.name.endswith(".toml") or not entry.is_file():
            continue
        try:
            text = entry.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(str(entry), [("", f"cannot read: {exc}")]) from None
        profile = parse_profile(text, str(entry))
        if profile.name in loaded:
            other = loaded[profile.name].source
            raise ProfileError(str(entry), [("name", f"{profile.name!r} is also in {other}")])
        loaded[profile.name] = profile
    return list(loaded.values())


def builtin_dir() -> Traversable:
    return resources.files("acsd") / "profiles"


class ProfileSet:
    """All profiles acsd knows, by name; answers which one serves a CPE."""

    def __init__(self, profiles: Iterable[Profile]):
        self._by_name: dict[str, Profile] = {}
        for p in profiles:
            self._by_name[p.name] = p
        self._base: dict[str, Profile] = {}
        for p in self._by_name.values():
            if not p.is_base:
                continue
            if p.root in self._base:
                other = self._base[p.root].source
                raise ProfileError(
                    p.source, [("root", f"a second base profile for {p.root!r} (see {other})")]
                )
            self._base[p.root] = p

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return list(self._by_name)

    def get(self, name: str) -> Profile:
        return self._by_name[name]

    def for_root(self, root: str) -> Profile:
        """The base profile of a data-model root ("Device." or "InternetGatewayDevice.")."""
        try:
            return self._base[root]
        except KeyError:
            raise LookupError(f"no base profile for root {root!r}") from None

    def select(self, identity: CpeIdentity | None, root: str) -> Profile:
        """The profile that serves this CPE.

        For now the base profile of its root; vendor profiles (``match`` plus ``extends``)
        will be chosen here by the most specific match on ``identity``.
        """
        return self.for_root(root)


def load_profiles(extra_dir: Path | None = None) -> ProfileSet:
    """The built-in profiles plus those in ``extra_dir`` (same ``name`` replaces a built-in)."""
    profiles = {p.name: p for p in _read_dir(builtin_dir().iterdir())}
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise ProfileError(str(extra_dir), [("", "profile directory not found")])
        profiles.update({p.name: p for p in _read_dir(extra_dir.iterdir())})
    return ProfileSet(profiles.values())


def detect_root(param_names: Iterable[str]) -> str:
    """TR-098 or TR-181: the root that holds ManagementServer (a TR-098 gateway may also
    carry a ``Device.`` services tree); failing that, the root of the first name."""
    first = None
    found = set()
    for name in param_names:
        for root in ROOTS:
            if name.startswith(root):
                if first is None:
                    first = root
                if name.startswith(root + "ManagementServer."):
                    found.add(root)
    if "InternetGatewayDevice." in found:
        # a gateway that has it under InternetGatewayDevice. is a TR-098 gateway, whatever
        # else it carries
        return "InternetGatewayDevice."
    if found:
        return "Device."
    if first is None:
        raise ValueError("no Device. or InternetGatewayDevice. parameter to tell the root by")
    return first
