"""SIGHUP: read profiles, log settings and TLS files again without dropping a session.

What takes effect at once: the profiles (from ``[profiles] dir`` as the file names it now;
new sessions use them, sessions in progress finish with the ones they started with),
``log.level`` and ``log.format``, the TLS certificate, key and client CA files (new
handshakes use them, open connections keep theirs), and the settings the daemon applies
through ``on_config`` (:data:`RELOADABLE`: what routers are told of the STUN server and its
per-source bounds, the static lines' DNS servers, the intervals of drift checks and of
re-asking for what routers lack). Any other key changed in the file is
named in a warning: it needs a restart (``[stun] enabled`` and ``listen`` among them: the
socket is bound at start-up). Whatever fails to load is logged and the old one is kept, so
a typo never takes the daemon down.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from acsd import log as acsd_log
from acsd.config import Config, ConfigError, load_config
from acsd.log import get_logger
from acsd.provisioning.profiles import ProfileSet, load_profiles, warn_of_doubts
from acsd.tls import ServerTls, TlsFileError, TlsSettings, listener_settings
from acsd.tomltext import read_regular

log = get_logger("acsd.reload")

#: keys a reload applies; a change to any other key is reported as needing a restart
RELOADABLE = frozenset(
    {
        "log.level",
        "log.format",
        "profiles.dir",
        "cwmp.tls.cert",
        "cwmp.tls.key",
        "cwmp.tls.client_ca",
        "api.tls.cert",
        "api.tls.key",
        # (through Reloader.on_config: the daemon's settings of new sessions, the STUN
        # server's buckets)
        "provisioning.static_wan_dns",
        "provisioning.drift_check_interval",
        "provisioning.absent_recheck_interval",
        "stun.public_address",
        "stun.public_port",
        "stun.keepalive",
        "stun.source_rate",
        "stun.source_burst",
    }
)


class Profiles:
    """The profiles new sessions get: read through :attr:`current` at each session start."""

    def __init__(self, current: ProfileSet) -> None:
        self.current = current


def changed_keys(old: BaseModel, new: BaseModel, prefix: str = "") -> Iterator[str]:
    """Dotted keys whose values differ (compared as objects: masked dumps would hide
    a changed password)."""
    for name in type(old).model_fields:
        a, b = getattr(old, name), getattr(new, name)
        if isinstance(a, BaseModel) and isinstance(b, BaseModel):
            yield from changed_keys(a, b, f"{prefix}{name}.")
        elif a != b:
            yield f"{prefix}{name}"


def _fingerprint(path: str | None) -> bytes | None:
    """A digest of a file's contents (None: no file, or none readable)."""
    if not path:
        return None
    try:
        return hashlib.sha256(read_regular(path)).digest()
    except OSError:
        return None


class Reloader:
    """Runs one reload at a time; a SIGHUP during a reload runs another one after it."""

    def __init__(
        self,
        config: Config,
        config_path: str | Path | None,
        profiles: Profiles,
        tls: dict[str, ServerTls],
        *,
        on_profiles: Callable[[ProfileSet], None] | None = None,
        on_config: Callable[[Config, Config], None] | None = None,
    ) -> None:
        self.started = config  # what the listeners, store and settings were made from
        self.config = config  # the newest valid file
        self.config_path = config_path
        self.profiles = profiles
        self.tls = tls
        self.on_profiles = on_profiles
        #: applies a valid config file's reloadable settings: (the one in use, the new one)
        self.on_config = on_config
        self.count = 0
        # the per-device CPE credentials are read at start-up only: an edit of the file
        # (its path unchanged, so no changed key) must not pass a reload in silence
        self._credentials = _fingerprint(config.cwmp.auth.credentials_file)
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def request(self) -> None:
        """The SIGHUP handler: start a reload, or queue one behind the running reload."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._run(), name="acsd-reload")

    async def wait(self) -> None:
        """Let a reload in progress finish (at shutdown)."""
        self._again = False
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._again = False
            try:
                await self.reload()
            except Exception:
                log.exception("reload.failed")
            if not self._again:
                return

    async def reload(self) -> dict[str, Any]:
        """Reload everything that can be; returns what happened (also logged)."""
        self.count += 1
        outcome: dict[str, Any] = {"config": "unchanged", "profiles": "kept", "tls": {}}
        log.info("reload.start", config=str(self.config_path or "defaults"))
        previous = self.config
        config = self._read_config(outcome)

        folder = config.profiles.dir
        try:
            profiles = await asyncio.to_thread(load_profiles, Path(folder) if folder else None)
        except Exception as exc:
            # A directory that is not there (yet) is an error now, not at the next start.
            log.error(
                "reload.profiles_failed",
                dir=folder,
                error=str(exc),
                kept=sorted(self.profiles.current.names()),
            )
            outcome["profiles"] = f"kept (error: {exc})"
            self._not_applied(outcome, "profiles.", profiles=previous.profiles)
        else:
            self.profiles.current = profiles
            warn_of_doubts(profiles)
            if self.on_profiles is not None:
                self.on_profiles(profiles)
            outcome["profiles"] = sorted(profiles.names())

        wanted = listener_settings(config)
        for name in sorted(set(wanted) | set(self.tls)):
            outcome["tls"][name] = self._reload_tls(name, wanted.get(name))
            if outcome["tls"][name].startswith("kept"):
                section = getattr(self.config, name)
                tls = getattr(previous, name).tls
                self._not_applied(
                    outcome, f"{name}.tls.", **{name: section.model_copy(update={"tls": tls})}
                )

        log.info("reload.done", **outcome)
        return outcome

    def _read_config(self, outcome: dict[str, Any]) -> Config:
        """The config file again; on error the one in use (profiles and TLS files are then
        still read again from the paths in use)."""
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            log.error("reload.config_invalid", error=str(exc), kept="the running configuration")
            outcome["config"] = "invalid, kept"
            return self.config
        changed = sorted(changed_keys(self.config, config))
        if changed:
            outcome["config"] = "changed"
        applied = [key for key in changed if key in RELOADABLE]
        if applied:
            # what took effect, by name: "log settings applied" alone once hid a new
            # static_wan_dns applied by the same reload
            outcome["applied"] = applied
        if config.log != self.config.log:
            acsd_log.configure(config.log.level, config.log.format)
            # (log_level: "level" is the line's own severity)
            log.info("reload.log", log_level=config.log.level, format=config.log.format)
            if all(key.startswith("log.") for key in applied):
                outcome["config"] = "log settings applied"
        log.debug("reload.config_changed", keys=changed)
        restart = sorted(k for k in changed_keys(self.started, config) if k not in RELOADABLE)
        credentials = "cwmp.auth.credentials_file"
        if credentials not in restart and (
            _fingerprint(config.cwmp.auth.credentials_file) != self._credentials
        ):
            restart.append(credentials)  # its contents: the path is the same
        if restart:
            log.warning("reload.restart_needed", keys=restart)
            outcome["restart_needed"] = restart
        if self.on_config is not None and changed:
            try:
                self.on_config(self.config, config)
            except Exception:  # (a bug's: the rest of the reload still goes)
                log.exception("reload.apply_failed", keys=changed)
        self.config = config
        return config

    def _not_applied(self, outcome: dict[str, Any], keys: str, **kept: Any) -> None:
        """What failed to load stays as it was in the running configuration (``kept``: the
        sections as they were), and is not reported as applied: a later reload compares
        with what is in use, and a worker restarted later gets it."""
        self.config = self.config.model_copy(update=kept)
        if "applied" in outcome:
            outcome["applied"] = [k for k in outcome["applied"] if not k.startswith(keys)]
            if not outcome["applied"]:
                del outcome["applied"]

    def _reload_tls(self, name: str, settings: TlsSettings | None) -> str:
        server = self.tls.get(name)
        if server is None or settings is None:
            log.warning(
                "reload.restart_needed",
                keys=[f"{name}.tls"],
                reason="TLS is switched on or off at start-up only",
            )
            return "restart needed"
        try:
            server.reload(settings)
        except TlsFileError as exc:
            log.error("reload.tls_failed", listener=name, error=str(exc), kept=server.settings.cert)
            return f"kept (error: {exc})"
        except ValueError as exc:
            log.warning("reload.restart_needed", keys=[f"{name}.tls"], reason=str(exc))
            try:
                server.reload()  # the files at the paths in use may still have changed
            except (TlsFileError, ValueError) as again:
                log.error("reload.tls_failed", listener=name, error=str(again))
                return f"kept (error: {again})"
            return "reloaded (same paths); restart needed"
        return "reloaded"
