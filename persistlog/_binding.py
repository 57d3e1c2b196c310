"""The one module that touches cffi's ``ffi`` and ``lib``.

It turns the C core's return codes into exceptions and its structures into
plain Python values, so ``persistlog.ring`` never sees a pointer.
"""
from . import _fast
from ._core import ffi, lib
from .errors import (PersistlogError, RecordTooLarge, RegionBusy, RegionTooSmall,
                     UnsupportedVersion)

HEADER_SIZE = lib.PLR_HEADER_SIZE
REC_HDR_SIZE = lib.PLR_REC_HDR_SIZE
MAX_RECORD_CAP = lib.PLR_MAX_RECORD_CAP
MIN_REGION_SIZE = lib.PLR_HEADER_SIZE + lib.PLR_MIN_DATA_SIZE
FORMAT_VERSION = lib.PLR_VERSION
FORMAT_VERSION_V1 = lib.PLR_VERSION_V1
FLAG_REBUILT = lib.PLR_FLAG_REBUILT

MISSING, VALID, INVALID, FOREIGN, NEWER = (
    lib.PLR_MISSING, lib.PLR_VALID, lib.PLR_INVALID, lib.PLR_FOREIGN, lib.PLR_NEWER)

INVALID_REASONS = {
    lib.PLR_BAD_CRC: "header checksum mismatch",
    lib.PLR_BAD_ENDIAN: "endianness marker wrong",
    lib.PLR_BAD_GEOMETRY: "sizes or offsets out of range",
}


_plr_append = lib.plr_append  # the append path skips the attribute lookup on lib
# persistlog._fast calls the core's plr_appendv through this address: one
# copy of the core (its thread-local lanes, its fork handling) per process.
_PLR_APPENDV = int(ffi.cast("uintptr_t", ffi.addressof(lib, "plr_appendv")))


def decline(*args):
    """The fast append paths of a ring not attached for appending: take no
    record (return None), as those of a detached ``persistlog._fast``
    appender do."""
    return None


def _raise_append(rc, nbytes):
    """Raise the error for plr_appendv's return *rc* (< 0) on a payload of
    *nbytes* bytes: what ``View.append`` raises."""
    _raise(rc, f"append of {nbytes} bytes")


def _raise(rc, what):
    if rc == lib.PLR_ETOOBIG:
        raise RecordTooLarge(f"{what}: record larger than the region's maximum")
    if rc == lib.PLR_ESMALL:
        raise RegionTooSmall(f"{what}: region smaller than {MIN_REGION_SIZE} bytes")
    if rc == lib.PLR_EVERSION:
        raise UnsupportedVersion(f"{what}: newer format version")
    if rc == lib.PLR_EBUSY:
        raise RegionBusy(f"{what}: every chunk of the region is held by a live writer; "
                         "record dropped")
    if rc == lib.PLR_EOLD:
        raise UnsupportedVersion(f"{what}: a version 1 region is read, not written")
    if rc == lib.PLR_ENOMEM:
        raise MemoryError(what)
    raise PersistlogError(f"{what}: error {rc}")


class View:
    """A pointer into a ``mmap`` and the C structures that live beside it."""

    def __init__(self, mm, size):
        self.size = size
        self._buf = ffi.from_buffer("uint8_t[]", mm, require_writable=False)
        self.base = ffi.cast("uint8_t *", self._buf)
        self.ring = None
        self._fast = []  # the fast appenders made (fast_appender), detached with the ring

    def fast_appender(self, after=None):
        """Return the fast append path to this view's ring (attach() first),
        an object of two methods, each one C call (persistlog/_fast.c):
        ``append(message, priority, identifier, fields)`` encodes and appends
        a record, ``append_bytes(payload)`` appends an encoded one.  Each
        returns the record's seq, or None, having written nothing, for what
        it does not take (the caller then takes the generic path: a record's
        types that need msgpack, a payload not of type bytes) and once
        ``detach()`` has run.  Errors as ``append()``.

        *after* (callable | None): called after each record it appends.
        """
        # It keeps the struct plr_ring and the buffer export of the mapping
        # (so the mapping cannot be closed under it), not this view: no cycle.
        a = _fast.appender(int(ffi.cast("uintptr_t", self.ring)), (self.ring, self._buf),
                           _PLR_APPENDV, _raise_append, after)
        self._fast.append(a)
        return a

    def release(self):
        """Give up this view's chunks, then drop the buffer export so the
        mmap can be closed."""
        self.detach()
        if self._buf is not None:
            ffi.release(self._buf)
            self._buf = None

    def detach(self):
        """Seal the chunks this view's writers hold (plr_detach); idempotent."""
        for a in self._fast:
            a.detach()
        self._fast.clear()
        if self.ring is not None:
            lib.plr_detach(self.ring)
            self.ring = None

    def __del__(self):
        # the buffer export keeps the mapping alive until here
        if getattr(self, "ring", None) is not None and self._buf is not None:
            lib.plr_detach(self.ring)

    def check(self):
        """Return (outcome, reason, version) of plr_check(); RegionTooSmall if
        too small.  version is 0 unless the outcome is VALID."""
        reason = ffi.new("int *")
        geom = ffi.new("struct plr_geom *")
        rc = lib.plr_check(self.base, self.size, reason, geom)
        if rc < 0:
            _raise(rc, "check")
        if rc == VALID:
            self.geometry = (geom.data_size, geom.max_record)
        return rc, INVALID_REASONS.get(reason[0], ""), geom.version if rc == VALID else 0

    def format(self, first_seq, realtime_ns):
        """Write a fresh header and zero the data area."""
        rc = lib.plr_format(self.base, self.size, first_seq, realtime_ns)
        if rc < 0:
            _raise(rc, "format")

    def attach(self, boot_id, write_combining=False):
        """Make the process-local ring view used by append().

        *write_combining*: the mapping may be write-combining (a device such
        as /dev/persistlog0), so commits are fenced (_ring.c, [F1]).
        """
        ring = ffi.new("struct plr_ring *")
        rc = lib.plr_attach(ring, self.base, self.size, boot_id)
        if rc < 0:
            _raise(rc, "attach")
        if write_combining:
            ring.flags |= lib.PLR_RING_WC
        self.ring = ring
        return ring.data_size, ring.max_record

    def register_boot(self, realtime_ns, spin_ns):
        """Register our boot in the boot table; True if this call started it."""
        return lib.plr_boot_register(self.ring, realtime_ns, spin_ns) == 1

    def append(self, payload):
        """Append one record; returns its seq.  RecordTooLarge if too long."""
        seq = _plr_append(self.ring, payload, len(payload))
        if seq < 0:
            _raise(seq, f"append of {len(payload)} bytes")
        return seq

    def append_ts(self, payload, realtime_ns, monotonic_ns):
        """Append one record with given timestamps (ns); returns its seq."""
        seq = lib.plr_append_ts(self.ring, payload, len(payload), realtime_ns, monotonic_ns)
        if seq < 0:
            _raise(seq, f"append of {len(payload)} bytes")
        return seq

    def append_as(self, payload, pid):
        """Append one record stamped now, written for process *pid* (its pid and tid);
        returns its seq."""
        rt, mono = ffi.new("uint64_t *"), ffi.new("uint64_t *")
        lib.plr_now(rt, mono)
        iov = ffi.new("struct plr_iov *")
        buf = ffi.from_buffer(payload)
        iov.base, iov.len = buf, len(payload)
        seq = lib.plr_appendv_as(self.ring, iov, 1, rt[0], mono[0], pid, 0)
        if seq < 0:
            _raise(seq, f"append of {len(payload)} bytes")
        return seq

    def counters(self):
        """Return the header's live counters as a dict (untrusted hints)."""
        c = ffi.new("struct plr_counters *")
        lib.plr_counters(self.base, self.size, c)
        return {"head": c.head, "next_seq": c.next_seq, "boot_word": c.boot_word,
                "format_realtime_ns": c.format_realtime_ns, "busy_drops": c.busy_drops}

    def header_flags(self):
        """Return the header's flags word (valid headers only)."""
        return int.from_bytes(ffi.buffer(self.base + 56, 4), "little")

    def boots(self):
        """Return the valid boot table entries, oldest first, as tuples
        (boot_id bytes, boot_no, first_seq, realtime_ns)."""
        out = ffi.new("struct plr_boot[]", lib.PLR_BOOT_SLOTS)
        n = lib.plr_boots(self.base, self.size, out, lib.PLR_BOOT_SLOTS)
        return [(bytes(ffi.buffer(b.boot_id, 16)), b.boot_no, b.first_seq, b.realtime_ns)
                for b in out[0:n]]

    def scan(self, since_seq=0):
        """Scan the region (plr_scan_region); returns a Scan."""
        s = ffi.new("struct plr_scan *")
        rc = lib.plr_scan_region(self.base, self.size, since_seq, s)
        if rc < 0:
            _raise(rc, "scan")
        return Scan(ffi.gc(s, lib.plr_scan_free))

    def rebuild(self, scan):
        """Write a new header from *scan* of a v2 region, keeping the data area."""
        rc = lib.plr_rebuild(self.base, self.size, scan._s)
        if rc < 0:
            _raise(rc, "rebuild")


class Scan:
    """Records copied out of a region and validated, in seq order.

    Attributes:
        n (int): records found.
        torn (list[int]): seqs of torn records (reserved, never committed).
        corrupt (int): records of the live window whose checksum failed.
        duplicates (int): valid records whose seq was seen already.
        boot_ids (list[bytes]): boot IDs in order of their first record.
        version (int): the format read, 1 or 2.
        overwritten (int): v2: committed records evicted by design.
        evicted (dict[int, int]): v2: the same per boot tag (boot number
            & 0xfff).
    """

    def __init__(self, s):
        self._s = s
        self.n = s.n_entries
        self.torn = [s.torn_seqs[i] for i in range(s.torn)]
        self.corrupt = s.corrupt
        self.duplicates = s.duplicates
        self.version = s.version
        self.overwritten = s.overwritten
        self.evicted = {s.evicted[i].boot_tag: s.evicted[i].records
                        for i in range(s.n_evicted)}
        raw = bytes(ffi.buffer(s.boot_ids, 16 * s.n_boot_ids)) if s.n_boot_ids else b""
        self.boot_ids = [raw[i:i + 16] for i in range(0, len(raw), 16)]

    def seqs(self):
        """Return the list of seqs, ascending."""
        e = self._s.entries
        return [e[i].seq for i in range(self.n)]

    def entries(self, start=0):
        """Yield (seq, boot_idx, realtime_ns, monotonic_ns, pid, tid, payload, pos)
        for each record from index *start*."""
        s = self._s
        buf = s.buf
        for i in range(start, self.n):
            e = s.entries[i]
            yield (e.seq, e.boot_idx, e.realtime_ns, e.monotonic_ns, e.pid, e.tid,
                   bytes(ffi.buffer(buf + e.buf_off, e.payload_len)), e.pos)

    def payload_len(self, i):
        """Bytes record *i* takes in the region: header and payload, 8-aligned."""
        e = self._s.entries[i]
        hdr = REC_HDR_SIZE if self.version == FORMAT_VERSION else lib.PLR_V1_REC_HDR_SIZE
        return (hdr + e.payload_len + 7) & ~7

    def first_index_after(self, seq):
        """Index of the first record with a seq greater than *seq* (bisection)."""
        e = self._s.entries
        lo, hi = 0, self.n
        while lo < hi:
            mid = (lo + hi) // 2
            if e[mid].seq <= seq:
                lo = mid + 1
            else:
                hi = mid
        return lo


def crc32c(data, crc=0):
    """CRC32C (Castagnoli) of *data*, continuing *crc*; RFC 3720 appendix B.4."""
    return lib.plr_crc32c(crc, data, len(data))
