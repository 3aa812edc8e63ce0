"""SIGHUP: new TLS certificates and client CAs, profiles and log settings take effect while
the daemon keeps running and sessions in progress finish; what fails to load is logged and
the old one kept."""

from __future__ import annotations

import http.client
import json
import shutil
import signal

import pytest

from conftest import Daemon, run_cli, wait_for
from cpe_steps import finish, inform, wire_for
from test_cwmp_auth import basic_header, challenges, digest_header, first_challenge
from test_cwmp_auth import inform as inform_body
from test_cwmp_protocol import drive_to_end
from tlscerts import Pki, client_context, get, https, make_pki, needs_openssl, refused
from wire import Wire


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def hup(daemon: Daemon) -> dict:
    """SIGHUP, and the daemon's account of the reload once it is done."""
    before = len(daemon.events("reload.done"))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(daemon.events("reload.done")) > before, timeout=20)
    assert daemon.proc.poll() is None
    return daemon.events("reload.done")[-1]


def lines_after(daemon: Daemon, event: str) -> list[dict]:
    """JSON log entries after the last ``event``."""
    entries = []
    for line in list(daemon.lines):
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    last = max(i for i, e in enumerate(entries) if e.get("event") == event)
    return entries[last + 1 :]


def sim_once(url: str, *args: str) -> None:
    proc = run_cli("sim", "--acs", url, "--once", "--timeout", "10", *args, bounded=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def cn_of(conn: http.client.HTTPConnection) -> str:
    assert conn.sock is not None
    return dict(item[0] for item in conn.sock.getpeercert()["subject"])["commonName"]


@needs_openssl
def test_new_certificate_on_sighup_while_a_session_is_open(daemon_factory, pki, tmp_path):
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(pki.server.cert, cert)
    shutil.copy(pki.server.key, key)
    tls = {"cert": str(cert), "key": str(key)}
    daemon = daemon_factory(**{"cwmp.tls": tls, "api.tls": tls})
    cwmp, api = https(daemon.cwmp_url), https(daemon.api_url)
    context = client_context(pki)
    assert get(api, "/healthz", context)[2] == pki.server.name

    # A session is open (Inform answered) when the certificate changes.
    wire = wire_for(cwmp, context)
    inform(wire, "HUPTLS0001")
    sock, started_with = wire.conn.sock, cn_of(wire.conn)
    shutil.copy(pki.server2.cert, cert)
    shutil.copy(pki.server2.key, key)
    done = hup(daemon)
    assert done["tls"] == {"api": "reloaded", "cwmp": "reloaded"}

    # New connections see the new certificate, on both listeners.
    assert get(cwmp, "/", context)[2] == pki.server2.name
    assert get(api, "/healthz", context)[:1] == (200,)
    assert get(api, "/healthz", context)[2] == pki.server2.name
    # The open session finishes on its connection, with the certificate it started with
    # (its 204 then closes the connection).
    assert "GetParameterValues" in finish(wire)
    assert wire.last_sock is sock and started_with == pki.server.name
    wire.close()
    assert daemon.device_json("HUPTLS0001")["status"]["lanIp"] == "192.168.9.1"
    sim_once(cwmp, "--ca-file", str(pki.ca.cert), "--count", "2")

    # A broken key on the next SIGHUP: logged, the certificate in use stays.
    key.write_text("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
    done = hup(daemon)
    assert done["tls"]["cwmp"].startswith("kept") and "cwmp.tls.key" in done["tls"]["cwmp"]
    failed = daemon.events("reload.tls_failed")
    assert {e["listener"] for e in failed} == {"cwmp", "api"}
    assert all(e["level"] == "error" for e in failed)
    assert get(cwmp, "/", context)[2] == pki.server2.name
    sim_once(cwmp, "--ca-file", str(pki.ca.cert), "--serial-prefix", "AFTERBROKEN")

    # New paths in the config file take effect too, without a restart.
    text = daemon.config.read_text()
    text = text.replace(f'"{cert}"', f'"{pki.server.cert}"').replace(
        f'"{key}"', f'"{pki.server.key}"'
    )
    daemon.config.write_text(text)
    done = hup(daemon)
    assert done["tls"] == {"api": "reloaded", "cwmp": "reloaded"}
    assert "restart_needed" not in done
    assert get(cwmp, "/", context)[2] == pki.server.name
    assert get(api, "/healthz", context)[2] == pki.server.name
    assert daemon.stop() == 0


@needs_openssl
def test_client_ca_is_replaced_on_sighup(daemon_factory, pki, tmp_path):
    client_ca = tmp_path / "cpe-ca.pem"
    shutil.copy(pki.ca.cert, client_ca)
    daemon = daemon_factory(
        **{
            "cwmp.tls": {
                "cert": str(pki.server.cert),
                "key": str(pki.server.key),
                "client_ca": str(client_ca),
            }
        }
    )
    cwmp = https(daemon.cwmp_url)
    ours, stranger = client_context(pki, pki.client), client_context(pki, pki.stranger)
    assert get(cwmp, "/", ours)[0] == 405
    assert refused(cwmp, stranger)

    shutil.copy(pki.other_ca.cert, client_ca)
    assert hup(daemon)["tls"] == {"cwmp": "reloaded"}
    # The old CA is gone, not added to: its client is refused now.
    assert get(cwmp, "/", stranger)[0] == 405
    assert refused(cwmp, ours)
    assert refused(cwmp, client_context(pki))
    assert daemon.stop() == 0


LAB_PROFILE = """\
name = "huawei-lab"
description = "Huawei ONT in the lab"
extends = "huawei"

[match]
manufacturer = "Huawei*"
oui = "00E0FC"
"""


def test_profiles_reload_and_a_broken_file_keeps_the_old_ones(daemon_factory, tmp_path):
    folder = tmp_path / "profiles"
    folder.mkdir()
    daemon = daemon_factory(profiles={"dir": str(folder)})

    def profile_of(serial: str) -> str:
        [entry] = [e for e in daemon.events("session.inform") if e.get("serial") == serial]
        return entry["profile"]

    sim_once(daemon.cwmp_url, "--profile", "huawei-hg8245", "--serial-prefix", "HUPA")
    assert profile_of("HUPA000001") == "huawei"

    # A broken file: the error is logged, the profiles in use stay, the daemon runs on.
    (folder / "broken.toml").write_text('name = "broken"\nextends = "tr098"\n[match\n')
    done = hup(daemon)
    assert done["profiles"].startswith("kept")
    [failed] = daemon.events("reload.profiles_failed")
    assert failed["level"] == "error" and "broken.toml" in failed["error"]
    assert "huawei" in failed["kept"]
    sim_once(daemon.cwmp_url, "--profile", "huawei-hg8245", "--serial-prefix", "HUPB")
    assert profile_of("HUPB000001") == "huawei"

    # Fixed, with a new profile: sessions started after the reload use it.
    (folder / "broken.toml").unlink()
    (folder / "lab.toml").write_text(LAB_PROFILE)
    done = hup(daemon)
    assert "huawei-lab" in done["profiles"]
    sim_once(daemon.cwmp_url, "--profile", "huawei-hg8245", "--serial-prefix", "HUPC")
    assert profile_of("HUPC000001") == "huawei-lab"

    # The API knows it too: a model may name it.
    token = daemon.cli("token", "create", "--role", "ADMIN").stdout.strip()
    host, port = daemon.api_url.split("//")[1].rstrip("/").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    body = {"name": "Lab ONT", "type": "ROUTER", "profile": "huawei-lab"}
    conn.request(
        "POST",
        "/network/model",
        json.dumps(body),
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    assert response.status == 201, response.read()
    conn.close()
    assert daemon.stop() == 0


def test_a_new_profiles_dir_is_read_on_sighup_and_a_missing_one_is_an_error_now(
    daemon_factory, tmp_path
):
    """Pointing ``[profiles] dir`` elsewhere takes effect on SIGHUP; a directory that is not
    there is reported at once (it said "restart needed", and the next start then failed)."""
    daemon = daemon_factory()
    text = daemon.config.read_text()
    elsewhere = tmp_path / "lab-profiles"
    daemon.config.write_text(f"{text}\n[profiles]\ndir = {json.dumps(str(elsewhere))}\n")
    done = hup(daemon)
    assert done["config"] == "changed" and "restart_needed" not in done
    assert done["profiles"].startswith("kept")
    # not applied: what is in use stays the running configuration (it was taken in, and a
    # worker restarted later failed to start on it)
    assert "applied" not in done
    [failed] = daemon.events("reload.profiles_failed")
    assert failed["level"] == "error" and failed["dir"] == str(elsewhere)
    assert "profile directory not found" in failed["error"]

    elsewhere.mkdir()
    (elsewhere / "lab.toml").write_text(LAB_PROFILE)
    done = hup(daemon)
    assert done["applied"] == ["profiles.dir"] and "huawei-lab" in done["profiles"]
    sim_once(daemon.cwmp_url, "--profile", "huawei-hg8245", "--serial-prefix", "HUPD")
    [entry] = [e for e in daemon.events("session.inform") if e.get("serial") == "HUPD000001"]
    assert entry["profile"] == "huawei-lab"
    assert daemon.stop() == 0


def test_log_level_on_sighup_and_keys_that_need_a_restart(daemon_factory):
    daemon = daemon_factory(log={"level": "info"})
    sim_once(daemon.cwmp_url, "--serial-prefix", "LOGA")
    assert daemon.events("session.end")
    assert not [e for e in lines_after(daemon, "listening") if e.get("level") == "debug"]

    text = daemon.config.read_text()
    text = text.replace('level = "info"', 'level = "debug"')
    text = text.replace("[cwmp]\n", "[cwmp]\nmax_sessions = 7\n", 1)
    daemon.config.write_text(text)
    done = hup(daemon)
    assert done["config"] == "log settings applied"
    assert done["restart_needed"] == ["cwmp.max_sessions"]
    # the new level in a field of its own: "level" is the line's own severity
    [applied] = daemon.events("reload.log")
    assert applied["level"] == "info" and applied["log_level"] == "debug"
    [warning] = daemon.events("reload.restart_needed")
    assert warning["level"] == "warning" and warning["keys"] == ["cwmp.max_sessions"]

    sim_once(daemon.cwmp_url, "--serial-prefix", "LOGB")
    wait_for(lambda: any(e.get("serial") == "LOGB000001" for e in daemon.events("session.end")))
    debug = [e for e in lines_after(daemon, "reload.done") if e.get("level") == "debug"]
    assert debug, "no debug lines after the reload"

    # An invalid file on SIGHUP: logged, the running settings stay.
    daemon.config.write_text(text + "[cwmp\n")
    done = hup(daemon)
    assert done["config"] == "invalid, kept"
    [invalid] = daemon.events("reload.config_invalid")
    assert invalid["level"] == "error" and str(daemon.config) in invalid["error"]
    sim_once(daemon.cwmp_url, "--serial-prefix", "LOGC")
    daemon.config.write_text(text)  # for the CLI below
    assert daemon.device_json("LOGC000001")["serialNumber"] == "LOGC000001"
    assert daemon.stop() == 0


def test_sighup_storm_leaves_sessions_alone(daemon_factory):
    """Many SIGHUPs while routers run: every session still ends with 204."""
    daemon = daemon_factory()
    wire = wire_for(daemon.cwmp_url)
    inform(wire, "STORM00001")
    for _ in range(5):
        daemon.proc.send_signal(signal.SIGHUP)
    proc = run_cli(
        "sim",
        "--acs",
        daemon.cwmp_url,
        "--once",
        "--count",
        "20",
        "--serial-prefix",
        "STORM",
        bounded=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "GetParameterValues" in finish(wire)
    wait_for(lambda: daemon.events("reload.done"))
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0


def test_config_check_shows_the_tls_keys() -> None:
    """``acsd config check`` shows the TLS keys with their defaults."""
    proc = run_cli("config", "check")
    assert proc.returncode == 0
    config = json.loads(proc.stdout)
    assert config["cwmp"]["tls"] == {
        "cert": None,
        "key": None,
        "client_ca": None,
        "min_version": "TLSv1.2",
    }
    assert config["api"]["tls"] == {"cert": None, "key": None}


def test_a_config_file_that_is_not_utf8_is_a_config_error(daemon_factory):
    """Not a traceback from config check or serve, nor reload.failed on SIGHUP."""
    daemon = daemon_factory()
    text = daemon.config.read_bytes()
    daemon.config.write_bytes(b"# caf\xe9\n" + text)
    expected = f"{daemon.config}: invalid TOML: not UTF-8 text (byte 5)"
    done = hup(daemon)
    assert done["config"] == "invalid, kept"
    [invalid] = daemon.events("reload.config_invalid")
    assert invalid["error"].startswith(expected)
    assert not daemon.events("reload.failed")
    for command in ("config", "check"), ("serve",):
        proc = run_cli(*command, "--config", str(daemon.config), bounded=True)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.splitlines() == [f"acsd: config error: {expected}; TOML files are UTF-8"]
    daemon.config.write_bytes(text)
    assert daemon.stop() == 0


# --- the CPE credentials file -------------------------------------------------------------


def creds_daemon(daemon_factory, creds, **auth) -> Daemon:
    """A daemon with Digest and the per-device entries of ``creds`` (no shared password)."""
    auth = {"scheme": "digest", "credentials_file": str(creds), **auth}
    return daemon_factory(cwmp={"auth": auth}, top={"shutdown_grace": 0})


def gets_in(daemon: Daemon, serial: str, password: str) -> bool:
    """Whether ``serial`` (prefix + 000001, as the simulator numbers) completes a session
    with ``password``: the simulator, over new connections, as a router would."""
    prefix = serial.removesuffix("000001")
    proc = run_cli(
        "sim", "--acs", daemon.cwmp_url, "--once", "--timeout", "10", "--serial-prefix", prefix,
        "--acs-username", "{serial}", "--acs-password", password, bounded=True,
    )  # fmt: skip
    return proc.returncode == 0 and "1 sessions ok, 0 failed" in proc.stdout


def turned_away(daemon: Daemon, serial: str, password: str) -> bool:
    """Whether a Digest answer with ``password`` gets 401 (by hand: one attempt only, the
    simulator would retry)."""
    wire, answer = first_challenge(daemon, serial)
    header = digest_header(challenges(answer)[0], serial, password)
    return wire.post(inform_body(serial), headers={"Authorization": header}).status == 401


def test_sighup_reads_the_credentials_file_again(daemon_factory, tmp_path):
    # A router added to the file, or one whose password was rotated, had to wait for a
    # restart of the whole service (every session dropped): SIGHUP said only
    # "restart_needed".
    creds = tmp_path / "cpe-credentials.toml"
    creds.write_text('[devices]\nKEEP000001 = "keep-pw"\nROTA000001 = "old-rota-pw"\n')
    daemon = creds_daemon(daemon_factory, creds)
    assert gets_in(daemon, "ROTA000001", "old-rota-pw")
    assert not gets_in(daemon, "NEWR000001", "new-router-pw")
    # A session opened with the old password, still going at the reload.
    wire, answer = first_challenge(daemon, "ROTA000001")
    header = digest_header(challenges(answer)[0], "ROTA000001", "old-rota-pw")
    assert wire.post(inform_body("ROTA000001"), headers={"Authorization": header}).status == 200

    creds.write_text(
        '[devices]\nKEEP000001 = "keep-pw"\nROTA000001 = "new-rota-pw"\n'
        'NEWR000001 = "new-router-pw"\n'
    )
    done = hup(daemon)
    assert done["credentials"] == "reloaded (3 devices)"
    assert "restart_needed" not in done
    [reloaded] = daemon.events("reload.credentials")
    assert (reloaded["added"], reloaded["changed"], reloaded["removed"]) == (1, 1, 0)
    assert reloaded["devices"] == 3 and reloaded["file"] == str(creds)

    # the session that authenticated goes on to its end
    drive_to_end(wire, wire.post(None), "urn:dslforum-org:cwmp-1-0")
    assert gets_in(daemon, "NEWR000001", "new-router-pw")
    assert gets_in(daemon, "ROTA000001", "new-rota-pw")
    assert turned_away(daemon, "ROTA000001", "old-rota-pw")
    assert gets_in(daemon, "KEEP000001", "keep-pw")
    # a SIGHUP with the file as it was rebuilds nothing
    assert hup(daemon)["credentials"] == "unchanged"
    assert len(daemon.events("reload.credentials")) == 1
    text = daemon.log_text()
    assert not [pw for pw in ("keep-pw", "rota-pw", "new-router-pw") if pw in text]
    assert daemon.stop() == 0


def test_a_broken_credentials_file_on_sighup_keeps_the_credentials_in_use(daemon_factory, tmp_path):
    creds = tmp_path / "cpe-credentials.toml"
    good = '[devices]\nKEEP000001 = "keep-pw"\n'
    creds.write_text(good)
    daemon = creds_daemon(daemon_factory, creds, algorithms=["MD5"], max_failures=50)
    # A new router and a typo in the file, and a new log level in the config: the log
    # level is taken (the config file is fine), the credentials file is not.
    creds.write_text(
        good
        + 'NEWR000001 = "new-router-pw"\n# rotated\nKEEP000001x = { ha1_md5 = "s3cr3t-h4sh" }\n'
    )
    daemon.config.write_text(daemon.config.read_text().replace('level = "debug"', 'level = "info"'))
    done = hup(daemon)
    assert done["config"] == "log settings applied" and done["applied"] == ["log.level"]
    assert done["credentials"].startswith("kept (error: ")
    [failed] = daemon.events("reload.credentials_failed")
    assert failed["level"] == "error"
    assert failed["error"] == (
        f"{creds}: line 5: devices.KEEP000001x.ha1_md5: expected MD5 HA1 as hex"
    )
    assert failed["kept"] == str(creds) and failed["devices"] == 1
    assert gets_in(daemon, "KEEP000001", "keep-pw")
    assert not gets_in(daemon, "NEWR000001", "new-router-pw")

    # Not TOML at all, then gone: the same.
    for broken in ('[devices]\nKEEP000001 = keep-pw"\n', None):
        if broken is None:
            creds.unlink()
        else:
            creds.write_text(broken)
        done = hup(daemon)
        assert done["credentials"].startswith("kept (error: ")
        assert gets_in(daemon, "KEEP000001", "keep-pw")
    errors = [e["error"] for e in daemon.events("reload.credentials_failed")]
    assert "invalid TOML: Invalid value (at line 2, column 14)" in errors[1]
    assert errors[2] == f"{creds}: file not found"

    # Fixed: taken.
    creds.write_text(good + 'NEWR000001 = "new-router-pw"\n')
    assert hup(daemon)["credentials"] == "reloaded (2 devices)"
    assert gets_in(daemon, "NEWR000001", "new-router-pw")
    text = daemon.log_text()
    assert not [s for s in ("keep-pw", "new-router-pw", "s3cr3t-h4sh") if s in text]
    assert daemon.stop() == 0


def test_a_new_credentials_file_path_is_taken_on_sighup(daemon_factory, tmp_path):
    creds = tmp_path / "cpe-credentials.toml"
    creds.write_text('[devices]\nKEEP000001 = "keep-pw"\n')
    daemon = creds_daemon(daemon_factory, creds)
    text = daemon.config.read_text()
    moved = tmp_path / "moved.toml"
    daemon.config.write_text(text.replace(str(creds), str(moved)))
    # not there (yet): an error now, the file in use stays, also for the next reload
    done = hup(daemon)
    assert done["credentials"] == f"kept (error: {moved}: file not found)"
    assert "applied" not in done
    assert gets_in(daemon, "KEEP000001", "keep-pw")
    moved.write_text('[devices]\nMOVE000001 = "moved-pw"\n')
    done = hup(daemon)
    assert done["credentials"] == "reloaded (1 devices)"
    assert done["applied"] == ["cwmp.auth.credentials_file"]
    assert gets_in(daemon, "MOVE000001", "moved-pw")
    assert turned_away(daemon, "KEEP000001", "keep-pw")
    assert daemon.stop() == 0


async def test_the_credentials_file_waits_for_a_restart_of_what_it_is_checked_against(tmp_path):
    # Its hashes are bound to the realm, its entries checked against scheme and
    # algorithms: with a change of one of them waiting for a restart, the file waits too.
    from acsd.config import load_config
    from acsd.cwmp.auth import build_authenticator
    from acsd.provisioning.profiles import load_profiles
    from acsd.reload import Profiles, Reloader
    from conftest import write_config

    creds = tmp_path / "cpe-credentials.toml"
    creds.write_text('[devices]\nCRED000001 = "first-password"\n')
    path = write_config(
        tmp_path, cwmp={"auth": {"scheme": "digest", "credentials_file": str(creds)}}
    )
    config = load_config(path)
    auth = build_authenticator(config.cwmp.auth)
    reloader = Reloader(config, path, Profiles(load_profiles(None)), {}, cpe_auth=auth)
    done = await reloader.reload()
    assert done["credentials"] == "unchanged" and "restart_needed" not in done
    path.write_text(path.read_text().replace('scheme = "digest"', 'scheme = "digest"\nrealm = "x"'))
    creds.write_text(creds.read_text() + 'CRED000002 = "second-password"\n')
    done = await reloader.reload()
    assert done["restart_needed"] == ["cwmp.auth.credentials_file", "cwmp.auth.realm"]
    assert done["credentials"].startswith("kept (cwmp.auth.realm changed, which takes a restart")
    assert auth.device_count == 1
    # With CPEs not authenticated at start-up, an edit is named as needing a restart.
    path = write_config(tmp_path, cwmp={"auth": {"credentials_file": str(creds)}})
    reloader = Reloader(load_config(path), path, Profiles(load_profiles(None)), {})
    assert "credentials" not in await reloader.reload()
    creds.write_text(creds.read_text() + 'CRED000003 = "third-password"\n')
    done = await reloader.reload()
    assert done["restart_needed"] == ["cwmp.auth.credentials_file"]


async def test_the_reload_summary_names_every_setting_it_applied(tmp_path):
    # A reload of a new log level and static_wan_dns said "config": "log settings
    # applied", which reads as if the DNS servers had not been taken.
    from acsd.config import load_config
    from acsd.provisioning.profiles import load_profiles
    from acsd.reload import Profiles, Reloader
    from conftest import write_config

    path = write_config(tmp_path, log={"level": "info"})
    reloader = Reloader(load_config(path), path, Profiles(load_profiles(None)), {})
    path.write_text(
        path.read_text().replace('level = "info"', 'level = "debug"')
        + '\n[provisioning]\nstatic_wan_dns = ["192.0.2.53"]\nabsent_recheck_interval = 60\n'
    )
    done = await reloader.reload()
    assert done["config"] == "changed" and "restart_needed" not in done
    assert done["applied"] == [
        "log.level",
        "provisioning.absent_recheck_interval",
        "provisioning.static_wan_dns",
    ]


# --- the shared username and password -----------------------------------------------------


def shared_turned_away(daemon: Daemon, scheme: str, serial: str, password: str) -> bool:
    """:func:`turned_away`, for Basic too: one answer, on a connection of its own."""
    if scheme == "digest":
        return turned_away(daemon, serial, password)
    wire = Wire(daemon.cwmp_url)
    headers = {"Authorization": basic_header(serial, password)}
    return wire.post(inform_body(serial), headers=headers).status == 401


def with_password(daemon: Daemon, old: str, new: str | None) -> None:
    """The daemon's config file with ``[cwmp.auth] password`` ``new`` (None: no such line)."""
    text = daemon.config.read_text()
    assert f'password = "{old}"\n' in text
    line = "" if new is None else f'password = "{new}"\n'
    daemon.config.write_text(text.replace(f'password = "{old}"\n', line))


@pytest.mark.parametrize("scheme", ["digest", "basic"])
def test_sighup_applies_a_new_shared_password(daemon_factory, scheme):
    # A rotation of the fleet's shared password needed a restart, which drops every
    # session: SIGHUP named cwmp.auth.password in reload.restart_needed.
    auth = {"scheme": scheme, "password": "old-shared-pw", "max_failures": 50}
    if scheme == "basic":
        auth["allow_basic_without_tls"] = True
    daemon = daemon_factory(cwmp={"auth": auth}, top={"shutdown_grace": 0})
    assert gets_in(daemon, "SHPW000001", "old-shared-pw")
    # A session opened with the old password, still going at the reload; for Basic, a
    # check of the old password that passed and is cached.
    if scheme == "digest":
        wire, answer = first_challenge(daemon, "SHPW000002")
        header = digest_header(challenges(answer)[0], "SHPW000002", "old-shared-pw")
    else:
        wire, header = Wire(daemon.cwmp_url), basic_header("SHPW000002", "old-shared-pw")
    assert wire.post(inform_body("SHPW000002"), headers={"Authorization": header}).status == 200
    assert not shared_turned_away(daemon, scheme, "SHPW000003", "old-shared-pw")

    with_password(daemon, "old-shared-pw", "new-shared-pw")
    done = hup(daemon)
    assert done["shared_credentials"] == "changed"
    assert done["applied"] == ["cwmp.auth.password"] and "restart_needed" not in done
    [reloaded] = daemon.events("reload.shared_credentials")
    assert reloaded["password_change"] == "changed" and reloaded["username"] == "(serial number)"

    # the session that authenticated goes on to its end
    drive_to_end(wire, wire.post(None), "urn:dslforum-org:cwmp-1-0")
    assert gets_in(daemon, "SHPW000001", "new-shared-pw")
    # the old password is no way in, also where a check of it passed a moment ago
    assert shared_turned_away(daemon, scheme, "SHPW000003", "old-shared-pw")
    assert shared_turned_away(daemon, scheme, "SHPW000001", "old-shared-pw")
    assert hup(daemon)["shared_credentials"] == "unchanged"
    assert len(daemon.events("reload.shared_credentials")) == 1
    text = daemon.log_text()
    assert "shared-pw" not in text
    assert daemon.stop() == 0


def router_runs(daemon: Daemon, serial: str, password: str, *args: str) -> bool:
    """:func:`gets_in` with more of the simulator's options (``--state DIR``: a router that
    remembers what the ACS set, its ManagementServer.Password among it, from run to run)."""
    prefix = serial.removesuffix("000001")
    proc = run_cli(
        "sim", "--acs", daemon.cwmp_url, "--once", "--timeout", "10", "--serial-prefix", prefix,
        "--acs-username", "{serial}", "--acs-password", password, *args, bounded=True,
    )  # fmt: skip
    return proc.returncode == 0 and "1 sessions ok, 0 failed" in proc.stdout


def rotate(daemon: Daemon, old: str, new: str | None, previous: str | None) -> dict:
    """The config file's shared ``password`` ``old`` replaced by ``new`` and the
    ``previous_password`` line set to ``previous`` (None: none), and a SIGHUP."""
    text = daemon.config.read_text()
    lines = [line for line in text.splitlines() if not line.startswith("previous_password = ")]
    text = "\n".join(lines) + "\n"
    line = f'password = "{new}"\n' if new is not None else ""
    if previous is not None:
        line += f'previous_password = "{previous}"\n'
    assert f'password = "{old}"\n' in text
    daemon.config.write_text(text.replace(f'password = "{old}"\n', line))
    return hup(daemon)


@pytest.mark.parametrize("scheme", ["digest", "basic"])
def test_a_rotation_with_the_previous_password_moves_routers_over_without_a_lockout(
    daemon_factory, tmp_path, scheme
):
    # With one shared password at a time, a rotation locked every router still on the old
    # one out for good (401), and acsd had no way to give them the new one.
    from test_metrics import scrape, value

    creds = tmp_path / "cpe-credentials.toml"
    creds.write_text('[devices]\nOWNE000001 = "own-entry-pw"\n')
    auth = {
        "scheme": scheme,
        "password": "old-fleet-pw",
        "credentials_file": str(creds),
        "max_failures": 50,
    }
    if scheme == "basic":
        auth["allow_basic_without_tls"] = True
    daemon = daemon_factory(cwmp={"auth": auth}, top={"shutdown_grace": 0})
    state = tmp_path / "routers"
    keep = ("--state", str(state))
    # a TR-181 and a TR-098 router, and one that refuses the new password at first; the
    # first one's record is left alone (driftCheck false): its customer renamed its network
    daemon.apply({"serialNumber": "ROTA000001", "wifi": {"ssid": "Given"}, "driftCheck": False})
    tr098 = ("--profile", "tr098-dsl")
    for serial, more in (("ROTA000001", ()), ("IGDR000001", tr098), ("LATE000001", ())):
        assert router_runs(daemon, serial, "old-fleet-pw", *keep, *more)
    saved = state / "ROTA000001.json"
    assert '"Given"' in saved.read_text()
    saved.write_text(saved.read_text().replace('"Given"', '"Customer-Own"'))

    done = rotate(daemon, "old-fleet-pw", "new-fleet-pw", "old-fleet-pw")
    assert done["shared_credentials"] == "changed" and "restart_needed" not in done
    assert done["applied"] == ["cwmp.auth.password", "cwmp.auth.previous_password"]
    [reloaded] = daemon.events("reload.shared_credentials")
    assert reloaded["password_change"] == "changed"
    assert reloaded["previous_password_change"] == "added" and reloaded["rotating"] is True

    # Routers on the old password get in, and are given the new one in that session.
    assert router_runs(daemon, "ROTA000001", "old-fleet-pw", *keep)
    assert router_runs(daemon, "IGDR000001", "old-fleet-pw", *keep, *tr098)
    rotated = daemon.events("session.acs_password_rotated")
    assert [e["serial"] for e in rotated] == ["ROTA000001", "IGDR000001"]
    assert all(e["level"] == "info" for e in rotated)
    held = {
        name: json.loads((state / f"{name}.json").read_text())["tree"]["values"]
        for name in ("ROTA000001", "IGDR000001")
    }
    assert held["ROTA000001"]["Device.ManagementServer.Password"] == "new-fleet-pw"
    assert held["IGDR000001"]["InternetGatewayDevice.ManagementServer.Password"] == "new-fleet-pw"
    # (the password alone: the rotation is no drift check of a router left alone)
    assert held["ROTA000001"]["Device.WiFi.SSID.1.SSID"] == "Customer-Own"
    # A router that refuses it keeps the old one, is not failed for it, and is asked again.
    refuse = ("--fault", "Device.ManagementServer.Password=9001")
    assert router_runs(daemon, "LATE000001", "old-fleet-pw", *keep, *refuse)
    [refused] = daemon.events("session.acs_password_refused")
    assert refused["serial"] == "LATE000001" and refused["codes"] == [9001]
    assert not daemon.events("session.job_failed")
    samples = scrape(daemon)
    assert value(samples, "acsd_cwmp_auth_previous_password_total") == 3
    assert value(samples, "acsd_cwmp_password_rotations_total", result="rotated") == 2
    assert value(samples, "acsd_cwmp_password_rotations_total", result="refused") == 1

    # Their next sessions come with the new password (the simulator's --acs-password is
    # the factory's: the ACS's value wins, as on a router): no more previous-password ones.
    assert router_runs(daemon, "ROTA000001", "old-fleet-pw", *keep)
    assert router_runs(daemon, "IGDR000001", "old-fleet-pw", *keep, *tr098)
    assert value(scrape(daemon), "acsd_cwmp_auth_previous_password_total") == 3
    assert len(daemon.events("session.acs_password_rotated")) == 2
    # A router with an entry of its own is not opened by the previous shared password.
    assert not router_runs(daemon, "OWNE000001", "old-fleet-pw")
    assert router_runs(daemon, "OWNE000001", "own-entry-pw")
    assert not router_runs(daemon, "OWNE000001", "old-fleet-pw", "--acs-username", "{oui}-{serial}")
    assert (
        daemon.events("cwmp.auth_refused")[-1]["reason"] == "this router has credentials of its own"
    )

    # Set to the password itself it opens nothing more, and the reload says so.
    rotate(daemon, "new-fleet-pw", "new-fleet-pw", "new-fleet-pw")
    [unused] = daemon.events("reload.previous_password_unused")
    assert unused["level"] == "warning" and "cwmp.auth.password itself" in unused["reason"]
    assert daemon.events("reload.shared_credentials")[-1]["rotating"] is False
    assert not router_runs(daemon, "LATE000001", "old-fleet-pw", *keep)

    # previous_password removed: the old password is no way in any more.
    done = rotate(daemon, "new-fleet-pw", "new-fleet-pw", None)
    assert done["shared_credentials"] == "changed"
    assert daemon.events("reload.shared_credentials")[-1]["previous_password_change"] == "removed"
    assert daemon.events("reload.shared_credentials")[-1]["rotating"] is False
    assert router_runs(daemon, "ROTA000001", "old-fleet-pw", *keep)
    assert shared_turned_away(daemon, scheme, "LATE000001", "old-fleet-pw")
    assert not router_runs(daemon, "LATE000001", "old-fleet-pw", *keep)
    assert router_runs(daemon, "LATE000001", "new-fleet-pw")

    # No password in the log, nor in the records acsd keeps of the routers.
    assert "fleet-pw" not in daemon.log_text() and "own-entry-pw" not in daemon.log_text()
    for name in ("ROTA000001", "IGDR000001", "LATE000001"):
        record = daemon.cli("device", "show", name, "--json").stdout
        assert "fleet-pw" not in record
    for path in daemon.db.parent.glob(daemon.db.name + "*"):  # (its -wal too)
        assert b"fleet-pw" not in path.read_bytes(), path
    assert daemon.stop() == 0


def test_removing_the_shared_password_that_is_the_only_way_in_is_refused(daemon_factory, tmp_path):
    # No credentials file: the config file is refused as a whole (as at start-up). A
    # credentials file without a router: the password in use is kept, and said why.
    daemon = daemon_factory(
        cwmp={"auth": {"scheme": "digest", "password": "only-shared-pw", "max_failures": 50}},
        top={"shutdown_grace": 0},
    )
    with_password(daemon, "only-shared-pw", None)
    done = hup(daemon)
    assert done["config"] == "invalid, kept"
    assert done["shared_credentials"] == "unchanged"
    assert gets_in(daemon, "ONLY000001", "only-shared-pw")
    assert daemon.stop() == 0

    creds = tmp_path / "cpe-credentials.toml"
    creds.write_text("[devices]\n")
    auth = {"scheme": "digest", "password": "only-shared-pw", "credentials_file": str(creds)}
    daemon = daemon_factory(cwmp={"auth": auth}, top={"shutdown_grace": 0})
    with_password(daemon, "only-shared-pw", None)
    daemon.config.write_text(daemon.config.read_text().replace('level = "debug"', 'level = "info"'))
    done = hup(daemon)
    assert done["shared_credentials"].startswith("kept (error: cwmp.auth.password removed")
    assert done["applied"] == ["log.level"]  # (the rest of the file is taken)
    [failed] = daemon.events("reload.shared_credentials_failed")
    assert failed["level"] == "error"
    assert gets_in(daemon, "ONLY000001", "only-shared-pw")
    # the same refusal at the next reload: compared with the password in use
    assert hup(daemon)["shared_credentials"].startswith("kept (error: ")
    # Routers in the file: then it may go, and the routers of the file are the ones in.
    creds.write_text('[devices]\nOWNR000001 = "own-pw"\n')
    done = hup(daemon)
    assert (done["shared_credentials"], done["credentials"]) == ("removed", "reloaded (1 devices)")
    assert gets_in(daemon, "OWNR000001", "own-pw")
    assert turned_away(daemon, "ONLY000001", "only-shared-pw")
    assert "only-shared-pw" not in daemon.log_text() and "own-pw" not in daemon.log_text()
    assert daemon.stop() == 0


async def test_a_shared_password_waits_for_a_restart_of_what_it_is_checked_against(
    tmp_path, monkeypatch
):
    # Digest hashes it with the realm, and Basic's check is the scheme's: a new password
    # with a realm change waiting for a restart is taken with it then, not half now.
    from acsd.config import load_config
    from acsd.cwmp.auth import build_authenticator
    from acsd.provisioning.profiles import load_profiles
    from acsd.reload import Profiles, Reloader
    from conftest import write_config

    monkeypatch.delenv("ACSD_CWMP_AUTH_PASSWORD", raising=False)
    path = write_config(tmp_path, cwmp={"auth": {"scheme": "digest", "password": "first-pw"}})
    config = load_config(path)
    auth = build_authenticator(config.cwmp.auth)
    reloader = Reloader(config, path, Profiles(load_profiles(None)), {}, cpe_auth=auth)
    path.write_text(
        path.read_text().replace('password = "first-pw"', 'password = "second-pw"\nrealm = "x"')
    )
    done = await reloader.reload()
    assert done["restart_needed"] == ["cwmp.auth.password", "cwmp.auth.realm"]
    assert done["shared_credentials"].startswith("kept (cwmp.auth.realm changed")
    assert auth._shared_password == "first-pw"
    # The realm back as it was: the password is taken now.
    path.write_text(path.read_text().replace('realm = "x"\n', ""))
    done = await reloader.reload()
    assert done["shared_credentials"] == "changed" and "restart_needed" not in done
    assert auth._shared_password == "second-pw"

    # Set in the environment: what the process started with, which a reload says.
    monkeypatch.setenv("ACSD_CWMP_AUTH_PASSWORD", "env-pw")
    path = write_config(tmp_path, cwmp={"auth": {"scheme": "digest"}})
    config = load_config(path)
    auth = build_authenticator(config.cwmp.auth)
    reloader = Reloader(config, path, Profiles(load_profiles(None)), {}, cpe_auth=auth)
    done = await reloader.reload()
    assert done["shared_credentials"] == "unchanged (ACSD_CWMP_AUTH_PASSWORD read at start only)"
    # A password moved into the file while the variable stays: the variable's is used.
    path.write_text(
        path.read_text().replace('scheme = "digest"', 'scheme = "digest"\npassword = "file-pw"')
    )
    done = await reloader.reload()
    assert (
        done["shared_credentials"].startswith("unchanged (") and auth._shared_password == "env-pw"
    )


async def test_a_reload_reads_the_config_file_once(tmp_path, monkeypatch):
    # reload.env_overrides was found by a second read of the file: an edit saved between
    # the two reads had it warn of another file than the one the reload took.
    from structlog.testing import capture_logs

    import acsd.config
    from acsd.config import load_config
    from acsd.cwmp.auth import build_authenticator
    from acsd.provisioning.profiles import load_profiles
    from acsd.reload import Profiles, Reloader
    from conftest import write_config
    from test_startup_failures import saved_between

    monkeypatch.setenv("ACSD_CWMP_AUTH_PASSWORD", "env-pw")
    path = write_config(tmp_path, cwmp={"auth": {"scheme": "digest"}})
    config = load_config(path)
    auth = build_authenticator(config.cwmp.auth)
    reloader = Reloader(config, path, Profiles(load_profiles(None)), {}, cpe_auth=auth)
    with_password = path.read_text().replace(
        'scheme = "digest"', 'scheme = "digest"\npassword = "file-pw"'
    )
    path.write_text(with_password)
    reads = saved_between(monkeypatch, acsd.config, path, b"not = [toml")
    with capture_logs() as logs:
        done = await reloader.reload()
    warned = [e for e in logs if e["event"] == "reload.env_overrides"]
    assert [e["keys"] for e in warned] == [["cwmp.auth.password by ACSD_CWMP_AUTH_PASSWORD"]]
    assert reads == [path] and done["config"] == "unchanged"
    assert done["shared_credentials"] == "unchanged (ACSD_CWMP_AUTH_PASSWORD read at start only)"
    assert auth._shared_password == "env-pw"


def _catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler of its own for ``sig`` (/proc's SigCgt)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except FileNotFoundError:
        pass
    return False


@pytest.mark.parametrize("workers", [1, 2])
def test_a_sighup_while_acsd_starts_is_served_not_fatal(tmp_path, workers):
    # A certificate renewal hook's `pkill -HUP acsd` just after a restart: while Python
    # imported the command line (half a second) SIGHUP's default action ended acsd, exit
    # 129, which systemd's Restart=on-failure counts as clean: the ACS stayed down.
    import subprocess
    import sys

    from conftest import REPO, write_config

    config = write_config(tmp_path, top={"workers": workers})
    proc = subprocess.Popen(
        [sys.executable, "-m", "acsd", "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        # As soon as acsd holds the signal, or (an acsd that does not) a moment after its
        # start: long before it listens either way
        import time

        started = time.monotonic()
        wait_for(
            lambda: _catches(proc.pid, signal.SIGHUP) or time.monotonic() - started > 0.2,
            10,
            0.001,
        )
        proc.send_signal(signal.SIGHUP)
        lines: list[str] = []
        assert proc.stderr is not None
        # up, every worker listening; one process serves the held reload once it listens
        # (a supervisor reads its configuration after the signal anyway)
        wanted = ['"listening"'] * workers + (['"reload.done"'] if workers == 1 else [])
        for line in proc.stderr:
            lines.append(line)
            if all(sum(w in x for x in lines) >= wanted.count(w) for w in set(wanted)):
                break
        assert proc.poll() is None, "".join(lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
