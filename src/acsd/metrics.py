"""Prometheus metrics for ``/metrics`` on the API listener.

Each daemon owns one :class:`Metrics` with its own ``CollectorRegistry`` (never the
process-global one), so several daemons can live in one process (tests do).

What costs something on the hot path is kept to prometheus-client counters and histograms
whose label values come from small fixed sets (RPC methods, CWMP fault codes, standard
Inform event codes, loaded profile names); serial numbers, addresses and anything else a
CPE chooses never become labels. Everything the rest of acsd already counts (the CWMP
server's ``stats``, the store writer's :class:`~acsd.store.writes.WriterStats`, the
Connection Request client's ``stats``) is read at scrape time by custom collectors, which
costs the hot path nothing.

The per-session numbers (Informs by event, profile selected, RPC latency, faults, session
duration) come from :class:`MeteredDriver`, a transparent wrapper around any
:class:`~acsd.cwmp.session.SessionDriver`.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from acsd.cwmp import rpc
from acsd.cwmp.session import CwmpSession, RetryLater, SessionDriver
from acsd.log import get_logger
from acsd.metrics_share import MetricsShare
from acsd.store.outages import REFUSAL_CAUSES

log = get_logger("acsd.metrics")

# No ``*_created`` series: in the text format Prometheus stores them as extra gauges per
# label set, which doubles the series count for nothing (process-wide switch).
disable_created_metrics()

#: session length, Inform to 204 (or abandon), seconds
SESSION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
#: an ACS request sent to its answer from the CPE, seconds
RPC_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

#: Inform EventCodes of TR-069 Amendment 6 (§3.7.1.5); anything else is folded.
STANDARD_EVENTS = (
    "0 BOOTSTRAP",
    "1 BOOT",
    "2 PERIODIC",
    "3 SCHEDULED",
    "4 VALUE CHANGE",
    "5 KICKED",
    "6 CONNECTION REQUEST",
    "7 TRANSFER COMPLETE",
    "8 DIAGNOSTICS COMPLETE",
    "9 REQUEST DOWNLOAD",
    "10 AUTONOMOUS TRANSFER COMPLETE",
    "11 DU STATE CHANGE COMPLETE",
    "12 AUTONOMOUS DU STATE CHANGE COMPLETE",
    "13 WAKEUP",
    "14 HEARTBEAT",
    "M Reboot",
    "M ScheduleInform",
    "M Download",
    "M ScheduleDownload",
    "M Upload",
    "M ChangeDUState",
)
_EVENTS = {code.upper(): code for code in STANDARD_EVENTS}
VENDOR_EVENT = "X vendor"
_NAME = re.compile(r"^[a-z][a-z0-9_]*\Z")
OTHER = "other"

#: what became of the shared password given to a router that came with the previous one
ROTATION_RESULTS = ("rotated", "refused", "not_sent")

#: what the CWMP server's ``stats`` keys become (all counters)
_CWMP_STATS = {
    "sessions_total": ("acsd_cwmp_sessions", "CWMP sessions started (Informs accepted)."),
    "refused_overload": (
        "acsd_cwmp_sessions_refused_overload",
        "Informs answered 503 + Retry-After: max_sessions were open, the event loop ran "
        "late (see refused_loop_lag) or acsd was shutting down.",
    ),
    "refused_loop_lag": (
        "acsd_cwmp_sessions_refused_loop_lag",
        "Informs answered 503 + Retry-After because the event loop ran more than "
        "cwmp.max_loop_lag seconds late (the CPU is saturated).",
    ),
    "bad_requests": (
        "acsd_cwmp_bad_requests",
        "CWMP requests refused as malformed (HTTP 4xx or a SOAP fault for a broken envelope).",
    ),
    "auth_challenges": (
        "acsd_cwmp_auth_challenges",
        "401 challenges sent to CPEs without (valid, fresh) credentials yet.",
    ),
    "auth_failures": (
        "acsd_cwmp_auth_failures",
        "CPE requests refused for wrong credentials (401 after a failed check, or 403).",
    ),
    "auth_rate_limited": (
        "acsd_cwmp_auth_rate_limited",
        "CPE requests refused 429 because their address failed authentication too often.",
    ),
    "auth_previous_password": (
        "acsd_cwmp_auth_previous_password",
        "CWMP sessions opened with the previous shared password (cwmp.auth.previous_password): "
        "routers not rotated yet, each given the current one in that session.",
    ),
    "sessions_parked": (
        "acsd_cwmp_sessions_parked",
        "Sessions saved to the store when their connection closed mid-session (workers > 1), "
        "for whichever worker the CPE reconnects to.",
    ),
    "sessions_taken_over": (
        "acsd_cwmp_sessions_taken_over",
        "Parked sessions this worker picked up by their cookie and went on with.",
    ),
}


def event_label(code: str) -> str:
    """The ``event`` label for an Inform EventCode: the standard spelling of a standard
    code, ``X vendor`` for vendor events, ``other`` for anything else."""
    label = _EVENTS.get(code.strip().upper())
    if label is not None:
        return label
    if code[:2] in ("X ", "x ") or code.upper().startswith("M X_"):
        return VENDOR_EVENT
    return OTHER


#: fault codes kept as labels: those TR-069 defines (ACS 8000-8005, CPE 9000-9032, with room
#: for amendments) and the vendor ranges (8800-8899, 9800-9899). The rest of 8000-9999 is
#: reserved; a CPE that sends codes from all of it would make thousands of series per method.
_FAULT_LABELS = frozenset(
    str(code) for start in (8000, 8800, 9000, 9800) for code in range(start, start + 100)
)


def fault_label(code: int) -> str:
    """The ``code`` label of a CWMP fault: the code itself when it is one TR-069 defines or
    a vendor code, else ``other``."""
    label = str(code)
    return label if label in _FAULT_LABELS else OTHER


class Metrics:
    """The metrics of one daemon. Create, ``watch_*`` what exists, ``instrument`` each
    session driver, serve :meth:`handler`."""

    def __init__(self, *, version: str = "0", process: bool = True) -> None:
        self.registry = CollectorRegistry()
        if process:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        reg = self.registry
        self.informs = Counter(
            "acsd_cwmp_informs",
            "Inform events received, by EventCode (standard codes; vendor ones as 'X vendor').",
            ["event"],
            registry=reg,
        )
        self.profile_selected = Counter(
            "acsd_profile_selected",
            "Sessions whose CPE matched each vendor profile (one per accepted Inform).",
            ["profile"],
            registry=reg,
        )
        self.rpc_duration = Histogram(
            "acsd_cwmp_rpc_duration_seconds",
            "Time from an ACS request (GetParameterValues, SetParameterValues, ...) being "
            "handed to the CPE to its answer (response or fault) arriving.",
            ["method"],
            buckets=RPC_BUCKETS,
            registry=reg,
        )
        self.faults = Counter(
            "acsd_cwmp_faults",
            "CWMP faults the CPE answered ACS requests with, by request and fault code.",
            ["method", "code"],
            registry=reg,
        )
        self.parameter_faults = Counter(
            "acsd_cwmp_parameter_faults",
            "Per-parameter faults inside SetParameterValues faults, by fault code.",
            ["code"],
            registry=reg,
        )
        self.jobs_failed = Counter(
            "acsd_jobs_failed",
            "Provisioning jobs acsd gave up on (FAILED: a setting the router refused past its "
            "retries, or one it cannot take), by the router's profile; once per revision. "
            "The device reads ACTIVE with jobs 0: GET /network/device?job=FAILED lists them.",
            ["profile"],
            registry=reg,
        )
        self.password_rotations = Counter(
            "acsd_cwmp_password_rotations",
            "Sessions opened with the previous shared password (cwmp.auth.previous_password), "
            "by what became of the current one acsd gave the router: rotated (taken), refused "
            "(asked again next session), not_sent (the session ended first, or the profile "
            "maps no ManagementServer.Password).",
            ["result"],
            registry=reg,
        )
        for result in ROTATION_RESULTS:
            self.password_rotations.labels(result)
        self.store_refusals = Counter(
            "acsd_store_refusals",
            "CWMP sessions (listener cwmp: at the Inform or at the end) and API requests "
            "(api) answered 503 + Retry-After because the database could not take them, by "
            f"the 503's cause ({', '.join(REFUSAL_CAUSES)}).",
            ["listener", "cause"],
            registry=reg,
        )
        self.api_auth_failures = Counter(
            "acsd_api_auth_failures",
            "Operator and APN API requests refused 401 for a bearer token that is unknown, "
            "revoked or expired (a guess, or a client left with an old token).",
            registry=reg,
        )
        self.api_requests = Counter(
            "acsd_api_requests",
            "Operator and APN API requests answered, by method, route (the path pattern, "
            "e.g. /network/device/{id}; 'unmatched' for no route) and HTTP status.",
            ["method", "route", "status"],
            registry=reg,
        )
        self.api_duration = Histogram(
            "acsd_api_request_duration_seconds",
            "Time to answer an API request, from its headers to the answer, by method and route.",
            ["method", "route"],
            buckets=RPC_BUCKETS,
            registry=reg,
        )
        # every series from the start, at 0: an alert on increase() sees the first refusal
        for listener in ("cwmp", "api"):
            for cause in REFUSAL_CAUSES:
                self.store_refusals.labels(listener, cause)
        self.session_duration = Histogram(
            "acsd_cwmp_session_duration_seconds",
            "CWMP session length, Inform to the end (204 sent, or the session abandoned), "
            "including the commit of what it learned.",
            ["outcome"],
            buckets=SESSION_BUCKETS,
            registry=reg,
        )
        # Children resolved once: .labels() takes a lock and a dict lookup per call.
        self._complete = self.session_duration.labels("complete")
        self._incomplete = self.session_duration.labels("incomplete")
        self._events: dict[str, Any] = {}
        self._profiles: dict[str, Any] = {}
        self._rpcs: dict[str, Any] = {}
        self._share: MetricsShare | None = None
        reg.register(_Constant("acsd_build_info", "acsd version.", {"version": version}))

    # --- sources read at scrape time ------------------------------------------------------

    def watch_cwmp(self, server: Any) -> None:
        """Open sessions and the counters in ``server.stats`` (a CwmpServer)."""
        self.registry.register(_CwmpCollector(server))

    def watch_store(self, store: Any) -> None:
        """Write batch sizes, queue depth and writer counters of a store with ``stats``."""
        self.registry.register(_StoreCollector(store))

    def watch_tls(self, listeners: dict[str, Any]) -> None:
        """Failed TLS handshakes by listener and reason (ServerTls objects by name)."""
        self.registry.register(_TlsCollector(listeners))

    def watch_stun(self, server: Any) -> None:
        """The STUN server's datagrams and UDP Connection Requests (a StunServer)."""
        self.registry.register(_StunCollector(server))

    def watch_requester(self, requester: Any) -> None:
        """Connection Requests by result (a ConnectionRequester)."""
        self.registry.register(_RequesterCollector(requester))

    # --- sessions -------------------------------------------------------------------------

    def instrument(self, driver: SessionDriver) -> MeteredDriver:
        return MeteredDriver(driver, self)

    def driver_factory(self, factory: Callable[[], SessionDriver]) -> Callable[[], SessionDriver]:
        """``factory`` whose drivers are metered."""
        return lambda: MeteredDriver(factory(), self)

    def _inform(self, inform: rpc.Inform) -> None:
        for code in inform.event_codes():
            child = self._events.get(code)
            if child is None:
                child = self.informs.labels(event_label(code))
                # Only codes that map to themselves are cached, so odd ones cannot grow it.
                if event_label(code) == code:
                    self._events[code] = child
            child.inc()

    def _profile(self, name: str) -> None:
        child = self._profiles.get(name)
        if child is None:
            child = self._profiles[name] = self.profile_selected.labels(name)
        child.inc()

    def know_profiles(self, names: Iterable[str]) -> None:
        """Every profile's series of acsd_jobs_failed_total from the start, at 0: an alert
        on increase() sees a profile's first failed job (a series that appears at 1 has no
        earlier sample to rise from)."""
        for name in names:
            self.jobs_failed.labels(name)

    def _job_failed(self, profile: str) -> None:
        # rare (once per revision of a router): no cached child needed
        self.jobs_failed.labels(profile).inc()

    def store_refused(self, listener: str, cause: str) -> None:
        """A session (``cwmp``) or a request (``api``) answered 503 for the database's
        trouble ``cause`` (a key of acsd.store.outages)."""
        # (no cached child: a refusal costs far more than the lookup; causes are a fixed set)
        self.store_refusals.labels(listener, cause).inc()

    def _rpc(self, method: str, seconds: float) -> None:
        child = self._rpcs.get(method)
        if child is None:
            child = self._rpcs[method] = self.rpc_duration.labels(method)
        child.observe(seconds)

    def _fault(self, method: str, fault: rpc.Fault) -> None:
        self.faults.labels(method, fault_label(fault.code)).inc()
        for entry in fault.spv_faults:
            self.parameter_faults.labels(fault_label(entry.code)).inc()

    # --- exposition -----------------------------------------------------------------------

    def share(self, share: MetricsShare) -> None:
        """Answer scrapes with every worker's samples (see :mod:`acsd.metrics_share`)."""
        self._share = share

    def exposition(self) -> bytes:
        """This daemon's own figures, Prometheus text format."""
        return generate_latest(self.registry)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition (Prometheus text, or OpenMetrics when ``accept`` asks for it)."""
        encoder, content_type = choose_encoder(accept)
        if self._share is None:
            return encoder(self.registry), content_type
        own = self.exposition()
        # The freshest figures for the next scrape elsewhere; a failure here is the
        # periodic snapshot's to report.
        with contextlib.suppress(OSError):
            self._share.publish(own)
        return encoder(self._share.merged(own)), content_type

    async def handler(self, request: web.Request) -> web.Response:
        """Prometheus metrics (text exposition, or OpenMetrics on request); public."""
        body, content_type = self.render(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})


class MeteredDriver:
    """Wraps a :class:`SessionDriver`: counts and times what passes through, changes
    nothing. Other attributes are the wrapped driver's."""

    def __init__(self, inner: SessionDriver, metrics: Metrics) -> None:
        self.inner = inner
        self._metrics = metrics
        self._sent = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def import_state(self, state: dict[str, Any]) -> None:
        # perf_counter() of another process means nothing here: time the RPC from now.
        self._sent = time.perf_counter()
        self.inner.import_state(state)  # type: ignore[attr-defined]

    async def inform(self, session: CwmpSession, inform: rpc.Inform) -> rpc.Fault | None:
        self._metrics._inform(inform)
        try:
            fault = await self.inner.inform(session, inform)
        except RetryLater as exc:  # (the listener answers it 503)
            self._metrics.store_refused("cwmp", exc.cause)
            raise
        profile = getattr(self.inner, "profile", None)
        if fault is None and profile is not None:
            self._metrics._profile(profile.name)
        return fault

    async def cpe_request(self, session: CwmpSession, request: rpc.CpeRequest) -> rpc.Message:
        return await self.inner.cpe_request(session, request)

    async def next_request(self, session: CwmpSession) -> rpc.AcsRequest | None:
        request = await self.inner.next_request(session)
        if request is not None:
            # The session renders and sends it right after this returns.
            self._sent = time.perf_counter()
        return request

    async def response(
        self, session: CwmpSession, request: rpc.AcsRequest, response: rpc.Message
    ) -> None:
        seconds = time.perf_counter() - self._sent
        self._metrics._rpc(request.METHOD, seconds)
        if isinstance(response, rpc.Fault):
            self._metrics._fault(request.METHOD, response)
            log.debug(
                "cwmp.rpc", method=request.METHOD, seconds=round(seconds, 6), fault=response.code
            )
        else:
            log.debug("cwmp.rpc", method=request.METHOD, seconds=round(seconds, 6))
        await self.inner.response(session, request, response)

    def answer_too_large(self, session: CwmpSession, request: rpc.AcsRequest) -> None:
        self.inner.answer_too_large(session, request)

    async def finish(self, session: CwmpSession, *, complete: bool, reason: str) -> None:
        try:
            await self.inner.finish(session, complete=complete, reason=reason)
        except RetryLater as exc:  # what the session learned was not kept: 503 at its end
            self._metrics.store_refused("cwmp", exc.cause)
            raise
        finally:
            histogram = self._metrics._complete if complete else self._metrics._incomplete
            histogram.observe(time.monotonic() - session.created)
            # set once the result is stored, so also when a later step of finish fails
            rotation = getattr(self.inner, "acs_password_result", None)
            if rotation is not None:  # (rare: a session opened with the previous password)
                self._metrics.password_rotations.labels(rotation).inc()
            if getattr(self.inner, "job_given_up", False):
                profile = getattr(self.inner, "profile", None)
                if profile is not None:  # (always, once a job was planned)
                    self._metrics._job_failed(profile.name)


# --- collectors ---------------------------------------------------------------------------


class _Constant(Collector):
    def __init__(self, name: str, documentation: str, labels: dict[str, str]) -> None:
        self._family = GaugeMetricFamily(name, documentation, labels=list(labels))
        self._family.add_metric(list(labels.values()), 1)

    def collect(self) -> Iterator[Metric]:
        yield self._family


class _CwmpCollector(Collector):
    def __init__(self, server: Any) -> None:
        self.server = server

    def describe(self) -> list[Metric]:
        # Described up front so the registry can refuse duplicate names at register time.
        return list(self._families(0, {}))

    def collect(self) -> Iterator[Metric]:
        server = self.server
        yield from self._families(len(server.sessions), dict(server.stats), server.loop_lag.seconds)

    @staticmethod
    def _families(open_sessions: int, stats: dict[str, Any], lag: float = 0.0) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "acsd_cwmp_sessions_open", "CWMP sessions open now.", value=open_sessions
        )
        yield GaugeMetricFamily(
            "acsd_event_loop_lag_seconds",
            "How late the event loop runs ready work, smoothed (cwmp.max_loop_lag refuses "
            "new sessions above it).",
            value=lag,
        )
        for key, (name, documentation) in _CWMP_STATS.items():
            yield CounterMetricFamily(name, documentation, value=stats.get(key, 0))
        # Counters the listener gains later show up without a change here.
        for key, value in stats.items():
            if key not in _CWMP_STATS and isinstance(value, int | float) and _NAME.match(key):
                yield CounterMetricFamily(
                    f"acsd_cwmp_{key}", f"CWMP listener counter {key!r}.", value=value
                )


class _StoreCollector(Collector):
    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        stats = getattr(self.store, "stats", None)
        if stats is None:
            return
        depth = getattr(self.store, "queue_depth", None)
        if not isinstance(depth, int):
            depth = stats.queue_depth
        yield GaugeMetricFamily(
            "acsd_store_queue_depth", "Writes queued for the store's writer task now.", value=depth
        )
        buckets, running = [], 0
        for bound, count in sorted(stats.batch_sizes.items()):
            running += count
            buckets.append((floatToGoString(bound), running))
        if not buckets or buckets[-1][0] != "+Inf":
            buckets.append(("+Inf", running))
        yield HistogramMetricFamily(
            "acsd_store_write_batch_size",
            "Writes (sessions and operator writes) committed per store transaction.",
            buckets=buckets,
            sum_value=stats.writes,
        )
        counters = (
            ("acsd_store_writes", "Writes committed.", stats.writes),
            ("acsd_store_write_failures", "Writes whose caller got an error.", stats.failed),
            (
                "acsd_store_batch_fallbacks",
                "Batches the database rolled back whole, retried one write at a time.",
                stats.fallbacks,
            ),
            (
                "acsd_store_stale_results",
                "Session results dropped: a later session of the same CPE committed first.",
                stats.stale,
            ),
            (
                "acsd_store_transaction_seconds",
                "Wall time spent inside write transactions (BEGIN to COMMIT).",
                stats.busy_seconds,
            ),
        )
        for name, documentation, value in counters:
            yield CounterMetricFamily(name, documentation, value=value)


class _TlsCollector(Collector):
    def __init__(self, listeners: dict[str, Any]) -> None:
        self.listeners = listeners

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "acsd_tls_handshakes_refused",
            "TLS handshakes that failed, by listener and OpenSSL reason (e.g. "
            "PEER_DID_NOT_RETURN_A_CERTIFICATE, CERTIFICATE_VERIFY_FAILED, HTTP_REQUEST).",
            labels=["listener", "reason"],
        )
        for name, listener in sorted(self.listeners.items()):
            for reason, count in sorted(listener.refused.items()):
                family.add_metric([name, reason], count)
        yield family
        not_after = GaugeMetricFamily(
            "acsd_tls_cert_not_after_seconds",
            "When the certificate each listener serves expires (Unix time; as loaded at the "
            "start or the last reload). Alert on it minus time() < 14 * 86400.",
            labels=["listener"],
        )
        for name, listener in sorted(self.listeners.items()):
            if listener.validity is not None:
                not_after.add_metric([name], listener.validity.not_after)
        yield not_after


class _StunCollector(Collector):
    def __init__(self, server: Any) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        stats = self.server.stats
        answered = CounterMetricFamily(
            "acsd_stun_binding_requests",
            "STUN Binding Requests answered (routers' keepalives and address discovery).",
        )
        answered.add_metric([], stats.answered)
        yield answered
        dropped = CounterMetricFamily(
            "acsd_stun_dropped",
            "Datagrams on the STUN port dropped unanswered, by reason (malformed, not a "
            "Binding Request, oversized, rate limited ...).",
            labels=["reason"],
        )
        for reason, count in sorted(stats.drop_reasons.items()):
            dropped.add_metric([reason], count)
        yield dropped
        udp = CounterMetricFamily(
            "acsd_udp_connection_requests",
            "UDP Connection Requests: sent (3 copies each), refused (deny list, no address).",
            labels=["result"],
        )
        udp.add_metric(["sent"], stats.udp_requests)
        udp.add_metric(["refused"], stats.udp_refused)
        yield udp


class _RequesterCollector(Collector):
    def __init__(self, requester: Any) -> None:
        self.requester = requester

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "acsd_connection_requests",
            "Connection Requests to CPEs by result: ok, failed (refused or unreachable), "
            "skipped (one already running or sent too recently for that CPE).",
            labels=["result"],
        )
        stats = getattr(self.requester, "stats", {})
        for result in ("ok", "failed", "skipped"):
            family.add_metric([result], stats.get(result, 0))
        yield family
        ways = CounterMetricFamily(
            "acsd_connection_requests_by_way",
            "Connection Requests sent, by the way they went: http, udp (through acsd's STUN "
            "socket, to a router behind NAT), udp+http.",
            labels=["way"],
        )
        counts = getattr(self.requester, "ways", {})
        for way in ("http", "udp", "udp+http"):
            ways.add_metric([way], counts.get(way, 0))
        yield ways
