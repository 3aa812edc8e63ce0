"""``acsd sim``: run N simulated routers against an ACS.

The main ``acsd`` CLI calls :func:`add_arguments` and :func:`run`; ``python -m acsd.sim``
does the same on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import ssl
import sys

from acsd.sim.runner import Simulation, Summary
from acsd.sim.session import QUIRKS, parse_quirks
from acsd.sim.template import list_templates

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


def _profiles(values: list[str] | None) -> list[str]:
    names = [p.strip() for v in values or [DEFAULT_PROFILE] for p in v.split(",") if p.strip()]
    return names or [DEFAULT_PROFILE]


def _faults(values: list[str]) -> dict[str, int]:
    faults: dict[str, int] = {}
    for item in values:
        path, sep, code = item.rpartition("=")
        if not sep or not path.strip() or not code.strip().isdigit():
            raise ValueError(
                f"--fault {item!r}: expected PATH=CODE, e.g. Device.WiFi.SSID.1.SSID=9007"
            )
        faults[path.strip()] = int(code)
    return faults


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not (args.acs or "").startswith("https:"):
        if args.cert or args.key or args.ca_file:
            raise ValueError("--ca-file, --cert and --key need an https:// ACS URL")
        return None
    if args.key and not args.cert:
        raise ValueError("--key needs --cert")
    try:
        context = ssl.create_default_context(cafile=args.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"--ca-file {args.ca_file}: {exc.strerror or exc}") from None
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if args.cert:
        try:
            context.load_cert_chain(args.cert, args.key)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"--cert {args.cert}: {exc.strerror or exc}") from None
    return context


def _report(summary: Summary) -> None:
    print(summary.line(), flush=True)
    for serial, reason in summary.failures:
        print(f"sim: {serial}: {reason}", file=sys.stderr)


async def _main(sim: Simulation, args: argparse.Namespace) -> Summary:
    if args.once:
        return await sim.run_once()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, sim.stop)  # save --state on Ctrl-C too
    return await sim.run(args.duration)


def _runner() -> asyncio.Runner:
    try:
        import uvloop  # optional: faster loop for big runs
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def run(args: argparse.Namespace) -> int:
    """Run ``acsd sim`` with parsed arguments; returns the exit status."""
    if args.list_profiles:
        for name, description in list_templates():
            print(f"{name:<16} {description}")
        return 0
    if not args.acs:
        print("acsd sim: error: --acs URL is required", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        sim = Simulation(
            args.acs,
            _profiles(args.profile),
            args.count,
            serial_prefix=args.serial_prefix,
            quirks=parse_quirks(args.quirks),
            state_dir=args.state,
            dump_dir=args.dump,
            concurrency=args.concurrency,
            interval=args.interval,
            ramp=args.ramp,
            retry_scale=args.retry_scale,
            delay_scale=args.delay_scale,
            cr_listen=args.cr_listen,
            ssl=_ssl_context(args),
            timeout=args.timeout,
            allow_remote=args.allow_remote,
            acs_username=args.acs_username,
            acs_password=args.acs_password,
            faults=_faults(args.fault),
            report_file=args.report,
        )
    except (ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"acsd sim: error: {message}", file=sys.stderr)
        return 2
    with _runner() as runner:
        summary = runner.run(_main(sim, args))
    _report(summary)
    if args.once:
        return 0 if summary.failed == 0 and summary.ok == len(sim.routers) else 1
    return 0 if summary.failed == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="acsd sim", description="Run N simulated routers (CPEs) against an ACS."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
