"""Records as journal entries: the fields, the journal export format, journalctl's JSON.

A record becomes the entry journald would have written had it received the record when it was
appended (the fields journald itself sets are documented in systemd.journal-fields(7))::

    __REALTIME_TIMESTAMP   the record's CLOCK_REALTIME, microseconds since the epoch
    __MONOTONIC_TIMESTAMP  the record's CLOCK_MONOTONIC, microseconds since its boot
    _BOOT_ID               the boot that wrote it, 32 hex digits as journalctl prints it
    _MACHINE_ID, _HOSTNAME this machine (a record does not carry them)
    _PID, _TID             the writer
    _TRANSPORT             "persistlog": recovered from a persistlog region
    MESSAGE, PRIORITY, SYSLOG_IDENTIFIER ("persistlog" when the record has none)
    PERSISTLOG_SEQ, PERSISTLOG_REGION   seqs are per region
    PERSISTLOG_BOOT_ID     _BOOT_ID in the dashed form persistlog prints; what the drain to
                           journald always set, so ``journalctl PERSISTLOG_BOOT_ID=`` still works
    the record's own fields (names as ``field_name`` makes them; binary values stay binary)

The journal export format (https://systemd.io/JOURNAL_EXPORT_FORMATS/) is what
``systemd-journal-remote`` reads and ``journalctl -o export`` writes: entries separated by an
empty line; a field is ``NAME=value\\n`` when its value is printable UTF-8 without a newline,
otherwise ``NAME\\n``, the value's length as a 64-bit little-endian integer, the value, ``\\n``.

journalctl's JSON (the "Journal JSON Format" of the same page): one object per entry, field
values as strings when printable UTF-8 (newlines allowed), as arrays of byte values otherwise,
an array of those when a field occurs more than once; the timestamps are decimal strings.
"""

import functools
import json
import os
import re
import socket
import struct
import uuid

from .errors import PersistlogError

# _TRANSPORT of entries recovered from a region (journald's own are journal, syslog, kernel...).
TRANSPORT = "persistlog"

# SYSLOG_IDENTIFIER of records written without an identifier.
NO_IDENTIFIER = "persistlog"

# MESSAGE_ID of the one summary entry per drained boot (journalctl MESSAGE_ID=...).
SUMMARY_MESSAGE_ID = "565d24199742480086ac357f415a7e25"

# A record carrying this field is a journal entry that issue 14's mirror copied into the ring:
# journald has it already, so it is never sent back nor written as an ordinary entry.
MIRROR_FIELD = "PERSISTLOG_MIRROR"

MACHINE_ID_PATH = "/etc/machine-id"

_OWN = frozenset(("MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER"))
#: The fields the drain itself puts in an entry (its position, the record's own values, the
#: summary's counts): a record's field of one of these names is renamed, so that no writer
#: can forge the seq or boot the drain resumes by.  Other PERSISTLOG_* names that writers use
#: (PERSISTLOG_TRUNCATED, PERSISTLOG_DROPPED, PERSISTLOG_MIRROR...) pass as they are.
_DRAIN_FIELDS = frozenset("PERSISTLOG_" + n for n in (
    "SEQ", "BOOT_ID", "REGION", "REALTIME_USEC", "MONOTONIC_USEC", "PID", "TID",
    "DRAINED_BOOT_ID", "RECORDS", "LOST", "TORN", "OVERWRITTEN", "RESCUED", "PSTORE"))
_MAX_NAME = 64  # journald and journal-remote drop fields with longer names
_LE64 = struct.Struct("<Q")


class ExportError(PersistlogError):
    """A journal entry cannot be made (no machine ID)."""


def field_name(name):
    """The journal field name for a record's field ``name`` (str).

    Upper case, characters outside A-Z 0-9 _ become ``_``, no leading ``_`` (journald reserves
    those for fields it sets itself) or digit, at most 64 characters. Names that would collide
    with the entry's own fields (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, the drain's
    PERSISTLOG_* fields) get a ``PERSISTLOG_FIELD_`` prefix. Two names that map to the same field both keep their values
    (a journal field may occur more than once in an entry).
    """
    n = "".join(c if ("A" <= c <= "Z" or "0" <= c <= "9") else "_" for c in name.upper())
    n = n.lstrip("_")
    if not n:
        n = "FIELD"
    elif n[0].isdigit():
        n = "F_" + n
    if n in _OWN or n in _DRAIN_FIELDS or n.startswith("PERSISTLOG_FIELD_"):
        n = "PERSISTLOG_FIELD_" + n
    return n[:_MAX_NAME]


def field_value(v):
    """A record field's value as the bytes a journal stores: bytes stay binary, text is UTF-8,
    numbers and booleans their decimal text, None empty, maps and lists JSON."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    if isinstance(v, bool):
        return b"1" if v else b"0"
    if isinstance(v, (int, float)):
        return str(v).encode()
    if v is None:
        return b""
    return json.dumps(_json_keys(v),
                      default=lambda o: o.hex() if isinstance(o, bytes) else repr(o)).encode()


def _json_keys(v):
    """``v`` with map keys JSON accepts: a writer's msgpack map may have bytes (or ext) keys."""
    if isinstance(v, dict):
        return {k if k is None or isinstance(k, (str, int, float)) else
                k.hex() if isinstance(k, bytes) else repr(k): _json_keys(x)
                for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_keys(x) for x in v]
    return v


def is_mirrored(record):
    """Whether ``record`` is a journal entry mirrored into the ring (it has ``MIRROR_FIELD``)."""
    return MIRROR_FIELD in record.fields


@functools.lru_cache(maxsize=64)
def boot_id_hex(boot_id):
    """A boot ID (UUID text, dashed or not) as the 32 lower-case hex digits journalctl prints."""
    return uuid.UUID(boot_id).hex


def machine_id(path=MACHINE_ID_PATH):
    """This machine's ID (32 hex digits) from ``path`` (machine-id(5)); raises ExportError."""
    try:
        with open(path) as f:
            text = f.read().strip()
        return uuid.UUID(text).hex
    except (OSError, ValueError) as e:
        raise ExportError(f"cannot read the machine ID from {path}: "
                          f"{getattr(e, 'strerror', None) or e}") from None


class Host:
    """The machine-wide fields of an entry: ``_MACHINE_ID`` and ``_HOSTNAME`` (str each).

    Args:
        machine_id_hex (str | None): default: read from /etc/machine-id.
        hostname (str | None): default: ``socket.gethostname()``.
        strict (bool): raise ExportError when the machine ID cannot be read; otherwise the
            entries go without ``_MACHINE_ID`` (a minimal guest may have no /etc/machine-id).
    """

    def __init__(self, machine_id_hex=None, hostname=None, strict=False):
        if machine_id_hex is None:
            try:
                machine_id_hex = machine_id()
            except ExportError:
                if strict:
                    raise
        self.machine_id = machine_id_hex
        self.hostname = hostname or socket.gethostname()


def record_fields(record, region, host):
    """The journal entry of ``record`` as a list of (name, value) pairs, name str, value bytes.

    Args:
        record (Record): the record.
        region (str | bytes): the region it came from (PERSISTLOG_REGION).
        host (Host): _MACHINE_ID and _HOSTNAME.

    Returns:
        list of (str, bytes): __REALTIME_TIMESTAMP, then __MONOTONIC_TIMESTAMP (microseconds),
        then the other fields; see the module docstring.
    """
    own = getattr(record, "journal_fields", None)  # a kernel line from pstore: its own entry
    if own is not None:
        return own(host)
    identifier = record.identifier if record.identifier is not None else NO_IDENTIFIER
    fields = [
        *timestamps(record.realtime_ns // 1000, record.monotonic_ns // 1000),
        ("_BOOT_ID", boot_id_hex(record.boot_id).encode()),
        *([("_MACHINE_ID", host.machine_id.encode())] if host.machine_id else []),
        ("_HOSTNAME", host.hostname.encode("utf-8", "surrogateescape")),
        ("_TRANSPORT", TRANSPORT.encode()),
        ("_PID", b"%d" % record.pid),
        ("_TID", b"%d" % record.tid),
        ("MESSAGE", record.message.encode("utf-8", "surrogateescape")),
        ("PRIORITY", b"%d" % record.priority),
        ("SYSLOG_IDENTIFIER", identifier.encode("utf-8", "surrogateescape")),
        ("PERSISTLOG_SEQ", b"%d" % record.seq),
        ("PERSISTLOG_REGION", _bytes(region)),
        ("PERSISTLOG_BOOT_ID", record.boot_id.encode()),
    ]
    for name, value in record.fields.items():
        fields.append((field_name(name), field_value(value)))
    return fields


# What a journal file can hold (systemd's VALID_REALTIME and VALID_MONOTONIC): journal-remote
# stops reading its input at an entry whose timestamp is outside.
_TIME_LIMIT = 1 << 55


def timestamps(realtime_us, monotonic_us):
    """An entry's __REALTIME_TIMESTAMP and __MONOTONIC_TIMESTAMP fields (µs), first and second.

    A time a journal file cannot hold (realtime 0 or below, either one at 2**55 µs or more,
    monotonic below 0: a writer's clock or a damaged record) is replaced by 1 µs
    (realtime) or 0 (monotonic), and the true value kept in PERSISTLOG_REALTIME_USEC or
    PERSISTLOG_MONOTONIC_USEC.
    """
    fields = [("__REALTIME_TIMESTAMP", b"%d" % realtime_us),
              ("__MONOTONIC_TIMESTAMP", b"%d" % monotonic_us)]
    if not 0 < realtime_us < _TIME_LIMIT:
        fields[0] = ("__REALTIME_TIMESTAMP", b"1")
        fields.append(("PERSISTLOG_REALTIME_USEC", b"%d" % realtime_us))
    if not 0 <= monotonic_us < _TIME_LIMIT:
        fields[1] = ("__MONOTONIC_TIMESTAMP", b"0")
        fields.append(("PERSISTLOG_MONOTONIC_USEC", b"%d" % monotonic_us))
    return fields


def _bytes(text):
    return os.fsencode(text) if isinstance(text, str) else bytes(text)


def summary_message(boot_id, records, first_seq, last_seq, lost, torn, overwritten=None,
                    rescued=None):
    """The MESSAGE of a drained boot's summary entry (counts as docs/FORMAT.md, "Figures";
    *rescued*: journal entries given back from the mirror, docs/MIRROR.md)."""
    return (f"persistlog: drained boot {boot_id}: {records} records"
            + (f" (seq {first_seq}-{last_seq})" if records else "")
            + (f", {overwritten} overwritten" if overwritten is not None else "")
            + f", {lost} lost, {torn} torn"
            + (f"; {rescued} journal entries rescued from the mirror" if rescued else ""))


def summary_fields(boot_id, region, stats, rescued=None):
    """The summary entry's own fields (no timestamps or trusted fields), (name, bytes) pairs.

    Args:
        boot_id (str): the drained boot.
        region (str | bytes): its region.
        stats (dict): ``Ring.stats(boot=...)``: records, first_seq, last_seq, lost, torn and
            overwritten (None when the region does not know it).
        rescued (int | None): journal entries of the boot given back from the mirror
            (``PERSISTLOG_RESCUED``); None when no rescue ran.
    """
    lost, torn, overwritten = stats["lost"], stats["torn"], stats.get("overwritten")
    message = summary_message(boot_id, stats["records"], stats["first_seq"], stats["last_seq"],
                              lost, torn, overwritten, rescued)
    fields = [
        ("MESSAGE", message.encode()),
        ("PRIORITY", b"%d" % (4 if lost or torn else 6)),
        ("SYSLOG_IDENTIFIER", NO_IDENTIFIER.encode()),
        ("MESSAGE_ID", SUMMARY_MESSAGE_ID.encode()),
        ("PERSISTLOG_DRAINED_BOOT_ID", boot_id.encode()),
        ("PERSISTLOG_REGION", _bytes(region)),
        ("PERSISTLOG_RECORDS", b"%d" % stats["records"]),
        ("PERSISTLOG_LOST", b"%d" % lost),
        ("PERSISTLOG_TORN", b"%d" % torn),
    ]
    if overwritten is not None:
        fields.append(("PERSISTLOG_OVERWRITTEN", b"%d" % overwritten))
    if rescued is not None:
        fields.append(("PERSISTLOG_RESCUED", b"%d" % rescued))
    return fields


_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ASCII_CONTROL = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")  # _CONTROL, for ASCII bytes


def _printable(value, newline):
    """systemd's utf8_is_printable_newline() (src/basic/utf8.c): valid UTF-8 without C0
    controls but the tab and (when ``newline``) the newline, without DEL or C1 controls.
    Returns the text, or None."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if (_CONTROL_BUT_NEWLINE if newline else _CONTROL).search(text):
        return None
    return text


def encode_entry(fields):
    """One entry in the journal export format, the separating empty line included.

    Args:
        fields (iterable of (str, bytes)): the entry's fields, in order.

    Returns:
        bytes
    """
    out = []
    for name, value in fields:
        if (not _ASCII_CONTROL.search(value) if value.isascii()
                else _printable(value, newline=False) is not None):
            out.append(b"%s=%s\n" % (name.encode(), value))
        else:
            out.append(b"%s\n%s%s\n" % (name.encode(), _LE64.pack(len(value)), value))
    out.append(b"\n")
    return b"".join(out)


def json_entry(fields):
    """One entry as journalctl's ``-o json`` prints it (with ``--all``): a dict.

    Args:
        fields (iterable of (str, bytes)): the entry's fields.

    Returns:
        dict: field name -> str (printable UTF-8), list of ints (other bytes), or a list of
        those when the field occurs more than once.
    """
    d, many = {}, set()
    for name, value in fields:
        text = _printable(value, newline=True)
        v = text if text is not None else list(value)
        if name not in d:
            d[name] = v
        elif name in many:
            d[name].append(v)
        else:
            d[name] = [d[name], v]
            many.add(name)
    return d
