"""Soak: the daemon's memory (RSS) over many sessions from many distinct routers.

A long-running acsd must not grow with what routers send: new serial numbers, parameter
names of their own invention, failed logins. This starts a daemon (as ``bench.py`` does,
with Digest authentication on), then runs rounds of, in turn:

- ``steady``: periodic sessions of a fixed set of registered simulated routers;
- ``new``: the first session of routers never seen before (new serial numbers);
- ``invented``: Informs from new serials carrying parameter names never sent before;
- ``xml-names``: envelopes whose XML element, attribute and namespace names are new
  (libxml2 keeps every name it reads in a dictionary; acsd replaces it after each MB);
- ``bad-login``: Digest answers with a wrong password, from new addresses (forwarded)
  and new usernames;

and prints the daemon's RSS after each. What it holds for the routers it knows levels off
after the first rounds; a line that keeps climbing round after round is a leak. It prints
figures and never asserts (``make soak``; ``--rounds`` and ``--batch`` make it longer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from acsd.cwmp import rpc
from acsd.cwmp.soap import Envelope, render_envelope
from acsd.sim.runner import Simulation
from acsd.sim.session import run_session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import acsd_daemon, proc_stats

PASSWORD = "soak-shared-password"
PROFILES = ["tplink-tr181", "tr098-dsl", "huawei-hg8245"]


async def _sessions(routers: list, acs: str, concurrency: int, trigger: list[str] | None) -> int:
    sem = asyncio.Semaphore(concurrency)

    async def one(cpe) -> bool:
        async with sem:
            return (await run_session(cpe, acs, trigger=trigger, timeout=60)).ok

    return sum(await asyncio.gather(*(one(cpe) for cpe in routers)))


def _routers(acs: str, count: int, prefix: str) -> list:
    routers = Simulation(acs, PROFILES, count, serial_prefix=prefix).routers
    for cpe in routers:  # the serial number is the username (cwmp.auth username = "")
        ms = cpe.template.root + "ManagementServer."
        cpe.tree.values[ms + "Username"] = cpe.serial
        cpe.tree.values[ms + "Password"] = PASSWORD
    return routers


def _inform(serial: str, tag: str) -> bytes:
    names = [f"Device.X_SOAK_{tag}.Name{i}" for i in range(100)]
    inform = rpc.Inform(
        device_id=rpc.DeviceId("Soak", "00AA00", "Invented", serial),
        events=[rpc.EventStruct("2 PERIODIC"), rpc.EventStruct(f"X SOAK {tag}")],
        parameters=[rpc.ParameterValue(n, "1") for n in names],
    )
    return render_envelope(Envelope(body=inform, cwmp_ns=rpc.DEFAULT_NAMESPACE, id="1"))


async def _invented(acs: str, count: int, concurrency: int) -> int:
    """Informs (each then ended with an empty POST) with names never sent before."""
    sem = asyncio.Semaphore(concurrency)
    auth = aiohttp.DigestAuthMiddleware  # aiohttp >= 3.12

    async def one() -> bool:
        tag = uuid.uuid4().hex
        serial = "SOAKX" + tag[:16]
        async with sem, aiohttp.ClientSession(middlewares=(auth(serial, PASSWORD),)) as http:
            async with http.post(acs, data=_inform(serial, tag)) as answer:
                await answer.read()
                if answer.status != 200:
                    return False
            async with http.post(acs, data=b"") as answer:
                await answer.read()
                return answer.status in (200, 204)

    return sum(await asyncio.gather(*(one() for _ in range(count))))


def _names_envelope(tag: str, kind: int) -> bytes:
    """~60 KB whose ~2,000 element (kind 0), attribute (1) or namespace (2) names no
    other envelope has."""
    count = range(2000)
    if kind == 0:
        inner = "".join(f"<e{tag}x{i}/>" for i in count)
    elif kind == 1:
        inner = "".join(f'<v a{tag}x{i}="1"/>' for i in count)
    else:
        inner = "".join(f'<p{tag}x{i}:v xmlns:p{tag}x{i}="urn:{tag}:{i}"/>' for i in count)
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f"<soap:Body>{inner}</soap:Body></soap:Envelope>"
    ).encode()


async def _xml_names(acs: str, count: int, concurrency: int) -> int:
    """Envelopes full of new XML names, each from a new (authenticated) serial: acsd
    parses them and answers with a fault or 400."""
    sem = asyncio.Semaphore(concurrency)
    auth = aiohttp.DigestAuthMiddleware

    async def one(n: int) -> bool:
        tag = uuid.uuid4().hex[:12]
        serial = "SOAKN" + tag
        body = _names_envelope(tag, n % 3)
        async with (
            sem,
            aiohttp.ClientSession(middlewares=(auth(serial, PASSWORD),)) as http,
            http.post(acs, data=body) as answer,
        ):
            await answer.read()
            return answer.status in (200, 400)

    return sum(await asyncio.gather(*(one(n) for n in range(count))))


async def _bad_logins(acs: str, count: int, concurrency: int, start: int) -> int:
    """Digest answers with a wrong password, each from a new (forwarded) address."""
    sem = asyncio.Semaphore(concurrency)

    async def one(n: int) -> bool:
        header = (
            f'Digest username="SOAKBAD{n:09d}", realm="acsd", nonce="x", uri="/", '
            f'response="{"0" * 32}", qop=auth, nc=00000001, cnonce="c"'
        )
        address = f"2001:db8::{n >> 16:x}:{n & 0xFFFF:x}"
        headers = {"Authorization": header, "X-Forwarded-For": address}
        async with (
            sem,
            aiohttp.ClientSession() as http,
            http.post(acs, data=b"", headers=headers) as answer,
        ):
            await answer.read()
            return answer.status == 401

    return sum(await asyncio.gather(*(one(start + n) for n in range(count))))


async def soak(args: argparse.Namespace, acs: str, pid: int) -> list[dict]:
    started = time.monotonic()
    rows: list[dict] = []
    totals = dict.fromkeys(("steady", "new", "invented", "xml-names", "bad-login"), 0)

    def sample(phase: str, ok: int) -> None:
        rss, _cpu = proc_stats(pid)
        row = {"s": round(time.monotonic() - started, 1), "phase": phase, "ok": ok,
               **{k: v for k, v in totals.items()}, "rss_mib": round(rss, 1)}  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)

    fleet = _routers(acs, args.batch, "SOAKFLEET")
    ok = await _sessions(fleet, acs, args.concurrency, None)
    sample("fleet registered", ok)
    for round_no in range(args.rounds):
        ok = await _sessions(fleet, acs, args.concurrency, ["2 PERIODIC"])
        totals["steady"] += len(fleet)
        sample("steady", ok)
        ok = await _sessions(_routers(acs, args.batch, f"SOAKNEW{round_no:05d}X"), acs,
                             args.concurrency, None)  # fmt: skip
        totals["new"] += args.batch
        sample("new", ok)
        ok = await _invented(acs, args.batch, args.concurrency)
        totals["invented"] += args.batch
        sample("invented", ok)
        ok = await _xml_names(acs, max(1, args.batch // 10), args.concurrency)
        totals["xml-names"] += max(1, args.batch // 10)
        sample("xml-names", ok)
        ok = await _bad_logins(acs, args.batch * 4, args.concurrency, totals["bad-login"])
        totals["bad-login"] += args.batch * 4
        sample("bad-login", ok)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000, help="routers per phase of a round")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    # Tables bounded by time (nonces in use, failed logins) reach their steady size within
    # seconds, not the default 5 minutes: growth after the first rounds is then a leak.
    extra = (
        "session_timeout = 5\ntrust_forwarded = true\n"
        f'[cwmp.auth]\nscheme = "digest"\npassword = "{PASSWORD}"\n'
        "nonce_lifetime = 15.0\nfailure_window = 10.0\n"
    )
    with (
        tempfile.TemporaryDirectory(prefix="acsd-soak-") as tmp,
        acsd_daemon(Path(tmp), extra=extra, pin=False) as (acs, _api, pid, _config),
    ):
        rows = asyncio.run(soak(args, acs, pid))
    # The second half of the rounds: bounded caches (records, names, parsed profiles) fill
    # over the first ones, and only growth after they are full is a leak.
    totals_keys = ("steady", "new", "invented", "xml-names", "bad-login")
    ends = [r for r in rows if r["phase"] == "bad-login"]  # the end of each round
    if len(ends) >= 4:
        first, last = ends[len(ends) // 2 - 1], ends[-1]
        sessions = sum(last[k] - first[k] for k in totals_keys)
        growth = last["rss_mib"] - first["rss_mib"]
        half = len(ends) // 2
        print(
            f"RSS {first['rss_mib']} MiB after round {half}, {last['rss_mib']} MiB after "
            f"round {len(ends)}: {growth:+.1f} MiB over {sessions} requests and sessions "
            f"({growth * 1024 * 10_000 / max(1, sessions):+.1f} KiB per 10,000)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
