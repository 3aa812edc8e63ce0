"""The ``acsd`` command's entry point: small, so that ``acsd serve`` holds a SIGHUP from its
first moment. Importing the command line takes half a second (pydantic, the models), and
a SIGHUP meanwhile (a certificate renewal hook's ``pkill -HUP acsd`` just after a restart)
ended the process: its default action, which systemd counts as a clean exit, so
``Restart=on-failure`` left the ACS down. The daemon serves a held one once it listens."""

from __future__ import annotations

import signal
import sys
from types import FrameType

#: a SIGHUP arrived before the daemon's event loop took the signal over
held = False


def _hold(signum: int, frame: FrameType | None) -> None:
    global held
    held = True


def main() -> int:
    if sys.argv[1:2] == ["serve"]:
        signal.signal(signal.SIGHUP, _hold)
    from acsd.cli import main as cli_main

    return cli_main()
