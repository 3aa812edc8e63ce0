"""A daemon at its open-files limit says so (fds_exhausted), and its 503s name the limit
rather than the database file: the accept loop refused connections without a word, and
SQLite's "unable to open database file" sent operators to the file's permissions."""

from __future__ import annotations

import os
import resource
import socket
import sqlite3

import pytest

from acsd.store import outages
from conftest import wait_for


def test_the_open_files_limit_is_named_once_reached_and_its_end_too(daemon):
    pid = daemon.proc.pid
    host, port = daemon.api_url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    opened = len(os.listdir(f"/proc/{pid}/fd"))
    before = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (opened + 8, before[1]))
    held = []
    try:
        for _ in range(20):  # more than it may open: the last are accepted and dropped
            held.append(socket.create_connection((host, int(port)), timeout=5))
        line = wait_for(lambda: daemon.events("fds_exhausted"), timeout=10)[0]
        assert line["level"] == "warning" and line["limit"] == opened + 8
        assert "LimitNOFILE" in line["reason"]
    finally:
        for sock in held:
            sock.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, before)
    wait_for(lambda: daemon.events("fds_available"), timeout=10)


def test_a_database_that_cannot_open_a_file_for_want_of_descriptors_says_so(monkeypatch):
    error = sqlite3.OperationalError("unable to open database file")
    error.sqlite_errorname = "SQLITE_CANTOPEN"
    monkeypatch.setattr(outages, "exhausted", lambda: True)
    found = outages.outage(error)
    if found is None:
        pytest.fail("an open that failed is a store outage")
    assert found.cause == "fd_limit" and "LimitNOFILE" in found.text
    monkeypatch.setattr(outages, "exhausted", lambda: False)
    assert outages.outage(error) is not outages.FD_LIMIT  # (a permission, a missing dir)


async def test_asyncio_s_failed_accepts_are_not_logged_one_by_one(caplog, monkeypatch):
    # asyncio's loop logs each accept that fails at the limit, for each of the backlog's
    # 4,096 every second: 170 MB of log in 40 s; fds_exhausted says it once a minute
    import asyncio
    import logging

    from acsd import fdwatch
    from acsd.fdwatch import FdWatch

    monkeypatch.setattr(fdwatch, "exhausted", lambda: True)
    loop = asyncio.get_running_loop()
    before = loop.get_exception_handler()
    loop.set_exception_handler(None)
    watch = FdWatch()
    watch.start()
    try:
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            for _ in range(100):
                loop.call_exception_handler({"message": "socket.accept() out of system resource"})
            loop.call_exception_handler({"message": "something else went wrong"})
        said = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
        assert said == ["something else went wrong"], said
    finally:
        await watch.stop()
        loop.set_exception_handler(before)
