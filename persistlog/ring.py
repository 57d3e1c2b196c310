"""The public API: open a region, append records, read them back.

Example::

    import persistlog

    with persistlog.open("/dev/shm/app.ring") as ring:
        seq = ring.append("link down", priority=3, identifier="netd", port=2)
        for rec in ring.records(boot=-1):
            print(rec.seq, rec.message)
"""
import os
import time
import warnings
from dataclasses import dataclass

from . import _binding, record as _record
from .boot import current_boot_id, format_boot_id, parse_boot_id
from .errors import (BootNotFound, InvalidRecord, NotARegion, PersistlogError, RegionMissing,
                     RegionTooSmall, RegionUnavailable, UnsupportedVersion)
from .region import default_region, keep_copy, open_mapping

#: How long a process waits for another one that is registering the same
#: boot before it finishes the entry itself (that one may have died), ns.
BOOT_SPIN_NS = 200_000_000


class RegionRecovered(UserWarning):
    """Warned when a region's header was damaged and its records were recovered by a scan."""


class RegionConverted(UserWarning):
    """Warned when a version 1 region was converted to version 2 for writing,
    after its bytes were kept in a copy (``ring.damaged_copy``)."""


@dataclass(frozen=True)
class Boot:
    """A boot that left records (or a boot table entry) in a region.

    Attributes:
        boot_id (str): the boot ID (UUID text).
        first_seq (int): seq of its first record still present (or, with no
            record left, the region's next seq when it registered); 0 if unknown.
        last_seq (int): seq of its last record present, 0 if none.
        records (int): records present.
        first_realtime_ns (int): CLOCK_REALTIME of its first record, or of
            its registration; 0 if unknown.
        last_realtime_ns (int): CLOCK_REALTIME of its last record, 0 if none.
        offset (int): position relative to the current boot, as ``-b``
            takes it: 0 current, -1 previous, ...
    """

    boot_id: str
    first_seq: int
    last_seq: int
    records: int
    first_realtime_ns: int
    last_realtime_ns: int
    offset: int


class Ring:
    """An open region.  Use ``persistlog.open()`` to get one.

    Attributes:
        path (str): the region's name.
        outcome (str): what opening found: "missing" (it was never
            formatted; a writable open formats it), "valid", "invalid"
            (the header was damaged; records were recovered by a scan), or
            "converted" (a version 1 region, kept in a copy and formatted
            as version 2 for writing).
        report (str): one line saying what opening found and did.
        damaged_copy (str | None): where the old bytes of a damaged or
            converted region were kept before they were rewritten.
        version (int): the region's format version (1 is read only).
        current_boot_id (str): this boot's ID.
        writable (bool): opened for appending.
    """

    #: append()'s, append_bytes()'s and persistlog.Handler's fast paths
    #: (persistlog._fast) once attached for appending; before, they decline
    #: every record, as they do after close().
    _append_fast = _append_fast_bytes = _emit_fast = staticmethod(_binding.decline)

    def __init__(self, mapping, outcome, report, damaged_copy=None):
        self._boot_raw = current_boot_id()
        self.current_boot_id = format_boot_id(self._boot_raw)
        self._map = mapping
        self._view = _binding.View(mapping.mm, mapping.size)
        self.path = mapping.target.name
        self.outcome = outcome
        self.report = report
        self.damaged_copy = damaged_copy
        self.writable = mapping.writable
        self._trusted = False
        self._data_size = (mapping.size - _binding.HEADER_SIZE) & ~7
        self._max_record = _binding.MAX_RECORD_CAP
        self.version = _binding.FORMAT_VERSION
        self._appender = None  # the view's append while open for appending

    # -- opening -----------------------------------------------------------

    def _attach(self):
        try:
            self._data_size, self._max_record = self._view.attach(
                self._boot_raw, write_combining=not self._map.is_file)
        except UnsupportedVersion:
            # A read-only-compatible feature this version does not know stops
            # writers only; a reader reads on (docs/FORMAT.md, the header's ro_compat field).
            if self.writable or self._view.geometry is None:
                raise
            self._data_size, self._max_record = self._view.geometry
        self._trusted = not (self._view.header_flags() & _binding.FLAG_REBUILT)
        if self.writable:
            self._view.register_boot(time.time_ns(), BOOT_SPIN_NS)
            self._appender = self._view.append
            after = None
            if self._map.is_block:
                self._map.mm.flush()
                self._appender = self._append_and_write_back
                after = self._map.mm.flush
            fast = self._view.fast_appender(after)
            self._append_fast, self._append_fast_bytes = fast.append, fast.append_bytes
            self._emit_fast = fast.emit

    def _append_and_write_back(self, payload):
        # A block device's mapping (/dev/pmem0) is page cache: without an
        # msync the kernel writes it back only after ~30 s, and a reset
        # loses everything newer.  One syscall per record is this backend's
        # price; the module and /dev/mem map the memory itself.
        seq = self._view.append(payload)
        self._map.mm.flush()
        return seq

    def close(self):
        """Unmap the region.  Records already appended stay in it."""
        if self._map is not None:
            self._appender = None
            self._view.release()
            self._map.close()
            self._map = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<persistlog.Ring {self.path!r} {self.outcome}>"

    # -- writing -----------------------------------------------------------

    def append(self, message, *, priority=_record.DEFAULT_PRIORITY, identifier=None, **fields):
        """Append one record.

        A record of the common types (message str or bytes; identifier str;
        field values str, bytes, int, float, bool, None) is encoded and
        appended by one C call (persistlog/_fast.c); any other goes through
        msgpack (persistlog/record.py).  The payload's bytes are the same.

        Args:
            message (str): the message.
            priority (int): syslog priority, 0 (emerg) to 7 (debug); RFC 5424
                section 6.2.1.  Default 6 (info).
            identifier (str | None): syslog identifier, usually the program name.
            **fields: more fields (values: str, bytes, int, float, bool,
                None, or lists and dicts of them).

        Returns:
            int: the record's sequence number.

        Raises:
            RecordTooLarge: the record exceeds the region's maximum record
                size (``stats()["max_record"]``); nothing was written.
            InvalidRecord: a bad priority, field name or value.
            PersistlogError: the ring is closed or read-only.
        """
        seq = self._append_fast(message, priority, identifier, fields)
        if seq is None:
            seq = self._append_generic(message, priority, identifier, fields)
        return seq

    def _append_fields(self, message, priority, identifier, fields):
        """``append()`` with the fields as a dict (or None), names unchecked
        (``persistlog.Handler``'s path); the same return value and errors."""
        seq = self._append_fast(message, priority, identifier, fields)
        if seq is None:
            seq = self._append_generic(message, priority, identifier, fields)
        return seq

    def _append_generic(self, message, priority, identifier, fields):
        # What the fast path declines (other types, bad values: msgpack's
        # path validates, raises, and encodes all it takes), and a ring that
        # is closed or read only.
        payload = _record.encode_named(message, priority, identifier, fields)
        if self._appender is None:
            raise PersistlogError(f"{self.path}: not open for appending")
        return self._appender(payload)

    def append_bytes(self, payload):
        """Append one record whose payload is already encoded.

        Args:
            payload (bytes): a msgpack map as ``persistlog.record.encode``
                makes (any bytes are stored; readers show other payloads
                as text).

        Returns:
            int: the record's sequence number.

        Raises:
            RecordTooLarge: nothing was written.
            PersistlogError: the ring is closed or read-only.
        """
        seq = self._append_fast_bytes(payload)
        if seq is None:
            if self._appender is None:
                raise PersistlogError(f"{self.path}: not open for appending")
            seq = self._appender(payload)
        return seq

    def append_as(self, pid, message, *, priority=_record.DEFAULT_PRIORITY, identifier=None,
                  **fields):
        """Append one record written for another process: as ``append``, but the
        record's pid and tid are *pid* (its main thread), not the caller's.

        For a writer that logs another process's output, as ``persistlog cat --
        COMMAND`` logs COMMAND's: journald names systemd-cat's COMMAND the same
        way, because systemd-cat execs it.  Readers trust a record's pid no more
        than its other bytes (docs/SECURITY.md).

        Args:
            pid (int): the process the record is for, 1 to 2**32 - 1.
            message, priority, identifier, **fields: as for ``append``.

        Returns:
            int: the record's sequence number.

        Raises:
            RecordTooLarge, InvalidRecord, PersistlogError: as ``append``;
            InvalidRecord also for a *pid* out of range.
        """
        if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**32:
            raise InvalidRecord(f"pid must be an integer from 1 to 2**32 - 1, not {pid!r}")
        payload = _record.encode_named(message, priority, identifier, fields)
        if self._appender is None:
            raise PersistlogError(f"{self.path}: not open for appending")
        seq = self._view.append_as(payload, pid)
        if self._map.is_block:
            self._map.mm.flush()
        return seq

    # -- reading -----------------------------------------------------------

    def _scan(self, since_seq=0):
        if self._map is None:
            raise PersistlogError(f"{self.path}: ring is closed")
        return self._view.scan(since_seq or 0)

    def _boot_list(self, scan):
        """Boots known from the records and from the boot table, oldest first."""
        by_id = {}
        for raw, _no, first_seq, rt in (self._view.boots() if self._trusted else ()):
            by_id[raw] = [first_seq, 0, 0, rt, 0]
        counts = {}
        for seq, idx, rt, *_ in _iter_meta(scan):
            raw = scan.boot_ids[idx]
            c = counts.get(raw)
            if c is None:
                counts[raw] = [seq, seq, 1, rt, rt]
            else:
                c[1], c[2], c[4] = seq, c[2] + 1, rt
        for raw, c in counts.items():
            by_id[raw] = c
        cur = self._boot_raw
        order = sorted(by_id, key=lambda raw: (by_id[raw][0], raw == cur))
        if cur in by_id:
            base = order.index(cur)
        else:
            base = len(order)
        return [Boot(format_boot_id(raw), *by_id[raw][:5], offset=i - base)
                for i, raw in enumerate(order)], base

    def boots(self):
        """Return the boots in the region, oldest first, as ``Boot`` objects.

        A boot is listed while a record of it or its boot table entry (the
        last 16 boots) remains.
        """
        return self._boot_list(self._scan())[0]

    def resolve_boot(self, boot, scan=None):
        """Turn a boot selector into a boot ID (str).

        Args:
            boot (int | str): 0 the current boot, -1 the previous, -2 ...;
                1 the oldest in the region, 2 the next ...; or a boot ID.

        Raises:
            BootNotFound: no such boot in the region.
            InvalidBootId: a string that is not a UUID.
        """
        if isinstance(boot, str):
            return format_boot_id(parse_boot_id(boot))
        if boot == 0:
            return self.current_boot_id
        boots, base = self._boot_list(scan or self._scan())
        index = boot - 1 if boot > 0 else base + boot
        if not 0 <= index < len(boots):
            raise BootNotFound(f"no boot {boot} in {self.path} ({len(boots)} boot(s) known)")
        return boots[index].boot_id

    def records(self, boot=None, since_seq=None):
        """Yield the region's valid records in seq order.

        Every record is copied out of the region and its checksum checked
        on the copy first; torn and damaged records are never yielded.

        Args:
            boot (None | int | str): None for all boots; 0 the current
                boot, -1 the previous, -2 ...; a positive N the Nth oldest;
                or a boot ID.
            since_seq (int | None): only records with a greater seq.

        Yields:
            Record

        Raises:
            BootNotFound: *boot* names no boot in the region.
        """
        scan = self._scan(since_seq)
        want = None
        if boot is not None:
            want = parse_boot_id(self.resolve_boot(boot, scan))
        return _decode(scan, want)

    def stats(self, boot=None):
        """Return figures about the region, or about one boot in it.

        The figures are defined in docs/FORMAT.md ("Figures").  With no
        writer active (after a crash, or once writers stop) they are exact
        and ``next_seq - 1 == records + torn + overwritten + lost``; while
        writers append they are a snapshot.

        Keys: path, outcome, version, capacity (bytes of data area), used
        (bytes held by valid records), max_record (bytes, header included),
        records, first_seq, last_seq (0 if none), torn (reserved and never
        committed, still in the region: at most one per writer killed or
        stopped mid-append, or being written now), overwritten (committed
        records evicted by design when their chunk was reused), lost (seqs
        taken and never committed whose reservation is gone too: at most
        one per writer killed mid-append), corrupt (records of the live
        window whose checksum fails: real damage), next_seq (the header's
        counter; None if the header was rebuilt), busy_drops (appends
        dropped because every chunk was held by a live writer), boots,
        trusted_header.  With *boot*, the figures are that boot's (its seqs
        run from its boot table entry's first_seq to the next boot's);
        overwritten and lost are None for a boot no longer in the boot
        table, and for version 1 regions overwritten is only known for the
        whole region and lost counts every missing seq.

        Args:
            boot: as for ``records()``; None for the whole region.

        Raises:
            BootNotFound: *boot* names no boot in the region.
        """
        scan = self._scan()
        boots, _ = self._boot_list(scan)
        counters = self._view.counters()
        seqs = scan.seqs()
        torn = scan.torn
        v2 = scan.version == _binding.FORMAT_VERSION
        taken_hi = max([seqs[-1] if seqs else 0] + torn)
        if self._trusted and scan.version == self.version:
            taken_hi = max(taken_hi, counters["next_seq"] - 1)
        picked = range(scan.n)
        if boot is None:
            if v2:
                overwritten = scan.overwritten
                lost = max(0, taken_hi - len(seqs) - len(torn) - overwritten)
            else:
                overwritten, lost, _ = _v1_figures(seqs, torn, None)
        else:
            want = parse_boot_id(self.resolve_boot(boot, scan))
            idx = scan.boot_ids.index(want) if want in scan.boot_ids else -1
            picked = [i for i, (_s, b, *_) in enumerate(_iter_meta(scan)) if b == idx]
            seqs = [seqs[i] for i in picked]
            table = self._view.boots() if self._trusted else []  # oldest first (plr_boots)
            entry = [i for i, b in enumerate(table) if b[0] == want]
            if v2 and entry:
                no, start = table[entry[0]][1], table[entry[0]][2]
                later = table[entry[0] + 1:]
                end = later[0][2] - 1 if later else taken_hi
                torn = [t for t in torn if start <= t <= end]
                overwritten = scan.evicted.get(no & 0xfff, 0)
                lost = max(0, (end - start + 1) - len(seqs) - len(torn) - overwritten)
            else:
                nxt = [b.first_seq for b in boots if seqs and b.first_seq > seqs[-1]]
                overwritten, lost, torn = _v1_figures(seqs, torn, min(nxt) - 1 if nxt else None)
                overwritten = None
        st = {
            "path": self.path,
            "outcome": self.outcome,
            "version": scan.version,
            "capacity": self._data_size,
            "used": sum(scan.payload_len(i) for i in picked),
            "max_record": self._max_record,
            "records": len(seqs),
            "first_seq": seqs[0] if seqs else 0,
            "last_seq": seqs[-1] if seqs else 0,
            "lost": lost,
            "torn": len(torn),
            "overwritten": overwritten,
            "corrupt": scan.corrupt,
            "next_seq": counters["next_seq"] if self._trusted else None,
            "busy_drops": counters["busy_drops"] if self._trusted and v2 else 0,
            "boots": len(boots),
            "trusted_header": self._trusted,
        }
        if boot is not None:
            st["boot_id"] = format_boot_id(want)
        return st

    def follow(self, boot=None, since_seq=0, interval=0.2, settle=1.0):
        """Yield records as they are appended, forever (like ``tail -f``).

        A record is yielded only once every smaller seq has been yielded,
        found torn, or waited for *settle* seconds (a writer that reserved
        it may have died), so records come out in seq order.

        Every *interval* it reads the header's counters (head, next_seq,
        boot word: one cache line) and scans the region only when they
        moved, or while a seq that was taken is not yet shown (a writer
        between reserve and commit): at every interval for *settle*
        seconds, then once per *settle*.  A scan after *since_seq* checks
        the checksums of the newer records only.  With a header that was
        rebuilt (untrusted counters) it scans at every interval.

        Args:
            boot: as for ``records()``, fixed when following starts.
            since_seq (int): start after this seq.
            interval (float): seconds between looks at the counters.
            settle (float): seconds to wait for a missing seq.
        """
        want = None if boot is None else parse_boot_id(self.resolve_boot(boot))
        want = None if want is None else format_boot_id(want)
        last = since_seq
        gap_since = None
        hint_then = None     # the counters at the last scan
        scanned = 0.0        # when it ran (time.monotonic())
        pending_since = None  # since when a taken seq is unshown
        while True:
            hint = self._change_hint()
            now = time.monotonic()
            if (hint is None or hint != hint_then or pending_since is not None
                    and (now - pending_since < settle or now - scanned >= settle)):
                hint_then, scanned = hint, now
                scan = self._scan(last)
                torn = set(scan.torn)
                for rec in _decode(scan, None):
                    expected = last + 1
                    while expected in torn:
                        expected += 1
                    if last and rec.seq > expected:
                        # a hole: a writer may still be filling it in
                        gap_since = gap_since or time.monotonic()
                        if time.monotonic() - gap_since < settle:
                            break
                    gap_since = None
                    last = rec.seq
                    if want is None or rec.boot_id == want:
                        yield rec
                if hint is not None and last >= hint[1] - 1:
                    pending_since = None
                elif pending_since is None:
                    pending_since = now
            time.sleep(interval)

    def _change_hint(self):
        """The counters that move with every reserve and chunk handover (head,
        next_seq, boot word), or None when the header is not trusted."""
        if not self._trusted or self._map is None:
            return None
        c = self._view.counters()
        return c["head"], c["next_seq"], c["boot_word"]


def _decode(scan, want):
    """Yield the Records of *scan*, only those of boot *want* (16 bytes) if given."""
    if want is not None:
        if want not in scan.boot_ids:
            return
        want = scan.boot_ids.index(want)
    ids = [format_boot_id(b) for b in scan.boot_ids]
    for seq, idx, rt, mono, pid, tid, payload, _pos in scan.entries():
        if want is not None and idx != want:
            continue
        prio, ident, msg, fields = _record.decode(payload)
        yield _record.Record(seq, ids[idx], rt, mono, pid, tid, prio, ident, msg, fields)


def _v1_figures(seqs, torn, end):
    """(overwritten, lost, torn) as a version 1 region defines them: from the
    gaps between the seqs present (*end*: the last seq of a boot's range)."""
    if not seqs:
        return 0, 0, []
    lo, hi = seqs[0], seqs[-1]
    torn = [t for t in torn if lo <= t <= (end if end is not None else max([hi] + torn))]
    hi_t = max([hi] + torn)
    return lo - 1, (hi_t - lo + 1) - len(seqs) - len(torn), torn


def _iter_meta(scan):
    e = scan._s.entries
    for i in range(scan.n):
        x = e[i]
        yield x.seq, x.boot_idx, x.realtime_ns


def open(region=None, *, size=None, create=True, readonly=False, force=False):  # noqa: A001
    """Open (and if need be create and format) a region.

    Args:
        region (str | os.PathLike | None): the region's name; None for the
            default (``$PERSISTLOG_REGION``, else ``/dev/persistlog0`` if it
            exists, else ``/var/lib/persistlog/ring`` for root and
            ``~/.local/state/persistlog/ring`` for others).
        size (int | None): bytes of a new file region (default 8 MiB).
        create (bool): create and format a missing region.
        readonly (bool): map read-only: read records, never change a byte
            (no formatting, no boot registration, no header rebuild).
        force (bool): format a region that holds something else.

    Returns:
        Ring: usable as a context manager.  ``ring.outcome`` says whether
        the region was missing, valid, or invalid (damaged header: its
        records were recovered by a scan, the old bytes kept in
        ``ring.damaged_copy`` and the header rebuilt; a RegionRecovered
        warning is issued).

    Raises:
        RegionMissing: no region there and *create* is false (or *readonly*).
        RegionUnavailable: the path cannot be opened or mapped.
        RegionTooSmall: smaller than 64 KiB.
        NotARegion: a file holding something else (use *force* to format).
        UnsupportedVersion: written by a newer persistlog.
        InvalidBootId: ``$PERSISTLOG_BOOT_ID`` is not a UUID.
    """
    _check_size(size)
    mapping = open_mapping(region if region is not None else default_region(),
                           size=size, create=create and not readonly, writable=not readonly)
    try:
        mapping.lock(exclusive=not readonly)
        try:
            return _open_locked(mapping, create and not readonly, force)
        finally:
            if mapping.fd is not None:
                mapping.unlock()
    except BaseException:
        mapping.close()
        raise


def _open_locked(mapping, create, force):
    name = mapping.target.name
    ring = Ring(mapping, "valid", f"{name}: valid region")
    try:
        outcome, reason, version = ring._view.check()
        if outcome == _binding.NEWER:
            raise UnsupportedVersion(f"{name}: written by a newer persistlog format; "
                                     f"this one reads versions 1 and {_binding.FORMAT_VERSION}")
        if outcome == _binding.VALID and version == _binding.FORMAT_VERSION:
            ring._attach()
            return ring
        if outcome == _binding.VALID:
            if create:
                return _convert(ring, f"{name}: version {version} region")
            ring.version = version
            ring._trusted = True
            ring.report = f"{name}: valid version {version} region (read only until converted)"
            return ring
        if outcome == _binding.FOREIGN and force and create:
            _format(ring, 1, f"{name}: formatted over foreign content (forced)")
            ring.outcome = "missing"
            return ring

        scan = ring._scan()
        if outcome == _binding.FOREIGN and not scan.n:
            if mapping.is_file:
                raise NotARegion(f"{name} holds something that is not a persistlog region; "
                                 "format it with --force to overwrite it")
            outcome = _binding.MISSING  # a device after a cold boot holds noise
        if outcome == _binding.MISSING and scan.n:
            # a zeroed header page over records: recover them; formatting would erase them
            outcome, reason = _binding.INVALID, "header page all zero"
        if outcome == _binding.MISSING:
            ring.outcome = "missing"
            if not create:
                if mapping.writable:
                    raise RegionMissing(f"{name}: region was never formatted")
                ring.report = f"{name}: region was never formatted (no records)"
                return ring
            _format(ring, 1, f"{name}: formatted a new region")
            return ring

        why = reason or "no header magic"
        ring.outcome = "invalid"
        ring.version = scan.version
        ring.report = (f"{name}: damaged header ({why}); {scan.n} record(s) recovered "
                       "by scanning")
        if create:
            ring.damaged_copy = keep_copy(mapping)
            if scan.version == _binding.FORMAT_VERSION:
                ring._view.rebuild(scan)
                ring.report += f"; old bytes kept in {ring.damaged_copy}; header rebuilt"
                ring._attach()
            else:
                _format(ring, _next_seq_after(scan, 0), ring.report)
                ring.outcome = "invalid"
                ring.report += (f"; old bytes kept in {ring.damaged_copy}; a version 1 "
                                "region: formatted as version 2")
        warnings.warn(ring.report, RegionRecovered, stacklevel=3)
        return ring
    except BaseException:
        ring._view.release()
        raise


def _next_seq_after(scan, next_seq):
    """The first seq of a region that replaces one holding *scan*: past every
    seq seen and the old counter, so seqs stay unique across the change."""
    seqs = scan.seqs()
    return max([next_seq, 1] + [s + 1 for s in seqs[-1:] + scan.torn[-1:]])


def _convert(ring, what):
    """Keep a copy of a version 1 region, then format it as version 2 with
    seqs continuing; the copy is a region image the CLI reads (docs/FORMAT.md,
    "Version policy")."""
    scan = ring._scan()
    next_seq = ring._view.counters()["next_seq"]
    ring.damaged_copy = keep_copy(ring._map, kind="v1")
    _format(ring, _next_seq_after(scan, next_seq),
            f"{what} with {scan.n} record(s) kept in {ring.damaged_copy}; "
            f"converted to version {_binding.FORMAT_VERSION}")
    ring.outcome = "converted"
    warnings.warn(ring.report, RegionConverted, stacklevel=4)
    return ring


def _check_size(size):
    if size is not None and size < _binding.MIN_REGION_SIZE:
        raise RegionTooSmall(f"a region of {size} bytes is smaller than the minimum, "
                             f"{_binding.MIN_REGION_SIZE} bytes")


def _format(ring, first_seq, report):
    ring._view.format(first_seq, time.time_ns())
    ring.report = report
    ring._attach()


def format_region(region=None, *, size=None, force=False):
    """Format a region: a fresh header, an empty data area, seq from 1.

    Args:
        region (str | None): region name (default as for ``open()``).
        size (int | None): bytes for a file region: a new file is created
            at this size (default 8 MiB); an existing one is resized.
        force (bool): needed when the region already holds anything (a
            valid or damaged region, or foreign bytes): formatting
            destroys its records.

    Returns:
        str: a one-line report.

    Raises:
        PersistlogError: the region holds something and *force* is false,
            or any error ``open()`` raises.
    """
    _check_size(size)
    target = region if region is not None else default_region()
    mapping = open_mapping(target, size=size, create=True, writable=True)
    try:
        mapping.lock(exclusive=True)
        view = _binding.View(mapping.mm, mapping.size)
        try:
            outcome, _, _ = view.check()
        except PersistlogError:
            outcome = None
        if outcome != _binding.MISSING and not force:
            what = {_binding.VALID: "a valid region", _binding.INVALID: "a damaged region",
                    _binding.FOREIGN: "foreign bytes", _binding.NEWER: "a newer-format region",
                    None: "something"}[outcome]
            view.release()
            raise PersistlogError(f"{mapping.target.name} holds {what}; "
                                  "use --force to format it (its records are lost)")
        if size and mapping.is_file and size != mapping.size:
            view.release()
            mapping.close()
            try:
                os.truncate(mapping.target.path, size)
            except OSError as e:
                raise RegionUnavailable(f"cannot resize {target}: {e.strerror}") from None
            mapping = open_mapping(target, size=size, create=True, writable=True)
            mapping.lock(exclusive=True)
            view = _binding.View(mapping.mm, mapping.size)
        try:
            view.format(1, time.time_ns())
        finally:
            view.release()
        return f"{mapping.target.name}: formatted, {mapping.size} bytes"
    finally:
        mapping.close()
