"""Where a relative path of the configuration leads.

acsd takes a relative path (the SQLite file, the TLS files, ``credentials_file``,
``[profiles] dir``) from the directory it runs in, not from the config file's: under systemd
that is the unit's ``WorkingDirectory``, /var/lib/acsd. An ``acsd config check`` run from
another directory looks somewhere else, so an error about such a file says where it looked.
"""

from __future__ import annotations

import os


def relative_note(path: str | os.PathLike[str]) -> str:
    """`` (relative to the working directory DIR)`` for a relative ``path``, else ""."""
    if os.path.isabs(path):
        return ""
    try:
        here = os.getcwd()
    except OSError:  # the directory was removed under the process
        return " (relative to the working directory, which no longer exists)"
    return f" (relative to the working directory {here})"
