"""Profiles: what a router's data model calls things, as data (TOML), never as code.

A profile names the parameters acsd reads from a CPE (seed-000 ``status`` fields, identity
values) and the parameters behind each abstract setting acsd writes (``wifi.2g.ssid``,
``dhcp.lease_time``, the ``dhcp.reservations`` table). The base profiles (``tr181``,
``tr098``) and vendor profiles ship inside the package (``acsd/profiles/*.toml``); an operator
may add a directory of their own, whose profiles replace built-ins of the same ``name``.

- ``extends = "tr098"``: start from that profile; every key this file gives replaces the
  base's whole key (one setting, one table, one status field, a `fetch` list);
  ``unsupported = ["wifi.6g.*"]`` drops inherited settings. ``root`` comes from the base.
- ``[match]``: globs on the CPE's identity (``oui``, ``productClass``, ``manufacturer``,
  ``modelName``, ``hardwareVersion``, ``softwareVersion``; fnmatch, case-insensitive; one
  glob or a list). Not inherited. :meth:`ProfileSet.select` picks, among the profiles of the
  CPE's root whose every key matches, the one with the most keys; else the root's base.

Modules: :mod:`.profile_schema` (the file format), :mod:`.profile_compile` (spec -> compiled
:class:`Profile`, ``extends``), :mod:`.profile_lines` (``FILE:LINE`` for errors),
:mod:`.profile_check` (``acsd profile check``). The selector language of status ``paths`` is
described at the top of ``profiles/tr181.toml``.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from pydantic import ValidationError

from acsd.log import get_logger
from acsd.provisioning.profile_compile import (
    Check,
    Compiler,
    Profile,
    Rule,
    Selector,
    TableField,
    TableSpec,
    Target,
    inherit,
    origin_of,
)
from acsd.provisioning.profile_lines import LineIndex
from acsd.provisioning.profile_schema import (
    IDENTITY_FIELDS,
    KNOWN_KEYS,
    ROOTS,
    SETTINGS,
    STATUS_TYPES,
    TABLES,
    ConditionSpec,
    FieldRuleSpec,
    MatchSpec,
    ProfileError,
    ProfileSpec,
    SelectionSpec,
    key_path,
    unknown,
)
from acsd.store.base import CpeIdentity
from acsd.tomltext import BOM, NotTomlText, parse_toml, read_regular, toml_text
from acsd.workdir import relative_note

log = get_logger("acsd.profiles")

__all__ = [
    "IDENTITY_FIELDS",
    "ROOTS",
    "SETTINGS",
    "STATUS_TYPES",
    "TABLES",
    "Check",
    "ConditionSpec",
    "FieldRuleSpec",
    "MatchSpec",
    "Profile",
    "ProfileError",
    "ProfileLoader",
    "ProfileSet",
    "ProfileSpec",
    "Rule",
    "SelectionSpec",
    "Selector",
    "Source",
    "TableField",
    "TableSpec",
    "Target",
    "builtin_dir",
    "detect_root",
    "load_profiles",
    "parse_profile",
    "read_source",
]


@dataclass(frozen=True, slots=True)
class Source:
    """One profile file as read: its validated spec, and its text for line numbers."""

    file: str
    text: str
    spec: ProfileSpec
    lines: LineIndex


def read_source(text: str, file: str) -> Source:
    """Parse and validate one file on its own (``extends`` is resolved later)."""
    text = text.removeprefix(BOM)  # as a Windows editor saves UTF-8; tomllib refuses it
    try:
        raw = parse_toml(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        raise ProfileError(
            file, [("", f"TOML syntax: {exc}")], int(found.group(1)) if found else None
        ) from None
    lines = LineIndex(text)
    try:
        spec = ProfileSpec.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = key_path(err["loc"], raw)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = _misplaced(str(err["loc"][-1])) or unknown(
                    str(err["loc"][-1]), KNOWN_KEYS, "key"
                )
            problems.append((key, msg))
        places = [(file, lines.line_of(key)) for key, _ in problems]
        raise ProfileError(file, problems, places=places) from None
    return Source(file, text, spec, lines)


def _misplaced(key: str) -> str | None:
    if key in ProfileSpec.model_fields:
        # TOML puts a key under the last [table] header above it
        return f"{key!r} is a top-level key: put it before the first [table]"
    if key in KNOWN_KEYS:
        return f"{key!r} is not a key of this table"
    return None


class ProfileLoader:
    """Reads profile files and resolves ``extends``, collecting every error rather than
    stopping at the first (``acsd profile check`` reports them all; :func:`load_profiles`
    raises them)."""

    def __init__(self, given: Iterable[Profile] = ()) -> None:
        #: by profile name; a later directory's file replaces an earlier one of the same name
        self.sources: dict[str, Source] = {}
        self.by_file: dict[str, Source] = {}
        self.profiles: dict[str, Profile] = {}
        self.errors: list[ProfileError] = []
        #: already compiled profiles a file may extend (built-ins, for parse_profile)
        self.given = {p.name: p for p in given}
        self._failed: set[str] = set()
        self._broken: set[str] = set()  # names in files that did not even validate
        #: what a replaced base profile mapped, by name: (settings, status fields)
        self._replaced: dict[str, tuple[frozenset[str], frozenset[str]]] = {}

    def read_dir(self, entries: Iterable[Traversable | Path]) -> None:
        """Read one directory's ``*.toml``; two files of one name in it are an error."""
        here: dict[str, str] = {}
        for entry in sorted(entries, key=lambda e: e.name):
            if not entry.name.endswith(".toml"):
                continue
            try:
                # (an operator's file must be one: a dangling link, a FIFO or a directory
                # named *.toml was skipped without a word, and the check said OK)
                raw = read_regular(entry) if isinstance(entry, Path) else entry.read_bytes()
                text = toml_text(raw)
            except (OSError, NotTomlText) as exc:
                said = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                self.errors.append(ProfileError(str(entry), [("", f"cannot read: {said}")]))
                continue
            try:
                source = read_source(text, str(entry))
            except ProfileError as exc:
                self.errors.append(exc)
                self._note_broken(text)
                continue
            name = source.spec.name
            if name in here:
                line = source.lines.line_of("name")
                problem = ("name", f"{name!r} is also in {here[name]}")
                self.errors.append(ProfileError(str(entry), [problem], line))
                continue
            here[name] = str(entry)
            self.add(source)

    def _note_broken(self, text: str) -> None:
        # a profile extending this file's profile fails too, but its base's error says why
        with contextlib.suppress(tomllib.TOMLDecodeError):
            name = parse_toml(text).get("name")
            if isinstance(name, str):
                self._broken.add(name)

    def add(self, source: Source) -> None:
        old = self.sources.get(source.spec.name)
        if old is not None and old.spec.extends is None:
            self._replaced[source.spec.name] = (
                frozenset(old.spec.settings),
                frozenset(old.spec.status.fields),
            )
        self.sources[source.spec.name] = source
        self.by_file[source.file] = source

    def build(self) -> dict[str, Profile]:
        for name in sorted(self.sources):
            self._build(name, ())
        return self.profiles

    def thinner_replacements(self) -> list[tuple[Profile, list[str]]]:
        """Base profiles replaced by a file that maps less than they did, with what it
        lost: giving a profile the base's name replaces it whole (it does not merge, as
        ``extends`` does), and a replacement with a name and a root alone left every
        router of that data model unmanaged while it read provisioned."""
        out = []
        for name, (settings, fields) in sorted(self._replaced.items()):
            profile = self.profiles.get(name)
            if profile is None:
                continue
            lost = sorted(settings - set(profile.settings))
            lost += sorted(f"status.{f}" for f in fields - {f for f, _ in profile.status})
            if lost:
                out.append((profile, lost))
        return out

    def ordered(self) -> list[Profile]:
        """The built profiles in the order their files were read (built-ins first)."""
        return [self.profiles[n] for n in self.sources if n in self.profiles]

    def locate(self, file: str, key: str) -> tuple[str, int | None]:
        source = self.by_file.get(file)
        return file, source.lines.line_of(key) if source else None

    def raise_errors(self) -> None:
        if not self.errors:
            return
        if len(self.errors) == 1:
            raise self.errors[0]
        first = self.errors[0]
        problems = [p for e in self.errors for p in e.problems]
        places = [p for e in self.errors for p in e.places]
        raise ProfileError(first.file, problems, places=places)

    def _build(self, name: str, trail: tuple[str, ...]) -> Profile | None:
        if name in self.profiles:
            return self.profiles[name]
        if name in self._failed:
            return None
        source = self.sources[name]
        spec = source.spec
        origins: dict[str, str] = {}
        if spec.extends is not None:
            chain = (*trail, name)
            parent = spec.extends
            if parent in chain:
                self._cycle((*chain[chain.index(parent) :], parent))
                return None
            if parent in self.sources:
                base = self._build(parent, chain)
            elif parent in self._broken:
                base = None
            elif parent in self.given:
                base = self.given[parent]
            else:
                known = [*self.sources, *self.given]
                self._fail(source, [("extends", unknown(parent, known, "base profile"))])
                return None
            if base is None:
                self._failed.add(name)  # the base's own errors say why
                return None
            spec, origins, problems = inherit(base, spec)
            if problems:
                self._fail(source, problems)
                return None
        try:
            profile = Compiler(spec, source.file).compile(origins)
        except ProfileError as exc:
            self._fail(source, exc.problems, origins)
            return None
        self.profiles[name] = profile
        return profile

    def _fail(
        self,
        source: Source,
        problems: list[tuple[str, str]],
        origins: dict[str, str] | None = None,
    ) -> None:
        self._failed.add(source.spec.name)
        # a key inherited from a base is located in the base's file
        places = [self.locate(origin_of(origins or {}, k, source.file), k) for k, _ in problems]
        self.errors.append(ProfileError(source.file, problems, places=places))

    def _cycle(self, cycle: tuple[str, ...]) -> None:
        steps = []
        for name in cycle[:-1]:
            file, line = self.locate(self.sources[name].file, "extends")
            steps.append(f"{name} ({file}:{line})" if line else f"{name} ({file})")
        text = " -> ".join([*steps, cycle[-1]])
        first = self.sources[cycle[0]]
        problem = ("extends", f"profiles extend each other in a loop: {text}")
        self.errors.append(ProfileError(first.file, [problem], first.lines.line_of("extends")))
        self._failed.update(cycle)


def parse_profile(text: str, file: str, bases: Iterable[Profile] | None = None) -> Profile:
    """Validate and compile one profile's TOML text; ``file`` names it in errors.

    A profile that ``extends`` another finds it in ``bases`` (default: the built-ins)."""
    source = read_source(text, file)
    if bases is None:
        bases = load_profiles() if source.spec.extends is not None else ()
    loader = ProfileLoader(given=bases)
    loader.add(source)
    loader.build()
    loader.raise_errors()
    return loader.profiles[source.spec.name]


def builtin_dir() -> Traversable:
    return resources.files("acsd") / "profiles"


class ProfileSet:
    """All profiles acsd knows, by name; answers which one serves a CPE."""

    def __init__(self, profiles: Iterable[Profile]):
        #: base profiles a file replaced with less (see ProfileLoader.thinner_replacements)
        self.thinner: list[tuple[Profile, list[str]]] = []
        self._by_name: dict[str, Profile] = {}
        for p in profiles:
            self._by_name[p.name] = p
        self._base: dict[str, Profile] = {}
        self._vendor: dict[str, list[Profile]] = {}
        for p in sorted(self._by_name.values(), key=lambda p: p.name):
            if not p.is_base:
                self._vendor.setdefault(p.root, []).append(p)
        # in the given order: the later of two bases (an operator's file) is the one refused
        for p in self._by_name.values():
            if not p.is_base:
                continue
            if p.root in self._base:
                raise ProfileError(p.source, [("root", second_base(p, self._base[p.root]))])
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

    def matching(self, identity: CpeIdentity, root: str) -> list[Profile]:
        """The vendor profiles of ``root`` that match, most specific first, then by name."""
        found = [p for p in self._vendor.get(root, ()) if p.matches(identity)]
        return sorted(found, key=lambda p: -p.specificity)  # stable: names stay in order

    def vendor_root(self, identity: CpeIdentity) -> str | None:
        """The root of the vendor profiles this CPE matches, when they all have one: for
        an Inform that names no parameter to tell the root by."""
        roots = {root for root in self._vendor if self.matching(identity, root)}
        return roots.pop() if len(roots) == 1 else None

    def select(self, identity: CpeIdentity | None, root: str) -> Profile:
        """The profile that serves this CPE: the most specific matching vendor profile of
        its root (a tie goes to the first by name; ``acsd profile check`` reports ties),
        else the root's base profile."""
        if identity is not None:
            found = self.matching(identity, root)
            if found:
                return found[0]
        return self.for_root(root)


def second_base(profile: Profile, first: Profile) -> str:
    why = (
        f" ({profile.name} extends {profile.extends} but has no [match])" if profile.extends else ""
    )
    return f"a second base profile for {profile.root!r}{why} (see {first.source})"


def load_profiles(extra_dir: Path | None = None) -> ProfileSet:
    """The built-in profiles plus those in ``extra_dir`` (same ``name`` replaces a built-in)."""
    loader = ProfileLoader()
    loader.read_dir(builtin_dir().iterdir())
    if extra_dir is not None:
        try:
            if not extra_dir.is_dir():
                what = "not a directory" if extra_dir.exists() else "profile directory not found"
                # (where the name came from: the operator looks in the wrong file otherwise)
                said = f"{what}{relative_note(extra_dir)} ([profiles] dir, or ACSD_PROFILES_DIR)"
                raise ProfileError(repr(str(extra_dir))[1:-1], [("", said)])
            entries = list(extra_dir.iterdir())
        except OSError as exc:  # no permission to list it (DynamicUser=), a name too long
            raise ProfileError(
                str(extra_dir), [("", f"cannot list the profile directory: {exc.strerror}")]
            ) from None
        loader.read_dir(entries)
    loader.build()
    loader.raise_errors()
    found = ProfileSet(loader.ordered())
    found.thinner = loader.thinner_replacements()
    return found


def same_match(a: Profile, b: Profile) -> bool:
    """Two vendor profiles of one root that take the same CPEs by the same `match` (globs
    compared without case, in any order): a CPE could get either."""
    return (
        a.root == b.root
        and not a.is_base
        and not b.is_base
        and _normal_match(a) == _normal_match(b)
    )


def _normal_match(p: Profile) -> dict[str, list[str]]:
    return {k: sorted(g.lower() for g in globs) for k, globs in p.match.items()}


def warn_of_doubts(profiles: ProfileSet) -> None:
    """A warning for each pair :func:`same_match` finds: ``profile check`` refuses them,
    ``serve`` runs them (in the order the files load), which no one means; and for each
    base profile a file replaced with less (:meth:`ProfileLoader.thinner_replacements`).
    Said when the daemon starts or reloads them, once logging is set up."""
    for profile, lost in profiles.thinner:
        log.warning(
            "profiles.replaced_with_less", profile=profile.name, source=profile.source,
            lost=lost[:20], count=len(lost),
            reason="a profile of the base's name replaces it whole: what it does not map is "
            "not managed (extends the base to change part of it)",
        )  # fmt: skip
    seen = list(profiles)
    for i, b in enumerate(seen):
        for a in seen[:i]:
            if same_match(a, b):
                log.warning(
                    "profiles.match_tie", profile=b.name, source=b.source, other=a.name,
                    other_source=a.source,
                    reason="the same `match`: a CPE could get either (make one more specific; "
                    "acsd profile check refuses this)",
                )  # fmt: skip


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
