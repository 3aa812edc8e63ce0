"""A listener's certificate near its end, or past it, is told: tls.cert_expiring (warning)
or tls.cert_expired (error) at the start, at each reload and once a day, by `acsd config
check`, and as acsd_tls_cert_not_after_seconds. An expired one is still served."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import ssl
import subprocess
from pathlib import Path

import pytest

from acsd.cert_expiry import read_validity
from conftest import run_cli, wait_for, write_config
from test_metrics import scrape, value
from tlscerts import OPENSSL, Pair, host_port, make_ca, make_leaf, needs_openssl

pytestmark = needs_openssl


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Pair]:
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "expiry-ca")
    return {
        "ca": ca,
        "expired": make_leaf(folder, "acs-expired", ca, days=-1),
        "expiring": make_leaf(folder, "acs-expiring", ca, days=3),
        "fine": make_leaf(folder, "acs-fine", ca, days=30),
    }


def not_after(cert: Path) -> float:
    """The certificate's notAfter as openssl reads it (Unix time)."""
    assert OPENSSL is not None
    out = subprocess.run(
        [OPENSSL, "x509", "-in", str(cert), "-noout", "-enddate"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return float(ssl.cert_time_to_seconds(out.strip().split("=", 1)[1]))


def tls_of(pair: Pair) -> dict:
    return {"cwmp.tls": {"cert": str(pair.cert), "key": str(pair.key)}}


def test_an_expired_certificate_is_an_error_line_and_still_served(daemon_factory, certs):
    expired = certs["expired"]
    daemon = daemon_factory(**tls_of(expired))
    [line] = wait_for(lambda: daemon.events("tls.cert_expired"))
    assert line["level"] == "error" and line["listener"] == "cwmp"
    assert line["cert"] == str(expired.cert) and line["subject_cn"] == "acs-expired"
    assert line["days_left"] == -1 and line["not_after"].endswith("Z")
    assert not daemon.events("tls.cert_expiring")
    # still served: a client that does not check dates gets its answer (405: CWMP is POST)
    lenient = ssl.create_default_context()
    lenient.check_hostname, lenient.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPSConnection(*host_port(daemon.cwmp_url), timeout=10, context=lenient)
    try:
        conn.request("GET", "/")
        assert conn.sock is not None
        served = conn.sock.getpeercert(binary_form=True)
        assert conn.getresponse().status == 405
    finally:
        conn.close()
    assert served == ssl.PEM_cert_to_DER_cert(expired.cert.read_text())
    # the gauge: when, as the certificate says (the API listener is plain HTTP here)
    samples = scrape(daemon)
    assert value(samples, "acsd_tls_cert_not_after_seconds", listener="cwmp") == not_after(
        expired.cert
    )


def test_a_certificate_near_its_end_is_told_at_reload_and_every_day(
    daemon_factory, certs, tmp_path
):
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(certs["fine"].cert, cert)
    shutil.copy(certs["fine"].key, key)
    # (the daily look every half second here)
    prelude = "import acsd.tls; acsd.tls.EXPIRY_CHECK_INTERVAL = 0.5"
    daemon = daemon_factory(prelude=prelude, **{"cwmp.tls": {"cert": str(cert), "key": str(key)}})
    before = value(scrape(daemon), "acsd_tls_cert_not_after_seconds", listener="cwmp")
    assert before == not_after(certs["fine"].cert)
    wait_for(lambda: daemon.events("listening"))
    shutil.copy(certs["expiring"].cert, cert)
    shutil.copy(certs["expiring"].key, key)
    assert not daemon.events("tls.cert_expiring")  # 30 days left: nothing to say
    daemon.proc.send_signal(signal.SIGHUP)
    line = wait_for(lambda: daemon.events("tls.cert_expiring"))[0]
    assert line["level"] == "warning" and line["listener"] == "cwmp"
    assert line["days_left"] == 2 and line["subject_cn"] == "acs-expiring"
    assert line["cert"] == str(cert)
    # and again at the next daily look, while it is still served
    wait_for(lambda: len(daemon.events("tls.cert_expiring")) >= 3)
    after = value(scrape(daemon), "acsd_tls_cert_not_after_seconds", listener="cwmp")
    assert after == not_after(certs["expiring"].cert)


def test_config_check_warns_of_an_expiring_or_expired_certificate(tmp_path, certs):
    said = {}
    for name in ("expired", "expiring", "fine"):
        folder = tmp_path / name
        folder.mkdir()
        config = write_config(folder, **tls_of(certs[name]))
        proc = run_cli("config", "check", "--config", str(config))
        assert proc.returncode == 0, proc.stderr
        json.loads(proc.stdout)  # (the check's own output is unchanged)
        said[name] = [w for w in proc.stderr.splitlines() if "cwmp.tls.cert" in w]
    [expired] = said["expired"]
    assert expired.startswith("acsd: warning: cwmp.tls.cert: ") and "expired at" in expired
    assert "CN=acs-expired" in expired
    [expiring] = said["expiring"]
    assert "expires at" in expiring and "in 2 days" in expiring
    assert said["fine"] == []


def test_config_check_names_the_api_listener_s_own_clients(tmp_path, certs):
    # The API's certificate is checked by the operator's systems (billing, scripts), not
    # by routers: the warning about it must not send the operator looking at the fleet.
    pair = certs["expired"]
    config = write_config(tmp_path, **{"api.tls": {"cert": str(pair.cert), "key": str(pair.key)}})
    proc = run_cli("config", "check", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    [said] = [w for w in proc.stderr.splitlines() if "api.tls.cert" in w]
    assert "expired at" in said and "API clients that check dates" in said
    assert "CPE" not in said


def test_the_date_is_the_served_certificate_s_in_a_file_holding_the_key_first(tmp_path, certs):
    """A file with the key before the certificate and the CA after it (ssl loads such a
    file as the certificate and its chain): the date and CN are the leaf's."""
    combined = tmp_path / "combined.pem"
    pair, ca = certs["expiring"], certs["ca"]
    combined.write_text(pair.key.read_text() + pair.cert.read_text() + ca.cert.read_text())
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(combined)
    validity = read_validity(str(combined))
    assert validity.not_after == not_after(pair.cert)
    assert validity.subject_cn == "acs-expiring"
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError, match="a certificate acsd cannot read in"):
        read_validity(str(junk))
