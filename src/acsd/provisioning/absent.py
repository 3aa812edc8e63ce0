"""Which names CPEs of one kind lack: the first read of a CPE asks for them apart.

A GetParameterValues with one name the CPE does not have fails whole with 9005, and the
fault does not say which name it was. Routers of one model and firmware lack the same
names (a fixed-line model has no ``Device.Cellular.``, a single-band one no second radio),
so once one of them has shown which, the next one's first read asks for those names one
per call, apart from the rest: ``1 + k`` calls where finding them again would take ``2k``
per halving of the list. Names lacked with their whole top-level object (a modem's
``Device.Cellular.``, ``Device.PPP.``) are confirmed by one listing of the data model's root
instead: ``2`` calls for any number of them. That is what keeps a boot storm of one model
cheap.

What is learned is only a hint: a name asked for apart is still asked for, so a router
that does have it is read in full; the hint is dropped when one does. Per process and
bounded; after a restart it is learned again from the first sessions, and from what the
records of the routers that Inform say they lack.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection

from acsd.store.base import VERSION_CHARS, CpeIdentity

#: kinds of CPE remembered; beyond this the least recently used is forgotten
MAX_KINDS = 4096
#: names remembered per kind; a kind that goes past this starts over
MAX_NAMES = 1024
Kind = tuple[str, str, str, str]


def kind_of(profile: str, identity: CpeIdentity) -> Kind:
    """Routers that answer the same names alike: one profile, maker, model and firmware.
    The version is cut again here, as an identity may come from elsewhere than a session,
    so that MAX_KINDS keys stay small whatever CPEs send."""
    version = (identity.software_version or "")[:VERSION_CHARS]
    return (profile, identity.oui, identity.product_class, version)


class AbsentHints:
    """Names that CPEs of a kind answered 9005 for, one set per kind."""

    def __init__(self, max_kinds: int = MAX_KINDS, max_names: int = MAX_NAMES) -> None:
        self.max_kinds = max_kinds
        self.max_names = max_names
        self._kinds: OrderedDict[Kind, frozenset[str]] = OrderedDict()
        #: kinds whose CPEs answer a partial path with the object alone (read_phase)
        self._shallow: OrderedDict[Kind, None] = OrderedDict()
        #: the top-level objects (of those read) that a listing of the data model's root
        #: by a CPE of the kind did not show; a kind whose CPEs were never listed is absent
        self._tops: OrderedDict[Kind, frozenset[str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kinds)

    def get(self, kind: Kind) -> frozenset[str]:
        names = self._kinds.get(kind)
        if names is None:
            return frozenset()
        self._kinds.move_to_end(kind)
        return names

    def absent(self, kind: Kind, names: Collection[str]) -> None:
        """CPEs of ``kind`` lack ``names`` (one of them just answered 9005 for each); read
        more than once, so a collection, not an iterator."""
        known = self._kinds.get(kind, frozenset())
        if not known.issuperset(names):  # the common case, every periodic session: no copy
            more = known.union(names)
            if len(more) > self.max_names:
                # Names with the CPE's own instance numbers (a read plan's leaves that
                # faulted alone), new at every session of a CPE that keeps making new
                # ones: a kind's names are hints, so they start over rather than grow.
                more = frozenset(list(names)[: self.max_names])
            self._store(kind, more)

    def present(self, kind: Kind, names: Collection[str]) -> None:
        """A CPE of ``kind`` has ``names`` after all: stop asking for them apart."""
        known = self._kinds.get(kind)
        if known and not known.isdisjoint(names):
            self._store(kind, known.difference(names))

    def shallow(self, kind: Kind) -> None:
        """CPEs of ``kind`` do not expand partial paths: the next one's first read lists
        the names below them instead of asking for them (and getting the object alone)."""
        self._shallow[kind] = None
        self._shallow.move_to_end(kind)
        while len(self._shallow) > self.max_kinds:
            self._shallow.popitem(last=False)

    def is_shallow(self, kind: Kind) -> bool:
        return kind in self._shallow

    def tops_lacking(self, kind: Kind) -> frozenset[str] | None:
        """The top-level objects CPEs of ``kind`` lacked when one was listed; None when
        none was (what a name was lacked for, the object or the name alone, is unknown)."""
        return self._tops.get(kind)

    def listed_tops(self, kind: Kind, lacking: Collection[str], there: Collection[str]) -> None:
        """A listing of the root by a CPE of ``kind`` lacked ``lacking`` and showed
        ``there`` (the top-level objects of the names being read)."""
        known = self._tops.get(kind, frozenset())
        tops = known.difference(there).union(lacking)
        if len(tops) > self.max_names:
            tops = frozenset(list(lacking)[: self.max_names])
        self._tops[kind] = tops
        self._tops.move_to_end(kind)
        while len(self._tops) > self.max_kinds:
            self._tops.popitem(last=False)

    def _store(self, kind: Kind, names: frozenset[str]) -> None:
        self._kinds[kind] = names
        self._kinds.move_to_end(kind)
        while len(self._kinds) > self.max_kinds:
            self._kinds.popitem(last=False)
