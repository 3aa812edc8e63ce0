"""Config files: the example is complete and true, and a bad key gets one clear line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib

import pytest

from acsd.config import Config, ConfigError, load_config
from conftest import REPO, acsd_cmd, run_cli, wait_for


def _refused(tmp_path, text: str) -> tuple:
    """The config file ``text`` (no environment) and the one line acsd refuses it with."""
    from acsd.config import ConfigError

    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    return path, str(caught.value)


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_example_config_lists_every_setting_with_its_default():
    example = tomllib.loads((REPO / "config.example.toml").read_text())
    defaults = Config().model_dump()
    # Commented-out keys (no default value) are the only ones allowed to be missing.
    missing = {k for k, v in _flatten(defaults).items() if v is not None} - set(_flatten(example))
    assert not missing, f"config.example.toml lacks {sorted(missing)}"
    assert _flatten(example) == {
        k: v for k, v in _flatten(defaults).items() if k in _flatten(example)
    }
    assert load_config(REPO / "config.example.toml", environ={}) == Config()


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[cwmp]\nlisten = "127.0.0.1:7000"\n')
    config = load_config(path, environ={"ACSD_CWMP_LISTEN": "127.0.0.1:7001"})
    assert config.cwmp.port == 7001


def test_unknown_key_is_one_line_naming_it_and_exit_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[cwmp]\nlisten = "0.0.0.0:7547"\nperiodic_intreval = 60\n')
    proc = run_cli("config", "check", "--config", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "cwmp.periodic_intreval" in lines[0] and "unknown key" in lines[0]
    assert str(path) in lines[0]


def test_bad_values_name_the_key(tmp_path):
    cases = {
        '[cwmp]\nlisten = "nonsense"\n': "cwmp.listen",
        "[cwmp]\nperiodic_interval = -5\n": "cwmp.periodic_interval",
        '[store]\nurl = "postgresql://db"\n': "store.url",
        '[log]\nlevel = "loud"\n': "log.level",
        "[cwmp\n": "invalid TOML",
    }
    for text, expected in cases.items():
        path = tmp_path / "bad.toml"
        path.write_text(text)
        proc = run_cli("serve", "--config", str(path), bounded=True)
        assert proc.returncode == 2, text
        assert expected in proc.stderr, (text, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_config_file_is_reported(tmp_path):
    proc = run_cli("serve", "--config", str(tmp_path / "nope.toml"), bounded=True)
    assert proc.returncode == 2 and "file not found" in proc.stderr


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path):
    # `acsd config check | head -1`: the pipe's reader is gone before acsd writes.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            acsd_cmd("config", "check"),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_static_wan_dns_takes_a_list_or_a_comma_string_of_usable_addresses(tmp_path):
    from acsd.config import ConfigError, load_config

    path = tmp_path / "dns.toml"
    path.write_text('[provisioning]\nstatic_wan_dns = "198.51.100.153, 203.0.113.153"\n')
    assert load_config(str(path)).provisioning.static_wan_dns == [
        "198.51.100.153",
        "203.0.113.153",
    ]
    path.write_text('[provisioning]\nstatic_wan_dns = "192.0.2.53,192.0.2.53"\n')
    assert load_config(str(path)).provisioning.static_wan_dns == ["192.0.2.53"]
    for value, message in (
        ('["dns.example.net"]', "'dns.example.net' is no IPv4 address"),
        ('["127.0.0.1"]', "'127.0.0.1' cannot be a router's DNS server"),
        ('["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"]', "at most 4"),
    ):
        path.write_text(f"[provisioning]\nstatic_wan_dns = {value}\n")
        with pytest.raises(ConfigError) as caught:
            load_config(str(path))
        assert "provisioning.static_wan_dns" in str(caught.value) and message in str(caught.value)


def test_a_file_value_of_the_wrong_type_is_refused_not_guessed(tmp_path):
    # TOML is typed: 1 for a boolean or "300" for a number is a mistake to point at, not
    # something to convert (pydantic's lax mode took both, and `"yes"` as true).
    path = tmp_path / "typed.toml"
    for key, value, kind in (
        ("cwmp.trust_forwarded", "1", "boolean"),
        ("provisioning.drift_check", '"yes"', "boolean"),
        ("provisioning.retry_base", "true", "number"),
        ("cwmp.periodic_interval", '"300"', "integer"),
        ("workers", "2.0", "integer"),
    ):
        section, _, name = key.rpartition(".")
        text = f"[{section}]\n{name} = {value}\n" if section else f"{name} = {value}\n"
        shown = repr(tomllib.loads(text.replace(f"[{section}]", ""))[name])
        expected = f"{key}: Input should be a valid {kind} (got {shown})"
        path.write_text(text)
        proc = run_cli("config", "check", "--config", str(path))
        assert proc.returncode == 2, text
        assert proc.stderr.strip() == f"acsd: config error: {path}: {expected}", proc.stderr
    # A whole number where a float is wanted is still a number.
    path.write_text("[cwmp]\nmax_loop_lag = 1\n")
    assert load_config(path, environ={}).cwmp.max_loop_lag == 1.0


def test_environment_text_is_converted_to_the_settings_type():
    config = load_config(
        None,
        environ={
            "ACSD_CWMP_TRUST_FORWARDED": "true",
            "ACSD_CWMP_PERIODIC_INTERVAL": "60",
            "ACSD_PROVISIONING_RETRY_BASE": "30.5",
            "ACSD_CWMP_AUTH_ALGORITHMS": "SHA-256, MD5",
            "ACSD_WORKERS": "2",
        },
    )
    assert config.cwmp.trust_forwarded is True
    assert config.cwmp.periodic_interval == 60
    assert config.provisioning.retry_base == 30.5
    assert config.cwmp.auth.algorithms == ["SHA-256", "MD5"]
    assert config.workers == 2
    from acsd.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_config(None, environ={"ACSD_CWMP_PERIODIC_INTERVAL": "6o"})
    assert str(caught.value).startswith("ACSD_CWMP_PERIODIC_INTERVAL: ")
    assert "'6o'" in str(caught.value)


def test_a_password_of_the_wrong_type_is_not_echoed(tmp_path):
    path = tmp_path / "secret.toml"
    path.write_text('[cwmp.auth]\nscheme = "digest"\npassword = 271828\n')
    proc = run_cli("config", "check", "--config", str(path))
    assert proc.returncode == 2
    assert "cwmp.auth.password" in proc.stderr and "271828" not in proc.stderr


def _numeric_settings():
    """(section path, key, type) of every int and float setting."""
    from acsd.config import _settings

    for _, path, annotation in _settings():
        kind = {int: int, float: float, int | None: int}.get(annotation)
        if kind is not None:
            yield path, kind


def _toml_for(path: tuple[str, ...], value: str) -> str:
    if len(path) == 1:
        return f"{path[0]} = {value}\n"
    return f"[{'.'.join(path[:-1])}]\n{path[-1]} = {value}\n"


def test_every_number_setting_has_an_upper_bound_and_is_finite(tmp_path):
    """A huge count or number of seconds overflowed SQLite's integers (a 500 on
    ?online=true); inf and nan are no numbers of seconds."""
    from acsd.config import ConfigError

    settings = list(_numeric_settings())
    assert len(settings) > 15
    file = tmp_path / "big.toml"
    for path, kind in settings:
        values = ["99999999999999999999"] if kind is int else ["1e300", "inf", "nan"]
        for value in values:
            file.write_text(_toml_for(path, value))
            with pytest.raises(ConfigError) as caught:
                load_config(file)
            assert f": {'.'.join(path)}: " in str(caught.value), (path, value)


def test_huge_or_infinite_settings_are_refused_by_config_check(tmp_path):
    cases = {
        "[cwmp]\nperiodic_interval = 4294967296\n": "cwmp.periodic_interval: Input should be "
        "less than or equal to 4294967295",
        "[cwmp]\nonline_grace = 99999999999999999999\n": "cwmp.online_grace: Input should be "
        "less than or equal to 4294967295",
        "shutdown_grace = inf\n": "shutdown_grace: Input should be a finite number",
    }
    path = tmp_path / "big.toml"
    for text, message in cases.items():
        path.write_text(text)
        proc = run_cli("config", "check", "--config", str(path))
        assert proc.returncode == 2 and proc.stdout == "", text
        assert proc.stderr.splitlines() == [f"acsd: config error: {path}: {message}"]
    path.write_text("[cwmp]\nperiodic_interval = 4294967295\n")
    assert run_cli("config", "check", "--config", str(path)).returncode == 0
    env = dict(os.environ, ACSD_PROVISIONING_RETRY_BASE="nan")
    proc = subprocess.run(
        acsd_cmd("config", "check"), capture_output=True, text=True, env=env, cwd=REPO
    )
    assert proc.returncode == 2 and "Infinity" not in proc.stdout and "NaN" not in proc.stdout
    assert "provisioning.retry_base: Input should be a finite number" in proc.stderr


def test_a_worker_hang_timeout_under_a_second_is_refused(tmp_path):
    # (a value in ms for s: a busy loop runs that late, healthy workers would be killed)
    from acsd.config import ConfigError

    path = tmp_path / "hang.toml"
    for value in ("0.03", "0.999"):
        path.write_text(f"worker_hang_timeout = {value}\n")
        with pytest.raises(ConfigError, match=r"worker_hang_timeout: .*at least 1"):
            load_config(path, environ={})
    for value in ("0", "1", "30.0"):
        path.write_text(f"worker_hang_timeout = {value}\n")
        assert load_config(path, environ={}).worker_hang_timeout == float(value)


def test_store_urls_the_store_cannot_open_are_config_errors_without_the_url(tmp_path):
    """config check took what the store then refused with a traceback; and echoed the URL,
    password and all."""
    cases = {
        "": "store.url: empty; expected sqlite:///",
        "sqlite://host/x.db": "store.url: sqlite URLs have no host part",
        ":memory:": "store.url: in-memory SQLite is not supported",
        "sqlite:///": "store.url: no file name in the sqlite URL",
        "mysql://acsd:DbSecretPw1@db/acsd": "store.url: unsupported scheme 'mysql'",
        "acsd:DbSecretPw1@db://acsd": "store.url: not a URL with a scheme",
        "postgresql://acsd:DbSecretPw1@db": "store.url: the postgresql URL names no database",
        "postgresql://acsd:DbSecretPw1@db:x/acsd": "store.url: a postgresql URL that cannot",
        # these made files of those names (the second read-write, for all its "mode=ro")
        "sqlite:acsd.db": "store.url: a sqlite: URL without '//'",
        "sqlite:///acsd.db?mode=ro": "store.url: a sqlite URL takes no query or fragment",
        "postgresql:acsd:DbSecretPw1@db": "store.url: a postgresql: URL without '//'",
    }
    path = tmp_path / "store.toml"
    for url, message in cases.items():
        path.write_text(f"[store]\nurl = {url!r}\n".replace("'", '"'))
        for command in (("config", "check"), ("device", "list")):
            proc = run_cli(*command, "--config", str(path))
            assert proc.returncode == 2 and "Traceback" not in proc.stderr, (url, proc.stderr)
            [line] = proc.stderr.splitlines()
            assert line.startswith(f"acsd: config error: {path}: {message}"), (url, line)
            assert "DbSecretPw1" not in line


def test_cwmp_and_api_on_one_address_is_a_config_error_naming_both(tmp_path):
    path = tmp_path / "same.toml"
    # ("[::]": every address, so the API's loopback one too)
    for cwmp, api in (
        ("127.0.0.1:7600", "127.0.0.1:7600"),
        ("[::]:7600", "[::1]:7600"),
        ("[::]:7600", "127.0.0.1:7600"),  # ("[::]" is dual-stack: IPv4 too)
        ("[::1]:7600", "[0:0:0:0:0:0:0:1]:7600"),  # one address, spelt two ways
    ):
        path.write_text(f'[cwmp]\nlisten = "{cwmp}"\n[api]\nlisten = "{api}"\n')
        proc = run_cli("config", "check", "--config", str(path))
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.splitlines() == [
            f"acsd: config error: {path}: cwmp.listen ({cwmp}) and api.listen ({api}) name "
            "the same address: give them different ports"
        ]
    for cwmp, api in (
        ("127.0.0.1:0", "127.0.0.1:0"),
        ("127.0.0.1:7600", "[::1]:7600"),
        ("0.0.0.0:7600", "[::1]:7600"),  # (all IPv4 addresses: not IPv6 ones)
    ):
        path.write_text(f'[cwmp]\nlisten = "{cwmp}"\n[api]\nlisten = "{api}"\n')
        assert run_cli("config", "check", "--config", str(path)).returncode == 0


def test_a_listen_address_that_is_no_host_is_a_config_error_naming_the_key(tmp_path):
    # "[::1:7547" passed `config check` and then stopped `serve` with "Name or service not
    # known", naming no key; an IPv6 address must be bracketed, or its port is a guess.
    path = tmp_path / "listen.toml"
    for listen in ("[::1:7547", "[127.0.0.1]:7547", "[]:7547", "::1:7547", " 127.0.0.1:7547"):
        path.write_text(f'[cwmp]\nlisten = "{listen}"\n')
        proc = run_cli("config", "check", "--config", str(path))
        assert proc.returncode == 2, (listen, proc.stdout)
        assert proc.stderr.startswith(f"acsd: config error: {path}: cwmp.listen: "), proc.stderr
    for listen in ("[::1]:7547", "127.0.0.1:7547", "localhost:7547", "0.0.0.0:0"):
        path.write_text(f'[cwmp]\nlisten = "{listen}"\n')
        assert run_cli("config", "check", "--config", str(path)).returncode == 0, listen


def test_a_public_url_with_a_password_is_refused_without_echoing_it(tmp_path):
    # The error quoted the whole URL, password included, to the terminal and the journal.
    path = tmp_path / "pu.toml"
    path.write_text('[api]\npublic_url = "https://admin:Hunter2Secret@acs.example.net"\n')
    proc = run_cli("config", "check", "--config", str(path))
    assert proc.returncode == 2
    assert "api.public_url" in proc.stderr and "acs.example.net" in proc.stderr
    assert "Hunter2Secret" not in proc.stderr + proc.stdout


def test_a_bad_realm_is_explained_not_shown_as_a_regex(tmp_path):
    # It said: cwmp.auth.realm: String should match pattern '^[^"\\\x00-\x1f]+$'
    path = tmp_path / "realm.toml"
    path.write_text('[cwmp.auth]\nrealm = "ACS \\"one\\""\n')
    proc = run_cli("config", "check", "--config", str(path))
    assert proc.returncode == 2
    assert "cwmp.auth.realm" in proc.stderr and "double quote" in proc.stderr
    assert "pattern" not in proc.stderr


def test_config_check_shows_a_postgresql_url_without_its_password(tmp_path):
    path = tmp_path / "pg.toml"
    path.write_text('[store]\nurl = "postgresql://acsd:DbSecretPw1@db.example/acsd"\n')
    proc = run_cli("config", "check", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["store"]["url"] == "postgresql://acsd:***@db.example/acsd"
    assert "DbSecretPw1" not in proc.stdout + proc.stderr


def test_store_pool_size_is_for_postgresql_only_and_bounded(tmp_path):
    from acsd.config import ConfigError

    path = tmp_path / "pool.toml"
    path.write_text('[store]\nurl = "postgresql://acsd@db.example/acsd"\npool_size = 12\n')
    assert load_config(path, environ={}).store.pool_size == 12
    env = {"ACSD_STORE_POOL_SIZE": "9"}
    assert load_config(path, environ=env).store.pool_size == 9
    assert load_config(None, environ={}).store.pool_size is None  # the backend's 4
    for text, message in (
        ("pool_size = 0", "store.pool_size: Input should be greater than or equal to 1"),
        ('pool_size = "8"', "store.pool_size: Input should be a valid integer"),
        (
            'url = "sqlite:///acsd.db"\npool_size = 8',
            "store.pool_size: only a postgresql:// store.url has a read pool",
        ),
    ):
        path.write_text(f"[store]\n{text}\n")
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(path, environ={})
    path.write_text("[store]\n")
    with pytest.raises(ConfigError, match=re.escape("store.pool_size: only a postgresql")):
        load_config(path, environ=env)


def test_store_busy_timeout_is_for_sqlite_only_bounded_and_reaches_the_store(tmp_path):
    from acsd.config import ConfigError
    from acsd.store import store_of

    path = tmp_path / "busy.toml"
    path.write_text("[store]\nbusy_timeout = 0.5\n")
    config = load_config(path, environ={})
    assert config.store.busy_timeout == 0.5
    env = {"ACSD_STORE_BUSY_TIMEOUT": "30"}
    assert load_config(path, environ=env).store.busy_timeout == 30
    assert load_config(None, environ={}).store.busy_timeout is None  # the store's 5 s
    # store_of is how the daemon, the supervisor and the CLI open their store
    assert store_of(config.store).busy_timeout == 0.5
    assert store_of(load_config(None, environ={}).store).busy_timeout == 5.0
    for text, message in (
        ("busy_timeout = 0", "store.busy_timeout: Input should be greater than 0"),
        ("busy_timeout = 301", "store.busy_timeout: Input should be less than or equal to 300"),
        ('busy_timeout = "5"', "store.busy_timeout: Input should be a valid number"),
        (
            'url = "postgresql://acsd@db.example/acsd"\nbusy_timeout = 5',
            "store.busy_timeout: only a sqlite:// store.url waits for a lock",
        ),
    ):
        path.write_text(f"[store]\n{text}\n")
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(path, environ={})


def test_store_lock_timeout_is_for_postgresql_only_bounded_and_reaches_the_store(tmp_path):
    from acsd.config import ConfigError
    from acsd.store import store_of

    path = tmp_path / "lock.toml"
    pg = 'url = "postgresql://acsd@db.example/acsd"'
    path.write_text(f"[store]\n{pg}\nlock_timeout = 0.5\n")
    config = load_config(path, environ={})
    assert config.store.lock_timeout == 0.5
    env = {"ACSD_STORE_LOCK_TIMEOUT": "3"}
    assert load_config(path, environ=env).store.lock_timeout == 3
    # store_of is how the daemon, the supervisor and the CLI open their store
    assert store_of(config.store).lock_timeout == 0.5
    path.write_text(f"[store]\n{pg}\n")
    assert store_of(load_config(path, environ={}).store).lock_timeout == 2.0
    for text, message in (
        (f"{pg}\nlock_timeout = 0", "store.lock_timeout: Input should be greater than 0"),
        (
            f"{pg}\nlock_timeout = 11",
            "store.lock_timeout: Input should be less than or equal to 10",
        ),
        ("lock_timeout = 1", "store.lock_timeout: only a postgresql:// store.url waits for a row"),
    ):
        path.write_text(f"[store]\n{text}\n")
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(path, environ={})


def test_store_transaction_pooling_is_for_postgresql_only(tmp_path):
    from acsd.config import ConfigError

    path = tmp_path / "pool.toml"
    path.write_text('[store]\nurl = "postgresql://acsd@db.example/acsd"\n')
    assert load_config(path, environ={}).store.transaction_pooling is False
    env = {"ACSD_STORE_TRANSACTION_POOLING": "true"}
    assert load_config(path, environ=env).store.transaction_pooling is True
    path.write_text("[store]\ntransaction_pooling = false\n")  # says what is true of SQLite
    assert load_config(path, environ={}).store.transaction_pooling is False
    path.write_text("[store]\ntransaction_pooling = true\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value) == (
        f"{path}: store.transaction_pooling: only a postgresql:// store.url goes through a "
        "connection pooler"
    )


def test_connection_request_timeout_is_bounded(tmp_path):
    # (the daemon's use of it: test_connection_request_cpe_servers)
    from acsd.config import ConfigError

    path = tmp_path / "cr.toml"
    assert load_config(None, environ={}).cwmp.connection_request_timeout == 5.0
    env = {"ACSD_CWMP_CONNECTION_REQUEST_TIMEOUT": "20"}
    assert load_config(None, environ=env).cwmp.connection_request_timeout == 20
    for text, message in (
        ("0.5", "cwmp.connection_request_timeout: Input should be greater than or equal to 1"),
        ("61", "cwmp.connection_request_timeout: Input should be less than or equal to 60"),
    ):
        path.write_text(f"[cwmp]\nconnection_request_timeout = {text}\n")
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(path, environ={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a typo: the key it was meant to be
        ("[cwmp]\nperiodic_intreval = 60\n", "cwmp.periodic_intreval: unknown key (did you mean "),
        # TOML puts a key written below a [section] into it: the commonest slip of all
        (
            '[log]\nlevel = "info"\nworkers = 4\n',
            "log.workers: unknown key (workers is a top-level setting: write it above the "
            "first [section])",
        ),
        ('[cmwp]\nlisten = "127.0.0.1:7547"\n', "cmwp: unknown section (did you mean [cwmp]?)"),
        ('[cwmp]\nurl = "sqlite:///x.db"\n', "cwmp.url: unknown key (did you mean store.url?)"),
        # nothing near: what the section takes
        (
            "[store]\nflavour = 1\n",
            "store.flavour: unknown key ([store] takes: url, pool_size, transaction_pooling, "
            "busy_timeout, lock_timeout, audit_retention_days, operations_retention_days)",
        ),
    ],
)
def test_an_unknown_key_says_what_was_meant(tmp_path, text, expected):
    path, message = _refused(tmp_path, text)
    assert f"{path}: {expected}" in message
    if "intreval" in text:
        assert message.endswith("(did you mean cwmp.periodic_interval?)")


def test_a_config_file_with_a_byte_order_mark_is_read_as_meant(tmp_path):
    # Saved by a Windows editor: tomllib alone answers "Invalid statement (at line 1,
    # column 1)", which names nothing the operator can see in the file.
    path = tmp_path / "c.toml"
    path.write_bytes(b"\xef\xbb\xbfworkers = 2\n")
    assert load_config(path, environ={}).workers == 2


def test_a_bad_value_from_the_environment_names_its_variable(tmp_path):
    # The key is not in the file: the operator must learn where the value came from.
    from acsd.config import ConfigError

    path = tmp_path / "c.toml"
    path.write_text("[cwmp]\nonline_grace = 60\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"ACSD_CWMP_PERIODIC_INTERVAL": "0"})
    assert str(caught.value).endswith(
        "cwmp.periodic_interval: Input should be greater than or equal to 1 "
        "(set by ACSD_CWMP_PERIODIC_INTERVAL)"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"ACSD_CWMP_AUTH_ALGORITHMS": "MD5,MD5"})
    assert str(caught.value).endswith(
        "cwmp.auth.algorithms: an algorithm is listed twice (set by ACSD_CWMP_AUTH_ALGORITHMS)"
    )
    # which item of the list is wrong, not the whole text (it read as if not split)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"ACSD_CWMP_AUTH_ALGORITHMS": "MD5,MD6"})
    assert str(caught.value) == (
        "ACSD_CWMP_AUTH_ALGORITHMS: Input should be 'SHA-256' or 'MD5' "
        "(got 'MD6', item 2 of 'MD5,MD6')"
    )
    # and in the file, what it got
    path.write_text('[cwmp.auth]\nalgorithms = "MD5, MD6"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value).endswith(
        "cwmp.auth.algorithms.1: Input should be 'SHA-256' or 'MD5' (got 'MD6')"
    )
    path.write_text("[cwmp]\nonline_grace = 60\n")
    # a bad value of the file's is the file's key alone
    path.write_text("[cwmp]\nperiodic_interval = 0\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"ACSD_CWMP_ONLINE_GRACE": "30"})
    assert "cwmp.periodic_interval: " in str(caught.value)
    assert "ACSD_CWMP_PERIODIC_INTERVAL" not in str(caught.value)


def test_a_relative_path_not_found_says_where_it_was_looked_for(tmp_path, monkeypatch):
    # Relative paths are the working directory's (under systemd /var/lib/acsd), not the
    # config file's: `acsd config check` run from elsewhere must not just say "not found"
    # about a file the operator sees next to the config.
    from pathlib import Path

    from acsd.config import ConfigError
    from acsd.provisioning.profiles import ProfileError, load_profiles
    from acsd.tls import check_files

    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "acsd.toml"
    note = f"(relative to the working directory {here})"

    path.write_text('[cwmp.tls]\ncert = "tls/acs.pem"\nkey = "tls/acs.key"\n')
    with pytest.raises(ConfigError) as caught:
        check_files(load_config(path, environ={}), str(path))
    assert str(caught.value) == f"{path}: cwmp.tls.cert: file not found: tls/acs.pem {note}"

    path.write_text('[cwmp.auth]\nscheme = "digest"\ncredentials_file = "cpe.toml"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert f"cwmp.auth.credentials_file: cpe.toml: file not found {note}" in str(caught.value)

    with pytest.raises(ProfileError) as caught:
        load_profiles(Path("profiles"))
    assert f"profile directory not found {note}" in str(caught.value)
    # there, but a file: not "not found"
    Path("profiles").write_text("")
    with pytest.raises(ProfileError) as caught:
        load_profiles(Path("profiles"))
    assert f"profiles: not a directory {note}" in str(caught.value)

    # an absolute path is what it says
    path.write_text(f'[cwmp.auth]\nscheme = "digest"\ncredentials_file = "{tmp_path}/cpe.toml"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value).endswith(f"{tmp_path}/cpe.toml: file not found")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the slip of an operator who takes the section for the setting
        (
            'store = "postgresql://acsd:Hunter2pw@db.example.net/acsd"\n',
            "store: a section, not a value: write its keys below a [store] line (got a string)",
        ),
        (
            '[store.url]\nmain = "postgresql://acsd:Hunter2pw@db.example.net/acsd"\n',
            "store.url: Input should be a valid string (got a table)",
        ),
        (
            '[store]\nurl = ["postgresql://acsd:Hunter2pw@db.example.net/acsd"]\n',
            "store.url: Input should be a valid string (got an array)",
        ),
        ('[cwmp]\nauth = "Hunter2pw"\n', "cwmp.auth: a section, not a value: write its keys"),
        # a value of the right shape that the setting's own check refuses
        (
            '[api]\npublic_url = "https://acsd:Hunter2pw@api.example.net:99999/"\n',
            "api.public_url: 'https://***@api.example.net:99999/': Port out of range",
        ),
        ("[cwmp.auth]\npassword = 4872232\n", "cwmp.auth.password: Input should be a valid "),
    ],
)
def test_a_value_of_the_wrong_shape_that_may_be_a_secret_is_not_echoed(tmp_path, text, expected):
    # The error is printed by `config check` and `serve`, and logged by a SIGHUP reload
    # (reload.config_invalid): it must not carry the password it was given.
    path, message = _refused(tmp_path, text)
    assert f"{path}: {expected}" in message
    assert "Hunter2pw" not in message and "4872232" not in message


def test_a_workers_reload_error_blames_no_variable_the_operator_never_set(tmp_path):
    # A worker's environment holds the addresses its supervisor bound (ACSD_*_LISTEN): its
    # reload.config_invalid said "acsd.toml + ACSD_* environment" of a slip in the file.
    from acsd.config import ConfigError
    from acsd.workers import WORKER_ENV

    path = tmp_path / "acsd.toml"
    path.write_text('[log]\nlevel = "info"\nworkers = 2\n')
    worker = {WORKER_ENV: "1", "ACSD_CWMP_LISTEN": "127.0.0.1:7547", "ACSD_API_LISTEN": "[::1]:1"}
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=worker)
    assert str(caught.value).startswith(f"{path}: log.workers: unknown key")
    # the operator's own variables are still named, in a worker too
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={**worker, "ACSD_CWMP_PERIODIC_INTERVAL": "60"})
    assert str(caught.value).startswith(f"{path} + ACSD_* environment: log.workers")


def test_a_device_list_whose_reader_left_blames_no_database(tmp_path):
    # `acsd device list | head`: "acsd: .../acsd.db: [Errno 32] Broken pipe"
    config = tmp_path / "acsd.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "acsd.db"}"\n')
    assert run_cli("db", "migrate", "--config", str(config)).returncode == 0
    body = tmp_path / "device.json"
    body.write_text('{"serialNumber": "PIPE0001"}')
    assert run_cli("device", "apply", str(body), "--config", str(config)).returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            acsd_cmd("device", "list", "--config", str(config)), stdout=write_end,
            stderr=subprocess.PIPE, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr


def test_an_empty_config_file_name_is_a_usage_error():
    # `--config "$UNSET"` said "defaults: file not found"
    proc = run_cli("config", "check", "--config", "")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == (
        "acsd config check: error: argument --config: an empty FILE: give the config file, "
        "or leave --config out"
    )


def test_a_nul_in_a_setting_and_an_address_no_ip_has_are_the_files_errors(tmp_path):
    # both passed `config check` and failed the start (a traceback; exit 1 for good)
    path = tmp_path / "acsd.toml"
    path.write_text('[store]\nurl = "sqlite:///x\\u0000y.db"\n')
    with pytest.raises(ConfigError, match=r"store\.url: holds a NUL character"):
        load_config(path)
    path.write_text('[cwmp]\nlisten = "256.1.1.1:7547"\n')
    with pytest.raises(ConfigError, match=r"cwmp\.listen: 256\.1\.1\.1 is no IPv4 address"):
        load_config(path)
    path.write_text('[cwmp]\nlisten = "localhost:7547"\n')  # a host name is still one
    assert load_config(path).cwmp.listen == "localhost:7547"


def test_an_empty_deny_list_is_warned_of(daemon_factory):
    # "" reads as deny nothing: a stray ACSD_CWMP_CONNECTION_REQUEST_DENY= switched the
    # guard against requests to acsd's own host off without a word
    daemon = daemon_factory(cwmp={"connection_request_deny": ""})
    [line] = wait_for(lambda: daemon.events("connreq.deny_empty"))
    assert line["level"] == "warning"


def test_a_session_timeout_under_a_second_is_refused(tmp_path):
    # 0.03 (milliseconds written for seconds) dropped every session
    path = tmp_path / "acsd.toml"
    path.write_text("[cwmp]\nsession_timeout = 0.03\n")
    with pytest.raises(ConfigError, match=r"cwmp\.session_timeout"):
        load_config(path)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # (yarl takes either as a URL: every StatusUrl and Location written with it broke)
        ("https://acs.example.net /", "'acs.example.net ' is no host name or IP address"),
        ("https://acs example.net", "'acs example.net' is no host name or IP address"),
        ("https://acs.example.net:0/", "port 0 is no port a client can reach"),
    ],
)
def test_a_public_url_clients_could_not_reach_is_refused(tmp_path, url, expected):
    path, message = _refused(tmp_path, f'[api]\npublic_url = "{url}"\n')
    assert f"{path}: api.public_url: {url!r}: {expected}" in message


def test_a_public_url_of_a_name_or_address_is_taken(tmp_path):
    path = tmp_path / "acsd.toml"
    for url, kept in [
        ("https://acs.example.net:8443/acsd/", "https://acs.example.net:8443/acsd"),
        ("http://[2001:db8::7]:7557", "http://[2001:db8::7]:7557"),
        ("http://192.0.2.7", "http://192.0.2.7"),
        # an internationalised name, as DNS holds it and as written: taken before host
        # names were checked, refused with the check (yarl's host is the decoded form)
        ("https://xn--80aqu.example/", "https://xn--80aqu.example"),
        ("https://ацс.example/", "https://xn--80a8ao.example"),
    ]:
        path.write_text(f'[api]\npublic_url = "{url}"\n')
        assert load_config(path).api.public_url == kept


def test_a_setting_that_would_change_nothing_is_warned_of_and_the_example_has_none(tmp_path):
    # Accepted in silence, each looked like a setting in force: a credentials file under
    # scheme "none" (every router got in with no password at all), a TLS floor with no
    # TLS, STUN keys with STUN off.
    path = tmp_path / "c.toml"
    path.write_text(
        '[cwmp.auth]\ncredentials_file = "/etc/acsd/cpe-credentials.toml"\n'
        '[cwmp.tls]\nmin_version = "TLSv1.3"\n'
        '[stun]\nkeepalive = 20\nlisten = "0.0.0.0:3478"\n'  # (the default: asks nothing)
    )
    proc = run_cli("config", "check", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if line.startswith("acsd: warning:")]
    assert warned == [
        'acsd: warning: cwmp.auth.credentials_file is not used: scheme "none" asks routers '
        "for no credentials",
        "acsd: warning: cwmp.tls.min_version is not used: cwmp.tls.cert is not set (no TLS)",
        "acsd: warning: stun.keepalive is not used: stun.enabled is false",
    ]
    example = run_cli("config", "check", "--config", str(REPO / "config.example.toml"))
    assert example.returncode == 0 and "warning" not in example.stderr, example.stderr


def test_a_previous_password_that_opens_nothing_more_is_warned_of_and_never_shown(tmp_path):
    # [cwmp.auth] previous_password: the shared password before a rotation, taken beside
    # the current one. Equal to it, without it, or under scheme "none" it does nothing.
    creds = tmp_path / "cpe.toml"
    creds.write_text('[devices]\nSN1 = "own-pw"\n')
    path = tmp_path / "c.toml"
    cases = [
        (
            'scheme = "digest"\npassword = "same-pw"\nprevious_password = "same-pw"\n',
            "cwmp.auth.previous_password is not used: it is cwmp.auth.password itself",
        ),
        (
            f'scheme = "digest"\ncredentials_file = "{creds}"\nprevious_password = "old-pw"\n',
            "cwmp.auth.previous_password is not used: cwmp.auth.password is not set",
        ),
        (
            'previous_password = "old-pw"\n',
            'cwmp.auth.previous_password is not used: scheme "none" asks routers',
        ),
        ('scheme = "basic"\npassword = "new-pw"\nprevious_password = "old-pw"\n', None),
    ]
    for auth, expected in cases:
        path.write_text("[cwmp.auth]\nallow_basic_without_tls = true\n" + auth)
        proc = run_cli("config", "check", "--config", str(path))
        assert proc.returncode == 0, proc.stderr
        warned = [line for line in proc.stderr.splitlines() if "previous_password" in line]
        if expected is None:
            assert warned == [], warned
        else:
            [line] = warned
            assert line.startswith(f"acsd: warning: {expected}"), line
        assert json.loads(proc.stdout)["cwmp"]["auth"]["previous_password"] == "***"
        assert "-pw" not in proc.stdout + proc.stderr
    # From the environment, as the password: taken, masked, and its errors show no value.
    path.write_text('[cwmp.auth]\nscheme = "digest"\npassword = "new-pw"\n')
    environ = {"ACSD_CWMP_AUTH_PREVIOUS_PASSWORD": "env-old-pw"}
    assert load_config(path, environ=environ).cwmp.auth.previous_password == "env-old-pw"
    proc = run_cli("config", "check", "--config", str(path), env=environ)
    assert proc.returncode == 0 and "env-old-pw" not in proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["cwmp"]["auth"]["previous_password"] == "***"
    path.write_text(
        '[cwmp.auth]\nscheme = "digest"\npassword = "new-pw"\nprevious_password = 75319\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    # (a value the temporary path cannot hold by chance, as it could a "7")
    assert "previous_password" in str(caught.value) and "75319" not in str(caught.value)


def test_a_check_of_a_section_names_the_variables_that_took_part(tmp_path):
    # ACSD_CWMP_AUTH_SCHEME=digest in acsd.env with the password left in the file's
    # comments: the error is the section's, and the operator looks for it in the file.
    from acsd.config import ConfigError

    path = tmp_path / "c.toml"
    path.write_text('[cwmp]\nlisten = "127.0.0.1:7547"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"ACSD_CWMP_AUTH_SCHEME": "digest"})
    assert str(caught.value).endswith("(ACSD_CWMP_AUTH_SCHEME set in the environment)")


def test_a_check_of_the_whole_configuration_names_only_the_variables_of_its_keys(tmp_path):
    # The shipped unit sets ACSD_STORE_URL: a check of several sections named it (and every
    # other variable set) as taking part in a clash of cwmp.listen and api.listen.
    from acsd.config import ConfigError

    path = tmp_path / "c.toml"
    path.write_text('[cwmp]\nlisten = "127.0.0.1:7547"\n')
    environ = {
        "ACSD_STORE_URL": "sqlite:////var/lib/acsd/acsd.db",
        "ACSD_LOG_LEVEL": "debug",
        "ACSD_API_LISTEN": "127.0.0.1:7547",
    }
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ)
    assert "name the same address" in str(caught.value)
    assert str(caught.value).endswith("(ACSD_API_LISTEN set in the environment)")


#: store.url queries asyncpg (or the server, at the first connection) refuses, and the
#: option each error names
BAD_PG_QUERIES = {
    "sslmode=bogus": "store.url: sslmode='bogus': must be one of disable, allow, prefer,",
    "sslmod=require": "store.url: option sslmod (did you mean sslmode?)",
    "connect_timeout=10": "store.url: connect_timeout is a libpq option that asyncpg does not",
    "foo=bar": "store.url: option foo: neither a connection option asyncpg takes nor",
    "target_session_attrs=master": "store.url: target_session_attrs='master': must be one of",
    "sslnegotiation=direct": "store.url: sslnegotiation=direct needs sslmode=require",
    "port=x": "store.url: port='x': a port number",
    "sslmode": "store.url: a query that cannot be parsed",
}


@pytest.mark.parametrize("query", sorted(BAD_PG_QUERIES))
def test_a_postgresql_url_option_asyncpg_refuses_fails_the_check_and_the_start(tmp_path, query):
    # config check passed them, and serve then failed at its first connection (exit 1,
    # retried by systemd for ever) with asyncpg's or the server's words.
    path = tmp_path / "pg.toml"
    path.write_text(
        f'[store]\nurl = "postgresql://acsd:DbSecretPw1@/acsd?host=127.0.0.1&{query}"\n'
    )
    for command in (("config", "check"), ("serve",)):
        proc = run_cli(*command, "--config", str(path), bounded=True)
        assert proc.returncode == 2, (command, proc.stderr)
        [line] = [x for x in proc.stderr.splitlines() if "config error" in x]
        assert line.startswith(f"acsd: config error: {path}: {BAD_PG_QUERIES[query]}"), line
        assert "DbSecretPw1" not in proc.stderr


@pytest.mark.parametrize(
    "query",
    ["sslmode=require", "sslmode=verify_full&sslrootcert=/nonexistent/root.crt",
     "application_name=acsd", "search_path=acsd", "TimeZone=UTC", "myext.flag=1",
     "options=-c%20statement_timeout%3D5s", "target_session_attrs=read-write", "port=21801"],
)  # fmt: skip
def test_a_postgresql_url_option_asyncpg_takes_passes(tmp_path, query):
    # (the files a URL names are the service's to read, as another user perhaps)
    path = tmp_path / "pg.toml"
    path.write_text(f'[store]\nurl = "postgresql://acsd@127.0.0.1:21801/acsd?{query}"\n')
    proc = run_cli("config", "check", "--config", str(path), check=False)
    assert proc.returncode == 0, proc.stderr
