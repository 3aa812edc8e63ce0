"""``acsd serve``: open the store, load profiles, start both listeners, stop cleanly."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from aiohttp import web

from acsd import __version__
from acsd.api.app import build_api_app
from acsd.api.context import ApiContext
from acsd.config import Config
from acsd.cwmp.connreq import ConnectionRequester
from acsd.cwmp.server import CwmpServer, ServerSettings
from acsd.cwmp.session import Limits
from acsd.log import get_logger
from acsd.provisioning.driver import DriverSettings, ProvisioningDriver
from acsd.provisioning.jobs import RetryPolicy
from acsd.provisioning.profiles import load_profiles
from acsd.store import open_store

log = get_logger("acsd")


def _bound(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve(config: Config, *, stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); return the exit status."""
    stop = stop or asyncio.Event()
    store = open_store(config.store.url)
    await store.open()
    profiles = load_profiles(Path(config.profiles.dir) if config.profiles.dir else None)

    driver_settings = DriverSettings(
        retry=RetryPolicy(
            base=config.provisioning.retry_base,
            max_attempts=config.provisioning.retry_max_attempts,
        ),
        drift_check=config.provisioning.drift_check,
        periodic_interval=config.cwmp.periodic_interval,
    )
    cwmp = CwmpServer(
        ServerSettings(
            max_body=config.cwmp.max_body,
            max_sessions=config.cwmp.max_sessions,
            session_timeout=config.cwmp.session_timeout,
            retry_after=config.cwmp.retry_after,
            trust_forwarded=config.cwmp.trust_forwarded,
            limits=Limits(
                max_requests=config.cwmp.max_requests_per_session,
                max_seconds=config.cwmp.max_session_seconds,
                hold_requests=config.cwmp.hold_requests,
            ),
        ),
        lambda: ProvisioningDriver(store, profiles, driver_settings),
    )
    cwmp_runner = web.AppRunner(
        cwmp.app(),
        access_log=None,
        handle_signals=False,
        keepalive_timeout=config.cwmp.session_timeout,
    )
    requester = ConnectionRequester()
    await requester.start()
    api_context = ApiContext(
        store=store,
        profiles=profiles,
        requester=requester,
        default_interval=config.cwmp.periodic_interval,
        grace=config.cwmp.online_grace,
    )
    api_runner = web.AppRunner(
        build_api_app(api_context, version=__version__), access_log=None, handle_signals=False
    )
    await cwmp_runner.setup()
    await api_runner.setup()
    try:
        await web.TCPSite(cwmp_runner, config.cwmp.host, config.cwmp.port).start()
        await web.TCPSite(api_runner, config.api.host, config.api.port).start()
    except OSError as exc:
        log.error("listen_failed", error=str(exc))
        await cwmp_runner.cleanup()
        await api_runner.cleanup()
        await requester.close()
        await store.close()
        return 1

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "listening",
        cwmp=_bound(cwmp_runner),
        api=_bound(api_runner),
        store=config.store.url,
        profiles=sorted(profiles.names()),
    )
    await stop.wait()

    log.info("stopping", open_sessions=len(cwmp.sessions), grace=config.shutdown_grace)
    await cwmp.drain(config.shutdown_grace)
    await cwmp_runner.cleanup()
    await api_runner.cleanup()
    await requester.close()
    await store.close()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    log.info("stopped")
    return 0
