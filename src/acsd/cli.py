"""The ``acsd`` command: serve, simulate, and look at devices."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from acsd import log as acsd_log
from acsd.config import (
    Config,
    ConfigError,
    LoadedConfig,
    load_config,
    read_config,
    unknown_env,
    unused_settings,
)
from acsd.log import printable
from acsd.provisioning.profile_schema import ProfileError

if TYPE_CHECKING:
    from pathlib import Path

    from acsd.provisioning.profiles import ProfileSet

#: Exit statuses (README, "Exit statuses"): 0 done; 1 the command was understood but
#: failed (not found, a conflict, input refused, the database cannot be opened or is not at
#: this acsd's schema); 2 the command line or the configuration is wrong, so running it
#: again cannot help (systemd's RestartPreventExitStatus=2 relies on that).
EXIT_FAILED = 1
EXIT_USAGE = 2


def _add_config(parser: argparse.ArgumentParser) -> None:
    # Which database a command works on follows from this: without it, ./acsd.db.
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=_config_file,
        help="the daemon's TOML config file (default: built-in settings, database ./acsd.db; "
        "ACSD_* variables override either)",
    )


def _config_file(text: str) -> str:
    # ("--config $UNSET_VARIABLE" said "defaults: file not found")
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "an empty FILE: give the config file, or leave --config out"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acsd", description="TR-069/CWMP auto-configuration server"
    )
    from acsd import __version__

    parser.add_argument("--version", action="version", version=f"acsd {__version__}")
    # `acsd --config FILE device list` as well as `acsd device list --config FILE` (it said
    # "invalid choice: 'FILE'"); its own dest, as a subcommand's default would overwrite it
    parser.add_argument(
        "--config", dest="top_config", metavar="FILE", type=_config_file, help=argparse.SUPPRESS
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the daemon (CWMP and API listeners)")
    _add_config(serve)

    device = sub.add_parser("device", help="list, show or apply device records")
    dsub = device.add_subparsers(dest="device_command", required=True, metavar="ACTION")
    dlist = dsub.add_parser("list", help="one line per device")
    _add_config(dlist)
    dlist.add_argument("--json", action="store_true", help="a JSON array of seed-000 objects")
    dlist.add_argument("--limit", type=_positive, default=1000, help="at most this many (1000)")
    dlist.add_argument(
        "--offset",
        type=_not_negative,
        default=0,
        help="skip this many first (0); --after is the way to the next page",
    )
    dlist.add_argument(
        "--after",
        metavar="KEY",
        help="start past this device, the last one shown (stderr names it): its serial number "
        "(any case), or with --job its _id; unlike --offset, a walk this way sees every device "
        "once while others are added and deleted",
    )
    dlist.add_argument(
        "--job",
        choices=("PENDING", "DONE", "FAILED"),
        help="only devices whose job is in this state (PENDING: changes waiting for their "
        "routers, or still being applied; FAILED: settings the router refused past their "
        "retries), in the order they were created",
    )
    dshow = dsub.add_parser("show", help="one device, by id or serial number")
    _add_config(dshow)
    dshow.add_argument(
        "key", metavar="ID|SERIAL", help="the device's _id or serial number (any case)"
    )
    dshow.add_argument("--json", action="store_true", help="the seed-000 object")
    dapply = dsub.add_parser(
        "apply", help="create or update a device from a seed-000 JSON body (FILE or - for stdin)"
    )
    _add_config(dapply)
    dapply.add_argument(
        "file", metavar="FILE", help="JSON file with the device body, or - to read stdin"
    )

    token = sub.add_parser("token", help="API bearer tokens")
    tsub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    tcreate = tsub.add_parser("create", help="create a token and print it (shown only once)")
    _add_config(tcreate)
    tcreate.add_argument(
        "--role",
        required=True,
        choices=["ADMIN", "RESELLER", "OWNER", "MANAGER"],
        help="ADMIN sees everything; the others see only their --customer "
        "(OWNER and MANAGER: or only their --apn-account)",
    )
    tcreate.add_argument("--customer", metavar="ID", help="customer the token is bound to")
    tcreate.add_argument(
        "--apn-account",
        metavar="KEY",
        help="APN API account (foreign key) the token may manage; OWNER/MANAGER need no customer",
    )
    tcreate.add_argument("--name", default="", metavar="TEXT", help="what the token is for")
    tcreate.add_argument(
        "--expires",
        metavar="WHEN",
        help="when the token stops working: a duration from now (90d, 12h, 30m, 45s, 2w) or "
        "an RFC 3339 date-time with its offset (2030-01-31T18:00:00Z); default: never",
    )
    tlist = tsub.add_parser("list", help="tokens (never the secret itself)")
    _add_config(tlist)
    tlist.add_argument("--json", action="store_true", help="one JSON array, for scripts")
    trevoke = tsub.add_parser("revoke", help="revoke a token by its id")
    _add_config(trevoke)
    trevoke.add_argument("id", metavar="ID", help="the token's ID, as acsd token list shows it")

    profile = sub.add_parser("profile", help="vendor parameter profiles")
    psub = profile.add_subparsers(dest="profile_command", required=True, metavar="ACTION")
    pcheck = psub.add_parser(
        "check", help="validate built-in profiles (and DIR) and show what they match"
    )
    pcheck.add_argument("dir", nargs="?", metavar="DIR", help="extra profile directory")
    pcheck.add_argument("--datamodels", metavar="DIR", help="BBF data model XML directory")

    config = sub.add_parser("config", help="configuration")
    csub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    ccheck = csub.add_parser("check", help="validate a config file and print the result")
    _add_config(ccheck)

    cpepw = sub.add_parser(
        "cpe-password",
        help="print the hashed [cwmp.auth] credentials_file line for a CPE (password on stdin)",
    )
    _add_config(cpepw)
    cpepw.add_argument("serial", metavar="SERIAL", help="the CPE's serial number (its username)")
    cpepw.add_argument("--realm", help="Digest realm (default: cwmp.auth.realm of --config)")
    cpepw.add_argument("--iterations", type=int, default=200_000, help="PBKDF2 iterations")

    db = sub.add_parser("db", help="database maintenance")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    migrate = dbsub.add_parser("migrate", help="run pending schema migrations")
    _add_config(migrate)
    dbbackup = dbsub.add_parser(
        "backup", help="copy the database to PATH (consistent, safe while the daemon runs)"
    )
    _add_config(dbbackup)
    dbbackup.add_argument(
        "path", metavar="PATH", type=_file_name, help="file to write (refused if it exists)"
    )
    dbbackup.add_argument("--force", action="store_true", help="replace an existing PATH")

    from acsd.sim.args import add_arguments as add_sim_arguments

    sim = sub.add_parser("sim", help="simulate routers against an ACS")
    add_sim_arguments(sim)
    return parser


def _serve(config: Config, config_path: str | None, profiles: ProfileSet | None) -> int:
    from acsd import eventloop
    from acsd.daemon import serve
    from acsd.workers import WORKER_ENV, supervise

    try:
        factory = eventloop.loop_factory(config.event_loop)
    except RuntimeError as exc:
        print(f"acsd: config error: event_loop: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with _serving(config) as alone:
        if not alone:
            from acsd.store import sqlite_path

            path = sqlite_path(config.store.url)
            print(
                f"acsd: another acsd serves {path} (its lock {path}-serve.lock is held): stop "
                "it first, or give this one a store.url of its own",
                file=sys.stderr,
            )
            return 1
        if config.workers > 1 and WORKER_ENV not in os.environ:
            return supervise(config, config_path)
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(serve(config, config_path=config_path, profiles=profiles))


def _serving(config: Config) -> contextlib.AbstractContextManager[bool]:
    """The lock of the service on its SQLite database, held while the block runs (see
    serving_alone): taken by the process the operator started, not by its workers, and
    not on PostgreSQL, which several instances share."""
    from acsd.store import is_postgres, sqlite_path
    from acsd.store.sqlite.files import serving_alone
    from acsd.workers import WORKER_ENV

    if is_postgres(config.store.url) or WORKER_ENV in os.environ:
        return contextlib.nullcontext(True)
    return serving_alone(sqlite_path(config.store.url))


def main(argv: Sequence[str] | None = None) -> int:
    if acsd_log.on_journal(sys.stderr):
        sys.stderr = acsd_log.JournalPriorities(sys.stderr)
    try:
        return _main(argv)
    except BrokenPipeError:
        # `acsd device list | head`: the reader left; no traceback for that, and none
        # from the interpreter flushing stdout at exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    top = vars(args).pop("top_config", None)
    if top is not None:
        if not hasattr(args, "config"):
            parser.error(f"acsd {args.command} takes no --config")
        if args.config is not None and args.config != top:
            parser.error("--config given twice, naming two files")
        args.config = top
    # (the commands on records: file names elsewhere may hold such bytes and work)
    if args.command in ("device", "token", "cpe-password") and (undecodable := _not_utf8(args)):
        # (a serial pasted from a Latin-1 log: Python keeps such bytes as lone surrogates,
        # which every later encode refused with a traceback, or wrote to a credentials file
        # that serve then refused whole)
        parser.error(f"argument {undecodable}: not UTF-8 text")
    if args.command == "sim":
        from acsd.sim.cli import run as run_sim

        return run_sim(args)
    if args.command == "profile":
        return _profile_check(args)
    if args.command == "cpe-password":
        return _cpe_password(args)
    profiles: ProfileSet | None = None
    try:
        # (None in a supervised worker: it runs with its supervisor's configuration)
        loaded: LoadedConfig | None = None
        config = _worker_config(args)
        if config is None:
            # The file read once: the warnings below are about the file in use.
            loaded = read_config(
                getattr(args, "config", None),
                # The CPE password often lives only in the service's environment file.
                records_only=args.command in ("device", "token", "db"),
            )
            config = loaded.config
        if args.command in ("serve", "config"):  # TLS files must be usable at start-up
            from acsd.tls import check_files

            for warning in check_files(config, args.config or "defaults"):
                if args.command == "config":
                    print(f"acsd: warning: {warning}", file=sys.stderr)
            if (lacking := _store_directory_lacking(config, args.config or "defaults")) is None:
                pass
            elif args.command == "serve":
                raise ConfigError(lacking)
            else:
                # checked before the first start, which makes it under systemd: serve
                # refuses to start without it, the check only says so
                print(f"acsd: warning: {lacking}", file=sys.stderr)
        if args.command in ("serve", "config"):
            # a broken profile stops the start, not the first session
            profiles = _check_profiles(config)
            from acsd.workers import NONCE_KEY_ENV, WORKER_ENV

            # Said once, by the process the operator started (not again by each worker).
            for name, near in [] if WORKER_ENV in os.environ else unknown_env():
                typo = f"a typo of {near}?" if near else "a typo?"
                print(f"acsd: warning: {name} is no acsd setting ({typo})", file=sys.stderr)
            if loaded is not None and args.config and WORKER_ENV not in os.environ:
                for what in loaded.overridden_by_env:
                    print(
                        f"acsd: warning: {args.config}: {what}: the environment's value is used",
                        file=sys.stderr,
                    )
            for unused in [] if WORKER_ENV in os.environ else unused_settings(config):
                print(f"acsd: warning: {unused}", file=sys.stderr)
            if WORKER_ENV not in os.environ and NONCE_KEY_ENV in os.environ:
                # (the supervisor's own variable, for its workers: an operator setting it
                # means to share a key between instances, which the setting does)
                print(
                    f"acsd: warning: {NONCE_KEY_ENV} is not used (the supervisor's, for its "
                    "workers): set the Digest nonce key with [cwmp.auth] nonce_key or "
                    "ACSD_CWMP_AUTH_NONCE_KEY",
                    file=sys.stderr,
                )
    except ConfigError as exc:
        print(f"acsd: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ProfileError as exc:
        print(f"acsd: profile error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    acsd_log.configure(config.log.level, config.log.format)
    on_records = args.command in ("device", "token") or (
        args.command == "db" and args.db_command == "backup"
    )
    if on_records and (missing := _missing_database(config, args.config)):
        print(missing, file=sys.stderr)
        return EXIT_USAGE
    # the same problem as serve's, with the same status (opening would say 1)
    if (
        args.command == "db"
        and args.db_command == "migrate"
        and (lacking := _store_directory_lacking(config, args.config or "defaults"))
    ):
        print(f"acsd: config error: {lacking}", file=sys.stderr)
        return EXIT_USAGE
    if args.command in ("device", "token") and (behind := _schema_behind(config)):
        message, status = behind
        print(message, file=sys.stderr)
        return status
    if args.command == "serve":
        return _serve(config, args.config, profiles)
    if args.command == "config":
        print(json.dumps(config.model_dump(), indent=2))
        return 0
    if args.command == "db":
        if args.db_command == "backup":
            return _backup(args, config)
        return asyncio.run(_migrate(config))
    if args.command == "device":
        return _records_failing(lambda: asyncio.run(_device(args, config)), config)
    if args.command == "token":
        return _records_failing(lambda: asyncio.run(_token(args, config)), config)
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def _records_failing(run: Callable[[], int], config: Config) -> int:
    """``run()``; a database that fails once open (a lock another process holds, a damaged
    page, a server gone) is one line on stderr and exit 1, not a traceback."""
    import sqlite3

    import asyncpg

    from acsd.store import StoreError, is_postgres, sqlite_path

    try:
        return run()
    except BrokenPipeError:
        raise  # (`acsd device list | head`: main's to take quietly, not the database's)
    except (StoreError, sqlite3.DatabaseError, asyncpg.PostgresError, OSError) as exc:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            said = f"{exc}: another process holds it (a sqlite3 shell in a transaction?)"
        else:
            said = str(exc) or type(exc).__name__
        where = "the database" if is_postgres(config.store.url) else sqlite_path(config.store.url)
        print(f"acsd: {where}: {said}", file=sys.stderr)  # (never the URL: no password)
        return EXIT_FAILED


def _not_utf8(args: argparse.Namespace) -> str | None:
    """The argument whose value held bytes that are not UTF-8 (Python reads them as lone
    surrogates). File names may hold such bytes, and work as they are: not checked."""
    for name, value in vars(args).items():
        if name in _FILE_NAMES:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and any("\udc80" <= c <= "\udcff" for c in item):
                return _POSITIONAL.get(name) or "--" + name.replace("_", "-")
    return None


#: arguments of those commands that name files
_FILE_NAMES = frozenset({"config", "file"})
#: positional arguments, as their usage names them
_POSITIONAL = {"key": "ID|SERIAL", "serial": "SERIAL", "id": "ID"}


def _file_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty PATH: give the file to write")
    return text


def _store_directory_lacking(config: Config, source: str) -> str | None:
    """Why the SQLite file cannot be made: a directory that is not there (acsd makes the
    file, not its directory). For ``serve`` a config error (2, which the unit does not
    restart on), as a missing TLS file is, rather than a store that fails to open (1)
    again and again; for ``config check`` a warning (the unit's StateDirectory= makes
    /var/lib/acsd only when the service first starts)."""
    from acsd.store import is_postgres, sqlite_path

    if is_postgres(config.store.url):
        return None
    parent = sqlite_path(config.store.url).parent
    if parent.is_dir():
        return None
    return (
        f"{source}: store.url: the directory {parent} does not exist (acsd creates the "
        "database file, not its directory; the systemd unit makes /var/lib/acsd at its "
        "first start)"
    )


def _missing_database(config: Config, config_file: str | None) -> str | None:
    """Why a command that works on the daemon's records cannot run: without this, a
    command run without (or with the wrong) --config made a new, empty database next to
    it, listed no devices and created tokens the daemon never sees."""
    from acsd.store import is_postgres, sqlite_path

    if is_postgres(config.store.url):
        return None  # a server's database: opening it says whether it is there
    path = sqlite_path(config.store.url)
    if path.exists():
        return None
    where = (
        f"the store url of {config_file} (or ACSD_STORE_URL) names no database yet"
        if config_file
        else "give --config with the daemon's configuration"
    )
    return (
        f"acsd: no database at {path}: {where} (acsd serve or acsd db migrate create the database)"
    )


def _schema_behind(config: Config) -> tuple[str, int] | None:
    """Why ``device``/``token`` must not run on this database yet: its schema is older than
    this acsd's. Opening the store would migrate it, so `acsd device list` run with a
    newly installed acsd before the restart upgraded the schema under the daemon still
    running the old one, without a backup or a word; only `serve` and `db migrate`
    change the schema. (On PostgreSQL as on SQLite: there the daemons of every instance
    run the old schema.) With the exit status: no acsd database at all is the wrong
    configuration (as a missing file), an older one a database not ready yet."""
    from acsd.store import is_postgres, shown_url, sqlite_path
    from acsd.store.schema import latest_version

    if is_postgres(config.store.url):
        where = shown_url(config.store.url)  # (never the password)
        version = asyncio.run(_pg_schema_version(config.store.url))
    else:
        path = sqlite_path(config.store.url)
        where, version = str(path), _sqlite_schema_version(path)
    if version is None:
        return None  # (no database to read: opening the store says why)
    latest = latest_version()
    if version >= latest:
        return None  # (a newer schema: opening the store refuses it, and says so)
    if version == 0:  # (an empty file, e.g. made by `touch` or a failed copy)
        return (
            f"acsd: {where} holds no acsd database yet "
            "(acsd serve or acsd db migrate create the database)"
        ), EXIT_USAGE
    return (
        f"acsd: the database {where} has schema version {version}, this acsd needs "
        f"{latest}: back it up, then run acsd db migrate (or start acsd serve) to upgrade it"
    ), EXIT_FAILED


def _sqlite_schema_version(path: Path) -> int | None:
    """The schema version of a SQLite file (0: no acsd tables), None if it is no database."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            return None  # (a file that is no database: opening the store says so)
        row = (None,)
    except sqlite3.DatabaseError:
        return None
    return row[0] or 0


async def _pg_schema_version(url: str) -> int | None:
    """The schema version of a PostgreSQL database (0: no acsd tables), None if it cannot
    be read (the server or database is not there: opening the store says so in one line,
    without the URL's password)."""
    import asyncpg

    from acsd.store import postgres_dsn

    try:
        conn = await asyncpg.connect(postgres_dsn(url), timeout=10)
    except Exception:
        return None
    try:
        if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
            return 0
        version = await conn.fetchval("SELECT max(version) FROM schema_migrations")
        return version or 0
    finally:
        await conn.close()


def _worker_config(args: argparse.Namespace) -> Config | None:
    """A supervised worker runs with the configuration its supervisor started with."""
    if args.command != "serve":
        return None
    from acsd.workers import shared_nonce_key, worker_config

    config = worker_config()
    shared_nonce_key()  # (a worker whose key is unusable stops here, with one line)
    return config


def _check_profiles(config: Config) -> ProfileSet:
    """The configured profiles, loaded once: ``serve`` runs with the set checked here."""
    from pathlib import Path

    from acsd.provisioning.profiles import load_profiles

    return load_profiles(Path(config.profiles.dir) if config.profiles.dir else None)


def _cpe_password(args: argparse.Namespace) -> int:
    """Read a password (prompt on a terminal, else one line of stdin) and print the line for
    the per-device credentials file: HA1s for Digest, PBKDF2 for Basic, no clear password."""
    from acsd.cwmp.passwords import password_line
    from acsd.rules import serial_problem

    if problem := serial_problem(args.serial):
        # (the line printed would be refused when the daemon loads the file)
        print(f"acsd: SERIAL {args.serial!r}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    realm = args.realm
    if realm is not None and (problem := _realm_problem(realm)):
        print(f"acsd: --realm: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if realm is None:
        try:
            # Only the realm is wanted: the credentials file this entry is for may not exist
            # yet (or only as the service's credential), the password only in acsd.env.
            realm = load_config(args.config, records_only=True).cwmp.auth.realm
        except ConfigError as exc:
            print(f"acsd: config error: {exc} (or give --realm)", file=sys.stderr)
            return EXIT_USAGE
    if not 1000 <= args.iterations <= 10_000_000:
        print("acsd: --iterations must be 1000..10000000", file=sys.stderr)
        return EXIT_USAGE
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"Password for {args.serial}: ")
        if getpass.getpass("Again: ") != password:
            print("acsd: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("acsd: empty password", file=sys.stderr)
        return 1
    print(password_line(args.serial, password, realm, args.iterations))
    return 0


def _realm_problem(realm: str) -> str | None:
    """Why ``realm`` cannot be cwmp.auth.realm (the check of ``config check``), or None:
    a line made for a realm the daemon cannot have would never match."""
    from pydantic import ValidationError

    from acsd.config import CwmpAuthConfig

    try:
        CwmpAuthConfig(realm=realm)
    except ValidationError as exc:
        return exc.errors()[0]["msg"].removeprefix("Value error, ")  # (pydantic's prefix)
    return None


def _profile_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from acsd.provisioning.profile_check import check_profiles

    report = check_profiles(
        Path(args.dir) if args.dir else None,
        datamodels=Path(args.datamodels) if args.datamodels else None,
    )
    # (the report's lines hold its warnings too: said once, on stderr with the errors)
    for line in report.lines:
        if line not in report.warnings:
            print(line)
    for line in [*report.warnings, *report.errors]:
        print(line, file=sys.stderr)
    # The profiles are configuration: errors in them are exit 2, as `serve` and `config
    # check` say for the same directory.
    return EXIT_USAGE if report.errors else 0


async def _token(args: argparse.Namespace, config: Config) -> int:
    from acsd import clock
    from acsd.api.auth import TOKEN_PREFIX, TokenRefused, create_token, parse_expires
    from acsd.audit import cli_record
    from acsd.ids import normal_id

    store = await _open_store(config)
    if isinstance(store, int):
        return store
    try:
        if args.token_command == "create":
            try:
                expires = None
                if args.expires is not None:
                    expires = parse_expires(args.expires, clock.now())
                token, _ = await create_token(
                    store,
                    args.role,
                    customer=args.customer,
                    name=args.name,
                    apn_account=args.apn_account,
                    expires=expires,
                )
            except ValueError as exc:
                # The options are wrong (2), or right but the records refuse them (1): a
                # customer that does not exist is no usage error.
                print(f"acsd: {exc}", file=sys.stderr)
                return EXIT_FAILED if isinstance(exc, TokenRefused) else EXIT_USAGE
            print(token)  # alone on stdout, so scripts can capture it
            return 0
        if args.token_command == "list":
            tokens = await store.list_tokens()

            def when(ts: float | None) -> str | None:
                return clock.iso(ts) if ts is not None else None

            if args.json:
                print(json.dumps([
                    {"id": t.id, "role": t.role, "customer": t.customer,
                     "apnAccount": t.apn_account, "name": t.name, "created": clock.iso(t.created),
                     "expires": when(t.expires), "lastUsed": when(t.last_used),
                     "revoked": when(t.revoked)}
                    for t in tokens
                ], indent=2))  # fmt: skip
                return 0
            # (LAST USED is written a minute or so behind: see acsd.api.token_uses)
            now = clock.now()
            rows = [
                ("ID", "ROLE", "CUSTOMER", "NAME", "CREATED", "EXPIRES", "LAST USED", "REVOKED")
            ]
            for t in tokens:
                rows.append(
                    (
                        t.id,
                        t.role,
                        ",".join(
                            s for s in (t.customer, t.apn_account and f"apn:{t.apn_account}") if s
                        )
                        or "-",
                        t.name or "-",
                        clock.iso(t.created),
                        # (said, not left to the reader to compare with the clock)
                        (when(t.expires) or "-")
                        + (" (expired)" if t.expires and t.expires <= now else ""),
                        when(t.last_used) or "never",
                        when(t.revoked) or "-",
                    )
                )
            # names stored before they were checked may hold control characters
            rows = [tuple(_shown(cell) for cell in row) for row in rows]
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            for row in rows:
                print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            return 0
        if args.id.startswith(TOKEN_PREFIX):
            # the secret itself, not its id: never echo it (terminals, logs, tickets)
            print(
                "acsd: that is a token itself, not its ID (not shown here);"
                " `acsd token list` shows the IDs",
                file=sys.stderr,
            )
            return EXIT_USAGE  # (the argument is no ID at all, whatever the records hold)
        token_id = normal_id(args.id)  # ids are accepted in any case
        entry = cli_record("token.revoke", "token", token_id)
        if not await store.revoke_token(token_id, audit=entry):
            print(f"acsd: no active token {_shown(args.id)}", file=sys.stderr)
            return 1
        print(f"revoked {token_id}")
        return 0
    finally:
        await store.close()


def _backup(args: argparse.Namespace, config: Config) -> int:
    from pathlib import Path

    from acsd.store import is_postgres, sqlite_path
    from acsd.store.backup import BackupError, backup

    if is_postgres(config.store.url):
        # A consistent copy of a server's database is the server's tools' job.
        print(
            "acsd: db backup copies a SQLite database; store.url names a PostgreSQL one:"
            " back it up with pg_dump (e.g. pg_dump -Fc -f acsd.dump <database>)",
            file=sys.stderr,
        )
        return EXIT_USAGE  # (it never will: the configuration names another kind of store)

    if args.path.endswith(("/", os.sep)) and not Path(args.path).is_dir():
        # Path() drops the slash: "newdir/" would have been written as a file "newdir".
        print(f"acsd: {args.path} names a directory that does not exist; give the file to "
              "write", file=sys.stderr)  # fmt: skip
        return 1
    source = sqlite_path(config.store.url)
    if source.is_file() and _sqlite_schema_version(source) == 0:
        # (an empty file, another program's database: a nightly backup of the wrong file
        # said "wrote ..." and exit 0 every night)
        print(f"acsd: {source} holds no acsd database: check store.url (--config)",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    try:
        result = backup(source, Path(args.path), force=args.force)
    except (BackupError, ValueError) as exc:
        print(f"acsd: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {result.target} ({result.bytes} bytes): a copy of {result.source} "
        f"at schema version {result.schema_version}, {result.devices} "
        + ("device" if result.devices == 1 else "devices")
    )
    return 0


async def _open_store(config: Config):  # -> Store | int
    """The store, open; or the exit status after one line on stderr saying why it cannot
    be (a file that is no SQLite database, a server that does not answer: 1), as serve
    says it. A PostgreSQL database that does not exist is 2, as a SQLite file that is not
    there (_missing_database): the configuration names the wrong database."""
    import sqlite3

    from acsd.store import StoreError, is_postgres, sqlite_path, store_of

    store = store_of(config.store)
    try:
        await store.open()
    except (StoreError, sqlite3.DatabaseError, OSError) as exc:
        await store.close()
        if is_postgres(config.store.url):
            print(f"acsd: {exc}", file=sys.stderr)  # (says which database, never the URL)
            return EXIT_USAGE if _no_such_database(exc) else EXIT_FAILED
        path = str(sqlite_path(config.store.url))
        said = str(exc) if path in str(exc) else f"cannot open the database {path}: {exc}"
        print(f"acsd: {said}", file=sys.stderr)
        return EXIT_FAILED
    return store


def _no_such_database(exc: BaseException) -> bool:
    """Whether opening the store failed because the PostgreSQL server has no database of
    that name (SQLSTATE 3D000, invalid_catalog_name)."""
    cause: BaseException | None = exc
    while cause is not None:
        if getattr(cause, "sqlstate", None) == "3D000":
            return True
        cause = cause.__cause__
    return False


async def _migrate(config: Config) -> int:
    store = await _open_store(config)
    if isinstance(store, int):
        return store
    await store.close()
    # An operator checks here what the upgrade did: "up to date" on a database that has
    # just been created or upgraded read as if nothing had happened.
    if store.migrations_applied:
        print(f"applied migrations {_versions(store.migrations_applied)}")
    else:
        print("migrations up to date")
    return 0


def _versions(versions: list[int]) -> str:
    """``[1, 2, 3, 5]`` as ``1-3, 5``."""
    runs: list[list[int]] = []
    for version in sorted(versions):
        if runs and version == runs[-1][-1] + 1:
            runs[-1].append(version)
        else:
            runs.append([version])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


async def _device(args: argparse.Namespace, config: Config) -> int:
    from acsd.ids import is_id, normal_id
    from acsd.store.base import DeviceQuery

    store = await _open_store(config)
    if isinstance(store, int):
        return store
    try:
        view = _SeedView(store, config.cwmp.periodic_interval, config.cwmp.online_grace)
        if args.device_command == "apply":
            return await _apply(args.file, store, view)
        if args.device_command == "list":
            after = args.after
            # one more than the page: whether there is a next one, whatever --after skipped
            wanted = min(args.limit + 1, _SQL_INT_MAX)
            if args.job is None:
                records = await store.list_devices(limit=wanted, offset=args.offset, after=after)
                total = await store.count_devices()
            else:
                if after is not None and not is_id(after := normal_id(after)):
                    print(
                        f"acsd: --after with --job takes the _id of a device (24 hex digits, "
                        f"as the list shows them), not {_shown(args.after)!r}",
                        file=sys.stderr,
                    )
                    return 2
                # the API's filter (GET /network/device?job=), paged by id as it is
                records, total = await store.query_devices(
                    DeviceQuery(job=args.job, limit=wanted, offset=args.offset, after=after)
                )
            more = len(records) > args.limit
            records = records[: args.limit]
            if args.json:
                print(json.dumps([await view(r) for r in records], indent=2))
            elif args.job is not None and not total:
                print(f"(no devices with a {args.job} job)")
            else:
                _print_table([view.plain(r) for r in records], empty=not total)
            last = None
            if records:
                last = records[-1].serial_number if args.job is None else records[-1].id
            page = _page_note(
                Page(args.offset, args.after, len(records), total, more, last, args.job)
            )
            if page:
                print(f"acsd: {page}", file=sys.stderr)
            return 0
        record = await store.get_device(args.key)
        if record is None:
            print(f"acsd: no device with id or serial {args.key!r}", file=sys.stderr)
            return 1
        device = await view(record)
        if args.json:
            print(json.dumps(device, indent=2))
        else:
            _print_device(device)
        return 0
    finally:
        await store.close()


async def _apply(path: str, store, view: _SeedView) -> int:
    from pathlib import Path

    from acsd.devices import DeviceInputError, apply_device
    from acsd.store.base import ChangedError

    name = "stdin" if path == "-" else path
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        print(f"acsd: {name}: {exc.strerror}", file=sys.stderr)
        return 1
    body = _device_body(raw, name)
    if body is None:
        return 1
    for attempt in range(_APPLY_ATTEMPTS):
        try:
            record = await apply_device(store, body)
        except DeviceInputError as exc:
            print(f"acsd: {name}: {exc.field}: {exc.message}", file=sys.stderr)
            return 1
        except ChangedError as exc:
            # The record changed between read and write (a router's session, an API
            # request, a delete): read it again and check again, as the API does.
            if attempt + 1 < _APPLY_ATTEMPTS:
                await asyncio.sleep(0.01 * (attempt + 1))
                continue
            print(f"acsd: {name}: {exc}; nothing written, try again", file=sys.stderr)
            return 1
        print(json.dumps(await view(record), indent=2))
        return 0
    return 1  # (not reached: the last attempt returns)


class _SeedView:
    """A record as the API shows it (the seed-000 object, its model's catalog entry joined
    in), each model read once per command."""

    def __init__(self, store, default_interval: int, grace: int) -> None:
        self._store = store
        self._interval = default_interval
        self._grace = grace
        self._models: dict[str, object] = {}

    def plain(self, record):
        """The record's view without the catalog (what the table prints)."""
        from acsd.device_view import device_view

        return device_view(record, default_interval=self._interval, grace=self._grace)

    async def __call__(self, record) -> dict:
        from acsd.device_view import seed_device
        from acsd.ids import is_id

        model_id = record.model or ""
        if model_id not in self._models:
            found = await self._store.get_model(model_id) if is_id(model_id) else None
            self._models[model_id] = found
        return seed_device(
            record,
            self._models[model_id],
            default_interval=self._interval,
            grace=self._grace,
        )


#: reads and checks of ``device apply`` before it gives up on a record that keeps changing
_APPLY_ATTEMPTS = 5


def _device_body(raw: bytes, name: str):  # -> DeviceInput | None
    """``raw`` as the API would take it (the same parser, strict validation: no "true"
    for a boolean, no "10" for a number), or None after one line on stderr saying why."""
    from acsd.api.body import parse_json, validate
    from acsd.api.errors import ApiError
    from acsd.models import DeviceInput

    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        print(f"acsd: {name}: not UTF-8 text (byte {exc.start}): JSON must be UTF-8",
              file=sys.stderr)  # fmt: skip
        return None
    try:
        return validate(DeviceInput, parse_json(text))
    except ApiError as exc:
        if exc.message == "invalid_json":
            print(f"acsd: {name}: invalid JSON: {exc.description}", file=sys.stderr)
        else:
            print(f"acsd: {name}: {exc.message}: {exc.description}", file=sys.stderr)
    except RecursionError:  # parse_json's own check aside, validating recurses as well
        print(f"acsd: {name}: invalid JSON: nesting is too deep", file=sys.stderr)
    return None


_SQL_INT_MAX = 2**63 - 1


def _whole(text: str, least: int) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < least:
        raise argparse.ArgumentTypeError(f"must be {least} or more, not {number}")
    if number > _SQL_INT_MAX:  # SQLite's integers are 64-bit: more would be a traceback
        raise argparse.ArgumentTypeError(f"must be at most {_SQL_INT_MAX}, not {number}")
    return number


def _positive(text: str) -> int:
    return _whole(text, 1)


def _not_negative(text: str) -> int:
    return _whole(text, 0)


@dataclass(frozen=True)
class Page:
    """One page of ``device list``: where it started, what it holds, what follows."""

    offset: int
    after: str | None
    shown: int
    #: every device that matches (the count the API's list gives as ``total``)
    total: int
    #: whether a device follows the page
    more: bool
    #: the --after of the next page: the last device's serial number, or _id with --job
    last: str | None
    job: str | None = None


def _page_note(page: Page) -> str | None:
    """How many devices match, which of them the page shows, and how to see the next;
    None when there are none (the list itself says so)."""
    matching = "" if page.job is None else f" with a {page.job} job"
    if page.shown == 0:
        if page.after is not None:
            return f"no devices{matching} after {_shown(page.after)}: there are {page.total}"
        if page.offset:
            return f"no devices{matching} at --offset {page.offset}: there are {page.total}"
        return None
    if page.after is None and page.offset == 0 and not page.more:
        if page.total == 1:
            return f"1 device{matching} shown"
        return f"all {page.total} devices{matching} shown"
    next_page = ""
    if page.more and page.last is not None:
        next_page = f"; --after {shlex.quote(_shown(page.last))} shows"
    if page.after is not None:
        # (where the page stands among them is not counted: that would need another read)
        hint = f"{next_page} the next" if next_page else ""
        where = f"after {_shown(page.after)}"
        return f"{page.shown} of {page.total} devices{matching} shown, {where}{hint}"
    first, last = page.offset + 1, page.offset + page.shown
    hint = f"{next_page} the next {max(1, min(page.total - last, page.shown))}" if next_page else ""
    return f"devices {first}-{last} of {page.total}{matching} shown{hint}"


def _shown(value: object) -> str:
    # Records hold what operators' tokens and routers sent: an escape sequence or a
    # bidirectional override in a serial must not act on the operator's terminal.
    return printable(str(value))


def _print_table(devices: list, *, empty: bool) -> None:
    rows = [("ID", "SERIAL", "MODEL", "ONLINE", "LAST COMM", "WAN IP")]
    for d in devices:
        cpe = d.cpe
        model = (cpe.modelName or cpe.productClass or "") if cpe else ""
        rows.append(
            (
                d.id,
                d.serialNumber or "",
                model,
                "yes" if d.status.online else "no",
                d.status.lastComm or "-",
                d.status.wanIp or "-",
            )
        )
    rows = [tuple(_shown(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if len(rows) == 1 and empty:
        print("(no devices yet: routers appear here after their first Inform)")


def _print_device(obj: dict, indent: str = "") -> None:
    for key, value in obj.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_device(value, indent + "  ")
        else:
            text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
            print(f"{indent}{key}: {_shown(text)}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
