"""Archived boots: one file per drained boot, so its records outlive the ring.

``<archive-dir>/<boot-id>.plog`` is a msgpack stream (the encoding the ring's payloads already
use; bytes stay bytes): first a header map, then one map per record in seq order, shaped as
``Record.to_dict()``::

    {"format": "persistlog-archive", "version": 1, "boot_id": str, "records": int,
     "first_seq": int, "last_seq": int, "first_realtime_ns": int, "last_realtime_ns": int,
     "lost": int, "torn": int, "overwritten": int, "region": str,
     "archived_realtime_ns": int}

(``overwritten`` came later: an archive written before it has none, and reads as None.)

A file is written under a temporary name, fsynced, renamed into place and its directory
fsynced, so a crash leaves either the old complete file or the new complete one. Retention
removes the archives of the oldest boots (by their first record's time) past a count and a
byte budget.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import msgpack

from .errors import PersistlogError
from .record import Record

FORMAT = "persistlog-archive"
VERSION = 1
SUFFIX = ".plog"


class ArchiveError(PersistlogError):
    """An archive cannot be written, read, or is not a complete persistlog archive."""


@dataclass(frozen=True)
class ArchivedBoot:
    """An archive file's header, with its path and size (bytes)."""

    boot_id: str
    path: Path
    size: int
    records: int
    first_seq: int
    last_seq: int
    first_realtime_ns: int
    last_realtime_ns: int
    lost: int
    torn: int
    overwritten: "int | None" = None  # None: an archive written before the field


def path_for(archive_dir, boot_id):
    """The archive path of ``boot_id`` (UUID text) under ``archive_dir``."""
    return Path(archive_dir) / f"{boot_id}{SUFFIX}"


def write(archive_dir, boot_id, records, lost=0, torn=0, region="", overwritten=0):
    """Write the archive of one boot atomically and durably.

    Args:
        archive_dir (str | Path): created if missing (mode 0750).
        boot_id (str): the boot.
        records (iterable of Record): its records, in seq order.
        lost, torn (int): the ring's counts of lost and torn records for that boot.
        overwritten (int): the boot's records evicted by later ones (docs/FORMAT.md).
        region (str): the ring the records came from, for the reader's information.

    Returns:
        Path: the archive's path.

    Raises:
        ArchiveError: the directory or file cannot be written.
    """
    records = list(records)
    final = path_for(archive_dir, boot_id)
    tmp = final.with_name(f".{final.name}.tmp")
    header = {
        "format": FORMAT, "version": VERSION, "boot_id": boot_id, "records": len(records),
        "first_seq": records[0].seq if records else 0,
        "last_seq": records[-1].seq if records else 0,
        "first_realtime_ns": records[0].realtime_ns if records else 0,
        "last_realtime_ns": records[-1].realtime_ns if records else 0,
        "lost": lost, "torn": torn, "overwritten": overwritten, "region": str(region),
        "archived_realtime_ns": time.time_ns(),
    }
    packer = msgpack.Packer(use_bin_type=True)
    try:
        os.makedirs(archive_dir, mode=0o750, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(packer.pack(header))
            for r in records:
                f.write(packer.pack(r.to_dict()))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fsync_dir(archive_dir)
    except OSError as e:
        raise ArchiveError(f"cannot write archive {final}: {e.strerror or e}") from None
    return final


def fsync_dir(path):
    """fsync the directory ``path``, so that a rename into it survives a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unpacker(f):
    return msgpack.Unpacker(f, raw=False, strict_map_key=False, use_list=True)


def _header(path, unpacker):
    try:
        header = next(unpacker)
    except (StopIteration, ValueError, msgpack.UnpackException):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArchiveError(f"{path}: not a persistlog archive")
    if header.get("version") != VERSION:
        raise ArchiveError(f"{path}: archive version {header.get('version')!r} "
                           f"(this persistlog reads version {VERSION})")
    return header


def read_header(path):
    """The ``ArchivedBoot`` described by the archive at ``path``; raises ArchiveError."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            h = _header(path, _unpacker(f))
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise ArchiveError(f"cannot read archive {path}: {e.strerror or e}") from None
    return ArchivedBoot(h["boot_id"], path, size, h["records"], h["first_seq"], h["last_seq"],
                        h["first_realtime_ns"], h["last_realtime_ns"], h["lost"], h["torn"],
                        h.get("overwritten"))


def open_archive(path):
    """Yield the records of the archive at ``path``, in seq order, as ``Record``.

    Raises:
        ArchiveError: unreadable, not an archive, or fewer or malformed records than its
            header announces (raised when the iteration reaches the damage).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            unpacker = _unpacker(f)
            header = _header(path, unpacker)
            n = 0
            for d in unpacker:
                try:
                    yield Record(**d)
                except TypeError:
                    raise ArchiveError(f"{path}: record {n + 1} is malformed") from None
                n += 1
            if n != header["records"]:
                raise ArchiveError(f"{path}: {n} records, header says {header['records']}")
    except OSError as e:
        raise ArchiveError(f"cannot read archive {path}: {e.strerror or e}") from None
    except (ValueError, msgpack.UnpackException) as e:
        raise ArchiveError(f"{path}: damaged archive ({e})") from None


def list_archives(archive_dir):
    """The archived boots under ``archive_dir``, oldest boot first; unreadable files skipped.

    An absent directory has none.
    """
    try:
        names = sorted(p for p in Path(archive_dir).iterdir()
                       if p.name.endswith(SUFFIX) and not p.name.startswith("."))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise ArchiveError(f"cannot list archives in {archive_dir}: {e.strerror or e}") from None
    found = []
    for p in names:
        try:
            found.append(read_header(p))
        except ArchiveError:
            continue
    found.sort(key=lambda a: (a.first_realtime_ns, a.path.stat().st_mtime_ns))
    return found


def find(archive_dir, boot_id):
    """The archive path of ``boot_id`` if there is one, else None."""
    p = path_for(archive_dir, boot_id)
    return p if p.exists() else None


def prune(archive_dir, keep, max_bytes):
    """Remove the oldest archives until at most ``keep`` remain and they fill at most
    ``max_bytes`` bytes; the newest is always kept. Returns the removed paths."""
    archives = list_archives(archive_dir)
    total = sum(a.size for a in archives)
    removed = []
    while len(archives) > 1 and (len(archives) > keep or total > max_bytes):
        oldest = archives.pop(0)
        try:
            oldest.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise ArchiveError(f"cannot remove archive {oldest.path}: {e.strerror or e}") from None
        total -= oldest.size
        removed.append(oldest.path)
    return removed
