"""The mirror: copies the local journal's entries into the ring as journald writes them.

Run as ``persistlog mirror`` (systemd/persistlog-mirror.service) or ``python -m
persistlog.mirror``; docs/MIRROR.md says why and how to size the region.

journald syncs its files every SyncIntervalSec= (5 min by default): a crash loses the entries the
kernel had not yet written back. The ring survives the crash, so the mirror keeps the journal's
tail there, and the next boot gives journald back what its disk lacks (``persistlog.rescue``).

Records
    One record per journal entry: the entry's MESSAGE, PRIORITY and SYSLOG_IDENTIFIER as the
    record's own, and as fields ``_PID``, ``_COMM``, ``_SYSTEMD_UNIT``, ``_BOOT_ID``, the
    entry's ``__REALTIME_TIMESTAMP`` and ``__MONOTONIC_TIMESTAMP`` (microseconds, ints),
    ``__SEQNUM`` (int) and ``__SEQNUM_ID`` (journald's sequence number and the ID of its
    sequence, read from the cursor: systemd 252 has no sd_journal_get_seqnum), ``__CURSOR``,
    the fields the configuration keeps (``mirror_fields``), and ``PERSISTLOG_MIRROR=journal``
    (``MIRROR_FIELD``): journald has the entry already, so such a record is never drained back
    as an ordinary one. Field values are text when they are UTF-8, bytes otherwise, a list
    when the entry has the field more than once. What does not fit a record's own fields
    unchanged (no MESSAGE, a binary one, a PRIORITY that is not 0-7) is kept as it was in the
    field ``PERSISTLOG_RAW``, a map of name to bytes, or to None for a field the entry lacks.
    An entry too large for one record is kept with its MESSAGE cut to fit, its fields of more
    than 256 bytes dropped, and ``PERSISTLOG_MIRROR_TRUNCATED`` = the MESSAGE's length in bytes.

What is not mirrored
    persistlog's own entries (any ``PERSISTLOG_*`` field: the drain, its summary, forwarded
    records; SYSLOG_IDENTIFIER ``persistlog``: the daemon's messages), the mirror's own
    (its PID), and what the filters leave out (``mirror_max_priority``, ``mirror_units``,
    ``mirror_exclude_units``).

Exactly once across restarts
    Entries are appended in journal order, so the last mirrored record in the ring names the
    last entry mirrored. The mirror also saves the cursor of the last entry it *read*
    (mirrored or filtered) in ``<state-dir>/mirror-<region, quoted>.json`` (written
    atomically: write, fsync, rename, fsync the directory), at most every
    ``mirror_save_interval`` seconds. On start it resumes after the later of the two, so a
    mirror SIGKILLed at any instant mirrors no entry twice. Neither is used when it belongs to
    another boot: the mirror then starts at the journal's end (``mirror_start = "tail"``) or at
    this boot's first entry (``"boot"``).

Gaps
    journald numbers the entries it writes (``__SEQNUM``, one sequence per ``__SEQNUM_ID``).
    When the entry read next skips numbers of the same sequence (the journal was rotated and
    vacuumed past the mirror's cursor while it was down, or while it lagged), the mirror says
    so on stderr and appends one record of its own (identifier ``persistlog-mirror``, priority
    warning, ``PERSISTLOG_MIRROR_GAP`` = entries missed, ``PERSISTLOG_MIRROR_GAP_FIRST`` /
    ``_LAST`` = their seqnums, ``PERSISTLOG_MIRROR_SEQNUM_ID``), which is drained as an ordinary
    record.

Waking up
    journald tells readers through inotify, but coalesces those notifications over 250 ms
    (its POST_CHANGE_TIMER_INTERVAL_USEC); the mirror also looks every ``mirror_poll`` seconds,
    which bounds its latency: an entry journald wrote is in the ring that much later at most
    (bench/mirror.py measures it).

systemd: READY=1 once the journal is positioned, STATUS= with the counts, WATCHDOG=1, and
STOPPING=1 on SIGTERM (or SIGINT), after which the cursor is saved and the mirror exits 0.

Exit status: 0 success (or stopped by SIGTERM); 1 other persistlog error; 2 bad usage;
3 bad configuration; 4 the region cannot be opened; 5 the journal cannot be read; 6 the state
directory cannot be written; 7 another mirror is running on the same region.
"""

import argparse
import fnmatch
import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import quote

from . import config as _config, record as _record, statefile
from .config import ConfigError
from .statefile import StateError
from .errors import (NotARegion, PersistlogError, RecordTooLarge, RegionTooSmall,
                     RegionUnavailable, UnsupportedVersion)

(EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CONFIG, EXIT_REGION, EXIT_JOURNAL, EXIT_STATE,
 EXIT_BUSY) = range(8)

#: The field every mirrored record carries, and its value (the contract with the drain:
#: a record carrying it is never sent back to journald as an ordinary record).
MIRROR_FIELD = "PERSISTLOG_MIRROR"
MIRROR_VALUE = "journal"

#: Where a record keeps MESSAGE/PRIORITY/SYSLOG_IDENTIFIER values its own fields cannot hold.
RAW_FIELD = "PERSISTLOG_RAW"

#: Set (to the original MESSAGE's length in bytes) on a record whose MESSAGE was cut to fit.
TRUNCATED_FIELD = "PERSISTLOG_MIRROR_TRUNCATED"

#: Fields kept from every entry, besides MESSAGE, PRIORITY and SYSLOG_IDENTIFIER.
ALWAYS_KEPT = ("_PID", "_COMM", "_SYSTEMD_UNIT", "_BOOT_ID")

#: SYSLOG_IDENTIFIER of the mirror's own records (gap reports), and of persistlog's messages
#: in the journal (the daemon's stderr), which are not mirrored.
IDENTIFIER = "persistlog-mirror"
PERSISTLOG_IDENTIFIER = b"persistlog"

_OWN = ("MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER")
_PRIORITIES = {str(p).encode(): p for p in range(8)}
_INT_FIELDS = frozenset(("_PID", "_UID", "_GID", "SYSLOG_FACILITY", "ERRNO", "SYSLOG_PID",
                         "_AUDIT_SESSION", "_AUDIT_LOGINUID", "_SOURCE_REALTIME_TIMESTAMP",
                         "_SOURCE_MONOTONIC_TIMESTAMP", "CODE_LINE", "TID", "_TID"))
_POSITION_CHECK = 1024  # entries between two looks at the clock for saves and the watchdog
_RECORD_HEADER = 80  # bytes before a record's payload (docs/FORMAT.md, "Records")
_CUT_FIELD_MAX = 256  # bytes: longer fields are dropped from an entry that must be cut


class MirrorBusy(PersistlogError):
    """Another mirror is already running on the same region."""


class JournalError(PersistlogError):
    """The journal cannot be opened or read."""


# -- cursors --------------------------------------------------------------------------------

def parse_cursor(cursor):
    """The parts of a journal cursor.

    A cursor is ``s=SEQNUM_ID;i=SEQNUM;b=BOOT_ID;m=MONOTONIC;t=REALTIME;x=XOR_HASH``, numbers
    in hexadecimal (systemd's sd_journal_get_cursor(); its format is stable since systemd 187,
    though documented as opaque).

    Args:
        cursor (str): a cursor.

    Returns:
        dict: ``seqnum_id`` (str, 32 hex digits), ``seqnum`` (int), ``boot_id`` (str, 32 hex
        digits), ``monotonic_usec`` (int, µs of CLOCK_MONOTONIC since that boot),
        ``realtime_usec`` (int, µs of CLOCK_REALTIME); a part the cursor lacks is None.

    Raises:
        ValueError: not a cursor of this form.
    """
    parts = dict(p.split("=", 1) for p in cursor.split(";") if "=" in p)
    if "s" not in parts or "i" not in parts:
        raise ValueError(f"not a journal cursor: {cursor!r}")

    def num(key):
        return int(parts[key], 16) if key in parts else None

    return {"seqnum_id": parts["s"], "seqnum": num("i"), "boot_id": parts.get("b"),
            "monotonic_usec": num("m"), "realtime_usec": num("t")}


def _seqnum(cursor):
    """(seqnum ID, seqnum) of ``cursor``; fast path of ``parse_cursor`` for the hot loop."""
    if cursor.startswith("s=") and cursor[34:37] == ";i=":
        end = cursor.find(";", 37)
        return cursor[2:34], int(cursor[37:end if end > 0 else None], 16)
    p = parse_cursor(cursor)
    return p["seqnum_id"], p["seqnum"]


def later_cursor(a, b):
    """The cursor of the later entry of ``a`` and ``b`` (either may be None): by seqnum within
    one sequence, by realtime across sequences. Returns None if both are None."""
    if a is None or b is None:
        return a or b
    pa, pb = parse_cursor(a), parse_cursor(b)
    if pa["seqnum_id"] == pb["seqnum_id"]:
        return a if pa["seqnum"] >= pb["seqnum"] else b
    return a if (pa["realtime_usec"] or 0) >= (pb["realtime_usec"] or 0) else b


def kernel_boot_id():
    """This boot's ID as journald writes it (32 hex digits), from the kernel: journal entries
    carry the kernel's boot ID even when a test overrides the ring's ($PERSISTLOG_BOOT_ID)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip().replace("-", "")
    except OSError as e:
        raise PersistlogError(f"cannot read this boot's ID: {e.strerror}") from None


# -- entries to records ------------------------------------------------------------------------

def _text(v):
    """A journal value (bytes) as text when it is UTF-8, else as the bytes."""
    try:
        return v.decode()
    except UnicodeDecodeError:
        return v


def _small(v):
    """Whether a record field's value is at most ``_CUT_FIELD_MAX`` bytes (about)."""
    if isinstance(v, (str, bytes)):
        return len(v) <= _CUT_FIELD_MAX
    if isinstance(v, list):
        return sum(len(x) if isinstance(x, (str, bytes)) else 8 for x in v) <= _CUT_FIELD_MAX
    return True


def _value(name, v):
    """A journal field's value(s) as a record keeps them; see the module docstring."""
    if isinstance(v, list):
        return [_value(name, x) for x in v]
    if name in _INT_FIELDS and v.isdigit() and len(v) < 19 and (v[:1] != b"0" or v == b"0"):
        return int(v)
    return _text(v)


class Filter:
    """Which entries are mirrored (the ``mirror_*`` settings; docs/MIRROR.md).

    Args:
        max_priority (int): mirror entries of this syslog priority (0-7) or more urgent; an
            entry without a valid PRIORITY counts as 6 (info).
        units (Iterable[str]): shell patterns (fnmatch) of ``_SYSTEMD_UNIT``; when any are
            given, only entries whose unit matches one are mirrored. The kernel's entries
            (``_TRANSPORT=kernel``, no unit) go by the name ``kernel``.
        exclude_units (Iterable[str]): patterns of units never mirrored.
    """

    def __init__(self, max_priority=7, units=(), exclude_units=()):
        self.max_priority = max_priority
        self.units = tuple(units)
        self.exclude_units = tuple(exclude_units)
        self.everything = max_priority >= 7 and not self.units and not self.exclude_units

    @classmethod
    def from_config(cls, cfg):
        """The filter of a ``persistlog.config.Config``."""
        return cls(cfg.mirror_max_priority, cfg.mirror_units, cfg.mirror_exclude_units)

    @staticmethod
    def unit_of(fields):
        """The unit name the patterns see for an entry (``dict`` of name to bytes)."""
        unit = fields.get("_SYSTEMD_UNIT")
        if isinstance(unit, bytes):
            return unit.decode("utf-8", "replace")
        if unit is None and fields.get("_TRANSPORT") == b"kernel":
            return "kernel"
        return ""

    def keep(self, fields):
        """Whether the entry with ``fields`` (name to bytes, as sd_journal gives them) passes."""
        if self.everything:
            return True
        if self.max_priority < 7:
            if _PRIORITIES.get(fields.get("PRIORITY"), 6) > self.max_priority:
                return False
        if self.units or self.exclude_units:
            unit = self.unit_of(fields)
            if self.units and not any(fnmatch.fnmatchcase(unit, p) for p in self.units):
                return False
            if any(fnmatch.fnmatchcase(unit, p) for p in self.exclude_units):
                return False
        return True


def is_own(fields, pid):
    """Whether an entry is persistlog's own: any PERSISTLOG_* field (the drain, its summary,
    forwarded records), SYSLOG_IDENTIFIER ``persistlog`` (the daemon's messages), or ``_PID``
    ``pid`` (the mirror's messages). ``fields``: name to bytes; ``pid``: bytes of the PID."""
    if fields.get("_PID") == pid or fields.get("SYSLOG_IDENTIFIER") == PERSISTLOG_IDENTIFIER:
        return True
    for name in fields:
        if name.startswith("PERSISTLOG_"):
            return True
    return False


def to_record(fields, realtime_usec, monotonic_usec, cursor, keep=()):
    """The record of one journal entry, as ``Ring.append`` arguments.

    Args:
        fields (dict): the entry's fields, name to bytes (or a list of bytes), as
            sd_journal_enumerate_data gives them (``Reader._get_all()``).
        realtime_usec (int): the entry's ``__REALTIME_TIMESTAMP``, µs of CLOCK_REALTIME.
        monotonic_usec (int): its ``__MONOTONIC_TIMESTAMP``, µs of CLOCK_MONOTONIC of its boot.
        cursor (str): its cursor (``__CURSOR``); the seqnum and its ID are read from it.
        keep (Iterable[str] | "*"): more fields to keep; ``"*"`` keeps every field.

    Returns:
        tuple: (message (str), priority (int 0-7), identifier (str | None), fields (dict)).

    Raises:
        ValueError: ``cursor`` is not a journal cursor.
    """
    raw = None
    message = fields.get("MESSAGE")
    if message.__class__ is bytes:
        try:
            message = message.decode()
        except UnicodeDecodeError:
            raw = {"MESSAGE": message}
            message = message.decode("utf-8", "replace")
    else:  # absent, or more than once
        raw = {"MESSAGE": message}
        message = "" if message is None else bytes(message[0]).decode("utf-8", "replace")
    prio = fields.get("PRIORITY")
    priority = _PRIORITIES.get(prio) if prio.__class__ is bytes else None
    if priority is None:
        raw = raw or {}
        raw["PRIORITY"] = prio
        priority = 6
    ident = fields.get("SYSLOG_IDENTIFIER")
    if ident.__class__ is bytes:
        try:
            ident = ident.decode()
        except UnicodeDecodeError:
            raw = raw or {}
            raw["SYSLOG_IDENTIFIER"] = ident
            ident = ident.decode("utf-8", "replace")
    elif ident is not None:
        raw = raw or {}
        raw["SYSLOG_IDENTIFIER"] = ident
        ident = bytes(ident[0]).decode("utf-8", "replace")
    seqnum_id, seqnum = _seqnum(cursor)
    out = {}
    for name in ALWAYS_KEPT:
        v = fields.get(name)
        if v is not None:
            out[name] = _value(name, v)
    out["__REALTIME_TIMESTAMP"] = realtime_usec
    out["__MONOTONIC_TIMESTAMP"] = monotonic_usec
    out["__SEQNUM"] = seqnum
    out["__SEQNUM_ID"] = seqnum_id
    out["__CURSOR"] = cursor
    for name in (fields if keep == "*" else keep):
        if name not in out and name not in _OWN:
            v = fields.get(name)
            if v is not None:
                out[name] = _value(name, v)
    if raw is not None:
        out[RAW_FIELD] = raw
    out[MIRROR_FIELD] = MIRROR_VALUE
    return message, priority, ident, out


# -- the cursor file -------------------------------------------------------------------------

def state_path(state_dir, region):
    """The mirror's cursor file of ``region`` (its absolute path, quoted) under ``state_dir``."""
    return Path(state_dir) / f"mirror-{quote(str(region), safe='')}.json"


class State:
    """The mirror's saved position: ``cursor`` (str | None), the last journal entry read, and
    ``ring_seq`` (int), the ring seq of the last record it appended (where to start looking for
    it). Holds an exclusive lock (``<file>.lock``) while open: one mirror per region."""

    def __init__(self, state_dir, region):
        self.path = state_path(state_dir, region)
        self._lock = statefile.lock(self.path, lambda lock: MirrorBusy(
            f"another persistlog mirror is running on {region} (it holds {lock})"))
        data = statefile.load(self.path, "the mirror's cursor")
        try:
            self.cursor = data.get("cursor") if data is not None else None
            self.ring_seq = int(data.get("ring_seq", 0)) if data is not None else 0
        except (ValueError, AttributeError, TypeError) as e:
            raise StateError(f"cannot read the mirror's cursor {self.path}: {e}") from None
        self._saved = (self.cursor, self.ring_seq)

    def save(self):
        """Write the position atomically and durably, if it changed since the last save."""
        if (self.cursor, self.ring_seq) == self._saved:
            return
        statefile.save(self.path, {"cursor": self.cursor, "ring_seq": self.ring_seq},
                       "the mirror's cursor")
        self._saved = (self.cursor, self.ring_seq)

    def close(self):
        """Release the lock."""
        self._lock.close()


# -- the mirror ------------------------------------------------------------------------------

def open_journal(directory=None):
    """A ``systemd.journal.Reader`` over ``directory`` (str), or over the local journal
    (system and user journals, as journalctl reads them) when None.

    Raises:
        JournalError: the journal cannot be opened.
    """
    from systemd import journal
    try:
        return journal.Reader(path=directory) if directory else journal.Reader()
    except OSError as e:
        raise JournalError(f"cannot open the journal{' in ' + directory if directory else ''}: "
                           f"{e.strerror or e}") from None


class Mirror:
    """Copies journal entries into an open, writable ring; see the module docstring.

    Args:
        ring (persistlog.Ring): the ring, open for appending.
        cfg (persistlog.config.Config): settings (``state_dir`` and the ``mirror_*`` ones).
        reader (systemd.journal.Reader | None): the journal (default: ``open_journal``).
        notifier: a ``persistlog.daemon.Notifier`` (or None: no sd_notify).
        say (callable): takes one line for stderr.

    Attributes:
        mirrored, filtered, own, too_large (int): entries appended, left out by the filters,
            left out as persistlog's own, and dropped as too large even when cut.
        gaps (int): entries journald numbered that the mirror never saw (see "Gaps").
    """

    def __init__(self, ring, cfg, reader=None, notifier=None, say=None):
        self.ring = ring
        self.cfg = cfg
        self.state = State(cfg.state_dir, os.path.abspath(ring.path))
        try:
            self.reader = reader if reader is not None else open_journal(cfg.mirror_directory)
        except BaseException:
            self.state.close()
            raise
        self.filter = Filter.from_config(cfg)
        self.keep = "*" if "*" in cfg.mirror_fields else tuple(cfg.mirror_fields)
        self.notify = notifier
        self.say = say or (lambda line: print(f"persistlog mirror: {line}", file=sys.stderr,
                                              flush=True))
        self.pid = str(os.getpid()).encode()
        self.stopping = False
        self.mirrored = self.filtered = self.own = self.too_large = self.gaps = 0
        self._last = None  # (seqnum ID, seqnum) of the last entry read
        self._next_save = 0.0

    def stop(self, *_):
        """Signal handler: finish the entry in hand, save the cursor, return from ``run``."""
        self.stopping = True

    def close(self):
        """Save the cursor and release the lock (the ring and reader stay open)."""
        try:
            self.state.save()
        finally:
            self.state.close()

    # -- where to start

    def last_in_ring(self):
        """(cursor, ring seq) of the last mirrored record of this boot in the ring, or
        (None, 0). Looks after the saved ring seq first, then through the whole boot."""
        saved = self.state.ring_seq
        for since in ((saved - 1,) if saved > 1 else ()) + (0,):  # since_seq is exclusive
            found = (None, 0)
            for rec in self.ring.records(boot=0, since_seq=since):
                f = rec.fields
                if f.get(MIRROR_FIELD) == MIRROR_VALUE and isinstance(f.get("__CURSOR"), str):
                    found = (f["__CURSOR"], rec.seq)
            if found[0] is not None:
                return found
        return None, 0

    def position(self):
        """Put the reader where mirroring resumes (see the module docstring). Returns a
        one-line description."""
        r = self.reader
        ring_cursor, ring_seq = self.last_in_ring()
        if ring_seq > self.state.ring_seq:
            self.state.ring_seq = ring_seq
        cursor = later_cursor(self.state.cursor, ring_cursor)
        boot = kernel_boot_id()
        if cursor is not None and parse_cursor(cursor)["boot_id"] == boot:
            r.seek_cursor(cursor)
            self._last = _seqnum(cursor)
            self.state.cursor = cursor
            if r._next() and not r.test_cursor(cursor):
                # that entry is gone (rotated and vacuumed): what stands here is the next one
                self._handle()
            return f"resuming after {cursor}"
        if cursor is not None:
            self.say("the saved cursor is of an earlier boot: starting anew")
        if self.cfg.mirror_start == "boot":
            r.seek_monotonic(0, boot)
            return f"from the start of boot {boot}"
        r.seek_tail()
        if r._previous():  # the last entry now: mirroring starts after it
            c = r._get_cursor()
            self._last = _seqnum(c)
            self.state.cursor = c
        return "from the journal's end"

    # -- mirroring

    def _handle(self):
        """Mirror the entry the reader stands on, if it passes."""
        r = self.reader
        cursor = r._get_cursor()
        key = _seqnum(cursor)
        last = self._last
        if last is not None and key[0] == last[0]:
            if key[1] == last[1]:
                return  # the entry read last, met again (where a restart resumes): never twice
            if key[1] > last[1] + 1:
                self._gap(key[0], last[1] + 1, key[1] - 1)
        fields = r._get_all()
        if is_own(fields, self.pid):
            self.own += 1
        elif not self.filter.keep(fields):
            self.filtered += 1
        else:
            message, priority, ident, rec = to_record(fields, r._get_realtime(),
                                                      r._get_monotonic()[0], cursor, self.keep)
            try:
                seq = self.ring.append(message, priority=priority, identifier=ident, **rec)
            except RecordTooLarge:
                seq = self._append_cut(message, priority, ident, rec)
            if seq is not None:
                self.state.ring_seq = seq
                self.mirrored += 1
        # only now: an entry whose append failed is not passed over by the next start
        self._last = key
        self.state.cursor = cursor

    def _append_cut(self, message, priority, ident, rec):
        """Append a record that did not fit: its MESSAGE cut to what the record can hold,
        fields of more than ``_CUT_FIELD_MAX`` bytes dropped (not those always kept)."""
        raw = dict(rec.get(RAW_FIELD) or {})
        original = raw.pop("MESSAGE", None)
        length = len(original) if isinstance(original, bytes) else len(message.encode())
        fields = {k: v for k, v in rec.items()
                  if k in ALWAYS_KEPT or k.startswith("__") or k == MIRROR_FIELD
                  or (k != RAW_FIELD and _small(v))}
        if raw:
            fields[RAW_FIELD] = raw
        fields[TRUNCATED_FIELD] = length
        # the payload without its message, and 5 bytes for the message's msgpack header
        rest = len(_record.encode("", priority, ident, fields)) + 5
        room = self.ring.stats()["max_record"] - _RECORD_HEADER - rest
        cut = message.encode()[:max(0, room)].decode("utf-8", "ignore")
        try:
            return self.ring.append(cut, priority=priority, identifier=ident, **fields)
        except RecordTooLarge:
            self.too_large += 1
            self.say(f"an entry of {length} bytes does not fit a record even cut: dropped "
                     f"({fields.get('__CURSOR')})")
            return None

    def _gap(self, seqnum_id, first, last):
        n = last - first + 1
        self.gaps += n
        self.say(f"{n} journal entries (seqnum {first}-{last} of {seqnum_id}) were gone from "
                 "the journal before they could be mirrored")
        try:
            self.ring.append(f"persistlog mirror: {n} journal entries were gone before they "
                             f"could be mirrored (seqnum {first}-{last})", priority=4,
                             identifier=IDENTIFIER, PERSISTLOG_MIRROR_GAP=n,
                             PERSISTLOG_MIRROR_GAP_FIRST=first, PERSISTLOG_MIRROR_GAP_LAST=last,
                             PERSISTLOG_MIRROR_SEQNUM_ID=seqnum_id)
        except PersistlogError as e:
            self.say(f"cannot record the gap in the ring: {e}")

    def step(self):
        """Mirror every entry available now; returns how many entries were read."""
        r = self.reader
        n = 0
        while not self.stopping and r._next():
            self._handle()
            n += 1
            if n % _POSITION_CHECK == 0:
                self._tick()
        return n

    def _tick(self, force=False):
        now = time.monotonic()
        if force or now >= self._next_save:
            self._next_save = now + self.cfg.mirror_save_interval
            self.state.save()
            if self.notify:
                self.notify.status(self.status())
        if self.notify:
            self.notify.tick()

    def status(self):
        """One line of counts."""
        return (f"{self.mirrored} entries mirrored, {self.filtered} filtered out, "
                f"{self.own} persistlog's own, {self.gaps} missed")

    def run(self, ready=None):
        """Position the reader, then mirror until ``stop``. ``ready`` (callable) is called once
        positioned (sd_notify READY=1)."""
        where = self.position()
        self.say(f"mirroring the journal into {self.ring.path} {where}")
        if ready:
            ready()
        while not self.stopping:
            self.step()
            self._tick()
            if self.stopping:
                break
            try:
                self.reader.wait(self.cfg.mirror_poll)
            except InterruptedError:
                pass
        self._tick(force=True)


# -- command line --------------------------------------------------------------------------------

def _priority(text):
    from .cli import UsageError, parse_priority
    try:
        return parse_priority(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="persistlog mirror",
        description="Copy the journal's entries into the ring as journald writes them, so that "
                    "the next boot can give journald back the tail a crash took from its disk.",
        epilog="Exit status: 0 ok, 1 error, 2 usage, 3 configuration, 4 region, "
               "5 journal unreadable, 6 state directory, 7 region busy. See docs/MIRROR.md.")
    p.add_argument("--config", metavar="PATH",
                   help=f"TOML settings file (default {_config.DEFAULT_CONFIG}, if present)")
    p.add_argument("--region", metavar="PATH", help="the ring (default: persistlog's default)")
    p.add_argument("--state-dir", metavar="DIR", help="where the mirror's cursor is kept")
    p.add_argument("-D", "--directory", metavar="DIR",
                   help="follow the journal files in DIR (default: the local journal)")
    p.add_argument("-p", "--max-priority", metavar="PRIORITY", type=_priority,
                   help="mirror only entries of this priority or more urgent (0-7 or a name)")
    p.add_argument("-q", "--quiet", action="store_true", help="no messages on stderr")
    return p.parse_args(argv)


def run(args):
    """Run the mirror with parsed ``args``; returns the exit status. Raises PersistlogError."""
    import persistlog

    cfg = _config.load(args.config).with_overrides(
        region=args.region, state_dir=args.state_dir, mirror_directory=args.directory,
        mirror_max_priority=args.max_priority)
    _config.check(cfg)
    try:
        import systemd.journal  # noqa: F401
    except ImportError as e:
        raise PersistlogError(f"systemd-python is not installed ({e}); pip install "
                              "systemd-python (or 'persistlog[daemon]')") from None
    from .daemon import Notifier
    notifier = Notifier()
    say = (lambda line: None) if args.quiet else None
    with persistlog.open(cfg.region) as ring:
        mirror = Mirror(ring, cfg, notifier=notifier, say=say)
        try:
            signal.signal(signal.SIGTERM, mirror.stop)
            signal.signal(signal.SIGINT, mirror.stop)
            mirror.run(ready=lambda: notifier.send("READY=1", f"STATUS={mirror.status()}"))
            notifier.send("STOPPING=1")
            mirror.say(f"stopped: {mirror.status()}")
        finally:
            mirror.close()
    return EXIT_OK


def main(argv=None):
    """Entry point of ``persistlog mirror``; ``argv`` without the program name. Returns the exit
    status (see the module docstring) after printing any error as one line."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except ConfigError as e:
        code, msg = EXIT_CONFIG, str(e)
    except (RegionUnavailable, NotARegion, RegionTooSmall, UnsupportedVersion) as e:
        code, msg = EXIT_REGION, str(e)
    except JournalError as e:
        code, msg = EXIT_JOURNAL, str(e)
    except StateError as e:
        code, msg = EXIT_STATE, str(e)
    except MirrorBusy as e:
        code, msg = EXIT_BUSY, str(e)
    except PersistlogError as e:
        code, msg = EXIT_ERROR, str(e)
    print(f"persistlog mirror: error: {msg}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
