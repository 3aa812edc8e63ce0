"""The DataContract XML of the APN API (seed 003), both ways.

.NET's DataContractSerializer writes every member of a contract (but a date never set:
see :meth:`Contract.answered`), in ordinal order of the
member names (base-class members first: the ``PBPRReturnOf...`` wrapper puts ``Data``
last), nulls as ``i:nil="true"``, enums by name, and dictionaries as
``KeyValueOfstringstring`` entries in the serialization Arrays namespace, whose prefix is
``d{depth}p1`` (``d2p1`` under the root, ``d3p1`` one level down). This module reads and
writes that form; the documents it exchanges with :mod:`acsd.api.apn` are the JSON ones
(enums as numbers, dates as strings), so one validation serves both formats.

Reading is strict about what matters (the root element, the contract namespace, values of
the member's type, no member twice) and reports the member path of a bad value; unknown
members are passed on so that validation reports them as it does for JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

from acsd.api.dotnet import INT32_MAX, INT32_MIN, int32
from acsd.log import peer_text
from acsd.xmlsafe import has_dtd, parse_xml, xml_text

NS = "http://schemas.datacontract.org/2004/07/AS.Models.API"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ARRAYS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
#: what .NET appends to a generic contract's name: a hash of its arguments' namespaces
#: (all of them AS.Models.API here, so one value)
GENERIC_SUFFIX = "7NMnQmOk"
#: the wrapper's own members, in the order DataContractSerializer writes them
WRAPPER_MEMBERS = (
    "Code",
    "ContinuationToken",
    "ErrorCode",
    "ErrorDescription",
    "ErrorSubCode",
    "Meta",
    "StatusUrl",
    "Success",
)
_NIL = f"{{{XSI}}}nil"
_KEY_VALUE = f"{{{ARRAYS}}}KeyValueOfstringstring"
_BOOLS = {"true": True, "1": True, "false": False, "0": False}

# One parser for the process, hardened like the CWMP one: no DTD, no entities, no network.


@dataclass(frozen=True)
class Enum:
    """An enumeration: names (as XML writes them) -> numbers (as JSON writes them)."""

    name: str
    values: Mapping[str, int]

    def name_of(self, number: int) -> str:
        for name, value in self.values.items():
            if value == number:
                return name
        return str(number)


@dataclass(frozen=True)
class Contract:
    """A data contract: its name and members in the JSON order; kinds are "str", "int",
    "bool", "date", "dict" (string -> string), an :class:`Enum` or another Contract."""

    name: str
    members: tuple[tuple[str, Any], ...]

    def kind(self, member: str) -> Any:
        for name, kind in self.members:
            if name == member:
                return kind
        return None

    @property
    def xml_order(self) -> list[str]:
        return sorted(name for name, _ in self.members)  # ordinal, as .NET sorts

    def answered(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """``doc`` as an answer carries it: a date never set (EndDate of a live device, a
        SIM's LastSync before any router saw it) left out, in JSON and XML alike.

        Why not null: the seed types them as a date (.NET DateTime), and a client typed from
        its sample (Json.NET, DataContractSerializer) throws on null or ``i:nil`` for a
        DateTime, while a member left out reads as its default everywhere (a DateTime? as
        null, a script's ``.get()`` as None). Not .NET's 0001-01-01 either: a client testing
        ``if EndDate`` would read every live device as removed."""
        return {
            name: value
            for name, value in doc.items()
            if value is not None or self.kind(name) != "date"
        }


class XmlBodyError(ValueError):
    """The document as a whole is unusable (not XML, a DTD, the wrong root)."""


class XmlFieldError(ValueError):
    """One member's value is not of its type; ``path`` is its dotted member path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def wrapper_name(contract: Contract, many: bool = False) -> str:
    return f"PBPRReturnOf{'ArrayOf' if many else ''}{contract.name}{GENERIC_SUFFIX}"


# --- reading ---------------------------------------------------------------------------------


def parse(data: bytes, contract: Contract) -> dict[str, Any]:
    """The document ``data`` (root ``contract.name`` in :data:`NS`) as a JSON-like dict."""
    if not data.strip():
        raise XmlBodyError("the request body is empty")
    # No DataContract document needs a DTD; refusing it first rules out XXE and expansion.
    if has_dtd(data):
        raise XmlBodyError("DOCTYPE is not allowed")
    try:
        root = parse_xml(data)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise XmlBodyError(str(exc)) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise XmlBodyError("DOCTYPE is not allowed")
    if root.tag != f"{{{NS}}}{contract.name}":
        raise XmlBodyError(
            f"the root element must be {contract.name} in namespace {NS} "
            f"(got {etree.QName(root).localname!r} in {etree.QName(root).namespace or 'none'})"
        )
    return _members(root, contract, "")


def _members(element: etree._Element, contract: Contract, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if (element.text or "").strip():
        raise XmlFieldError(prefix.rstrip(".") or contract.name, "text where members belong")
    for child in element:
        qname = etree.QName(child)
        path = prefix + qname.localname
        if qname.namespace != NS:
            raise XmlFieldError(path, f"members must be in namespace {NS}")
        if qname.localname in out:
            raise XmlFieldError(path, "given more than once")
        kind = contract.kind(qname.localname)
        if _is_nil(child):
            out[qname.localname] = None
        elif kind is None:
            out[qname.localname] = child.text or ""  # validation reports the unknown member
        else:
            out[qname.localname] = _value(child, kind, path)
        if (child.tail or "").strip():
            raise XmlFieldError(path, "text between members")
    return out


def _is_nil(element: etree._Element) -> bool:
    return element.get(_NIL, "").strip() in ("true", "1")


def _value(element: etree._Element, kind: Any, path: str) -> Any:
    if isinstance(kind, Contract):
        return _members(element, kind, path + ".")
    if kind == "dict":
        return _dictionary(element, path)
    if len(element):
        raise XmlFieldError(path, "a value was expected, not elements")
    text = element.text or ""
    if kind == "str":
        return text
    value = text.strip()  # xsd:dateTime, int, boolean and enums collapse their whitespace
    if kind == "date":
        return value
    if kind == "int":
        # XmlConvert.ToInt32: Int32 text, as Json.NET reads a numeric string (leading
        # zeros of any length; a value beyond Int32 was taken)
        if (number := int32(text)) is None:
            raise XmlFieldError(
                path, f"{peer_text(value)!r} is not an integer from {INT32_MIN} to {INT32_MAX}"
            )
        return number
    if kind == "bool":
        if value not in _BOOLS:
            raise XmlFieldError(path, f"{peer_text(value)!r} is not a boolean (true or false)")
        return _BOOLS[value]
    if isinstance(kind, Enum):
        for name, number in kind.values.items():
            if name.lower() == value.lower():
                return number
        names = ", ".join(kind.values)
        raise XmlFieldError(
            path, f"{peer_text(value)!r} is not one of the {kind.name} names: {names}"
        )
    raise AssertionError(f"unknown member kind {kind!r}")


def _dictionary(element: etree._Element, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if (element.text or "").strip():
        raise XmlFieldError(path, "text where KeyValueOfstringstring entries belong")
    for entry in element:
        if entry.tag != _KEY_VALUE:
            raise XmlFieldError(
                path, f"entries must be KeyValueOfstringstring in namespace {ARRAYS}"
            )
        parts: dict[str, Any] = {}
        for part in entry:
            name = etree.QName(part).localname
            if etree.QName(part).namespace != ARRAYS or name not in ("Key", "Value"):
                raise XmlFieldError(path, f"an entry holds Key and Value in namespace {ARRAYS}")
            if name in parts or len(part):
                raise XmlFieldError(path, f"an entry holds one {name} with text")
            parts[name] = None if _is_nil(part) else (part.text or "")
        if parts.get("Key") is None:
            raise XmlFieldError(path, "an entry without a Key")
        if parts["Key"] in out:
            raise XmlFieldError(f"{path}.{parts['Key']}", "the key is given more than once")
        out[parts["Key"]] = parts.get("Value")
    return out


# --- writing ---------------------------------------------------------------------------------


def wrapper_xml(envelope: Mapping[str, Any], contract: Contract, many: bool = False) -> bytes:
    """The ``PBPRReturnOf...`` document: the wrapper's members, then ``Data`` (one
    ``contract`` document, a list of them when ``many``, or nil)."""
    root = etree.Element(f"{{{NS}}}{wrapper_name(contract, many)}", nsmap={"i": XSI, None: NS})
    for member in WRAPPER_MEMBERS:
        value = envelope.get(member)
        if member == "Meta":
            _write_dict(root, member, value, depth=2)
        else:
            _write_scalar(root, member, value, "bool" if member == "Success" else "str")
    data = envelope.get("Data")
    if data is None:
        _nil(root, "Data")
    elif many:
        holder = etree.SubElement(root, f"{{{NS}}}Data")
        for item in data:
            _write_contract(holder, contract.name, item, contract, depth=3)
    else:
        _write_contract(root, "Data", data, contract, depth=2)
    return etree.tostring(root, encoding="utf-8", xml_declaration=False)


def _nil(parent: etree._Element, name: str) -> None:
    etree.SubElement(parent, f"{{{NS}}}{name}").set(_NIL, "true")


def _write_contract(
    parent: etree._Element, name: str, doc: Mapping[str, Any], contract: Contract, depth: int
) -> None:
    element = etree.SubElement(parent, f"{{{NS}}}{name}")
    for member in contract.xml_order:
        if member not in doc:  # (left out: Contract.answered)
            continue
        kind = contract.kind(member)
        value = doc[member]
        if value is None:
            _nil(element, member)
        elif isinstance(kind, Contract):
            _write_contract(element, member, value, kind, depth + 1)
        elif kind == "dict":
            _write_dict(element, member, value, depth + 1)
        else:
            _write_scalar(element, member, value, kind)


def _write_scalar(parent: etree._Element, name: str, value: Any, kind: Any) -> None:
    if value is None:
        _nil(parent, name)
        return
    element = etree.SubElement(parent, f"{{{NS}}}{name}")
    if isinstance(kind, Enum):
        element.text = kind.name_of(int(value))
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = xml_text(str(value))


def _write_dict(
    parent: etree._Element, name: str, value: Mapping[str, Any] | None, depth: int
) -> None:
    if value is None:
        _nil(parent, name)
        return
    prefix = f"d{depth}p1"
    element = etree.SubElement(parent, f"{{{NS}}}{name}", nsmap={prefix: ARRAYS})
    for key, item in value.items():
        entry = etree.SubElement(element, _KEY_VALUE)
        etree.SubElement(entry, f"{{{ARRAYS}}}Key").text = xml_text(str(key))
        part = etree.SubElement(entry, f"{{{ARRAYS}}}Value")
        if item is None:
            part.set(_NIL, "true")
        else:
            part.text = xml_text(str(item))
