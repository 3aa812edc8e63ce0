"""SOAP 1.1 envelopes for CWMP on lxml: a hardened parser and a fast, strict serialiser.

Parsing is lenient about what real CPEs get wrong (any prefix, ``cwmp:``-qualified children,
RPC elements in no namespace, missing ``xsi:type``, odd arrayType counts) and strict about
what could hurt us (DTDs and entities, depth, array sizes, bad numbers, bogus DeviceIds).

Rendering builds strings, not trees, because it runs for every message of every session; every
interpolated name and value goes through :func:`_esc`, and the result is ASCII only.

Both directions are driven by one table (``_FIELDS``): per message class, the dataclass
attribute, the wire element name and a codec ("kind") for it, in TR-069 order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from typing import Any, NamedTuple

from lxml import etree

from acsd.charsets import mixed_utf8
from acsd.cwmp import rpc
from acsd.cwmp.rpc import DEFAULT_NAMESPACE, Message
from acsd.shared_names import share, shared_lookup
from acsd.xmlsafe import NOT_XML as _NOT_XML
from acsd.xmlsafe import declared_encoding, has_dtd, parse_errors, parse_xml

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENC_NS = "http://schemas.xmlsoap.org/soap/encoding/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

#: Upper bound on the entries of any one array (ParameterList, ParameterNames, ...). A full
#: TR-181 tree is a few ten thousand parameters; more than this is an attack or a bug.
MAX_ARRAY_ITEMS = 100_000

_ENVELOPE = f"{{{SOAP_ENV_NS}}}Envelope"
_HEADER = f"{{{SOAP_ENV_NS}}}Header"
_BODY = f"{{{SOAP_ENV_NS}}}Body"
_XSI_TYPE = f"{{{XSI_NS}}}type"
_CWMP_STEM = "urn:dslforum-org:cwmp-"
_CWMP_SET = frozenset(rpc.CWMP_NAMESPACES)

_INT_TEXT = re.compile(r"[+-]?[0-9]{1,20}")
_BOOL_TEXT = {"1": True, "0": False, "true": True, "false": False}
_OUI = re.compile(r"[0-9A-F]{6}")
_OUI_SEPARATORS = re.compile(r"[-:. ]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Characters that need work in text; _NOT_XML (xmlsafe) is the subset XML 1.0 cannot carry (not
# even as a character reference), which we refuse rather than emit a broken document.
_TEXT_SPECIAL = re.compile(r"[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ATTR_SPECIAL = re.compile(r"[&<>\"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_TAKEN_PREFIXES = frozenset({"cwmp", "soap-enc", "xsd", "xsi", "xmlns", "xml"})


@dataclass(slots=True)
class Envelope:
    """One SOAP envelope: the single Body child plus the CWMP header fields."""

    body: Message
    cwmp_ns: str = DEFAULT_NAMESPACE
    id: str | None = None
    hold_requests: bool | None = None
    session_timeout: int | None = None
    supported_versions: str | None = None
    use_version: str | None = None
    no_more_requests: bool | None = None
    #: the CPE sent bytes that are not UTF-8 in a UTF-8 envelope (an SSID or a name in
    #: Latin-1 or GBK); each such byte was read as U+FFFD
    repaired_utf8: bool = False
    #: the CPE sent characters XML 1.0 cannot carry (control characters in a LAN host's
    #: name or an SSID), raw or as character references; each was read as U+FFFD
    repaired_chars: bool = False
    #: the bytes of the (inflated) body it was parsed from; 0 for one built here
    size: int = field(default=0, compare=False)


class SoapError(Exception):
    """The body is not a CWMP envelope acsd can accept. ``fault_code`` is the ACS fault to
    answer with (8002/8003/8004) when an answer makes sense, or None for a plain HTTP 400.

    None is used when the bytes are not a (supported) CWMP envelope at all: empty, malformed
    XML, a DTD, a non-SOAP root, an unknown cwmp namespace. Problems inside a well-formed
    envelope (Body shape, field values, DeviceId) get 8003, oversized arrays 8004."""

    fault_code: int | None = 8003

    def __init__(self, reason: str, *, fault_code: int | None = 8003) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fault_code = fault_code
        #: set when the envelope got far enough to tell (for answering with a fault)
        self.cwmp_ns: str | None = None
        self.cwmp_id: str | None = None


class EmptyEnvelope(SoapError):
    """A SOAP Body with no element in it, or an envelope with no Body (a Header alone, or
    nothing): what some CPEs send for the empty message that TR-069 defines as an empty
    HTTP POST. The ACS takes it for one."""


# --- text out -------------------------------------------------------------------------------


def sendable(text: str) -> bool:
    """True when ``text`` can travel in an envelope (XML 1.0 has no way to carry most
    control characters, lone surrogates, U+FFFE and U+FFFF)."""
    return _NOT_XML.search(text) is None


def _esc(s: str) -> str:
    if _TEXT_SPECIAL.search(s) is None:
        return s
    if _NOT_XML.search(s) is not None:
        raise ValueError(f"character not representable in XML 1.0: {s[:60]!r}")
    # A literal CR would be normalised to LF by the receiving parser; a reference survives.
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _esc_attr(s: str) -> str:
    if _ATTR_SPECIAL.search(s) is None:
        return s
    if _NOT_XML.search(s) is not None:
        raise ValueError(f"character not representable in XML 1.0: {s[:60]!r}")
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    # Attribute-value normalisation would turn these into spaces.
    return s.replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;")


def _int_text(v: Any) -> str:
    return _esc(v.strip()) if isinstance(v, str) else str(int(v))


def _bool_text(v: Any) -> str:
    # A caller may pass "1"/"0" for CPEs that want them (GenieACS's cwmp.booleanLiteral).
    if isinstance(v, str):
        return _esc(v)
    return "true" if v else "false"


def _flag_text(v: Any) -> str:
    """A header flag (HoldRequests, NoMoreRequests) as 1 or 0: both are xsd:boolean, and
    the C stacks read these with atoi(), which takes "true" for 0 (easycwmp's src/xml.c
    xml_get_hold_request, icwmp's xml.c xml_send_message)."""
    if isinstance(v, str):
        return _esc(v)
    return "1" if v else "0"


def _value_text(v: Any) -> str:
    # ParameterValue.value is a str by contract; be forgiving with callers building SPVs.
    if type(v) is str:
        return _esc(v)
    if v is None:
        return ""
    return _bool_text(v) if isinstance(v, bool) else _esc(str(v))


# --- text in --------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag[tag.rfind("}") + 1 :]


def _ns(tag: str) -> str:
    return tag[1 : tag.index("}")] if tag[:1] == "{" else ""


def _elements(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if type(c.tag) is str]


def _children(el: etree._Element) -> dict[str, etree._Element]:
    """Element children by local name; the first of duplicates wins."""
    kids: dict[str, etree._Element] = {}
    # _elements and _local inlined: this runs for every struct of every message.
    for c in el:
        tag = c.tag
        if type(tag) is str:
            tag = tag[tag.rfind("}") + 1 :]
            if tag not in kids:
                kids[tag] = c
    return kids


def _text(el: etree._Element) -> str:
    """The text of a value element. ``el.text`` is only what comes before a child, and the
    parser drops comments and PIs, so a child is an element: not a value at all
    (``<SerialNumber>X<b/>1</SerialNumber>`` is not the serial "X")."""
    if len(el):
        raise SoapError(f"<{_local(el.tag)}> holds an element, not text")
    return el.text or ""


def _p_token(el: etree._Element) -> str:
    return _text(el).strip()


def _p_int(el: etree._Element) -> int:
    text = _text(el).strip()
    # int() alone would take "1_000", non-ASCII digits and thousands of digits.
    if _INT_TEXT.fullmatch(text) is None:
        raise SoapError(f"<{_local(el.tag)}> is not an integer: {text[:40]!r}")
    return int(text)


def _p_count(el: etree._Element) -> int:
    """A number the ACS only takes note of, which some firmware sends empty
    (``<RetryCount/>``): an Inform's MaxEnvelopes and RetryCount (current amendments fix
    MaxEnvelopes at 1 and have the receiver ignore it), a (Autonomous)TransferComplete's
    FaultCode and FileSize, and the Status of an answer to a change (see _CHANGE_STATUS).
    Empty reads as 0 rather than failing the message: a CPE must send an unacknowledged
    TransferComplete again at every session, so refusing it would refuse that CPE for good."""
    return _p_int(el) if (el.text or "").strip() or len(el) else 0


def _p_note(el: etree._Element) -> int:
    """An Inform's MaxEnvelopes or RetryCount: read, never acted on (MaxEnvelopes is fixed
    at 1; RetryCount only counts the router's retries). What is no integer reads as 0
    rather than refusing the Inform, which would refuse that router at every session."""
    try:
        return _p_count(el)
    except SoapError:
        return 0


def _p_bool(el: etree._Element) -> bool:
    text = _text(el).strip()
    value = _BOOL_TEXT.get(text.lower())
    if value is None:
        raise SoapError(f"<{_local(el.tag)}> is not a boolean: {text[:40]!r}")
    return value


# --- kinds: how one wire element maps to one Python value -----------------------------------


class _Kind(NamedTuple):
    parse: Callable[[etree._Element], Any]
    render: Callable[[list[str], str, Any, bool], None]  # (out, tag, value, typed_values)
    empty: Callable[[], Any]  # value for a required field whose element is missing


def _scalar(
    parse: Callable[[etree._Element], Any], text: Callable[[Any], str], empty: Callable[[], Any]
) -> _Kind:
    def render(out: list[str], tag: str, v: Any, typed: bool) -> None:
        out.append(f"<{tag}>{text(v)}</{tag}>")

    return _Kind(parse, render, empty)


# Free text is kept verbatim (an SSID or a CommandKey may end in a space); identifiers, URLs,
# times and numbers are stripped so that pretty-printed envelopes parse the same.
_STR = _scalar(_text, _esc, str)
_TOKEN = _scalar(_p_token, _esc, str)
_INT = _scalar(_p_int, _int_text, int)
_BOOL = _scalar(_p_bool, _bool_text, bool)
_COUNT = _scalar(_p_count, _int_text, int)
_NOTE = _scalar(_p_note, _int_text, int)

_Spec = tuple[tuple[str, str, _Kind], ...]


def _array(
    array_type: str,
    item_tag: str,
    item: _Kind,
    parse_items: Callable[[etree._Element], list[Any]] | None = None,
) -> _Kind:
    """A SOAP-encoded array. Counts in arrayType are never checked on input (CPEs send
    ``[0008]``, wrong counts or none) and always exact on output. ``parse_items`` replaces
    the per-item loop (after the size check) for arrays hot enough to deserve one."""
    parse_item = item.parse

    def parse(el: etree._Element) -> list[Any]:
        if len(el) > MAX_ARRAY_ITEMS:
            limit = f"<{_local(el.tag)}> has more than {MAX_ARRAY_ITEMS} entries"
            raise SoapError(limit, fault_code=8004)
        if parse_items is not None:
            return parse_items(el)
        return [parse_item(c) for c in el if type(c.tag) is str]

    def render(out: list[str], tag: str, items: Any, typed: bool) -> None:
        out.append(f'<{tag} soap-enc:arrayType="{array_type}[{len(items)}]">')
        for it in items:
            item.render(out, item_tag, it, typed)
        out.append(f"</{tag}>")

    return _Kind(parse, render, list)


def _struct(cls: type, spec: _Spec) -> _Kind:
    """Named children mapped onto a dataclass. A missing element takes the dataclass default,
    or the kind's empty value when the field has none."""
    required = {f.name for f in fields(cls) if f.default is f.default_factory is MISSING}
    # (attr, tag, parse, empty or None when the dataclass default applies), resolved once
    plan = tuple(
        (attr, tag, kind.parse, kind.empty if attr in required else None)
        for attr, tag, kind in spec
    )

    def parse(el: etree._Element) -> Any:
        kids = _children(el)
        kw: dict[str, Any] = {}
        for attr, tag, parse_one, empty in plan:
            c = kids.get(tag)
            if c is not None:
                kw[attr] = parse_one(c)
            elif empty is not None:
                kw[attr] = empty()
        return cls(**kw)

    def render(out: list[str], tag: str, obj: Any, typed: bool) -> None:
        out.append(f"<{tag}>")
        for attr, child_tag, kind in spec:
            kind.render(out, child_tag, getattr(obj, attr), typed)
        out.append(f"</{tag}>")

    return _Kind(parse, render, lambda: None)


def _xsd_type(t: str) -> str | None:
    # The prefix is whatever the CPE bound to XML Schema (xsd, xs, none ...).
    t = t.strip()
    return "xsd:" + t[t.rfind(":") + 1 :] if t else None


# What nearly every CPE sends, already normalised: a dictionary hit instead of strip, slice and
# concatenation per value, and one shared string object instead of one per parameter.
_COMMON_TYPES = (
    "string",
    "boolean",
    "int",
    "unsignedInt",
    "long",
    "unsignedLong",
    "dateTime",
    "base64",
    "hexBinary",
)
_XSD_TYPES = {f"xsd:{t}": f"xsd:{t}" for t in _COMMON_TYPES}


_XML_BLANKS = " \t\r\n"


def _unindent(text: str) -> str:
    """A value's text without the indentation that firmware pretty-printing its SOAP puts
    around it (``<Value>\\n      SkyNet\\n    </Value>``): white space with a line break in it,
    at either end. Spaces alone at an end are the value's own (an SSID " Cafe "; after a
    line break they cannot be told from the indentation). No SSID or name holds a line
    break, and taken for part of the value the indentation made acsd write the value
    again at every session."""
    start = len(text) - len(text.lstrip(_XML_BLANKS))
    if "\n" in text[:start]:
        text = text[start:]
    end = len(text.rstrip(_XML_BLANKS))
    if "\n" in text[end:]:
        text = text[:end]
    return text


# ParameterValueStruct is by far the most frequent structure (a GPV answer carries ~100, the
# Inform ~15), so its arrays get a hand-written loop instead of the generic struct codec.
def _p_pvs(structs: Iterable[etree._Element]) -> list[rpc.ParameterValue]:
    """Unknown children are ignored and the last of duplicate Name/Value children wins; a
    missing Name or Value reads as "", a missing or empty xsi:type as None. A Value is
    taken as sent, but for indentation around it (:func:`_unindent`)."""
    out = []
    append = out.append
    for el in structs:
        if len(el) == 2:
            # What every CPE sends: <Name> and <Value>, text only, in that order. Indexing
            # skips the child iterator and the loop below (a quarter of parsing a GPV answer).
            n, v = el[0], el[1]
            if n.tag == "Name" and v.tag == "Value" and not len(n) and not len(v):
                name = (n.text or "").strip()
                value = v.text or ""
                if "\n" in value:
                    value = _unindent(value)
                t = v.get(_XSI_TYPE)
                append(
                    rpc.ParameterValue(
                        shared_lookup(name) or share(name),
                        value,
                        None if t is None else _XSD_TYPES.get(t) or _xsd_type(t),
                    )
                )
                continue
        if type(el.tag) is not str:
            continue
        name, value, vtype = "", "", None
        for c in el:
            tag = c.tag
            # The exact tags are what CPEs send; only otherwise pay for the local name
            # (cwmp:Name, a default namespace) or skip a non-element.
            if tag != "Name" and tag != "Value":
                if type(tag) is not str:
                    continue
                tag = tag[tag.rfind("}") + 1 :]
            # _text(c) written out for the text-only element every CPE sends: a call per
            # Name and Value is ~5 % of parsing a GPV answer; an element with children
            # still goes through _text, which refuses it.
            if tag == "Name":
                # shared: the same few hundred names arrive from every CPE, and the
                # sessions held open keep one copy (see acsd.shared_names)
                name = share(((c.text or "") if not len(c) else _text(c)).strip())
            elif tag == "Value":
                value = (c.text or "") if not len(c) else _text(c)
                if "\n" in value:  # (the parser made every line break of the text a \n)
                    value = _unindent(value)
                t = c.get(_XSI_TYPE)
                vtype = None if t is None else _XSD_TYPES.get(t) or _xsd_type(t)
        append(rpc.ParameterValue(name, value, vtype))
    return out


def _p_pv(el: etree._Element) -> rpc.ParameterValue:
    # One struct on its own (the item codec of _PVS); arrays go through _p_pvs directly.
    return _p_pvs((el,))[0]


def _r_pv(out: list[str], tag: str, p: rpc.ParameterValue, typed: bool) -> None:
    value = _value_text(p.value)
    if typed:
        vtype = _esc_attr(p.type or "xsd:string")
        out.append(
            f'<{tag}><Name>{_esc(p.name)}</Name><Value xsi:type="{vtype}">{value}</Value></{tag}>'
        )
    else:
        out.append(f"<{tag}><Name>{_esc(p.name)}</Name><Value>{value}</Value></{tag}>")


def _p_arg(el: etree._Element) -> tuple[str, str]:
    kids = _children(el)
    name, value = kids.get("Name"), kids.get("Value")
    return (_p_token(name) if name is not None else "", _text(value) if value is not None else "")


def _r_arg(out: list[str], tag: str, arg: tuple[str, str], typed: bool) -> None:
    out.append(f"<{tag}><Name>{_esc(arg[0])}</Name><Value>{_esc(arg[1])}</Value></{tag}>")


# fmt: off
_STRINGS = _array("xsd:string", "string", _TOKEN)
_PVS = _array(
    "cwmp:ParameterValueStruct", "ParameterValueStruct", _Kind(_p_pv, _r_pv, list), _p_pvs)
_ARGS = _array("cwmp:ArgStruct", "ArgStruct", _Kind(_p_arg, _r_arg, tuple))
_EVENTS = _array("cwmp:EventStruct", "EventStruct", _struct(rpc.EventStruct, (
    ("code", "EventCode", _TOKEN), ("command_key", "CommandKey", _STR))))
_INFOS = _array("cwmp:ParameterInfoStruct", "ParameterInfoStruct", _struct(rpc.ParameterInfo, (
    ("name", "Name", _TOKEN), ("writable", "Writable", _BOOL))))
_ATTRS = _array("cwmp:ParameterAttributeStruct", "ParameterAttributeStruct", _struct(
    rpc.ParameterAttribute, (
        ("name", "Name", _TOKEN), ("notification", "Notification", _INT),
        ("access_list", "AccessList", _STRINGS))))
_SET_ATTRS = _array("cwmp:SetParameterAttributesStruct", "SetParameterAttributesStruct", _struct(
    rpc.SetParameterAttributesStruct, (
        ("name", "Name", _TOKEN), ("notification_change", "NotificationChange", _BOOL),
        ("notification", "Notification", _INT),
        ("access_list_change", "AccessListChange", _BOOL),
        ("access_list", "AccessList", _STRINGS))))
_DEVICE_ID = _struct(rpc.DeviceId, (
    ("manufacturer", "Manufacturer", _TOKEN), ("oui", "OUI", _TOKEN),
    ("product_class", "ProductClass", _TOKEN), ("serial_number", "SerialNumber", _TOKEN)))
_FAULT_STRUCT = _struct(rpc.FaultStruct, (
    ("code", "FaultCode", _COUNT), ("string", "FaultString", _STR)))
_SPV_FAULT = _struct(rpc.SetParameterValuesFault, (
    ("name", "ParameterName", _TOKEN), ("code", "FaultCode", _INT),
    ("string", "FaultString", _STR)))

_STATUS: _Spec = (("status", "Status", _INT),)
#: The Status of a change's answer (SPV, AddObject, DeleteObject), where 1 only adds "takes
#: effect after a reboot": many CPEs send it empty, and failing the answer would leave a
#: change the CPE did make recorded as failed. An empty one reads as 0. Download and Upload
#: keep _STATUS: there 0 claims the transfer is done, which an empty element does not say.
_CHANGE_STATUS: _Spec = (("status", "Status", _COUNT),)
_TIMES: _Spec = (("start_time", "StartTime", _TOKEN), ("complete_time", "CompleteTime", _TOKEN))
_OBJECT: _Spec = (("object_name", "ObjectName", _TOKEN), ("parameter_key", "ParameterKey", _STR))
_TRANSFER: _Spec = (
    ("command_key", "CommandKey", _STR), ("file_type", "FileType", _TOKEN),
    ("url", "URL", _TOKEN), ("username", "Username", _STR), ("password", "Password", _STR))

#: Body element fields per message class, in the order TR-069 defines them. Classes without
#: fields (GetRPCMethods, RebootResponse, ...) need no entry.
_FIELDS: dict[type[Message], _Spec] = {
    rpc.GetRPCMethodsResponse: (("methods", "MethodList", _STRINGS),),
    rpc.SetParameterValues: (
        ("parameters", "ParameterList", _PVS), ("parameter_key", "ParameterKey", _STR)),
    rpc.SetParameterValuesResponse: _CHANGE_STATUS,
    rpc.GetParameterValues: (("names", "ParameterNames", _STRINGS),),
    rpc.GetParameterValuesResponse: (("parameters", "ParameterList", _PVS),),
    rpc.GetParameterNames: (("path", "ParameterPath", _TOKEN), ("next_level", "NextLevel", _BOOL)),
    rpc.GetParameterNamesResponse: (("parameters", "ParameterList", _INFOS),),
    rpc.SetParameterAttributes: (("parameters", "ParameterList", _SET_ATTRS),),
    rpc.GetParameterAttributes: (("names", "ParameterNames", _STRINGS),),
    rpc.GetParameterAttributesResponse: (("parameters", "ParameterList", _ATTRS),),
    rpc.AddObject: _OBJECT,
    rpc.AddObjectResponse: (("instance_number", "InstanceNumber", _INT), *_CHANGE_STATUS),
    rpc.DeleteObject: _OBJECT,
    rpc.DeleteObjectResponse: _CHANGE_STATUS,
    rpc.Reboot: (("command_key", "CommandKey", _STR),),
    rpc.Download: (
        *_TRANSFER, ("file_size", "FileSize", _INT),
        ("target_file_name", "TargetFileName", _STR), ("delay_seconds", "DelaySeconds", _INT),
        ("success_url", "SuccessURL", _TOKEN), ("failure_url", "FailureURL", _TOKEN)),
    rpc.DownloadResponse: (*_STATUS, *_TIMES),
    rpc.Upload: (*_TRANSFER, ("delay_seconds", "DelaySeconds", _INT)),
    rpc.UploadResponse: (*_STATUS, *_TIMES),
    rpc.ScheduleInform: (
        ("delay_seconds", "DelaySeconds", _INT), ("command_key", "CommandKey", _STR)),
    rpc.Inform: (
        ("device_id", "DeviceId", _DEVICE_ID), ("events", "Event", _EVENTS),
        ("max_envelopes", "MaxEnvelopes", _NOTE), ("current_time", "CurrentTime", _TOKEN),
        ("retry_count", "RetryCount", _NOTE), ("parameters", "ParameterList", _PVS)),
    rpc.InformResponse: (("max_envelopes", "MaxEnvelopes", _INT),),
    rpc.TransferComplete: (
        ("command_key", "CommandKey", _STR), ("fault", "FaultStruct", _FAULT_STRUCT), *_TIMES),
    rpc.AutonomousTransferComplete: (
        ("announce_url", "AnnounceURL", _TOKEN), ("transfer_url", "TransferURL", _TOKEN),
        ("is_download", "IsDownload", _BOOL), ("file_type", "FileType", _TOKEN),
        ("file_size", "FileSize", _COUNT), ("target_file_name", "TargetFileName", _STR),
        ("fault", "FaultStruct", _FAULT_STRUCT), *_TIMES),
    rpc.RequestDownload: (
        ("file_type", "FileType", _TOKEN), ("file_type_args", "FileTypeArg", _ARGS)),
    rpc.DUStateChangeComplete: (("command_key", "CommandKey", _STR),),
    rpc.Kicked: (
        ("command", "Command", _STR), ("referer", "Referer", _STR), ("arg", "Arg", _STR),
        ("next", "Next", _STR)),
    rpc.KickedResponse: (("next_url", "NextURL", _STR),),
}

# (Envelope attribute, element, mustUnderstand, parse, text) in the order they are rendered.
_HEADER_FIELDS = (
    # The ID as sent, spaces and all: the CPE matches the echo against its own text.
    ("id", "ID", "1", _text, _esc),
    ("hold_requests", "HoldRequests", "1", _p_bool, _flag_text),
    ("session_timeout", "SessionTimeout", "0", _p_int, _int_text),
    ("supported_versions", "SupportedCWMPVersions", "0", _p_token, _esc),
    ("use_version", "UseCWMPVersion", "1", _p_token, _esc),
    ("no_more_requests", "NoMoreRequests", "0", _p_bool, _flag_text),
)
# fmt: on

# Lower-cased because GenieACS-era stacks send "sessionTimeout".
_HEADER_BY_NAME = {tag.lower(): (attr, parse) for attr, tag, _, parse, _ in _HEADER_FIELDS}

_MESSAGE_KINDS: dict[type[Message], _Kind] = {
    cls: _struct(cls, _FIELDS.get(cls, ()))
    for cls in rpc.MESSAGES.values()
    if cls in _FIELDS or not fields(cls)  # type: ignore[arg-type]
}


# --- parsing --------------------------------------------------------------------------------


#: a UTF-8 byte order mark, an XML declaration, or both, and nothing else but white space
#: and a C string's NUL
_BARE_PROLOGUE = re.compile(
    rb"(?:\xef\xbb\xbf)?[ \t\r\n]*(?:<\?xml[ \t\r\n][^<>]{0,200}\?>)?[ \t\r\n\x00]*"
)


def is_empty_body(data: bytes) -> bool:
    """True for the empty POST that ends a CPE's requests: nothing, white space only, a C
    string's NUL, or (firmware that writes every message through one function putting it
    first) a byte order mark or an XML declaration with nothing after it."""
    if not data or data.isspace():
        return True
    if data[-1] == 0 and not data.strip(b"\x00 \t\r\n"):  # a C string's NUL and no more
        return True
    # (a length check first: every real message is longer, and pays nothing more)
    return len(data) <= 256 and _BARE_PROLOGUE.fullmatch(data) is not None


#: what a serial number may not hold besides C0 controls: C1 controls (the API refuses
#: them in serial numbers too, so such a record could never be claimed) and U+FFFD, which
#: what is not UTF-8 or not XML was repaired to: routers whose serials differ only there
#: would share one record
_NOT_IN_SERIAL = re.compile("[\x80-\x9f\ufffd]")


def _check_inform(msg: rpc.Inform, legacy_bytes: bool = False) -> None:
    dev = msg.device_id
    if dev is None:
        raise SoapError("Inform without DeviceId")
    if not dev.serial_number:
        raise SoapError("Inform without DeviceId: empty SerialNumber")
    # The schema wants 6 upper-case hex digits; firmware sends lower case, "00-25-9E", or
    # nothing at all. Only the serial number is a key (OUI, manufacturer and product class
    # choose a profile), so the others are taken as they come, cut to the schema's 64
    # characters: refusing them would refuse that router at every session, for good.
    oui = dev.oui.upper()
    if _OUI.fullmatch(bare := _OUI_SEPARATORS.sub("", oui)) is not None:
        oui = bare
    dev.oui = oui[:64]
    dev.manufacturer = dev.manufacturer[:64]
    dev.product_class = dev.product_class[:64]
    if len(dev.serial_number) > 64:
        raise SoapError("DeviceId SerialNumber longer than 64 characters")
    # These end up in database keys, file names and log lines.
    for label, value in (
        ("OUI", dev.oui),
        ("Manufacturer", dev.manufacturer),
        ("ProductClass", dev.product_class),
        ("SerialNumber", dev.serial_number),
    ):
        if _CONTROL.search(value):
            raise SoapError(f"DeviceId {label} contains control characters")
    # Only the serial is the record's key: a repaired manufacturer stays readable.
    # (read from bytes that are not UTF-8, a serial is a guess at its own text)
    if _NOT_IN_SERIAL.search(dev.serial_number) or (
        legacy_bytes and not dev.serial_number.isascii()
    ):
        raise SoapError(
            "DeviceId SerialNumber holds a control character, or bytes that are not UTF-8 or XML"
        )


def _cwmp_fault_element(fault: etree._Element) -> etree._Element | None:
    kids = _children(fault)
    if "FaultCode" in kids:  # a bare cwmp:Fault directly in the Body
        return fault
    detail = kids.get("detail")
    return None if detail is None else _children(detail).get("Fault")


def _parse_fault(el: etree._Element) -> rpc.Fault:
    kids = _children(el)
    faultcode = _p_token(kids["faultcode"]) if "faultcode" in kids else ""
    faultcode = faultcode.rpartition(":")[2] or "Client"  # "SOAP-ENV:Client" -> "Client"
    faultstring = _text(kids["faultstring"]) if "faultstring" in kids else ""
    cwmp_fault = _cwmp_fault_element(el)
    if cwmp_fault is None:
        digits = faultcode.isascii() and faultcode.isdigit() and len(faultcode) <= 9
        code = int(faultcode) if digits else 0
        return rpc.Fault(code=code, string=faultstring, faultcode=faultcode)
    detail = _children(cwmp_fault)
    spv_faults = [
        _SPV_FAULT.parse(c)
        for c in _elements(cwmp_fault)
        if _local(c.tag) == "SetParameterValuesFault"
    ]
    return rpc.Fault(
        code=_p_int(detail["FaultCode"]) if "FaultCode" in detail else 0,
        string=_text(detail["FaultString"]) if "FaultString" in detail else faultstring,
        faultcode=faultcode,
        spv_faults=spv_faults,
    )


def _find_namespace(body_el: etree._Element, header_id: etree._Element | None) -> str:
    carriers = [body_el]
    if _local(body_el.tag) == "Fault" and (detail := _cwmp_fault_element(body_el)) is not None:
        carriers.append(detail)
    if header_id is not None:
        carriers.append(header_id)
    for el in carriers:
        ns = _ns(el.tag)
        if ns in _CWMP_SET:
            return ns
        if ns.startswith(_CWMP_STEM):
            raise SoapError(f"unsupported CWMP namespace {ns[:80]!r}", fault_code=None)
    # Some CPEs declare the namespace on the Envelope and then use unprefixed elements.
    unsupported = None
    for el in carriers:
        for ns in el.nsmap.values():
            if ns in _CWMP_SET:
                return ns
            if ns.startswith(_CWMP_STEM):
                unsupported = ns
    if unsupported is not None:
        raise SoapError(f"unsupported CWMP namespace {unsupported[:80]!r}", fault_code=None)
    return DEFAULT_NAMESPACE


def _header_id(header: etree._Element) -> etree._Element | None:
    """The cwmp:ID element (it carries the namespace the CPE speaks)."""
    return next((c for c in _elements(header) if _local(c.tag).lower() == "id"), None)


def _parse_header(header: etree._Element, env: Envelope) -> None:
    """Fill the header fields of ``env``. Only the ID is required to be readable: firmware
    sends the others empty (``<cwmp:NoMoreRequests/>``, deprecated anyway) or with odd
    values, and refusing the whole Inform for a hint acsd can do without would keep such
    a router out for good: an empty or unreadable one is taken as absent."""
    for c in _elements(header):
        entry = _HEADER_BY_NAME.get(_local(c.tag).lower())
        if entry is None:
            continue
        attr, parse = entry
        if attr == "id":
            env.id = parse(c)
        elif (c.text or "").strip() and not len(c):
            try:
                setattr(env, attr, parse(c))
            except SoapError:
                continue


#: parse errors :func:`_parse_repaired` may cure: bytes that are not UTF-8, characters
#: (or references to characters) that XML 1.0 forbids, an "&" that starts no reference
_REPAIRABLE = frozenset(
    {
        etree.ErrorTypes.ERR_INVALID_ENCODING,
        etree.ErrorTypes.ERR_INVALID_CHAR,
        etree.ErrorTypes.ERR_ENTITYREF_SEMICOL_MISSING,  # "AT&T"
        etree.ErrorTypes.ERR_NAME_REQUIRED,  # "Tom & Jerry"
        etree.ErrorTypes.ERR_UNDECLARED_ENTITY,  # "M&M;", "&nbsp;"
    }
)


def _read_as_utf8(data: bytes) -> bool:
    """Whether the parser read ``data`` as UTF-8 (it fixes no other encoding)."""
    return declared_encoding(data) in (None, "utf-8", "utf8")


#: a character reference, decimal or hexadecimal, of any length (one with more digits than
#: any character has refers to none: U+FFFD, as one past U+10FFFF)
_CHAR_REF = re.compile(r"&#(?:x([0-9A-Fa-f]+)|([0-9]+));")
#: an "&" that starts neither one of XML's five entity references nor a character
#: reference: embedded SOAP stacks write an SSID or a host name such as "AT&T" as it is
#: (a reference of any length stays one, repaired by _CHAR_REF: "&#99999999999;" in a
#: serial number was kept as that text)
_BARE_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);)")


def _parse_repaired(data: bytes) -> tuple[etree._Element, bool, bool]:
    """``data`` (read as UTF-8) parsed with its bytes that are not UTF-8 read as
    Windows-1252 (charsets.mixed_utf8: a Latin-1 SSID is its text, a GBK one kept
    whole), and what XML 1.0 cannot hold read as U+FFFD: characters XML forbids, and
    references to such characters; and whether there were any of the first, and of the
    other two. An "&" that starts no
    reference is read as the "&" it is meant to be."""
    try:
        text, bad_utf8 = data.decode("utf-8"), False
    except UnicodeDecodeError:
        text, bad_utf8 = mixed_utf8(data), True
    text, raw = _NOT_XML.subn("\ufffd", text)
    refs = 0

    def char_ref(ref: re.Match[str]) -> str:
        nonlocal refs
        hexa, decimal = ref.groups()
        digits = (hexa or decimal).lstrip("0") or "0"
        # (no int() of thousands of digits: it refuses past 4,300)
        code = 0x110000 if len(digits) > 8 else int(digits, 16 if hexa is not None else 10)
        if code <= 0x10FFFF and _NOT_XML.match(chr(code)) is None:
            return ref.group(0)
        refs += 1
        return "\ufffd"

    text = _BARE_AMPERSAND.sub("&amp;", _CHAR_REF.sub(char_ref, text))
    try:
        root = parse_xml(text.encode())
    except (etree.XMLSyntaxError, ValueError) as e:
        raise SoapError(f"malformed XML: {e}", fault_code=None) from None
    return root, bad_utf8, raw + refs > 0


_UTF8_BOM = b"\xef\xbb\xbf"
_XML_SPACE = b" \t\r\n"


def _declaration_first(data: bytes) -> bytes | None:
    """``data`` without the white space before its XML declaration (after a UTF-8 byte
    order mark, if any), which XML forbids there; None when there is none to remove."""
    mark = _UTF8_BOM if data.startswith(_UTF8_BOM) else b""
    rest = data[len(mark) :]
    trimmed = rest.lstrip(_XML_SPACE)
    if len(trimmed) == len(rest) or not trimmed.startswith(b"<?xml"):
        return None
    return mark + trimmed


#: prefixes CPEs use without declaring them, and the one namespace each can mean
_USUAL_PREFIXES = {
    "xsi": XSI_NS,
    "xsd": XSD_NS,
    "SOAP-ENC": SOAP_ENC_NS,
    "soap-enc": SOAP_ENC_NS,
    "soapenc": SOAP_ENC_NS,
    "SOAP-ENV": SOAP_ENV_NS,
    "soap-env": SOAP_ENV_NS,
    "soapenv": SOAP_ENV_NS,
}
_UNDEFINED_PREFIX = re.compile(r"Namespace prefix ([A-Za-z_][\w.-]*) .*is not defined")
_ROOT_TAG = re.compile(rb"<(?![?!])[^\s/>]+")


def _declare_usual_prefixes(data: bytes, errors: etree._ListErrorLog) -> bytes | None:
    """``data`` with the namespaces of the usual prefixes it uses undeclared (firmware that
    writes ``xsi:type`` or ``SOAP-ENC:arrayType`` with no ``xmlns:xsi``) declared on its
    root element; None if there were other errors. Raises :class:`SoapError` naming an
    undeclared prefix whose namespace cannot be guessed."""
    missing = set()
    for error in errors:
        if error.type != etree.ErrorTypes.NS_ERR_UNDEFINED_NAMESPACE:
            return None
        found = _UNDEFINED_PREFIX.search(error.message)
        if found is None:
            return None
        if found.group(1) not in _USUAL_PREFIXES:
            raise SoapError(f"malformed XML: {error.message} (line {error.line})", fault_code=None)
        missing.add(found.group(1))
    root = _ROOT_TAG.search(data) if _read_as_utf8(data) else None
    if not missing or root is None:
        return None
    declared = "".join(f' xmlns:{p}="{_USUAL_PREFIXES[p]}"' for p in sorted(missing))
    return data[: root.end()] + declared.encode() + data[root.end() :]


def _bodyless(root: etree._Element) -> SoapError:
    """What an envelope without a Body is: with at most a Header in it (some CPEs send their
    cwmp:HoldRequests or NoMoreRequests so, for the empty POST), the empty message, as an
    empty Body is; with anything else in it (an RPC outside the Body, a second Header, text),
    a malformed envelope."""
    kids = _elements(root)
    if (
        len(kids) > 1
        or any(c.tag != _HEADER for c in kids)
        or (root.text or "").strip()
        or any((c.tail or "").strip() for c in root)
    ):
        return SoapError("no SOAP Body")
    return _empty_message(kids[0] if kids else None, "no SOAP Body")


def _empty_message(header: etree._Element | None, reason: str) -> SoapError:
    """The empty message (a Header alone, or with an empty Body): EmptyEnvelope, unless
    its Header speaks a CWMP version acsd does not, which is refused (plain 400) as in
    any other message, whether or not a Body follows it."""
    for c in _elements(header) if header is not None else ():
        ns = _ns(c.tag)
        if ns.startswith(_CWMP_STEM) and ns not in _CWMP_SET:
            return SoapError(f"unsupported CWMP namespace {ns[:80]!r}", fault_code=None)
    return EmptyEnvelope(reason)


def parse_envelope(data: bytes) -> Envelope:
    """Decode one CWMP envelope. Raises :class:`SoapError` for anything unacceptable; an
    unknown Body element is not an error but an :class:`rpc.UnknownMessage`."""
    if isinstance(data, str):
        raise TypeError("parse_envelope takes bytes: the XML declaration decides the encoding")
    if type(data) is not bytes:
        data = bytes(data)  # bytearray, memoryview
    if is_empty_body(data):
        raise SoapError("empty body", fault_code=None)
    # CWMP never needs a DTD; refusing it up front rules out XXE and entity expansion. The
    # one-byte memchr for "!" is ~30x faster than has_dtd's two-byte scan for "<!" and rules
    # out most envelopes (~15 us saved on a 14 KB GPV answer).
    if b"!" in data and has_dtd(data):
        raise SoapError("DOCTYPE not allowed", fault_code=None)
    if data[-1] == 0 and data[:2] not in (b"\xff\xfe", b"\xfe\xff"):
        # C firmware that sends its string buffer with the terminating NUL (not in UTF-16,
        # whose last character ends in a zero byte).
        data = data.rstrip(b"\x00")
    repaired = repaired_chars = False
    try:
        root = parse_xml(data)
    except etree.XMLSyntaxError as e:
        if e.code == etree.ErrorTypes.NS_ERR_UNDEFINED_NAMESPACE and (
            # the parser's log holds this parse's errors; the exception's, every one so far
            declared := _declare_usual_prefixes(data, parse_errors())
        ):
            return parse_envelope(declared)
        if e.code == etree.ErrorTypes.ERR_RESERVED_XML_NAME and (
            # firmware whose message template begins with a line break
            trimmed := _declaration_first(data)
        ):
            return parse_envelope(trimmed)
        if e.code not in _REPAIRABLE or not _read_as_utf8(data):
            raise SoapError(f"malformed XML: {e}", fault_code=None) from None
        # Routers send an SSID or a WAN name in Latin-1 or GBK inside a UTF-8 envelope,
        # and a LAN host's name or an SSID with control characters in it (raw or as
        # "&#1;"), which XML 1.0 cannot carry: refusing the message would refuse the
        # router at every session, for good. What is bad becomes U+FFFD; the rest stands.
        root, repaired, repaired_chars = _parse_repaired(data)
    except ValueError as e:
        raise SoapError(f"malformed XML: {e}", fault_code=None) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # e.g. hidden in UTF-16
        raise SoapError("DOCTYPE not allowed", fault_code=None)
    if root.tag != _ENVELOPE:
        raise SoapError("not a SOAP envelope", fault_code=None)

    header = body = None
    for c in root:
        if c.tag == _BODY:
            if body is not None:
                raise SoapError("more than one SOAP Body")
            body = c
        elif c.tag == _HEADER and header is None:
            header = c
    if body is None:
        raise _bodyless(root)
    rpc_els = _elements(body)
    if not rpc_els and not (body.text or "").strip():
        raise _empty_message(header, "SOAP Body must hold exactly one element, not 0")
    if len(rpc_els) != 1:
        raise SoapError(f"SOAP Body must hold exactly one element, not {len(rpc_els)}")
    rpc_el = rpc_els[0]

    env = Envelope(
        body=rpc.UnknownMessage(),
        repaired_utf8=repaired,
        repaired_chars=repaired_chars,
        size=len(data),
    )
    env.cwmp_ns = _find_namespace(rpc_el, _header_id(header) if header is not None else None)

    name = _local(rpc_el.tag)
    cls = rpc.MESSAGES.get(name)
    kind = _MESSAGE_KINDS.get(cls) if cls is not None else None
    try:
        if header is not None:
            _parse_header(header, env)
        if name == "Fault":
            env.body = _parse_fault(rpc_el)
        elif kind is None:
            env.body = rpc.UnknownMessage(name=name)
        else:
            env.body = kind.parse(rpc_el)
            if cls is rpc.Inform:
                _check_inform(env.body, repaired)
    except SoapError as exc:
        # The fault that answers a bad message must be in the namespace the CPE speaks.
        exc.cwmp_ns = env.cwmp_ns
        exc.cwmp_id = env.id
        raise
    return env


# --- rendering ------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _frame(prefix: str, ns: str) -> tuple[str, str]:
    """The constant text before the Header and after the Body child."""
    if _NCNAME.fullmatch(prefix) is None or prefix in _TAKEN_PREFIXES:
        raise ValueError(f"unusable SOAP envelope prefix {prefix!r}")
    head = (
        f'<{prefix}:Envelope xmlns:{prefix}="{SOAP_ENV_NS}" xmlns:soap-enc="{SOAP_ENC_NS}" '
        f'xmlns:xsd="{XSD_NS}" xmlns:xsi="{XSI_NS}" xmlns:cwmp="{_esc_attr(ns)}">'
    )
    return head, f"</{prefix}:Body></{prefix}:Envelope>"


@lru_cache(maxsize=64)
def _inform_response_frame(prefix: str, ns: str) -> tuple[str, str, str]:
    head, tail = _frame(prefix, ns)
    return (
        f'{head}<{prefix}:Header><cwmp:ID {prefix}:mustUnderstand="1">',
        f"</cwmp:ID></{prefix}:Header><{prefix}:Body><cwmp:InformResponse><MaxEnvelopes>",
        f"</MaxEnvelopes></cwmp:InformResponse>{tail}",
    )


def _render_fault(out: list[str], f: rpc.Fault, p: str) -> None:
    if not f.code:  # no CWMP fault to carry: SOAP's alone, as it is parsed
        out.append(
            f"<{p}:Fault><faultcode>{_esc(f.faultcode)}</faultcode>"
            f"<faultstring>{_esc(f.string)}</faultstring></{p}:Fault>"
        )
        return
    out.append(
        f"<{p}:Fault><faultcode>{_esc(f.faultcode)}</faultcode>"
        "<faultstring>CWMP fault</faultstring><detail><cwmp:Fault>"
        f"<FaultCode>{_int_text(f.code)}</FaultCode><FaultString>{_esc(f.string)}</FaultString>"
    )
    for spv_fault in f.spv_faults:
        _SPV_FAULT.render(out, "SetParameterValuesFault", spv_fault, True)
    out.append(f"</cwmp:Fault></detail></{p}:Fault>")


@lru_cache(maxsize=512)
def _gpv_body(names: tuple[str, ...]) -> str:
    """The Body child of a GetParameterValues (it has no values, so no ``xsi:type``)."""
    out: list[str] = []
    request = rpc.GetParameterValues(names=list(names))
    _MESSAGE_KINDS[rpc.GetParameterValues].render(out, "cwmp:GetParameterValues", request, True)
    return "".join(out)


def render_envelope(env: Envelope, *, prefix: str = "soap-env", typed_values: bool = True) -> bytes:
    """Encode one envelope as ASCII bytes without an XML declaration.

    ``prefix`` is the SOAP envelope prefix; ``typed_values=False`` leaves out ``xsi:type``
    on every Value, as some CPEs do. Raises ValueError for an UnknownMessage, a message class
    the codec has no mapping for, a bad prefix, or text XML 1.0 cannot carry."""
    body = env.body
    header = [
        f'<cwmp:{tag} {prefix}:mustUnderstand="{must}">{text(value)}</cwmp:{tag}>'
        for attr, tag, must, _, text in _HEADER_FIELDS
        if (value := getattr(env, attr)) is not None
    ]
    if type(body) is rpc.InformResponse and len(header) == 1 and env.id is not None:
        # The answer to every Inform: worth skipping the generic machinery for.
        head, middle, tail = _inform_response_frame(prefix, env.cwmp_ns)
        text = f"{head}{_esc(env.id)}{middle}{_int_text(body.max_envelopes)}{tail}"
        return text.encode("utf-8")

    head, tail = _frame(prefix, env.cwmp_ns)
    out = [head]
    if header:
        out.append(f"<{prefix}:Header>{''.join(header)}</{prefix}:Header>")
    out.append(f"<{prefix}:Body>")
    if type(body) is rpc.GetParameterValues:
        # Every periodic session asks its profile's same few dozen names again.
        out.append(_gpv_body(tuple(body.names)))
    elif type(body) is rpc.Fault:
        _render_fault(out, body, prefix)
    elif (kind := _MESSAGE_KINDS.get(type(body))) is not None:
        kind.render(out, f"cwmp:{body.METHOD}", body, typed_values)
    else:
        raise ValueError(f"cannot render {type(body).__name__}")
    out.append(tail)
    # Non-ASCII as UTF-8's bytes (the Content-Type's charset, and XML's default without a
    # declaration), not as character references: a router's minimal XML reader that
    # decodes only the five named entities broadcast "Caf&#233;" as its SSID, where it
    # passes UTF-8 through as the bytes they are (as GenieACS sends them).
    return "".join(out).encode("utf-8")
