"""The ceiling to compare acsd with: a bare aiohttp server on the same core that parses
each request with lxml and answers a fixed InformResponse, one fixed GetParameterValues,
then 204 — the same HTTP exchanges as an acsd steady-state session, with no work."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from aiohttp import web
from lxml import etree

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
ENV = (
    '<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:soap-enc="http://schemas.xmlsoap.org/soap/encoding/" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><soap-env:Header>'
    '<cwmp:ID soap-env:mustUnderstand="1">1</cwmp:ID></soap-env:Header>'
    "<soap-env:Body>{}</soap-env:Body></soap-env:Envelope>"
)
INFORM_RESPONSE = ENV.format(
    "<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>"
).encode()
GPV = ENV.format(
    '<cwmp:GetParameterValues><ParameterNames soap-enc:arrayType="xsd:string[1]">'
    "<string>Device.DeviceInfo.UpTime</string></ParameterNames></cwmp:GetParameterValues>"
).encode()
HEADERS = {"Content-Type": 'text/xml; charset="utf-8"'}


async def handle(request: web.Request) -> web.Response:
    body = await request.read()
    if not body.strip():
        return web.Response(status=200, body=GPV, headers=HEADERS)
    root = etree.fromstring(body, PARSER)
    method = etree.QName(root[-1][0]).localname
    if method == "Inform":
        return web.Response(status=200, body=INFORM_RESPONSE, headers=HEADERS)
    return web.Response(status=204)


async def serve(port: int) -> None:
    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)  # once the socket listens: the orchestrator starts the load
    try:
        await asyncio.Event().wait()  # until SIGTERM
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:  # the same loop acsd runs on (uvloop where installed): compare like with like
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(args.port))
