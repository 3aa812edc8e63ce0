"""The one ID generator: 24 hex characters, ObjectId-like (time, random, counter)."""

from __future__ import annotations

import itertools
import os
import re
import time

_RANDOM = os.urandom(5)
_COUNTER = itertools.count(int.from_bytes(os.urandom(3), "big"))


def _new_process() -> None:
    # A forked process (a pre-forking host, multiprocessing's fork, a test harness that forks
    # commands) would otherwise make exactly its parent's next ids: the random part is what
    # keeps two processes' ids apart within one second.
    global _RANDOM, _COUNTER
    _RANDOM = os.urandom(5)
    _COUNTER = itertools.count(int.from_bytes(os.urandom(3), "big"))


os.register_at_fork(after_in_child=_new_process)
_ID_RE = re.compile(r"^[0-9a-f]{24}\Z")
_ANY_CASE = re.compile(r"[0-9a-fA-F]{24}")


def new_id() -> str:
    # Time first so ids sort by creation, like MongoDB ObjectIds the seed's clients know.
    stamp = int(time.time()).to_bytes(4, "big")
    count = (next(_COUNTER) & 0xFFFFFF).to_bytes(3, "big")
    return (stamp + _RANDOM + count).hex()


def is_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def normal_id(value: str) -> str:
    """An id as acsd writes it (lower case) when ``value`` is one in any case: the seed's
    examples print ids in upper case, and clients copy what they see."""
    return value.lower() if _ANY_CASE.fullmatch(value) else value
