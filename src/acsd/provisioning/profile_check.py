"""``acsd profile check [DIR]``: validate every profile and show which simulator trees each
one serves.

Beyond what loading already refuses (TOML syntax, unknown keys, bad values, ``extends``
cycles and unknown bases, all with ``FILE:LINE``), the check

- compares every standard path (no ``X_`` segment) with the BBF data model of its root:
  the parameter or table exists, is writable, has the declared (or defaulted) type, and a
  leaf the model marks secured is not declared readable; a vendor path (one with an
  ``X_`` segment) must hang from an object of the model (the standard part before its
  first ``X_`` segment: a typo there is no vendor's doing); a path below a service object
  (``Device.Services.VoiceService.``, TR-104) whose model is not shipped is left unchecked,
  with a warning once per profile and service;
- reports ties: two vendor profiles of one root with the same `match`, with overlapping
  globs on the same keys, or matching one simulator tree equally specifically;
- refuses a vendor profile whose `match` takes every CPE (every glob ``*``), and warns of
  a single key that does;
- lists, per profile, the built-in simulator trees :meth:`ProfileSet.select` gives it.

The BBF XML is only needed here, never at run time: without it the path check is skipped
with a warning.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import functools
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from acsd.provisioning.profile_compile import Profile, Target, quote
from acsd.provisioning.profile_datamodel import (
    MODEL_FILES,
    SERVICE_MODELS,
    DataModel,
    DataModelError,
    find_datamodels,
    load_datamodel,
    norm,
    service_path,
)
from acsd.provisioning.profile_schema import ConditionSpec, ProfileError, is_vendor_path
from acsd.provisioning.profiles import (
    ProfileLoader,
    ProfileSet,
    builtin_dir,
    same_match,
    second_base,
)
from acsd.store.base import CpeIdentity


@dataclass
class CheckReport:
    """``errors``: one "FILE:LINE: message" each. ``lines``: what to print after them
    (warnings, one line per profile, and a final "N profiles OK" or "N errors")."""

    errors: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, text: str) -> None:
        if text not in self.errors:  # inherited keys would repeat their base's findings
            self.errors.append(text)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)


# --- the simulator's trees ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimTree:
    name: str
    root: str
    identity: CpeIdentity
    paths: frozenset[str]  # leaves, objects and tables of the tree


def simulator_trees(report: CheckReport | None = None) -> list[SimTree]:
    """Every built-in simulator tree, with the identity its routers report."""
    # Imported here: the simulator package pulls in its HTTP client, which the rest of
    # provisioning must not depend on.
    from acsd.sim.template import list_templates, load_template

    try:
        names = [name for name, _ in list_templates()]
    except Exception as exc:  # a tree being edited: fall back to the files, one by one
        if report is not None:
            report.warn(f"warning: simulator trees: {exc}")
        folder = resources.files("acsd") / "sim" / "trees"
        names = sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".json"))
    out = []
    for name in names:
        try:
            tpl = load_template(name)
        except Exception as exc:
            if report is not None:
                report.warn(f"warning: simulator tree {name}: {exc}")
            continue

        def value(key: str, leaf: str, tpl: object = tpl) -> str | None:
            path = tpl.device_id.get(key) or tpl.root + "DeviceInfo." + leaf  # type: ignore[attr-defined]
            return tpl.defaults.get(path)  # type: ignore[attr-defined]

        identity = CpeIdentity(
            oui=value("oui", "ManufacturerOUI") or "",
            product_class=value("product_class", "ProductClass") or "",
            serial_number=name,
            manufacturer=value("manufacturer", "Manufacturer") or "",
            model_name=value("model_name", "ModelName"),
            software_version=value("software_version", "SoftwareVersion"),
            hardware_version=value("hardware_version", "HardwareVersion"),
        )
        paths = frozenset([*tpl.leaves, *tpl.objects, *tpl.tables])
        out.append(SimTree(name, tpl.root, identity, paths))
    return out


# --- the check ------------------------------------------------------------------------------


class _Checker:
    def __init__(self, loader: ProfileLoader, report: CheckReport) -> None:
        self.loader = loader
        self.report = report
        self.warned: set[tuple[str, str, tuple[str, ...]]] = set()
        #: (profile, service object) already said to be unchecked
        self.unchecked: set[tuple[str, str]] = set()

    def say(self, profile: Profile, key: str, msg: str, *, warning: bool = False) -> None:
        file, line = self.loader.locate(profile.origin(key), key)
        if warning:
            text = ProfileError(file, [(key, "warning: " + msg)], line).messages()[0]
            self.report.warn(text)
        else:
            self.report.error(ProfileError(file, [(key, msg)], line).messages()[0])

    # --- a base's tests kept ----------------------------------------------------------------

    def kept_tests(self, profile: Profile, base: Profile) -> None:
        """A key given again replaces the base's whole, ``when`` included: one that leaves
        out the base's test (a band's: is .2 a 5 GHz radio?) would write its part of the
        band where the rest of it is "not on this CPE", e.g. a 5 GHz password onto a
        2.4 GHz guest network."""
        for name, targets in profile.settings.items():
            # (an optional parameter's tests are its own: see plan._gate)
            before = {
                path
                for target in base.settings.get(name, ())
                if not target.optional
                for path, _ in target.when
            }
            now = {path for target in targets for path, _ in target.when}
            # (a test of its own, e.g. a vendor's band parameter at another instance, is
            # this profile's word on where the setting belongs)
            if before and not now:
                msg = (
                    f"{base.name} writes this only where `when` holds for "
                    f"{', '.join(sorted(before))}; this one has no test and would be written "
                    "everywhere: give it the same `when`"
                )
                self.say(profile, f"settings.{quote(name)}", msg)

    # --- paths against the BBF model ----------------------------------------------------

    def model(self, profile: Profile, dm: DataModel) -> None:
        spec = profile.spec
        for name, targets in profile.settings.items():
            base = f"settings.{quote(name)}"
            for i, target in enumerate(targets):
                key = f"{base}[{i}]" if len(targets) > 1 else base
                declared = spec.settings[name][i].type
                self.leaf(profile, dm, key, target.path, target.type, declared, target.secret)
                if (
                    is_vendor_path(target.path)
                    and name.endswith("password")
                    and spec.settings[name][i].secret is None
                    and not target.secret
                ):
                    # The model cannot say whether a vendor leaf is secured, and its name
                    # is none acsd knows as secret: compared with what the router reads
                    # back, a write-only one (as passwords are) reads "" and is written
                    # again in every session until the job gives up on it.
                    msg = (
                        f"{target.path!r} is compared with what the router reads back: "
                        "give `secret = true` if it reads back empty (as passwords do), "
                        "`secret = false` if it reads back the password"
                    )
                    self.say(profile, key, msg, warning=True)
                for path, test in spec.settings[name][i].when.items():
                    if self.exists(profile, dm, f"{key}.when", path):
                        self.tested(profile, dm, f"{key}.when", path, test)
                if target.supported is not None:
                    self.exists(profile, dm, f"{key}.supported", target.supported)
                param = dm.params.get(norm(target.path))
                if param and param.enum and target.value is not None:
                    # (a fixed value the parameter cannot hold faults every session; a
                    # list's items each, a vendor's X_ value its own: as for `map`, a
                    # warning)
                    items = [v.strip() for v in target.value.split(",")]
                    odd = sorted(v for v in items if v not in param.enum and not v.startswith("X_"))
                    if odd:
                        msg = f"{odd} not among the values {dm.name} allows"
                        self.say(profile, f"{key}.value", msg, warning=True)
                if param and param.enum and target.map:
                    odd = sorted(set(target.map.values()) - param.enum)
                    if odd:
                        msg = f"{odd} not among the values {dm.name} allows"
                        self.say(profile, f"{key}.map", msg, warning=True)
                if param and param.enum and target.also:
                    odd = sorted(set().union(*target.also.values()) - param.enum)
                    if odd:
                        msg = f"{odd} not among the values {dm.name} allows"
                        self.say(profile, f"{key}.also", msg, warning=True)
        for name, table in profile.tables.items():
            key = f"tables.{quote(name)}"
            if self.service(profile, dm, f"{key}.object", table.object):
                continue
            if is_vendor_path(table.object):
                self.vendor(profile, dm, f"{key}.object", table.object)
                continue
            obj = norm(table.object) + "{i}."
            if obj not in dm.objects:
                msg = f"{table.object!r} is not a table of {dm.name}"
                self.say(profile, f"{key}.object", msg + _hint(table.object, dm.objects))
                continue
            if not dm.objects[obj]:
                msg = f"{table.object!r} is read-only in {dm.name}: AddObject would fault"
                self.say(profile, f"{key}.object", msg)
            for fname, f in table.fields.items():
                declared = spec.tables[name].fields[fname].type
                path = table.object + "1." + f.param
                self.leaf(profile, dm, f"{key}.fields.{fname}", path, f.type, declared, False)
                if f.value is not None:
                    self.allowed(profile, dm, f"{key}.fields.{fname}.value", path, [f.value])
            for leaf, values in table.only:
                path = table.object + "1." + leaf
                if self.exists(profile, dm, f"{key}.only.{leaf}", path):
                    self.allowed(profile, dm, f"{key}.only.{leaf}", path, values)
        self.reads(profile, dm)

    def exists(self, profile: Profile, dm: DataModel, key: str, path: str) -> bool:
        """A parameter acsd reads but never writes (a `when` test, a row's `only`) need
        only exist; whether the model has it (False for a vendor path, whose own part is
        not the model's to check, nor one below a service model acsd does not ship)."""
        if self.service(profile, dm, key, path):
            return False
        if is_vendor_path(path):
            self.vendor(profile, dm, key, path)
            return False
        if norm(path) in dm.params:
            return True
        self.say(profile, key, f"{path!r} is not a parameter of {dm.name}" + _hint(path, dm.params))
        return False

    def tested(
        self, profile: Profile, dm: DataModel, key: str, path: str, test: ConditionSpec
    ) -> None:
        """A `when` value the parameter never holds (a band spelt "5 GHz" where the model
        says 5GHz) makes the setting "not on this CPE" everywhere, or tests nothing: a
        warning, as for `map`, since firmware does report values of its own (compared
        without regard to case, and "" is a missing parameter's)."""
        param = dm.params[norm(path)]
        if not param.enum:
            return
        allowed = {v.lower() for v in param.enum}
        values = [*(test.in_ or ()), *(test.not_in or ())]
        if param.is_list:
            # (a list's value is its items, comma-separated: "2.4GHz,5GHz" of a dual-band
            # radio's SupportedFrequencyBands is one the model allows)
            values = [item.strip() for v in values for item in v.split(",")]
        odd = sorted({v for v in values if v and v.lower() not in allowed})
        seen = (profile.name, norm(path), tuple(odd))
        if odd and seen not in self.warned:
            # once per profile, parameter and values: a band's test repeats on each of
            # its settings, and one deliberate spelling is one finding
            self.warned.add(seen)
            can = ", ".join(sorted(param.enum))
            msg = f"{path}: {odd} not among the values {dm.name} allows ({can})"
            self.say(profile, key, msg, warning=True)

    def allowed(
        self, profile: Profile, dm: DataModel, key: str, path: str, values: Iterable[str]
    ) -> None:
        """Values a profile fixes (written, or what tells acsd's rows apart) must be ones
        the parameter can hold: an `only` value it never holds adds a row every session."""
        param = dm.params[norm(path)]
        for value in values:
            if param.type == "xsd:boolean":
                ok = value.lower() in ("true", "false", "1", "0")
            elif param.enum:
                ok = value in param.enum
            else:
                continue
            if not ok:
                can = ", ".join(sorted(param.enum or ())) or "true, false"
                self.say(profile, key, f"{value!r} is not a value of {path} in {dm.name} ({can})")

    def leaf(
        self,
        profile: Profile,
        dm: DataModel,
        key: str,
        path: str,
        wire: str,
        declared: str | None,
        secret: bool,
    ) -> None:
        where = f"{key}.path" if key.startswith("settings") else key
        if self.service(profile, dm, where, path):
            return
        if is_vendor_path(path):
            self.vendor(profile, dm, where, path)
            return
        name = norm(path)
        param = dm.params.get(name)
        if param is None:
            msg = f"{path!r} is not a parameter of {dm.name}" + _hint(path, dm.params)
            self.say(profile, where, msg)
            return
        if not param.writable:
            msg = f"{path!r} is read-only in {dm.name}: SetParameterValues would fault 9008"
            self.say(profile, key, msg)
        if wire != param.type:
            if declared is None:
                msg = f"type defaults to {wire} but {dm.name} says {param.type}: give `type`"
                self.say(profile, key, msg)
            else:
                msg = f"type {wire} differs from {dm.name}'s {param.type}"
                self.say(profile, f"{key}.type", msg, warning=True)
        if param.secured and not secret and key.startswith("settings"):
            msg = f"{dm.name} marks {path!r} secured (it reads back empty): it is secret"
            self.say(profile, key, msg)

    def vendor(self, profile: Profile, dm: DataModel, key: str, path: str) -> None:
        """A vendor path's standard part: the BBF model cannot vouch for the vendor's own
        names, but the object they hang from is the model's. A typo there
        (``Device.WiFi.AccesPoint.1.Security.X_ACME_Key``) faults 9005 in every session
        and would pass for a vendor name."""
        if self.service(profile, dm, key, path):
            return
        parent = _vendor_parent(path)
        if parent.startswith("{"):
            return  # below a reference: the object is the CPE's to say
        name = norm(parent)
        if name in dm.objects:
            return
        if name + "{i}." in dm.objects:
            msg = (
                f"{path!r}: {parent!r} is a table of {dm.name}: its vendor part goes "
                "below an instance number"
            )
        else:
            msg = (
                f"{path!r}: its standard part {parent!r} is not an object of {dm.name}"
                + _object_hint(parent, dm.objects)
            )
        self.say(profile, key, msg)

    def service(self, profile: Profile, dm: DataModel, key: str, path: str) -> bool:
        """Whether ``path`` lies below a service object (``Device.Services.VoiceService.``)
        that the shipped model does not define, and so is not checked here: the root
        models declare ``Services.`` empty, each service having a model of its own (TR-104
        for voice) that acsd does not ship. A warning, once per profile and service, not an
        error: no profile could pass it. A name that is no BBF service (a typo of one) is
        an error, as any other object the model lacks."""
        found = service_path(path, dm)
        if found is None:
            return False
        if found.model is None:
            known = sorted(SERVICE_MODELS)
            close = difflib.get_close_matches(found.name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" ({', '.join(known)})"
            msg = f"{path!r}: {found.name!r} is no service object of the BBF models" + hint
            self.say(profile, key, msg)
            return True
        if (profile.name, found.obj) not in self.unchecked:
            self.unchecked.add((profile.name, found.obj))
            msg = (
                f"{path!r}: not checked: the {found.model} model of {found.obj} is not shipped "
                f"(only {dm.name}, which declares no {found.name})"
            )
            self.say(profile, key, msg, warning=True)
        return True

    def reads(self, profile: Profile, dm: DataModel) -> None:
        """Status and identity paths (the existence check only)."""
        spec = profile.spec
        for part, names in (("status", spec.status.fetch), ("identity", spec.identity.fetch)):
            for i, name in enumerate(names):
                if self.service(profile, dm, f"{part}.fetch[{i}]", name):
                    continue
                if is_vendor_path(name):
                    self.vendor(profile, dm, f"{part}.fetch[{i}]", name)
                elif not _exists(dm, name):
                    msg = f"{name!r} is not in {dm.name}"
                    self.say(profile, f"{part}.fetch[{i}]", msg)
        for key, paths in _selector_paths(profile):
            for path in paths:
                if self.service(profile, dm, key, path):
                    continue
                if is_vendor_path(path):
                    self.vendor(profile, dm, key, path)
                elif not _selector_exists(dm, path):
                    self.say(profile, key, f"{path!r} is not in {dm.name}")

    # --- ties ---------------------------------------------------------------------------

    def ties(self, profiles: list[Profile], trees: list[SimTree], pset: ProfileSet) -> None:
        # `profiles` is in load order: a tie is reported at the later file (an operator's
        # profile rather than the built-in it collides with)
        vendors = [p for p in profiles if not p.is_base]
        for p in vendors:
            self.match_all(p)
        for a, b in itertools.combinations(vendors, 2):
            if a.root != b.root:
                continue
            if same_match(a, b):
                why = f"the same `match` as {a.name} ({a.source})"
            elif set(a.match) == set(b.match) and all(
                _overlap(a.match[k], b.match[k]) for k in a.match
            ):
                why = f"`match` globs overlapping {a.name}'s ({a.source}) on every key"
            else:
                continue
            self.say(b, "match", f"{why}: a CPE could get either (make one more specific)")
        for tree in trees:
            found = pset.matching(tree.identity, tree.root)
            equal = [p for p in found if found and p.specificity == found[0].specificity]
            if len(equal) > 1:
                names = ", ".join(f"{p.name} ({p.source})" for p in equal)
                msg = f"simulator tree {tree.name} matches {names} equally (tie)"
                self.say(max(equal, key=profiles.index), "match", msg)

    def match_all(self, profile: Profile) -> None:
        """A `match` key with a glob of only ``*`` tests nothing, yet counts towards the
        profile's rank (its number of keys): with every key so, the profile takes every
        CPE of its root, ahead of each vendor profile with fewer keys."""
        loose = [key for key, globs in profile.match.items() if any(_takes_all(g) for g in globs)]
        if not loose:
            return
        if len(loose) == len(profile.match):
            msg = (
                f"matches every {profile.root} CPE, ahead of each vendor profile with fewer "
                f"than {len(loose)} `match` keys; to change what every such CPE gets, name the "
                "profile after the base profile (it then replaces the built-in one)"
            )
            self.say(profile, "match", msg)
            return
        for key in loose:
            msg = f"{key!r}: a glob of only '*' tests nothing but still ranks the profile higher"
            self.say(profile, "match", msg, warning=True)


def _takes_all(glob: str) -> bool:
    return glob != "" and set(glob) == {"*"}


def _hint(path: str, known: dict[str, object]) -> str:
    """ " (did you mean 'A.1.Sibling'?)" from the model's names beside ``path``."""
    parent, _, leaf = path.rstrip(".").rpartition(".")
    prefix = norm(parent) + "."
    siblings = {
        k[len(prefix) :].rstrip(".").removesuffix(".{i}")
        for k in known
        if k.startswith(prefix)
        and k[len(prefix) :].rstrip(".").removesuffix(".{i}").count(".") == 0
    }
    close = difflib.get_close_matches(leaf, sorted(siblings), n=1)
    tail = "." if path.endswith(".") else ""
    return f" (did you mean {parent + '.' + close[0] + tail!r}?)" if close else ""


def _object_hint(path: str, objects: dict[str, bool]) -> str:
    """ " (did you mean 'A.B.1.C.'?)" for an object path: the first segment that leaves
    the model, replaced by its closest sibling there (the rest kept as written)."""
    segments = path.rstrip(".").split(".")
    known = ""  # the model's name of the part that exists so far ("{i}" for instances)
    for i, seg in enumerate(segments):
        step = known + ("{i}" if seg.isdigit() or seg == "*" else seg) + "."
        if step in objects or step + "{i}." in objects:
            known = step
            continue
        children = sorted(
            {k[len(known) :].split(".", 1)[0] for k in objects if k.startswith(known)} - {"{i}"}
        )
        close = difflib.get_close_matches(seg, children, n=1)
        if not close:
            return ""
        fixed = [*segments[:i], close[0], *segments[i + 1 :]]
        return f" (did you mean {'.'.join(fixed) + '.'!r}?)"
    return ""


def _vendor_parent(path: str) -> str:
    """The standard object a vendor path hangs from: the path up to its first ``X_``
    segment (``Device.WiFi.`` of ``Device.WiFi.X_ACME_Steer.On``)."""
    segments = path.split(".")
    first = next(i for i, seg in enumerate(segments) if seg.startswith("X_"))
    return ".".join(segments[:first]) + "."


def _exists(dm: DataModel, path: str) -> bool:
    name = norm(path)
    if name.endswith("."):
        return name in dm.objects or name + "{i}." in dm.objects
    return name in dm.params


def _selector_exists(dm: DataModel, path: str) -> bool:
    if not path.startswith("{"):
        return _exists(dm, path)
    close = path.index("}")
    inner, rest = path[1:close], norm(path[close + 2 :])
    if "." in inner and not is_vendor_path(inner) and norm(inner) not in dm.params:
        return False
    if not rest:
        return True
    # `{ref}.rest`: the ref may point at any object; rest must exist under one of them
    return any(k.endswith("." + rest) for k in itertools.chain(dm.params, dm.objects))


def _selector_paths(profile: Profile) -> Iterator[tuple[str, list[str]]]:
    spec = profile.spec
    groups = [(f"refs.{name}", sels) for name, sels in spec.refs.items()]
    groups += [(f"status.fields.{name}", rules) for name, rules in spec.status.fields.items()]
    groups += [(f"identity.{name}", rules) for name, rules in spec.identity.rules()]
    for base, rules in groups:
        for i, rule in enumerate(rules):
            key = f"{base}[{i}]" if len(rules) > 1 else base
            for j, path in enumerate(rule.paths):
                yield f"{key}.paths[{j}]", [path]
            if rule.when:
                yield f"{key}.when", list(rule.when)


def _witness(glob: str) -> str | None:
    """A string the glob matches ('*' as nothing, '?' as one letter); None for classes."""
    if "[" in glob:
        return None
    return glob.replace("*", "").replace("?", "a").lower()


def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """True when some value certainly matches a glob of each (witness-based: no false
    alarms, though exotic overlaps may go unseen)."""
    for ga, gb in itertools.product(a, b):
        for w, other in ((_witness(ga), gb), (_witness(gb), ga)):
            if w is not None and fnmatch.fnmatchcase(w, other.lower()):
                return True
    return False


def _tolerant_set(profiles: list[Profile], checker: _Checker) -> tuple[ProfileSet, list[Profile]]:
    """A ProfileSet without the profiles it refuses (a second base for a root)."""
    kept: list[Profile] = []
    bases: dict[str, Profile] = {}
    for p in profiles:
        if p.is_base and p.root in bases:
            checker.say(p, "root", second_base(p, bases[p.root]))
            continue
        if p.is_base:
            bases[p.root] = p
        kept.append(p)
    return ProfileSet(kept), kept


def check_profiles(extra_dir: Path | None, *, datamodels: Path | None = None) -> CheckReport:
    """Validate the built-in profiles plus those in ``extra_dir``; see the module doc."""
    report = CheckReport()
    loader = ProfileLoader()
    loader.read_dir(builtin_dir().iterdir())
    if extra_dir is not None:
        if not extra_dir.is_dir():
            # Alone: a listing of the built-in profiles ahead of it read as if DIR had
            # been checked, and buried the one line that matters.
            what = "not a directory" if extra_dir.exists() else "profile directory not found"
            report.error(f"{extra_dir}: {what}")
            return report
        loader.read_dir(extra_dir.iterdir())
    loader.build()
    for err in loader.errors:
        for text in err.messages():
            report.error(text)
    for profile, lost in loader.thinner_replacements():
        shown = ", ".join(lost[:10]) + (f" and {len(lost) - 10} more" if len(lost) > 10 else "")
        report.warn(
            f"warning: {profile.source}: {profile.name} replaces the built-in one whole and no "
            f"longer maps {shown} (a profile of the base's name does not merge with it)"
        )
    checker = _Checker(loader, report)
    pset, profiles = _tolerant_set(loader.ordered(), checker)
    by_name = {p.name: p for p in profiles}
    for p in profiles:
        if p.extends in by_name:
            checker.kept_tests(p, by_name[p.extends])

    folder = find_datamodels(datamodels)
    if folder is None:
        where = str(datamodels) if datamodels else "$ACSD_DATAMODELS, ../shared/datamodels"
        if datamodels is not None:
            report.error(
                f"{datamodels}: no BBF data model files ({', '.join(MODEL_FILES.values())})"
            )
        else:
            report.warn(f"warning: BBF data models not found ({where}): path check skipped")
    else:
        for p in profiles:
            try:
                model = load_datamodel(folder / MODEL_FILES[p.root])
            except DataModelError as exc:  # said once: report.error drops repeats
                report.error(str(exc))
                continue
            checker.model(p, model)

    trees = simulator_trees(report)
    checker.ties(profiles, trees, pset)
    served: dict[str, list[SimTree]] = {p.name: [] for p in profiles}
    for tree in trees:
        try:
            served[pset.select(tree.identity, tree.root).name].append(tree)
        except LookupError:
            report.warn(f"warning: simulator tree {tree.name}: no profile for {tree.root!r}")

    report.lines.extend(report.warnings)
    for p in sorted(profiles, key=lambda p: (p.extends is not None, p.name)):
        how = f"extends {p.extends}" if p.extends else f"base of {p.root}"
        names = ", ".join(t.name for t in served[p.name]) or "-"
        report.lines.append(f"{p.name}  {how}  matches: {names}")
        for tree in served[p.name]:
            missing = [k for k, lacks in _setting_needs(p) if lacks(tree.paths)]
            if missing:
                report.lines.append(
                    f"    not in {tree.name} (unsupported there): {', '.join(missing)}"
                )
    if report.errors:
        n = len(report.errors)
        report.lines.append(f"{n} error{'s' if n != 1 else ''}")
    else:
        report.lines.append(f"{len(profiles)} profiles OK")
    return report


def _setting_needs(p: Profile) -> Iterator[tuple[str, Callable[[frozenset[str]], bool]]]:
    """Each setting and table, with whether a CPE of these paths lacks what it needs: its
    parameters (a CPE does without an optional one; a fallback stands in for the ones of
    its form before it) and those its `when` tests read."""
    for name, targets in p.settings.items():
        yield name, functools.partial(_lacks, targets)
    for name, table in p.tables.items():
        yield name, functools.partial(_lacks_object, table.object)


def _lacks(targets: tuple[Target, ...], paths: frozenset[str]) -> bool:
    if any(path not in paths for t in targets for path, _test in t.when):
        return True
    for index, target in enumerate(targets):
        if target.optional or target.fallback or target.path in paths:
            continue
        later = targets[index + 1 :]
        if not any(t.fallback and t.form == target.form and t.path in paths for t in later):
            return True
    return False


def _lacks_object(path: str, paths: frozenset[str]) -> bool:
    return path not in paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="acsd profile check", description="Validate the built-in profiles and DIR's."
    )
    parser.add_argument("dir", nargs="?", type=Path, help="a directory of extra profiles")
    parser.add_argument("--datamodels", type=Path, help="the BBF XML directory")
    args = parser.parse_args(argv)
    report = check_profiles(args.dir, datamodels=args.datamodels)
    for line in [*report.errors, *report.lines]:
        print(line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
