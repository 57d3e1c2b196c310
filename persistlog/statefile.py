"""State files: the daemon's drain cursor and the mirror's cursor.

Each is one small JSON file per region, held by one process at a time (an exclusive
``flock`` on ``<file>.lock``, so two daemons, or two mirrors, cannot work on one region), and
written atomically and durably: a temporary file, fsync, rename over the old one, fsync of
the directory (rename(2) is atomic; the directory's fsync makes the rename itself durable,
fsync(2)). A crash leaves the old state or the new one, never a mix.
"""
import fcntl
import json
import os

from .archive import fsync_dir
from .errors import PersistlogError


class StateError(PersistlogError):
    """A state file cannot be read or written."""


def lock(path, busy):
    """Take the exclusive lock of state file ``path`` (a Path) without waiting.

    Args:
        path (Path): the state file; the lock is ``<path>.lock`` beside it (the folder is
            made, mode 0750, if need be).
        busy (callable): given the lock's path, returns the exception to raise when another
            process holds the lock.

    Returns:
        file: the open lock file; closing it releases the lock.

    Raises:
        StateError: the lock file cannot be opened.
        what ``busy`` returns: the lock is held.
    """
    lock_path = path.with_name(path.name + ".lock")
    try:
        os.makedirs(path.parent, mode=0o750, exist_ok=True)
        f = open(lock_path, "a")
    except OSError as e:
        raise StateError(f"cannot open {lock_path}: {e.strerror or e}") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise busy(lock_path) from None
    return f


def load(path, what):
    """The JSON value in state file ``path``, or None when there is none yet.

    Raises:
        StateError: it cannot be read or is not JSON (``what`` names it in the message).
    """
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise StateError(f"cannot read {what} {path}: {e}") from None


def save(path, value, what, **dump_options):
    """Write ``value`` as JSON to state file ``path``, atomically and durably (module
    docstring); ``dump_options`` go to ``json.dump``.

    Raises:
        StateError: it cannot be written (``what`` names it in the message).
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(value, f, **dump_options)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        raise StateError(f"cannot write {what} {path}: {e.strerror or e}") from None
