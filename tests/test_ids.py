"""acsd's ids: unique across processes, also across a fork."""

from __future__ import annotations

import os

from acsd.ids import is_id, new_id


def test_a_forked_process_does_not_repeat_its_parents_ids():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, " ".join(new_id() for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        theirs = pipe.read().split()
    os.waitpid(pid, 0)
    ours = [new_id() for _ in range(3)]
    assert len(theirs) == 3 and all(is_id(one) for one in theirs)
    assert not set(theirs) & set(ours)
    # the part that tells processes apart differs, not only the counter
    assert {one[8:18] for one in theirs}.isdisjoint({one[8:18] for one in ours})
