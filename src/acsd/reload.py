"""SIGHUP: read profiles, log settings, TLS and CPE credentials files again without
dropping a session.

What takes effect at once: the profiles (from ``[profiles] dir`` as the file names it now;
new sessions use them, sessions in progress finish with the ones they started with),
``log.level`` and ``log.format``, the TLS certificate, key and client CA files (new
handshakes use them, open connections keep theirs), the CPE credentials file
(``[cwmp.auth] credentials_file``, also at a new path: new connections authenticate against
it, ones that authenticated go on; not while a change of ``scheme``, ``realm`` or
``algorithms`` waits for a restart, as the file is checked against them and its hashes are
bound to them), the shared ``username``, ``password`` and ``previous_password`` of
``[cwmp.auth]`` (alike; as read now: an ``ACSD_*`` variable holds the value the process
started with; a rotation that keeps the old password as ``previous_password`` lets the
routers still on it in, and has them given the new one), and the
settings the daemon applies
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
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from acsd import log as acsd_log
from acsd.config import (
    Config,
    ConfigError,
    CwmpAuthConfig,
    env_names,
    previous_password_unused,
    read_config,
)
from acsd.cwmp.auth import CpeAuthenticator, CredentialsSource, DeviceTable, SharedCredentials
from acsd.cwmp.credentials_file import parse_credentials, read_credentials
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
        # (read by the reload itself, see Reloader._reload_credentials)
        "cwmp.auth.credentials_file",
        # (read by the reload itself, see Reloader._prepare_shared)
        "cwmp.auth.username",
        "cwmp.auth.password",
        "cwmp.auth.previous_password",
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


#: the key of the CPE credentials file
CREDENTIALS = "cwmp.auth.credentials_file"
#: what the credentials file is checked against and its hashes are bound to: while a
#: change of one waits for a restart, the file waits too (it is read with it then)
CREDENTIALS_BOUND_TO = ("scheme", "realm", "algorithms")
#: the keys of the shared credentials: bound to the same settings as the file (Digest
#: hashes the password with the realm; Basic's hash is for the scheme)
SHARED = ("username", "password", "previous_password")


def shared_of(auth: CwmpAuthConfig) -> tuple[str, str, str]:
    """The shared username, password and previous password of ``auth``."""
    return auth.username, auth.password, auth.previous_password


def _change(old: str, new: str) -> str:
    """What became of a password, for the log (never the password)."""
    if old == new:
        return "unchanged"
    if not new or not old:
        return "removed" if not new else "added"
    return "changed"


def _shown_username(username: str) -> str:
    # (as the start-up's cwmp.auth line shows it)
    return username or "(serial number)"


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
        cpe_auth: CpeAuthenticator | None = None,
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
        #: checks CPE credentials (None: [cwmp.auth] scheme "none" at start-up); a reload
        #: gives it the per-device entries of the credentials file
        self.cpe_auth = cpe_auth
        # Without an authenticator the file is not in use: an edit of it (its path
        # unchanged, so no changed key) is named as needing a restart, not passed in silence.
        path = config.cwmp.auth.credentials_file
        self._credentials = (
            cpe_auth.devices_from
            if cpe_auth is not None
            else CredentialsSource(path, _fingerprint(path))
        )
        #: the shared username and password the authenticator checks with
        self._shared = shared_of(config.cwmp.auth)
        #: the settings ACSD_* variables set (the process's environment: the one it started
        #: with), as the last valid read of the config file found them
        self._env_names = env_names(os.environ)
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

        # Both built (in threads) before either is swapped in: the two swaps follow each
        # other with no await between, so no check sees one without the other.
        shared, prepared = await self._prepare_shared(config, outcome)
        auth = self.cpe_auth
        shared_after = prepared.entry is not None if prepared else bool(auth and auth.has_shared)
        credentials = await self._reload_credentials(config, outcome, shared_after)
        if credentials is not None:
            outcome["credentials"] = credentials
        if prepared is not None:
            shared = self._use_shared(config, outcome, prepared)
        if shared is not None:
            outcome["shared_credentials"] = shared

        log.info("reload.done", **outcome)
        return outcome

    def _read_config(self, outcome: dict[str, Any]) -> Config:
        """The config file again; on error the one in use (profiles and TLS files are then
        still read again from the paths in use)."""
        try:
            # (the credentials file is not read here: a broken one is no reason to keep
            # every other setting, see _reload_credentials)
            # One read and one parse of the file: what the warnings below say of it is
            # about the file this configuration is made from, not a later edit of it.
            loaded = read_config(self.config_path, credentials_later=True)
        except ConfigError as exc:
            log.error("reload.config_invalid", error=str(exc), kept="the running configuration")
            outcome["config"] = "invalid, kept"
            return self.config
        config = loaded.config
        self._env_names = loaded.env_names
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
        if self._credentials_wait(config) is not None:
            if self._credentials_edited(config):
                restart.append(CREDENTIALS)
            # (compared with the ones in use: a reload may have changed them since)
            in_use, fresh = self._shared, shared_of(config.cwmp.auth)
            restart += [
                f"cwmp.auth.{k}" for k, a, b in zip(SHARED, in_use, fresh, strict=True) if a != b
            ]
            restart = sorted(set(restart))
        overridden = [
            what
            for what in loaded.overridden_by_env
            if what.startswith(tuple(f"cwmp.auth.{key} " for key in SHARED))
        ]
        if overridden:
            # The operator who moved the password into the file for a reloadable rotation,
            # and left it in acsd.env: the environment's value wins, now and at a restart.
            log.warning(
                "reload.env_overrides",
                keys=overridden,
                message="the environment's value is used: remove the variable from the "
                "service's environment (acsd.env) and restart once",
            )
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

    def _credentials_wait(self, config: Config) -> str | None:
        """Why the credentials file of ``config`` cannot be taken by a reload (None: it can)."""
        if self.cpe_auth is None:
            return 'CPEs were not authenticated at start-up (scheme "none")'
        running, fresh = self.started.cwmp.auth, config.cwmp.auth
        waiting = [k for k in CREDENTIALS_BOUND_TO if getattr(running, k) != getattr(fresh, k)]
        if waiting:
            keys = ", ".join(f"cwmp.auth.{key}" for key in waiting)
            return f"{keys} changed, which takes a restart (the file is read with it then)"
        return None

    def _credentials_edited(self, config: Config) -> bool:
        """Whether the credentials file of ``config`` is another than the one in use (its
        path or its contents)."""
        path = config.cwmp.auth.credentials_file
        return CredentialsSource(path, _fingerprint(path)) != self._credentials

    async def _reload_credentials(
        self, config: Config, outcome: dict[str, Any], shared_after: bool
    ) -> str | None:
        """Give the authenticator the per-device entries of the file ``config`` names;
        what the reload's outcome says of it (None: nothing, CPEs are not authenticated
        and the file is as it was). Whatever fails keeps the entries in use.
        ``shared_after``: whether a shared password is in use once this reload is done."""
        in_use = self._credentials
        path = config.cwmp.auth.credentials_file
        auth = self.cpe_auth
        if (why := self._credentials_wait(config)) is not None or auth is None:
            self._keep_credentials(outcome, in_use)
            if not self._credentials_edited(config):
                return None if auth is None else "unchanged"
            return f"kept ({why})"
        if not path and not shared_after:
            # (a guard: load_config refuses a file with neither, and a new shared password
            # is swapped in with the file)
            error = (
                "credentials_file removed, and no shared password in use: no router could "
                "authenticate"
            )
            return self._credentials_failed(outcome, in_use, error)
        settings = self.started.cwmp.auth

        def load() -> tuple[CredentialsSource, DeviceTable | None]:
            # (in a thread: a file of many routers takes a while to parse and hash)
            raw = read_credentials(path) if path else b""
            source = CredentialsSource.of(path, raw)
            if source == in_use:
                return source, None
            devices = (
                parse_credentials(
                    raw,
                    path,
                    scheme=settings.scheme,
                    realm=settings.realm,
                    algorithms=settings.algorithms,
                )
                if path
                else {}
            )
            return source, auth.device_table(devices)

        try:
            source, table = await asyncio.to_thread(load)
        except ValueError as exc:  # (its line names the file, the line and the entry)
            return self._credentials_failed(outcome, in_use, str(exc))
        if table is None:
            return "unchanged"
        changes = auth.table_changes(table)
        auth.use_devices(table, source)
        self._credentials = source
        log.info("reload.credentials", file=path, devices=len(table), **changes)
        return f"reloaded ({len(table)} devices)"

    def _credentials_failed(
        self, outcome: dict[str, Any], in_use: CredentialsSource, error: str
    ) -> str:
        assert self.cpe_auth is not None
        log.error(
            "reload.credentials_failed",
            error=error,
            kept=in_use.path,
            devices=self.cpe_auth.device_count,
        )
        self._keep_credentials(outcome, in_use)
        return f"kept (error: {error})"

    def _keep_credentials(self, outcome: dict[str, Any], in_use: CredentialsSource) -> None:
        """The credentials file in use stays the running configuration's."""
        cwmp = self.config.cwmp
        auth = cwmp.auth.model_copy(update={"credentials_file": in_use.path})
        self._not_applied(outcome, CREDENTIALS, cwmp=cwmp.model_copy(update={"auth": auth}))

    async def _prepare_shared(
        self, config: Config, outcome: dict[str, Any]
    ) -> tuple[str | None, SharedCredentials | None]:
        """The shared username and password of ``config``, built for the authenticator (in
        a thread: Basic hashes the password with PBKDF2), to be swapped in by
        :meth:`_use_shared`; or, when there is nothing to swap, what the reload's outcome
        says of them (None: nothing, CPEs are not authenticated and they are as they were)."""
        auth = self.cpe_auth
        fresh = shared_of(config.cwmp.auth)
        if fresh == self._shared:
            if auth is None:
                return None, None
            # An operator who edited acsd.env and reloaded must not take "unchanged" for
            # a password taken: the process's environment is the one it started with.
            names = [env for key in SHARED if (env := self._env_names.get(("cwmp", "auth", key)))]
            return (
                f"unchanged ({' and '.join(names)} read at start only)" if names else "unchanged"
            ), None
        why = self._credentials_wait(config)
        if why is not None or auth is None:
            self._keep_shared(outcome)
            return f"kept ({why})", None
        username, password, previous = fresh
        return None, await asyncio.to_thread(auth.shared_credentials, username, password, previous)

    def _use_shared(
        self, config: Config, outcome: dict[str, Any], prepared: SharedCredentials
    ) -> str:
        """Swap ``prepared`` in, unless it leaves no way in; what the outcome says of it."""
        auth = self.cpe_auth
        assert auth is not None
        old_username, old_password, old_previous = self._shared
        if prepared.entry is None and not auth.device_count:
            error = (
                "cwmp.auth.password removed, and the credentials file holds no router: no "
                "router could authenticate"
            )
            log.error(
                "reload.shared_credentials_failed",
                error=error,
                kept="the shared password in use",
                username=_shown_username(old_username),
            )
            self._keep_shared(outcome)
            return f"kept (error: {error})"
        auth.use_shared(prepared)
        self._shared = shared_of(config.cwmp.auth)
        new_username, new_password, new_previous = self._shared
        # (nothing of the passwords but whether they changed)
        change = _change(old_password, new_password)
        log.info(
            "reload.shared_credentials",
            username=_shown_username(new_username),
            username_changed=new_username != old_username,
            password_change=change,
            previous_password_change=_change(old_previous, new_previous),
            # routers that come with the previous password are given the current one
            rotating=auth.rotate_to is not None,
            devices=auth.device_count,
        )
        if problem := previous_password_unused(config.cwmp.auth):
            log.warning(
                "reload.previous_password_unused", key="cwmp.auth.previous_password", reason=problem
            )
        return "removed" if change == "removed" else "changed"

    def _keep_shared(self, outcome: dict[str, Any]) -> None:
        """The shared username and password in use stay the running configuration's."""
        cwmp = self.config.cwmp
        auth = cwmp.auth.model_copy(update=dict(zip(SHARED, self._shared, strict=True)))
        self._not_applied(
            outcome,
            tuple(f"cwmp.auth.{key}" for key in SHARED),
            cwmp=cwmp.model_copy(update={"auth": auth}),
        )

    def _not_applied(
        self, outcome: dict[str, Any], keys: str | tuple[str, ...], **kept: Any
    ) -> None:
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
