"""The SOAP codec: round trips for every message, real-CPE quirks, hostile input, rendering."""

from __future__ import annotations

import contextlib
import copy
import re
import time
from pathlib import Path

import pytest
from lxml import etree

from acsd.cwmp import rpc, soap
from acsd.cwmp.soap import EmptyEnvelope, Envelope, SoapError, parse_envelope, render_envelope

DATA = Path(__file__).parent / "data" / "soap"
SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SSID_CAFE = "Café ☕"

PV = rpc.ParameterValue

# Realistic, non-default values for every message class: a new RPC in rpc.MESSAGES without an
# entry here fails test_samples_cover_every_message.
SAMPLES: dict[type[rpc.Message], rpc.Message] = {
    rpc.GetRPCMethods: rpc.GetRPCMethods(),
    rpc.GetRPCMethodsResponse: rpc.GetRPCMethodsResponse(
        methods=["GetRPCMethods", "SetParameterValues", "GetParameterValues", "Reboot"]
    ),
    rpc.SetParameterValues: rpc.SetParameterValues(
        parameters=[
            PV("Device.WiFi.SSID.1.SSID", SSID_CAFE),
            PV("Device.WiFi.Radio.1.Channel", "11", "xsd:unsignedInt"),
            PV("Device.WiFi.SSID.1.Enable", "true", "xsd:boolean"),
            PV("Device.WiFi.AccessPoint.1.Security.KeyPassphrase", 'p<&>"w d ', "xsd:string"),
            PV("Device.DHCPv4.Server.Pool.1.Option.1.Value", "", "xsd:hexBinary"),
        ],
        parameter_key="acsd-42",
    ),
    rpc.SetParameterValuesResponse: rpc.SetParameterValuesResponse(status=1),
    rpc.GetParameterValues: rpc.GetParameterValues(
        names=["Device.DeviceInfo.UpTime", "Device.WiFi.SSID."]
    ),
    rpc.GetParameterValuesResponse: rpc.GetParameterValuesResponse(
        parameters=[
            PV("Device.DeviceInfo.UpTime", "86400", "xsd:unsignedInt"),
            PV("Device.WiFi.SSID.1.SSID", SSID_CAFE),
            PV("Device.DeviceInfo.X_ACME_Note", "line1\nline2\r\n\ttab  "),
            PV("Device.Time.CurrentLocalTime", "2024-05-01T10:11:12Z", "xsd:dateTime"),
        ]
    ),
    rpc.GetParameterNames: rpc.GetParameterNames(path="Device.WiFi.", next_level=True),
    rpc.GetParameterNamesResponse: rpc.GetParameterNamesResponse(
        parameters=[
            rpc.ParameterInfo("Device.WiFi.SSID.", False),
            rpc.ParameterInfo("Device.WiFi.SSID.1.SSID", True),
        ]
    ),
    rpc.SetParameterAttributes: rpc.SetParameterAttributes(
        parameters=[
            rpc.SetParameterAttributesStruct(
                "Device.WiFi.SSID.1.SSID", True, 2, True, ["Subscriber"]
            ),
            rpc.SetParameterAttributesStruct("Device.DeviceInfo.UpTime", False, 0, False, []),
        ]
    ),
    rpc.SetParameterAttributesResponse: rpc.SetParameterAttributesResponse(),
    rpc.GetParameterAttributes: rpc.GetParameterAttributes(names=["Device.WiFi."]),
    rpc.GetParameterAttributesResponse: rpc.GetParameterAttributesResponse(
        parameters=[
            rpc.ParameterAttribute("Device.WiFi.SSID.1.SSID", 2, ["Subscriber"]),
            rpc.ParameterAttribute("Device.WiFi.SSID.1.Enable", 1, []),
        ]
    ),
    rpc.AddObject: rpc.AddObject(object_name="Device.NAT.PortMapping.", parameter_key="k1"),
    rpc.AddObjectResponse: rpc.AddObjectResponse(instance_number=7, status=1),
    rpc.DeleteObject: rpc.DeleteObject(object_name="Device.NAT.PortMapping.7.", parameter_key="k2"),
    rpc.DeleteObjectResponse: rpc.DeleteObjectResponse(status=1),
    rpc.Reboot: rpc.Reboot(command_key="reboot-17"),
    rpc.RebootResponse: rpc.RebootResponse(),
    rpc.FactoryReset: rpc.FactoryReset(),
    rpc.FactoryResetResponse: rpc.FactoryResetResponse(),
    rpc.Download: rpc.Download(
        command_key="fw-2024.05",
        file_type="1 Firmware Upgrade Image",
        url="http://fs.example.net:7567/fw.bin?a=1&b=2",
        username="cpe",
        password="s3cr<e>t&",
        file_size=31457280,
        target_file_name="fw.bin",
        delay_seconds=5,
        success_url="http://portal.example.net/ok",
        failure_url="http://portal.example.net/ko",
    ),
    rpc.DownloadResponse: rpc.DownloadResponse(
        status=0, start_time="2024-05-01T10:00:00Z", complete_time="2024-05-01T10:02:00Z"
    ),
    rpc.Upload: rpc.Upload(
        command_key="up-1",
        file_type="2 Vendor Log File",
        url="http://fs.example.net/up",
        username="u",
        password="p",
        delay_seconds=3,
    ),
    rpc.UploadResponse: rpc.UploadResponse(
        status=0, start_time="2024-05-01T10:00:00Z", complete_time="2024-05-01T10:00:05Z"
    ),
    rpc.ScheduleInform: rpc.ScheduleInform(delay_seconds=300, command_key="si-1"),
    rpc.ScheduleInformResponse: rpc.ScheduleInformResponse(),
    rpc.Inform: rpc.Inform(
        device_id=rpc.DeviceId("ZyXEL", "3C9066", "VMG3925-B10C", "S190Y12345678"),
        events=[rpc.EventStruct("1 BOOT"), rpc.EventStruct("M Reboot", "reboot-17")],
        max_envelopes=1,
        current_time="2024-05-01T10:11:12+02:00",
        retry_count=3,
        parameters=[
            PV("Device.DeviceInfo.SoftwareVersion", "V5.13(ABVZ.5)C0"),
            PV("Device.ManagementServer.ConnectionRequestURL", "http://198.51.100.7:7547/cr"),
            PV("Device.DeviceInfo.UpTime", "12", "xsd:unsignedInt"),
        ],
    ),
    rpc.InformResponse: rpc.InformResponse(max_envelopes=1),
    rpc.TransferComplete: rpc.TransferComplete(
        command_key="fw-2024.05",
        fault=rpc.FaultStruct(9010, "File transfer failure: HTTP 404"),
        start_time="2024-05-01T10:00:00Z",
        complete_time="2024-05-01T10:00:09Z",
    ),
    rpc.TransferCompleteResponse: rpc.TransferCompleteResponse(),
    rpc.AutonomousTransferComplete: rpc.AutonomousTransferComplete(
        announce_url="http://announce.example.net/",
        transfer_url="http://fs.example.net/fw.bin",
        is_download=False,
        file_type="2 Vendor Log File",
        file_size=2048,
        target_file_name="log.txt",
        fault=rpc.FaultStruct(0, ""),
        start_time="2024-05-01T10:00:00Z",
        complete_time="2024-05-01T10:00:01Z",
    ),
    rpc.AutonomousTransferCompleteResponse: rpc.AutonomousTransferCompleteResponse(),
    rpc.RequestDownload: rpc.RequestDownload(
        file_type="1 Firmware Upgrade Image",
        file_type_args=[("Version", "2.0"), ("Channel", "beta & more")],
    ),
    rpc.RequestDownloadResponse: rpc.RequestDownloadResponse(),
    rpc.Kicked: rpc.Kicked(
        command="provision", referer="http://portal/", arg="plan=gold", next="http://portal/done"
    ),
    rpc.KickedResponse: rpc.KickedResponse(next_url="http://portal/next?x=1&y=2"),
    rpc.DUStateChangeComplete: rpc.DUStateChangeComplete(command_key="modules-7"),
    rpc.DUStateChangeCompleteResponse: rpc.DUStateChangeCompleteResponse(),
    rpc.AutonomousDUStateChangeComplete: rpc.AutonomousDUStateChangeComplete(),
    rpc.AutonomousDUStateChangeCompleteResponse: rpc.AutonomousDUStateChangeCompleteResponse(),
    rpc.Fault: rpc.cpe_fault(
        9003,
        "",
        [
            rpc.SetParameterValuesFault("Device.WiFi.SSID.1.SSID", 9007, "Invalid parameter value"),
            rpc.SetParameterValuesFault("Device.WiFi.Radio.1.Channel", 9008, "Not writable"),
        ],
    ),
}

FULL_HEADER = {
    "id": "acs-7f3a-0004",
    "hold_requests": False,
    "session_timeout": 45,
    "supported_versions": "1.0,1.1,1.2,1.3,1.4",
    "use_version": "1.4",
    "no_more_requests": True,
}
HEADER_FIELDS = (*FULL_HEADER, "cwmp_ns")
PREFIXES = ("soap-env", "soap", "SOAP-ENV")


def _untyped(msg: rpc.Message) -> rpc.Message:
    """What a message looks like after travelling without xsi:type."""
    msg = copy.deepcopy(msg)
    for p in getattr(msg, "parameters", []):
        if isinstance(p, rpc.ParameterValue):
            p.type = None
    return msg


def _env(xml: str, ns: str = "urn:dslforum-org:cwmp-1-2", header: str = "") -> bytes:
    return (
        f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}" xmlns:cwmp="{ns}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        f"{header}<soap:Body>{xml}</soap:Body></soap:Envelope>"
    ).encode()


def _inform(device_id: str = "", extra: str = "") -> bytes:
    return _env(f"<cwmp:Inform>{device_id}{extra}<MaxEnvelopes>1</MaxEnvelopes></cwmp:Inform>")


def _device_id(oui: str = "00D09E", serial: str = "SN1", manufacturer: str = "ACME") -> str:
    return (
        f"<DeviceId><Manufacturer>{manufacturer}</Manufacturer><OUI>{oui}</OUI>"
        f"<ProductClass>R1</ProductClass><SerialNumber>{serial}</SerialNumber></DeviceId>"
    )


# --- round trips ----------------------------------------------------------------------------


def test_samples_cover_every_message() -> None:
    assert set(rpc.MESSAGES.values()) | {rpc.Fault} == set(SAMPLES)
    for cls, sample in SAMPLES.items():
        assert type(sample) is cls


@pytest.mark.parametrize("typed", [True, False], ids=["typed", "untyped"])
@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("ns", rpc.CWMP_NAMESPACES)
@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_round_trip(cls: type[rpc.Message], ns: str, prefix: str, typed: bool) -> None:
    sample = SAMPLES[cls]
    env = Envelope(body=copy.deepcopy(sample), cwmp_ns=ns, **FULL_HEADER)
    data = render_envelope(env, prefix=prefix, typed_values=typed)
    data.decode("utf-8")  # (UTF-8, the Content-Type's charset)
    assert data.startswith(f"<{prefix}:Envelope ".encode())

    back = parse_envelope(data)
    assert back.body == (sample if typed else _untyped(sample))
    for name in HEADER_FIELDS:
        assert getattr(back, name) == getattr(env, name), name
    assert env.body == sample  # rendering does not touch its input


@pytest.mark.parametrize("ns", rpc.CWMP_NAMESPACES)
@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_round_trip_without_header(cls: type[rpc.Message], ns: str) -> None:
    data = render_envelope(Envelope(body=SAMPLES[cls], cwmp_ns=ns))
    assert b"Header" not in data
    back = parse_envelope(data)
    assert back == Envelope(body=SAMPLES[cls], cwmp_ns=ns)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_inform_response_fast_path_matches_general_path(prefix: str) -> None:
    for ns in rpc.CWMP_NAMESPACES:
        env = Envelope(body=rpc.InformResponse(), cwmp_ns=ns, id="id<&>1")
        fast = render_envelope(env, prefix=prefix)
        general = render_envelope(
            Envelope(body=rpc.InformResponse(), cwmp_ns=ns, id="id<&>1", hold_requests=False),
            prefix=prefix,
        )
        hold = f'<cwmp:HoldRequests {prefix}:mustUnderstand="1">0</cwmp:HoldRequests>'
        assert general.decode().replace(hold, "") == fast.decode()
        assert parse_envelope(fast) == env


# --- real-CPE style envelopes ------------------------------------------------------------------


def test_inform_with_soap_env_prefix_and_quirks() -> None:
    raw = (DATA / "inform_soap_env_quirks.xml").read_bytes()
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    env = parse_envelope(raw)
    assert env.cwmp_ns == "urn:dslforum-org:cwmp-1-0"
    assert env.id == "  4a1e2c  "  # as sent: it is echoed back in the answer
    assert env.session_timeout == 60  # lowercase sessionTimeout
    inform = env.body
    assert isinstance(inform, rpc.Inform)
    assert inform.device_id == rpc.DeviceId("ZyXEL", "3C9066", "VMG3925-B10C", "S190Y12345678")
    assert inform.events == [
        rpc.EventStruct("1 BOOT", ""),
        rpc.EventStruct("M Reboot", "reboot-17"),
    ]
    assert inform.max_envelopes == 1
    assert inform.retry_count == 2
    assert inform.current_time == "2024-05-01T10:11:12+02:00"
    # arrayType says [0008], four entries follow: counts are never checked.
    assert inform.parameters == [
        PV("InternetGatewayDevice.DeviceInfo.SoftwareVersion", "V5.13(ABVZ.5)C0", "xsd:string"),
        PV("InternetGatewayDevice.DeviceInfo.UpTime", "86400", "xsd:unsignedInt"),
        PV(
            "InternetGatewayDevice.ManagementServer.ConnectionRequestURL",
            "http://198.51.100.7:7547/cr",
            None,
        ),
        PV("InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID", SSID_CAFE, "xsd:string"),
    ]


def test_non_ascii_ssid_round_trip_as_utf8() -> None:
    # as UTF-8's bytes, not character references, which minimal readers take literally
    inform = parse_envelope((DATA / "inform_soap_env_quirks.xml").read_bytes())
    env = Envelope(body=rpc.SetParameterValues(parameters=inform.body.parameters[3:]))
    data = render_envelope(env)
    assert b"&#" not in data
    assert "Café ☕".encode() in data
    assert parse_envelope(data).body.parameters[0].value == SSID_CAFE


def test_children_prefixed_with_cwmp_no_header_wrong_count() -> None:
    env = parse_envelope((DATA / "gpv_response_prefixed_children.xml").read_bytes())
    assert env.id is None
    assert env.session_timeout is None
    assert env.cwmp_ns == "urn:dslforum-org:cwmp-1-2"
    assert env.body == rpc.GetParameterValuesResponse(
        parameters=[
            PV("Device.WiFi.SSID.1.SSID", "guest", "xsd:string"),
            PV("Device.WiFi.SSID.1.Enable", "1", "xsd:boolean"),
            PV("Device.WiFi.AccessPoint.1.Security.KeyPassphrase", "", "xsd:string"),
        ]
    )


def test_cpe_fault_with_spv_faults() -> None:
    env = parse_envelope((DATA / "spv_fault.xml").read_bytes())
    assert env.cwmp_ns == "urn:dslforum-org:cwmp-1-1"
    assert env.id == "acs-0007"
    assert env.body == rpc.Fault(
        code=9003,
        string="Invalid arguments",
        faultcode="Client",
        spv_faults=[
            rpc.SetParameterValuesFault(
                "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID",
                9007,
                "Invalid parameter value",
            ),
            rpc.SetParameterValuesFault(
                "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.Channel",
                9008,
                "Attempt to set a non-writable parameter",
            ),
        ],
    )


def test_soap_fault_without_cwmp_detail() -> None:
    body = (
        "<soap:Fault><faultcode>soap:Server</faultcode><faultstring>oops</faultstring></soap:Fault>"
    )
    data = (
        f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}"><soap:Body>{body}</soap:Body></soap:Envelope>'
    ).encode()
    env = parse_envelope(data)
    assert env.body == rpc.Fault(code=0, string="oops", faultcode="Server")
    assert env.cwmp_ns == rpc.DEFAULT_NAMESPACE

    numeric = data.replace(b"soap:Server", b"9002")
    assert parse_envelope(numeric).body.code == 9002


@pytest.mark.parametrize("prefix", ["soap", "SOAP-ENV", "soapenv", "s", "e"])
def test_any_envelope_prefix(prefix: str) -> None:
    data = (
        f'<{prefix}:Envelope xmlns:{prefix}="{SOAP_ENV_NS}" xmlns:cwmp="urn:dslforum-org:cwmp-1-1">'
        f'<{prefix}:Header><cwmp:ID {prefix}:mustUnderstand="1">9</cwmp:ID></{prefix}:Header>'
        f"<{prefix}:Body><cwmp:GetRPCMethods/></{prefix}:Body></{prefix}:Envelope>"
    ).encode()
    assert parse_envelope(data) == Envelope(
        body=rpc.GetRPCMethods(), cwmp_ns="urn:dslforum-org:cwmp-1-1", id="9"
    )


def test_rpc_element_in_no_namespace_takes_namespace_from_envelope() -> None:
    data = _env(
        "<GetRPCMethodsResponse><MethodList><string>Inform</string></MethodList>"
        "</GetRPCMethodsResponse>",
        ns="urn:dslforum-org:cwmp-1-3",
    )
    env = parse_envelope(data)
    assert env.cwmp_ns == "urn:dslforum-org:cwmp-1-3"
    assert env.body == rpc.GetRPCMethodsResponse(methods=["Inform"])


def test_namespace_from_header_id_when_body_unqualified() -> None:
    data = (
        f'<s:Envelope xmlns:s="{SOAP_ENV_NS}"><s:Header>'
        '<c:ID xmlns:c="urn:dslforum-org:cwmp-1-4">x</c:ID></s:Header>'
        "<s:Body><RebootResponse/></s:Body></s:Envelope>"
    ).encode()
    env = parse_envelope(data)
    assert env.cwmp_ns == "urn:dslforum-org:cwmp-1-4"
    assert env.body == rpc.RebootResponse()


def test_default_namespace_declared_cwmp() -> None:
    data = (
        f'<s:Envelope xmlns:s="{SOAP_ENV_NS}"><s:Body>'
        '<Inform xmlns="urn:dslforum-org:cwmp-1-0">' + _device_id() + "</Inform>"
        "</s:Body></s:Envelope>"
    ).encode()
    env = parse_envelope(data)
    assert env.cwmp_ns == "urn:dslforum-org:cwmp-1-0"
    assert env.body.device_id.serial_number == "SN1"


def test_header_flags_and_versions() -> None:
    header = (
        "<soap:Header><cwmp:ID>7</cwmp:ID><cwmp:HoldRequests> 1 </cwmp:HoldRequests>"
        "<cwmp:NoMoreRequests>FALSE</cwmp:NoMoreRequests>"
        "<cwmp:SupportedCWMPVersions>1.0,1.4</cwmp:SupportedCWMPVersions>"
        "<cwmp:UseCWMPVersion>1.4</cwmp:UseCWMPVersion><cwmp:SessionTimeout>30</cwmp:SessionTimeout>"
        "</soap:Header>"
    )
    env = parse_envelope(_env("<cwmp:InformResponse/>", header=header))
    assert (env.id, env.hold_requests, env.no_more_requests) == ("7", True, False)
    assert (env.supported_versions, env.use_version, env.session_timeout) == ("1.0,1.4", "1.4", 30)
    assert env.body == rpc.InformResponse()  # MaxEnvelopes missing -> default


def test_empty_or_unreadable_optional_headers_are_taken_as_absent() -> None:
    # Firmware sends <cwmp:NoMoreRequests/> (deprecated) or other hints empty: refusing
    # the Inform for them would keep the router out for good.
    cwmp10 = "urn:dslforum-org:cwmp-1-0"
    header = (
        "<soap:Header><cwmp:ID>77</cwmp:ID><cwmp:NoMoreRequests/><cwmp:HoldRequests/>"
        "<cwmp:SessionTimeout>soon</cwmp:SessionTimeout></soap:Header>"
    )
    inform = _env(f"<cwmp:Inform>{_device_id()}<MaxEnvelopes>1</MaxEnvelopes></cwmp:Inform>",
                  ns=cwmp10, header=header)  # fmt: skip
    env = parse_envelope(inform)
    assert isinstance(env.body, rpc.Inform) and (env.id, env.cwmp_ns) == ("77", cwmp10)
    assert (env.no_more_requests, env.hold_requests, env.session_timeout) == (None, None, None)


def test_bytes_that_are_not_utf8_in_a_utf8_envelope_are_read_as_windows_1252() -> None:
    # Routers send an SSID or a WAN name in Latin-1 inside a UTF-8 envelope: refusing the
    # message would refuse it at every session, and reading the bytes as U+FFFD made a
    # router holding "Café" look as if it held something else (rewritten every session).
    answer = (
        "<cwmp:GetParameterValuesResponse><ParameterList>"
        "<ParameterValueStruct><Name>X.Name</Name><Value>Caf@</Value></ParameterValueStruct>"
        "<ParameterValueStruct><Name>X.Ssid</Name><Value>Fine</Value></ParameterValueStruct>"
        "</ParameterList></cwmp:GetParameterValuesResponse>"
    )
    body = _env(answer).replace(b"Caf@", b"Caf\xe9")
    declaration = b'<?xml version="1.0" encoding="UTF-8"?>'
    for data in (body, declaration + body, b"\xef\xbb\xbf" + body):
        env = parse_envelope(data)
        assert env.repaired_utf8
        assert [(p.name, p.value) for p in env.body.parameters] == [
            ("X.Name", "Café"),
            ("X.Ssid", "Fine"),
        ]
    # GBK (Chinese firmware) is kept whole, byte for byte, as Windows-1252 reads it
    gbk = parse_envelope(_env(answer).replace(b"Caf@", "中文".encode("gbk")))
    assert gbk.repaired_utf8 and gbk.body.parameters[0].value == "ÖÐÎÄ"
    # a declared single-byte encoding is read as such, with nothing to repair
    latin = parse_envelope(b'<?xml version="1.0" encoding="ISO-8859-1"?>' + body)
    assert not latin.repaired_utf8 and latin.body.parameters[0].value == "Café"
    assert not parse_envelope(_env(answer)).repaired_utf8
    # what is malformed besides stays malformed
    with pytest.raises(SoapError, match="malformed XML"):
        parse_envelope(body.replace(b"</soap:Body>", b""))
    # a repaired identity is refused: SNX\xe9 and SNX\xe8 would share one record
    for serial in (b"SNX\xe9", b"SNX\xe8"):
        inform = _inform(_device_id(serial="SERIAL")).replace(b"SERIAL", serial)
        with pytest.raises(SoapError, match="SerialNumber"):
            parse_envelope(inform)
    # a repaired manufacturer or product class is kept (only the serial is a key)
    repaired = _inform(_device_id(manufacturer="MAKER")).replace(b"MAKER", b"T\xe9l\xe9com")
    assert parse_envelope(repaired).body.device_id.manufacturer == "Télécom"
    # and a C1 control character in a serial is refused, which no operator could give the API
    c1 = b'<?xml version="1.0" encoding="ISO-8859-1"?>' + _inform(
        _device_id(serial="SERIAL")
    ).replace(b"SERIAL", b"SNC1\x80")
    with pytest.raises(SoapError, match="SerialNumber"):
        parse_envelope(c1)


def test_characters_xml_cannot_carry_become_replacement_characters() -> None:
    # A LAN host's name or an SSID with a control character in it, raw or as a character
    # reference: libxml2 refuses the whole document, and with it the router at every
    # session (GenieACS issue 76, "PCDATA invalid Char value 2").
    answer = (
        "<cwmp:GetParameterValuesResponse><ParameterList>"
        "<ParameterValueStruct><Name>X.Host</Name><Value>PHONE@</Value></ParameterValueStruct>"
        "<ParameterValueStruct><Name>X.Ssid</Name><Value>A&#x1F;B&#2;&#65;&amp;#1;</Value>"
        "</ParameterValueStruct></ParameterList></cwmp:GetParameterValuesResponse>"
    )
    # raw C0 controls (a terminal colour code too) and U+FFFF
    for raw, rest in ((b"\x02", ""), (b"\x00", ""), (b"\x1b[0m", "[0m"), (b"\xef\xbf\xbf", "")):
        env = parse_envelope(_env(answer).replace(b"@", raw))
        assert env.repaired_chars and not env.repaired_utf8
        assert [(p.name, p.value) for p in env.body.parameters] == [
            ("X.Host", "PHONE\ufffd" + rest),
            ("X.Ssid", "A\ufffdB\ufffdA&#1;"),
        ]
    # both repairs at once
    both = parse_envelope(_env(answer).replace(b"@", b"\xe9\x01"))
    assert both.repaired_chars and both.repaired_utf8
    assert both.body.parameters[0].value == "PHONEé\ufffd"
    assert not parse_envelope(_env(answer.replace("&#x1F;", "").replace("&#2;", ""))).repaired_chars
    # a control character in markup is still malformed
    with pytest.raises(SoapError, match="malformed XML"):
        parse_envelope(_env(answer).replace(b"<Name>X.Host", b"<Na\x01me>X.Host"))
    # and one in a serial number is refused: two routers would share one record
    inform = _inform(_device_id(serial="SERIAL")).replace(b"SERIAL", b"SN&#1;")
    with pytest.raises(SoapError, match="SerialNumber"):
        parse_envelope(inform)


def test_an_ampersand_that_starts_no_reference_is_read_as_itself() -> None:
    # Embedded SOAP stacks write an SSID or a host name as it is: libxml2 refused the whole
    # answer for an "AT&T", and the router at every session. GenieACS takes it.
    answer = (
        "<cwmp:GetParameterValuesResponse><ParameterList>"
        "<ParameterValueStruct><Name>X.Ssid</Name><Value>@</Value></ParameterValueStruct>"
        "<ParameterValueStruct><Name>X.Key</Name><Value>a&amp;b&#65;</Value>"
        "</ParameterValueStruct></ParameterList></cwmp:GetParameterValuesResponse>"
    )
    for value in ("AT&T", "Tom & Jerry", "M&M;", "&nbsp;", "x&lt", "R&D&#x1;", "&#99999999999;",
                  "&#x0000000041;", "&#" + "9" * 5000 + ";"):  # fmt: skip
        env = parse_envelope(_env(answer.replace("@", value)))
        # (a reference to no character, however long, is repaired, not kept as text)
        read = re.sub(r"&#x1;|&#9+;", "\ufffd", value).replace("&#x0000000041;", "A")
        assert [(p.name, p.value) for p in env.body.parameters] == [
            ("X.Ssid", read),
            ("X.Key", "a&bA"),
        ]
        assert env.repaired_chars == ("\ufffd" in read)
    # markup stays what it is: "&" does not make a broken element whole
    with pytest.raises(SoapError, match="malformed XML"):
        parse_envelope(_env(answer.replace("@", "A&T</Value>")))


def test_white_space_before_the_xml_declaration_is_passed_over() -> None:
    # Firmware whose message template starts with a line break: XML forbids anything
    # before the declaration, and libxml2 refused the router at every session.
    inform = b'<?xml version="1.0" encoding="UTF-8"?>' + _inform(_device_id(serial="WS1"))
    for before in (b"\n", b"\r\n", b" \t\r\n", b"\xef\xbb\xbf\n"):
        assert parse_envelope(before + inform).body.device_id.serial_number == "WS1"
    # anything else before it is still malformed
    for before in (b"x\n", b"<!-- c -->", b"\x00\n"):
        with pytest.raises(SoapError, match="malformed XML"):
            parse_envelope(before + inform)


def test_a_refused_message_is_answered_in_the_cpes_namespace_and_id() -> None:
    cwmp10 = "urn:dslforum-org:cwmp-1-0"
    header = "<soap:Header><cwmp:ID>77</cwmp:ID><cwmp:NoMoreRequests/></soap:Header>"
    bad = _env("<cwmp:GetParameterNames><NextLevel>yes</NextLevel></cwmp:GetParameterNames>",
               ns=cwmp10, header=header)  # fmt: skip
    with pytest.raises(SoapError) as info:
        parse_envelope(bad)
    assert (info.value.cwmp_ns, info.value.cwmp_id) == (cwmp10, "77")


@pytest.mark.parametrize(
    ("text", "expected"), [("1", True), ("0", False), (" true ", True), ("False", False)]
)
def test_boolean_literals(text: str, expected: bool) -> None:
    data = _env(
        f"<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath>"
        f"<NextLevel>{text}</NextLevel></cwmp:GetParameterNames>"
    )
    assert parse_envelope(data).body == rpc.GetParameterNames("Device.", expected)


def test_bad_boolean_and_integer_name_the_element() -> None:
    bad_bool = _env("<cwmp:GetParameterNames><NextLevel>yes</NextLevel></cwmp:GetParameterNames>")
    with pytest.raises(SoapError, match="NextLevel") as info:
        parse_envelope(bad_bool)
    assert info.value.fault_code == 8003
    for value in ("abc", "1_000", "١٢", "9" * 30):
        bad_int = _env(
            f"<cwmp:SetParameterValuesResponse><Status>{value}</Status>"
            "</cwmp:SetParameterValuesResponse>"
        )
        with pytest.raises(SoapError, match="Status"):
            parse_envelope(bad_int)
    # An empty Status of a change reads as 0 (applied); of a Download, where 0 would claim
    # the transfer done, it is still refused.
    empty = _env("<cwmp:SetParameterValuesResponse><Status/></cwmp:SetParameterValuesResponse>")
    assert parse_envelope(empty).body == rpc.SetParameterValuesResponse(status=0)
    with pytest.raises(SoapError, match="Status"):
        parse_envelope(_env("<cwmp:DownloadResponse><Status/></cwmp:DownloadResponse>"))


def test_empty_elements_and_missing_optionals() -> None:
    data = _env(
        "<cwmp:TransferComplete><CommandKey/><FaultStruct><FaultCode>0</FaultCode>"
        "<FaultString/></FaultStruct></cwmp:TransferComplete>"
    )
    assert parse_envelope(data).body == rpc.TransferComplete()
    download = parse_envelope(_env("<cwmp:Download><URL> http://x/fw </URL></cwmp:Download>"))
    assert download.body == rpc.Download(url="http://x/fw")


def test_xsi_type_normalisation() -> None:
    pvs = "".join(
        f"<ParameterValueStruct><Name>P.{i}</Name><Value{attr}>v</Value></ParameterValueStruct>"
        for i, attr in enumerate(
            [
                ' xsi:type="xsd:int"',
                ' xsi:type="xs:unsignedInt" xmlns:xs="http://www.w3.org/2001/XMLSchema"',
                ' xsi:type="string"',
                "",
                ' xsi:type=""',
            ]
        )
    )
    data = _env(
        f"<cwmp:GetParameterValuesResponse><ParameterList>{pvs}</ParameterList>"
        "</cwmp:GetParameterValuesResponse>"
    )
    types = [p.type for p in parse_envelope(data).body.parameters]
    assert types == ["xsd:int", "xsd:unsignedInt", "xsd:string", None, None]


def test_value_whitespace_is_kept_names_are_stripped() -> None:
    data = _env(
        "<cwmp:GetParameterValuesResponse><ParameterList><ParameterValueStruct>"
        "<Name>\n  A.B \n</Name><Value> x </Value></ParameterValueStruct></ParameterList>"
        "</cwmp:GetParameterValuesResponse>"
    )
    assert parse_envelope(data).body.parameters == [PV("A.B", " x ", None)]


def test_unknown_method_is_not_an_error() -> None:
    env = parse_envelope(_env("<cwmp:X_Vendor_Foo><Bar>1</Bar></cwmp:X_Vendor_Foo>"))
    assert env.body == rpc.UnknownMessage(name="X_Vendor_Foo")
    with pytest.raises(ValueError):
        render_envelope(env)


def test_is_empty_body() -> None:
    assert soap.is_empty_body(b"")
    assert soap.is_empty_body(b" \r\n\t")
    assert not soap.is_empty_body(b"<a/>")
    # the prologue alone, as firmware writing every message through one function sends it
    assert soap.is_empty_body(b'<?xml version="1.0" encoding="UTF-8"?>\r\n')
    assert soap.is_empty_body(b"\xef\xbb\xbf") and soap.is_empty_body(
        b"\xef\xbb\xbf<?xml version='1.0'?>"
    )
    assert not soap.is_empty_body(b'<?xml version="1.0"?><a/>')
    assert not soap.is_empty_body(b"<?xml-stylesheet href='x'?>")


# --- inform validation --------------------------------------------------------------------------


def test_empty_or_garbled_max_envelopes_and_retry_count_read_as_zero() -> None:
    # Some firmware sends both empty; neither is worth refusing the session over, nor is
    # one that is no number (21 digits were refused, at every session of that router):
    # acsd never acts on them.
    body = "<cwmp:Inform>" + _device_id() + "<MaxEnvelopes/><RetryCount>  </RetryCount>"
    inform = parse_envelope(_env(body + "</cwmp:Inform>")).body
    assert (inform.max_envelopes, inform.retry_count) == (0, 0)
    for garbled in ("x", "9" * 21, "1.5"):
        body_ = body.replace("<MaxEnvelopes/>", f"<MaxEnvelopes>{garbled}</MaxEnvelopes>")
        body_ = body_.replace("<RetryCount>  </RetryCount>", f"<RetryCount>{garbled}</RetryCount>")
        inform = parse_envelope(_env(body_ + "</cwmp:Inform>")).body
        assert (inform.max_envelopes, inform.retry_count) == (0, 0), garbled
    # a field whose number acsd acts on is still refused when it is none
    with pytest.raises(SoapError, match="not an integer") as info:
        parse_envelope(_env("<cwmp:TransferComplete><CommandKey>k</CommandKey><FaultStruct>"
                            "<FaultCode>x</FaultCode><FaultString/></FaultStruct>"
                            "</cwmp:TransferComplete>"))  # fmt: skip
    assert info.value.fault_code == 8003


def test_du_state_change_complete_is_read_with_its_results_left_aside() -> None:
    results = (
        "<Results><OpResultStruct>"
        "<UUID>6ba7b810-9dad-11d1-80b4-00c04fd430c8</UUID><DeploymentUnitRef/>"
        "<Version>1.0</Version><CurrentState>Installed</CurrentState><Resolved>1</Resolved>"
        "<ExecutionUnitRefList/><StartTime>2026-01-01T00:00:00Z</StartTime>"
        "<CompleteTime>2026-01-01T00:00:05Z</CompleteTime>"
        "<Fault><FaultCode>0</FaultCode><FaultString/></Fault>"
        "</OpResultStruct></Results>"
    )
    body = f"<cwmp:DUStateChangeComplete>{results}<CommandKey>k1</CommandKey>"
    msg = parse_envelope(_env(body + "</cwmp:DUStateChangeComplete>")).body
    assert msg == rpc.DUStateChangeComplete(command_key="k1")
    body = f"<cwmp:AutonomousDUStateChangeComplete>{results}</cwmp:AutonomousDUStateChangeComplete>"
    assert isinstance(parse_envelope(_env(body)).body, rpc.AutonomousDUStateChangeComplete)


def test_inform_without_device_id() -> None:
    with pytest.raises(SoapError, match="Inform without DeviceId") as info:
        parse_envelope(_inform())
    assert info.value.fault_code == 8003


@pytest.mark.parametrize(
    "device_id",
    [
        _device_id(serial=""),
        _device_id(serial="   "),
        _device_id().replace("<SerialNumber>SN1</SerialNumber>", ""),
    ],
    ids=["empty", "blank", "missing"],
)
def test_inform_without_serial_number(device_id: str) -> None:
    with pytest.raises(SoapError, match="Inform without DeviceId") as info:
        parse_envelope(_inform(device_id))
    assert info.value.fault_code == 8003


@pytest.mark.parametrize(
    "device_id",
    [
        _device_id(serial="S" * 65),
        _device_id(serial="SN&#x9;2"),
        _device_id(manufacturer="M&#xA;X"),
        _device_id(oui="00D0&#x9;9E"),
    ],
)
def test_inform_with_invalid_device_id(device_id: str) -> None:
    with pytest.raises(SoapError, match="DeviceId") as info:
        parse_envelope(_inform(device_id))
    assert info.value.fault_code == 8003


def test_device_id_limits_accepted() -> None:
    env = parse_envelope(_inform(_device_id(oui="a1b2c3", serial="S" * 64)))
    assert env.body.device_id.oui == "A1B2C3"
    assert env.body.device_id.serial_number == "S" * 64


@pytest.mark.parametrize(
    ("fields", "oui", "manufacturer"),
    [
        ({"oui": "00-d0-9e"}, "00D09E", "M"),
        ({"oui": "00:D0:9E"}, "00D09E", "M"),
        ({"oui": ""}, "", "M"),
        ({"oui": "00D09"}, "00D09", "M"),
        ({"oui": "GGGGGG"}, "GGGGGG", "M"),
        ({"manufacturer": "M" * 80}, "00D09E", "M" * 64),
    ],
)
def test_device_id_fields_real_firmware_gets_wrong_are_taken(
    fields: dict[str, str], oui: str, manufacturer: str
) -> None:
    """Only the serial number is a key: an OUI outside the schema's pattern or a name past
    its 64 characters only chooses a profile, and refusing it would refuse that router at
    every session."""
    dev = parse_envelope(_inform(_device_id(**{"manufacturer": "M", **fields}))).body.device_id
    assert (dev.oui, dev.manufacturer, dev.serial_number) == (oui, manufacturer, "SN1")


# --- hostile input ------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><soap:Body><cwmp:Reboot><CommandKey>&lol9;</CommandKey>
</cwmp:Reboot></soap:Body></soap:Envelope>"""


def test_billion_laughs_rejected_fast() -> None:
    start = time.perf_counter()
    with pytest.raises(SoapError, match="DOCTYPE") as info:
        parse_envelope(BILLION_LAUGHS)
    assert time.perf_counter() - start < 0.5
    assert info.value.fault_code is None
    assert "lol" not in str(info.value)


@pytest.mark.parametrize("doctype", [b"<!DOCTYPE", b"<!doctype", b"<!DocType"])
def test_xxe_rejected(doctype: bytes) -> None:
    data = (
        doctype
        + b' x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        + _env("<cwmp:Reboot><CommandKey>&e;</CommandKey></cwmp:Reboot>")
    )
    with pytest.raises(SoapError, match="DOCTYPE") as info:
        parse_envelope(data)
    assert "root:" not in str(info.value)


def test_doctype_hidden_from_byte_scan_is_caught_after_parsing() -> None:
    # In UTF-16 the ASCII scan cannot see the DOCTYPE; docinfo still does.
    text = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e "boom">]>'
    data = text + _env("<cwmp:Reboot><CommandKey>&e;</CommandKey></cwmp:Reboot>").decode()
    with pytest.raises(SoapError, match="DOCTYPE"):
        parse_envelope(data.encode("utf-16"))


def test_entity_declaration_without_doctype_keyword() -> None:
    with pytest.raises(SoapError, match="DOCTYPE"):
        parse_envelope(b'<!ENTITY e "x">' + _env("<cwmp:Reboot/>"))


def test_utf16_envelope_without_dtd_is_fine() -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?>' + _env("<cwmp:Reboot/>").decode()
    assert parse_envelope(text.encode("utf-16")).body == rpc.Reboot()


@pytest.mark.parametrize(
    "data",
    [
        render_envelope(Envelope(body=SAMPLES[rpc.Inform]))[:-40],  # truncated
        b"\x00\xff\xfe garbage \x89PNG",
        b'{"jsonrpc": "2.0", "method": "Inform"}',
        b"<soap:Envelope><soap:Body/></soap:Envelope>",  # unbound prefix
        b"<a><b></a>",
    ],
    ids=["truncated", "garbage", "json", "unbound-prefix", "mismatched"],
)
def test_malformed_xml(data: bytes) -> None:
    with pytest.raises(SoapError, match="malformed XML") as info:
        parse_envelope(data)
    assert info.value.fault_code is None


@pytest.mark.parametrize("data", [b"", b"   \n"])
def test_empty_input(data: bytes) -> None:
    with pytest.raises(SoapError, match="empty"):
        parse_envelope(data)


def test_str_input_is_refused() -> None:
    with pytest.raises(TypeError):
        parse_envelope(_env("<cwmp:Reboot/>").decode())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        b"<html><body>Hello</body></html>",
        b'<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Body/></Envelope>',
        b"<Envelope><Body><Inform/></Body></Envelope>",
    ],
    ids=["html", "soap12", "no-namespace"],
)
def test_not_a_soap_envelope(data: bytes) -> None:
    with pytest.raises(SoapError, match="not a SOAP envelope") as info:
        parse_envelope(data)
    assert info.value.fault_code is None


@pytest.mark.parametrize(
    "body", ["<cwmp:Reboot/><cwmp:FactoryReset/>", "", "  text only  "], ids=["two", "none", "text"]
)
def test_body_must_hold_exactly_one_element(body: str) -> None:
    with pytest.raises(SoapError, match="exactly one element") as info:
        parse_envelope(_env(body))
    assert info.value.fault_code == 8003
    # Only a Body with nothing in it stands for the empty message (the server's concern).
    assert isinstance(info.value, EmptyEnvelope) == (body == "")


def test_missing_or_duplicate_body() -> None:
    no_body = f'<s:Envelope xmlns:s="{SOAP_ENV_NS}"><s:Header/></s:Envelope>'.encode()
    with pytest.raises(SoapError, match="no SOAP Body"):
        parse_envelope(no_body)
    two = no_body.replace(b"<s:Header/>", b"<s:Body><a/></s:Body><s:Body><b/></s:Body>")
    with pytest.raises(SoapError, match="more than one"):
        parse_envelope(two)


@pytest.mark.parametrize(
    "inner",
    [
        '<s:Header><c:NoMoreRequests xmlns:c="urn:dslforum-org:cwmp-1-0">1</c:NoMoreRequests>'
        "</s:Header>",
        "<s:Header/>",
        "",
        " \n ",
    ],
    ids=["no-more-requests", "empty-header", "nothing", "white-space"],
)
def test_an_envelope_without_a_body_is_the_empty_message(inner: str) -> None:
    data = f'<s:Envelope xmlns:s="{SOAP_ENV_NS}">{inner}</s:Envelope>'.encode()
    with pytest.raises(EmptyEnvelope):
        parse_envelope(data)


@pytest.mark.parametrize(
    ("inner", "code"),
    [
        ("<s:Header/><Inform/>", 8003),  # an RPC outside the Body
        ("<s:Header/><s:Header/>", 8003),
        ("<s:Header/>text", 8003),
        ('<s:Header><c:ID xmlns:c="urn:dslforum-org:cwmp-9-9">1</c:ID></s:Header>', None),
    ],
    ids=["rpc-outside-body", "two-headers", "text", "unsupported-namespace"],
)
def test_an_envelope_without_a_body_and_with_more_is_malformed(
    inner: str, code: int | None
) -> None:
    data = f'<s:Envelope xmlns:s="{SOAP_ENV_NS}">{inner}</s:Envelope>'.encode()
    with pytest.raises(SoapError) as info:
        parse_envelope(data)
    assert not isinstance(info.value, EmptyEnvelope)
    assert info.value.fault_code == code


@pytest.mark.parametrize("where", ["body", "header", "envelope"])
def test_unsupported_namespace(where: str) -> None:
    bad = "urn:dslforum-org:cwmp-9-9"
    if where == "body":
        data = _env(f'<x:Inform xmlns:x="{bad}">{_device_id()}</x:Inform>')
    elif where == "header":
        data = _env(
            "<Reboot/>",
            ns="urn:other",
            header=f'<soap:Header><x:ID xmlns:x="{bad}">1</x:ID></soap:Header>',
        )
    else:
        data = _env("<Reboot/>", ns=bad)
    with pytest.raises(SoapError, match="unsupported CWMP namespace") as info:
        parse_envelope(data)
    assert info.value.fault_code is None


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    depth = 10_000
    data = _env("<cwmp:Reboot>" + "<a>" * depth + "</a>" * depth + "</cwmp:Reboot>")
    with pytest.raises(SoapError, match="malformed XML"):
        parse_envelope(data)


def test_too_many_parameter_value_structs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(soap, "MAX_ARRAY_ITEMS", 10)
    pvs = "<ParameterValueStruct><Name>A</Name><Value>1</Value></ParameterValueStruct>"
    ok = _env(
        f"<cwmp:GetParameterValuesResponse><ParameterList>{pvs * 10}</ParameterList>"
        "</cwmp:GetParameterValuesResponse>"
    )
    assert len(parse_envelope(ok).body.parameters) == 10
    with pytest.raises(SoapError, match="more than 10") as info:
        parse_envelope(ok.replace(pvs.encode(), pvs.encode() * 2, 1))
    assert info.value.fault_code == 8004


def test_default_limit_is_one_hundred_thousand() -> None:
    assert soap.MAX_ARRAY_ITEMS == 100_000


# --- rendering ------------------------------------------------------------------------------------


def test_rendering_shape() -> None:
    msg = SAMPLES[rpc.GetParameterValuesResponse]
    data = render_envelope(Envelope(body=msg, id="1"))
    assert not data.startswith(b"<?xml")
    data.decode("utf-8")
    root = etree.fromstring(data)
    assert root.nsmap == {
        "soap-env": SOAP_ENV_NS,
        "soap-enc": "http://schemas.xmlsoap.org/soap/encoding/",
        "xsd": "http://www.w3.org/2001/XMLSchema",
        "xsi": "http://www.w3.org/2001/XMLSchema-instance",
        "cwmp": rpc.DEFAULT_NAMESPACE,
    }
    assert b'<cwmp:ID soap-env:mustUnderstand="1">1</cwmp:ID>' in data
    assert b"<cwmp:GetParameterValuesResponse><ParameterList " in data


def test_exact_array_counts_and_typed_values() -> None:
    msg = SAMPLES[rpc.SetParameterValues]
    n = len(msg.parameters)
    data = render_envelope(Envelope(body=msg))
    assert f'soap-enc:arrayType="cwmp:ParameterValueStruct[{n}]"'.encode() in data
    assert data.count(b"<Value xsi:type=") == n
    assert b'<Value xsi:type="xsd:hexBinary"></Value>' in data  # empty string -> empty element
    assert '<Value xsi:type="xsd:string">Café ☕</Value>'.encode() in data

    untyped = render_envelope(Envelope(body=msg), typed_values=False)
    assert b"xsi:type" not in untyped
    assert untyped.count(b"<Value>") == n

    none_typed = rpc.SetParameterValues(parameters=[PV("A.B", "x", None)])
    assert b'<Value xsi:type="xsd:string">x</Value>' in render_envelope(Envelope(body=none_typed))


@pytest.mark.parametrize(
    ("cls", "array_type"),
    [
        (rpc.GetParameterValues, "xsd:string[2]"),
        (rpc.Inform, "cwmp:EventStruct[2]"),
        (rpc.GetParameterNamesResponse, "cwmp:ParameterInfoStruct[2]"),
        (rpc.GetParameterAttributesResponse, "cwmp:ParameterAttributeStruct[2]"),
        (rpc.SetParameterAttributes, "cwmp:SetParameterAttributesStruct[2]"),
        (rpc.RequestDownload, "cwmp:ArgStruct[2]"),
        (rpc.GetRPCMethodsResponse, "xsd:string[4]"),
    ],
)
def test_array_types(cls: type[rpc.Message], array_type: str) -> None:
    data = render_envelope(Envelope(body=SAMPLES[cls]))
    assert f'soap-enc:arrayType="{array_type}"'.encode() in data


def test_empty_arrays() -> None:
    data = render_envelope(Envelope(body=rpc.GetParameterValues(names=[])))
    assert b'<ParameterNames soap-enc:arrayType="xsd:string[0]"></ParameterNames>' in data
    assert parse_envelope(data).body == rpc.GetParameterValues(names=[])


def test_escaping_names_values_and_header() -> None:
    nasty = "<&>\"' ]]> &amp;"
    msg = rpc.SetParameterValues(
        parameters=[PV(f"Device.X_{nasty}", nasty, 'xsd:"str<&>')], parameter_key=nasty
    )
    env = Envelope(body=msg, id=nasty, supported_versions=nasty, use_version=nasty)
    data = render_envelope(env)
    assert b"]]>" not in data
    assert b'"str<' not in data
    assert parse_envelope(data) == env


def test_booleans_render_as_xsd_unless_strings() -> None:
    data = render_envelope(
        Envelope(body=rpc.GetParameterNames("Device.", True), hold_requests=True)
    )
    assert b"<NextLevel>true</NextLevel>" in data
    # header flags as 1/0: C stacks read them with atoi() (test_cpe_stacks.py)
    assert b">1</cwmp:HoldRequests>" in data
    as_string = rpc.GetParameterNames("Device.", "1")  # type: ignore[arg-type]
    data = render_envelope(Envelope(body=as_string))
    assert b"<NextLevel>1</NextLevel>" in data
    assert parse_envelope(data).body.next_level is True


def test_fault_rendering() -> None:
    fault = SAMPLES[rpc.Fault]
    data = render_envelope(Envelope(body=fault, id="x"), prefix="SOAP-ENV").decode()
    assert re.search(
        r"<SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>Client</faultcode>"
        r"<faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>9003</FaultCode>"
        r"<FaultString>Invalid arguments</FaultString><SetParameterValuesFault>"
        r"<ParameterName>Device\.WiFi\.SSID\.1\.SSID</ParameterName><FaultCode>9007</FaultCode>",
        data,
    )
    assert data.count("<SetParameterValuesFault>") == 2
    acs = render_envelope(Envelope(body=rpc.acs_fault(8000, "X_Vendor_Foo")))
    assert b"<faultcode>Server</faultcode>" in acs
    assert parse_envelope(acs).body == rpc.acs_fault(8000, "X_Vendor_Foo")


def test_pretty_values_in_set_parameter_values() -> None:
    msg = rpc.SetParameterValues(
        parameters=[PV("A.Enable", True, "xsd:boolean"), PV("A.Port", 8080, "xsd:int")]  # type: ignore[arg-type]
    )
    back = parse_envelope(render_envelope(Envelope(body=msg))).body
    assert [p.value for p in back.parameters] == ["true", "8080"]


def test_text_xml_cannot_carry_is_refused() -> None:
    msg = rpc.SetParameterValues(parameters=[PV("A.B", "bell\x07")])
    with pytest.raises(ValueError, match=r"XML 1\.0"):
        render_envelope(Envelope(body=msg))


@pytest.mark.parametrize("prefix", ["", "1a", "a b", 'x"', "cwmp", "xsd", "a:b"])
def test_bad_prefix_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        render_envelope(Envelope(body=rpc.GetRPCMethods()), prefix=prefix)


def test_namespace_is_escaped() -> None:
    data = render_envelope(Envelope(body=rpc.GetRPCMethods(), cwmp_ns='urn:x"y'))
    assert b'xmlns:cwmp="urn:x&quot;y"' in data


_GPV_ANSWER = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap:Header>'
    '<cwmp:ID soap:mustUnderstand="1">7</cwmp:ID></soap:Header><soap:Body>'
    "<cwmp:GetParameterValuesResponse>"
    '<ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[1]"><ParameterValueStruct>'
    '<Name>Device.DeviceInfo.UpTime</Name><Value xsi:type="xsd:unsignedInt">42</Value>'
    "</ParameterValueStruct></ParameterList></cwmp:GetParameterValuesResponse>"
    "</soap:Body></soap:Envelope>"
)


def test_usual_prefixes_used_undeclared_are_read_as_what_they_always_mean() -> None:
    # xsi: and SOAP-ENC: without an xmlns declaration: firmware that writes its envelopes
    # from string templates.
    env = parse_envelope(_GPV_ANSWER.encode())
    assert env.id == "7"
    assert env.body == rpc.GetParameterValuesResponse(
        parameters=[PV("Device.DeviceInfo.UpTime", "42", "xsd:unsignedInt")]
    )
    # a prefix whose namespace cannot be guessed is still refused, and named
    with pytest.raises(SoapError, match="prefix foo for type on Value"):
        parse_envelope(_GPV_ANSWER.replace("xsi:type", "foo:type").encode())
    # what else is wrong is not hidden by the repair
    with pytest.raises(SoapError, match="malformed XML"):
        parse_envelope(_GPV_ANSWER.replace("</soap:Body>", "").encode())


def test_a_trailing_nul_is_the_end_of_a_c_string_not_content() -> None:
    env = parse_envelope(_GPV_ANSWER.encode() + b"\x00")
    assert env.body.parameters[0].value == "42"
    assert soap.is_empty_body(b"\x00") and soap.is_empty_body(b"\r\n\x00")
    assert not soap.is_empty_body(b"<\x00")
    # UTF-16's last character ends in a zero byte, which is content
    plain = _GPV_ANSWER.replace('xsi:type="xsd:unsignedInt"', "").replace(
        ' SOAP-ENC:arrayType="cwmp:ParameterValueStruct[1]"', ""
    )
    assert parse_envelope(plain.encode("utf-16")).body == parse_envelope(plain.encode()).body
    with pytest.raises(SoapError, match="malformed XML"):
        parse_envelope(_GPV_ANSWER.encode() + b"\x00junk")


def test_every_field_of_every_message_travels_on_the_wire():
    # The dataclasses in rpc.py and the wire table in soap.py name each field twice: a field
    # added to one and not the other would never be sent or read, silently.
    from dataclasses import fields

    for name, cls in rpc.MESSAGES.items():
        declared = {f.name for f in fields(cls)}
        on_wire = {attr for attr, *_ in soap._FIELDS.get(cls, ())}
        assert declared == on_wire, f"{name}: {sorted(declared ^ on_wire)}"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_a_doctype_in_a_wide_encoding_opens_no_file(tmp_path: Path, codec: str) -> None:
    # The byte scan did not read UTF-16, and libxml2 opened the local file a DOCTYPE's
    # external subset names despite load_dtd=False: a FIFO froze the daemon's event loop,
    # and the error told whether a file exists.
    import os
    import threading

    from acsd.xmlsafe import has_dtd, parse_xml

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    said = []
    for target in (fifo, secret, tmp_path / "missing"):
        data = (f'<!DOCTYPE e SYSTEM "{target}">' + _env("<cwmp:Reboot/>").decode()).encode(codec)
        assert has_dtd(data), target
        errors: list[BaseException] = []

        def parse(data: bytes = data, errors: list = errors) -> None:
            try:
                parse_envelope(data)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=parse, daemon=True)
        thread.start()
        thread.join(10)
        if thread.is_alive():  # blocked opening the FIFO: let it go, then fail
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            pytest.fail(f"parsing opened {target}")
        [error] = errors
        assert isinstance(error, SoapError) and "DOCTYPE" in str(error), error
        said.append(str(error))

        # and the parser itself, whatever slips past the scan, resolves the subset to
        # nothing rather than opening the file
        def parse_only(data: bytes = data) -> None:
            with contextlib.suppress(etree.XMLSyntaxError):  # (some are no XML at all)
                parse_xml(data)

        thread = threading.Thread(target=parse_only, daemon=True)
        thread.start()
        thread.join(10)
        if thread.is_alive():
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            pytest.fail(f"the parser opened {target}")
    assert len(set(said)) == 1  # no telling which files exist


def test_a_serial_number_holding_a_reference_to_no_character_is_refused() -> None:
    # "&#99999999999;" was read as a bare "&" and kept as text: a record keyed by it
    for serial in ("&#99999999999;SN1", "&#x110000;SN2", "&#1;SN3"):
        with pytest.raises(SoapError, match="SerialNumber holds a control character"):
            parse_envelope(_inform(_device_id(serial=serial)))
