"""The ``acsd`` command for tests, without an interpreter start per run.

Tests run ``acsd device apply``, ``acsd token create`` and the like hundreds of times; each
run was a new interpreter importing acsd (a third of a second, most of it pydantic and
aiohttp), a quarter of the test suite's time. This process imports acsd once, then forks a
child per command: the child is still a process of its own with the command's arguments,
environment, working directory, stdout, stderr and exit status, running ``acsd.cli.main``
as ``python -m acsd`` does. What it skips is only the interpreter's start and the imports.

Protocol (one JSON object per line): the client writes ``{"args", "env", "cwd", "stdout",
"stderr", "timeout"}`` on stdin; this process answers on stdout with ``{"status": N}`` (a
negative N: killed by that signal, as subprocess reports it) or ``{"timeout": true}``.
One command at a time: the client runs a second concurrent one as a plain subprocess.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import threading
import time
import traceback


def _warm() -> None:
    # What the commands import lazily, so that no child pays for it.
    import acsd.api.auth
    import acsd.audit
    import acsd.cli
    import acsd.daemon
    import acsd.device_view
    import acsd.devices
    import acsd.provisioning.profile_check
    import acsd.store.backup
    import acsd.store.postgres
    import acsd.store.sqlite
    import acsd.workers  # noqa: F401


def _child(request: dict, answers: int) -> None:
    """Become the command: never returns."""
    status = 1
    try:
        os.close(answers)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as the interpreter sets it at start
        sys.argv = ["acsd", *request["args"]]
        from acsd.cli import main

        status = main(request["args"])
    except SystemExit as exc:  # what sys.exit() in `python -m acsd` makes of each kind
        if exc.code is None:
            status = 0
        elif isinstance(exc.code, int):
            status = exc.code
        else:
            print(exc.code, file=sys.stderr)
            status = 1
    except BaseException:
        traceback.print_exc()
        status = 1
    finally:
        # As the interpreter does at its exit: wait for the threads that are no daemons.
        # One that still runs (and prints) after main returned must do so here as it does
        # under `python -m acsd`, or a test of what a failed start prints cannot see it.
        with contextlib.suppress(Exception):
            threading._shutdown()  # type: ignore[attr-defined]
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status if isinstance(status, int) else 1)


def _wait(pid: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    try:  # Linux 5.3+: sleep until the child ends
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pass
    else:
        try:
            select.select([pidfd], [], [], timeout)
        finally:
            os.close(pidfd)
    while True:  # (elsewhere: look every few milliseconds)
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            return {"status": os.waitstatus_to_exitcode(wait_status)}
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"timeout": True}
        time.sleep(0.005)


def serve() -> None:
    # `python -m acsd` looks for modules in its working directory first, not in tests/
    sys.path[0] = os.getcwd()
    _warm()
    # Answers go through a copy of stdout: a child points fd 1 at its command's output.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    print("ready", file=answers)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request, answers.fileno())
        answers.write(json.dumps(_wait(pid, request["timeout"])) + "\n")


if __name__ == "__main__":
    serve()
