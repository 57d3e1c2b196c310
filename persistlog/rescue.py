"""The rescue: the journal entries of an earlier boot that its on-disk journal lacks, taken back
from the ring, where the mirror (``persistlog.mirror``) had copied them.

journald syncs every SyncIntervalSec= (5 min by default), so a crash loses the entries the kernel
had not written back. The mirror kept them in the ring; at the next boot ``rescue`` compares the
boot's mirrored records with what the disk holds and returns the missing entries as journal
entries with their own time, boot and PID, for the daemon to write into that boot's recovered
journal file (the export format of https://systemd.io/JOURNAL_EXPORT_FORMATS/ read by
``systemd-journal-remote``).

Matching
    An entry is on disk when the disk holds an entry of the same boot with the same monotonic
    and realtime timestamps and the same XOR hash of its fields: the ``b=``, ``m=``, ``t=`` and
    ``x=`` parts of its cursor (journald computes that hash with a file-independent function,
    because cursors must stay valid across files), and with its MESSAGE readable and the same:
    a crash can leave an entry whose data it damaged, which ``journalctl`` lists without its
    MESSAGE (tests/test_rescue.py saw it); that one is given back too.
    ``__SEQNUM_ID``/``__SEQNUM`` alone cannot decide it: a journald started over a file left
    dirty continues the sequence from the file's last synced entry, and so numbers new entries
    with the seqnums of the lost ones, under the same ``__SEQNUM_ID`` (seen with systemd 252;
    tests/test_rescue.py). Nor can the seqnum miss an entry that is there: an entry journald
    copied into another file under another seqnum ID (the flush from /run/log/journal to
    /var/log/journal does, seen with systemd 252) keeps its times and hash, so it is not
    rescued twice.
"""

from .mirror import MIRROR_FIELD, MIRROR_VALUE, RAW_FIELD, parse_cursor

#: Fields of a mirrored record that are persistlog's bookkeeping, not the entry's.
_BOOKKEEPING = frozenset((MIRROR_FIELD, RAW_FIELD))


def _hex_boot(boot_id):
    return str(boot_id).replace("-", "").lower()


def entry_key(cursor):
    """The key an entry is matched by, from its cursor (str): (boot ID, monotonic µs,
    realtime µs, XOR hash); see the module docstring.

    Raises:
        ValueError: not a journal cursor.
    """
    p = parse_cursor(cursor)
    x = dict(part.split("=", 1) for part in cursor.split(";") if "=" in part).get("x")
    if x is None:
        raise ValueError(f"journal cursor without its hash: {cursor!r}")
    return p["boot_id"], p["monotonic_usec"], p["realtime_usec"], x


def _journal_value(v):
    """A record's field value as a journal field value: text or bytes (a list stays a list)."""
    if isinstance(v, list):
        return [_journal_value(x) for x in v]
    if isinstance(v, (bytes, str)):
        return v
    if isinstance(v, bool):
        return "1" if v else "0"
    if v is None:
        return ""
    return str(v)


def journal_entry(record):
    """The journal entry a mirrored record was made from.

    Args:
        record (persistlog.Record): a record carrying ``PERSISTLOG_MIRROR=journal``.

    Returns:
        dict: field name to value (str when the journal's value was UTF-8, bytes otherwise, a
        list of those for a field the entry had more than once): MESSAGE, PRIORITY and
        SYSLOG_IDENTIFIER as the entry had them (absent if it had none), ``_BOOT_ID``,
        ``__REALTIME_TIMESTAMP`` and ``__MONOTONIC_TIMESTAMP`` (decimal µs, the entry's own),
        ``__SEQNUM``, ``__SEQNUM_ID``, ``__CURSOR``, ``_PID`` and the other fields the mirror
        kept. ``__CURSOR``, ``__SEQNUM`` and ``__SEQNUM_ID`` say where the entry stood in the
        crashed boot's journal: a writer of the export format drops them (journald gives
        every entry it writes a new one).
    """
    f = record.fields
    raw = f.get(RAW_FIELD) or {}
    out = {}
    for name, value in (("MESSAGE", record.message), ("PRIORITY", str(record.priority)),
                        ("SYSLOG_IDENTIFIER", record.identifier)):
        if name in raw:
            value = raw[name]
        if value is not None:
            out[name] = value
    for name, value in f.items():
        if name not in _BOOKKEEPING:
            out[name] = _journal_value(value)
    return out


#: Fields of a rescued entry that say where it stood in the crashed boot's journal: journald
#: gives each entry it writes its own, and systemd-journal-remote ignores them (the seqnums with
#: a warning: "Unknown dunder line").
POSITION_FIELDS = ("__CURSOR", "__SEQNUM", "__SEQNUM_ID")

_FIRST = ("__REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP")


def export_fields(entry, machine_id=None):
    """A rescued entry as the (name, value) pairs of the journal export format.

    Args:
        entry (dict): as ``journal_entry`` (or ``rescue``) returns it.
        machine_id (str | None): ``_MACHINE_ID`` to add (32 hex digits) when the entry lacks it.

    Returns:
        list of (str, bytes): ``__REALTIME_TIMESTAMP``, ``__MONOTONIC_TIMESTAMP``, then the other
        fields in the entry's order, one pair per value of a field held more than once;
        without ``POSITION_FIELDS``. ``persistlog.export.encode_entry`` turns them into the
        bytes systemd-journal-remote reads.
    """
    def pairs(name, value):
        values = value if isinstance(value, list) else [value]
        return [(name, v.encode("utf-8", "surrogateescape") if isinstance(v, str) else bytes(v))
                for v in values]

    out = [p for name in _FIRST if name in entry for p in pairs(name, entry[name])]
    for name, value in entry.items():
        if name not in _FIRST and name not in POSITION_FIELDS:
            out.extend(pairs(name, value))
    if machine_id and "_MACHINE_ID" not in entry:
        out.append(("_MACHINE_ID", machine_id.encode()))
    return out


def mirrored(records, boot_id):
    """The mirrored records of ``boot_id`` (the journal's boot: its ``_BOOT_ID``, 32 hex digits
    or dashed) among ``records`` (iterable of persistlog.Record), in ring order."""
    boot = _hex_boot(boot_id)
    for rec in records:
        f = rec.fields
        if (f.get(MIRROR_FIELD) == MIRROR_VALUE and isinstance(f.get("__CURSOR"), str)
                and str(f.get("_BOOT_ID", "")).replace("-", "").lower() == boot):
            yield rec


def disk_entries(journal, boot_id, since_monotonic_usec=0):
    """Yield (cursor, MESSAGE) of each entry ``journal`` holds for ``boot_id``.

    Args:
        journal (systemd.journal.Reader): the journal files of that boot. Its matches are
            replaced by ``_BOOT_ID=boot_id``.
        boot_id (str): the boot, 32 hex digits or dashed.
        since_monotonic_usec (int): only entries from this CLOCK_MONOTONIC time of that boot
            on (µs); earlier ones cannot match a mirrored record.

    Yields:
        tuple: the cursor (str) and the MESSAGE (bytes), or None when the entry has none or it
        cannot be read (the crash left the entry but damaged its data).
    """
    from systemd import _reader  # an extra (persistlog[daemon]): imported when used

    boot = _hex_boot(boot_id)
    journal.flush_matches()
    journal.add_match(_BOOT_ID=boot)
    _reader._Reader.seek_monotonic(journal, int(since_monotonic_usec), boot)  # µs, exactly
    while journal._next():
        try:
            message = journal._get("MESSAGE")  # one field read, not all
        except (KeyError, OSError):
            message = None
        yield journal._get_cursor(), message


def _message(entry):
    """An entry's MESSAGE (its first, if several) as bytes, None if it has none."""
    m = entry.get("MESSAGE")
    if isinstance(m, list):
        m = m[0] if m else None
    return m.encode("utf-8", "surrogateescape") if isinstance(m, str) else m


def missing(records, disk, boot_id):
    """The mirrored records of ``boot_id`` whose entries ``disk`` lacks, or holds with another
    MESSAGE (damaged), as journal entries, each once, in ring order. The pure core of
    ``rescue``.

    Args:
        records (Iterable[persistlog.Record]): ring records (see ``rescue``).
        disk (Iterable[tuple]): (cursor, MESSAGE bytes or None) of the entries the disk holds
            for that boot, as ``disk_entries`` yields them.
        boot_id (str): the boot (``_BOOT_ID``), 32 hex digits or dashed.

    Returns:
        list[dict]: journal entries as ``journal_entry`` makes them.
    """
    seen = {}
    for cursor, message in disk:
        seen.setdefault(entry_key(cursor), set()).add(message)
    out = []
    for rec in mirrored(records, boot_id):
        key = entry_key(rec.fields["__CURSOR"])
        entry = journal_entry(rec)
        message = _message(entry)
        if message not in seen.get(key, ()):
            seen.setdefault(key, set()).add(message)  # each once, even if the ring held it twice
            out.append(entry)
    return out


def rescue(records, journal, boot_id):
    """The entries of boot ``boot_id`` that the mirror copied into the ring and the on-disk
    journal lacks, each once, in journal order.

    Args:
        records (Iterable[persistlog.Record]): the ring's records (those of that boot, or all:
            only records carrying ``PERSISTLOG_MIRROR=journal`` and ``_BOOT_ID`` = ``boot_id``
            are considered), e.g. ``ring.records(boot=boot_id)``.
        journal (systemd.journal.Reader): a reader over the journal files that boot left on
            disk (e.g. ``Reader(path="/var/log/journal/<machine-id>")``); its matches are
            replaced by ``_BOOT_ID=boot_id`` and it is read from the first mirrored entry's
            monotonic time on. Nothing is written.
        boot_id (str): the boot as journald names it (``_BOOT_ID``), 32 hex digits or dashed.

    Returns:
        list[dict]: journal entries as ``journal_entry`` makes them.

    Raises:
        OSError: the journal cannot be read.
    """
    recs = list(mirrored(records, boot_id))
    if not recs:
        return []
    first = min(int(r.fields.get("__MONOTONIC_TIMESTAMP", 0)) for r in recs)
    return missing(recs, disk_entries(journal, boot_id, first), boot_id)


def rescue_boot(records, boot_id, directory=None):
    """``rescue`` against the local journal (system and user journals in /var/log/journal and
    /run/log/journal, as journalctl reads them), or the journal files in ``directory``.

    Args:
        records (Iterable[persistlog.Record]): as for ``rescue``.
        boot_id (str): as for ``rescue``.
        directory (str | os.PathLike | None): a journal directory instead of the local journal.

    Returns:
        list[dict]: as ``rescue``.

    Raises:
        persistlog.mirror.JournalError: the journal cannot be opened.
        OSError: it cannot be read.
    """
    from .mirror import open_journal

    reader = open_journal(str(directory) if directory is not None else None)
    try:
        return rescue(records, reader, boot_id)
    finally:
        reader.close()
