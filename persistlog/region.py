"""Naming, opening and mapping regions.

A region is named by a path:

* a regular file, created at the requested size if absent (the embedded
  default; it survives process crashes, not power loss);
* a character or block device, such as ``/dev/persistlog0`` from our kernel
  module or a ``/dev/pmem0`` from ``memmap=SIZE!ADDR``; its size is what
  ``lseek(fd, 0, SEEK_END)`` reports;
* ``/dev/mem:ADDR:SIZE``, a physical range mapped through /dev/mem, for
  systems without the module (CONFIG_STRICT_DEVMEM must allow the range).

This module knows nothing of the ring format; it hands ``Mapping`` objects
to ``persistlog.ring``.
"""
import fcntl
import mmap
import os
import re
import stat
from dataclasses import dataclass

from .errors import RegionMissing, RegionUnavailable

DEFAULT_SIZE = 8 * 1024 * 1024
DEVICE_DEFAULT = "/dev/persistlog0"
ROOT_DEFAULT = "/var/lib/persistlog/ring"

_SIZE_RE = re.compile(r"^\s*(0x[0-9a-f]+|\d+)\s*([kmgt]?)(i?b?)\s*$", re.I)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text):
    """Parse a byte count such as ``8M``, ``65536``, ``1GiB`` or ``0x100000``.

    Suffixes are binary (K = 1024 bytes), as in the kernel's ``memparse()``.

    Returns:
        int: bytes.

    Raises:
        ValueError: if *text* is not a size.
    """
    m = _SIZE_RE.match(str(text))
    if not m:
        raise ValueError(f"not a size: {text!r} (try 8M, 65536 or 1G)")
    number, unit = m.group(1), m.group(2).lower()
    return int(number, 0) * _UNITS[unit]


def default_region():
    """Return the region path used when none is given.

    ``$PERSISTLOG_REGION``, else ``/dev/persistlog0`` if it exists, else
    ``/var/lib/persistlog/ring`` for root and ``$XDG_STATE_HOME/persistlog/ring``
    (``~/.local/state/persistlog/ring``) for other users.
    """
    env = os.environ.get("PERSISTLOG_REGION")
    if env:
        return env
    if os.path.exists(DEVICE_DEFAULT):
        return DEVICE_DEFAULT
    if os.geteuid() == 0:
        return ROOT_DEFAULT
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(state, "persistlog", "ring")


@dataclass
class Target:
    """Where a region lives: *path*, and for /dev/mem a physical *offset* and *size* in bytes."""

    path: str
    offset: int = 0
    size: int = 0

    @property
    def name(self):
        """The name the user gave, for messages."""
        if self.path == "/dev/mem":
            return f"/dev/mem:{self.offset:#x}:{self.size}"
        return self.path


def parse_target(region):
    """Turn a region name into a Target; ``/dev/mem:ADDR:SIZE`` is split up.

    Raises:
        RegionUnavailable: for a malformed /dev/mem name.
    """
    region = os.fspath(region)
    if region.startswith("/dev/mem:"):
        parts = region.split(":")
        try:
            if len(parts) != 3:
                raise ValueError
            offset, size = int(parts[1], 0), parse_size(parts[2])
        except ValueError:
            raise RegionUnavailable(
                f"bad region {region!r}: expected /dev/mem:ADDR:SIZE, e.g. /dev/mem:0x30000000:1M"
            ) from None
        if offset % mmap.PAGESIZE:
            raise RegionUnavailable(f"bad region {region!r}: ADDR must be page aligned")
        return Target("/dev/mem", offset, size)
    return Target(region)


class Mapping:
    """An open, mapped region: the file descriptor, the ``mmap`` and a lock.

    Attributes:
        target (Target): what was opened.
        mm (mmap.mmap): the shared mapping, *size* bytes.
        size (int): bytes mapped.
        is_file (bool): a regular file (False for devices).
        is_block (bool): a block device (such as /dev/pmem0): its mapping is
            page cache, which must be written back (msync) to reach the device.
        writable (bool): mapped read-write.
    """

    def __init__(self, target, fd, size, is_file, writable, is_block=False):
        self.target = target
        self.fd = fd
        self.size = size
        self.is_file = is_file
        self.is_block = is_block
        self.writable = writable
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        try:
            self.mm = mmap.mmap(fd, size, mmap.MAP_SHARED, prot, offset=target.offset)
        except (OSError, ValueError) as e:
            os.close(fd)
            raise RegionUnavailable(f"cannot map {target.name}: {_why(e)}") from None

    def lock(self, exclusive):
        """Take the open lock (flock): held only while a region is checked,
        formatted or registered, never across appends, and dropped by the
        kernel if the process dies."""
        fcntl.flock(self.fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)

    def unlock(self):
        """Drop the open lock."""
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self):
        """Unmap and close; safe to call twice."""
        if self.fd is not None:
            self.mm.close()
            os.close(self.fd)
            self.fd = None


def _why(e):
    return e.strerror if isinstance(e, OSError) and e.strerror else str(e)


def open_mapping(region, *, size=None, create=True, writable=True):
    """Open and map a region.

    Args:
        region (str | os.PathLike): a region name (see the module docstring).
        size (int | None): bytes; the size of a new file region (default
            8 MiB), ignored for an existing one.  For a device whose size
            cannot be read, the size to map.
        create (bool): create a missing regular file.
        writable (bool): map read-write (appends) or read-only (readers).

    Returns:
        Mapping

    Raises:
        RegionMissing: the path does not exist and *create* is false.
        RegionUnavailable: the path cannot be opened, sized or mapped.
    """
    target = parse_target(region)
    flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC
    if target.path == "/dev/mem":
        flags |= os.O_SYNC
    try:
        fd = os.open(target.path, flags)
    except FileNotFoundError:
        if not create or not writable:
            raise RegionMissing(f"no region at {target.name}") from None
        fd = _create_file(target.path)
    except (OSError, ValueError) as e:
        raise RegionUnavailable(f"cannot open {target.name!r}: {_why(e)}") from None

    try:
        st = os.fstat(fd)
        is_file = stat.S_ISREG(st.st_mode)
        if is_file:
            mapped = st.st_size
            if mapped == 0:
                if not create or not writable:
                    raise RegionMissing(f"region {target.name} is empty")
                mapped = size or DEFAULT_SIZE
                os.ftruncate(fd, mapped)
        elif target.path == "/dev/mem":
            mapped = target.size
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            mapped = _device_size(fd, st) or size or 0
            if not mapped:
                raise RegionUnavailable(
                    f"cannot tell the size of {target.name}; give a size")
        else:
            raise RegionUnavailable(f"{target.name} is not a file or a device")
    except OSError as e:
        os.close(fd)
        raise RegionUnavailable(f"cannot size {target.name}: {_why(e)}") from None
    except Exception:
        os.close(fd)
        raise
    mapped -= mapped % mmap.PAGESIZE
    if mapped <= 0:
        os.close(fd)
        raise RegionUnavailable(f"{target.name} is smaller than a page")
    return Mapping(target, fd, mapped, is_file, writable, is_block=stat.S_ISBLK(st.st_mode))


def _device_size(fd, st):
    """Bytes in a device: lseek(SEEK_END) (our module, block devices such as
    /dev/pmem0), else the ``size`` attribute in sysfs (a devdax device,
    Documentation/ABI/testing/sysfs-bus-dax); 0 if neither tells."""
    try:
        n = os.lseek(fd, 0, os.SEEK_END)
        if n > 0:
            return n
    except OSError:
        pass
    if not stat.S_ISCHR(st.st_mode):
        return 0  # a block device's sysfs size counts 512-byte sectors, and lseek works
    try:
        with open(f"/sys/dev/char/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}/size") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 0


def _create_file(path):
    parent = os.path.dirname(path)
    try:
        if parent:
            os.makedirs(parent, mode=0o750, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
    except OSError as e:
        raise RegionUnavailable(f"cannot create {path}: {_why(e)}") from None


def keep_copy(mapping, state_dir=None, kind="damaged"):
    """Copy a region's bytes to a new file before anything rewrites them.

    The copy lies beside a file region (``PATH.KIND-TIMESTAMP``) or, for a
    device, in *state_dir* (default ``/var/lib/persistlog``).  It is a region
    image: ``persistlog --region COPY dump --all`` reads it.  *kind* is
    ``"damaged"`` (a damaged header is about to be rebuilt) or ``"v1"`` (a
    version 1 region is about to be converted).

    Returns:
        str: the copy's path.

    Raises:
        RegionUnavailable: if the copy cannot be written (then nothing may
            be rewritten).
    """
    import time

    stamp = time.strftime("%Y%m%dT%H%M%S")
    if mapping.is_file:
        dest = f"{mapping.target.path}.{kind}-{stamp}"
    else:
        base = os.path.basename(mapping.target.path) or "region"
        dest = os.path.join(state_dir or os.path.dirname(ROOT_DEFAULT),
                            f"{base}.{kind}-{stamp}")
    n = 0
    candidate = dest
    while os.path.exists(candidate):
        n += 1
        candidate = f"{dest}.{n}"
    try:
        os.makedirs(os.path.dirname(candidate) or ".", exist_ok=True)
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        try:
            view = memoryview(mapping.mm)
            off = 0
            while off < mapping.size:
                off += os.write(fd, view[off:off + (1 << 20)])
            view.release()
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise RegionUnavailable(
            f"cannot keep a copy of the region in {candidate}: {_why(e)}") from None
    return candidate
