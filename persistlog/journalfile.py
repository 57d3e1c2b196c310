"""Recovered boots as journal files of their own, written by the real systemd-journal-remote.

journald stamps every entry it receives with the receiving boot, time and PID; a journal file
written from the journal export format keeps each entry's own ``_BOOT_ID``,
``__REALTIME_TIMESTAMP``, ``__MONOTONIC_TIMESTAMP`` and ``_PID`` (systemd-journal-remote(8)
reads that format on stdin and writes one file with ``-o FILE.journal``). Placed in
``<journal-dir>/<machine-id>/``, the file is read by plain ``journalctl``: ``--list-boots``
lists the recovered boot, ``journalctl -b -1`` shows it.

File names
    ``persistlog-<boot-id, 32 hex>-<region key>.journal``, the region key being the first 12
    hex digits of the SHA-256 of the region's path: one file per boot and region. journald
    never removes it (its vacuuming takes only archived files, whose names hold an ``@``), so
    ``prune`` keeps the count and bytes of these files within the daemon's settings.

Atomic
    systemd-journal-remote writes ``<journal-dir>/.persistlog-tmp/<name>.<pid>.journal`` (the
    directory is no machine ID: journalctl does not look into it; the name must end in
    ``.journal`` for journal-remote); the file is fsynced, renamed to its final name in the
    machine's directory, and that directory fsynced. So the final name holds a complete file or
    nothing; a writer killed half-way leaves only a temporary file, removed by the next
    ``write`` of that boot. journal-remote dies with its parent (PR_SET_PDEATHSIG).
"""

import ctypes
import hashlib
import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

from .archive import fsync_dir
from .errors import PersistlogError
from .export import boot_id_hex

# Where Debian (and systemd's own packaging) installs it; /usr/lib on merged-/usr systems.
REMOTE_PATHS = ("/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote")
VOLATILE_DIR = "/run/log/journal"
PREFIX = "persistlog-"
SUFFIX = ".journal"
TMP_DIR = ".persistlog-tmp"
_WRITTEN = re.compile(rb"writing (\d+) entries")
_BATCH = 1 << 20  # bytes handed to journal-remote's pipe at a time


class JournalFileError(PersistlogError):
    """A journal file cannot be written, renamed or removed, or journal-remote failed."""


def find_remote(path=None):
    """The systemd-journal-remote executable: ``path`` if given and executable, else the
    first of REMOTE_PATHS that is; None when there is none."""
    for p in ([path] if path else REMOTE_PATHS):
        if os.access(p, os.X_OK):
            return p
    return None


def directory(journal_dir, default="/var/log/journal", volatile=VOLATILE_DIR):
    """The directory the journal files go to: ``journal_dir`` (str); but when that is the
    ``default`` and does not exist, journald keeps its journal in ``volatile`` (Storage=auto,
    journald.conf(5)) and so do we, rather than create /var/log/journal, which would turn
    journald's storage persistent at its next start."""
    if journal_dir == default and not os.path.isdir(journal_dir):
        return volatile
    return journal_dir


def region_key(region):
    """The region part of a file name: 12 hex digits of the SHA-256 of the path ``region``."""
    return hashlib.sha256(os.fsencode(str(region))).hexdigest()[:12]


def file_name(boot_id, region):
    """The journal file name of boot ``boot_id`` (UUID text) of ``region`` (path)."""
    return f"{PREFIX}{boot_id_hex(boot_id)}-{region_key(region)}{SUFFIX}"


def final_path(journal_dir, machine_id, boot_id, region):
    """Where the journal file of ``boot_id`` of ``region`` lies: under ``journal_dir`` (str),
    in the directory of ``machine_id`` (32 hex), as journalctl looks for the local machine's."""
    return Path(journal_dir) / machine_id / file_name(boot_id, region)


def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def write(final, chunks, remote, expect=None, tick=None):
    """Write a journal file atomically and durably through systemd-journal-remote.

    Args:
        final (Path): the file's final path (see ``final_path``); its directory is created
            (mode 2755, as journald's) if missing.
        chunks (iterable of bytes): the entries in the journal export format.
        remote (str): the systemd-journal-remote executable.
        expect (int | None): how many entries ``chunks`` holds: journal-remote skips an entry
            it cannot parse with only a warning, so its count is checked.
        tick (callable | None): called after each batch handed over (about 1 MiB), to ping a
            watchdog.

    Returns:
        Path: ``final``.

    Raises:
        JournalFileError: a directory or file cannot be written, journal-remote failed or
            wrote a different number of entries.
    """
    final = Path(final)
    tmp_dir = final.parent.parent / TMP_DIR
    tmp = tmp_dir / f"{final.stem}.{os.getpid()}{SUFFIX}"
    try:
        if not final.parent.is_dir():
            os.makedirs(final.parent, mode=0o2755, exist_ok=True)
            # mkdir(2) drops S_ISGID from the mode it is given (mkdir(2): "the set-group-ID
            # bit ... is inherited from the parent", not taken from mode); journald's
            # machine directory has it, so that its files take the directory's group
            os.chmod(final.parent, 0o2755)
        os.makedirs(tmp_dir, mode=0o700, exist_ok=True)
        for stale in tmp_dir.glob(f"{final.stem}.*{SUFFIX}"):
            stale.unlink(missing_ok=True)
        with tempfile.TemporaryFile() as err:
            # Not ours to pass on: journal-remote would send READY=1 and STATUS= to the
            # service manager as if it were the service.
            env = {k: v for k, v in os.environ.items()
                   if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                                "LISTEN_PID", "LISTEN_FDNAMES")}
            proc = subprocess.Popen([remote, "-o", str(tmp), "-"], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=err, env=env,
                                    preexec_fn=_die_with_parent)
            try:
                batch, size = [], 0
                for chunk in chunks:
                    batch.append(chunk)
                    size += len(chunk)
                    if size >= _BATCH:
                        proc.stdin.write(b"".join(batch))
                        batch, size = [], 0
                        if tick:
                            tick()
                proc.stdin.write(b"".join(batch))
                proc.stdin.close()
            except BrokenPipeError:
                pass  # journal-remote exited early: its status and stderr say why
            finally:
                rc = proc.wait()
            err.seek(0)
            stderr = err.read()
        if rc != 0:
            why = (stderr.decode(errors="replace").strip().splitlines()
                   or [f"exit status {rc}"])[-1]
            raise JournalFileError(f"systemd-journal-remote could not write {tmp}: {why}")
        m = _WRITTEN.search(stderr)
        if expect is not None and (m is None or int(m.group(1)) != expect):
            raise JournalFileError(f"systemd-journal-remote wrote {m and int(m.group(1))} "
                                   f"entries of {expect} into {tmp}")
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except OSError as e:
        raise JournalFileError(f"cannot write journal file {final}: {e.strerror or e}") from None
    return final


def list_files(directory):
    """The persistlog journal files in ``directory`` (Path), oldest written first."""
    try:
        files = [p for p in Path(directory).iterdir()
                 if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX)]
    except FileNotFoundError:
        return []
    except OSError as e:
        raise JournalFileError(f"cannot list {directory}: {e.strerror or e}") from None
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def prune(directory, keep, max_bytes):
    """Remove the oldest persistlog journal files in ``directory`` until at most ``keep``
    remain and they take at most ``max_bytes`` bytes of disk; the newest is always kept.

    Returns:
        list of Path: the removed files.

    Raises:
        JournalFileError: a file cannot be removed.
    """
    files = [(p, p.stat().st_blocks * 512) for p in list_files(directory)]
    total = sum(size for _, size in files)
    removed = []
    while len(files) > 1 and (len(files) > keep or total > max_bytes):
        path, size = files.pop(0)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise JournalFileError(f"cannot remove journal file {path}: {e.strerror or e}") \
                from None
        total -= size
        removed.append(path)
    return removed
