"""/metrics on the API listener: Prometheus text that parses, and counters that move with
what the daemon does (sessions, Informs, RPCs, faults, store batches, overload)."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from acsd.cwmp import rpc
from acsd.cwmp.session import CwmpSession
from acsd.metrics import OTHER, VENDOR_EVENT, Metrics, event_label, fault_label
from conftest import run_cli, wait_for
from wire import Wire, envelope, inform_body

Samples = dict[tuple[str, frozenset], float]


def fetch(url: str, accept: str | None = None) -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def scrape(daemon) -> Samples:
    content_type, text = fetch(daemon.api_url + "metrics")
    assert content_type.startswith("text/plain; version=0.0.4")
    return parse(text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def test_counters_move_with_simulated_sessions(daemon):
    before = scrape(daemon)
    assert value(before, "acsd_build_info", version=__import__("acsd").__version__) == 1
    assert value(before, "acsd_cwmp_sessions_open") == 0

    sim = run_cli(
        "sim",
        "--acs",
        daemon.cwmp_url,
        "--count",
        "3",
        "--profile",
        "tr181-mobile,tr098-dsl,tplink-tr181",
        "--serial-prefix",
        "MET",
        "--once",
        check=True,
        bounded=True,
    )
    assert "3 sessions ok" in sim.stdout + sim.stderr

    after = scrape(daemon)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("acsd_cwmp_sessions_total") == 3
    assert value(after, "acsd_cwmp_sessions_open") == 0
    assert delta("acsd_cwmp_informs_total", event="0 BOOTSTRAP") == 3
    assert delta("acsd_cwmp_informs_total", event="1 BOOT") == 3
    assert delta("acsd_cwmp_session_duration_seconds_count", outcome="complete") == 3
    assert delta("acsd_cwmp_session_duration_seconds_sum", outcome="complete") > 0
    assert value(after, "acsd_cwmp_rpc_duration_seconds_count", method="GetParameterValues") >= 3
    assert (
        value(
            after, "acsd_cwmp_rpc_duration_seconds_bucket", method="GetParameterValues", le="+Inf"
        )
        >= 3
    )
    assert (
        total(after, "acsd_profile_selected_total") - total(before, "acsd_profile_selected_total")
        == 3
    )
    for profile in ("tr181", "tr098", "tplink-tr181"):
        assert delta("acsd_profile_selected_total", profile=profile) == 1

    # The store committed the sessions in batches; the histogram has counted them.
    assert value(after, "acsd_store_write_batch_size_count") > 0
    assert value(after, "acsd_store_write_batch_size_sum") >= 3
    assert value(after, "acsd_store_write_batch_size_bucket", le="+Inf") == value(
        after, "acsd_store_write_batch_size_count"
    )
    assert value(after, "acsd_store_writes_total") >= 3
    assert ("acsd_store_queue_depth", frozenset()) in after
    # The process collectors of the daemon's own registry are there too.
    assert total(after, "process_resident_memory_bytes") > 0


def test_faults_are_counted_by_code(module_daemon):
    # A daemon shared with tests that make no sessions (test_openmetrics_on_request): what
    # is counted is what moved during this test. (test_counters_move_with_simulated_sessions
    # counts every session of its daemon: it keeps its own.)
    daemon = module_daemon
    serial = "METF000001"
    daemon.apply(
        {"serialNumber": serial, "wifi": {"enabled": True, "ssid": "Metrics", "password": ""}}
    )
    before = scrape(daemon)
    run_cli(
        "sim",
        "--acs",
        daemon.cwmp_url,
        "--profile",
        "tr181-generic",
        "--serial-prefix",
        "METF",
        "--fault",
        "SSID=9007",
        "--once",
        check=True,
        bounded=True,
    )
    after = scrape(daemon)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    def spv_faults(samples: Samples) -> float:
        return sum(
            v
            for (name, labels), v in samples.items()
            if name == "acsd_cwmp_faults_total" and ("method", "SetParameterValues") in labels
        )

    assert delta("acsd_cwmp_parameter_faults_total", code="9007") >= 1
    assert spv_faults(after) - spv_faults(before) >= 1
    assert delta("acsd_cwmp_rpc_duration_seconds_count", method="SetParameterValues") >= 1


def test_overload_and_bad_requests_are_counted(daemon_factory):
    # (the session it holds open is still open when the daemon stops: no grace to wait out)
    daemon = daemon_factory(cwmp={"max_sessions": 1}, top={"shutdown_grace": 0})
    first = Wire(daemon.cwmp_url)
    second = Wire(daemon.cwmp_url)
    try:
        assert first.post(envelope(inform_body("METO000001"))).status == 200
        assert value(scrape(daemon), "acsd_cwmp_sessions_open") == 1
        answer = second.post(envelope(inform_body("METO000002")))
        assert answer.status == 503
        # the line says why, and for which router (the operator searches by its serial)
        [line] = wait_for(lambda: daemon.events("cwmp.overloaded"))
        assert line["cause"] == "sessions" and line["serial"] == "METO000002", line
        bad = Wire(daemon.cwmp_url)
        assert bad.post(b"{}", headers={"Content-Type": "application/json"}).status == 415
        bad.close()
        samples = scrape(daemon)
        assert value(samples, "acsd_cwmp_sessions_refused_overload_total") == 1
        assert value(samples, "acsd_cwmp_bad_requests_total") == 1
        assert value(samples, "acsd_cwmp_sessions_total") == 1
        assert value(samples, "acsd_cwmp_sessions_open") == 1
    finally:
        first.close()
        second.close()


def test_openmetrics_on_request(module_daemon):
    daemon = module_daemon
    content_type, text = fetch(
        daemon.api_url + "metrics", accept="application/openmetrics-text; version=1.0.0"
    )
    assert content_type.startswith("application/openmetrics-text")
    assert text.rstrip().endswith("# EOF")


def test_labels_stay_bounded():
    assert event_label("0 BOOTSTRAP") == "0 BOOTSTRAP"
    assert event_label("m reboot") == "M Reboot"
    assert event_label("X 00D09E ButtonPressed") == VENDOR_EVENT
    assert event_label("M X_00D09E_Thing") == VENDOR_EVENT
    assert event_label("SERIAL12345") == OTHER
    assert fault_label(9005) == "9005"
    assert fault_label(8002) == "8002"
    assert fault_label(12345) == OTHER
    assert fault_label(9032) == "9032" and fault_label(9899) == "9899"  # vendor range
    assert fault_label(8899) == "8899"
    # the reserved rest of 8000-9999 is one label: a CPE cannot make a series per code
    assert fault_label(9500) == fault_label(8500) == fault_label(9100) == OTHER
    assert len({fault_label(code) for code in range(8000, 10000)}) == 401
    assert fault_label(-1) == OTHER


class _FakeDriver:
    """A driver that asks one GetParameterValues and records nothing."""

    def __init__(self) -> None:
        self.profile = type("P", (), {"name": "fake"})()
        self.asked = False
        self.finished: list[bool] = []

    async def inform(self, session, inform):
        return None

    async def cpe_request(self, session, request):
        return request.RESPONSE()

    async def next_request(self, session):
        if self.asked:
            return None
        self.asked = True
        return rpc.GetParameterValues(names=["Device.DeviceInfo."])

    async def response(self, session, request, response):
        pass

    def answer_too_large(self, session, request):
        pass

    async def finish(self, session, *, complete, reason):
        self.finished.append(complete)


async def test_each_metrics_has_its_own_registry_and_the_driver_is_transparent():
    first, second = Metrics(process=False), Metrics(process=False)
    inner = _FakeDriver()
    driver = first.instrument(inner)
    session = CwmpSession(driver=driver, remote_ip="127.0.0.1")
    inform = rpc.Inform(
        device_id=rpc.DeviceId("Test", "00D09E", "Box", "METX000001"),
        events=[rpc.EventStruct("2 PERIODIC"), rpc.EventStruct("X 00D09E Custom")],
    )
    assert await driver.inform(session, inform) is None
    request = await driver.next_request(session)
    await driver.response(session, request, rpc.Fault(code=9005, string="no such name"))
    await driver.finish(session, complete=True, reason="done")
    assert driver.asked is True and inner.finished == [True]  # attributes pass through

    samples = parse(first.render()[0].decode())
    assert value(samples, "acsd_cwmp_informs_total", event="2 PERIODIC") == 1
    assert value(samples, "acsd_cwmp_informs_total", event=VENDOR_EVENT) == 1
    assert value(samples, "acsd_profile_selected_total", profile="fake") == 1
    assert value(samples, "acsd_cwmp_faults_total", method="GetParameterValues", code="9005") == 1
    assert value(samples, "acsd_cwmp_rpc_duration_seconds_count", method="GetParameterValues") == 1
    assert value(samples, "acsd_cwmp_session_duration_seconds_count", outcome="complete") == 1
    # The other daemon's registry saw none of it.
    assert total(parse(second.render()[0].decode()), "acsd_cwmp_informs_total") == 0


def test_a_workers_unreadable_snapshot_costs_only_its_own_figures(tmp_path):
    from prometheus_client.exposition import generate_latest

    from acsd.metrics_share import MetricsShare

    own = Metrics(version="1", process=False)
    other = Metrics(version="1", process=False)
    other.profile_selected.labels("tplink-tr181").inc(5)
    MetricsShare(tmp_path, 2).publish(other.exposition())
    (tmp_path / "worker-1.prom").write_bytes(b"acsd_x{ not prometheus\n\xff")
    share = MetricsShare(tmp_path, 0)
    own.share(share)

    samples = parse(own.render()[0].decode())
    assert value(samples, "acsd_build_info", version="1", worker="0") == 1
    assert value(samples, "acsd_build_info", version="1", worker="2") == 1
    assert value(samples, "acsd_profile_selected_total", profile="tplink-tr181", worker="2") == 5
    assert not any(dict(labels).get("worker") == "1" for _, labels in samples)
    # The scrape also refreshed the answering worker's own snapshot for the others.
    assert b"acsd_build_info" in (tmp_path / "worker-0.prom").read_bytes()
    assert generate_latest(own.registry) == (tmp_path / "worker-0.prom").read_bytes()


async def test_a_vanished_snapshot_directory_is_reported_once_and_scrapes_go_on(tmp_path):
    import asyncio

    from structlog.testing import capture_logs

    from acsd.metrics_share import MetricsShare

    metrics = Metrics(version="1", process=False)
    share = MetricsShare(tmp_path / "gone", 0)
    metrics.share(share)
    with capture_logs() as logs:
        task = asyncio.create_task(share.run(metrics.exposition, interval=0.01))
        await asyncio.sleep(0.2)  # some twenty rounds, all failing
        task.cancel()
        samples = parse(metrics.render()[0].decode())
    assert value(samples, "acsd_build_info", version="1", worker="0") == 1
    assert [e["event"] for e in logs].count("metrics.snapshot_failed") == 1


def test_a_write_the_records_refuse_is_no_store_failure(daemon):
    # A 409 (an internet line's address already another line's, found in the write's
    # transaction) was counted in acsd_store_write_failures_total: an alert on it was
    # paged by ordinary API conflicts.
    from api_world import build_world
    from test_internet_api import confirm_body, order

    world = build_world(daemon)
    first, second = (order(world).body["_id"] for _ in range(2))
    assert (
        world.api.post(f"/internet/account/{first}/confirm", confirm_body("192.0.2.77")).status
        == 200
    )
    taken = world.api.post(f"/internet/account/{second}/confirm", confirm_body("192.0.2.77"))
    assert taken.status == 409, taken.body
    assert value(scrape(daemon), "acsd_store_write_failures_total") == 0
