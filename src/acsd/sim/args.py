"""The arguments of ``acsd sim``.

Apart from :mod:`acsd.sim.cli` because the ``acsd`` command builds its whole parser on
every call: importing the simulator (aiohttp's client and more) for that doubled the start
of ``acsd device list``.
"""

from __future__ import annotations

import argparse

from acsd.sim.quirks import QUIRKS

DEFAULT_PROFILE = "tr181-mobile"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--acs", metavar="URL", help="ACS URL, e.g. http://127.0.0.1:7547/")
    parser.add_argument("--count", type=int, default=1, metavar="N", help="routers (default 1)")
    parser.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help=f"router profile; repeat or comma-separate to mix (default {DEFAULT_PROFILE})",
    )
    parser.add_argument(
        "--serial-prefix",
        metavar="P",
        help="serials are P000001, P000002, ... (default per profile)",
    )
    parser.add_argument(
        "--once", action="store_true", help="one boot session per router, then exit (0 = all ok)"
    )
    parser.add_argument(
        "--interval", type=float, metavar="S", help="override PeriodicInformInterval (seconds)"
    )
    parser.add_argument("--duration", type=float, metavar="S", help="stop a periodic run after S s")
    parser.add_argument(
        "--ramp", type=float, metavar="S", help="spread the boots over S s (default: one interval)"
    )
    parser.add_argument(
        "--retry-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply CWMP retry back-off and Retry-After waits by F (default 1)",
    )
    parser.add_argument(
        "--delay-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply ScheduleInform/Download DelaySeconds by F (default 1)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=64, metavar="C", help="max sessions in flight (64)"
    )
    parser.add_argument("--dump", metavar="DIR", help="write each final tree to DIR/SERIAL.json")
    parser.add_argument(
        "--state", metavar="DIR", help="load routers from DIR at start, save them at exit"
    )
    parser.add_argument(
        "--report",
        metavar="FILE",
        help="at exit write JSON per router: sessions, ACS requests per session, faults",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="PATH=CODE",
        help="refuse every SetParameterValues touching PATH with fault CODE, e.g. "
        "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID=9007 (repeatable; "
        "PATH may hold * for instance numbers, end in '.', or be a bare leaf name)",
    )
    parser.add_argument("--list-profiles", action="store_true", help="list profiles and exit")
    parser.add_argument(
        "--quirks",
        metavar="LIST",
        default="",
        help="comma list of CPE quirks, or 'all': " + ", ".join(QUIRKS),
    )
    parser.add_argument(
        "--cr-listen",
        metavar="HOST:PORT",
        help="Connection Request listener (default 127.0.0.1:0 in periodic mode, off with --once)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S", help="per message (30)")
    parser.add_argument(
        "--acs-username", metavar="U", help="ManagementServer.Username ({serial} ok)"
    )
    parser.add_argument("--acs-password", metavar="P", help="ManagementServer.Password")
    parser.add_argument("--ca-file", metavar="FILE", help="CA bundle for an https ACS")
    parser.add_argument(
        "--insecure", action="store_true", help="https without certificate verification"
    )
    parser.add_argument(
        "--cert", metavar="FILE", help="client certificate (PEM) for an ACS that wants mTLS"
    )
    parser.add_argument(
        "--key", metavar="FILE", help="private key of --cert (default: inside the --cert file)"
    )
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow an ACS that is not on loopback"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every failed session")
