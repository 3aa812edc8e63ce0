"""`acsd sim` with one change, for test_workers: before the fault answering a
SetParameterValues that sets ManagementServer.Password is posted, write PAUSE_MARK and
wait for PAUSE_GO (the test reloads the daemon meanwhile)."""

from __future__ import annotations

import asyncio
import os
import sys

from acsd.cli import main
from acsd.cwmp import rpc
from acsd.sim import session as simsession

mark, go = os.environ["PAUSE_MARK"], os.environ["PAUSE_GO"]
orig = simsession.Session._post


async def _post(self, message, echo_id=None):
    if isinstance(message, rpc.Fault) and any(
        "ManagementServer.Password" in f.name for f in message.spv_faults
    ):
        with open(mark, "w") as handle:
            handle.write("paused\n")
        while not os.path.exists(go):
            await asyncio.sleep(0.05)
    return await orig(self, message, echo_id)


simsession.Session._post = _post
sys.exit(main(sys.argv[1:]))
