"""The arguments of ``acsd sim``.

Apart from :mod:`acsd.sim.cli` because the ``acsd`` command builds its whole parser on
every call: importing the simulator (aiohttp's client and more) for that doubled the start
of ``acsd device list``.
"""

from __future__ import annotations

import argparse
import math

from acsd.sim.quirks import QUIRKS

DEFAULT_PROFILE = "tr181-mobile"

#: serials are PREFIX + six digits: more routers would give serials of another length
MAX_COUNT = 999_999


def _count(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= number <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be 0..{MAX_COUNT}, not {number}")
    return number


def _at_least_one(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _seconds(text: str, *, zero: bool) -> float:
    # A NaN or infinite wait reached the event loop's timer as a traceback (or a run
    # that never ends); a negative one was taken as "now" without a word.
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero):
        least = "0 or more" if zero else "more than 0"
        raise argparse.ArgumentTypeError(f"must be a finite number {least}, not {text}")
    return number


def _not_negative(text: str) -> float:
    return _seconds(text, zero=True)


def _positive(text: str) -> float:
    return _seconds(text, zero=False)


def _listen(text: str) -> str:
    # Checked here, not when the listener starts: that was a traceback after the parse.
    from acsd.sim.crserver import split_host_port

    try:
        split_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--acs", metavar="URL", help="ACS URL, e.g. http://127.0.0.1:7547/")
    parser.add_argument("--count", type=_count, default=1, metavar="N", help="routers (default 1)")
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
        "--interval",
        type=_not_negative,
        metavar="S",
        help="override PeriodicInformInterval (seconds; 0: no periodic Informs)",
    )
    parser.add_argument(
        "--duration", type=_not_negative, metavar="S", help="stop a periodic run after S s"
    )
    parser.add_argument(
        "--ramp",
        type=_not_negative,
        metavar="S",
        help="spread the boots over S s (default: one interval)",
    )
    parser.add_argument(
        "--retry-scale",
        type=_not_negative,
        default=1.0,
        metavar="F",
        help="multiply CWMP retry back-off and Retry-After waits by F (default 1)",
    )
    parser.add_argument(
        "--delay-scale",
        type=_not_negative,
        default=1.0,
        metavar="F",
        help="multiply ScheduleInform/Download DelaySeconds by F (default 1)",
    )
    parser.add_argument(
        "--concurrency",
        type=_at_least_one,
        default=64,
        metavar="C",
        help="max sessions in flight (64)",
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
        type=_listen,
        metavar="HOST:PORT",
        help="Connection Request listener (default 127.0.0.1:0 in periodic mode, off with --once)",
    )
    parser.add_argument(
        "--udp-cr",
        action="store_true",
        help="each router runs a STUN client towards the STUNServerAddress the ACS sets and "
        "takes UDP Connection Requests (TR-069 Annex G) on its socket",
    )
    parser.add_argument(
        "--timeout", type=_positive, default=30.0, metavar="S", help="per message (30)"
    )
    parser.add_argument(
        "--acs-username",
        metavar="U",
        help="ManagementServer.Username ({serial}, {oui}, {productClass} filled in)",
    )
    parser.add_argument(
        "--acs-password", metavar="P", help="ManagementServer.Password (as --acs-username)"
    )
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
