"""The APN API (seed 003) as its clients speak it: JSON, or DataContract XML written and read
here by hand (not with acsd's codec), so the tests check the wire form itself."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from lxml import etree

from apiclient import Api, Reply

NS = "http://schemas.datacontract.org/2004/07/AS.Models.API"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ARRAYS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
NIL = f"{{{XSI}}}nil"
WRAPPER_ORDER = [
    "Code", "ContinuationToken", "ErrorCode", "ErrorDescription", "ErrorSubCode", "Meta",
    "StatusUrl", "Success", "Data",
]  # fmt: skip
JSON_WRAPPER_ORDER = [
    "Success", "Meta", "Code", "ErrorCode", "Data", "ErrorSubCode", "ErrorDescription",
    "StatusUrl", "ContinuationToken",
]  # fmt: skip
#: APNDevice members in the seed's JSON order
JSON_DEVICE_ORDER = [
    "CLI", "SIMNumber", "SOC", "InternalSOC", "Description", "IPAddress", "StartDate",
    "EndDate", "FriendlyName", "Hints", "ProvisioningMetaData", "Status", "Version",
    "ActorStatus", "NetworkStatus", "Enabled", "LockIMEI", "IMEI", "LastSync",
    "LastConnected_Start", "LastConnected_End", "LastConnected_MCC", "LastConnected_MNC",
]  # fmt: skip
ENUMS = {
    "Status": {0: "pending", 1: "active", 2: "refused", 3: "deleted"},
    "ActorStatus": {0: "stable", 1: "pending", 10: "stalled"},
    "NetworkStatus": {0: "disconnected", 1: "connected", 10: "activation"},
}
_DICTS = {"Meta", "ProvisioningMetaData"}
_STRUCTS = {"Hints"}


def apns_path(account: str, network: str, device: str | None = None) -> str:
    path = f"/v1/accounts/{quote(account, safe='')}/networks/{quote(network, safe='')}"
    path += "/devices/apns"
    return path + (f"/{quote(device, safe='')}" if device is not None else "")


def network_path(account: str, network: str) -> str:
    return f"/v1/accounts/{quote(account, safe='')}/networks/{quote(network, safe='')}"


# --- writing XML as a .NET client would ------------------------------------------------------


def _element(name: str, value: Any) -> str:
    if value is None:
        return f'<{name} i:nil="true"/>'
    if name in _DICTS:
        entries = "".join(
            f"<d2p1:KeyValueOfstringstring><d2p1:Key>{escape(k)}</d2p1:Key>"
            + (
                "<d2p1:Value i:nil='true'/>"
                if v is None
                else f"<d2p1:Value>{escape(v)}</d2p1:Value>"
            )
            + "</d2p1:KeyValueOfstringstring>"
            for k, v in value.items()
        )
        return f'<{name} xmlns:d2p1="{ARRAYS}">{entries}</{name}>'
    if isinstance(value, dict):
        inner = "".join(_element(k, value[k]) for k in sorted(value))
        return f"<{name}>{inner}</{name}>"
    if isinstance(value, bool):
        return f"<{name}>{'true' if value else 'false'}</{name}>"
    if name in ENUMS and isinstance(value, int):
        value = ENUMS[name][value]
    return f"<{name}>{escape(str(value))}</{name}>"


def to_xml(doc: dict[str, Any], root: str = "APNDevice") -> bytes:
    """A JSON-form document as DataContract XML (members in ordinal order, enums by name)."""
    inner = "".join(_element(k, doc[k]) for k in sorted(doc))
    return f'<{root} xmlns:i="{XSI}" xmlns="{NS}">{inner}</{root}>'.encode()


# --- reading XML answers -----------------------------------------------------------------------


def _read(element: etree._Element) -> Any:
    name = etree.QName(element).localname
    if element.get(NIL) == "true":
        return None
    if name in _DICTS:
        out = {}
        for entry in element:
            assert entry.tag == f"{{{ARRAYS}}}KeyValueOfstringstring", entry.tag
            key = entry.find(f"{{{ARRAYS}}}Key")
            value = entry.find(f"{{{ARRAYS}}}Value")
            assert key is not None and value is not None
            out[key.text or ""] = None if value.get(NIL) == "true" else (value.text or "")
        return out
    if name in _STRUCTS or name == "APNDevice" or len(element):
        children = list(element)
        for child in children:
            assert etree.QName(child).namespace == NS, child.tag
        return {etree.QName(c).localname: _read(c) for c in children}
    return element.text or ""


def from_xml(raw: bytes) -> tuple[str, list[str], dict[str, Any]]:
    """(root name, member names in document order, members) of a wrapper document; Data is a
    dict, a list of dicts (ArrayOf...) or None; every other value as its text."""
    root = etree.fromstring(raw)
    assert etree.QName(root).namespace == NS
    names = [etree.QName(c).localname for c in root]
    out: dict[str, Any] = {}
    for child in root:
        name = etree.QName(child).localname
        if name == "Data" and "ArrayOf" in root.tag and child.get(NIL) != "true":
            out[name] = [_read(item) for item in child]
            for item in child:
                assert etree.QName(item).localname == "APNDevice"
        else:
            out[name] = _read(child)
    return etree.QName(root).localname, names, out


@dataclass
class Answer:
    """One answer, in either format, with the wrapper's members normalised: Code, ErrorCode
    and ErrorSubCode as ints, Success as a bool (XML gives text)."""

    reply: Reply
    fmt: str
    wrapper: dict[str, Any]
    root: str | None = None
    order: list[str] | None = None

    @property
    def status(self) -> int:
        return self.reply.status

    @property
    def data(self) -> Any:
        return self.wrapper["Data"]


def answer(reply: Reply, fmt: str) -> Answer:
    ctype = reply.headers.get("Content-Type", "")
    if fmt == "xml":
        assert ctype.startswith(("application/xml", "text/xml")), (ctype, reply.raw[:300])
        root, order, wrapper = from_xml(reply.raw)
        for key in ("Code", "ErrorCode", "ErrorSubCode"):
            wrapper[key] = int(wrapper[key])
        wrapper["Success"] = {"true": True, "false": False}[wrapper["Success"]]
        return Answer(reply, fmt, wrapper, root, order)
    assert ctype.startswith(("application/json", "text/json")), (ctype, reply.raw[:300])
    wrapper = json.loads(reply.raw)
    return Answer(reply, fmt, wrapper, None, list(wrapper))


class ApnApi:
    """Calls in one format: JSON (application/json) or XML (application/xml)."""

    def __init__(self, api: Api, fmt: str) -> None:
        self.api, self.fmt = api, fmt
        self.media = "application/json" if fmt == "json" else "application/xml"

    def as_(self, token: str | None) -> ApnApi:
        return ApnApi(self.api.as_(token), self.fmt)

    def call(
        self,
        method: str,
        path: str,
        doc: dict[str, Any] | None = None,
        *,
        raw: bytes | None = None,
        root: str = "APNDevice",
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        if raw is None and doc is not None:
            raw = json.dumps(doc).encode() if self.fmt == "json" else to_xml(doc, root)
        hdrs = {"Accept": self.media, **(headers or {})}
        reply = self.api.request(
            method, path, raw=raw, content_type=self.media, query=query, headers=hdrs
        )
        return answer(reply, self.fmt)

    def post(self, path: str, doc: dict[str, Any] | None = None, **kw: Any) -> Answer:
        return self.call("POST", path, doc, **kw)

    def get(self, path: str, **kw: Any) -> Answer:
        return self.call("GET", path, **kw)

    def put(self, path: str, doc: dict[str, Any] | None = None, **kw: Any) -> Answer:
        return self.call("PUT", path, doc, **kw)

    def delete(self, path: str, **kw: Any) -> Answer:
        return self.call("DELETE", path, **kw)


def as_xml_value(name: str, value: Any) -> Any:
    """What the XML form says for a JSON-form value (for comparing the two)."""
    if value is None:
        return None
    if name in ENUMS:
        return ENUMS[name][value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict) and name in _STRUCTS:
        return {k: as_xml_value(k, v) for k, v in value.items()}
    return value
