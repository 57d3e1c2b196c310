"""A ``logging.Handler`` that appends to a persistlog region, with the fields
``systemd.journal.JournalHandler`` sends (systemd-python 235, systemd/journal.py)."""
import logging
import os
import sys
import time
import uuid
from itertools import islice as _islice

from . import _binding, _fast
from .errors import RecordTooLarge
from .record import encode_named
from .ring import open as _open

#: logging levels to syslog priorities (RFC 5424 section 6.2.1), as
#: ``JournalHandler.map_priority`` maps them: a level up to and including
#: DEBUG is 7, up to INFO 6, up to WARNING 4, up to ERROR 3, up to CRITICAL 2,
#: above CRITICAL 1 (alert).  A level between two standard ones takes the
#: upper one's priority (25 is 4, like WARNING).
LEVEL_TO_PRIORITY = ((logging.DEBUG, 7), (logging.INFO, 6), (logging.WARNING, 4),
                     (logging.ERROR, 3), (logging.CRITICAL, 2))


def priority_for(levelno):
    """Return the syslog priority (int, 0-7) for a logging level number (int),
    as ``systemd.journal.JournalHandler.map_priority`` does."""
    for level, priority in LEVEL_TO_PRIORITY:
        if levelno <= level:
            return priority
    return 1


#: priority_for() of the standard levels, looked up once.
_PRIORITY = {level: priority_for(level) for level in
             (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG)}

#: The attributes LogRecord.__init__ sets, in the order it sets them
#: (``makeRecord`` adds ``extra=`` fields after them), and their number.
_INIT_ATTRS = tuple(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
_N_INIT_ATTRS = len(_INIT_ATTRS)

#: The attributes every LogRecord has (and those format() adds): the rest
#: came from ``extra=`` (or a filter).
_RECORD_ATTRS = frozenset(_INIT_ATTRS) | {"message", "asctime", "taskName"}

#: Fields emit() sets itself; an ``extra=`` field of one of these names is
#: not taken (JournalHandler fails the whole record on such a name: two
#: values for one keyword argument).
_OWN_FIELDS = frozenset((
    "MESSAGE", "PRIORITY", "LOGGER", "THREAD_NAME", "PROCESS_NAME", "CODE_FILE",
    "CODE_LINE", "CODE_FUNC", "EXCEPTION_TEXT", "EXCEPTION_INFO", "CODE_ARGS",
    "PERSISTLOG_TRUNCATED"))

_FIELD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")

_MARKER_MAX = "…[truncated 9999999999 bytes]"  # the longest marker _append_cut adds

#: Seconds between two tries to open an unusable region (CLOCK_MONOTONIC).
RETRY_INTERVAL = 5.0

_monotonic = time.monotonic  # the retry clock (tests move it)


def journal_field_name(name):
    """Whether journald keeps a client's field called *name* (str): 1 to 64
    characters of A-Z, 0-9 and _, not starting with a digit or _ (systemd's
    journal_field_valid(), src/libsystemd/sd-journal/journal-file.c; names
    starting with _ are journald's own).  JournalHandler sends every
    attribute of a LogRecord; journald drops the rest."""
    return (0 < len(name) <= 64 and name[0] not in "0123456789_"
            and _FIELD_CHARS.issuperset(name))


_kinds = {}  # attribute name -> _kind(name), looked up once


def _kind(name):
    """What emit() does with a LogRecord attribute *name* beyond the
    standard ones: 0 leave it, 1 a field, 2 MESSAGE_ID or SYSLOG_IDENTIFIER."""
    if not journal_field_name(name) or name in _OWN_FIELDS:
        kind = 0  # "message", "asctime", a lower case extra= name, emit's own
    elif name in ("MESSAGE_ID", "SYSLOG_IDENTIFIER"):
        kind = 2
    else:
        kind = 1
    if len(_kinds) < 4096:
        _kinds[name] = kind
    return kind


def program_name():
    """The default identifier (str | None): the basename of ``sys.argv[0]``,
    as syslog(3) and Python's ``syslog.openlog()`` take it; None if empty."""
    argv = getattr(sys, "argv", None)
    return (os.path.basename(argv[0]) or None) if argv else None


#: Field value types stored as they are; JournalHandler sends bytes and
#: text as they are and anything else as str(), which for int and float is
#: the text the drain sends for them (persistlog.export.field_value).
_PLAIN = frozenset((str, bytes, int, float))


def _text(value):
    """*value* as JournalHandler sends it (see _PLAIN)."""
    return value if value.__class__ in _PLAIN else str(value)


def _cap(sizes, over):
    """The largest length (int) that, cutting every size in *sizes* longer
    than it down to it, cuts at least *over* bytes in all (0 if none does)."""
    sizes = sorted(sizes, reverse=True)
    for i, size in enumerate(sizes):
        # cap the i + 1 longest at the next size (or 0): is that enough?
        nxt = sizes[i + 1] if i + 1 < len(sizes) else 0
        removed = sum(sizes[:i + 1]) - (i + 1) * nxt
        if removed >= over:
            # the cut lies between nxt and size: the i + 1 longest share it
            return max(nxt, (sum(sizes[:i + 1]) - over) // (i + 1))
    return 0


# What emit()'s C path (persistlog/_fast.c: emit) needs to make the same
# record as the Python path below: the cache of attribute kinds is shared,
# so a name the Python path judges once is the C path's from then on.
_fast.configure_emit(logging.LogRecord, _kinds, _N_INIT_ATTRS, LEVEL_TO_PRIORITY)


class Handler(logging.Handler):
    """Append each ``logging`` record to a region, with the fields
    ``systemd.journal.JournalHandler`` sends.

    Each record's fields: MESSAGE (what the formatter makes), PRIORITY (from
    the level, see ``priority_for``), SYSLOG_IDENTIFIER, LOGGER (the
    logger's name), THREAD_NAME, PROCESS_NAME, CODE_FILE, CODE_LINE,
    CODE_FUNC; CODE_ARGS (``str(record.args)``) when the message had
    arguments; EXCEPTION_TEXT (the formatted traceback) and EXCEPTION_INFO
    (``str(record.exc_info)``) with ``exc_info``; and each ``extra=`` field
    whose name journald keeps (``journal_field_name``: ``extra={"ORDER_ID":
    7}`` is stored, ``extra={"order_id": 7}`` is not, as journald drops it
    from JournalHandler's entry).  A MESSAGE_ID given as a ``uuid.UUID`` is
    stored as its 32 hex digits; an extra SYSLOG_IDENTIFIER overrides the
    handler's.  Values other than str, bytes, int and float are stored as
    ``str(value)``, as JournalHandler sends them.

    The common record is made in one C call (``persistlog._fast``; the
    bytes are those of the Python path, which takes every other record),
    and ``handle()`` takes no lock: appends to a region are lock-free and
    safe from any thread.

    Building the handler never raises for the region (so a
    ``logging.config.dictConfig`` naming it does not fail): if the region
    cannot be opened, the reason is written once to stderr (when
    ``logging.raiseExceptions`` is true, as ``handleError`` does), records
    are dropped and counted in ``dropped``, and the region is opened again
    at the first record after ``retry_interval`` seconds (CLOCK_MONOTONIC).
    Once it opens, a warning record saying how many were dropped comes
    first (PERSISTLOG_DROPPED=N), then records are appended as usual.

    A record larger than the region's maximum record size is cut to fit:
    its longest text or bytes values (usually MESSAGE, and EXCEPTION_TEXT
    beside a traceback) lose their ends, down to one common length, the
    message ends in ``…[truncated N bytes]`` and the field
    PERSISTLOG_TRUNCATED=N (bytes cut in all) is added; no character is cut
    in two.  Other errors while appending go to
    ``handleError``, as logging expects.

    Args:
        region (str | os.PathLike | None): region name, as for
            ``persistlog.open()`` (None: its default).
        ring (Ring | None): an open ring to use instead (not closed by
            ``close()``).
        identifier (str | None): syslog identifier; default the program
            name (``program_name()``).  JournalHandler's default is
            ``sys.argv[0]`` whole.
        level (int): the handler's level.
        size (int | None): bytes of the region file if it is created, as
            for ``persistlog.open()``.
        retry_interval (float): seconds between tries to open the region.

    Attributes:
        ring (Ring | None): the open region, None while it cannot be opened.
        dropped (int): records dropped since the last open failure.
        error (str | None): why the region cannot be opened, or None.
    """

    def __init__(self, region=None, *, ring=None, identifier=None, level=logging.NOTSET,
                 size=None, retry_interval=RETRY_INTERVAL):
        super().__init__(level)
        self._own = ring is None
        self.region = region
        self.size = size
        self.retry_interval = retry_interval
        self.identifier = identifier if identifier is not None else program_name()
        self.ring = ring
        self.dropped = 0
        self.error = None
        self._retry_at = 0.0
        self._max_payload = None
        if ring is None:
            self._open()
        else:
            self._set_limit()

    # -- the region ------------------------------------------------------------------------

    def _set_limit(self):
        self._max_payload = self.ring._max_record - _binding.REC_HDR_SIZE

    def _open(self):
        """Try to open the region; True if it is open.  A failure is
        reported once (until the region opened again)."""
        try:
            self.ring = _open(self.region, size=self.size)
        except Exception as e:  # any reason at all: logging must go on
            self._retry_at = _monotonic() + self.retry_interval
            if self.error is None:
                self.error = f"{e.__class__.__name__}: {e}"
                self._report(f"persistlog.Handler: cannot open region "
                             f"{self.region if self.region is not None else '(default)'}: "
                             f"{self.error}; records are dropped until it opens "
                             f"(tried again every {self.retry_interval:g} s)")
            return False
        self._set_limit()
        if self.dropped:
            try:
                self.ring._append_fields(
                    f"persistlog.Handler: {self.dropped} records dropped while the region "
                    f"could not be opened ({self.error})", 4, self.identifier,
                    {"PERSISTLOG_DROPPED": self.dropped})
            except Exception:
                pass  # the records after it are what matters
        self.dropped = 0
        self.error = None
        return True

    @staticmethod
    def _report(line):
        if logging.raiseExceptions and sys.stderr is not None:
            try:
                sys.stderr.write(line + "\n")
            except Exception:
                pass

    # -- records ---------------------------------------------------------------------------

    def handle(self, record):
        """Filter *record* and emit it, as ``logging.Handler.handle`` does,
        but without the handler's lock: appends to a region need none (the
        ring is lock-free and safe from any thread), so threads do not queue
        on each other; the lock is taken only while the region is not open.
        Returns what the filters returned (a record, or whether to log it)."""
        rv = self.filter(record)
        if isinstance(rv, logging.LogRecord):
            record = rv  # Python 3.12: a filter may hand back another record
        if rv:
            self.emit(record)
        return rv

    def emit(self, record):
        """Append *record* (dropped and counted while the region cannot be
        opened); errors go to ``handleError`` as logging expects."""
        ring = self.ring
        if ring is None:
            with self.lock:  # one thread opens it; the others count their drops
                ring = self.ring
                if ring is None:
                    if _monotonic() < self._retry_at or not self._open():
                        self.dropped += 1
                        return
                    ring = self.ring
        try:
            if self.formatter is None:
                # the common record in one C call (persistlog/_fast.c:
                # emit()), which makes the bytes the code below makes, or
                # declines and leaves the record to it
                try:
                    if ring._emit_fast(record, self.identifier) is not None:
                        return
                except RecordTooLarge:
                    pass  # cut to fit below
            if self.formatter is None and not (record.exc_info or record.exc_text
                                               or record.stack_info):
                # what logging's default Formatter ("%(message)s") makes of
                # such a record, without its calls
                message = record.getMessage()
            else:
                message = self.format(record)
            levelno = record.levelno
            priority = _PRIORITY.get(levelno)
            if priority is None:
                priority = priority_for(levelno)
            fields = {
                "LOGGER": record.name,
                "THREAD_NAME": record.threadName,
                "PROCESS_NAME": record.processName,
                "CODE_FILE": record.pathname,
                "CODE_LINE": record.lineno,
                "CODE_FUNC": record.funcName,
            }
            if record.args:
                fields["CODE_ARGS"] = str(record.args)
            if record.exc_text:
                fields["EXCEPTION_TEXT"] = record.exc_text
            if record.exc_info:
                fields["EXCEPTION_INFO"] = str(record.exc_info)
            identifier = self.identifier
            d = record.__dict__
            if len(d) > _N_INIT_ATTRS:
                # attributes set after LogRecord.__init__: extra= fields,
                # format()'s "message", a filter's; a subclass may set its
                # own before its __init__ ends, so for one every name is looked at
                if record.__class__ is logging.LogRecord:
                    items = _islice(d.items(), _N_INIT_ATTRS, None)
                else:
                    items = [(k, d[k]) for k in d.keys() - _RECORD_ATTRS]
                for name, value in items:
                    kind = _kinds.get(name)
                    if kind is None:
                        kind = _kind(name)
                    if kind == 1:
                        if value.__class__ not in _PLAIN:
                            value = str(value)  # as JournalHandler sends it
                        fields[name] = value
                    elif kind:
                        identifier = self._special(name, value, fields, identifier)
            try:
                ring._append_fields(message, priority, identifier, fields)
            except RecordTooLarge:
                self._append_cut(ring, message, priority, identifier, fields)
        except Exception:
            self.handleError(record)

    @staticmethod
    def _special(name, value, fields, identifier):
        """Take the ``extra=`` field MESSAGE_ID or SYSLOG_IDENTIFIER;
        returns the identifier (an extra SYSLOG_IDENTIFIER's, else *identifier*)."""
        if name == "MESSAGE_ID":
            # JournalHandler (journal.send) takes a UUID's hex digits
            fields[name] = value.hex if isinstance(value, uuid.UUID) else _text(value)
            return identifier
        return None if value is None else str(value)

    def _append_cut(self, ring, message, priority, identifier, fields):
        """Append a record too large for the region with its longest values
        cut to one common length, the shortest that makes it fit."""
        values = {"": message}
        values.update((k, v) for k, v in fields.items() if isinstance(v, (str, bytes)))
        cut = 0
        for _ in range(4):  # one round fits but for UTF-8 boundaries and length prefixes
            # the payload with the marker and the field at their largest,
            # so that it still fits once they are filled in
            trial = dict(fields, PERSISTLOG_TRUNCATED=1 << 40)
            trial.update((k, v) for k, v in values.items() if k)
            over = len(encode_named(values[""] + _MARKER_MAX, priority, identifier, trial)) \
                - self._max_payload
            if over <= 0:
                break
            raw = {k: v if isinstance(v, bytes) else v.encode("utf-8", "surrogatepass")
                   for k, v in values.items()}
            cap = _cap([len(v) for v in raw.values()], over)
            for k, v in raw.items():
                if len(v) > cap:
                    keep = v[:cap]
                    if not isinstance(values[k], bytes):
                        keep = keep.decode("utf-8", "ignore")  # no character cut in two
                        cut += len(v) - len(keep.encode("utf-8", "surrogatepass"))
                    else:
                        cut += len(v) - len(keep)
                    values[k] = keep
        message = values.pop("")
        fields = dict(fields, **values, PERSISTLOG_TRUNCATED=cut)
        return ring._append_fields(f"{message}…[truncated {cut} bytes]", priority,
                                   identifier, fields)

    def close(self):
        """Close the region if this handler opened it."""
        try:
            if self._own and self.ring is not None:
                self.ring.close()
        finally:
            super().close()
