"""Typed CWMP messages: every RPC of TR-069 that acsd sends, answers or simulates.

One dataclass per SOAP body element. The class attribute ``METHOD`` is the element's local
name on the wire. Values stay strings as they travel (``xsd:dateTime`` included) so that a
CPE's odd formatting survives a round trip; callers convert where they need to.

The codec in :mod:`acsd.cwmp.soap` turns these into envelopes and back. Nothing here knows
about HTTP, the database or vendors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

# The namespaces a CPE may use (1.3 and 1.4 keep the cwmp-1-2 URI; cwmp-1-3 is not
# standard but is seen in the field and answered in kind).
CWMP_NAMESPACES: tuple[str, ...] = (
    "urn:dslforum-org:cwmp-1-0",
    "urn:dslforum-org:cwmp-1-1",
    "urn:dslforum-org:cwmp-1-2",
    "urn:dslforum-org:cwmp-1-3",
    "urn:dslforum-org:cwmp-1-4",
)
DEFAULT_NAMESPACE = "urn:dslforum-org:cwmp-1-2"

#: the CWMP versions a session in each namespace may use: what UseCWMPVersion may name
#: (1.3 and 1.4 keep the cwmp-1-2 URI)
VERSIONS_BY_NAMESPACE: dict[str, tuple[str, ...]] = {
    "urn:dslforum-org:cwmp-1-0": ("1.0",),
    "urn:dslforum-org:cwmp-1-1": ("1.0", "1.1"),
}
ALL_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4")


def use_version(supported: str | None, namespace: str) -> str | None:
    """The version to name in UseCWMPVersion for a CPE that listed ``supported`` in
    SupportedCWMPVersions (CWMP 1.4): the highest it lists that acsd speaks in the Inform's
    namespace; None (no header) when it listed nothing, or nothing acsd knows."""
    if not supported:
        return None
    ours = VERSIONS_BY_NAMESPACE.get(namespace, ALL_VERSIONS)
    listed = {part.strip() for part in supported.split(",")}
    return next((v for v in reversed(ours) if v in listed), None)


UNKNOWN_TIME = "0001-01-01T00:00:00Z"


# --- structures -------------------------------------------------------------------------


@dataclass(slots=True)
class ParameterValue:
    """A ParameterValueStruct. ``type`` is the xsi:type as sent (``xsd:string`` ...), or
    None when the CPE sent the value without one."""

    name: str
    value: str
    type: str | None = "xsd:string"


@dataclass(slots=True)
class ParameterInfo:
    name: str
    writable: bool


@dataclass(slots=True)
class ParameterAttribute:
    name: str
    notification: int = 0
    access_list: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SetParameterAttributesStruct:
    name: str
    notification_change: bool = False
    notification: int = 0
    access_list_change: bool = False
    access_list: list[str] = field(default_factory=list)


@dataclass(slots=True)
class EventStruct:
    code: str
    command_key: str = ""


@dataclass(slots=True)
class DeviceId:
    manufacturer: str
    oui: str
    product_class: str
    serial_number: str


@dataclass(slots=True)
class FaultStruct:
    """The FaultStruct of TransferComplete: code 0 means success."""

    code: int = 0
    string: str = ""


@dataclass(slots=True)
class SetParameterValuesFault:
    name: str
    code: int
    string: str = ""


# --- base classes -----------------------------------------------------------------------


class Message:
    """Anything that can be the single child of a SOAP Body."""

    __slots__ = ()
    METHOD: ClassVar[str] = ""


class AcsRequest(Message):
    """A request the ACS sends to the CPE; ``RESPONSE`` is the class the CPE answers with."""

    __slots__ = ()
    RESPONSE: ClassVar[type[Message]]


class CpeRequest(Message):
    """A request the CPE sends to the ACS; ``RESPONSE`` is the class the ACS answers with."""

    __slots__ = ()
    RESPONSE: ClassVar[type[Message]]


class Response(Message):
    __slots__ = ()


# --- ACS -> CPE requests and the CPE's responses -----------------------------------------


@dataclass(slots=True)
class GetRPCMethodsResponse(Response):
    METHOD: ClassVar[str] = "GetRPCMethodsResponse"
    methods: list[str] = field(default_factory=list)


@dataclass(slots=True)
class GetRPCMethods(AcsRequest, CpeRequest):
    """Sent by either side; the answer is the same."""

    METHOD: ClassVar[str] = "GetRPCMethods"
    RESPONSE: ClassVar[type[Message]] = GetRPCMethodsResponse


@dataclass(slots=True)
class SetParameterValuesResponse(Response):
    METHOD: ClassVar[str] = "SetParameterValuesResponse"
    status: int = 0


@dataclass(slots=True)
class SetParameterValues(AcsRequest):
    METHOD: ClassVar[str] = "SetParameterValues"
    RESPONSE: ClassVar[type[Message]] = SetParameterValuesResponse
    parameters: list[ParameterValue] = field(default_factory=list)
    parameter_key: str = ""


@dataclass(slots=True)
class GetParameterValuesResponse(Response):
    METHOD: ClassVar[str] = "GetParameterValuesResponse"
    parameters: list[ParameterValue] = field(default_factory=list)


@dataclass(slots=True)
class GetParameterValues(AcsRequest):
    METHOD: ClassVar[str] = "GetParameterValues"
    RESPONSE: ClassVar[type[Message]] = GetParameterValuesResponse
    names: list[str] = field(default_factory=list)


@dataclass(slots=True)
class GetParameterNamesResponse(Response):
    METHOD: ClassVar[str] = "GetParameterNamesResponse"
    parameters: list[ParameterInfo] = field(default_factory=list)


@dataclass(slots=True)
class GetParameterNames(AcsRequest):
    METHOD: ClassVar[str] = "GetParameterNames"
    RESPONSE: ClassVar[type[Message]] = GetParameterNamesResponse
    path: str = ""
    next_level: bool = False


@dataclass(slots=True)
class SetParameterAttributesResponse(Response):
    METHOD: ClassVar[str] = "SetParameterAttributesResponse"


@dataclass(slots=True)
class SetParameterAttributes(AcsRequest):
    METHOD: ClassVar[str] = "SetParameterAttributes"
    RESPONSE: ClassVar[type[Message]] = SetParameterAttributesResponse
    parameters: list[SetParameterAttributesStruct] = field(default_factory=list)


@dataclass(slots=True)
class GetParameterAttributesResponse(Response):
    METHOD: ClassVar[str] = "GetParameterAttributesResponse"
    parameters: list[ParameterAttribute] = field(default_factory=list)


@dataclass(slots=True)
class GetParameterAttributes(AcsRequest):
    METHOD: ClassVar[str] = "GetParameterAttributes"
    RESPONSE: ClassVar[type[Message]] = GetParameterAttributesResponse
    names: list[str] = field(default_factory=list)


@dataclass(slots=True)
class AddObjectResponse(Response):
    METHOD: ClassVar[str] = "AddObjectResponse"
    instance_number: int = 0
    status: int = 0


@dataclass(slots=True)
class AddObject(AcsRequest):
    METHOD: ClassVar[str] = "AddObject"
    RESPONSE: ClassVar[type[Message]] = AddObjectResponse
    object_name: str = ""
    parameter_key: str = ""


@dataclass(slots=True)
class DeleteObjectResponse(Response):
    METHOD: ClassVar[str] = "DeleteObjectResponse"
    status: int = 0


@dataclass(slots=True)
class DeleteObject(AcsRequest):
    METHOD: ClassVar[str] = "DeleteObject"
    RESPONSE: ClassVar[type[Message]] = DeleteObjectResponse
    object_name: str = ""
    parameter_key: str = ""


@dataclass(slots=True)
class RebootResponse(Response):
    METHOD: ClassVar[str] = "RebootResponse"


@dataclass(slots=True)
class Reboot(AcsRequest):
    METHOD: ClassVar[str] = "Reboot"
    RESPONSE: ClassVar[type[Message]] = RebootResponse
    command_key: str = ""


@dataclass(slots=True)
class FactoryResetResponse(Response):
    METHOD: ClassVar[str] = "FactoryResetResponse"


@dataclass(slots=True)
class FactoryReset(AcsRequest):
    METHOD: ClassVar[str] = "FactoryReset"
    RESPONSE: ClassVar[type[Message]] = FactoryResetResponse


@dataclass(slots=True)
class DownloadResponse(Response):
    METHOD: ClassVar[str] = "DownloadResponse"
    status: int = 1
    start_time: str = UNKNOWN_TIME
    complete_time: str = UNKNOWN_TIME


@dataclass(slots=True)
class Download(AcsRequest):
    METHOD: ClassVar[str] = "Download"
    RESPONSE: ClassVar[type[Message]] = DownloadResponse
    command_key: str = ""
    file_type: str = "1 Firmware Upgrade Image"
    url: str = ""
    username: str = ""
    password: str = ""
    file_size: int = 0
    target_file_name: str = ""
    delay_seconds: int = 0
    success_url: str = ""
    failure_url: str = ""


@dataclass(slots=True)
class UploadResponse(Response):
    METHOD: ClassVar[str] = "UploadResponse"
    status: int = 1
    start_time: str = UNKNOWN_TIME
    complete_time: str = UNKNOWN_TIME


@dataclass(slots=True)
class Upload(AcsRequest):
    METHOD: ClassVar[str] = "Upload"
    RESPONSE: ClassVar[type[Message]] = UploadResponse
    command_key: str = ""
    file_type: str = "1 Vendor Configuration File"
    url: str = ""
    username: str = ""
    password: str = ""
    delay_seconds: int = 0


@dataclass(slots=True)
class ScheduleInformResponse(Response):
    METHOD: ClassVar[str] = "ScheduleInformResponse"


@dataclass(slots=True)
class ScheduleInform(AcsRequest):
    METHOD: ClassVar[str] = "ScheduleInform"
    RESPONSE: ClassVar[type[Message]] = ScheduleInformResponse
    delay_seconds: int = 0
    command_key: str = ""


# --- CPE -> ACS requests and the ACS's responses -----------------------------------------


@dataclass(slots=True)
class InformResponse(Response):
    METHOD: ClassVar[str] = "InformResponse"
    max_envelopes: int = 1


@dataclass(slots=True)
class Inform(CpeRequest):
    METHOD: ClassVar[str] = "Inform"
    RESPONSE: ClassVar[type[Message]] = InformResponse
    device_id: DeviceId
    events: list[EventStruct] = field(default_factory=list)
    max_envelopes: int = 1
    current_time: str = UNKNOWN_TIME
    retry_count: int = 0
    parameters: list[ParameterValue] = field(default_factory=list)

    def event_codes(self) -> list[str]:
        return [e.code for e in self.events]


@dataclass(slots=True)
class TransferCompleteResponse(Response):
    METHOD: ClassVar[str] = "TransferCompleteResponse"


@dataclass(slots=True)
class TransferComplete(CpeRequest):
    METHOD: ClassVar[str] = "TransferComplete"
    RESPONSE: ClassVar[type[Message]] = TransferCompleteResponse
    command_key: str = ""
    fault: FaultStruct = field(default_factory=FaultStruct)
    start_time: str = UNKNOWN_TIME
    complete_time: str = UNKNOWN_TIME


@dataclass(slots=True)
class AutonomousTransferCompleteResponse(Response):
    METHOD: ClassVar[str] = "AutonomousTransferCompleteResponse"


@dataclass(slots=True)
class AutonomousTransferComplete(CpeRequest):
    METHOD: ClassVar[str] = "AutonomousTransferComplete"
    RESPONSE: ClassVar[type[Message]] = AutonomousTransferCompleteResponse
    announce_url: str = ""
    transfer_url: str = ""
    is_download: bool = True
    file_type: str = ""
    file_size: int = 0
    target_file_name: str = ""
    fault: FaultStruct = field(default_factory=FaultStruct)
    start_time: str = UNKNOWN_TIME
    complete_time: str = UNKNOWN_TIME


@dataclass(slots=True)
class DUStateChangeCompleteResponse(Response):
    METHOD: ClassVar[str] = "DUStateChangeCompleteResponse"


@dataclass(slots=True)
class DUStateChangeComplete(CpeRequest):
    """A software-module operation (ChangeDUState) finished. Its Results are not read:
    acsd sends no ChangeDUState; the CPE is acknowledged so it stops retrying."""

    METHOD: ClassVar[str] = "DUStateChangeComplete"
    RESPONSE: ClassVar[type[Message]] = DUStateChangeCompleteResponse
    command_key: str = ""


@dataclass(slots=True)
class AutonomousDUStateChangeCompleteResponse(Response):
    METHOD: ClassVar[str] = "AutonomousDUStateChangeCompleteResponse"


@dataclass(slots=True)
class AutonomousDUStateChangeComplete(CpeRequest):
    """The CPE changed its software modules on its own; acknowledged, Results not read."""

    METHOD: ClassVar[str] = "AutonomousDUStateChangeComplete"
    RESPONSE: ClassVar[type[Message]] = AutonomousDUStateChangeCompleteResponse


@dataclass(slots=True)
class RequestDownloadResponse(Response):
    METHOD: ClassVar[str] = "RequestDownloadResponse"


@dataclass(slots=True)
class RequestDownload(CpeRequest):
    METHOD: ClassVar[str] = "RequestDownload"
    RESPONSE: ClassVar[type[Message]] = RequestDownloadResponse
    file_type: str = ""
    file_type_args: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class KickedResponse(Response):
    METHOD: ClassVar[str] = "KickedResponse"
    next_url: str = ""


@dataclass(slots=True)
class Kicked(CpeRequest):
    METHOD: ClassVar[str] = "Kicked"
    RESPONSE: ClassVar[type[Message]] = KickedResponse
    command: str = ""
    referer: str = ""
    arg: str = ""
    next: str = ""


# --- faults and the unknown --------------------------------------------------------------


@dataclass(slots=True)
class Fault(Message):
    """A SOAP Fault carrying a CWMP fault, in either direction.

    ``faultcode`` is SOAP's Client/Server (informational); ``code`` is the CWMP FaultCode
    that decisions are made on; ``spv_faults`` are the per-parameter entries of a
    SetParameterValues fault."""

    METHOD: ClassVar[str] = "Fault"
    code: int
    string: str = ""
    faultcode: str = "Client"
    spv_faults: list[SetParameterValuesFault] = field(default_factory=list)


@dataclass(slots=True)
class UnknownMessage(Message):
    """A Body child the codec does not know. The session answers it with fault 8000 (or
    9000 on the CPE side) and goes on."""

    METHOD: ClassVar[str] = ""
    name: str = ""


ACS_FAULTS: dict[int, str] = {
    8000: "Method not supported",
    8001: "Request denied",
    8002: "Internal error",
    8003: "Invalid arguments",
    8004: "Resources exceeded",
    8005: "Retry request",
    8006: "ACS version incompatible with CPE",
}


#: what a CPE's SOAP Fault without a CWMP FaultCode (gSOAP-style stacks on an internal
#: error: faultcode and faultstring alone) counts as: TR-069's internal error
NO_CWMP_CODE = 9002


def cpe_coded(fault: Fault) -> Fault:
    """``fault`` as the CPE's, with a CWMP code: one without any (code 0, which TR-069
    uses for "no fault") is the CPE's internal error, retried and shown as such."""
    if fault.code:
        return fault
    return Fault(NO_CWMP_CODE, fault.string, fault.faultcode, fault.spv_faults)


def is_cpe_fault(code: int) -> bool:
    """A fault the CPE raised (9000-9899, vendor codes included), not one the ACS made up
    for a CPE that answered with an empty POST or the wrong message (8xxx)."""
    return 9000 <= code <= 9899


CPE_FAULTS: dict[int, str] = {
    9000: "Method not supported",
    9001: "Request denied",
    9002: "Internal error",
    9003: "Invalid arguments",
    9004: "Resources exceeded",
    9005: "Invalid parameter name",
    9006: "Invalid parameter type",
    9007: "Invalid parameter value",
    9008: "Attempt to set a non-writable parameter",
    9009: "Notification request rejected",
    9010: "File transfer failure",
    9011: "Upload failure",
    9012: "File transfer server authentication failure",
    9013: "Unsupported protocol for file transfer",
}


def acs_fault(code: int, detail: str = "") -> Fault:
    """A fault the ACS sends (8000-8899); faultcode Server as GenieACS sends it."""
    text = ACS_FAULTS.get(code, "Fault")
    return Fault(code=code, string=f"{text}: {detail}" if detail else text, faultcode="Server")


def cpe_fault(
    code: int, detail: str = "", spv_faults: list[SetParameterValuesFault] | None = None
) -> Fault:
    """A fault the CPE sends (9000-9899)."""
    text = CPE_FAULTS.get(code, "Fault")
    return Fault(
        code=code,
        string=f"{text}: {detail}" if detail else text,
        faultcode="Client" if code != 9002 else "Server",
        spv_faults=list(spv_faults or []),
    )


def _all_message_classes() -> dict[str, type[Message]]:
    found: dict[str, type[Message]] = {}
    for obj in list(globals().values()):
        if isinstance(obj, type) and issubclass(obj, Message) and getattr(obj, "METHOD", ""):
            found[obj.METHOD] = obj
    return found


#: Every known Body element name -> its class (Fault excluded: it lives in SOAP's namespace).
MESSAGES: dict[str, type[Message]] = {
    name: cls for name, cls in _all_message_classes().items() if cls is not Fault
}
