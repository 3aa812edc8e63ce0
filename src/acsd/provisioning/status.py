"""Reported values -> the device's status record, through the profile's compiled selectors.

The session engine hands over everything the CPE reported in one session (its Inform
ParameterList plus the one GetParameterValues of :func:`fetch_names`) as ``name -> value``.
Nothing here guesses: a field whose parameters were not reported, or were reported empty, is
left out of the result.

This runs for every session (issue #8 aims at 1,200 sessions/s on one core), so the per-call
work is kept to dictionary look-ups: instance numbers under a wildcard are found by bisecting
a sorted copy of the names, built only when a profile path actually has a wildcard, and each
selector is resolved once per extraction however many rules and `when` tests name it.
"""

from __future__ import annotations

import ipaddress
import math
import re
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from acsd.provisioning.profiles import Check, Profile, Rule, Selector
from acsd.shared_names import share

__all__ = [
    "Extraction",
    "ReadPlan",
    "extract_identity",
    "extract_status",
    "extract_status_and_identity",
    "fetch_names",
    "fields_read_at",
    "is_online",
    "plan_and_extraction",
    "read_plan",
    "untyped",
]

#: the longest text a status or identity field keeps. The fields are addresses, names and
#: codes; the longest the data models allow among them is ConnectionRequestURL's
#: string(256). Anything longer is a CPE's garbage (only the body limit bounds a value),
#: and is taken as not reported rather than stored in every record and API answer.
MAX_TEXT = 256
#: an instance number: unsignedInt, so at most 10 ASCII digits
_INSTANCE = re.compile(r"[0-9]{1,10}")
#: a reported number: an optional sign, ASCII digits, an optional fraction (a rate some
#: firmware writes as "12.5"); at most 20 digits before the point (an unsignedLong)
_NUMBER = re.compile(r"[-+]?[0-9]{1,20}(?:\.[0-9]{1,12})?")


def extract_status(profile: Profile, values: Mapping[str, str]) -> dict[str, Any]:
    """Seed-000 status fields (``lanIp``, ``upTime``, ``simStatus`` ...) that have a value."""
    return _Reader(profile, values).fields(profile.status, seed=True)


def extract_identity(profile: Profile, values: Mapping[str, str]) -> dict[str, Any]:
    """Identity values acsd keeps (``macAddress``, ``periodicInterval`` ...) that have a value."""
    return _Reader(profile, values).fields(profile.identity)


def extract_status_and_identity(
    profile: Profile, values: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both of the above over one session's values, sharing their work (sorted names, refs,
    instance numbers, resolved selectors): cheaper than the two calls."""
    return Extraction(profile, values).status_and_identity()


class Extraction:
    """Everything read over one set of values, sharing its work: the refs a plan check
    resolves are the refs status extraction needs again at the end of the session."""

    __slots__ = ("_reader",)

    def __init__(
        self,
        profile: Profile,
        values: Mapping[str, str],
        *,
        shared: bool = False,
        like: Extraction | None = None,
    ):
        """``shared``: these are a read plan's leaves, the same names session after session:
        what the names give is kept on the profile for the next extraction over them. A
        whole tree's is kept apart, in a smaller cache (:data:`MAX_TREE_SHAPES`): its names
        differ from CPE to CPE but for CPEs of one model and firmware. ``like``: an earlier
        extraction of this session, whose work on the names is reused when these values
        have the same names (see :func:`read_plan`)."""
        self._reader = _Reader(profile, values, shared=shared, like=like)

    @classmethod
    def over(cls, reader: _Reader) -> Extraction:
        """An extraction that goes on with ``reader``'s work."""
        extraction = cls.__new__(cls)
        extraction._reader = reader
        return extraction

    @property
    def values(self) -> Mapping[str, str]:
        return self._reader.values

    def refs_hold(self, plan: ReadPlan) -> bool:
        """True when the refs in these values (a read of the plan's leaves) still point
        where the plan says: a WAN that moved to another interface needs the partial paths
        read again."""
        reader = self._reader
        return all(tuple(reader.ref(key)) == target for key, target in plan.refs.items())

    def status_fields(self, names: Collection[str]) -> dict[str, Any]:
        """Only ``names`` of the status (what a check needs), as the whole would have them."""
        reader = self._reader
        wanted = tuple((name, rules) for name, rules in reader.profile.status if name in names)
        return reader.fields(wanted, seed=True)

    def status_and_identity(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """See :func:`extract_status_and_identity`."""
        reader = self._reader
        status = reader.fields(reader.profile.status, seed=True)
        return status, reader.fields(reader.profile.identity)


def untyped(params: Mapping[str, list[Any]]) -> dict[str, str]:
    """Values as extraction reads them (``path -> value``) from the stored and session form
    (``path -> [value, xsd type]``)."""
    return {k: v[0] for k, v in params.items()}


def fetch_names(
    profile: Profile, *, absent: Iterable[str] = (), already: Mapping[str, str] | None = None
) -> list[str]:
    """The names for this session's GetParameterValues.

    ``absent``: names (or object paths ending in ".") this CPE answered 9005 for; anything
    under an absent object is left out too. ``already``: values the CPE reported this session
    (its Inform); a parameter in it is not asked again. An empty list means: no GPV needed.
    """
    gone = set(absent)
    gone_objects = tuple(a for a in gone if a.endswith("."))
    have = already or {}
    names = []
    for name in profile.fetch:
        if name in gone or (gone_objects and name.startswith(gone_objects)):
            continue
        if not name.endswith(".") and name in have:
            continue
        names.append(name)
    return names


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """The exact leaves that status and identity extraction can read on one CPE as its tree
    is now, and where the profile's refs point in that tree.

    Rules are tried in order and the first value wins, so one extraction reads only part of
    what it could; the plan holds every parameter that any rule, fallback, ``when`` or
    ``where`` of the profile would read, present in the tree. While the tree keeps its shape
    (the same refs, no new instances), reading just these leaves and extracting from them
    gives what extracting from the whole tree gives, at a third of the size of a read of
    the partial paths.
    """

    #: the profile and the version of its reading rules (``Profile.reads``)
    profile: str
    reads: str
    paths: tuple[str, ...]
    refs: Mapping[str, tuple[str, ...]]
    #: when the whole tree was read (POSIX seconds)
    at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "reads": self.reads,
            "paths": list(self.paths),
            "refs": {k: list(v) for k, v in self.refs.items()},
            "at": self.at,
        }

    @classmethod
    def from_json(cls, data: Any) -> ReadPlan | None:
        """None for anything that is not a plan this version wrote (the session then reads
        the partial paths and makes a new one)."""
        try:
            return cls(
                profile=str(data["profile"]),
                reads=str(data["reads"]),
                paths=_plan_paths(data["paths"]),
                refs={str(k): tuple(str(x) for x in v) for k, v in data["refs"].items()},
                at=float(data["at"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


#: plan paths as read before, by their text: every CPE of a profile has (nearly) the same
#: paths, and an open session then holds one shared tuple of shared strings
_PATHS_SEEN: dict[tuple[Any, ...], tuple[str, ...]] = {}
_PATHS_SEEN_MAX = 1024
#: paths kept in all: a CPE with thousands of table rows has a plan of thousands of paths,
#: so 1,024 plans alone could be gigabytes
PLAN_PATHS_KEPT = 100_000
_paths_kept = 0


def _plan_paths(raw: Any) -> tuple[str, ...]:
    global _paths_kept
    key = tuple(raw)
    found = _PATHS_SEEN.get(key)
    if found is None:
        found = tuple(share(str(p)) for p in key)
        if len(_PATHS_SEEN) >= _PATHS_SEEN_MAX or _paths_kept + len(found) > PLAN_PATHS_KEPT:
            _PATHS_SEEN.clear()  # CPEs of many shapes: start over rather than grow
            _paths_kept = 0
        if len(found) <= PLAN_PATHS_KEPT:
            # keyed by the shared tuple too, so the text as loaded is not kept besides
            _PATHS_SEEN[found] = found
            _paths_kept += len(found)
    return found


def read_plan(
    profile: Profile, values: Mapping[str, str], at: float, *, like: Extraction | None = None
) -> ReadPlan:
    """The plan for a CPE whose whole tree (as far as the profile reads it) is ``values``.
    ``like``: as for :class:`Extraction`."""
    return plan_and_extraction(profile, values, at, like=like)[0]


def plan_and_extraction(
    profile: Profile, values: Mapping[str, str], at: float, *, like: Extraction | None = None
) -> tuple[ReadPlan, Extraction]:
    """:func:`read_plan`, and an extraction over the same values that reuses its work
    (every selector was resolved and matched for the plan; status and identity then only
    convert values). A first session extracts over its whole tree to plan its changes
    (``like``: sorting and resolving its names once, not twice), makes its plan over the
    merged tree at its end and extracts its status again: a sixth of a boot storm's CPU
    before the two shared their work."""
    recording = _Recording(values)
    reader = _Reader(profile, recording, like=like)
    refs = {key: tuple(reader.ref(key)) for key in profile.refs}
    # What touch_all reads follows from the names and where the refs point, never from
    # other values: CPEs of one model and firmware (a boot storm's thousands) share it.
    plans = reader._shape.plans
    key = tuple(refs.values())
    paths = plans.get(key)
    if paths is None:
        reader.touch_all()
        paths = tuple(sorted(recording.hits))
        if len(plans) >= MAX_PLANS_PER_SHAPE:  # refs of many targets (a hostile tree)
            plans.clear()
        plans[key] = paths
    plan = ReadPlan(profile=profile.name, reads=profile.reads, paths=paths, refs=refs, at=at)
    return plan, Extraction.over(reader)


def fields_read_at(
    profile: Profile,
    values: Mapping[str, str],
    fields: Iterable[str],
    names: Iterable[str],
) -> list[str]:
    """Which of the status or identity ``fields`` could have been read at or below one of
    ``names`` (names the CPE faulted on that the session went on without): a field left
    out because of such a name is unknown, not absent. Every path a field's rules read
    counts (its selectors, `where` keys, `when` tests); a ref counts at the objects
    ``values`` resolve it to, or, unresolved, at the paths the ref itself is read at."""
    unread = [_segments(name) for name in names]
    if not unread:
        return []
    reader = _Reader(profile, values)
    rules_of = dict(profile.status) | dict(profile.identity)
    out = []
    for field_name in fields:
        patterns = _patterns(reader, rules_of.get(field_name, ()), set())
        if any(_overlap(name, pattern) for name in unread for pattern in patterns):
            out.append(field_name)
    return out


def _patterns(reader: _Reader, rules: Iterable[Rule], seen: set[str]) -> list[tuple[str, ...]]:
    """The segment patterns ("*" for an instance number) of every path ``rules`` read."""
    out: list[tuple[str, ...]] = []
    for rule in rules:
        selectors = [*rule.paths, *(selector for selector, _test in rule.when)]
        for selector in selectors:
            texts = _selector_texts(reader, selector, out, seen)
            for text in texts:
                out.append(_segments(text))
                if rule.where and not selector.is_object:
                    parent = text[: text.rfind(".") + 1]
                    out.extend(_segments(parent + key) for key, _check in rule.where)
                elif rule.where:
                    out.extend(_segments(text + key) for key, _check in rule.where)
    return out


def _selector_texts(
    reader: _Reader, selector: Selector, out: list[tuple[str, ...]], seen: set[str]
) -> list[str]:
    rest = "*".join(selector.chunks)
    if selector.ref is None:
        return [rest]
    bases = reader.ref(selector.ref)
    if not bases:
        # Unresolved (perhaps because of the very fault): where the ref is read counts.
        if selector.ref not in seen:
            seen.add(selector.ref)
            out.extend(_patterns(reader, reader.profile.refs.get(selector.ref, ()), seen))
        return []
    return [base + "." + rest if rest else base + "." for base in bases]


def _segments(path: str) -> tuple[str, ...]:
    """A path as segments; an object's ends in "" (``A.B.`` -> ("A", "B", ""))."""
    return tuple(path.split("."))


def _overlap(name: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether ``name`` and ``pattern`` can name the same parameter: one lies at or below
    the other ("*" in ``pattern`` stands for any instance number)."""
    name_object, pattern_object = name[-1] == "", pattern[-1] == ""
    n = name[:-1] if name_object else name
    p = pattern[:-1] if pattern_object else pattern
    for a, b in zip(n, p, strict=False):
        if a != b and b != "*":
            return False
    if len(n) == len(p):
        return True
    return name_object if len(n) < len(p) else pattern_object


def is_online(
    last_inform: float | None,
    periodic_interval: int | None,
    now: float,
    *,
    default_interval: int,
    grace: int,
) -> bool:
    """True while a session was seen within 2 x the periodic interval + grace: one missed
    periodic Inform is tolerated (a CPE retrying after a fault, a slow boot), two are not."""
    if last_inform is None:
        return False
    interval = periodic_interval if periodic_interval and periodic_interval > 0 else None
    return now - last_inform <= 2 * (interval or default_interval) + grace


# --- evaluation --------------------------------------------------------------------------


# Exactly the dotted quads ipaddress.IPv4Address accepts (ASCII digits, no leading zeros,
# 0-255): most family-checked values are IPv4 and this is ~5x cheaper than parsing them.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")


def _family_ok(value: str, family: str) -> bool:
    # a prefix length ("2001:db8::1/64") does not change the family
    address = value.partition("/")[0]
    if _IPV4.fullmatch(address) is not None:
        return family == "ipv4"
    try:
        # ip_address() would first fail an IPv4 parse on anything with a colon
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = (
            ipaddress.IPv6Address(address) if ":" in address else ipaddress.ip_address(address)
        )
    except ValueError:
        return False
    if family == "ipv4":
        return ip.version == 4
    if ip.version != 6:
        return False
    if family == "ipv6-global":
        # link-local fe80::/10 and loopback ::1 never identify the router from outside
        return not (ip.is_link_local or ip.is_loopback or ip.is_unspecified or ip.is_multicast)
    return True


def _count(value: Any) -> bool:
    return isinstance(value, int) and 0 <= value < 2**63


# What a seed status field holds, whatever a profile's rules found: a value that is not (an
# address that is no address, an unsignedInt read as -1) counts as not reported, and the
# next one is tried. The seed defines the fields, so this is not per vendor.
#: the address family of an address field whose rule names none
STATUS_FAMILIES: dict[str, str] = {
    **dict.fromkeys(("lanIp", "subnetMask", "gateway", "wanIp", "dns", "dns2"), "ipv4"),
    **dict.fromkeys(("ipv6", "ipv6Dns", "ipv6Dns2"), "ipv6"),
}
#: checks of the converted value
STATUS_CHECKS: dict[str, Callable[[Any], bool]] = dict.fromkeys(
    ("upTime", "connectionTime", "uplinkRate", "downlinkRate"), _count
)


class _Recording(dict):
    """Values that remember which of them were read."""

    __slots__ = ("hits",)

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.hits: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        value = dict.get(self, key)
        if value is None:
            return default
        self.hits.add(key)
        return value


#: read plans' shapes kept per profile; CPEs of more shapes than this start the cache over
MAX_SHAPES = 256
#: and names in all, per profile: a read plan has a leaf per table row the profile reads,
#: so a CPE with thousands of rows (new instance numbers each time) makes shapes of
#: thousands of names
MAX_SHAPE_NAMES = 100_000
#: the same for whole trees, kept apart: CPEs of one model and firmware share theirs (a
#: boot storm's thousands), but a tree with rows of its own (hosts, leases) is a shape
#: no other CPE has, and must not push the read plans' shapes out
MAX_TREE_SHAPES = 32
MAX_TREE_SHAPE_NAMES = 64_000
#: read plans kept per shape, one per combination of the refs' targets
MAX_PLANS_PER_SHAPE = 64


class _Shape:
    """What a set of parameter names gives whatever their values: the names sorted, the
    instance numbers under a table, and the paths a selector resolves to. Every periodic
    session of a CPE (and of others of its model) reads the same plan leaves, so for them
    this is worked out once and kept on the profile (see ``Extraction(shared=True)``), and
    a session only looks its values up."""

    __slots__ = ("instances", "names", "paths", "plans")

    def __init__(self, keys: Iterable[str]) -> None:
        self.names = sorted(keys)
        self.instances: dict[str, list[str]] = {}
        #: selector text (and the ref's bases) -> [(object, path)] of present paths, or
        #: the object paths that exist for an object selector
        self.paths: dict[Any, list[tuple[str, str]]] = {}
        #: where the refs point -> the read plan's paths (see plan_and_extraction)
        self.plans: dict[tuple[tuple[str, ...], ...], tuple[str, ...]] = {}


def _shape_of(
    shapes: dict[Any, _Shape], values: Mapping[str, str], most: int, most_names: int
) -> _Shape:
    key = tuple(values)
    shape = shapes.get(key)
    if shape is None:
        shape = _Shape(key)
        if len(key) > most_names:
            return shape  # worked out for this extraction only
        held = sum(len(kept.names) for kept in shapes.values())
        if len(shapes) >= most or held + len(key) > most_names:
            shapes.clear()
        shapes[key] = shape
    return shape


def _same_names(shape: _Shape, values: Mapping[str, str]) -> bool:
    names = shape.names
    return len(names) == len(values) and all(map(values.__contains__, names))


class _Reader:
    """One extraction over one session's values; memoises refs, selector matches and
    family tests, and shares instance numbers and resolved paths with every extraction
    over the same names (:class:`_Shape`)."""

    __slots__ = ("_families", "_refs", "_selected", "_shape", "profile", "values")

    def __init__(
        self,
        profile: Profile,
        values: Mapping[str, str],
        *,
        shared: bool = False,
        like: Extraction | None = None,
    ):
        self.profile = profile
        self.values = values
        if shared:
            self._shape = _shape_of(profile.shapes, values, MAX_SHAPES, MAX_SHAPE_NAMES)
        elif like is not None and _same_names(shape := like._reader._shape, values):
            self._shape = shape
        else:
            self._shape = _shape_of(
                profile.tree_shapes, values, MAX_TREE_SHAPES, MAX_TREE_SHAPE_NAMES
            )
        self._refs: dict[str, list[str]] = {}
        # by selector text: fallback rules and `when` tests name the same paths again
        self._selected: dict[str, list[tuple[str, str]]] = {}
        # (value, family): dns/dns2 and ipv6Dns/ipv6Dns2 test the same servers; an IPv6
        # parse costs microseconds
        self._families: dict[tuple[str, str], bool] = {}

    def fields(
        self, fields: tuple[tuple[str, tuple[Rule, ...]], ...], seed: bool = False
    ) -> dict[str, Any]:
        """``seed``: these are seed status fields, held to :data:`STATUS_FAMILIES` and
        :data:`STATUS_CHECKS`."""
        out = {}
        for name, rules in fields:
            if seed:
                value = self.field(rules, STATUS_CHECKS.get(name), STATUS_FAMILIES.get(name))
            else:
                value = self.field(rules)
            if value is not None:
                out[name] = value
        return out

    def field(
        self,
        rules: tuple[Rule, ...],
        check: Callable[[Any], bool] | None = None,
        family: str | None = None,
    ) -> Any:
        """The value of the first rule (and of its first path) that yields one (that passes
        ``check``; ``family`` for rules that name none)."""
        for rule in rules:
            if rule.when and not self.when_ok(rule):
                continue
            for selector in rule.paths:
                items = self.collect(rule, selector, family)
                if items:
                    value = _convert(rule, items)
                    if value is not None and (check is None or check(value)):
                        return value
        return None

    def touch_all(self) -> None:
        """Read everything any rule could read: every rule, selector, ``when`` and ``where``
        of every field and ref, whatever the values (for :func:`read_plan`)."""
        profile = self.profile
        groups = [rules for _, rules in profile.status]
        groups += [rules for _, rules in profile.identity]
        groups += list(profile.refs.values())
        get = self.values.get
        for rules in groups:
            for rule in rules:
                for selector, _test in rule.when:
                    self.select(selector)
                for selector in rule.paths:
                    matches = self.select(selector)
                    for obj, _value in matches:
                        for key, _check in rule.where:
                            get(obj + key)
                        if selector.is_object:
                            # an object is there when a leaf under it is: keep one
                            names = self.sorted_names()
                            at = bisect_left(names, obj)
                            if at < len(names) and names[at].startswith(obj):
                                get(names[at])

    def ref(self, key: str) -> list[str]:
        """The object paths a ref points to (trailing "." dropped), memoised per extraction."""
        found = self._refs.get(key)
        if found is None:
            found = []
            for rule in self.profile.refs[key]:
                if rule.when and not self.when_ok(rule):
                    continue
                for selector in rule.paths:
                    items = self.collect(rule, selector)
                    if items:
                        if rule.pick is not None:
                            items = items[rule.pick : rule.pick + 1]
                        found = [item.rstrip(".") for item in items]
                        break
                if found:
                    break
            self._refs[key] = found
        return found

    def when_ok(self, rule: Rule) -> bool:
        for selector, test in rule.when:
            matches = self.select(selector)
            if not test(matches[0][1].strip() if matches else ""):
                return False
        return True

    def collect(self, rule: Rule, selector: Selector, family: str | None = None) -> list[str]:
        """Values under one selector, filtered by ``where``, split, ``ignore`` and family
        (the rule's, else ``family``)."""
        matches = self.select(selector)
        if not matches:
            return []
        get = self.values.get
        where, split, ignore = rule.where, rule.split, rule.ignore
        family = rule.family or family
        items = []
        for obj, value in matches:
            if where and not _where_ok(get, obj, where):
                continue
            for part in split.split(value) if split else (value,):
                part = part.strip()
                if not part or (ignore and part.lower() in ignore):
                    continue
                if family:
                    ok = self._families.get((part, family))
                    if ok is None:
                        ok = self._families[part, family] = _family_ok(part, family)
                    if not ok:
                        continue
                    # an address with its prefix length (OpenWrt's "192.168.1.1/24"): the
                    # field is the address, and the API's LAN checks parse it as one
                    part = part.partition("/")[0]
                items.append(part)
        return items

    def select(self, selector: Selector) -> list[tuple[str, str]]:
        """(object the match belongs to, value) for every match, in instance order.

        For a parameter the object is its parent ("A.1.B" -> "A.1."); an object path is its
        own object and its value is its path without the trailing dot. Memoised: callers
        must not change the list.
        """
        chunks = selector.chunks
        if len(chunks) == 1 and selector.ref is None and not selector.is_object:
            # A plain parameter path, the most common kind: one look-up, nothing to memoise.
            path = chunks[0]
            value = self.values.get(path)
            return [] if value is None else [(path[: path.rfind(".") + 1], value)]
        found = self._selected.get(selector.text)
        if found is None:
            found = self._selected[selector.text] = self._select(selector)
        return found

    def _select(self, selector: Selector) -> list[tuple[str, str]]:
        if selector.ref is not None:
            bases = self.ref(selector.ref)
            key: Any = (selector.text, tuple(bases))
        else:
            bases, key = [], selector.text
        paths = self._shape.paths.get(key)
        if paths is None:
            paths = self._shape.paths[key] = self._resolve(selector, bases)
        if selector.is_object:
            return paths
        out = []
        get = self.values.get
        for obj, path in paths:
            value = get(path)
            if value is not None:
                out.append((obj, value))
        return out

    def _resolve(self, selector: Selector, bases: list[str]) -> list[tuple[str, str]]:
        """The present paths a selector names in these values' names: (object, path) of
        each parameter, or (object path, its path without the dot) of each object."""
        chunks = selector.chunks
        if selector.ref is not None:
            if len(chunks) == 1 and not chunks[0]:
                return [(base + ".", base) for base in bases]
            prefixes = [base + "." + chunks[0] for base in bases]
        else:
            prefixes = [chunks[0]]
        for chunk in chunks[1:]:
            prefixes = [p + i + chunk for p in prefixes for i in self.instances(p)]
        if selector.is_object:
            return [(p, p[:-1]) for p in prefixes if self.has_object(p)]
        present = self.values
        return [(path[: path.rfind(".") + 1], path) for path in prefixes if path in present]

    def sorted_names(self) -> list[str]:
        return self._shape.names

    def has_object(self, prefix: str) -> bool:
        names = self.sorted_names()
        at = bisect_left(names, prefix)
        return at < len(names) and names[at].startswith(prefix)

    def instances(self, prefix: str) -> list[str]:
        """Instance numbers directly under ``prefix`` (a table path ending in "."), sorted."""
        known = self._shape.instances
        found = known.get(prefix)
        if found is not None:
            return found
        names = self.sorted_names()
        size = len(prefix)
        numbers = []
        at = bisect_left(names, prefix)
        while at < len(names) and names[at].startswith(prefix):
            name = names[at]
            dot = name.find(".", size)
            if dot < 0:
                at += 1  # a parameter, not an instance
                continue
            segment = name[size:dot]
            if _INSTANCE.fullmatch(segment):  # not "²", not 5,000 digits
                numbers.append((int(segment), segment))
            # "/" sorts right after ".": jump over the rest of this subtree
            at = bisect_left(names, name[:dot] + "/", at)
        found = [segment for _, segment in sorted(numbers)]
        known[prefix] = found
        return found


def _where_ok(
    get: Callable[[str, str], str], obj: str, where: tuple[tuple[str, Check], ...]
) -> bool:
    # a plain loop: all() over a generator adds ~0.2 us to every match tested
    for key, test in where:  # noqa: SIM110
        if not test(get(obj + key, "")):
            return False
    return True


#: the largest figure a numeric status field holds (an int64, as both databases keep it)
_MOST = float(2**63)


def _convert(rule: Rule, items: list[str]) -> Any:
    """pick -> map -> scale/multiply -> type; None when the value does not convert."""
    index = rule.pick or 0
    if index >= len(items):
        return None
    value = items[index]
    if rule.type == "ref":
        return value
    if rule.map is not None:
        mapped = rule.map.get(value.lower(), rule.default)
        if mapped is None:
            return None
        value = mapped
    if rule.type == "str":
        return value if len(value) <= MAX_TEXT else None
    # A number as xsd:int/unsignedInt (and a decimal, as some firmware writes a rate)
    # spell one: float() also takes "1_000", "1e3" and other scripts' digits ("٣٤")
    if _NUMBER.fullmatch(value.strip()) is None:
        return None
    number = float(value)
    if rule.scale is not None:
        low, high = rule.scale
        number = min(100.0, max(0.0, (number - low) * 100.0 / (high - low)))
    if rule.multiply is not None:
        number *= rule.multiply
    if not abs(number) < _MOST:  # (inf and nan too: a CPE's "1e308" times a profile's 10)
        return None
    # half up, not Python's round-half-even: the same reading always gives the same figure
    return math.floor(number + 0.5)
