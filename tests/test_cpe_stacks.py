"""Open-source CPE stacks on the wire: each one's HTTP and SOAP written here byte by byte,
as its source writes them, against the running daemon; and acsd's answers read back the
way that stack's parser reads them.

Sources (public repositories; file that each behaviour comes from):

- easycwmp (pivasoftware/easycwmp, OpenWrt, C, libcurl + microxml): ``src/http.c``
  (``User-Agent: easycwmp``, ``Accept:`` removed, ``Content-Type: text/html;
  charset=utf-8``, a libcurl cookie jar, an empty POST with ``Content-Length: 0``, 200 and
  204 taken, anything else a failed session), ``src/messages.h`` (``soap_env``/``soap_enc``
  prefixes, cwmp-1-2, an XML declaration with ``standalone="no"``), ``src/xml.c`` (output
  indented one space per level; values without ``xsi:type`` and arrays without arrayType
  unless built with ACS_MULTI; a GetParameterValues with one unknown name is one fault;
  the ACS's namespaces are found on one element and its cwmp URN must be 1-0 to 1-2; the
  method element must carry that cwmp prefix; a SetParameterValues naming a parameter
  twice is refused 9003 (``xml_check_duplicated_parameter``); AddObject/DeleteObject
  without ParameterKey and Reboot without CommandKey are 9003), ``src/cwmp.c`` (after a
  Reboot: ``1 BOOT`` and ``M Reboot`` with its CommandKey).
- icwmp (iopsys, forked from easycwmp; nvta2/icwmp): ``http.c`` (``User-Agent:
  iopsys-cwmp``, ``Content-Type: text/xml`` without charset, ``Content-Encoding: gzip``
  with libcurl's ``Accept-Encoding: gzip`` when compression is on, even on the empty
  POST), ``xml.c`` (the Inform in ``cwmp_urls[amd-1]``: cwmp-1-4 for amendment 5, with
  ``SessionTimeout`` and ``SupportedCWMPVersions`` "1.0, 1.1, 1.2, 1.3, 1.4", comma and
  space; ``UseCWMPVersion`` read as "1.N" giving the namespace of the rest of the
  session; soap-env, soap-enc, xsd, xsi and cwmp all declared on one element;
  ``xsi:type="soap_enc:Array"`` on arrays), ``cwmp.c`` (earlier releases stamp their
  answers to the ACS with their own counter, ``xml_set_cwmp_id``, not the ACS's ID).
- freecwmp (KanjiMonster/freecwmp, easycwmp's ancestor): ``src/http/http.c`` with
  HTTP_CURL: a new curl handle, so a new TCP connection, for every message, cookies kept
  in a jar file between them; ``Content-Type: text/xml``, ``User-Agent: freecwmp``.
- genieacs-sim (genieacs/genieacs-sim, Node): ``simulator.js`` (``Content-Type:
  text/xml; charset="utf-8"``, a Basic ``Authorization`` on every request, the whole
  ``Set-Cookie`` value sent back as the Cookie, kept into the next session; keep-alive;
  cwmp-1-0, soap-env/soap-enc; the first Inform of a run is ``2 PERIODIC``; a method it
  lacks, Reboot among them, answered with fault 9000 "Method not supported";
  ``handleMethod`` takes the first Body child whose name starts with ``cwmp:`` and the
  Header's ``ID``), ``methods.js`` (TransferComplete with CommandKey, StartTime,
  CompleteTime, then FaultStruct).

The routers' data models are the in-tree trees (``acsd.sim.tree``, data only); every byte
on the wire is written here, not by the in-tree simulator.
"""

from __future__ import annotations

import gzip
import re
import socket
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from lxml import etree

from acsd.cwmp import rpc
from acsd.cwmp.soap import parse_envelope
from acsd.sim.identity import router_values
from acsd.sim.template import Template, load_template
from acsd.sim.tree import CwmpFault, Tree
from api_world import seed_body

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"
XSD = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
CWMP_URLS = [f"urn:dslforum-org:cwmp-1-{n}" for n in range(5)]

# --- XML as the stacks write it -------------------------------------------------------------

Node = tuple[str, dict[str, str], "list[Node] | str | None"]


def N(name: str, attrs: dict[str, str] | None = None, kids: list | str | None = None) -> Node:
    return (name, attrs or {}, kids)


def xml(node: Node, indent: str, declaration: str) -> bytes:
    """``node`` as mxml's whitespace callbacks or genieacs-sim's xml-utils write it:
    ``indent`` per level before each tag, a line break after it ("" for neither)."""
    out = [declaration + "\n" if declaration else ""]
    brk = "\n" if indent else ""

    def write(n: Node, depth: int) -> None:
        name, attrs, kids = n
        attr = "".join(f' {k}="{escape(v, {chr(34): "&quot;"})}"' for k, v in attrs.items())
        pad = indent * depth
        if kids is None:
            out.append(f"{pad}<{name}{attr}/>{brk}")
        elif isinstance(kids, str):
            out.append(f"{pad}<{name}{attr}>{escape(kids)}</{name}>{brk}")
        else:
            out.append(f"{pad}<{name}{attr}>{brk}")
            for kid in kids:
                write(kid, depth + 1)
            out.append(f"{pad}</{name}>{brk}")

    write(node, 0)
    return "".join(out).encode()


# --- HTTP as the stacks send it -------------------------------------------------------------


@dataclass
class Exchange:
    status: int
    headers: dict[str, list[str]]
    body: bytes


@dataclass
class RawHttp:
    """One CPE's HTTP client on a raw socket. ``cookies``: "jar" (libcurl: name=value of
    each Set-Cookie), "whole" (genieacs-sim: the Set-Cookie value as it came); ``expect``:
    bodies over this many bytes wait for 100 Continue (libcurl before 8.0: 1024);
    ``per_message``: a new connection for every message (freecwmp)."""

    url: str
    headers: list[tuple[str, str]]
    cookies: str = "jar"
    expect: int | None = None
    per_message: bool = False
    gzip_bodies: bool = False
    cookie: str | None = None
    connections: int = 0
    sock: socket.socket | None = None
    buf: bytes = b""
    sent: list[bytes] = field(default_factory=list)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _head(self) -> tuple[int, dict[str, list[str]]]:
        assert self.sock is not None
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, f"the ACS closed the connection: {self.buf!r}"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return int(lines[0].split()[1]), headers

    def post(self, body: bytes | None) -> Exchange:
        if self.sock is None:
            parts = urlsplit(self.url)
            self.sock = socket.create_connection((parts.hostname, parts.port), timeout=15)
            self.buf = b""
            self.connections += 1
        data = body or b""
        if self.gzip_bodies and data:
            data = gzip.compress(data)
        parts = urlsplit(self.url)
        head = ["POST /acs HTTP/1.1", f"Host: {parts.hostname}:{parts.port}"]
        head += [f"{k}: {v}" for k, v in self.headers]
        if self.cookie:
            head.append(f"Cookie: {self.cookie}")
        head.append(f"Content-Length: {len(data)}")
        waits = self.expect is not None and len(data) > self.expect
        if waits:
            head.append("Expect: 100-continue")
        request = ("\r\n".join(head) + "\r\n\r\n").encode()
        self.sent.append(request)
        self.sock.sendall(request)
        if waits:
            status, _ = self._head()
            assert status == 100, status
        self.sock.sendall(data)
        status, headers = self._head()
        length = int(headers.get("content-length", ["0"])[0])
        while len(self.buf) < length:
            chunk = self.sock.recv(65536)
            assert chunk
            self.buf += chunk
        payload, self.buf = self.buf[:length], self.buf[length:]
        if "set-cookie" in headers:
            values = headers["set-cookie"]
            self.cookie = values[0].split(";", 1)[0] if self.cookies == "jar" else values[0]
        closing = any(v.lower() == "close" for v in headers.get("connection", ()))
        if closing or self.per_message:
            self.close()
        return Exchange(status, headers, payload)


# --- the stacks -----------------------------------------------------------------------------


class Stack:
    """What every stack here shares; subclasses hold what differs."""

    env = "soap_env"
    enc = "soap_enc"
    ns = CWMP_URLS[2]
    indent = " "
    declaration = '<?xml version="1.0" encoding="UTF-8" standalone="no"?>'
    typed = False

    def __init__(self) -> None:
        self.own_id = 0

    def header(self) -> list[Node]:
        return []

    def envelope(self, cwmp_id: str, body: Node, header: list[Node] | None = None) -> bytes:
        p = self.env
        namespaces = {
            f"xmlns:{p}": SOAP_ENV,
            f"xmlns:{self.enc}": SOAP_ENC,
            "xmlns:xsd": XSD,
            "xmlns:xsi": XSI,
            "xmlns:cwmp": self.ns,
        }
        ident = N("cwmp:ID", {f"{p}:mustUnderstand": "1"}, cwmp_id)
        head = N(f"{p}:Header", {}, [ident, *(header or [])])
        return xml(
            N(f"{p}:Envelope", namespaces, [head, N(f"{p}:Body", {}, [body])]),
            self.indent,
            self.declaration,
        )

    def values(self, params: list[rpc.ParameterValue]) -> list[Node]:
        def value(pv: rpc.ParameterValue) -> Node:
            return N("Value", {"xsi:type": pv.type or "xsd:string"} if self.typed else {}, pv.value)

        return [N("ParameterValueStruct", {}, [N("Name", {}, p.name), value(p)]) for p in params]

    def array(self, of: str, count: int) -> dict[str, str]:
        return {}

    def inform(
        self, tree: Tree, template: Template, serial: str, events: list[tuple[str, str]]
    ) -> bytes:
        ids = template.device_id
        structs = [
            N("EventStruct", {}, [N("EventCode", {}, code), N("CommandKey", {}, key)])
            for code, key in events
        ]
        params = tree.get_values(template.inform)
        device = [
            N("Manufacturer", {}, tree.get(ids["manufacturer"])),
            N("OUI", {}, tree.get(ids["oui"])),
            N("ProductClass", {}, tree.get(ids["product_class"])),
            N("SerialNumber", {}, serial),
        ]
        body = N(
            "cwmp:Inform",
            {},
            [
                N("DeviceId", {}, device),
                N("Event", {f"{self.enc}:arrayType": f"cwmp:EventStruct[{len(structs)}]"}, structs),
                N("MaxEnvelopes", {}, "1"),
                N("CurrentTime", {}, "2026-12-06T22:00:00+01:00"),
                N("RetryCount", {}, "0"),
                N(
                    "ParameterList",
                    self.array("ParameterValueStruct", len(params)),
                    self.values(params),
                ),
            ],
        )
        self.own_id += 1
        return self.envelope(str(self.own_id), body, self.header())

    def fault(self, code: int, text: str, spv: list[rpc.SetParameterValuesFault] = ()) -> Node:
        detail = [N("FaultCode", {}, str(code)), N("FaultString", {}, text)]
        detail += [
            N(
                "SetParameterValuesFault",
                {},
                [
                    N("ParameterName", {}, f.name),
                    N("FaultCode", {}, str(f.code)),
                    N("FaultString", {}, f.string),
                ],
            )
            for f in spv
        ]
        return N(
            f"{self.env}:Fault",
            {},
            [
                N("faultcode", {}, "Client"),
                N("faultstring", {}, "CWMP fault"),
                N("detail", {}, [N("cwmp:Fault", {}, detail)]),
            ],
        )

    def read(self, body: bytes) -> None:
        """Fails where this stack's parser would refuse what the ACS sent."""

    def answer(self, request: rpc.Message, tree: Tree) -> Node:
        try:
            if isinstance(request, rpc.GetParameterValues):
                params = tree.get_values(request.names)
                return N(
                    "cwmp:GetParameterValuesResponse",
                    {},
                    [
                        N(
                            "ParameterList",
                            self.array("ParameterValueStruct", len(params)),
                            self.values(params),
                        )
                    ],
                )
            if isinstance(request, rpc.SetParameterValues):
                status = tree.set_values(request.parameters, request.parameter_key)
                return N("cwmp:SetParameterValuesResponse", {}, [N("Status", {}, str(status))])
            if isinstance(request, rpc.AddObject):
                number = tree.add_object(request.object_name, request.parameter_key)
                return N(
                    "cwmp:AddObjectResponse",
                    {},
                    [N("InstanceNumber", {}, str(number)), N("Status", {}, "0")],
                )
            if isinstance(request, rpc.DeleteObject):
                tree.delete_object(request.object_name, request.parameter_key)
                return N("cwmp:DeleteObjectResponse", {}, [N("Status", {}, "0")])
            if isinstance(request, rpc.Reboot):
                self.reboot_key = request.command_key
                return N("cwmp:RebootResponse", {}, [])
        except CwmpFault as exc:
            return self.fault(exc.code, exc.detail or "Fault", exc.spv_faults)
        return self.fault(9000, "Method not supported")

    reboot_key: str | None = None


class Easycwmp(Stack):
    """pivasoftware/easycwmp, built without ACS_MULTI (its default)."""

    def read(self, body: bytes) -> None:
        root = etree.fromstring(body)
        # xml_recreate_namespace: the cwmp URN it knows (1-0 to 1-2) and the envelope's,
        # declared on one element
        declared = next(
            el.nsmap for el in root.iter() if set(el.nsmap.values()) & set(CWMP_URLS[:3])
        )
        cwmp_prefix = next(p for p, u in declared.items() if u in CWMP_URLS[:3])
        assert SOAP_ENV in declared.values()
        body_el = root.find(f"{{{SOAP_ENV}}}Body")
        method = body_el[0]
        # the method element must carry the cwmp prefix, else 9003
        assert method.prefix == cwmp_prefix, method.tag
        name = etree.QName(method).localname
        kids = {etree.QName(c).localname for c in method}
        if name in ("AddObject", "DeleteObject"):
            assert "ParameterKey" in kids
        if name == "Reboot":
            assert "CommandKey" in kids  # xml_handle_reboot reads it uninitialised otherwise
        if name == "SetParameterValues":
            names = Counter(n.text for n in method.iter("Name"))
            assert not [n for n, k in names.items() if k > 1], names  # 9003 otherwise
        if name == "InformResponse":
            assert method.find("MaxEnvelopes").text


class Icwmp(Stack):
    """iopsys icwmp, amendment 5 (CWMP 1.4), built with ACS_MULTI, gzip on."""

    ns = CWMP_URLS[4]
    indent = "  "
    typed = True

    def __init__(self) -> None:
        super().__init__()
        self.holds: list[int] = []

    def header(self) -> list[Node]:
        return [
            N("cwmp:SessionTimeout", {"soap_env:mustUnderstand": "0"}, "60"),
            N(
                "cwmp:SupportedCWMPVersions",
                {"soap_env:mustUnderstand": "0"},
                "1.0, 1.1, 1.2, 1.3, 1.4",
            ),
        ]

    def array(self, of: str, count: int) -> dict[str, str]:
        return {"xsi:type": "soap_enc:Array", "soap_enc:arrayType": f"cwmp:{of}[{count}]"}

    def read(self, body: bytes) -> None:
        root = etree.fromstring(body)
        # xml_recreate_namespace: all five on one element
        assert {SOAP_ENV, SOAP_ENC, XSD, XSI} <= set(root.nsmap.values()), root.nsmap
        prefix = next(p for p, u in root.nsmap.items() if u in CWMP_URLS)
        method = root.find(f"{{{SOAP_ENV}}}Body")[0]
        assert method.prefix == prefix
        # xml_send_message: a "<FaultCode>" anywhere is a fault of the ACS
        assert (b"<FaultCode>" in body) == (etree.QName(method).localname == "Fault")
        # session->hold_request = atoi(...) of HoldRequests (or NoMoreRequests)
        hold = re.search(rb"HoldRequests[^>]*>([^<]*)<", body)
        if hold:
            self.holds.append(atoi(hold.group(1).decode()))
        use = re.search(rb"UseCWMPVersion[^>]*>([^<]*)<", body)
        if use:
            version = use.group(1).decode()
            assert version[1] == "."  # cwmp_rpc_acs_parse_response_inform
            self.ns = CWMP_URLS[int(version[2:])]  # amd_version = N + 1

    def envelope(self, cwmp_id: str, body: Node, header: list[Node] | None = None) -> bytes:
        if header is None:
            # earlier releases answer the ACS with their own counter (xml_set_cwmp_id)
            self.own_id += 1
            cwmp_id = str(self.own_id)
        return super().envelope(cwmp_id, body, header)


def atoi(text: str) -> int:
    """C's atoi(): the leading integer, 0 for none ("true" is 0)."""
    found = re.match(r"\s*([+-]?[0-9]+)", text)
    return int(found.group(1)) if found else 0


class GenieacsSim(Stack):
    env = "soap-env"
    enc = "soap-enc"
    ns = CWMP_URLS[0]
    indent = ""
    declaration = '<?xml version="1.0" encoding="UTF-8"?>'
    typed = True

    def read(self, body: bytes) -> None:
        root = etree.fromstring(body)
        header, body_el = root[0], root[1]  # envelope.children: Header, then Body
        assert etree.QName(header).localname == "Header"
        assert any(etree.QName(c).localname == "ID" for c in header)
        first = body_el[0]
        assert first.prefix == "cwmp"  # c.name.startsWith("cwmp:")

    def answer(self, request: rpc.Message, tree: Tree) -> Node:
        if isinstance(request, rpc.Reboot):
            return self.fault(9000, "Method not supported")  # methods.js has no Reboot
        return super().answer(request, tree)


# --- sessions -------------------------------------------------------------------------------


def router(daemon, tree_name: str, serial: str) -> tuple[Template, Tree]:
    template = load_template(tree_name)
    oui = template.defaults[template.device_id["oui"]]
    ident = router_values(tree_name, oui, 1, serial, daemon.cwmp_url, "http://127.0.0.1:9/")
    return template, Tree.from_template(template, ident)


def session(
    stack: Stack,
    http: RawHttp,
    tree: Tree,
    template: Template,
    serial: str,
    events: list[tuple[str, str]],
) -> list[str]:
    """One session as the stack drives it: Inform, empty POST, then each ACS request
    answered until the 204. Returns the methods the ACS asked for."""
    answer = http.post(stack.inform(tree, template, serial, events))
    assert answer.status == 200, answer.body
    stack.read(answer.body)
    assert isinstance(parse_envelope(answer.body).body, rpc.InformResponse)
    answer = http.post(None)
    asked = []
    while answer.status == 200:
        stack.read(answer.body)
        env = parse_envelope(answer.body)
        asked.append(env.body.METHOD)
        assert env.cwmp_ns == stack.ns
        answer = http.post(stack.envelope(env.id or "", stack.answer(env.body, tree)))
    assert answer.status == 204, (answer.status, answer.body)
    assert answer.headers["connection"] == ["close"]
    return asked


def easycwmp_http(daemon) -> RawHttp:
    headers = [("User-Agent", "easycwmp"), ("Content-Type", "text/html; charset=utf-8")]
    return RawHttp(daemon.cwmp_url, headers, cookies="jar", expect=1024)


W = "InternetGatewayDevice.LANDevice.1.WLANConfiguration."


def test_easycwmp_is_provisioned_at_bootstrap_and_read_at_periodic_informs(module_daemon):
    daemon = module_daemon
    serial = "EASYCWMP0001"
    template, tree = router(daemon, "tr098-dsl", serial)
    daemon.apply(seed_body(serial, "192.168.1"))
    stack = Easycwmp()
    http = easycwmp_http(daemon)
    asked = session(stack, http, tree, template, serial, [("0 BOOTSTRAP", ""), ("1 BOOT", "")])
    assert asked[0] == "GetParameterValues" and "SetParameterValues" in asked
    assert tree.get(W + "1.SSID") == "SkyNet" and tree.get(W + "2.SSID") == "Need4Speed"
    # libcurl waited for 100 Continue before its Inform (over 1 KiB) and kept the cookie
    assert any(b"Expect: 100-continue" in r for r in http.sent)
    assert all(b"Cookie: acsd_session=" in r for r in http.sent[1:])
    device = daemon.device_json(serial)
    assert device["state"] == "ACTIVE" and device["status"]["provisioned"] is True

    # the next session (a new curl handle, cookies gone with it) only reads
    asked = session(stack, easycwmp_http(daemon), tree, template, serial, [("2 PERIODIC", "")])
    assert asked == ["GetParameterValues"]
    assert daemon.device_json(serial)["status"]["lanIp"] == "192.168.1.1"


def test_icwmp_speaks_cwmp_1_4_compressed_and_stamps_its_own_ids(module_daemon):
    daemon = module_daemon
    serial = "ICWMP0000001"
    template, tree = router(daemon, "tr181-generic", serial)
    daemon.apply(seed_body(serial, "192.168.1"))
    headers = [
        ("User-Agent", "iopsys-cwmp"),
        ("Content-Type", "text/xml"),
        ("Accept-Encoding", "gzip"),
        ("Content-Encoding", "gzip"),
    ]

    def http() -> RawHttp:
        return RawHttp(daemon.cwmp_url, headers, expect=1024, gzip_bodies=True)

    stack = Icwmp()
    asked = session(stack, http(), tree, template, serial, [("0 BOOTSTRAP", ""), ("1 BOOT", "")])
    assert "SetParameterValues" in asked
    assert stack.ns == CWMP_URLS[4]  # UseCWMPVersion 1.4: the namespace it started in
    assert tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"
    assert daemon.device_json(serial)["state"] == "ACTIVE"
    assert session(stack, http(), tree, template, serial, [("2 PERIODIC", "")]) == [
        "GetParameterValues"
    ]


def test_icwmp_reads_hold_requests_as_the_acs_means_it(module_daemon_factory):
    # acsd wrote HoldRequests as "true", which icwmp (and easycwmp) read with atoi(): 0,
    # requests not held.
    daemon = module_daemon_factory(cwmp={"hold_requests": True})
    serial = "ICWMPHOLD001"
    template, tree = router(daemon, "tr181-generic", serial)
    headers = [("User-Agent", "iopsys-cwmp"), ("Content-Type", "text/xml")]
    stack = Icwmp()
    http = RawHttp(daemon.cwmp_url, headers, expect=1024)
    assert session(stack, http, tree, template, serial, [("0 BOOTSTRAP", ""), ("1 BOOT", "")])
    assert stack.holds and set(stack.holds) == {1}


def test_freecwmp_opens_a_connection_for_every_message(module_daemon):
    daemon = module_daemon
    serial = "FREECWMP0001"
    template, tree = router(daemon, "tr098-dsl", serial)
    daemon.apply(seed_body(serial, "192.168.1"))
    headers = [("User-Agent", "freecwmp"), ("Content-Type", "text/xml")]
    http = RawHttp(daemon.cwmp_url, headers, per_message=True, expect=1024)
    asked = session(Easycwmp(), http, tree, template, serial, [("0 BOOTSTRAP", ""), ("1 BOOT", "")])
    assert "SetParameterValues" in asked and http.connections == len(http.sent)
    assert daemon.device_json(serial)["state"] == "ACTIVE"


def test_genieacs_sim_http_and_its_inform(module_daemon):
    # Only the start of a session, its HTTP and Inform: its sessions with its own data
    # model (names it holds only, methods.js) are test_genieacs_sim_model's.
    daemon = module_daemon
    serial = "GSIM00000001"
    template, tree = router(daemon, "tr098-dsl", serial)
    stack = GenieacsSim()
    headers = [
        ("Content-Type", 'text/xml; charset="utf-8"'),
        ("Authorization", "Basic Og=="),  # "" and "": acsd asks for no credentials here
        ("Connection", "keep-alive"),
    ]
    http = RawHttp(daemon.cwmp_url, headers, cookies="whole")
    for _ in range(2):  # the second session starts with the first one's cookie
        answer = http.post(stack.inform(tree, template, serial, [("2 PERIODIC", "")]))
        assert answer.status == 200
        stack.read(answer.body)
        assert http.cookie.endswith("; HttpOnly; Path=/")
        complete = N(
            "cwmp:TransferComplete",
            {},
            [
                N("CommandKey", {}, "sim-1"),
                N("StartTime", {}, "2026-12-06T21:59:58.000Z"),
                N("CompleteTime", {}, "2026-12-06T21:59:59.000Z"),
                N("FaultStruct", {}, [N("FaultCode", {}, "0"), N("FaultString", {}, "")]),
            ],
        )
        answer = http.post(stack.envelope("tc1", complete))
        stack.read(answer.body)
        assert isinstance(parse_envelope(answer.body).body, rpc.TransferCompleteResponse)
        answer = http.post(None)
        stack.read(answer.body)
        http.close()  # where the sim stops (see above); the next Inform ends this session
    assert daemon.device_json(serial)["serialNumber"] == serial


def test_a_reboot_and_what_the_cpe_sends_after_it(module_daemon):
    daemon = module_daemon
    serial = "EASYREBOOT01"
    template, tree = router(daemon, "zyxel-vmg8825", serial)
    daemon.apply(seed_body(serial, "192.168.1"))  # a lease time: Zyxel applies it at boot
    stack = Easycwmp()
    asked = session(stack, easycwmp_http(daemon), tree, template, serial, [("1 BOOT", "")])
    assert asked[-1] == "Reboot" and stack.reboot_key
    notes = daemon.device_json(serial)["job"]["notes"]
    assert "rebooted: a changed value needs it" in notes
    events = [("1 BOOT", ""), ("M Reboot", stack.reboot_key)]
    asked = session(stack, easycwmp_http(daemon), tree, template, serial, events)
    assert asked == ["GetParameterValues"]
    job = daemon.device_json(serial)["job"]
    assert job["state"] == "DONE" and job["notes"] == []


def test_a_reboot_the_cpe_refuses_is_not_reported_as_done(module_daemon):
    # A stack without the method answers 9000 (genieacs-sim's handleMethod); the job
    # said "rebooted" all the same, and the values waiting for a reboot looked in effect.
    daemon = module_daemon
    serial = "NOREBOOT0001"
    template, tree = router(daemon, "zyxel-vmg8825", serial)
    daemon.apply(seed_body(serial, "192.168.1"))
    stack = GenieacsSim()
    http = RawHttp(daemon.cwmp_url, [("Content-Type", 'text/xml; charset="utf-8"')], "whole")
    asked = session(stack, http, tree, template, serial, [("1 BOOT", "")])
    assert asked[-1] == "Reboot"
    notes = daemon.device_json(serial)["job"]["notes"]
    assert "rebooted: a changed value needs it" not in notes
    assert "reboot refused (9000 Method not supported): not rebooted" in notes
    assert "the CPE applies some values after its next reboot" in notes
    # and it stays so until the router boots
    http = RawHttp(daemon.cwmp_url, [("Content-Type", 'text/xml; charset="utf-8"')], "whole")
    assert session(stack, http, tree, template, serial, [("2 PERIODIC", "")]) == [
        "GetParameterValues"
    ]
    # (its settings are not checked meanwhile: it reads back the values before)
    assert daemon.device_json(serial)["job"]["notes"] == notes
    # and once it has booted, neither note stands
    http = RawHttp(daemon.cwmp_url, [("Content-Type", 'text/xml; charset="utf-8"')], "whole")
    session(stack, http, tree, template, serial, [("1 BOOT", "")])
    notes = daemon.device_json(serial)["job"]["notes"]
    assert not any("reboot" in note for note in notes), notes
