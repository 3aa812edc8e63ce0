"""The APN API's JSON values as the seed's service reads them: converted to the member's
type where Json.NET's default JsonSerializer (ASP.NET Web API's JSON formatter) converts
them, so that a client written against that service is not refused here for a value it
takes there. Validation stays strict (``apn_wire.validated``); what no conversion applies
to is handed on as sent, and refused there as before.

What Json.NET 13's JsonTextReader converts (``ReadAsInt32``, ``ReadAsBoolean``,
``ReadAsString``; :mod:`acsd.api.dotnet` for the text rules):

========  ==================================================  =============================
member    converted                                            refused (as before)
========  ==================================================  =============================
int       a string holding an Int32: ``"5"``, ``" +05 "``       ``1.0``, ``"1.5"``, ``"1e1"``,
                                                               ``""``, ``true``
bool      a number (non-zero is true: ``1``, ``0``, ``2.5``);  ``"1"``, ``"yes"``, ``""``
          ``"true"``/``"false"`` in any case
string    a number, as its JSON text (``4511113333`` ->        objects, arrays
          ``"4511113333"``, ``1.50`` -> ``"1.50"``);
          ``true``/``false`` -> ``"true"``/``"false"``
enum      a string holding its number (``"1"``)                 (acsd: a number that is none
                                                               of its values, as before)
========  ==================================================  =============================

Dates (only reported members, taken and ignored) are left as they are: Json.NET reads no
number as a DateTime. ProvisioningMetaData's values are strings (``Dictionary<string,
string>``), converted as one. XML is read by DataContractSerializer's rules instead
(:mod:`acsd.api.apn_xml`: ``true``/``false``/``1``/``0``, Int32 text), as the seed's
service reads it.
"""

from __future__ import annotations

from typing import Any

from acsd.api import dotnet
from acsd.api.apn_xml import Contract, Enum


def as_dotnet_reads(document: dict[str, Any], contract: Contract) -> dict[str, Any]:
    """``document`` (member names already as ``contract`` spells them) with each value of
    a known member converted as Json.NET converts it to the member's type, where it does;
    every other value as it was."""
    out = dict(document)
    for name, value in document.items():
        kind = contract.kind(name)
        if kind is not None and value is not None:
            out[name] = _converted(value, kind)
    return out


def _converted(value: Any, kind: Any) -> Any:
    if isinstance(kind, Contract):
        return as_dotnet_reads(value, kind) if isinstance(value, dict) else value
    if kind == "str":
        return _as_text(value)
    if kind == "dict":
        if not isinstance(value, dict):
            return value
        return {key: None if item is None else _as_text(item) for key, item in value.items()}
    if kind == "int" or isinstance(kind, Enum):
        if isinstance(value, str) and (number := dotnet.int32(value)) is not None:
            return number
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):  # Convert.ToBoolean: non-zero is true
            return value != 0
        if isinstance(value, str) and (flag := dotnet.boolean(value)) is not None:
            return flag
    return value


def _as_text(value: Any) -> Any:
    """A JSON scalar as Json.NET's ReadAsString reads it: a number as its text as sent
    (``body.JsonInt``/``JsonFloat`` keep it), true/false as lower-case words."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return getattr(value, "text", None) or str(value)
    return value
