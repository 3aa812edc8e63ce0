"""Hand-written CWMP on the wire, for tests that need exact bytes rather than the simulator:
envelopes as real CPEs format them, and a tiny keep-alive HTTP client."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def envelope(
    body: str,
    *,
    ns: str = "urn:dslforum-org:cwmp-1-0",
    prefix: str = "SOAP-ENV",
    cwmp_id: str | None = "1",
) -> bytes:
    header = (
        f'<{prefix}:Header><cwmp:ID {prefix}:mustUnderstand="1">{cwmp_id}</cwmp:ID>'
        f"</{prefix}:Header>"
        if cwmp_id is not None
        else ""
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<{prefix}:Envelope xmlns:{prefix}="{SOAP_ENV}" '
        f'xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" '
        f'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="{ns}">'
        f"{header}<{prefix}:Body>{body}</{prefix}:Body></{prefix}:Envelope>"
    ).encode()


def inform_body(
    serial: str,
    *,
    events: tuple[str, ...] = ("1 BOOT",),
    params: dict[str, str] | None = None,
    oui: str = "00D09E",
    product_class: str = "TestBox",
    root: str = "Device.",
    manufacturer: str = "Test",
) -> str:
    params = params or {
        f"{root}DeviceInfo.SoftwareVersion": "1.0.0",
        f"{root}DeviceInfo.HardwareVersion": "HW1",
        f"{root}ManagementServer.ConnectionRequestURL": "http://127.0.0.1:9/cr",
        f"{root}ManagementServer.ParameterKey": "",
    }
    events_xml = "".join(
        f"<EventStruct><EventCode>{code}</EventCode><CommandKey></CommandKey></EventStruct>"
        for code in events
    )
    params_xml = "".join(
        f'<ParameterValueStruct><Name>{name}</Name><Value xsi:type="xsd:string">{value}'
        f"</Value></ParameterValueStruct>"
        for name, value in params.items()
    )
    return (
        f"<cwmp:Inform><DeviceId><Manufacturer>{manufacturer}</Manufacturer>"
        f"<OUI>{oui}</OUI><ProductClass>{product_class}</ProductClass>"
        f"<SerialNumber>{serial}</SerialNumber></DeviceId>"
        f'<Event SOAP-ENC:arrayType="cwmp:EventStruct[{len(events)}]">{events_xml}</Event>'
        "<MaxEnvelopes>1</MaxEnvelopes><CurrentTime>2026-01-01T00:00:00Z</CurrentTime>"
        "<RetryCount>0</RetryCount>"
        f'<ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[{len(params)}]">'
        f"{params_xml}</ParameterList></cwmp:Inform>"
    )


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Wire:
    """One CPE's HTTP connection, keep-alive, with or without cookies."""

    def __init__(
        self,
        url: str,
        *,
        cookies: bool = True,
        timeout: float = 15,
        source: str | None = None,
        context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        #: an https URL is spoken over TLS with ``context`` (None: the default checks),
        #: on every connection, reconnect()'s too
        self.tls = parts.scheme == "https"
        self.context = context
        self.port = parts.port or (443 if self.tls else 80)
        self.path = parts.path or "/"
        self.cookies = cookies
        self.cookie: str | None = None
        #: the answer to the latest request, and the socket it came on (the connection
        #: is let go of when the answer closes it)
        self.last: Answer | None = None
        self.last_sock: socket.socket | None = None
        self.timeout = timeout
        #: the address the CPE connects from (another loopback one: a CPE of its own
        #: address), else the system's choice
        self.source = (source, 0) if source else None
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        if self.tls:
            return http.client.HTTPSConnection(
                self.host,
                self.port,
                timeout=self.timeout,
                source_address=self.source,
                context=self.context,
            )
        return http.client.HTTPConnection(
            self.host, self.port, timeout=self.timeout, source_address=self.source
        )

    def post(
        self,
        body: bytes | None,
        *,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        content_length: bool = True,
    ) -> Answer:
        """``headers``: a dict replaces the defaults of the same name; a list of pairs is
        sent after them as it is (a name may repeat, as some CPEs repeat ``Cookie``)."""
        hdrs = {"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": ""}
        if self.cookie and self.cookies:
            hdrs["Cookie"] = self.cookie
        repeated = headers if isinstance(headers, list) else []
        if isinstance(headers, dict):
            hdrs.update(headers)
        self.conn.putrequest("POST", self.path, skip_accept_encoding=True)
        for key, value in [*hdrs.items(), *repeated]:
            self.conn.putheader(key, value)
        data = body or b""
        if content_length or data:
            self.conn.putheader("Content-Length", str(len(data)))
        self.conn.endheaders(data or None)
        self.last_sock = self.conn.sock
        response = self.conn.getresponse()
        payload = response.read()
        set_cookie = response.getheader("Set-Cookie")
        if set_cookie:
            self.cookie = set_cookie.split(";", 1)[0]
        self.last = Answer(response.status, response.headers, payload)
        return self.last

    def reconnect(self) -> None:
        self.conn.close()
        self.conn = self._connect()

    def close(self) -> None:
        self.conn.close()


def expect_continue(url: str, body: bytes) -> tuple[tuple[str, int], bytes]:
    """The address of ``url`` and the head of a POST of ``body`` that waits for
    ``100 Continue`` before sending it (as libcurl-based CPE stacks do), for a raw socket."""
    parts = urlsplit(url)
    head = (
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    return (parts.hostname or "127.0.0.1", parts.port or 80), head


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    """What a raw socket receives until ``marker`` has come (fails if the peer closes)."""
    answer = b""
    while marker not in answer:
        chunk = sock.recv(65536)
        assert chunk, answer
        answer += chunk
    return answer


def post_slowly(url: str, body: bytes, *, cookie: str | None, pause: float) -> bytes:
    """A POST of ``body`` on a connection of its own, as a CPE on a slow uplink sends it:
    its first 100 bytes, ``pause`` seconds of nothing, then the rest. ``cookie`` is a
    ``name=value`` to send back (None: a CPE that keeps none). Returns the status line."""
    parts = urlsplit(url)
    head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
    if cookie is not None:
        head += f"Cookie: {cookie}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    with socket.create_connection(address, timeout=15) as sock:
        sock.sendall(head.encode() + body[:100])
        time.sleep(pause)
        sock.sendall(body[100:])
        return read_until(sock, b"\r\n").split(b"\r\n", 1)[0]


def post_once(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """One POST on a connection of its own: the status and body of the answer."""
    wire = Wire(url)
    try:
        answer = wire.post(body, headers=headers)
        return answer.status, answer.body
    finally:
        wire.close()
