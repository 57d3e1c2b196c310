"""The rescue: the journal entries of an earlier boot that its on-disk journal lacks, taken back
from the ring, where the mirror (``persistlog.mirror``) had copied them.

journald syncs every SyncIntervalSec= (5 min by default), so a crash loses the entries the kernel
had not written back. The mirror kept them in the ring; at the next boot ``rescue`` compares the
boot's mirrored records with what the disk holds and returns the missing entries as journal
entries with their own time, boot and PID, for the daemon to write into that boot's recovered
journal file (the export format of https://systemd.io/JOURNAL_EXPORT_FORMATS/ read by
``systemd-journal-remote``).

Matching
    An entry is on disk when the disk holds an entry with its ``__SEQNUM_ID`` and ``__SEQNUM``
    (journald's numbering), or, failing that, with the same cursor parts that do not depend on
    the file: boot ID, monotonic and realtime timestamps and the XOR hash of its fields (the
    ``b=``, ``m=``, ``t=`` and ``x=`` of ``__CURSOR``; journald computes that hash with a
    file-independent function because cursors must stay valid across files). The second key
    keeps an entry that journald copied into another file under a new seqnum (the flush from
    /run/log/journal to /var/log/journal) from being rescued twice.
"""

from systemd import _reader

from .mirror import MIRROR_FIELD, MIRROR_VALUE, RAW_FIELD, parse_cursor

#: Fields of a mirrored record that are persistlog's bookkeeping, not the entry's.
_BOOKKEEPING = frozenset((MIRROR_FIELD, RAW_FIELD))


def _hex_boot(boot_id):
    return str(boot_id).replace("-", "").lower()


def entry_keys(cursor):
    """The two keys an entry is matched by, from its cursor (str): ((seqnum ID, seqnum),
    (boot ID, monotonic µs, realtime µs, XOR hash)); see the module docstring.

    Raises:
        ValueError: not a journal cursor.
    """
    p = parse_cursor(cursor)
    x = dict(part.split("=", 1) for part in cursor.split(";") if "=" in part).get("x")
    return ((p["seqnum_id"], p["seqnum"]),
            (p["boot_id"], p["monotonic_usec"], p["realtime_usec"], x))


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


def mirrored(records, boot_id):
    """The mirrored records of ``boot_id`` (the journal's boot: its ``_BOOT_ID``, 32 hex digits
    or dashed) among ``records`` (iterable of persistlog.Record), in ring order."""
    boot = _hex_boot(boot_id)
    for rec in records:
        f = rec.fields
        if (f.get(MIRROR_FIELD) == MIRROR_VALUE and isinstance(f.get("__CURSOR"), str)
                and str(f.get("_BOOT_ID", "")).replace("-", "").lower() == boot):
            yield rec


def on_disk(journal, boot_id, since_monotonic_usec=0):
    """The keys (see ``entry_keys``) of the entries ``journal`` holds for ``boot_id``.

    Args:
        journal (systemd.journal.Reader): the journal files of that boot. Its matches are
            replaced by ``_BOOT_ID=boot_id``.
        boot_id (str): the boot, 32 hex digits or dashed.
        since_monotonic_usec (int): read only entries from this CLOCK_MONOTONIC time of that
            boot on (µs); earlier ones cannot match.

    Returns:
        tuple[set, set]: the seqnum keys and the content keys.
    """
    boot = _hex_boot(boot_id)
    journal.flush_matches()
    journal.add_match(_BOOT_ID=boot)
    _reader._Reader.seek_monotonic(journal, int(since_monotonic_usec), boot)  # µs, exactly
    seqnums, contents = set(), set()
    while journal._next():  # the cursor alone: no field is read
        s, c = entry_keys(journal._get_cursor())
        seqnums.add(s)
        contents.add(c)
    return seqnums, contents


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
    seqnums, contents = on_disk(journal, boot_id, first)
    out = []
    for rec in recs:
        s, c = entry_keys(rec.fields["__CURSOR"])
        if s in seqnums or c in contents:
            continue
        seqnums.add(s)  # each once, even if the ring held it twice
        contents.add(c)
        out.append(journal_entry(rec))
    return out
