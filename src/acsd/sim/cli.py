"""``acsd sim``: run N simulated routers against an ACS.

The main ``acsd`` CLI takes its arguments from :mod:`acsd.sim.args` and calls :func:`run`;
``python -m acsd.sim`` does the same on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import ssl
import sys

from acsd.sim.args import DEFAULT_PROFILE, add_arguments
from acsd.sim.crserver import ListenError
from acsd.sim.quirks import parse_quirks
from acsd.sim.runner import Simulation, Summary
from acsd.sim.template import list_templates


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
            udp_cr=args.udp_cr,
        )
    except (ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"acsd sim: error: {message}", file=sys.stderr)
        return 2
    with _runner() as runner:
        try:
            summary = runner.run(_main(sim, args))
        except ListenError as exc:  # nothing ran yet: no summary, no --state written
            print(f"acsd sim: error: {exc}", file=sys.stderr)
            return 1
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
