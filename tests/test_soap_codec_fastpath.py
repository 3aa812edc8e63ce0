"""The ParameterValueStruct fast path and the cheaper envelope checks keep every tolerance of
the generic codec: namespaced or missing children, xsi:type spellings, comments, limits."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from acsd.cwmp import rpc, soap
from acsd.cwmp.soap import SoapError, parse_envelope
from acsd.xmlsafe import parse_xml

PV = rpc.ParameterValue
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _env(body: str) -> bytes:
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:cwmp="urn:dslforum-org:cwmp-1-2" xmlns:xsi="{XSI}" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def _gpv(structs: str) -> list[rpc.ParameterValue]:
    data = _env(
        "<cwmp:GetParameterValuesResponse><ParameterList>"
        f"{structs}</ParameterList></cwmp:GetParameterValuesResponse>"
    )
    return parse_envelope(data).body.parameters


def _reference_pv(el: etree._Element) -> rpc.ParameterValue:
    """The per-struct codec the fast path replaced, kept as the specification."""
    name, value, vtype = "", "", None
    for c in el:
        tag = c.tag
        if type(tag) is not str:
            continue
        local = tag[tag.rfind("}") + 1 :]
        if local == "Name":
            name = (c.text or "").strip()
        elif local == "Value":
            value = c.text or ""
            # the indentation of pretty-printing firmware: white space with a line break
            head = re.match(r"[ \t\r\n]*", value).group()
            value = value[len(head) :] if "\n" in head else value
            tail = re.search(r"[ \t\r\n]*\Z", value).group()
            value = value[: len(value) - len(tail)] if "\n" in tail else value
            t = (c.get(f"{{{XSI}}}type") or "").strip()
            vtype = "xsd:" + t[t.rfind(":") + 1 :] if t else None
    return rpc.ParameterValue(name, value, vtype)


# Each entry is one struct's inner XML; together they visit every branch of the fast path.
STRUCTS = [
    '<Name>A.1</Name><Value xsi:type="xsd:string">x</Value>',
    '<cwmp:Name>A.2</cwmp:Name><cwmp:Value xsi:type="xsd:int">2</cwmp:Value>',
    '<Name xmlns="urn:other">A.3</Name><Value xmlns="urn:other">v</Value>',
    "<Name>A.4</Name>",
    '<Value xsi:type="xsd:boolean">1</Value>',
    "",
    "<Name>A.5</Name><Value>no type</Value>",
    '<Name>A.6</Name><Value xsi:type="">empty type</Value>',
    '<Name>A.7</Name><Value xsi:type=" xsd:unsignedInt ">7</Value>',
    '<Name>A.8</Name><Value xsi:type="string">s</Value>',
    '<Name>A.9</Name><Value xmlns:xs="http://www.w3.org/2001/XMLSchema" xsi:type="xs:long">'
    "9</Value>",
    f'<Name>A.10</Name><Value xmlns:i="{XSI}" i:type="xsd:dateTime">t</Value>',
    '<Name>A.11</Name><Value type="xsd:int">plain attribute, not xsi</Value>',
    '<Name>A.12</Name><Value xsi:type="a:b:hexBinary">ff</Value>',
    '<Name>A.13</Name><Value xsi:type="xsd:base64"></Value>',
    '<Name>A.14</Name><Value xsi:type="xsd:string"/>',
    "<Name>\n  A.15 \n</Name><Value>  kept  </Value>",
    "<Name>A.16</Name><Name>A.16b</Name><Value>1</Value><Value>2</Value>",
    "<!-- c --><Name>A.17</Name><?pi x?><Value><!-- c -->v</Value>",
    "<Name>A.18</Name><Extra>ignored</Extra><Value>v</Value><cwmp:Other/>",
    "<Name>A.19</Name><Value>a &amp; b &#233;<![CDATA[ <raw> ]]></Value>",
    "<Name>A.20</Name><Value>x</Value>",
    '<Name>A.21</Name><Value xsi:type="xsd:string">\n      Sky Net\n    </Value>',
    "<Name>A.22</Name><Value>  own spaces\n</Value>",
    "<Name>A.23</Name><Value>\n</Value>",
    "<Name>A.24</Name><Value>two\nlines </Value>",
]


def test_fast_path_matches_the_per_struct_codec() -> None:
    structs = "".join(f"<ParameterValueStruct>{s}</ParameterValueStruct>" for s in STRUCTS)
    data = _env(
        "<cwmp:GetParameterValuesResponse><ParameterList>"
        f"{structs}</ParameterList></cwmp:GetParameterValuesResponse>"
    )
    plist = parse_xml(data).find(".//ParameterList")
    assert plist is not None
    assert parse_envelope(data).body.parameters == [_reference_pv(s) for s in plist]


def test_tolerances_spelled_out() -> None:
    params = _gpv("".join(f"<ParameterValueStruct>{s}</ParameterValueStruct>" for s in STRUCTS))
    assert len(params) == len(STRUCTS)
    assert params[4] == PV("", "1", "xsd:boolean")  # no Name
    assert params[5] == PV("", "", None)  # an empty struct still counts
    got = {p.name: p for p in params}
    assert got["A.2"] == PV("A.2", "2", "xsd:int")  # cwmp:-qualified children
    assert got["A.3"] == PV("A.3", "v", None)  # children in a default namespace
    assert got["A.4"] == PV("A.4", "", None)  # no Value
    assert got["A.5"].type is None  # no xsi:type
    assert got["A.6"].type is None  # an empty one
    assert got["A.7"].type == "xsd:unsignedInt"  # stripped
    assert got["A.8"].type == "xsd:string"  # no prefix
    assert got["A.9"].type == "xsd:long"  # another prefix for XML Schema
    assert got["A.10"].type == "xsd:dateTime"  # another prefix for XML Schema instance
    assert got["A.11"].type is None  # an un-namespaced "type" attribute is not xsi:type
    assert got["A.12"].type == "xsd:hexBinary"
    assert got["A.13"] == PV("A.13", "", "xsd:base64")
    assert got["A.14"] == PV("A.14", "", "xsd:string")
    assert got["A.15"] == PV("A.15", "  kept  ", None)  # Name stripped, Value verbatim
    # duplicates: the last Name and the last Value, as the per-struct codec always did
    assert got["A.16b"] == PV("A.16b", "2", None)
    assert got["A.17"] == PV("A.17", "v", None)  # comments and PIs are gone
    assert got["A.18"] == PV("A.18", "v", None)  # unknown children are ignored
    assert got["A.19"].value == "a & b \u00e9 <raw> "
    assert got["A.21"].value == "Sky Net"  # pretty-printed: the indentation is not the value
    assert got["A.22"].value == "  own spaces"
    assert got["A.23"].value == ""
    assert got["A.24"].value == "two\nlines "


@pytest.mark.parametrize(
    "struct",
    ["<Name>A</Name><Value>head<b>bold</b>tail</Value>", "<Name>A<b/>B</Name><Value>1</Value>"],
)
def test_an_element_inside_a_name_or_value_is_refused(struct: str) -> None:
    # el.text is only the text before it: the value would be read cut ("head", "A")
    with pytest.raises(SoapError, match="holds an element") as caught:
        _gpv(f"<ParameterValueStruct>{struct}</ParameterValueStruct>")
    assert caught.value.fault_code == 8003


def test_common_types_are_shared_strings() -> None:
    params = _gpv(
        '<ParameterValueStruct><Name>A</Name><Value xsi:type="xsd:string">a</Value>'
        '</ParameterValueStruct><ParameterValueStruct><Name>B</Name><Value xsi:type="xsd:string">'
        "b</Value></ParameterValueStruct>"
    )
    assert params[0].type == "xsd:string"
    assert params[0].type is params[1].type


def test_comments_and_pis_between_structs_are_not_structs() -> None:
    pv = "<ParameterValueStruct><Name>A</Name><Value>1</Value></ParameterValueStruct>"
    assert _gpv(f"<!-- a -->{pv}<?pi x?>{pv}<!-- b -->") == [PV("A", "1", None)] * 2


def test_namespaced_parameter_value_structs() -> None:
    params = _gpv(
        "<cwmp:ParameterValueStruct><cwmp:Name>A</cwmp:Name><Value>1</Value>"
        '</cwmp:ParameterValueStruct><ParameterValueStruct xmlns="urn:x"><Name>B</Name>'
        "<Value>2</Value></ParameterValueStruct>"
    )
    assert params == [PV("A", "1", None), PV("B", "2", None)]


@pytest.mark.parametrize("where", ["inform", "spv"])
def test_array_limit_applies_to_every_parameter_list(
    monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.setattr(soap, "MAX_ARRAY_ITEMS", 2)
    pvs = "<ParameterValueStruct><Name>A</Name><Value>1</Value></ParameterValueStruct>" * 3
    if where == "inform":
        body = (
            "<cwmp:Inform><DeviceId><Manufacturer>M</Manufacturer><OUI>00D09E</OUI>"
            "<ProductClass>P</ProductClass><SerialNumber>S</SerialNumber></DeviceId>"
            f"<ParameterList>{pvs}</ParameterList></cwmp:Inform>"
        )
    else:
        body = (
            f"<cwmp:SetParameterValues><ParameterList>{pvs}</ParameterList>"
            "</cwmp:SetParameterValues>"
        )
    with pytest.raises(SoapError, match="more than 2") as info:
        parse_envelope(_env(body))
    assert info.value.fault_code == 8004


def test_bytes_like_input_is_accepted() -> None:
    data = _env(
        "<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct><Name>A</Name>"
        "<Value>1</Value></ParameterValueStruct></ParameterList></cwmp:GetParameterValuesResponse>"
    )
    expected = parse_envelope(data)
    assert parse_envelope(bytearray(data)) == expected
    assert parse_envelope(memoryview(data)) == expected


def test_exclamation_marks_without_a_dtd_are_fine_and_a_dtd_still_is_not() -> None:
    data = _env(
        "<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct><Name>A</Name>"
        "<Value>Hello!<![CDATA[<!x>]]></Value></ParameterValueStruct></ParameterList>"
        "</cwmp:GetParameterValuesResponse>"
    )
    assert parse_envelope(data).body.parameters == [PV("A", "Hello!<!x>", None)]
    with pytest.raises(SoapError, match="DOCTYPE") as info:
        parse_envelope(b"<!DOCTYPE x>" + data)
    assert info.value.fault_code is None


def test_struct_children_first_of_duplicates_wins_and_namespaces_are_ignored() -> None:
    # the generic struct codec (DeviceId, EventStruct ...) after _children was inlined
    data = _env(
        "<cwmp:Inform><DeviceId><Manufacturer>First</Manufacturer><!-- c -->"
        "<cwmp:Manufacturer>Second</cwmp:Manufacturer><cwmp:OUI>00d09e</cwmp:OUI>"
        '<ProductClass xmlns="urn:x">P</ProductClass><SerialNumber>S</SerialNumber>'
        "<Bogus/></DeviceId><MaxEnvelopes>1</MaxEnvelopes></cwmp:Inform>"
    )
    assert parse_envelope(data).body.device_id == rpc.DeviceId("First", "00D09E", "P", "S")


def test_a_get_parameter_values_renders_as_the_generic_codec_does() -> None:
    names = ["Device.DeviceInfo.UpTime", "Device.IP.Interface.", "Caf\u00e9.<&>"]
    for prefix, msg_id in (("soap-env", "1"), ("SOAP-ENV", "2"), ("soap-env", "1")):
        env = soap.Envelope(body=rpc.GetParameterValues(names=names), id=msg_id)
        out: list[str] = []
        soap._MESSAGE_KINDS[rpc.GetParameterValues].render(
            out, "cwmp:GetParameterValues", env.body, True
        )
        head, tail = soap._frame(prefix, env.cwmp_ns)
        header = (
            f'<{prefix}:Header><cwmp:ID {prefix}:mustUnderstand="1">{msg_id}</cwmp:ID>'
            f"</{prefix}:Header>"
        )
        generic = f"{head}{header}<{prefix}:Body>{''.join(out)}{tail}"
        assert soap.render_envelope(env, prefix=prefix) == generic.encode("utf-8")
        assert parse_envelope(soap.render_envelope(env, prefix=prefix)).body.names == names
    # Text XML cannot carry is refused every time, not remembered as rendered.
    for _ in range(2):
        with pytest.raises(ValueError):
            soap.render_envelope(soap.Envelope(body=rpc.GetParameterValues(names=["a\x01"])))
