"""libxml2 keeps every element, attribute and prefix name it reads in a per-thread
dictionary. acsd replaces its parser and that dictionary after each MB of input, so a
client sending invented names (any CPE, before authentication) cannot grow the daemon."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from acsd.xmlsafe import parse_xml
from wire import Wire

#: names per envelope of each kind: ~1 MB, under the default max_body
NAMES = {"elements": 50_000, "attributes": 40_000, "namespaces": 20_000}


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _invented(round_: int, kind: str) -> bytes:
    """An envelope whose every element (or attribute, or namespace) has a name no other
    envelope has."""
    count = range(NAMES[kind])
    if kind == "elements":
        inner = "".join(f"<e{round_}x{i}/>" for i in count)
    elif kind == "attributes":
        inner = "".join(f'<v a{round_}x{i}="1"/>' for i in count)
    else:  # a prefix and a namespace URI each
        inner = "".join(f'<p{round_}x{i}:v xmlns:p{round_}x{i}="urn:{round_}:{i}"/>' for i in count)
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f"<soap:Body>{inner}</soap:Body></soap:Envelope>"
    ).encode()


def test_invented_names_do_not_grow_the_daemon(daemon):
    wire = Wire(daemon.cwmp_url)
    before = None
    rounds = 0
    for kind in ("elements", "attributes", "namespaces"):
        for _ in range(20):
            rounds += 1
            body = _invented(rounds, kind)
            assert len(body) < 1024 * 1024
            answer = wire.post(body)
            assert answer.status in (200, 400), answer.text  # refused or faulted: not a crash
            wire.reconnect()
            if rounds == 3:  # buffers and caches of a first large body are warm now
                time.sleep(0.2)
                before = _rss_mb(daemon.proc.pid)
    grown = _rss_mb(daemon.proc.pid) - before
    # 57 envelopes hold ~2.2 million new names: kept for good they are ~100 MB. What may
    # stay is one dictionary's worth (ROTATE_BYTES of input, ~5 MB) and the allocator's slack.
    assert grown < 25, f"RSS grew by {grown:.0f} MB"
    # and the daemon still serves routers
    assert Wire(daemon.cwmp_url).post(b"").status in (204, 400)


def test_each_thread_replaces_its_own_dictionary():
    # libxml2's dictionary is per thread: a thread that parses invented names while
    # another parses the bulk of the input (and would do every rotation, were the count
    # shared) must still get its own replaced.
    # ~0.5 MB with no new names, then ~0.2 MB of new ones on the other thread: with one
    # count for all threads, the MB would be crossed (and the rotation done) on this one
    padding = b"<r>" + b"<known>x</known>" * 30_000 + b"</r>"

    def invented(round_: int) -> bytes:
        return ("<r>" + "".join(f"<t{round_}x{i}/>" for i in range(16_000)) + "</r>").encode()

    with ThreadPoolExecutor(1) as other:
        other.submit(parse_xml, invented(0)).result()
        before = _rss_mb(os.getpid())
        for round_ in range(1, 121):
            parse_xml(padding)
            other.submit(parse_xml, invented(round_)).result()
        grown = _rss_mb(os.getpid()) - before
    # ~1.9 million new names: ~85 MB if that thread's dictionary were never replaced
    assert grown < 15, f"RSS grew by {grown:.0f} MB"
