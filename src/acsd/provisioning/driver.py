"""Drives each CWMP session for acsd: identify the CPE, read its status, keep what it said.

This is the seam between the protocol (``cwmp/``), the vendor knowledge (``profiles``) and
the records (``store/``). Per session it sends one GetParameterValues for the profile's
status names; a CPE that lacks some of them (fault 9005 fails the whole call) is asked name
by name once, and the names it lacks are remembered so later sessions need one GPV again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from acsd import clock
from acsd.cwmp import rpc
from acsd.cwmp.session import CwmpSession
from acsd.log import get_logger
from acsd.provisioning.profiles import Profile, ProfileSet, detect_root
from acsd.provisioning.status import extract_identity, extract_status, fetch_names
from acsd.store.base import CpeIdentity, DeviceRecord, SessionResult, Store

log = get_logger("acsd.session")

#: What acsd answers to a CPE's GetRPCMethods.
ACS_METHODS = ["Inform", "GetRPCMethods", "TransferComplete", "AutonomousTransferComplete"]


@dataclass
class _Fetch:
    """The status read of one session: first one batch, then name by name after a 9005."""

    queue: list[list[str]] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)
    absent: set[str] = field(default_factory=set)
    started: bool = False


class ProvisioningDriver:
    """One per session (see :class:`acsd.cwmp.session.SessionDriver`)."""

    def __init__(self, store: Store, profiles: ProfileSet) -> None:
        self.store = store
        self.profiles = profiles
        self.record: DeviceRecord | None = None
        self.profile: Profile | None = None
        self.identity: CpeIdentity | None = None
        self.values: dict[str, list[Any]] = {}
        self.events: list[str] = []
        self.bootstrap = False
        self.fetch = _Fetch()

    # --- SessionDriver -------------------------------------------------------------------

    async def inform(self, session: CwmpSession, inform: rpc.Inform) -> rpc.Fault | None:
        dev = inform.device_id
        self.events = inform.event_codes()
        self.bootstrap = "0 BOOTSTRAP" in self.events
        for p in inform.parameters:
            self.values[p.name] = [p.value, p.type]
        try:
            self.record = await self.store.find_device_for_cpe(dev.serial_number)
        except Exception:
            log.exception("session.lookup_failed", serial=dev.serial_number)
            return rpc.acs_fault(8002, "device lookup failed; retry later")
        root = _root_of(self.values)
        if root is None and self.record is not None:
            root = _root_of(self.record.params)
        self.identity = CpeIdentity(
            oui=dev.oui,
            product_class=dev.product_class,
            serial_number=dev.serial_number,
            manufacturer=dev.manufacturer,
            software_version=self._value(root, "DeviceInfo.SoftwareVersion"),
            hardware_version=self._value(root, "DeviceInfo.HardwareVersion"),
        )
        self.profile = self.profiles.select(self.identity, root or "Device.")
        if not self.bootstrap and self.record is not None:
            self.fetch.absent = set(self.record.absent_paths)
        log.info(
            "session.inform",
            serial=dev.serial_number,
            events=self.events,
            profile=self.profile.name,
            known=self.record is not None,
            retry=inform.retry_count,
        )
        return None

    async def cpe_request(self, session: CwmpSession, request: rpc.CpeRequest) -> rpc.Message:
        if isinstance(request, rpc.GetRPCMethods):
            return rpc.GetRPCMethodsResponse(methods=list(ACS_METHODS))
        if isinstance(request, rpc.TransferComplete | rpc.AutonomousTransferComplete):
            log.info(
                "session.transfer_complete",
                serial=session.serial,
                method=request.METHOD,
                fault=request.fault.code,
            )
            return request.RESPONSE()
        if isinstance(request, rpc.RequestDownload):
            return rpc.acs_fault(8001, "acsd offers no files to download")
        return rpc.acs_fault(8000, request.METHOD)

    async def next_request(self, session: CwmpSession) -> rpc.AcsRequest | None:
        if self.profile is None:
            return None
        if not self.fetch.started:
            self.fetch.started = True
            flat = {k: v[0] for k, v in self.values.items()}
            names = fetch_names(self.profile, absent=self.fetch.absent, already=flat)
            if names:
                self.fetch.queue.append(names)
        if self.fetch.queue:
            return rpc.GetParameterValues(names=self.fetch.queue[0])
        return None

    async def response(
        self, session: CwmpSession, request: rpc.AcsRequest, response: rpc.Message
    ) -> None:
        if not isinstance(request, rpc.GetParameterValues):
            return
        names = self.fetch.queue.pop(0) if self.fetch.queue else []
        if isinstance(response, rpc.GetParameterValuesResponse):
            for p in response.parameters:
                self.values[p.name] = [p.value, p.type]
            self.fetch.ok.extend(names)
            return
        assert isinstance(response, rpc.Fault)
        if response.code == 9005 and len(names) > 1:
            # One unknown name fails the whole call: find out which, one name at a time.
            self.fetch.queue[:0] = [[name] for name in names]
        elif response.code == 9005:
            self.fetch.absent.update(names)
        else:
            log.warning(
                "session.gpv_fault",
                serial=session.serial,
                code=response.code,
                fault=response.string,
            )
            self.fetch.queue.clear()

    async def finish(self, session: CwmpSession, *, complete: bool, reason: str) -> None:
        if self.identity is None or self.profile is None:
            return
        params = self._merged_params()
        flat = {k: v[0] for k, v in params.items()}
        status = extract_status(self.profile, flat)
        ident = extract_identity(self.profile, flat)
        if ident.get("modelName"):
            self.identity.model_name = ident["modelName"]
        result = SessionResult(
            identity=self.identity,
            at=clock.now(),
            device_id=self.record.id if self.record else None,
            remote_ip=session.remote_ip,
            events=self.events,
            params=params,
            reset_params=True,
            status=status,
            mac_address=ident.get("macAddress"),
            profile=self.profile.name,
            periodic_interval=_int_or_none(ident.get("periodicInterval")),
            connection_request_url=ident.get("connectionRequestUrl"),
            absent_paths=sorted(self.fetch.absent),
        )
        try:
            device_id = await self.store.save_session(result)
        except Exception:
            log.exception("session.save_failed", serial=session.serial)
            if complete:
                raise  # the CPE then sees the session fail and retries it
            return
        log.info(
            "session.end",
            serial=session.serial,
            device=device_id,
            complete=complete,
            reason=reason,
            rpcs=session.rpc_count,
        )

    # --- helpers ---------------------------------------------------------------------------

    def _merged_params(self) -> dict[str, list[Any]]:
        base: dict[str, list[Any]] = {}
        if self.record is not None and not self.bootstrap:
            base = dict(self.record.params)
        # A partial path read this session replaces everything below it: objects the CPE
        # no longer has must not live on in the record.
        for name in self.fetch.ok:
            if name.endswith("."):
                for key in [k for k in base if k.startswith(name)]:
                    del base[key]
        base.update(self.values)
        return base

    def _value(self, root: str | None, suffix: str) -> str | None:
        if root is None:
            return None
        entry = self.values.get(root + suffix)
        return entry[0] if entry and entry[0] != "" else None


def _root_of(names: dict[str, Any]) -> str | None:
    try:
        return detect_root(names) if names else None
    except ValueError:
        return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
