"""Parameter names a CPE lists twice in one message (an Inform's ParameterList, a
GetParameterValuesResponse).

Firmware does: a parameter forced into every Inform that is also a value change, an
object asked for whose rows the stack walks twice. The same value twice is harmless; two
values for one name leave acsd to choose, and the choice is made here, once, for every
reader of the message: the last value listed wins (the one the CPE read last), at the place
of the name's first listing. Readers then see one value per name, so that "every name asked
has a value" counts names, not entries."""

from __future__ import annotations

from acsd.cwmp.rpc import ParameterValue

#: different values kept per name: enough to show the conflict (a CPE listing one name
#: ten thousand times with as many values costs no more than listing it three times)
_VALUES_KEPT = 3


def one_per_name(
    params: list[ParameterValue],
) -> tuple[list[ParameterValue], dict[str, list[str]]]:
    """``params`` with each name once (its last value, at its first place), and the names
    listed with different values, each with its values in the order sent. ``params``
    itself when no name is listed twice (what every CPE sends: one set, no copy)."""
    if len({p.name for p in params}) == len(params):
        return params, {}
    last: dict[str, ParameterValue] = {}
    seen: dict[str, list[str]] = {}
    for p in params:
        last[p.name] = p  # (insertion order: the first place of a name)
        values = seen.setdefault(p.name, [])
        if p.value not in values and len(values) < _VALUES_KEPT:
            values.append(p.value)
    conflicts = {name: values for name, values in seen.items() if len(values) > 1}
    return list(last.values()), conflicts
